import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import SarabanTransport

/// Every session ran its own sleeping task to tick once a second; a relay with thousands of
/// sessions paid a task and a timer wake-up for each. One shared timer now ticks them all.
@Suite struct SharedTickerTests {
    @Test func subscribersAreTickedUntilTheyStopOrLeave() async throws {
        let ticker = SharedTicker(interval: .milliseconds(10))
        let a = NIOLockedValueBox(0)
        let b = NIOLockedValueBox(0)
        let ta = ticker.subscribe {
            a.withLockedValue { $0 += 1 }
            return true
        }
        _ = ticker.subscribe {
            b.withLockedValue { $0 += 1 }
            return b.withLockedValue { $0 } < 3  // stops itself after its third tick
        }
        #expect(ticker.count == 2)
        try await waitUntil { a.withLockedValue { $0 } >= 5 }
        #expect(b.withLockedValue { $0 } == 3, "a subscriber that returned false was ticked again")
        #expect(ticker.count == 1)
        ticker.unsubscribe(ta)
        #expect(ticker.count == 0)
        let stopped = a.withLockedValue { $0 }
        try await Task.sleep(for: .milliseconds(60))
        #expect(a.withLockedValue { $0 } <= stopped + 1, "an unsubscribed session was still ticked")

        // The timer's task ended with its last subscriber; a new one starts it again.
        let c = NIOLockedValueBox(0)
        let tc = ticker.subscribe {
            c.withLockedValue { $0 += 1 }
            return true
        }
        try await waitUntil { c.withLockedValue { $0 } >= 2 }
        ticker.unsubscribe(tc)
    }

    @Test func sessionsOfOneIntervalShareOneTicker() {
        #expect(SharedTicker.shared(every: .seconds(1)) === SharedTicker.shared(every: .seconds(1)))
        #expect(SharedTicker.shared(every: .seconds(1)) !== SharedTicker.shared(every: .milliseconds(250)))
    }

    private func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            #expect(ContinuousClock.now < deadline, "timed out")
            if ContinuousClock.now >= deadline { return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
