import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanSync
import SarabanTransport

/// The node's driver of one session's ``AttachmentSession`` (Sync/PROTOCOL.md §13a): it feeds the
/// state machine the session's inputs (opened, messages received and written, a tick every
/// ``tickInterval`` from the wall clock, closed) and performs its actions on the chunk files
/// under `attachments/<root>/`, opening a fetched chunk with the space key before it is stored
/// (the one check the machine cannot make without a key). What to offer, want, keep, answer and
/// when to settle is the machine's.
///
/// Actions are performed in the order the machine emitted them, one at a time, by one task at a
/// time (never the connection's own loop, which only reports ``sent(_:)``); ``received(_:)``
/// returns once everything the message caused is done, so the counters are final when the
/// connection's run returns.
final class AttachmentExchange: AttachmentHandler, @unchecked Sendable {
    /// How often the machine is ticked (offers every second, stall timeouts).
    static let tickInterval: Duration = .milliseconds(200)

    let node: Node
    /// Where manifests and chunks are kept (the node's files, or a relay's database).
    let store: any AttachmentStore
    let logger: Logger
    /// Fetch targets by root: their chunks are opened with the space key before they are stored.
    let refs: [[UInt8]: AttachmentRef]
    let onDone: @Sendable () -> Void
    let mode: AttachmentSession.Mode
    private let origin = ContinuousClock.now

    private let lock = NSLock()
    private var session: AttachmentSession
    /// Actions emitted and not yet performed, oldest first.
    private var queue: [AttachmentAction] = []
    private var queueHead = 0
    private var draining = false
    private var idleWaiters: [CheckedContinuation<Void, Never>] = []
    private var settleWaiters: [CheckedContinuation<Void, Never>] = []
    private var isClosed = false
    private var ticker: Task<Void, Never>?
    /// The connection's way to the peer (``sendOutgoing(through:)``); nil once closed.
    private var send: (@Sendable (AttachmentMessage) -> Void)?

    /// A serving exchange (the daemon's sessions), over the node's files unless `store` names
    /// another place (a relay's database).
    convenience init(node: Node, store: (any AttachmentStore)? = nil, logger: Logger) {
        self.init(node: node, store: store, mode: .serve, refs: [:], logger: logger, onDone: {})
    }

    /// A one-shot sync's exchange: serves wants, offers a relay once what is complete here, and
    /// settles (calling `onDone`) when the relay has answered every offered root, when there is
    /// nothing to offer or the peer is no relay, or when nothing came or went for `stallTimeout`
    /// (a relay that does not answer offers).
    convenience init(node: Node, pushingWithin stallTimeout: Duration, logger: Logger, onDone: @escaping @Sendable () -> Void) {
        self.init(node: node, mode: .push(stallTimeout: stallTimeout), refs: [:], logger: logger, onDone: onDone)
    }

    /// A fetching exchange: pulls `targets`, then calls `onDone` (also when nothing came or went
    /// for `stallTimeout`; then ``finished`` stays false).
    convenience init(
        node: Node, fetching targets: [(SpaceID, AttachmentRef)], stallTimeout: Duration, logger: Logger,
        onDone: @escaping @Sendable () -> Void
    ) {
        var refs: [[UInt8]: AttachmentRef] = [:]
        var wanted: [AttachmentTarget] = []
        for (space, ref) in targets {
            guard let root = Hex.decode(ref.root), root.count == AttachmentMessage.hashByteCount else { continue }
            refs[root] = ref
            wanted.append(AttachmentTarget(space: space, root: root, chunks: ref.chunks))
        }
        self.init(
            node: node, mode: .fetch(wanted, stallTimeout: stallTimeout), refs: refs, logger: logger, onDone: onDone)
    }

    private init(
        node: Node, store: (any AttachmentStore)? = nil, mode: AttachmentSession.Mode, refs: [[UInt8]: AttachmentRef],
        logger: Logger, onDone: @escaping @Sendable () -> Void
    ) {
        self.node = node
        self.store = store ?? DirectoryAttachmentStore(node: node)
        self.refs = refs
        self.logger = logger
        self.onDone = onDone
        self.mode = mode
        session = AttachmentSession(configuration: .init(role: node.role, mode: mode))
    }

    /// Chunks received (checked and stored) and refused.
    var counts: (received: Int, rejected: Int) { lock.withLock { (session.stats.chunksReceived, session.stats.rejected) } }

    /// A fetch: every target is complete or cannot come from this peer.
    var finished: Bool { lock.withLock { session.settlement == .fetched } }

    /// A push's roots offered, those the relay said it now holds completely, and chunks sent.
    var pushCounts: (offered: Int, confirmed: Int, chunksSent: Int) {
        lock.withLock { (session.stats.rootsOffered, session.stats.rootsConfirmed, session.stats.chunksSent) }
    }

    private var now: SyncInstant {
        let c = (ContinuousClock.now - origin).components
        return SyncInstant(nanoseconds: UInt64(max(c.seconds, 0)) * 1_000_000_000 + UInt64(max(c.attoseconds, 0) / 1_000_000_000))
    }

    // MARK: AttachmentHandler

    func opened(role: NodeRole, sharedSpaces: [SpaceID]) async {
        let t = now
        input { $0.open(peerRole: role, sharedSpaces: sharedSpaces, now: t) }
        // A ticker only for a session whose machine acts on the clock (offers, stall timeouts).
        if lock.withLock({ session.wantsTicks && !isClosed }) {
            let ticker = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.tickInterval)
                    guard let self, !Task.isCancelled else { return }
                    let t = self.now
                    self.input { $0.tick(now: t) }
                }
            }
            let closed = lock.withLock {
                if !isClosed { self.ticker = ticker }
                return isClosed
            }
            if closed { ticker.cancel() }
        }
        await idle()
    }

    func received(_ message: AttachmentMessage) async {
        let t = now
        input { $0.receive(message, now: t) }
        await idle()
    }

    func sendOutgoing(through send: @escaping @Sendable (AttachmentMessage) -> Void) {
        lock.withLock { if !isClosed { self.send = send } }
    }

    func sent(_ message: AttachmentMessage) {
        let t = now
        input { $0.sent(message, now: t) }
    }

    func closed() {
        let (ticker, waiters) = lock.withLock { () -> (Task<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            isClosed = true
            send = nil
            defer { settleWaiters = [] }
            return (self.ticker, settleWaiters)
        }
        ticker?.cancel()
        input { $0.close() }
        for w in waiters { w.resume() }
    }

    /// Returns at once except in a push, which returns once it settled (or the session closed).
    func settled() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                guard case .push = mode, session.settlement == nil, !isClosed else { return true }
                settleWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    // MARK: Performing the machine's actions

    /// Applies one input to the machine and queues its actions; starts a task performing them
    /// unless one is running.
    private func input(_ apply: (inout AttachmentSession) -> [AttachmentAction]) {
        let start = lock.withLock { () -> Bool in
            queue += apply(&session)
            guard !draining, queueHead < queue.count else { return false }
            draining = true
            return true
        }
        if start { Task { await self.drain() } }
    }

    /// Returns once every queued action is performed.
    private func idle() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if !draining && queueHead >= queue.count { return true }
                idleWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    private func drain() async {
        while true {
            let (next, waiters) = lock.withLock { () -> (AttachmentAction?, [CheckedContinuation<Void, Never>]) in
                if queueHead < queue.count {
                    let action = queue[queueHead]
                    queueHead += 1
                    if queueHead == queue.count {
                        queue.removeAll(keepingCapacity: true)
                        queueHead = 0
                    }
                    return (action, [])
                }
                draining = false
                defer { idleWaiters = [] }
                return (nil, idleWaiters)
            }
            guard let action = next else {
                for w in waiters { w.resume() }
                return
            }
            await perform(action)
        }
    }

    /// An I/O action's answer, applied at once (its actions join the queue).
    private func answer(_ apply: (inout AttachmentSession) -> [AttachmentAction]) {
        lock.withLock { queue += apply(&session) }
    }

    private func perform(_ action: AttachmentAction) async {
        switch action {
        case .send(let m):
            lock.withLock { send }?(m)
        case .loadManifest(_, let root):
            let m = await attempt("read an attachment manifest", root) { try await store.manifestToServe(root: root) } ?? nil
            answer { $0.manifestLoaded(root: root, manifest: m) }
        case .readChunk(_, let root, let index):
            let bytes = await attempt("read an attachment chunk", root) { try await store.readChunk(root: root, index: index) } ?? nil
            answer { $0.chunkRead(root: root, index: index, bytes: bytes) }
        case .loadHoldings(_, let roots):
            var holdings: [AttachmentHoldings] = []
            for root in roots {
                let m = await attempt("read an attachment manifest", root) { try await store.manifest(root: root) } ?? nil
                var held: [Int] = []
                var retired = false
                if let m {
                    held = await attempt("list an attachment's chunks", root) { try await store.heldChunks(root: root, count: m.hashes.count) } ?? []
                } else {
                    retired = await attempt("check whether an attachment was retired", root) { try await store.isRetired(root: root) } ?? false
                }
                holdings.append(AttachmentHoldings(root: root, manifest: m, held: held, retired: retired))
            }
            answer { $0.holdingsLoaded(holdings) }
        case .storeManifest(let m):
            do {
                try await store.storeManifest(m)
                let held = try await store.heldChunks(root: m.root, count: m.hashes.count)
                answer { $0.manifestStored(root: m.root, held: held) }
            } catch {
                logger.error("cannot store an attachment manifest: \(error)", metadata: ["root": "\(m.rootHex)"])
                answer { $0.manifestNotStored(root: m.root, reason: "\(error)") }
            }
        case .storeChunk(_, let root, let index, let bytes):
            do {
                try open(bytes, root: root, index: index)
                try await store.writeChunk(bytes, root: root, index: index)
                answer { $0.chunkStored(root: root, index: index) }
            } catch let error as NodeError {
                answer { $0.chunkRefused(root: root, index: index, reason: error.message) }
            } catch {
                answer { $0.chunkRefused(root: root, index: index, reason: "\(error)") }
            }
        case .findComplete(let spaces, let excluding):
            let found = await attempt("list complete attachments", nil) {
                try await store.completeRoots(in: Set(spaces), excluding: Set(excluding))
            } ?? [:]
            answer { $0.completeFound(found) }
        case .refused(let r):
            logger.warning(
                "refused an attachment \(r.index == nil ? "manifest" : "chunk"): \(r)",
                metadata: ["root": "\(Hex.encode(r.root))", "index": "\(r.index.map(String.init) ?? "-")"])
        case .settled(let s):
            if case .stalled(let n) = s, case .push(let limit) = mode {
                logger.notice(
                    "the relay did not answer \(n) offered attachment(s) within \(limit); hanging up (it may not answer offers)")
            }
            let waiters = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
                defer { settleWaiters = [] }
                return settleWaiters
            }
            for w in waiters { w.resume() }
            onDone()
        }
    }

    /// On a member, a fetched chunk must open with the space key (authenticated decryption).
    private func open(_ bytes: [UInt8], root: [UInt8], index: Int) throws(NodeError) {
        guard let ref = refs[root], let hash = Hex.decode(ref.hash), let key = try? node.key(forReference: ref.key) else {
            return
        }
        _ = try Node.openChunk(bytes, key: key, hash: hash, index: index, count: ref.chunks, name: ref.name)
    }

    /// `body`'s answer, or nil when the store failed (logged; the machine then treats the item as
    /// not held, and the peer asks again in a later session).
    private func attempt<T>(_ what: String, _ root: [UInt8]?, _ body: () async throws -> T) async -> T? {
        do { return try await body() } catch {
            logger.warning("cannot \(what): \(error)", metadata: ["root": "\(root.map(Hex.encode) ?? "-")"])
            return nil
        }
    }
}
