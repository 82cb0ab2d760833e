import Foundation
import Logging
import PostgresNIO
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanSync

/// Attachments in the relay's database (schema 4): every relay process, on any host, serves
/// what any of them stored; nothing is kept in a relay's data directory. A chunk (at most
/// 256 KiB sealed) is one row, read and written alone: an attachment is never whole in memory.
extension PostgresRelayStore: AttachmentStore {
    public var attachmentStore: (any AttachmentStore)? { self }

    public func manifest(root: [UInt8]) async throws -> AttachmentManifest? {
        let r = ByteBuffer(bytes: root)
        return try await guarded("read an attachment manifest") {
            try await Self.firstManifest(
                try await self.client.query("SELECT manifest FROM attachment_manifests WHERE root = \(r)", logger: self.logger),
                root: root)
        }
    }

    /// The first row's manifest, if it matches `root`.
    private static func firstManifest(_ rows: PostgresRowSequence, root: [UInt8]) async throws -> AttachmentManifest? {
        for try await bytes in rows.decode(ByteBuffer.self) {
            guard let m = AttachmentManifest(canonicalBytes: Array(bytes.readableBytesView)[...]), m.root == root else { return nil }
            return m
        }
        return nil
    }

    /// Serving a member's want is a use: the attachment's month (`used`) becomes this one (one
    /// UPDATE a month at most), so it is retired no sooner than the envelopes stored now.
    public func manifestToServe(root: [UInt8]) async throws -> AttachmentManifest? {
        guard attachmentUse else { return try await manifest(root: root) }
        let r = ByteBuffer(bytes: root)
        return try await guarded("read an attachment manifest to serve") {
            // One round trip: the UPDATE runs though nothing reads its result.
            try await Self.firstManifest(
                try await self.client.query(
                    """
                    WITH touched AS (
                        UPDATE attachment_manifests SET used = \(unescaped: PostgresSchema.monthNow)
                        WHERE root = \(r) AND used < \(unescaped: PostgresSchema.monthNow))
                    SELECT manifest FROM attachment_manifests WHERE root = \(r)
                    """, logger: self.logger),
                root: root)
        }
    }

    public func isRetired(root: [UInt8]) async throws -> Bool {
        guard attachmentUse else { return false }
        let r = ByteBuffer(bytes: root)
        return try await guarded("check whether an attachment was retired") {
            for try await _ in try await self.client.query("SELECT 1 FROM retired_roots WHERE root = \(r)", logger: self.logger).decode(Int32.self) {
                return true
            }
            return false
        }
    }

    public func storeManifest(_ m: AttachmentManifest) async throws {
        let root = ByteBuffer(bytes: m.root)
        let space = m.space.map { ByteBuffer(bytes: $0.bytes) }
        let chunks = Int32(m.hashes.count)
        let bytes = ByteBuffer(bytes: m.canonicalBytes)
        try await guarded("store an attachment manifest") {
            try await self.client.query(
                """
                INSERT INTO attachment_manifests(root, space, chunks, manifest) VALUES (\(root), \(space), \(chunks), \(bytes))
                ON CONFLICT (root) DO NOTHING
                """, logger: self.logger
            ).drain()
        }
    }

    public func readChunk(root: [UInt8], index: Int) async throws -> [UInt8]? {
        let r = ByteBuffer(bytes: root)
        let i = Int32(clamping: index)
        return try await guarded("read an attachment chunk") {
            let rows = try await self.client.query(
                "SELECT bytes FROM attachment_chunks WHERE root = \(r) AND idx = \(i)", logger: self.logger)
            for try await bytes in rows.decode(ByteBuffer.self) { return Array(bytes.readableBytesView) }
            return nil
        }
    }

    public func writeChunk(_ sealed: [UInt8], root: [UInt8], index: Int) async throws {
        let r = ByteBuffer(bytes: root)
        let i = Int32(clamping: index)
        let bytes = ByteBuffer(bytes: sealed)
        try await guarded("store an attachment chunk") {
            try await self.client.query(
                "INSERT INTO attachment_chunks(root, idx, bytes) VALUES (\(r), \(i), \(bytes)) ON CONFLICT (root, idx) DO NOTHING",
                logger: self.logger
            ).drain()
        }
    }

    public func heldChunks(root: [UInt8], count: Int) async throws -> [Int] {
        let r = ByteBuffer(bytes: root)
        let n = Int32(clamping: count)
        return try await guarded("list an attachment's chunks") {
            let rows = try await self.client.query(
                "SELECT idx FROM attachment_chunks WHERE root = \(r) AND idx < \(n) ORDER BY idx", logger: self.logger)
            var out: [Int] = []
            for try await i in rows.decode(Int32.self) { out.append(Int(i)) }
            return out
        }
    }

    /// One query: the manifests of `spaces` whose every chunk is stored.
    public func completeRoots(in spaces: Set<SpaceID>, excluding: Set<[UInt8]>) async throws -> [SpaceID: [[UInt8]]] {
        guard !spaces.isEmpty else { return [:] }
        let ids = spaces.map { ByteBuffer(bytes: $0.bytes) }
        let skip = excluding.map { ByteBuffer(bytes: $0) }
        return try await guarded("list complete attachments") {
            let rows = try await self.client.query(
                """
                SELECT m.space, m.root FROM attachment_manifests m
                WHERE m.space = ANY(\(ids)) AND NOT (m.root = ANY(\(skip)::bytea[]))
                    AND (SELECT count(*) FROM attachment_chunks c WHERE c.root = m.root AND c.idx < m.chunks) = m.chunks
                ORDER BY m.root
                """, logger: self.logger)
            var out: [SpaceID: [[UInt8]]] = [:]
            for try await (s, r) in rows.decode((ByteBuffer, ByteBuffer).self) {
                guard let space = SpaceID(bytes: Array(s.readableBytesView)) else { continue }
                out[space, default: []].append(Array(r.readableBytesView))
            }
            return out
        }
    }
}
