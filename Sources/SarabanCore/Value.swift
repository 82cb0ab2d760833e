/// A register value. Text for now; later issues add more types.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case bytes([UInt8])

    public var description: String {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .bytes(let b): return "0x" + Hex.encode(b)
        }
    }

    /// The string value, if this is one.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    func encode(into w: inout BinaryWriter) {
        switch self {
        case .string(let s): w.byte(0); w.string(s)
        case .int(let i): w.byte(1); w.signed(i)
        case .bool(let b): w.byte(b ? 3 : 2)
        case .bytes(let b): w.byte(4); w.lengthPrefixed(b)
        }
    }

    static func decode(from r: inout BinaryReader) throws(DecodingError) -> Value {
        let at = r.offset
        switch try r.byte() {
        case 0: return .string(try r.string())
        case 1: return .int(try r.signed())
        case 2: return .bool(false)
        case 3: return .bool(true)
        case 4: return .bytes(Array(try r.lengthPrefixed()))
        case let t: throw DecodingError(.unknownTag, at: at, "value tag \(t)")
        }
    }
}

/// When and by whom an operation was made: shown next to every kept conflicting value.
public struct Stamp: Hashable, Sendable, Comparable {
    /// The operation's id (its Lamport counter and replica).
    public var op: OpID
    /// The change that carried it.
    public var change: ChangeID
    /// The author's wall-clock time, milliseconds since 1970 (informational: never used to order).
    public var time: Int64

    public init(op: OpID, change: ChangeID, time: Int64) {
        self.op = op
        self.change = change
        self.time = time
    }

    public static func < (a: Stamp, b: Stamp) -> Bool { a.op < b.op }

    func encode(into w: inout BinaryWriter, _ t: inout ReplicaTable) {
        w.varint(op.counter)
        w.varint(t.index(op.replica))
        w.varint(t.index(change.author))
        w.varint(change.seq)
        w.signed(time)
    }

    static func decode(from r: inout BinaryReader, _ t: ReplicaTable) throws(DecodingError) -> Stamp {
        let counter = try r.varint()
        let replica = try t.read(&r)
        let author = try t.read(&r)
        let seq = try r.varint()
        let time = try r.signed()
        return Stamp(op: OpID(counter: counter, replica: replica), change: ChangeID(author: author, seq: seq), time: time)
    }
}

/// Distinct values in first-seen order, each referred to by its index (the replica and string
/// tables of an encoded blob).
struct IndexedList<Element: Hashable> {
    private(set) var list: [Element] = []
    private var indexOf: [Element: Int] = [:]

    init() {}

    /// The index of `x`, appended when new.
    mutating func index(_ x: Element) -> Int {
        // Most blobs name a handful of replicas and fields: a scan beats hashing until the table grows.
        if list.count <= 8 {
            for i in list.indices where list[i] == x { return i }
            if list.count == 8 { for (i, y) in list.enumerated() { indexOf[y] = i } } else {
                list.append(x)
                return list.count - 1
            }
        }
        if let i = indexOf[x] { return i }
        indexOf[x] = list.count
        list.append(x)
        return list.count - 1
    }
}

/// Replicas written once per encoded blob and referred to by index.
struct ReplicaTable {
    private var table = IndexedList<ReplicaID>()
    var list: [ReplicaID] { table.list }

    init() {}
    init(_ list: [ReplicaID]) {
        for r in list { _ = index(r) }
    }

    mutating func index(_ r: ReplicaID) -> Int { table.index(r) }

    func read(_ r: inout BinaryReader) throws(DecodingError) -> ReplicaID {
        let at = r.offset
        let i = try r.varint()
        guard i < UInt64(list.count) else { throw DecodingError(.invalidReference, at: at, "replica \(i) of \(list.count)") }
        return list[Int(i)]
    }

    func readOp(_ r: inout BinaryReader) throws(DecodingError) -> OpID {
        let c = try r.varint()
        return OpID(counter: c, replica: try read(&r))
    }

    func encode(into w: inout BinaryWriter) {
        w.varint(list.count)
        for r in list { w.replica(r) }
    }

    static func decode(from r: inout BinaryReader) throws(DecodingError) -> ReplicaTable {
        let n = try r.count(max: r.remaining / 16)
        var t = ReplicaTable()
        for _ in 0..<n { _ = t.index(try r.replica()) }
        return t
    }
}
