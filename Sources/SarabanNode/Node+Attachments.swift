import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanSync
import SarabanTransport
#if canImport(Glibc)
import Glibc
#endif

/// The BLAKE2b-256 of each encrypted chunk of an attachment, in order, and the space it belongs
/// to: what a relay checks chunks against without a key. Stored as `attachments/<root>/manifest`.
public struct AttachmentManifest: Hashable, Sendable {
    /// The space whose key sealed the chunks; nil for node-local attachments (never synced).
    public var space: SpaceID?
    public var hashes: [[UInt8]]

    public init(space: SpaceID?, hashes: [[UInt8]]) {
        self.space = space
        self.hashes = hashes
    }

    static let magic = Array("SRBNMAN1".utf8)

    /// BLAKE2b-256 of `SRBN-ATTACHMENT-ROOT-V1 ‖ space (16 bytes, zero if none) ‖ count (u32 BE) ‖ hashes`.
    public var root: [UInt8] {
        var b = Array("SRBN-ATTACHMENT-ROOT-V1".utf8)
        b += space?.bytes ?? [UInt8](repeating: 0, count: SpaceID.byteCount)
        b += Self.u32(hashes.count)
        for h in hashes { b += h }
        return (try? BLAKE2b.hash(b, outputLength: 32)) ?? []
    }

    public var rootHex: String { Hex.encode(root) }

    static func u32(_ n: Int) -> [UInt8] {
        [UInt8(n >> 24 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
    }

    /// `magic ‖ space ‖ count ‖ hashes`.
    var fileBytes: [UInt8] {
        var b = Self.magic + (space?.bytes ?? [UInt8](repeating: 0, count: SpaceID.byteCount)) + Self.u32(hashes.count)
        for h in hashes { b += h }
        return b
    }

    init?(fileBytes b: [UInt8]) {
        let head = Self.magic.count + SpaceID.byteCount + 4
        guard b.count >= head, Array(b[..<Self.magic.count]) == Self.magic else { return nil }
        let s = Array(b[Self.magic.count..<Self.magic.count + SpaceID.byteCount])
        let n = b[head - 4..<head].reduce(0) { $0 << 8 | Int($1) }
        guard n >= 1, b.count == head + n * 32 else { return nil }
        space = s.allSatisfy { $0 == 0 } ? nil : SpaceID(bytes: s)
        hashes = (0..<n).map { Array(b[head + $0 * 32..<head + $0 * 32 + 32]) }
    }
}

/// What this node holds of one attachment of a letter (`letter show`, `letter fetch`).
public struct AttachmentStatus: Sendable, Encodable, Hashable {
    public var hash: String
    public var name: String
    public var size: Int
    public var chunks: Int
    public var held: Int
    public var root: String
    /// Every chunk is here: `letter extract` works offline.
    public var complete: Bool { held == chunks }

    enum CodingKeys: String, CodingKey { case hash, name, size, chunks, held, root, complete }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hash, forKey: .hash)
        try c.encode(name, forKey: .name)
        try c.encode(size, forKey: .size)
        try c.encode(chunks, forKey: .chunks)
        try c.encode(held, forKey: .held)
        try c.encode(root, forKey: .root)
        try c.encode(complete, forKey: .complete)
    }

    init(_ a: AttachmentRef, held: Int) {
        hash = a.hash
        name = a.name
        size = a.size
        chunks = a.chunks
        self.held = held
        root = a.root
    }
}

/// How fetching from one peer went (`saraban letter fetch`).
public struct AttachmentFetchResult: Sendable, Codable {
    public var peer: String
    public var nodeID: String
    /// Chunks received, verified and stored.
    public var chunksReceived = 0
    /// Chunks (or manifests) refused: not matching the manifest, or failing authenticated decryption.
    public var rejected = 0
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case peer, error, rejected
        case nodeID = "node_id"
        case chunksReceived = "chunks_received"
    }
}

extension Node {
    // MARK: - Chunk store (members and relays alike)

    /// BLAKE2b-256 of one stored chunk (nonce ‖ ciphertext).
    static func chunkHash(_ sealed: [UInt8]) throws(NodeError) -> [UInt8] {
        do { return try BLAKE2b.hash(sealed, outputLength: 32) } catch { throw NodeError(.io, "\(error)") }
    }

    func attachmentDirectory(root: String) -> String { attachmentsDirectory + "/" + root }

    /// Writes `bytes` to `path` through a temporary file and a rename (a crash leaves the old file or the new one).
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(NodeError) {
        let tmp = path + ".tmp.\(getpid())"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(bytes), attributes: [.posixPermissions: 0o600]),
            rename(tmp, path) == 0
        else {
            try? FileManager.default.removeItem(atPath: tmp)
            throw NodeError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    func storeManifest(_ m: AttachmentManifest) throws(NodeError) {
        let dir = attachmentDirectory(root: m.rootHex)
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw NodeError(.io, "cannot create \(dir): \(error.localizedDescription)")
        }
        if FileManager.default.fileExists(atPath: dir + "/manifest") { return }
        try Self.writeAtomically(m.fileBytes, to: dir + "/manifest")
    }

    /// The manifest stored for `root` (hex), if it is here and matches its root.
    func manifest(root: String) -> AttachmentManifest? {
        guard let d = FileManager.default.contents(atPath: attachmentDirectory(root: root) + "/manifest"),
            let m = AttachmentManifest(fileBytes: [UInt8](d)), m.rootHex == root
        else { return nil }
        return m
    }

    /// Stores chunk `index` of `m` after checking it against the manifest (a relay cannot do more).
    func storeChunk(_ sealed: [UInt8], index: Int, of m: AttachmentManifest) throws(NodeError) {
        guard index >= 0, index < m.hashes.count else {
            throw NodeError(.invalidFile, "chunk \(index) is beyond the \(m.hashes.count) chunks of attachment \(m.rootHex)")
        }
        guard try Self.chunkHash(sealed) == m.hashes[index] else {
            throw NodeError(.invalidFile, "chunk \(index) of attachment \(m.rootHex) does not match its manifest; refused")
        }
        let path = attachmentDirectory(root: m.rootHex) + "/\(index)"
        if FileManager.default.fileExists(atPath: path) { return }
        try Self.writeAtomically(sealed, to: path)
    }

    func readChunk(root: String, index: Int) -> [UInt8]? {
        FileManager.default.contents(atPath: attachmentDirectory(root: root) + "/\(index)").map { [UInt8]($0) }
    }

    /// Indices of the chunks of `m` not held here.
    func missingChunks(_ m: AttachmentManifest) -> [Int] {
        chunkIndices(in: attachmentDirectory(root: m.rootHex), count: m.hashes.count, held: false)
    }

    /// The indices below `count` whose chunk file is (`held`) or is not in `dir`.
    func chunkIndices(in dir: String, count: Int, held: Bool) -> [Int] {
        (0..<count).filter { FileManager.default.fileExists(atPath: dir + "/\($0)") == held }
    }

    // MARK: - Status

    /// What this node holds of each attachment of the letter.
    public func attachmentStatus(_ id: DocID) throws(NodeError) -> [AttachmentStatus] {
        attachmentStatus(try letter(id).attachments)
    }

    /// What this node holds of each of `refs`.
    func attachmentStatus(_ refs: [AttachmentRef]) -> [AttachmentStatus] {
        refs.map { AttachmentStatus($0, held: attachmentChunksPresent($0).count) }
    }

    /// The letter's attachments matching `hash` (a prefix of the content hash or of the root; all when nil).
    func attachments(of id: DocID, matching hash: String?) throws(NodeError) -> [AttachmentRef] {
        let all = try letter(id).attachments
        guard let h = hash?.lowercased(), !h.isEmpty else { return all }
        let found = all.filter { $0.hash.hasPrefix(h) || (!$0.root.isEmpty && $0.root.hasPrefix(h)) }
        guard !found.isEmpty else {
            throw NodeError(
                .unknownDocument,
                "the letter has no attachment \(h); `saraban letter show \(id)` lists its attachments")
        }
        return found
    }

    // MARK: - Fetching

    /// The space an attachment's chunks were sealed in, from its key reference: `space:SPACE:…`
    /// (a letter's space key) or `dispatch:SPACE:DOC` (a dispatch's key); nil for node-local ones.
    static func attachmentSpace(_ a: AttachmentRef) -> SpaceID? {
        let p = a.key.split(separator: ":")
        guard p.count == 3, p[0] == "space" || p[0] == "dispatch", let b = Hex.decode(String(p[1])) else { return nil }
        return SpaceID(bytes: b)
    }

    /// Fetches the missing chunks of the letter's attachments (those matching `hash`) from
    /// `peers` (all configured peers when nil), one peer after another until every one is
    /// complete. Chunks already held are never asked for again, so a broken transfer resumes
    /// where it stopped. Each chunk is checked against the manifest committed by the letter's
    /// root and opened with the space key before it is stored. Returns each peer's result and
    /// what this node now holds of those attachments (the letter is read once, when it starts).
    public func fetchAttachments(
        _ id: DocID, hash: String? = nil, storage: any EnvelopeStorage, peers only: [ConfiguredPeer]? = nil,
        options: ServeOptions = ServeOptions(), stallTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "saraban.attachments")
    ) async throws -> (results: [AttachmentFetchResult], status: [AttachmentStatus]) {
        let refs = try attachments(of: id, matching: hash)
        var wanted: [(SpaceID, AttachmentRef)] = []
        for a in refs where attachmentChunksPresent(a).count < a.chunks {
            guard !a.root.isEmpty, let space = Self.attachmentSpace(a) else {
                throw NodeError(
                    .refused,
                    "\(a.name) was sealed with the node-local key of the office that attached it and cannot be fetched; "
                        + "ask it to attach the file again to a letter in a shared space")
            }
            wanted.append((space, a))
        }
        var results: [AttachmentFetchResult] = []
        if !wanted.isEmpty {
            let settings = try syncSettings()
            let peers = only ?? settings.peers
            guard !peers.isEmpty else {
                throw NodeError(
                    .unreachable,
                    "no peers to fetch from; add one with `saraban peer add NODE_ID HOST:PORT` (a relay carrying the space, or a member)")
            }
            let transport = dialTransport(
                settings: settings, dialling: peers, members: try storage.memberNodeIDs(),
                configuration: options.transport, logger: logger)
            let driver = NodeSyncDriver(storage: storage, logger: logger)
            for peer in peers {
                let targets = wanted.filter { attachmentChunksPresent($0.1).count < $0.1.chunks }
                if targets.isEmpty { break }
                let hangUp = HangUp()
                let exchange = AttachmentExchange(node: self, fetching: targets, logger: logger, onDone: { hangUp.fire() })
                let connection = PeerConnection(
                    store: FetchingDriver(inner: driver, exchange: exchange),
                    configuration: .init(role: storage.role, limits: options.limits), logger: logger)
                var result = AttachmentFetchResult(peer: peer.label, nodeID: peer.nodeID.text)
                let watchdog = Task {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(200))
                        if exchange.stalled(for: stallTimeout) {
                            hangUp.fire()
                            break
                        }
                    }
                }
                do {
                    let report = try await transport.run(connection, with: peer, hangUp: hangUp)
                    if !exchange.finished {
                        result.error = NetworkFailure.isRefusal(report)
                            ? NetworkFailure.refusal(peer: peer.label, address: peer.address, me: nodeID) : report.failure
                    }
                } catch {
                    result.error = NetworkFailure.describe(
                        error, peer: peer.label, address: peer.address, configuration: options.transport)
                }
                watchdog.cancel()
                let (got, bad) = exchange.counts
                result.chunksReceived = got
                result.rejected = bad
                results.append(result)
            }
        }
        return (results, attachmentStatus(refs))
    }
}

/// A ``NodeSyncDriver`` that runs one given attachment exchange (a fetch) on its connection.
struct FetchingDriver: SyncStoreDriver {
    let inner: NodeSyncDriver
    let exchange: AttachmentExchange

    func carriedSpaces(for peer: NodeID) async throws -> [SpaceID: FeedVector] { try await inner.carriedSpaces(for: peer) }
    func fetch(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (envelopes: [Envelope], complete: Bool) {
        try await inner.fetch(space: space, after: after, limit: limit)
    }
    func deliver(space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey) async throws -> FeedVector {
        try await inner.deliver(space: space, envelopes: envelopes, from: peer)
    }
    func localChanges() -> AsyncStream<StoredEnvelopes> { inner.localChanges() }
    func attachmentHandler(for peer: NodeID) -> (any AttachmentHandler)? { exchange }
}

/// One session's attachment-chunk exchange (Sync/PROTOCOL.md, "Attachment chunks").
///
/// Every node answers `want`s from what it holds. A member offers the roots it holds
/// completely to a relay when a session with it opens; a relay pulls what it lacks of every
/// offer (so it can serve members while the attaching office is offline); a member pulls only
/// the attachments it was asked to fetch (lazily: `saraban letter fetch`). Pulls keep at
/// most ``window`` chunks outstanding, skip chunks already held (resuming a broken transfer) and
/// check each chunk against the manifest (and, on a member, decrypt it) before storing it. A
/// relay answers each root a member offered once it holds it completely (an `offer` back) or
/// gives up on it (`missing`), so a one-shot sync's exchange (``init(node:pushingWithin:logger:onDone:)``)
/// knows when it may hang up.
final class AttachmentExchange: AttachmentHandler, @unchecked Sendable {
    struct Pull {
        var space: SpaceID
        var root: [UInt8]
        var ref: AttachmentRef?
        var manifest: AttachmentManifest?
        var askedManifest = false
        var needed: [Int] = []
        var outstanding = Set<Int>()
        /// This peer lacks it, or sent something that failed the checks: stop asking it.
        var failed = false
        /// The peer (a member) offered it: answer once it is complete here or the pull failed.
        var offered = false
        var answered = false
        var done: Bool { failed || (manifest != nil && needed.isEmpty && outstanding.isEmpty) }
    }

    /// Chunks requested and not yet answered, per session.
    static let window = 8
    /// Stop reading `want`s while this many chunk bytes wait to be written.
    static let backlogLimit = 4 << 20

    let node: Node
    let logger: Logger
    let targets: [(SpaceID, AttachmentRef)]
    let fetchMode: Bool
    /// A one-shot sync's push: how long the relay may stay silent before the exchange settles anyway.
    let pushStallTimeout: Duration?
    let onDone: @Sendable () -> Void
    let outgoing: AsyncStream<AttachmentMessage>
    private let sink: AsyncStream<AttachmentMessage>.Continuation
    private let lock = NSLock()
    private var shared = Set<SpaceID>()
    private var pulls: [[UInt8]: Pull] = [:]
    private var pullOrder: [[UInt8]] = []
    private var backlog = 0
    private var received = 0
    private var rejected = 0
    private var doneFired = false
    /// Attachment directories (root hex) offered in this session or of a space not shared: not read again.
    private var settled = Set<String>()
    private var offerTask: Task<Void, Never>?
    /// How often a member looks for newly complete attachments to offer a relay.
    static let offerInterval: Duration = .seconds(1)
    private var lastProgress = ContinuousClock.now
    private var peerRole = NodeRole.member
    /// Roots offered to a relay by a push and not yet answered (held, or given up).
    private var unanswered = Set<[UInt8]>()
    private var offeredCount = 0
    private var confirmedCount = 0
    private var chunksSent = 0
    /// Nothing holds the session open any more (always, except for a push still waiting).
    private var isSettled: Bool
    private var settleWaiters: [CheckedContinuation<Void, Never>] = []
    private var watchdog: Task<Void, Never>?

    /// A serving exchange (the daemon's sessions).
    convenience init(node: Node, logger: Logger) {
        self.init(node: node, fetching: [], fetchMode: false, logger: logger, onDone: {})
    }

    /// A one-shot sync's exchange: serves wants, offers a relay once what is complete here, and
    /// settles (calling `onDone`) when the relay has answered every offered root, when there is
    /// nothing to offer or the peer is no relay, or when nothing came or went for `stallTimeout`
    /// (a relay that does not answer offers).
    convenience init(node: Node, pushingWithin stallTimeout: Duration, logger: Logger, onDone: @escaping @Sendable () -> Void) {
        self.init(node: node, fetching: [], fetchMode: false, push: stallTimeout, logger: logger, onDone: onDone)
    }

    /// A fetching exchange: pulls `targets`, then calls `onDone`.
    convenience init(
        node: Node, fetching targets: [(SpaceID, AttachmentRef)], logger: Logger, onDone: @escaping @Sendable () -> Void
    ) {
        self.init(node: node, fetching: targets, fetchMode: true, logger: logger, onDone: onDone)
    }

    private init(
        node: Node, fetching targets: [(SpaceID, AttachmentRef)], fetchMode: Bool, push: Duration? = nil, logger: Logger,
        onDone: @escaping @Sendable () -> Void
    ) {
        self.node = node
        self.targets = targets
        self.fetchMode = fetchMode
        pushStallTimeout = push
        isSettled = push == nil
        self.logger = logger
        self.onDone = onDone
        (outgoing, sink) = AsyncStream.makeStream(of: AttachmentMessage.self)
    }

    var counts: (received: Int, rejected: Int) { lock.withLock { (received, rejected) } }

    /// Every target is complete or cannot come from this peer.
    var finished: Bool { lock.withLock { doneFired } }

    func stalled(for limit: Duration) -> Bool { lock.withLock { !doneFired && ContinuousClock.now - lastProgress > limit } }

    /// A push's roots offered, those the relay said it now holds completely, and chunks sent.
    var pushCounts: (offered: Int, confirmed: Int, chunksSent: Int) {
        lock.withLock { (offeredCount, confirmedCount, chunksSent) }
    }

    // MARK: AttachmentHandler

    func opened(role: NodeRole, sharedSpaces: [SpaceID]) async {
        lock.withLock {
            shared = Set(sharedSpaces)
            lastProgress = .now
            peerRole = role
        }
        if let limit = pushStallTimeout {
            // A one-shot push: offer once, then wait for the relay's answers (or a stall).
            if node.role == .member && role == .relay { offerNew(Set(sharedSpaces)) }
            if lock.withLock({ unanswered.isEmpty }) { settle() } else { startWatchdog(limit) }
        } else if node.role == .member && role == .relay {
            // Offer what is complete here now, and what becomes complete while the session lasts.
            let spaces = Set(sharedSpaces)
            offerNew(spaces)
            let task = Task { [weak self] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: Self.offerInterval)
                    guard let self, !Task.isCancelled else { break }
                    self.offerNew(spaces)
                }
            }
            lock.withLock { offerTask = task }
        }
        for (space, ref) in targets {
            guard let root = Hex.decode(ref.root) else { continue }
            startPull(space: space, root: root, ref: ref)
        }
        pump()
    }

    func received(_ message: AttachmentMessage) async {
        lock.withLock { lastProgress = .now }
        switch message {
        case .offer(let space, let roots):
            // To a member, a relay's offer answers its own: the relay now holds these roots.
            guard node.role == .relay else { return answered(roots, held: true) }  // members fetch lazily, when asked
            let held = roots.filter { startPull(space: space, root: $0, ref: nil, offered: true) }
            if !held.isEmpty && lock.withLock({ peerRole == .member }) { sink.yield(.offer(space: space, roots: held)) }
            pump()
        case .want(let space, let root, let wantsManifest, let indices):
            await serve(space: space, root: root, manifest: wantsManifest, indices: indices)
        case .manifest(let space, let root, let hashes):
            acceptManifest(space: space, root: root, hashes: hashes)
            pump()
        case .chunk(let space, let root, let index, let bytes):
            acceptChunk(space: space, root: root, index: index, bytes: bytes)
            pump()
        case .missing(_, let root, let indices):
            lock.withLock {
                guard var p = pulls[root] else { return }
                if indices.isEmpty { p.askedManifest = false }
                for i in indices { p.outstanding.remove(i) }
                p.failed = true
                pulls[root] = p
            }
            pump()
            if node.role == .member { answered([root], held: false) }  // the relay gave up on an offered root
        }
    }

    func sent(_ message: AttachmentMessage) {
        lock.withLock {
            lastProgress = .now
            if case .chunk(_, _, _, let b) = message {
                backlog -= b.count
                chunksSent += 1
            }
        }
    }

    func closed() {
        lock.withLock { offerTask }?.cancel()
        sink.finish()
        settle()
    }

    func settled() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if isSettled { return true }
                settleWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    // MARK: Pushing (one-shot sync)

    /// The relay answered offered `roots`: it holds them completely (`held`) or gave up on them.
    private func answered(_ roots: [[UInt8]], held: Bool) {
        guard pushStallTimeout != nil else { return }
        let all = lock.withLock { () -> Bool in
            for r in roots where unanswered.remove(r) != nil && held { confirmedCount += 1 }
            return unanswered.isEmpty
        }
        if all { settle() }
    }

    /// Ends a push's wait: wakes ``settled()`` and calls `onDone` (once).
    private func settle() {
        let (waiters, task, first) = lock.withLock { () -> ([CheckedContinuation<Void, Never>], Task<Void, Never>?, Bool) in
            let first = !isSettled
            isSettled = true
            defer { settleWaiters = [] }
            return (settleWaiters, watchdog, first)
        }
        task?.cancel()
        for w in waiters { w.resume() }
        if first { onDone() }
    }

    /// Settles a push that neither received nor sent anything for `limit`.
    private func startWatchdog(_ limit: Duration) {
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                guard let self else { return }
                let (stalled, left) = self.lock.withLock { (ContinuousClock.now - self.lastProgress > limit, self.unanswered.count) }
                if stalled {
                    self.logger.notice(
                        "the relay did not answer \(left) offered attachment(s) within \(limit); hanging up (it may not answer offers)")
                    self.settle()
                    return
                }
            }
        }
        lock.withLock { watchdog = task }
    }

    /// Offers the roots complete here and not yet offered in this session. One listing of the
    /// attachments directory per call; an attachment already offered, or of a space the peer does
    /// not share, is settled and its manifest not read again (this runs every ``offerInterval``).
    private func offerNew(_ spaces: Set<SpaceID>) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: node.attachmentsDirectory)) ?? []
        var complete: [SpaceID: [[UInt8]]] = [:]
        for name in names.sorted() where name.count == 64 && !lock.withLock({ settled.contains(name) }) {
            guard let m = node.manifest(root: name) else { continue }  // not (yet) a stored attachment
            guard let space = m.space, spaces.contains(space) else {
                lock.withLock { _ = settled.insert(name) }
                continue
            }
            guard node.missingChunks(m).isEmpty else { continue }
            lock.withLock { _ = settled.insert(name) }
            complete[space, default: []].append(m.root)
        }
        if pushStallTimeout != nil {
            lock.withLock {
                for roots in complete.values { unanswered.formUnion(roots) }
                offeredCount += complete.values.reduce(0) { $0 + $1.count }
            }
        }
        for (s, roots) in complete.sorted(by: { $0.key < $1.key }) {
            var i = 0
            while i < roots.count {
                let n = min(AttachmentMessage.maximumRoots, roots.count - i)
                sink.yield(.offer(space: s, roots: Array(roots[i..<i + n])))
                i += n
            }
        }
    }

    // MARK: Serving

    private func serve(space: SpaceID, root: [UInt8], manifest wantsManifest: Bool, indices: [Int]) async {
        let hex = Hex.encode(root)
        guard let m = node.manifest(root: hex), m.space == space else {
            sink.yield(.missing(space: space, root: root, indices: []))
            return
        }
        if wantsManifest { sink.yield(.manifest(space: space, root: root, hashes: m.hashes)) }
        var lacking: [Int] = []
        for i in indices {
            guard i < m.hashes.count, let c = node.readChunk(root: hex, index: i), c.count <= AttachmentMessage.maximumChunkByteCount
            else {
                lacking.append(i)
                continue
            }
            while lock.withLock({ backlog > Self.backlogLimit }) && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(5))
            }
            if Task.isCancelled { return }
            lock.withLock { backlog += c.count }
            sink.yield(.chunk(space: space, root: root, index: i, bytes: c))
        }
        if !lacking.isEmpty { sink.yield(.missing(space: space, root: root, indices: lacking)) }
    }

    // MARK: Pulling

    /// Starts pulling `root` unless it is being pulled already (then, when `offered`, it is
    /// answered again once over); returns whether it is already complete here.
    @discardableResult
    private func startPull(space: SpaceID, root: [UInt8], ref: AttachmentRef?, offered: Bool = false) -> Bool {
        let fresh = lock.withLock { () -> Bool in
            guard shared.contains(space) else { return false }
            guard pulls[root] == nil else {
                if offered {
                    pulls[root]?.offered = true
                    pulls[root]?.answered = false
                }
                return false
            }
            return true
        }
        guard fresh else { return false }
        var p = Pull(space: space, root: root, ref: ref, offered: offered)
        if let m = node.manifest(root: Hex.encode(root)) {
            p.manifest = m
            p.needed = node.missingChunks(m)
        }
        if p.manifest != nil && p.needed.isEmpty { return true }
        lock.withLock {
            pulls[root] = p
            pullOrder.append(root)
        }
        return false
    }

    private func acceptManifest(space: SpaceID, root: [UInt8], hashes: [[UInt8]]) {
        guard var p = lock.withLock({ pulls[root] }), p.askedManifest, p.manifest == nil, p.space == space else { return }
        p.askedManifest = false
        let m = AttachmentManifest(space: space, hashes: hashes)
        if m.root != root || (p.ref.map { $0.chunks != hashes.count } ?? false) {
            logger.warning("refused an attachment manifest that does not match its root", metadata: ["root": "\(Hex.encode(root))"])
            p.failed = true
            lock.withLock {
                rejected += 1
                pulls[root] = p
            }
            return
        }
        do { try node.storeManifest(m) } catch {
            logger.error("cannot store an attachment manifest: \(error)")
            p.failed = true
        }
        p.manifest = m
        p.needed = node.missingChunks(m)
        lock.withLock { pulls[root] = p }
    }

    private func acceptChunk(space: SpaceID, root: [UInt8], index: Int, bytes: [UInt8]) {
        guard var p = lock.withLock({ pulls[root] }), p.space == space, p.outstanding.contains(index), let m = p.manifest else {
            return
        }
        p.outstanding.remove(index)
        var ok = true
        // A member also opens the chunk with the space key (authenticated decryption).
        if let ref = p.ref, let hash = Hex.decode(ref.hash), let key = try? node.key(forReference: ref.key) {
            do { _ = try Node.openChunk(bytes, key: key, hash: hash, index: index, count: ref.chunks, name: ref.name) } catch {
                ok = false
            }
        }
        if ok {
            do { try node.storeChunk(bytes, index: index, of: m) } catch { ok = false }
        }
        lock.withLock {
            if ok {
                received += 1
            } else {
                rejected += 1
                p.failed = true
            }
            pulls[root] = p
        }
        if !ok {
            logger.warning(
                "refused an attachment chunk that does not match its manifest or key",
                metadata: ["root": "\(Hex.encode(root))", "index": "\(index)"])
        }
    }

    /// Sends wants while the window allows; answers a member's offered roots once they are over
    /// (a relay); in fetch mode, calls `onDone` once every pull is over.
    private func pump() {
        var out: [AttachmentMessage] = []
        var gaveUp: [Pull] = []
        var fire = false
        lock.withLock {
            var outstanding = pulls.values.reduce(0) { $0 + $1.outstanding.count }
            let answers = node.role == .relay && peerRole == .member
            for root in pullOrder {
                guard var p = pulls[root] else { continue }
                if p.failed {
                    // Given up: nothing more to ask.
                } else if p.manifest == nil {
                    if !p.askedManifest {
                        p.askedManifest = true
                        out.append(.want(space: p.space, root: root, manifest: true, indices: []))
                    }
                } else {
                    var take: [Int] = []
                    while outstanding < Self.window, !p.needed.isEmpty {
                        let i = p.needed.removeFirst()
                        p.outstanding.insert(i)
                        take.append(i)
                        outstanding += 1
                    }
                    if !take.isEmpty { out.append(.want(space: p.space, root: root, manifest: false, indices: take)) }
                }
                if answers && p.offered && !p.answered && p.outstanding.isEmpty {
                    if p.failed {
                        p.answered = true
                        gaveUp.append(p)
                    } else if p.manifest != nil && p.needed.isEmpty {
                        p.answered = true
                        out.append(.offer(space: p.space, roots: [root]))
                    }
                }
                pulls[root] = p
            }
            if fetchMode && !doneFired && pulls.values.allSatisfy({ $0.done || ($0.failed && $0.outstanding.isEmpty) })
                && out.isEmpty
            {
                doneFired = true
                fire = true
            }
        }
        for m in out { sink.yield(m) }
        for p in gaveUp {
            // What is still lacking here (all of it without a manifest); complete after all: held.
            let lacking = p.manifest.map { node.missingChunks($0) } ?? []
            if p.manifest != nil && lacking.isEmpty {
                sink.yield(.offer(space: p.space, roots: [p.root]))
            } else {
                sink.yield(.missing(space: p.space, root: p.root, indices: lacking))
            }
        }
        if fire { onDone() }
    }
}
