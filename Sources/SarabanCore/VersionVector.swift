/// For each author, the highest sequence number included. Authors' sequences are gapless,
/// so a vector is a complete summary of which changes a replica holds.
public struct VersionVector: Hashable, Sendable, CustomStringConvertible {
    public private(set) var entries: [ReplicaID: UInt64]

    public init(_ entries: [ReplicaID: UInt64] = [:]) {
        self.entries = entries.filter { $0.value > 0 }
    }

    public subscript(_ author: ReplicaID) -> UInt64 {
        get { entries[author] ?? 0 }
        set { entries[author] = newValue == 0 ? nil : newValue }
    }

    /// Whether the change `id` is included.
    public func includes(_ id: ChangeID) -> Bool { self[id.author] >= id.seq }

    /// Whether every change in `other` is included here.
    public func dominates(_ other: VersionVector) -> Bool {
        other.entries.allSatisfy { self[$0.key] >= $0.value }
    }

    public mutating func merge(_ other: VersionVector) {
        for (a, s) in other.entries where s > self[a] { entries[a] = s }
    }

    public func merging(_ other: VersionVector) -> VersionVector {
        var v = self
        v.merge(other)
        return v
    }

    /// The total number of changes the vector covers.
    public var total: UInt64 { entries.values.reduce(0, +) }

    public var sortedEntries: [(author: ReplicaID, seq: UInt64)] {
        entries.sorted { $0.key < $1.key }.map { (author: $0.key, seq: $0.value) }
    }

    public var description: String {
        "{" + sortedEntries.map { "\($0.author.short):\($0.seq)" }.joined(separator: ", ") + "}"
    }

    func encode(into w: inout BinaryWriter, _ t: inout ReplicaTable) {
        if entries.isEmpty {
            w.varint(0)
            return
        }
        w.varint(entries.count)
        forEachSorted { author, seq in
            w.varint(t.index(author))
            w.varint(seq)
        }
    }

    /// Calls `body` with each entry in author order (as ``sortedEntries``), without building
    /// an array when there is only one.
    func forEachSorted(_ body: (ReplicaID, UInt64) -> Void) {
        if entries.count == 1, let e = entries.first {
            body(e.key, e.value)
            return
        }
        for e in sortedEntries { body(e.author, e.seq) }
    }

    static func decode(from r: inout BinaryReader, _ t: ReplicaTable) throws(DecodingError) -> VersionVector {
        let n = try r.count(max: r.remaining / 2)
        var v = VersionVector()
        for _ in 0..<n {
            let a = try t.read(&r)
            v[a] = try r.varint()
        }
        return v
    }

    /// Standalone encoding (its own replica table).
    public func encoded() -> [UInt8] {
        var t = ReplicaTable()
        var body = BinaryWriter()
        encode(into: &body, &t)
        var w = BinaryWriter()
        t.encode(into: &w)
        w.raw(body.bytes)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodingError) -> VersionVector {
        var r = BinaryReader(bytes)
        let t = try ReplicaTable.decode(from: &r)
        let v = try decode(from: &r, t)
        try r.expectEnd()
        return v
    }
}
