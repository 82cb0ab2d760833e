import SarabanCore
import SarabanCrypto

/// The first 8 bytes of an envelope id, as a `summary` with head tags carries it for each entry:
/// enough to tell two envelopes of one author at one position apart (a fork, for example by a node
/// whose database was restored from an old copy) when the two vectors are equal, without sending
/// 32 bytes per entry. Printed like ``EnvelopeID`` (16 hex digits), so the two can be compared by eye.
public struct HeadTag: Hashable, Sendable, CustomStringConvertible {
    public static let byteCount = 8
    /// On the wire: no head known for the entry (an id starting with 8 zero bytes is taken as unknown too).
    static let unknownBytes = [UInt8](repeating: 0, count: byteCount)

    /// The tag's bytes, big-endian.
    public let value: UInt64

    /// The tag of `id`.
    public init(_ id: EnvelopeID) {
        value = id.bytes.prefix(Self.byteCount).reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Exactly 8 bytes that are not all zero; nil otherwise.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == Self.byteCount else { return nil }
        value = bytes.reduce(0) { $0 << 8 | UInt64($1) }
        if value == 0 { return nil }
    }

    /// The 8 bytes, big-endian.
    public var bytes: [UInt8] { (0..<Self.byteCount).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * UInt64($0))) } }

    /// Whether `id` starts with this tag.
    public func identifies(_ id: EnvelopeID) -> Bool { HeadTag(id) == self }

    /// 16 lowercase hex digits.
    public var description: String { Hex.encode(bytes) }
}

/// An author's feed that two nodes hold differently at one position: the same author signed two
/// envelopes there (found by comparing a peer's head tags with this node's envelopes).
public struct HeadMismatch: Hashable, Sendable, CustomStringConvertible {
    public var author: SigningPublicKey
    /// The sequence number the peer's envelope ends at.
    public var sequence: UInt64
    /// This node's envelope there: the one ending at `sequence`, or the one covering it when
    /// this node's envelope boundaries differ (which an honest author never makes).
    public var held: EnvelopeID
    /// The peer's envelope ending at `sequence`, by its tag.
    public var peerTag: HeadTag

    public init(author: SigningPublicKey, sequence: UInt64, held: EnvelopeID, peerTag: HeadTag) {
        self.author = author
        self.sequence = sequence
        self.held = held
        self.peerTag = peerTag
    }

    public var description: String {
        "\(author.nodeID) at seq \(sequence): this node holds \(held), the peer \(peerTag)"
    }
}

extension SpaceVector {
    /// The entries of this (a peer's) summary whose head tag names another envelope than this
    /// node holds at the same position. `held(author, seq)` is this node's envelope covering
    /// `seq` of `author` (its last sequence number and id), nil when it holds less than `seq`:
    /// positions only the peer holds are checked by the hash chain when they arrive.
    public func mismatches(
        held: (SigningPublicKey, UInt64) throws -> (seqEnd: UInt64, id: EnvelopeID)?
    ) rethrows -> [HeadMismatch] {
        var out: [HeadMismatch] = []
        for (author, tag) in heads.sorted(by: { SigningPublicKey.precedes($0.key, $1.key) }) {
            let seq = vector[author]
            guard seq > 0, let mine = try held(author, seq) else { continue }
            if mine.seqEnd != seq || !tag.identifies(mine.id) {
                out.append(HeadMismatch(author: author, sequence: seq, held: mine.id, peerTag: tag))
            }
        }
        return out
    }
}

extension HeadTag {
    /// One 8-byte digest of the head tags of a session's summaries (the `headsDigest` message):
    /// the first 8 bytes of BLAKE2b-128 over, for each item ascending by space,
    /// `space (16) ‖ entryCount (varint) ‖ { author (32) ‖ seq (8, big-endian) ‖ tag (8; zeros: none) }`
    /// with the entries ascending by author. Two nodes holding the same envelopes of the same
    /// spaces get the same digest; it differs when any vector or any tag does.
    public static func digest(of items: [SpaceVector]) -> UInt64 {
        var w = BinaryWriter(capacity: items.reduce(0) { $0 + 20 + $1.vector.entries.count * 48 })
        for item in items.sorted(by: { $0.space < $1.space }) {
            w.raw(item.space.bytes)
            let entries = item.vector.sortedEntries
            w.varint(entries.count)
            for e in entries {
                w.raw(e.author.rawRepresentation)
                w.fixed64(e.seq)
                w.raw(item.heads[e.author]?.bytes ?? unknownBytes)
            }
        }
        let h = (try? BLAKE2b.hash(w.bytes, outputLength: 16)) ?? []
        return h.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }
}
