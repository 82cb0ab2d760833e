import Foundation
import Hummingbird
import NIOCore
import SarabanNode

/// One server-sent event (`GET /events`): a dispatch that arrived for this office, or a receipt
/// (received or returned) that came back for one of its letters.
struct LiveEvent: Sendable, Equatable {
    /// `dispatch` or `receipt`.
    var name: String
    /// The JSON object sent as the event's `data`.
    var data: [String: String]

    /// `event: NAME\ndata: {...}\n\n` (one line of JSON: the data has no newline after encoding).
    var wire: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? enc.encode(data)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return "event: \(name)\ndata: \(json)\n\n"
    }
}

/// Live updates for the inbox and letter pages. What the node holds is compared with what it held
/// at the last look whenever the store may have changed: the daemon's sync driver announces every
/// envelope stored (delivered by a peer, or written by this or another process on this data
/// directory: its poller notices those), and the web app's own writes call ``check()``. Without a
/// daemon (tests run the web app alone) the store's change probe is polled instead. Nothing is
/// looked at, and no task runs, while no browser listens.
final class LiveEvents: @unchecked Sendable {
    let node: Node
    let daemon: NodeDaemon?
    // Guards every var below.
    private let lock = NSLock()
    private var subscribers: [Int: AsyncStream<LiveEvent>.Continuation] = [:]
    private var nextID = 0
    /// The inbox's dispatch ids and the receipts' states (`dispatch → state`) at the last look.
    private var inbox: Set<String>?
    private var receipts: [String: String] = [:]
    /// Letters whose every recipient has answered (received or returned: final): not looked at again.
    private var settled: Set<String> = []
    private var dirty = false
    private var watcher: Task<Void, Never>?

    init(node: Node, daemon: NodeDaemon?) {
        self.node = node
        self.daemon = daemon
    }

    /// A new listener: every event from now on, until it stops iterating.
    func subscribe() -> AsyncStream<LiveEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: LiveEvent.self, bufferingPolicy: .bufferingNewest(64))
        lock.lock()
        let id = nextID
        nextID += 1
        subscribers[id] = continuation
        let start = watcher == nil
        if start { watcher = Task { [weak self] in await self?.watch() } }
        lock.unlock()
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            self.lock.lock()
            self.subscribers[id] = nil
            if self.subscribers.isEmpty {
                // The last page left: stop watching, and look afresh when one comes back.
                self.watcher?.cancel()
                self.watcher = nil
                self.inbox = nil
                self.receipts = [:]
                self.settled = []
            }
            self.lock.unlock()
        }
        if start { try? check() }
        return stream
    }

    var listeners: Int {
        lock.lock()
        defer { lock.unlock() }
        return subscribers.count
    }

    /// Marks the store as changed: the next tick looks (several announcements, one look).
    private func markDirty() {
        lock.lock()
        dirty = true
        lock.unlock()
    }

    private func takeDirty() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard dirty, !subscribers.isEmpty else { return false }
        dirty = false
        return true
    }

    /// Every 300 ms, looks when the store changed since the last look and a page listens. Changes
    /// are known from the sync driver's announcements (with a daemon) or the change probe (without).
    private func watch() async {
        let storage = daemon == nil ? try? node.envelopeStorage() : nil
        var last = try? storage?.changeProbe()
        let feeder: Task<Void, Never>? = daemon.map { d in
            Task { [weak self] in
                for await _ in d.localChanges() { self?.markDirty() }
            }
        }
        defer { feeder?.cancel() }
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(300))
            if let storage {
                let probe = try? storage.changeProbe()
                if probe != last {
                    last = probe
                    markDirty()
                }
            }
            if takeDirty() { try? check() }
        }
    }

    /// Compares the inbox and the receipts with the last look and tells every listener what is new.
    func check() throws {
        let items = try node.correspondence.inbox()
        var states: [String: (letter: String, office: String, state: String, number: String, reason: String)] = [:]
        lock.lock()
        let skip = settled
        lock.unlock()
        var nowSettled: Set<String> = []
        for v in try node.letters() where !v.deliveries.isEmpty && !skip.contains(v.id.description) {
            let all = try node.correspondence.deliveryStatus(v)
            if all.allSatisfy({ $0.state != .pending }) { nowSettled.insert(v.id.description) }
            for d in all {
                let key = d.delivery.dispatch + " " + d.delivery.office
                switch d.state {
                case .pending: continue
                case .received(let n, _, _, _):
                    states[key] = (v.id.description, d.delivery.office, "received", String(n), "")
                case .returned(let reason, _, _):
                    states[key] = (v.id.description, d.delivery.office, "returned", "", reason)
                }
            }
        }
        var events: [LiveEvent] = []
        lock.lock()
        let first = inbox == nil
        let before = inbox ?? []
        for i in items where !before.contains(i.dispatch.id.description) && !first {
            events.append(
                LiveEvent(
                    name: "dispatch",
                    data: [
                        "id": i.dispatch.id.description, "from": i.dispatch.office, "urgency": i.dispatch.urgency.rawValue,
                    ]))
        }
        inbox = Set(items.map { $0.dispatch.id.description })
        for (key, s) in states where receipts[key] != s.state && !first {
            events.append(
                LiveEvent(
                    name: "receipt",
                    data: ["letter": s.letter, "office": s.office, "state": s.state, "number": s.number, "reason": s.reason]))
        }
        receipts.merge(states.mapValues(\.state)) { _, new in new }
        settled.formUnion(nowSettled)
        let all = Array(subscribers.values)
        lock.unlock()
        for e in events {
            for c in all { c.yield(e) }
        }
    }
}

extension WebApp {
    /// `GET /events`: a `text/event-stream` of ``LiveEvent``s for a logged-in browser, with a comment
    /// every 15 s so proxies and the browser keep the connection. The page's script reloads the
    /// parts marked `data-live` when an event comes; without script the pages work by reload.
    func addLiveEvents(_ router: Router<WebContext>) {
        if options.relay { return }
        router.get("/events") { [self] _, context in
            guard case .session = context.web.principal else { throw WebError.unauthenticated }
            let stream = live.subscribe()
            let body = ResponseBody { writer in
                try await writer.write(ByteBuffer(string: "retry: 2000\n: connected\n\n"))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let (out, sink) = AsyncStream.makeStream(of: String.self)
                    group.addTask {
                        for await e in stream { sink.yield(e.wire) }
                        sink.finish()
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: .seconds(15))
                            sink.yield(": keep-alive\n\n")
                        }
                    }
                    for await text in out {
                        try await writer.write(ByteBuffer(string: text))
                    }
                    group.cancelAll()
                }
                try await writer.finish(nil)
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store"], body: body)
        }
    }
}

extension WebApp {
    /// The reading half of the correspondence pages and their API (Docs/WEB.md, "Pages").
    func addReadPages(_ router: Router<WebContext>) {
        addInbox(router)
        addRegisters(router)
        addLetters(router)
        addSyncStatus(router)
        addLiveEvents(router)
    }
}
