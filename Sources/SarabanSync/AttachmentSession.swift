import SarabanCore
import SarabanCrypto

/// One chunk store's answer to ``AttachmentAction/loadHoldings(space:roots:)`` for one root.
public struct AttachmentHoldings: Hashable, Sendable {
    public var root: [UInt8]
    /// The manifest stored for `root`, if any.
    public var manifest: AttachmentManifest?
    /// The indices of the chunks stored (empty without a manifest).
    public var held: [Int]
    /// The store let this attachment go (a relay's retention, Docs/RELAY.md): it is not pulled
    /// again when a member offers it, and the offer is answered `missing`.
    public var retired: Bool

    public init(root: [UInt8], manifest: AttachmentManifest?, held: [Int], retired: Bool = false) {
        self.root = root
        self.manifest = manifest
        self.held = held
        self.retired = retired
    }
}

/// An attachment a fetch pulls (`saraban letter fetch`).
public struct AttachmentTarget: Hashable, Sendable {
    public var space: SpaceID
    public var root: [UInt8]
    /// The chunk count the letter lists: a manifest with another count is refused (nil: any).
    public var chunks: Int?

    public init(space: SpaceID, root: [UInt8], chunks: Int? = nil) {
        self.space = space
        self.root = root
        self.chunks = chunks
    }
}

/// Why a push or a fetch no longer holds its session (``AttachmentAction/settled(_:)``).
public enum AttachmentSettlement: Hashable, Sendable {
    /// A push: the peer answered every root offered, or there was nothing to offer it.
    case answered
    /// A fetch: every target is complete here or cannot come from this peer.
    case fetched
    /// Nothing was received or sent for the stall timeout; `waitingFor` roots were still
    /// unanswered (a push) or not over (a fetch).
    case stalled(waitingFor: Int)
    /// The session closed first.
    case closed
}

/// A manifest or chunk from the peer that failed its check: counted, never stored.
public struct AttachmentRefusal: Hashable, Sendable, CustomStringConvertible {
    public enum Reason: Hashable, Sendable {
        /// The manifest's hashes do not give the root it was sent for.
        case manifestDoesNotMatchRoot
        /// The manifest has another chunk count than the letter lists.
        case manifestChunkCount(expected: Int, got: Int)
        /// The chunk's BLAKE2b-256 is not the manifest's hash at its index.
        case chunkDoesNotMatchManifest
        /// The driver refused the chunk (on a member: authenticated decryption failed; or it
        /// could not be written).
        case chunkRefusedByStore(String)
    }

    public var space: SpaceID
    public var root: [UInt8]
    /// The chunk refused; nil for a manifest.
    public var index: Int?
    public var reason: Reason

    public var description: String {
        let what = index.map { "chunk \($0) of attachment \(Hex.encode(root))" } ?? "the manifest of attachment \(Hex.encode(root))"
        switch reason {
        case .manifestDoesNotMatchRoot: return "\(what) does not match its root; refused"
        case .manifestChunkCount(let e, let g): return "\(what) lists \(g) chunks, the letter \(e); refused"
        case .chunkDoesNotMatchManifest: return "\(what) does not match its manifest; refused"
        case .chunkRefusedByStore(let why): return "\(what) refused: \(why)"
        }
    }
}

/// What the driver must do after an input of an ``AttachmentSession``. Perform them in order;
/// each I/O action is answered by exactly one input (later is fine: other inputs may come between).
public enum AttachmentAction: Hashable, Sendable {
    /// Send this message to the peer (``SyncSession/sendAttachment(_:)``).
    case send(AttachmentMessage)
    /// Read the manifest stored for `root` (to serve a want); answer ``AttachmentSession/manifestLoaded(root:manifest:)``.
    case loadManifest(space: SpaceID, root: [UInt8])
    /// Read stored chunk `index` of `root`; answer ``AttachmentSession/chunkRead(root:index:bytes:)``.
    case readChunk(space: SpaceID, root: [UInt8], index: Int)
    /// For each root (to pull it): the manifest stored and the chunks held; answer
    /// ``AttachmentSession/holdingsLoaded(_:)`` once, with one entry per root.
    case loadHoldings(space: SpaceID, roots: [[UInt8]])
    /// Store this manifest (it matches its root: checked); answer
    /// ``AttachmentSession/manifestStored(root:held:)`` with the chunks already held, or
    /// ``AttachmentSession/manifestNotStored(root:reason:)``.
    case storeManifest(AttachmentManifest)
    /// Store chunk `index` of `root`: its hash is the manifest's (checked). On a member, first
    /// open it with the space key. Answer ``AttachmentSession/chunkStored(root:index:)`` or
    /// ``AttachmentSession/chunkRefused(root:index:reason:)``.
    case storeChunk(space: SpaceID, root: [UInt8], index: Int, bytes: [UInt8])
    /// List the roots held completely here in `spaces`, leaving out `excluding` (already offered);
    /// answer ``AttachmentSession/completeFound(_:)``.
    case findComplete(spaces: [SpaceID], excluding: Set<[UInt8]>)
    /// A manifest or chunk from the peer was refused (for the log; counted in ``AttachmentStats/rejected``).
    case refused(AttachmentRefusal)
    /// A push or fetch no longer needs the session (emitted once; never in serve mode).
    case settled(AttachmentSettlement)
}

/// Counters of one attachment session.
public struct AttachmentStats: Hashable, Sendable {
    /// Chunks received, checked and stored.
    public var chunksReceived = 0
    /// Manifests and chunks refused (not matching their root or manifest, or refused by the store).
    public var rejected = 0
    /// Roots offered to the peer.
    public var rootsOffered = 0
    /// Of a push's roots offered, those the peer (a relay) answered it holds completely.
    public var rootsConfirmed = 0
    /// Chunk messages sent (reported by ``AttachmentSession/sent(_:now:)``).
    public var chunksSent = 0
    /// Manifests, chunks and `missing`s about nothing asked (duplicated, late or unasked): dropped.
    public var ignored = 0

    public init() {}
}

/// The sans-IO state machine of one session's attachment-chunk exchange (Sync/PROTOCOL.md §13a),
/// beside the ``SyncSession`` whose `attachment` messages it reads and writes.
///
/// Like ``SyncSession`` it holds no socket, file, clock or random generator: time comes in as
/// ``SyncInstant``, messages in and out as ``AttachmentMessage``, and the chunk store is reached
/// through actions (``AttachmentAction``) whose results come back as inputs. It checks every
/// manifest against the root it was asked for and every chunk against that manifest before it
/// asks the driver to store it, so a driver only adds what needs a key (a member opens the chunk).
///
/// ```
/// var a = AttachmentSession(configuration: .init(role: .member, mode: .serve))
/// on SyncSession open:                perform(a.open(peerRole: hello.role, sharedSpaces: shared, now: clock.now))
/// on SyncAction.attachment(m):        perform(a.receive(m, now: clock.now))
/// on a message written:               perform(a.sent(m, now: clock.now))
/// on a timer (e.g. every 200 ms):     perform(a.tick(now: clock.now))
/// on .send(m):                        perform(syncSession.sendAttachment(m))
/// on .readChunk(s, root, i):          perform(a.chunkRead(root: root, index: i, bytes: store.chunk(root, i)))
/// on .storeChunk(s, root, i, bytes):  store.write(root, i, bytes); perform(a.chunkStored(root: root, index: i))
/// …                                   (every I/O action has its answer)
/// on the session's end:               perform(a.close())
/// ```
///
/// Modes: ``Mode/serve`` answers wants and, on a member whose peer is a relay, offers the roots
/// complete here at open and every ``Configuration/offerInterval``; ``Mode/push(stallTimeout:)``
/// (a one-shot sync) offers once and settles when the relay has answered every root or nothing
/// moved for the stall timeout; ``Mode/fetch(_:stallTimeout:)`` also pulls its targets and
/// settles when each is complete or given up. A relay pulls whatever a peer offers and answers a
/// member's offered roots.
public struct AttachmentSession: Sendable {
    public enum Mode: Hashable, Sendable {
        /// The daemon's sessions: answer wants, offer a relay what is complete here, now and later.
        case serve
        /// A one-shot sync: as serve, but offer once, then settle once the relay answered every
        /// offered root, or nothing was received or sent for `stallTimeout`.
        case push(stallTimeout: Duration)
        /// `letter fetch`: as serve, and pull `targets`; settle once each is complete here or
        /// cannot come from this peer, or nothing was received or sent for `stallTimeout`.
        case fetch([AttachmentTarget], stallTimeout: Duration)
    }

    public struct Configuration: Hashable, Sendable {
        /// This node's role.
        public var role: NodeRole
        public var mode: Mode
        /// Chunks asked for and not yet stored, across the session's pulls.
        public var window: Int
        /// Read no further chunk to send while this many chunk bytes are sent and not yet written.
        public var backlogLimit: Int
        /// How often a member looks for newly complete attachments to offer a relay (not in a push).
        public var offerInterval: Duration

        public init(
            role: NodeRole, mode: Mode = .serve, window: Int = 8, backlogLimit: Int = 4 << 20,
            offerInterval: Duration = .seconds(1)
        ) {
            self.role = role
            self.mode = mode
            self.window = max(window, 1)
            self.backlogLimit = max(backlogLimit, 0)
            self.offerInterval = offerInterval
        }
    }

    /// One root being pulled from the peer.
    struct Pull: Sendable {
        enum Phase: Sendable, Equatable {
            /// ``AttachmentAction/loadHoldings(space:roots:)`` asked.
            case loading
            /// No manifest here: a want for it is due.
            case needsManifest
            /// The manifest was asked for.
            case awaitingManifest
            /// The peer's manifest (checked) is being stored.
            case storingManifest
            /// Asking for the chunks not held.
            case pulling
            case complete
            /// The peer lacks it or sent something refused: not asked again in this session.
            case failed
        }

        var space: SpaceID
        var root: [UInt8]
        var expectedChunks: Int?
        var phase = Phase.loading
        var manifest: AttachmentManifest?
        var held = Set<Int>()
        /// Not held and not asked, descending (the next to ask is last).
        var needed: [Int] = []
        var outstanding = Set<Int>()
        /// Checked, handed to the driver, not yet stored.
        var storing = Set<Int>()
        /// The peer (a member) offered it: answer once it is over.
        var offered = false
        var answered = false

        var isOver: Bool { phase == .complete || phase == .failed }

        /// Holds `held` of `m`: pulling what is left, or complete.
        mutating func start(_ m: AttachmentManifest, held indices: [Int]) {
            manifest = m
            held = Set(indices.filter { m.hashes.indices.contains($0) })
            needed = m.hashes.indices.reversed().filter { !held.contains($0) }
            phase = needed.isEmpty ? .complete : .pulling
        }

        /// The chunks this node still lacks (all, as an empty list, without a manifest).
        var lacking: [Int] { manifest.map { m in m.hashes.indices.filter { !held.contains($0) } } ?? [] }
    }

    /// One want being answered.
    struct ServeJob: Sendable {
        var space: SpaceID
        var root: [UInt8]
        var wantsManifest: Bool
        var indices: [Int]
        var next = 0
        var manifest: AttachmentManifest?
        var lacking: [Int] = []
        /// The I/O asked and not yet answered.
        var waiting: Waiting?

        enum Waiting: Sendable, Equatable {
            case manifest
            case chunk(Int)
        }
    }

    enum Phase: Sendable, Equatable {
        case idle
        case open
        case closed
    }

    public let configuration: Configuration
    public private(set) var stats = AttachmentStats()
    /// Why a push or fetch settled, once it has (nil in serve mode).
    public private(set) var settlement: AttachmentSettlement?
    /// The peer's role, once open.
    public private(set) var peerRole: NodeRole?

    private var phase = Phase.idle
    private var shared = Set<SpaceID>()
    private var lastProgress = SyncInstant(nanoseconds: 0)
    // Offering.
    private var offered = Set<[UInt8]>()
    private var findPending = false
    private var nextOffer: SyncInstant?
    /// A push's roots offered and not yet answered.
    private var unanswered = Set<[UInt8]>()
    /// A push's one listing came back.
    private var pushListed = false
    // Pulling.
    private var pulls: [[UInt8]: Pull] = [:]
    private var pullOrder: [[UInt8]] = []
    // Serving.
    private var serveQueue: [ServeJob] = []
    private var serveHead = 0
    /// Chunk bytes sent and not yet reported written.
    public private(set) var backlog = 0
    /// The last manifest loaded to serve (wants for one root come in a row).
    private var servedManifest: AttachmentManifest?

    public init(configuration: Configuration) {
        self.configuration = configuration
    }

    // MARK: Observation

    public var isOpen: Bool { phase == .open }
    public var isClosed: Bool { phase == .closed }

    /// Chunks asked for or being stored, across the pulls (at most ``Configuration/window``).
    public var chunksInFlight: Int { pulls.values.reduce(0) { $0 + $1.outstanding.count + $1.storing.count } }

    /// Roots a push offered that the peer has not answered yet.
    public var unansweredRoots: Int { unanswered.count }

    /// Wants received and not yet fully answered (waiting for I/O or for the backlog to drain).
    public var wantsQueued: Int { serveQueue.count - serveHead }

    /// Whether `root` is being pulled, and how far.
    public func pullState(_ root: [UInt8]) -> (complete: Bool, failed: Bool, held: Int)? {
        pulls[root].map { ($0.phase == .complete, $0.phase == .failed, $0.held.count) }
    }

    private var isPush: Bool { if case .push = configuration.mode { true } else { false } }

    /// Whether ``tick(now:)`` can ever act in this open session: a member repeats its offers to a
    /// relay, a push or a fetch watches for a stall. A relay (or a member) only serving wants
    /// nothing from the clock, and its driver need not tick it (a relay holds thousands of such
    /// sessions: a timer each, five times a second, was most of what an idle one cost).
    public var wantsTicks: Bool { phase == .open && (nextOffer != nil || stallTimeout != nil) }

    private var stallTimeout: Duration? {
        switch configuration.mode {
        case .serve: nil
        case .push(let t), .fetch(_, let t): t
        }
    }

    // MARK: Inputs

    /// The sync session opened: the peer's role and the spaces both sides carry. Call once.
    public mutating func open(peerRole: NodeRole, sharedSpaces: [SpaceID], now: SyncInstant) -> [AttachmentAction] {
        guard phase == .idle else { return [] }
        var out: [AttachmentAction] = []
        phase = .open
        self.peerRole = peerRole
        shared = Set(sharedSpaces)
        lastProgress = now
        let offersToRelay = configuration.role == .member && peerRole == .relay
        if offersToRelay {
            findComplete(&out)
            if !isPush { nextOffer = now + configuration.offerInterval }
        } else if isPush {
            settle(.answered, &out)
        }
        if case .fetch(let targets, _) = configuration.mode {
            for space in sharedSpaces.sorted() {
                let roots = targets.filter { $0.space == space }.map(\.root)
                startPulls(space: space, roots: roots, offered: false, &out)
            }
        }
        pump(&out)
        return out
    }

    /// A message from the peer (in arrival order).
    public mutating func receive(_ message: AttachmentMessage, now: SyncInstant) -> [AttachmentAction] {
        guard phase == .open, shared.contains(message.space) else { return [] }
        var out: [AttachmentAction] = []
        lastProgress = now
        switch message {
        case .offer(let space, let roots):
            if configuration.role == .relay {
                startPulls(space: space, roots: roots, offered: true, &out)
            } else {
                // To a member, a relay's offer answers its own: the relay now holds these roots.
                answered(roots, held: true, &out)
            }
        case .want(let space, let root, let wantsManifest, let indices):
            serveQueue.append(ServeJob(space: space, root: root, wantsManifest: wantsManifest, indices: indices))
            serve(&out)
        case .manifest(let space, let root, let hashes):
            acceptManifest(space: space, root: root, hashes: hashes, &out)
        case .chunk(let space, let root, let index, let bytes):
            acceptChunk(space: space, root: root, index: index, bytes: bytes, &out)
        case .missing(let space, let root, let indices):
            var concerned = false
            // The peer lacks what this pull asked for: stop asking it.
            if var p = pulls[root], p.space == space, !p.isOver,
                indices.isEmpty ? p.phase == .awaitingManifest : indices.contains(where: p.outstanding.contains)
            {
                p.outstanding.subtract(indices)
                p.phase = .failed
                pulls[root] = p
                concerned = true
            }
            // To a member, the relay gave up on a root it offered.
            if configuration.role == .member && unanswered.contains(root) {
                answered([root], held: false, &out)
                concerned = true
            }
            if !concerned { stats.ignored += 1 }
        }
        pump(&out)
        return out
    }

    /// `message` (from a `.send`) was written to the connection: flow control and progress.
    public mutating func sent(_ message: AttachmentMessage, now: SyncInstant) -> [AttachmentAction] {
        if case .chunk(_, _, _, let bytes) = message {
            backlog = max(0, backlog - bytes.count)
            stats.chunksSent += 1
        }
        guard phase == .open else { return [] }
        lastProgress = max(lastProgress, now)
        var out: [AttachmentAction] = []
        serve(&out)
        return out
    }

    /// Time passes: newly complete roots are offered every ``Configuration/offerInterval``; a
    /// push or fetch that neither received nor sent anything for its stall timeout settles.
    public mutating func tick(now: SyncInstant) -> [AttachmentAction] {
        guard phase == .open else { return [] }
        var out: [AttachmentAction] = []
        if let next = nextOffer, now >= next, !findPending {
            findComplete(&out)
            nextOffer = now + configuration.offerInterval
        }
        if settlement == nil, let limit = stallTimeout, now.duration(since: lastProgress) > limit {
            let waiting = isPush ? unanswered.count : pulls.values.filter { !$0.isOver }.count
            settle(.stalled(waitingFor: waiting), &out)
        }
        return out
    }

    /// The session ended (bye, error, broken connection). Later inputs return nothing (I/O
    /// answers still count in ``stats``).
    public mutating func close() -> [AttachmentAction] {
        guard phase != .closed else { return [] }
        phase = .closed
        var out: [AttachmentAction] = []
        settle(.closed, &out)
        serveQueue = []
        serveHead = 0
        return out
    }

    // MARK: I/O answers

    /// The answer to `.loadManifest`: the manifest stored for `root`, or nil.
    public mutating func manifestLoaded(root: [UInt8], manifest: AttachmentManifest?) -> [AttachmentAction] {
        guard phase == .open, serveHead < serveQueue.count, serveQueue[serveHead].root == root,
            serveQueue[serveHead].waiting == .manifest
        else { return [] }
        var out: [AttachmentAction] = []
        serveQueue[serveHead].waiting = nil
        // Only a manifest that matches its root and the space asked about is served.
        if let m = manifest, m.space == serveQueue[serveHead].space, m.root == root {
            servedManifest = m
            serveQueue[serveHead].manifest = m
        } else {
            let job = serveQueue[serveHead]
            send(.missing(space: job.space, root: root, indices: []), &out)
            popServeJob()
        }
        serve(&out)
        return out
    }

    /// The answer to `.readChunk`: the stored chunk, or nil if it is not here.
    public mutating func chunkRead(root: [UInt8], index: Int, bytes: [UInt8]?) -> [AttachmentAction] {
        guard phase == .open, serveHead < serveQueue.count, serveQueue[serveHead].root == root,
            serveQueue[serveHead].waiting == .chunk(index)
        else { return [] }
        var out: [AttachmentAction] = []
        var job = serveQueue[serveHead]
        job.waiting = nil
        job.next += 1
        if let bytes, !bytes.isEmpty, bytes.count <= AttachmentMessage.maximumChunkByteCount {
            backlog += bytes.count
            send(.chunk(space: job.space, root: root, index: index, bytes: bytes), &out)
        } else {
            job.lacking.append(index)
        }
        serveQueue[serveHead] = job
        serve(&out)
        return out
    }

    /// The answer to `.loadHoldings`: one entry per root asked.
    public mutating func holdingsLoaded(_ holdings: [AttachmentHoldings]) -> [AttachmentAction] {
        guard phase == .open else { return [] }
        var out: [AttachmentAction] = []
        for h in holdings {
            guard var p = pulls[h.root], p.phase == .loading else { continue }
            if let m = h.manifest, m.space == p.space, m.root == h.root {
                p.start(m, held: h.held)
            } else if h.retired {
                p.phase = .failed
            } else {
                p.phase = .needsManifest
            }
            pulls[h.root] = p
        }
        pump(&out)
        return out
    }

    /// The answer to `.storeManifest`: stored, and these chunks of it were already held.
    public mutating func manifestStored(root: [UInt8], held: [Int]) -> [AttachmentAction] {
        guard phase == .open, var p = pulls[root], p.phase == .storingManifest, let m = p.manifest else { return [] }
        var out: [AttachmentAction] = []
        p.start(m, held: held)
        pulls[root] = p
        pump(&out)
        return out
    }

    /// The answer to `.storeManifest` when it could not be stored: the pull stops.
    public mutating func manifestNotStored(root: [UInt8], reason: String) -> [AttachmentAction] {
        guard phase == .open, var p = pulls[root], p.phase == .storingManifest else { return [] }
        var out: [AttachmentAction] = []
        p.phase = .failed
        pulls[root] = p
        pump(&out)
        return out
    }

    /// The answer to `.storeChunk`: the chunk is stored.
    public mutating func chunkStored(root: [UInt8], index: Int) -> [AttachmentAction] {
        guard var p = pulls[root], p.storing.remove(index) != nil else { return [] }
        stats.chunksReceived += 1
        p.held.insert(index)
        if let m = p.manifest, p.held.count == m.hashes.count { p.phase = .complete }
        pulls[root] = p
        guard phase == .open else { return [] }
        var out: [AttachmentAction] = []
        pump(&out)
        return out
    }

    /// The answer to `.storeChunk` when the driver refused the chunk (on a member: it does not
    /// open with the space key) or could not write it: counted as refused, and the pull stops.
    public mutating func chunkRefused(root: [UInt8], index: Int, reason: String) -> [AttachmentAction] {
        guard var p = pulls[root], p.storing.remove(index) != nil else { return [] }
        stats.rejected += 1
        if p.phase != .complete { p.phase = .failed }
        pulls[root] = p
        guard phase == .open else { return [] }
        var out: [AttachmentAction] = [
            .refused(AttachmentRefusal(space: p.space, root: root, index: index, reason: .chunkRefusedByStore(reason)))
        ]
        pump(&out)
        return out
    }

    /// The answer to `.findComplete`: the roots held completely here, by space.
    public mutating func completeFound(_ roots: [SpaceID: [[UInt8]]]) -> [AttachmentAction] {
        guard phase == .open, findPending else { return [] }
        findPending = false
        var out: [AttachmentAction] = []
        var fresh = 0
        for space in roots.keys.sorted() where shared.contains(space) {
            var new: [[UInt8]] = []
            for r in roots[space]! where offered.insert(r).inserted { new.append(r) }
            fresh += new.count
            if isPush { unanswered.formUnion(new) }
            offer(new, in: space, &out)
        }
        stats.rootsOffered += fresh
        if isPush {
            pushListed = true
            if unanswered.isEmpty { settle(.answered, &out) }
        }
        return out
    }

    // MARK: Offering

    /// Sends `roots` in offers of at most ``AttachmentMessage/maximumRoots``.
    private func offer(_ roots: [[UInt8]], in space: SpaceID, _ out: inout [AttachmentAction]) {
        var i = 0
        while i < roots.count {
            let n = min(AttachmentMessage.maximumRoots, roots.count - i)
            out.append(.send(.offer(space: space, roots: Array(roots[i..<i + n]))))
            i += n
        }
    }

    private mutating func findComplete(_ out: inout [AttachmentAction]) {
        findPending = true
        out.append(.findComplete(spaces: shared.sorted(), excluding: offered))
    }

    /// The peer (a relay) answered offered `roots`: it holds them (`held`) or gave up on them.
    private mutating func answered(_ roots: [[UInt8]], held: Bool, _ out: inout [AttachmentAction]) {
        guard isPush, settlement == nil else { return }
        for r in roots where unanswered.remove(r) != nil && held { stats.rootsConfirmed += 1 }
        if pushListed && unanswered.isEmpty { settle(.answered, &out) }
    }

    private mutating func settle(_ s: AttachmentSettlement, _ out: inout [AttachmentAction]) {
        guard settlement == nil, configuration.mode != .serve else { return }
        settlement = s
        out.append(.settled(s))
    }

    // MARK: Serving

    private func send(_ m: AttachmentMessage, _ out: inout [AttachmentAction]) { out.append(.send(m)) }

    private mutating func popServeJob() {
        serveHead += 1
        if serveHead == serveQueue.count {
            serveQueue.removeAll(keepingCapacity: true)
            serveHead = 0
        }
    }

    /// Answers the wants in order: the manifest if asked, each chunk held (one read at a time,
    /// none while the backlog is over its limit), then one `missing` for the rest.
    private mutating func serve(_ out: inout [AttachmentAction]) {
        while phase == .open, serveHead < serveQueue.count {
            var job = serveQueue[serveHead]
            if job.waiting != nil { return }
            guard let m = job.manifest else {
                if let cached = servedManifest, cached.root == job.root, cached.space == job.space {
                    job.manifest = cached
                    serveQueue[serveHead] = job
                    continue
                }
                serveQueue[serveHead].waiting = .manifest
                out.append(.loadManifest(space: job.space, root: job.root))
                return
            }
            if job.wantsManifest {
                send(.manifest(space: job.space, root: job.root, hashes: m.hashes), &out)
                job.wantsManifest = false
            }
            while job.next < job.indices.count, !m.hashes.indices.contains(job.indices[job.next]) {
                job.lacking.append(job.indices[job.next])
                job.next += 1
            }
            if job.next < job.indices.count {
                serveQueue[serveHead] = job
                if backlog > configuration.backlogLimit { return }
                let i = job.indices[job.next]
                serveQueue[serveHead].waiting = .chunk(i)
                out.append(.readChunk(space: job.space, root: job.root, index: i))
                return
            }
            if !job.lacking.isEmpty { send(.missing(space: job.space, root: job.root, indices: job.lacking), &out) }
            popServeJob()
        }
    }

    // MARK: Pulling

    /// Pulls `roots` unless already pulled in this session (then, when `offered`, answers the
    /// root again once it is over).
    private mutating func startPulls(space: SpaceID, roots: [[UInt8]], offered: Bool, _ out: inout [AttachmentAction]) {
        guard shared.contains(space) else { return }
        var load: [[UInt8]] = []
        for root in roots {
            if var p = pulls[root] {
                if offered && p.space == space {
                    p.offered = true
                    p.answered = false
                    pulls[root] = p
                }
                continue
            }
            var expected: Int?
            if case .fetch(let targets, _) = configuration.mode {
                expected = targets.first { $0.root == root && $0.space == space }?.chunks
            }
            pulls[root] = Pull(space: space, root: root, expectedChunks: expected, offered: offered)
            pullOrder.append(root)
            load.append(root)
        }
        if !load.isEmpty { out.append(.loadHoldings(space: space, roots: load)) }
    }

    private mutating func refuse(_ p: inout Pull, index: Int?, _ reason: AttachmentRefusal.Reason, _ out: inout [AttachmentAction]) {
        stats.rejected += 1
        if p.phase != .complete { p.phase = .failed }
        out.append(.refused(AttachmentRefusal(space: p.space, root: p.root, index: index, reason: reason)))
    }

    private mutating func acceptManifest(space: SpaceID, root: [UInt8], hashes: [[UInt8]], _ out: inout [AttachmentAction]) {
        guard var p = pulls[root], p.space == space, p.phase == .awaitingManifest else {
            stats.ignored += 1
            return
        }
        let m = AttachmentManifest(space: space, hashes: hashes)
        if m.root != root {
            refuse(&p, index: nil, .manifestDoesNotMatchRoot, &out)
        } else if let e = p.expectedChunks, e != hashes.count {
            refuse(&p, index: nil, .manifestChunkCount(expected: e, got: hashes.count), &out)
        } else {
            p.manifest = m
            p.phase = .storingManifest
            out.append(.storeManifest(m))
        }
        pulls[root] = p
    }

    private mutating func acceptChunk(space: SpaceID, root: [UInt8], index: Int, bytes: [UInt8], _ out: inout [AttachmentAction]) {
        // Only a chunk asked for (a duplicate or an unasked one is dropped), even after the pull
        // failed: what was asked still arrives, and a chunk that checks out is worth keeping.
        guard var p = pulls[root], p.space == space, p.outstanding.remove(index) != nil, let m = p.manifest else {
            stats.ignored += 1
            return
        }
        if m.matches(bytes, at: index) {
            p.storing.insert(index)
            out.append(.storeChunk(space: space, root: root, index: index, bytes: bytes))
        } else {
            refuse(&p, index: index, .chunkDoesNotMatchManifest, &out)
        }
        pulls[root] = p
    }

    /// Asks for manifests and, while the window allows, chunks; a relay answers a member's
    /// offered roots once they are over; a fetch settles once every pull is over.
    private mutating func pump(_ out: inout [AttachmentAction]) {
        guard phase == .open else { return }
        var inFlight = chunksInFlight
        let answers = configuration.role == .relay && peerRole == .member
        var held: [SpaceID: [[UInt8]]] = [:]
        var gaveUp: [AttachmentMessage] = []
        for root in pullOrder {
            guard var p = pulls[root] else { continue }
            switch p.phase {
            case .needsManifest:
                send(.want(space: p.space, root: root, manifest: true, indices: []), &out)
                p.phase = .awaitingManifest
            case .pulling:
                var take: [Int] = []
                while inFlight < configuration.window, !p.needed.isEmpty {
                    take.append(p.needed.removeLast())
                    inFlight += 1
                }
                if !take.isEmpty {
                    p.outstanding.formUnion(take)
                    send(.want(space: p.space, root: root, manifest: false, indices: take), &out)
                }
            default:
                break
            }
            if answers && p.offered && !p.answered && p.isOver && p.outstanding.isEmpty && p.storing.isEmpty {
                p.answered = true
                if p.phase == .complete {
                    held[p.space, default: []].append(root)
                } else {
                    gaveUp.append(.missing(space: p.space, root: root, indices: p.lacking))
                }
            }
            pulls[root] = p
        }
        for space in held.keys.sorted() { offer(held[space]!, in: space, &out) }
        for m in gaveUp { send(m, &out) }
        if case .fetch = configuration.mode, settlement == nil,
            pulls.values.allSatisfy({ $0.isOver && $0.storing.isEmpty })
        {
            settle(.fetched, &out)
        }
    }
}
