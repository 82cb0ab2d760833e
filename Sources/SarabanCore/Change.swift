/// A change: one author's atomic group of operations, the unit of replication.
///
/// Authors number their changes 1, 2, 3… without gaps. `deps` is the version vector of other
/// authors' changes the author had applied; together with the author's own previous change it is
/// the change's causal past. A change is applied only when all of that is present.
public struct Change: Hashable, Sendable {
    public var author: ReplicaID
    public var seq: UInt64
    /// Lamport counter of the first operation.
    public var startOp: UInt64
    /// The author's wall-clock time in milliseconds since 1970, for display only.
    public var time: Int64
    /// Other authors' changes this one has seen (the author's own entry is ignored).
    public var deps: VersionVector
    public var ops: [Operation]

    public init(author: ReplicaID, seq: UInt64, startOp: UInt64, time: Int64, deps: VersionVector, ops: [Operation]) {
        self.author = author
        self.seq = seq
        self.startOp = startOp
        self.time = time
        var d = deps
        if !d.entries.isEmpty && d[author] != 0 { d[author] = 0 }
        self.deps = d
        self.ops = ops
    }

    /// A change whose `deps` already lack the author's entry.
    init(normalized author: ReplicaID, seq: UInt64, startOp: UInt64, time: Int64, deps: VersionVector, ops: [Operation]) {
        self.author = author
        self.seq = seq
        self.startOp = startOp
        self.time = time
        self.deps = deps
        self.ops = ops
    }

    public var id: ChangeID { ChangeID(author: author, seq: seq) }

    /// How many op ids the change consumes.
    public var width: UInt64 { ops.reduce(0) { $0 + UInt64($1.width) } }

    /// The highest Lamport counter used by the change.
    public var maxOp: UInt64 { startOp + width - 1 }

    /// The change's causal past plus itself.
    public var clock: VersionVector {
        var v = deps
        v[author] = seq
        return v
    }

    /// Operations with the ids they receive.
    public var identifiedOps: [(id: OpID, op: Operation)] {
        var out: [(id: OpID, op: Operation)] = []
        out.reserveCapacity(ops.count)
        var c = startOp
        for op in ops {
            out.append((OpID(counter: c, replica: author), op))
            c += UInt64(op.width)
        }
        return out
    }

    /// Documents this change creates or touches, in first-touch order.
    public var documents: [DocID] {
        var seen = Set<DocID>()
        var out: [DocID] = []
        for (id, op) in identifiedOps {
            let d = op.document ?? DocID(id)
            if seen.insert(d).inserted { out.append(d) }
        }
        return out
    }

    /// Whether the change creates or touches `doc` (``documents`` contains it), found without
    /// building the list: the receive path asks this of every change.
    public func touches(_ doc: DocID) -> Bool {
        var counter = startOp
        for op in ops {
            if let d = op.document {
                if d == doc { return true }
            } else if doc.op.counter == counter && doc.op.replica == author {
                return true  // the document this operation creates
            }
            counter += UInt64(op.width)
        }
        return false
    }

    /// Encoding format version written first in every encoded change.
    public static let formatVersion: UInt8 = 1
    /// Largest encoded change accepted by ``decode(_:)``.
    public static let maxEncodedSize = 16 << 20

    /// The compact binary form: version, replica table, string table, header, operations.
    ///
    /// The tables are gathered first (``Operation/collect(_:_:)`` visits what
    /// ``Operation/encode(into:_:_:)`` refers to, in the same order) so everything is written
    /// into one buffer. The tests check the bytes against a two-pass reference encoder.
    public func encoded() -> [UInt8] {
        var t = ReplicaTable()
        _ = t.index(author)
        var strings = StringTable()
        if !deps.entries.isEmpty {
            deps.forEachSorted { author, _ in _ = t.index(author) }
        }
        var stringBytes = 0
        for op in ops { op.collect(&t, &strings) }
        for s in strings.list { stringBytes += s.utf8.count + 2 }
        let replicas = t.list.count
        let names = strings.list.count
        var w = BinaryWriter(capacity: 8 + 17 * replicas + stringBytes + 24 + ops.count * 24)
        w.byte(Change.formatVersion)
        t.encode(into: &w)
        w.varint(names)
        for s in strings.list { w.string(s) }
        w.varint(seq)
        w.varint(startOp)
        w.signed(time)
        deps.encode(into: &w, &t)
        w.varint(ops.count)
        for op in ops { op.encode(into: &w, &t, &strings) }
        // A table grown while writing the body would make indices the written table lacks.
        precondition(
            t.list.count == replicas && strings.list.count == names,
            "Operation.collect missed a replica or string that Operation.encode refers to")
        return w.bytes
    }

    /// Decodes a change, rejecting malformed input with a typed error.
    public static func decode(_ bytes: [UInt8]) throws(DecodingError) -> Change {
        guard bytes.count <= maxEncodedSize else {
            throw DecodingError(.lengthOutOfRange, at: 0, "change of \(bytes.count) bytes exceeds \(maxEncodedSize)")
        }
        var r = BinaryReader(bytes)
        let version = try r.byte()
        guard version == formatVersion else {
            throw DecodingError(.unsupportedVersion, at: 0, "change format \(version); this build reads \(formatVersion)")
        }
        let t = try ReplicaTable.decode(from: &r)
        guard let author = t.list.first else { throw DecodingError(.invalidValue, at: 1, "no author") }
        let ns = try r.count(max: r.remaining)
        var strings: [String] = []
        strings.reserveCapacity(ns)
        for _ in 0..<ns { strings.append(try r.string()) }
        let seqAt = r.offset
        let seq = try r.varint()
        guard seq >= 1 else { throw DecodingError(.invalidValue, at: seqAt, "sequence numbers start at 1") }
        let startAt = r.offset
        let startOp = try r.varint()
        guard startOp >= 1, startOp < UInt64(1) << 62 else { throw DecodingError(.invalidValue, at: startAt, "op counter \(startOp)") }
        let time = try r.signed()
        let deps = try VersionVector.decode(from: &r, t)
        let n = try r.count(max: r.remaining)
        var ops: [Operation] = []
        ops.reserveCapacity(n)
        var c = startOp
        for _ in 0..<n {
            let op = try Operation.decode(from: &r, t, strings, id: OpID(counter: c, replica: author))
            c += UInt64(op.width)
            ops.append(op)
        }
        try r.expectEnd()
        return Change(author: author, seq: seq, startOp: startOp, time: time, deps: deps, ops: ops)
    }
}
