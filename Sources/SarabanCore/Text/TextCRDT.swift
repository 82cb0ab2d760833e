// The public text CRDT: a value type over a copy-on-write engine.

final class TextBox: @unchecked Sendable {
    // Mutated only through TextCRDT after a uniqueness check, so sharing across threads is safe.
    // The engine sits behind a pointer so hot calls skip the dynamic exclusivity check a class
    // `var` would cost on every edit.
    let p: UnsafeMutablePointer<TextEngine>
    init(_ e: TextEngine) {
        p = .allocate(capacity: 1)
        p.initialize(to: e)
    }
    deinit {
        p.pointee.free()
        p.deinitialize(count: 1)
        p.deallocate()
    }
    @inline(__always) var e: TextEngine {
        unsafeAddress { UnsafePointer(p) }
        unsafeMutableAddress { p }
    }
}

/// A plain-text sequence CRDT (YjsMod / FugueMax integration over run-length items in a B+ tree).
///
/// Positions are Unicode scalars. Local edits return the op to send; remote ops are applied with
/// `apply` (causal delivery: origins first; idempotent). See Docs/TEXT-CRDT.md.
public struct TextCRDT: Sendable, Equatable {
    var box: TextBox

    public init() { box = TextBox(TextEngine()) }

    init(engine: TextEngine) { box = TextBox(engine) }

    @inline(__always)
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&box) { box = TextBox(box.e.clone()) }
    }

    /// Visible length in Unicode scalars.
    public var count: Int { box.e.vis }

    /// Length including deleted characters (tombstones).
    public var countWithTombstones: Int { box.e.tot }

    /// Number of runs held (including tombstone runs), before canonical merging.
    public var runCount: Int {
        var n = 0
        for l in 0..<box.e.leafLen.count { n += Int(box.e.leafLen[l]) }
        return n
    }

    public var string: String { String(decoding: box.e.utf8(), as: UTF8.self) }

    /// Local edit: inserts at visible position `pos` (Unicode scalars); ids start at `id`; returns the op to send.
    /// Traps if `pos` is outside 0...count; use `tryInsert` for untrusted positions.
    public mutating func insert(at pos: Int, _ text: String, id: OpID) -> TextInsert {
        precondition(pos >= 0 && pos <= box.e.vis, "text insert position out of range")
        makeUnique()
        return box.e.localInsert(at: pos, text, id: id)
    }

    /// Local edit: deletes `count` visible scalars at `pos`; returns the op to send (empty spans if nothing).
    /// Traps if the range is outside the text; use `tryDelete` for untrusted positions.
    public mutating func delete(at pos: Int, count: Int) -> TextDelete {
        precondition(pos >= 0 && count >= 0 && pos <= box.e.vis - count, "text delete range out of range")
        if count == 0 { return TextDelete(spans: []) }
        makeUnique()
        return box.e.localDelete(at: pos, count: count)
    }

    /// Checked local insert: throws `positionOutOfRange` or `idInUse` instead of trapping.
    public mutating func tryInsert(at pos: Int, _ text: String, id: OpID) throws(TextError) -> TextInsert {
        guard pos >= 0 && pos <= count else { throw .positionOutOfRange(position: pos, length: count) }
        let n = text.unicodeScalars.count
        guard id.counter <= UInt64.max - UInt64(n) else { throw .invalidOperation("id range overflows") }
        makeUnique()
        if n > 0 {
            box.e.ensureIndex()
            if let r = box.e.authorIndex[id.replica], box.e.index[Int(r)].overlaps(id.counter, id.counter + UInt64(n)) {
                throw .idInUse(id)
            }
        }
        return box.e.localInsert(at: pos, text, id: id)
    }

    /// Checked local delete: throws `positionOutOfRange` instead of trapping.
    public mutating func tryDelete(at pos: Int, count n: Int) throws(TextError) -> TextDelete {
        guard pos >= 0 && pos <= count else { throw .positionOutOfRange(position: pos, length: count) }
        guard n >= 0 && n <= count - pos else { throw .positionOutOfRange(position: pos + max(n, 0), length: count) }
        return delete(at: pos, count: n)
    }

    /// Remote insert (delivered causally: origins already present). Idempotent: re-applying is a no-op.
    /// An op that cannot apply (missing origin, malformed) is ignored; `tryApply` reports why.
    public mutating func apply(_ op: TextInsert) {
        try? tryApply(op)
    }

    /// Remote delete. Idempotent. Ignored if it names ids this replica lacks; `tryApply` reports why.
    public mutating func apply(_ op: TextDelete) {
        try? tryApply(op)
    }

    public mutating func tryApply(_ op: TextInsert) throws(TextError) {
        makeUnique()
        try box.e.applyInsert(op)
    }

    public mutating func tryApply(_ op: TextDelete) throws(TextError) {
        makeUnique()
        try box.e.applyDelete(op)
    }

    /// True if `op`'s origins are present (it can be applied now) or it is already applied.
    public func canApply(_ op: TextInsert) -> Bool {
        (op.originLeft.map { contains($0) } ?? true) && (op.originRight.map { contains($0) } ?? true)
    }

    public func contains(_ id: OpID) -> Bool { box.e.containsID(id) }

    /// Snapshot encoding of the full state (all runs incl. tombstones): columnar and canonical
    /// (replicas with the same state write the same bytes).
    public func encode(into w: inout BinaryWriter) { box.e.encodeSnapshot(into: &w) }

    public static func decode(from r: inout BinaryReader) throws(DecodingError) -> TextCRDT {
        TextCRDT(engine: try TextEngine.decodeSnapshot(from: &r))
    }

    /// Same logical state (ids, origins, tombstones, text), whatever the internal run splits.
    public static func == (a: TextCRDT, b: TextCRDT) -> Bool {
        if a.box === b.box { return true }
        var wa = BinaryWriter(capacity: 1024)
        var wb = BinaryWriter(capacity: 1024)
        a.encode(into: &wa)
        b.encode(into: &wb)
        return wa.bytes == wb.bytes
    }
}
