import Foundation
import NIOConcurrencyHelpers
import Testing

@testable import SarabanTransport

/// Every session ran its own sleeping task to tick once a second; a relay with thousands of
/// sessions paid a task and a timer wake-up for each. One shared timer now ticks them all.
///
/// The ticks are driven by hand (`tickOnce`): the timer's own interval is an hour, so it never
/// ticks during the test, and nothing here depends on how busy the machine is.
@Suite struct SharedTickerTests {
    @Test func subscribersAreTickedUntilTheyStopOrLeave() {
        let ticker = SharedTicker(interval: .seconds(3_600))
        #expect(!ticker.isRunning)
        let a = NIOLockedValueBox(0)
        let b = NIOLockedValueBox(0)
        let ta = ticker.subscribe {
            a.withLockedValue { $0 += 1 }
            return true
        }
        #expect(ticker.isRunning)
        _ = ticker.subscribe {
            b.withLockedValue { $0 += 1 }
            return b.withLockedValue { $0 } < 3  // stops itself after its third tick
        }
        #expect(ticker.count == 2)
        for _ in 0..<5 { #expect(ticker.tickOnce()) }
        #expect(a.withLockedValue { $0 } == 5)
        #expect(b.withLockedValue { $0 } == 3, "a subscriber that returned false was ticked again")
        #expect(ticker.count == 1)

        ticker.unsubscribe(ta)
        #expect(ticker.count == 0)
        #expect(!ticker.tickOnce(), "no subscriber: the timer stops")
        #expect(a.withLockedValue { $0 } == 5, "an unsubscribed session was ticked")
        #expect(!ticker.isRunning)

        // A new subscriber starts the timer again.
        let c = NIOLockedValueBox(0)
        let tc = ticker.subscribe {
            c.withLockedValue { $0 += 1 }
            return true
        }
        #expect(ticker.isRunning)
        #expect(ticker.tickOnce())
        #expect(c.withLockedValue { $0 } == 1)
        ticker.unsubscribe(tc)
    }

    @Test func sessionsOfOneIntervalShareOneTicker() {
        #expect(SharedTicker.shared(every: .seconds(1)) === SharedTicker.shared(every: .seconds(1)))
        #expect(SharedTicker.shared(every: .seconds(1)) !== SharedTicker.shared(every: .milliseconds(250)))
    }
}
