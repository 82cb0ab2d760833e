import Foundation
import GRDB

/// The store's `DatabasePool` behind a gate, so that closing the store is safe while other tasks
/// still use it (a daemon's services winding down, a web request in flight).
///
/// GRDB leaves using a pool during or after `close()` to the caller: a read that had already
/// picked its reader connection when the pool closed it went on into a closed SQLite handle and
/// crashed the process (seen in a test that closed a relay's node right after cancelling its
/// daemon). Here every operation enters the gate first: after ``close()`` has begun it fails
/// with ``StorageError/Code/closed`` instead, and ``close()`` waits for the operations already
/// inside before it closes the connections.
final class GatedPool: @unchecked Sendable {
    private let pool: DatabasePool
    private let path: String
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var inFlight = 0
    private var closing = false

    init(_ pool: DatabasePool, path: String) {
        self.pool = pool
        self.path = path
    }

    private func enter() throws(StorageError) {
        condition.lock()
        defer { condition.unlock() }
        guard !closing else {
            throw StorageError(
                .closed, "the database \(path) is closed; the node is stopping (open it again to go on)", path: path)
        }
        inFlight += 1
    }

    private func leave() {
        condition.lock()
        inFlight -= 1
        if inFlight == 0 { condition.broadcast() }
        condition.unlock()
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try enter()
        defer { leave() }
        return try pool.read(body)
    }

    func write<T>(_ body: (Database) throws -> T) throws -> T {
        try enter()
        defer { leave() }
        return try pool.write(body)
    }

    func writeWithoutTransaction<T>(_ body: (Database) throws -> T) throws -> T {
        try enter()
        defer { leave() }
        return try pool.writeWithoutTransaction(body)
    }

    /// Refuses new operations, waits (up to `timeout`) for those in flight, then checkpoints the
    /// WAL with `beforeClose` and closes the connections. Operations still running after the
    /// timeout leave the pool open (it is closed when the store is released) and this throws
    /// ``StorageError/Code/busy``. Closing twice is harmless.
    func close(timeout: TimeInterval = 30, beforeClose: (DatabasePool) -> Void) throws {
        condition.lock()
        let wasClosing = closing
        closing = true
        let deadline = Date(timeIntervalSinceNow: timeout)
        while inFlight > 0 {
            if !condition.wait(until: deadline) { break }
        }
        let stillBusy = inFlight
        condition.unlock()
        if wasClosing { return }
        guard stillBusy == 0 else {
            throw StorageError(
                .busy, "the database \(path) is still in use by \(stillBusy) operation(s); it closes when they end", path: path)
        }
        beforeClose(pool)
        try pool.close()
    }
}
