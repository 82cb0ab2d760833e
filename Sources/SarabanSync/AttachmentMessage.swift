import SarabanCore

/// Attachment-chunk messages (Sync/PROTOCOL.md, "Attachment chunks"): carried inside a sync
/// session as the `attachment` message (tag 9), always about one space both sides carry.
///
/// Attachments are stored as encrypted chunks (ciphertext only: nonce ‖ XChaCha20-Poly1305,
/// sealed by the attaching member under the space key). An attachment is named on the wire by
/// its **root**: BLAKE2b-256 over the space, the chunk count and the BLAKE2b-256 of every
/// ciphertext chunk (its *manifest*). A relay cannot decrypt, but checks a manifest against its
/// root and every chunk against the manifest, so it stores and serves only what a member sealed.
/// The session passes these messages to the node unchanged (``SyncAction/attachment(_:)``) and
/// sends the node's with ``SyncSession/sendAttachment(_:)``; what to offer, want and keep is the
/// node's business, not the session's.
public enum AttachmentMessage: Hashable, Sendable {
    /// Roots of attachments the sender holds completely in `space`.
    case offer(space: SpaceID, roots: [[UInt8]])
    /// Asks for the manifest (when `manifest`) and the chunks at `indices` (ascending) of `root`.
    case want(space: SpaceID, root: [UInt8], manifest: Bool, indices: [Int])
    /// The BLAKE2b-256 of each ciphertext chunk of `root`, in order.
    case manifest(space: SpaceID, root: [UInt8], hashes: [[UInt8]])
    /// Ciphertext chunk `index` of `root`.
    case chunk(space: SpaceID, root: [UInt8], index: Int, bytes: [UInt8])
    /// The sender does not hold these chunks (or, with an empty list, the manifest) of `root`.
    case missing(space: SpaceID, root: [UInt8], indices: [Int])

    /// Bytes of a root and of a chunk hash.
    public static let hashByteCount = 32
    /// The most roots in one offer.
    public static let maximumRoots = 4096
    /// The most indices in one want or missing, and the most chunks of one attachment.
    public static let maximumIndices = 65_536
    /// The largest chunk a message carries (a 256 KiB chunk plus nonce and tag fits easily).
    public static let maximumChunkByteCount = 1 << 20

    enum Kind: UInt8 { case offer = 1, want, manifest, chunk, missing }

    /// The space the message is about.
    public var space: SpaceID {
        switch self {
        case .offer(let s, _), .want(let s, _, _, _), .manifest(let s, _, _), .chunk(let s, _, _, _), .missing(let s, _, _): s
        }
    }

    /// A short name for logs.
    public var name: String {
        switch self {
        case .offer: "offer"
        case .want: "want"
        case .manifest: "manifest"
        case .chunk: "chunk"
        case .missing: "missing"
        }
    }

    var estimatedSize: Int {
        switch self {
        case .offer(_, let r): 24 + r.count * 32
        case .want(_, _, _, let i), .missing(_, _, let i): 56 + i.count * 4
        case .manifest(_, _, let h): 56 + h.count * 32
        case .chunk(_, _, _, let b): 64 + b.count
        }
    }

    func encode(into w: inout BinaryWriter) {
        w.raw(space.bytes)
        switch self {
        case .offer(_, let roots):
            w.byte(Kind.offer.rawValue)
            w.varint(roots.count)
            for r in roots { w.raw(r) }
        case .want(_, let root, let manifest, let indices):
            w.byte(Kind.want.rawValue)
            w.raw(root)
            w.byte(manifest ? 1 : 0)
            Self.encodeIndices(indices, into: &w)
        case .manifest(_, let root, let hashes):
            w.byte(Kind.manifest.rawValue)
            w.raw(root)
            w.varint(hashes.count)
            for h in hashes { w.raw(h) }
        case .chunk(_, let root, let index, let bytes):
            w.byte(Kind.chunk.rawValue)
            w.raw(root)
            w.varint(index)
            w.varint(bytes.count)
            w.raw(bytes)
        case .missing(_, let root, let indices):
            w.byte(Kind.missing.rawValue)
            w.raw(root)
            Self.encodeIndices(indices, into: &w)
        }
    }

    private static func encodeIndices(_ indices: [Int], into w: inout BinaryWriter) {
        w.varint(indices.count)
        for i in indices { w.varint(i) }
    }

    static func decode(_ r: inout BinaryReader) throws(DecodingError) -> AttachmentMessage {
        let space = SpaceID(bytes: try r.raw(SpaceID.byteCount))!
        let at = r.offset
        guard let kind = Kind(rawValue: try r.byte()) else { throw DecodingError(.invalidValue, at: at, "unknown attachment message kind") }
        switch kind {
        case .offer:
            let n = try r.count("root count", min: 1, max: min(maximumRoots, r.remaining / hashByteCount))
            var roots: [[UInt8]] = []
            roots.reserveCapacity(n)
            for _ in 0..<n { roots.append(Array(try r.raw(hashByteCount))) }
            return .offer(space: space, roots: roots)
        case .want:
            let root = Array(try r.raw(hashByteCount))
            let fat = r.offset
            let flag = try r.byte()
            guard flag <= 1 else { throw DecodingError(.invalidValue, at: fat, "the manifest flag is \(flag), not 0 or 1") }
            let indices = try decodeIndices(&r)
            guard flag == 1 || !indices.isEmpty else { throw DecodingError(.invalidValue, at: fat, "a want that asks for nothing") }
            return .want(space: space, root: root, manifest: flag == 1, indices: indices)
        case .manifest:
            let root = Array(try r.raw(hashByteCount))
            let n = try r.count("chunk count", min: 1, max: min(maximumIndices, r.remaining / hashByteCount))
            var hashes: [[UInt8]] = []
            hashes.reserveCapacity(n)
            for _ in 0..<n { hashes.append(Array(try r.raw(hashByteCount))) }
            return .manifest(space: space, root: root, hashes: hashes)
        case .chunk:
            let root = Array(try r.raw(hashByteCount))
            let index = try r.count("chunk index", max: maximumIndices - 1)
            let n = try r.count("chunk length", min: 1, max: min(maximumChunkByteCount, r.remaining))
            return .chunk(space: space, root: root, index: index, bytes: Array(try r.raw(n)))
        case .missing:
            let root = Array(try r.raw(hashByteCount))
            return .missing(space: space, root: root, indices: try decodeIndices(&r))
        }
    }

    private static func decodeIndices(_ r: inout BinaryReader) throws(DecodingError) -> [Int] {
        let n = try r.count("index count", max: min(maximumIndices, r.remaining))
        var out: [Int] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let at = r.offset
            let i = try r.count("chunk index", max: maximumIndices - 1)
            if let last = out.last, i <= last { throw DecodingError(.invalidValue, at: at, "chunk indices must be strictly ascending") }
            out.append(i)
        }
        return out
    }
}
