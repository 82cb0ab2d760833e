import Dispatch
import Testing

/// Runs each test case of a suite on a serial dispatch queue of its own instead of Swift's
/// cooperative thread pool (`withTaskExecutorPreference`).
///
/// The pool has one thread per core: two cores, two threads. A synchronous test that waits for a
/// child process, or polls with ``eventuallyBlocking(_:timeout:every:_:)``, holds one of them for
/// seconds; two such tests at once left the pool no thread at all, and the asynchronous tests
/// beside them (sessions over NIO, `Task.sleep`) stalled past their deadlines: "0 of 24 sessions
/// open", a 10 ms sleep that lasted the whole write phase. A serial queue's thread is not from
/// the pool (dispatch adds threads while they block), so a blocked test no longer starves others.
/// For tests that block (child processes, polling) and run nothing concurrent of their own: a
/// test's child tasks share its one queue, so one blocking on another would wait for ever.
/// (Unstructured `Task {}`s started by a test still run on the pool.)
public struct OwnThreadTrait: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        try await withTaskExecutorPreference(QueueTaskExecutor(label: test.name)) { try await function() }
    }

    /// Whether the caller runs on such a queue (for the trait's own test).
    public static var isCurrent: Bool { DispatchQueue.getSpecific(key: QueueTaskExecutor.key) != nil }
}

extension Trait where Self == OwnThreadTrait {
    /// Each test case on a thread of its own, off the cooperative pool (``OwnThreadTrait``).
    public static var ownThread: Self { OwnThreadTrait() }
}

/// A task executor running its jobs on a serial dispatch queue (not the cooperative pool).
final class QueueTaskExecutor: TaskExecutor {
    let queue: DispatchQueue

    static let key = DispatchSpecificKey<Bool>()

    init(label: String) {
        // Serial, so it has a thread of its own whenever it has work (dispatch's serial queues
        // overcommit); a concurrent queue shares the global pool, and in-process daemons of
        // asynchronous tests under this trait then stalled for minutes.
        queue = DispatchQueue(label: "saraban.test." + label)
        queue.setSpecific(key: Self.key, value: true)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { unowned.runSynchronously(on: executor) }
    }
}
