import Foundation
@testable import SarabanRelayPostgres
import SarabanNode
import SarabanTestSupport
import Testing

/// `withDeadline`, which bounds every PostgreSQL call of the relay store: its timer ends with the
/// work (left sleeping, a timer task per call lived for the whole deadline, thousands of them in
/// a busy relay), and the deadline still refuses work that does not answer.
@Suite(.timeLimit(.minutes(1))) struct DeadlineTests {
    @Test func theTimerEndsWithTheWork() async throws {
        let timer = TaskSlot()
        let value = try await withDeadline(60, "test", timer: timer) { 42 }
        #expect(value == 42)
        // Cancelled and released when the work ended, not 60 s later.
        try await eventually("the timer is cancelled", timeout: .seconds(5)) { timer.isCancelled }
    }

    @Test func aSlotCancelledBeforeItsTaskIsSetCancelsTheTask() async throws {
        let slot = TaskSlot()
        slot.cancel()
        let sleeper = Task<Void, Never> { _ = try? await Task.sleep(for: .seconds(60)) }
        slot.set(sleeper)
        #expect(sleeper.isCancelled && slot.isCancelled)
    }

    @Test func theDeadlineStillRefusesWorkThatDoesNotAnswer() async throws {
        let started = ContinuousClock.now
        await #expect(throws: RelayStoreError.self) {
            _ = try await withDeadline(0.2, "wait") { () async throws -> Int in
                try await Task.sleep(for: .seconds(30))
                return 1
            }
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
