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

    /// No wall-clock bound here: on a loaded CI machine a 0.2 s timer once took 10.6 s to resume.
    /// The work below never ends unless cancelled, so the refusal can only come from the deadline,
    /// and the work must have been cancelled by it.
    @Test func theDeadlineStillRefusesWorkThatDoesNotAnswer() async throws {
        let cancelled = TaskSlot()
        let error = await #expect(throws: RelayStoreError.self) {
            _ = try await withDeadline(0.2, "wait") { () async throws -> Int in
                do { try await Task.sleep(for: .seconds(3_600)) } catch { cancelled.cancel(); throw error }
                return 1
            }
        }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("did not answer within 0.2 s") == true)
        try await eventually("the work is cancelled by the deadline", timeout: .seconds(30)) { cancelled.isCancelled }
    }
}
