import NIOConcurrencyHelpers

/// Bytes read from a connection that its session has not taken yet, bounded (backpressure from
/// the session driver to the reader).
///
/// The reader ``add(_:)``s each chunk it hands to the driver and then waits in
/// ``waitForRoom()`` while the bytes held reach ``limit``; the driver ``release(_:)``s a chunk
/// once the session has taken it and its actions are done (its writes included). So while the
/// driver waits on a peer that does not read what it is sent, the reader stops too: it no longer
/// asks NIO for data, NIO stops reading the socket once its own small buffer is full, the kernel's
/// receive buffer fills and TCP flow control holds the sender back. Nothing is dropped; what the
/// connection holds stays bounded whatever the peer sends.
final class ReceiveBudget: Sendable {
    private struct State {
        var held = 0
        var peak = 0
        var closed = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    /// The bytes held at which the reader stops (it may go over by the one chunk that reached it).
    let limit: Int
    private let state = NIOLockedValueBox(State())

    init(limit: Int) { self.limit = max(limit, 1) }

    /// The most bytes held at once so far.
    var peak: Int { state.withLockedValue { $0.peak } }

    /// The reader handed `count` bytes to the driver.
    func add(_ count: Int) {
        state.withLockedValue {
            $0.held += count
            $0.peak = max($0.peak, $0.held)
        }
    }

    /// The session took `count` bytes added before.
    func release(_ count: Int) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLockedValue { s in
            s.held -= count
            guard s.held < limit, let w = s.waiter else { return nil }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    /// Whether the driver has ended (nothing more will be taken).
    var isClosed: Bool { state.withLockedValue { $0.closed } }

    /// Whether the reader must wait before reading more.
    var isFull: Bool { state.withLockedValue { !$0.closed && $0.held >= limit } }

    /// Returns once fewer than ``limit`` bytes are held, the budget is closed, or the task is
    /// cancelled.
    func waitForRoom() async {
        if !isFull { return }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { s -> Bool in
                    if s.closed || s.held < limit { return true }
                    s.waiter = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            close()
        }
    }

    /// The driver has ended: the reader never waits again.
    func close() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLockedValue { s in
            s.closed = true
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume()
    }
}
