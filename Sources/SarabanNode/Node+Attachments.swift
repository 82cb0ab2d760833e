import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanSync
import SarabanTransport
#if canImport(Glibc)
import Glibc
#endif

/// The manifest file, `attachments/<root>/manifest`: `"SRBNMAN1" ‖` the manifest's canonical
/// bytes (the struct and its root are the protocol's: `AttachmentManifest` in SarabanSync).
extension AttachmentManifest {
    static let magic = Array("SRBNMAN1".utf8)

    public var fileBytes: [UInt8] { Self.magic + canonicalBytes }

    init?(fileBytes b: [UInt8]) {
        guard b.starts(with: Self.magic) else { return nil }
        self.init(canonicalBytes: b[Self.magic.count...])
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

/// A process-wide counter naming temporary files apart.
final class TemporaryNames: @unchecked Sendable {
    private let lock = NSLock()
    private var last: UInt64 = 0

    func next() -> UInt64 {
        lock.withLock {
            last &+= 1
            return last
        }
    }
}

let temporaryNames = TemporaryNames()

extension Node {
    // MARK: - Chunk store (members and relays alike)

    /// BLAKE2b-256 of one stored chunk (nonce ‖ ciphertext).
    static func chunkHash(_ sealed: [UInt8]) throws(NodeError) -> [UInt8] {
        do { return try BLAKE2b.hash(sealed, outputLength: 32) } catch { throw NodeError(.io, "\(error)") }
    }

    func attachmentDirectory(root: String) -> String { attachmentsDirectory + "/" + root }

    /// Writes `bytes` to `path` through a temporary file and a rename (a crash leaves the old file
    /// or the new one). Concurrent writes of one path (two sessions storing the same chunk) each
    /// use their own temporary file, so each succeeds and the last rename wins.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(NodeError) {
        let tmp = path + ".tmp.\(getpid()).\(temporaryNames.next())"
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
        guard m.matches(sealed, at: index) else {
            throw NodeError(.invalidFile, "chunk \(index) of attachment \(m.rootHex) does not match its manifest; refused")
        }
        try writeChunk(sealed, root: m.rootHex, index: index)
    }

    /// Writes chunk `index` of `root` (hex) unless it is here already; the caller checked it.
    func writeChunk(_ sealed: [UInt8], root: String, index: Int) throws(NodeError) {
        let path = attachmentDirectory(root: root) + "/\(index)"
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
    /// root and opened with the space key before it is stored. A peer that neither sends nor
    /// reads anything of the exchange for `stallTimeout` is hung up on. Returns each peer's
    /// result and what this node now holds of those attachments (the letter is read once, when it starts).
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
                let exchange = AttachmentExchange(
                    node: self, fetching: targets, stallTimeout: stallTimeout, logger: logger, onDone: { hangUp.fire() })
                let connection = PeerConnection(
                    store: FetchingDriver(inner: driver, exchange: exchange),
                    configuration: .init(role: storage.role, limits: options.limits), logger: logger)
                var result = AttachmentFetchResult(peer: peer.label, nodeID: peer.nodeID.text)
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
    func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        try await inner.feedHeads(spaces)
    }
    func peerHeads(_ summary: SpaceVector, from peer: NodeID) async { await inner.peerHeads(summary, from: peer) }
    func unreachable(space: SpaceID, gaps: [SigningPublicKey: ClosedRange<UInt64>], from peer: NodeID) async {
        await inner.unreachable(space: space, gaps: gaps, from: peer)
    }
}
