import SarabanCore
import SarabanCrypto

/// What a node holds of one space: for each author (full Ed25519 key), the highest sequence number held.
///
/// Every node accepts an author's envelopes only in hash-chain order and sequences are gapless, so
/// this is a complete summary: the envelopes a peer lacks are, per author, those after its entry.
/// Keys are the full 32-byte author keys (what envelope headers and ``FeedVerifier`` use), so a
/// relay needs no mapping table; ``replicaVector`` gives the CRDT core's 16-byte view.
public struct FeedVector: Hashable, Sendable, CustomStringConvertible {
    /// Authors with a sequence number above 0.
    public private(set) var entries: [SigningPublicKey: UInt64]

    public init(_ entries: [SigningPublicKey: UInt64] = [:]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    /// The highest sequence number held from `author` (0 for none).
    public subscript(_ author: SigningPublicKey) -> UInt64 {
        get { entries[author] ?? 0 }
        set { entries[author] = newValue == 0 ? nil : newValue }
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Whether every envelope covered by `other` is covered here.
    public func dominates(_ other: FeedVector) -> Bool {
        other.entries.allSatisfy { self[$0.key] >= $0.value }
    }

    /// Raises each entry to the other's where it is higher.
    public mutating func merge(_ other: FeedVector) {
        for (a, s) in other.entries where s > self[a] { entries[a] = s }
    }

    public func merging(_ other: FeedVector) -> FeedVector {
        var v = self
        v.merge(other)
        return v
    }

    /// Raises `author`'s entry to `seq` if it is higher; returns whether it changed.
    @discardableResult
    public mutating func raise(_ author: SigningPublicKey, to seq: UInt64) -> Bool {
        guard seq > self[author] else { return false }
        entries[author] = seq
        return true
    }

    /// Raises the entry of the envelope's author to its last sequence number.
    @discardableResult
    public mutating func add(_ header: EnvelopeHeader) -> Bool { raise(header.author, to: header.seqEnd) }

    /// Whether the envelope's changes are all covered.
    public func covers(_ header: EnvelopeHeader) -> Bool { self[header.author] >= header.seqEnd }

    /// The total number of changes covered.
    public var total: UInt64 { entries.values.reduce(0, &+) }

    /// For each author covered by `self` beyond `other`, how many changes `other` lacks.
    public func changesMissing(from other: FeedVector) -> UInt64 {
        entries.reduce(0) { $0 &+ ($1.value > other[$1.key] ? $1.value - other[$1.key] : 0) }
    }

    /// Entries in canonical (key byte) order.
    public var sortedEntries: [(author: SigningPublicKey, seq: UInt64)] {
        entries.sorted { SigningPublicKey.precedes($0.key, $1.key) }.map { (author: $0.key, seq: $0.value) }
    }

    /// The CRDT core's view: authors by the first 16 bytes of their key (``ReplicaID``).
    public var replicaVector: VersionVector {
        var v = VersionVector()
        for (a, s) in entries {
            let r = ReplicaID(bytes: a.rawRepresentation)
            v[r] = max(v[r], s)
        }
        return v
    }

    public var description: String {
        "{" + sortedEntries.map { "\(Hex.encode($0.author.rawRepresentation.prefix(4))):\($0.seq)" }.joined(separator: ", ") + "}"
    }
}
