/// A document's field names, each hashed once per lookup: name → where the field's register,
/// text, set and list (any of which may exist, since replicas may concurrently create one name
/// as two kinds) sit in the document's per-kind columns.
///
/// An open-addressing table that keeps every name's hash, so growing it never hashes a string
/// again. Names are only ever added (fields are never removed). Hashing and equality are
/// `String`'s own, so canonically equivalent names are one field, as with a `Dictionary`.
struct FieldTable: Sendable {
    struct Entry: Sendable {
        var name: String
        var hash: Int
        /// Position in the register, text, set and list columns, or -1.
        var slots: (Int32, Int32, Int32, Int32) = (-1, -1, -1, -1)

        subscript(kind: FieldKind) -> Int32 {
            get {
                switch kind {
                case .register: return slots.0
                case .text: return slots.1
                case .set: return slots.2
                case .list: return slots.3
                }
            }
            set {
                switch kind {
                case .register: slots.0 = newValue
                case .text: slots.1 = newValue
                case .set: slots.2 = newValue
                case .list: slots.3 = newValue
                }
            }
        }

        /// The first kind present, in the order register, text, set, list.
        var firstKind: FieldKind? {
            if slots.0 >= 0 { return .register }
            if slots.1 >= 0 { return .text }
            if slots.2 >= 0 { return .set }
            if slots.3 >= 0 { return .list }
            return nil
        }
    }

    private(set) var entries: [Entry] = []
    /// Entry position + 1 (0: empty); the count is 0 or a power of two, at most 3/4 full.
    private var buckets: [Int32] = []

    init() {}

    @inline(__always)
    static func hash(_ name: String) -> Int { name.hashValue }

    /// The entry's position, or nil.
    @inline(__always)
    func find(_ name: String, hash h: Int) -> Int? {
        if buckets.isEmpty { return nil }
        let mask = buckets.count &- 1
        var b = h & mask
        return buckets.withUnsafeBufferPointer { bp in
            entries.withUnsafeBufferPointer { ep in
                while true {
                    let p = Int(bp[b])
                    if p == 0 { return nil }
                    let e = ep[p &- 1]
                    if e.hash == h && e.name == name { return p &- 1 }
                    b = (b &+ 1) & mask
                }
            }
        }
    }

    func find(_ name: String) -> Int? { find(name, hash: Self.hash(name)) }

    /// The column position of `name`'s field of `kind`, or nil.
    func slot(_ name: String, _ kind: FieldKind) -> Int? {
        guard let p = find(name) else { return nil }
        let s = entries[p][kind]
        return s >= 0 ? Int(s) : nil
    }

    /// Adds a name that is not in the table; returns its position.
    mutating func append(_ name: String, hash h: Int) -> Int {
        if (entries.count + 1) * 4 > buckets.count * 3 { grow() }
        let p = entries.count
        entries.append(Entry(name: name, hash: h))
        place(p, h)
        return p
    }

    /// Makes room for `n` more names without growing on the way.
    mutating func reserve(_ n: Int) {
        let want = entries.count + n
        entries.reserveCapacity(want)
        var size = Swift.max(8, buckets.count)
        while want * 4 > size * 3 { size *= 2 }
        if size > buckets.count {
            buckets = [Int32](repeating: 0, count: size)
            for p in entries.indices { place(p, entries[p].hash) }
        }
    }

    @inline(__always)
    mutating func setSlot(_ position: Int, _ kind: FieldKind, _ slot: Int) {
        entries[position][kind] = Int32(slot)
    }

    private mutating func grow() {
        let n = Swift.max(8, buckets.count * 2)
        buckets = [Int32](repeating: 0, count: n)
        for p in entries.indices { place(p, entries[p].hash) }
    }

    private mutating func place(_ p: Int, _ h: Int) {
        let mask = buckets.count - 1
        var b = h & mask
        while buckets[b] != 0 { b = (b + 1) & mask }
        buckets[b] = Int32(p + 1)
    }
}

/// One kind of a document's fields (its registers, texts, sets or lists), read like a dictionary
/// from field name to value: `doc.registers["เรื่อง"]`, `for (name, r) in doc.registers`.
/// Iteration follows the order the fields were created here; sort the names for a stable order.
public struct FieldMap<Value>: RandomAccessCollection {
    let table: FieldTable
    let kind: FieldKind
    let column: [Named<Value>]

    public typealias Element = (key: String, value: Value)
    public typealias Index = Int

    public var startIndex: Int { 0 }
    public var endIndex: Int { column.count }

    public subscript(position: Int) -> (key: String, value: Value) {
        let e = column[position]
        return (e.name, e.value)
    }

    /// The field's value, or nil when the document has no field of this kind with that name.
    public subscript(name: String) -> Value? {
        guard let s = table.slot(name, kind) else { return nil }
        return column[s].value
    }

    public var keys: [String] { column.map(\.name) }
    public var values: [Value] { column.map(\.value) }

    public func mapValues<T>(_ transform: (Value) throws -> T) rethrows -> [String: T] {
        var out: [String: T] = [:]
        out.reserveCapacity(column.count)
        for e in column { out[e.name] = try transform(e.value) }
        return out
    }
}

extension FieldMap: Sendable where Value: Sendable {}

/// A field's value stored with its name.
struct Named<Value> {
    let name: String
    var value: Value
}

extension Named: Sendable where Value: Sendable {}
