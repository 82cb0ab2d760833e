import NIOConcurrencyHelpers

/// One timer for every session of a process that ticks at the same interval, instead of one
/// sleeping task per session: a relay holds thousands of sessions, and each one's timer was a
/// task (its frame) and a wake-up of the dispatch timer thread every second.
///
/// A subscriber is called every `interval` (all of them in one pass, from one task) until it
/// returns false or is unsubscribed; the task runs only while someone is subscribed.
final class SharedTicker: Sendable {
    typealias Tick = @Sendable () -> Bool

    private struct State {
        var subscribers: [Int: Tick] = [:]
        var next = 0
        var running = false
    }

    private static let registry = NIOLockedValueBox([Duration: SharedTicker]())

    /// The ticker of `interval` (made on first use, kept for the process's life).
    static func shared(every interval: Duration) -> SharedTicker {
        registry.withLockedValue { r in
            if let t = r[interval] { return t }
            let t = SharedTicker(interval: interval)
            r[interval] = t
            return t
        }
    }

    let interval: Duration
    private let state = NIOLockedValueBox(State())

    init(interval: Duration) { self.interval = interval }

    /// Calls `tick` every interval from now on; returns the ticket for ``unsubscribe(_:)``.
    func subscribe(_ tick: @escaping Tick) -> Int {
        let (id, start) = state.withLockedValue { s -> (Int, Bool) in
            s.next += 1
            s.subscribers[s.next] = tick
            defer { s.running = true }
            return (s.next, !s.running)
        }
        if start { Task { await self.run() } }
        return id
    }

    func unsubscribe(_ id: Int) {
        state.withLockedValue { _ = $0.subscribers.removeValue(forKey: id) }
    }

    /// Subscribers now (tests).
    var count: Int { state.withLockedValue { $0.subscribers.count } }

    /// Whether the timer's task is running (tests).
    var isRunning: Bool { state.withLockedValue { $0.running } }

    private func run() async {
        while true {
            try? await Task.sleep(for: interval)
            if !tickOnce() { return }
        }
    }

    /// Ticks every subscriber once; returns false (and marks the timer stopped) when there is
    /// none, after which the next ``subscribe(_:)`` starts it again.
    func tickOnce() -> Bool {
        let subscribers = state.withLockedValue { s -> [Int: Tick]? in
            if s.subscribers.isEmpty {
                s.running = false
                return nil
            }
            return s.subscribers
        }
        guard let subscribers else { return false }
        var done: [Int] = []
        for (id, tick) in subscribers where !tick() { done.append(id) }
        if !done.isEmpty { state.withLockedValue { s in for id in done { s.subscribers[id] = nil } } }
        return true
    }
}
