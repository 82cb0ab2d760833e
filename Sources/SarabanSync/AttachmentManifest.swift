import SarabanCore
import SarabanCrypto

/// The BLAKE2b-256 of each encrypted chunk of an attachment, in order, and the space it belongs
/// to: what a relay checks chunks against without a key (Sync/PROTOCOL.md §13a). Its ``root``
/// names the attachment on the wire and on disk, so a manifest received for a root is checked by
/// recomputing the root, and every chunk by its hash in the manifest.
public struct AttachmentManifest: Hashable, Sendable {
    /// The space whose key sealed the chunks; nil for node-local attachments (never synced).
    public var space: SpaceID?
    public var hashes: [[UInt8]]

    public init(space: SpaceID?, hashes: [[UInt8]]) {
        self.space = space
        self.hashes = hashes
    }

    /// `space (16 bytes, zero if none) ‖ count (u32 BE) ‖ hashes`: what the root commits to, and
    /// (after a magic) the node's `attachments/<root>/manifest` file.
    public var canonicalBytes: [UInt8] {
        var b = space?.bytes ?? [UInt8](repeating: 0, count: SpaceID.byteCount)
        b.reserveCapacity(SpaceID.byteCount + 4 + hashes.count * AttachmentMessage.hashByteCount)
        let n = hashes.count
        b += [UInt8(n >> 24 & 0xff), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)]
        for h in hashes { b += h }
        return b
    }

    /// Parses ``canonicalBytes``: nil unless it holds at least one 32-byte hash and nothing else.
    public init?(canonicalBytes b: ArraySlice<UInt8>) {
        let head = SpaceID.byteCount + 4
        guard b.count >= head else { return nil }
        let s = Array(b.prefix(SpaceID.byteCount))
        let n = b.dropFirst(SpaceID.byteCount).prefix(4).reduce(0) { $0 << 8 | Int($1) }
        let size = AttachmentMessage.hashByteCount
        guard n >= 1, b.count == head + n * size else { return nil }
        let first = b.startIndex + head
        space = s.allSatisfy { $0 == 0 } ? nil : SpaceID(bytes: s)
        hashes = (0..<n).map { Array(b[first + $0 * size..<first + ($0 + 1) * size]) }
    }

    /// BLAKE2b-256 of `SRBN-ATTACHMENT-ROOT-V1 ‖` ``canonicalBytes``.
    public var root: [UInt8] {
        (try? BLAKE2b.hash(Array("SRBN-ATTACHMENT-ROOT-V1".utf8) + canonicalBytes, outputLength: 32)) ?? []
    }

    public var rootHex: String { Hex.encode(root) }

    /// Whether `chunk` (nonce ‖ ciphertext) is chunk `index` of this attachment.
    public func matches(_ chunk: [UInt8], at index: Int) -> Bool {
        guard hashes.indices.contains(index), let h = try? BLAKE2b.hash(chunk, outputLength: 32) else { return false }
        return h == hashes[index]
    }
}
