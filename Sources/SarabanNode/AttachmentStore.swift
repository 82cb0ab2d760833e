import Foundation
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanSync

/// Where attachment manifests and their sealed chunks are kept, by root (content-addressed):
/// the node's data directory (``DirectoryAttachmentStore``, every member and a relay on SQLite)
/// or a relay's PostgreSQL database (`SarabanRelayPostgres`, shared by every relay process, on any
/// host). One chunk at a time crosses this interface (at most 256 KiB): an attachment is never
/// whole in memory. Chunks are sealed: a store without keys can hold them.
///
/// ``AttachmentExchange`` performs the attachment protocol's I/O through it.
public protocol AttachmentStore: Sendable {
    /// The manifest stored for `root`, if any (and it matches its root).
    func manifest(root: [UInt8]) async throws -> AttachmentManifest?
    /// Stores `m` (idempotent: a manifest already stored is kept).
    func storeManifest(_ m: AttachmentManifest) async throws
    /// Chunk `index` of `root`, if held.
    func readChunk(root: [UInt8], index: Int) async throws -> [UInt8]?
    /// Stores chunk `index` of `root`, already checked against its manifest (idempotent).
    func writeChunk(_ sealed: [UInt8], root: [UInt8], index: Int) async throws
    /// The indices below `count` whose chunk is held.
    func heldChunks(root: [UInt8], count: Int) async throws -> [Int]
    /// The roots held completely in `spaces`, by space, leaving out `excluding`.
    func completeRoots(in spaces: Set<SpaceID>, excluding: Set<[UInt8]>) async throws -> [SpaceID: [[UInt8]]]
    /// The manifest of `root`, read to serve a peer's want: a store that retires attachments
    /// (a relay on PostgreSQL) counts it as a use. By default ``manifest(root:)``.
    func manifestToServe(root: [UInt8]) async throws -> AttachmentManifest?
    /// Whether this store let `root` go (retention): it is then not pulled again. By default never.
    func isRetired(root: [UInt8]) async throws -> Bool
}

extension AttachmentStore {
    public func manifestToServe(root: [UInt8]) async throws -> AttachmentManifest? { try await manifest(root: root) }
    public func isRetired(root: [UInt8]) async throws -> Bool { false }
}

/// Attachments as files under the node's `attachments/<root>/` (`manifest`, then one file per
/// chunk, each written through a temporary file and a rename).
public final class DirectoryAttachmentStore: AttachmentStore, @unchecked Sendable {
    let node: Node
    private let lock = NSLock()
    /// Roots whose manifest names another space than those asked about: not read again by
    /// ``completeRoots(in:excluding:)`` (one exchange's store answers for one session's spaces).
    private var otherSpaces = Set<String>()

    public init(node: Node) { self.node = node }

    public func manifest(root: [UInt8]) -> AttachmentManifest? { node.manifest(root: Hex.encode(root)) }

    public func storeManifest(_ m: AttachmentManifest) throws { try node.storeManifest(m) }

    public func readChunk(root: [UInt8], index: Int) -> [UInt8]? { node.readChunk(root: Hex.encode(root), index: index) }

    public func writeChunk(_ sealed: [UInt8], root: [UInt8], index: Int) throws {
        try node.writeChunk(sealed, root: Hex.encode(root), index: index)
    }

    public func heldChunks(root: [UInt8], count: Int) -> [Int] {
        node.chunkIndices(in: node.attachmentDirectory(root: Hex.encode(root)), count: count, held: true)
    }

    /// One listing of the attachments directory; a manifest of another space is not read again.
    public func completeRoots(in spaces: Set<SpaceID>, excluding: Set<[UInt8]>) -> [SpaceID: [[UInt8]]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: node.attachmentsDirectory)) ?? []
        let skip = Set(excluding.map(Hex.encode)).union(lock.withLock { otherSpaces })
        var complete: [SpaceID: [[UInt8]]] = [:]
        var other: [String] = []
        for name in names.sorted() where name.count == 64 && !skip.contains(name) {
            guard let m = node.manifest(root: name) else { continue }  // not (yet) a stored attachment
            guard let space = m.space, spaces.contains(space) else {
                other.append(name)
                continue
            }
            if node.missingChunks(m).isEmpty { complete[space, default: []].append(m.root) }
        }
        lock.withLock { otherSpaces.formUnion(other) }
        return complete
    }
}
