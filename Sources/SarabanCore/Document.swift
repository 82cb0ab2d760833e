/// The latest change in which an author edited a document's fields.
public struct EditMark: Hashable, Sendable {
    public var seq: UInt64
    public var time: Int64
    /// The fields that change edited.
    public var fieldSet: Set<String>

    public init(seq: UInt64, time: Int64, fields: Set<String>) {
        self.seq = seq
        self.time = time
        self.fieldSet = fields
    }

    /// The fields, sorted.
    public var fields: [String] { fieldSet.sorted() }
}

/// A document's record of an author's latest field edit (``EditMark`` with table positions).
struct AuthorMark: Sendable {
    var author: ReplicaID
    var seq: UInt64
    var time: Int64
    var fields = PositionSet()
}

/// A small set of field-table positions in insertion order (a `Set` only once it grows).
struct PositionSet: Sendable {
    private(set) var list: [Int32] = []
    private var lookup: Set<Int32>?

    init() {}

    /// Makes the set `[p]`, reusing a small buffer.
    mutating func reset(_ p: Int32) {
        lookup = nil
        if list.capacity <= 16 {
            list.removeAll(keepingCapacity: true)
            list.append(p)
        } else {
            list = [p]
        }
    }

    mutating func insert(_ p: Int32) {
        if lookup != nil {
            if lookup!.insert(p).inserted { list.append(p) }
            return
        }
        if list.contains(p) { return }
        list.append(p)
        if list.count > 16 { lookup = Set(list) }
    }
}

/// What the applying change contributes to every operation it carries.
public struct ChangeContext: Sendable {
    public var change: ChangeID
    public var time: Int64
    /// The change's dependencies (other authors' changes it had seen).
    public var deps: VersionVector

    public init(_ c: Change) {
        change = c.id
        time = c.time
        deps = c.deps
    }

    public init(change: ChangeID, time: Int64, deps: VersionVector) {
        self.change = change
        self.time = time
        self.deps = deps
    }

    /// The change's causal past including itself (built only for the operations that keep it).
    public var clock: VersionVector {
        var v = deps
        v[change.author] = change.seq
        return v
    }

    func stamp(_ op: OpID) -> Stamp { Stamp(op: op, change: change, time: time) }
}

/// A value kept in conflict, shown until a person resolves it.
public enum Conflict: Hashable, Sendable {
    /// Concurrent writes to one register field: every value, the shown winner first.
    case register(field: String, values: [RegisterEntry])
    /// A removal from a set that lost to adds made concurrently with it.
    case setRemoval(field: String, value: String, removal: Stamp, keptAdds: [Stamp])
    /// The document was deleted while other authors edited it: the deletions and those edits.
    case deletion(deletions: [RegisterEntry], concurrentEdits: [ReplicaID: EditMark])
    /// Concurrent deletion and restoration of the document.
    case lifecycle(values: [RegisterEntry])

    public var field: String? {
        switch self {
        case .register(let f, _), .setRemoval(let f, _, _, _): return f
        case .deletion, .lifecycle: return nil
        }
    }
}

/// The kind of container a field holds.
public enum FieldKind: String, Sendable, Hashable {
    case register, text, set, list
}

/// A document: named fields of several CRDT types, plus a lifecycle that supports deletion
/// without losing concurrent edits.
public struct Document: Sendable {
    public let id: DocID
    public private(set) var kind: String
    public private(set) var created: Stamp
    /// `true` alive, `false` deleted; a multi-value register so delete/restore races are kept.
    public private(set) var lifecycle = MVRegister()
    /// The causal past of each deletion entry in ``lifecycle``.
    public private(set) var deletionSeen: [OpID: VersionVector] = [:]
    /// Who may change the document; nil for an open document (anyone may).
    public private(set) var ownership: Ownership?
    /// Every field name, hashed once per lookup, with where its values sit in the columns below.
    var table = FieldTable()
    var registerColumn: [Named<MVRegister>] = []
    var textColumn: [Named<TextCRDT>] = []
    var setColumn: [Named<ORSet>] = []
    var listColumn: [Named<AppendList>] = []
    /// Per author, the latest change that edited a field, and the fields (table positions) it edited.
    var marks: [AuthorMark] = []

    public var registers: FieldMap<MVRegister> { FieldMap(table: table, kind: .register, column: registerColumn) }
    public var texts: FieldMap<TextCRDT> { FieldMap(table: table, kind: .text, column: textColumn) }
    public var sets: FieldMap<ORSet> { FieldMap(table: table, kind: .set, column: setColumn) }
    public var lists: FieldMap<AppendList> { FieldMap(table: table, kind: .list, column: listColumn) }

    /// Per author, the latest change that edited a field, and the fields it edited.
    public var editors: [ReplicaID: EditMark] {
        var out: [ReplicaID: EditMark] = [:]
        for m in marks { out[m.author] = editMark(m) }
        return out
    }

    func editMark(_ m: AuthorMark) -> EditMark {
        EditMark(seq: m.seq, time: m.time, fields: Set(m.fields.list.map { table.entries[Int($0)].name }))
    }

    public init(id: DocID, kind: String, created: Stamp) {
        self.id = id
        self.kind = kind
        self.created = created
        lifecycle.apply(RegisterEntry(value: .bool(true), stamp: created), pred: [])
    }

    public var isDeleted: Bool { lifecycle.winner?.value == .bool(false) }

    /// All field names with their kinds, sorted by name.
    public var fields: [(name: String, kind: FieldKind)] {
        var out: [(name: String, kind: FieldKind)] = []
        for e in registerColumn { out.append((e.name, .register)) }
        for e in textColumn { out.append((e.name, .text)) }
        for e in setColumn { out.append((e.name, .set)) }
        for e in listColumn { out.append((e.name, .list)) }
        return out.sorted { $0.name != $1.name ? $0.name < $1.name : $0.kind.rawValue < $1.kind.rawValue }
    }

    /// The kind of the field (the first present of register, text, set, list), or nil.
    public func kind(of field: String) -> FieldKind? {
        guard let p = table.find(field) else { return nil }
        return table.entries[p].firstKind
    }

    /// The field's shown value as text: the register winner, the text, the set's sorted
    /// elements or the list's values, one per line for sets and lists.
    public func display(_ field: String) -> String? {
        guard let p = table.find(field) else { return nil }
        let e = table.entries[p]
        if e[.register] >= 0 { return registerColumn[Int(e[.register])].value.winner?.value.description }
        if e[.text] >= 0 { return textColumn[Int(e[.text])].value.string }
        if e[.set] >= 0 { return setColumn[Int(e[.set])].value.values.joined(separator: "\n") }
        if e[.list] >= 0 { return listColumn[Int(e[.list])].value.entries.map(\.value.description).joined(separator: "\n") }
        return nil
    }

    /// Every kept conflict in the document, in a stable order.
    public var conflicts: [Conflict] {
        var out: [Conflict] = []
        let deletions = lifecycle.entries.filter { $0.value == .bool(false) }
        if lifecycle.isConflicted && deletions.count < lifecycle.entries.count {
            out.append(.lifecycle(values: lifecycle.entries))
        }
        if isDeleted {
            var edits: [ReplicaID: EditMark] = [:]
            for mark in marks {
                let unseen = deletions.contains { d in
                    (deletionSeen[d.stamp.op] ?? VersionVector())[mark.author] < mark.seq
                }
                if unseen { edits[mark.author] = editMark(mark) }
            }
            if !edits.isEmpty { out.append(.deletion(deletions: deletions, concurrentEdits: edits)) }
        }
        for e in registerColumn.sorted(by: { $0.name < $1.name }) where e.value.isConflicted {
            out.append(.register(field: e.name, values: e.value.entries))
        }
        for e in setColumn.sorted(by: { $0.name < $1.name }) {
            let k = e.name
            let s = e.value
            for v in s.contestedValues {
                for c in s.contested(v) {
                    out.append(.setRemoval(field: k, value: v, removal: c.removal.stamp, keptAdds: c.keptAdds))
                }
            }
        }
        return out
    }

    // MARK: Applying operations

    /// Applies one operation of a change to this document. Operations are deterministic:
    /// any replica applying the same changes in any causal order reaches the same state.
    public mutating func apply(_ op: Operation, id: OpID, context ctx: ChangeContext) {
        // An owned document is invisible to a change that has not seen its creation, as it is to
        // a replica that has not received it yet: every replica ignores the operation alike.
        if ownership != nil && created.change != ctx.change && !ctx.includes(created.change) { return }
        switch op {
        case .createDocument:
            return
        case .deleteDocument(_, let pred):
            lifecycle.apply(RegisterEntry(value: .bool(false), stamp: ctx.stamp(id)), pred: pred)
            deletionSeen[id] = ctx.clock
            pruneDeletionSeen()
            return
        case .restoreDocument(_, let pred):
            lifecycle.apply(RegisterEntry(value: .bool(true), stamp: ctx.stamp(id)), pred: pred)
            pruneDeletionSeen()
            return
        case .set(_, let f, let v, let pred):
            let (p, s) = Self.slot(f, .register, &table, &registerColumn, MVRegister.init)
            registerColumn[s].value.apply(RegisterEntry(value: v, stamp: ctx.stamp(id)), pred: pred)
            note(ctx.change, ctx.time, p)
        case .textInsert(_, let f, let ins):
            let (p, s) = Self.slot(f, .text, &table, &textColumn, TextCRDT.init)
            textColumn[s].value.apply(ins)
            note(ctx.change, ctx.time, p)
        case .textDelete(_, let f, let del):
            let (p, s) = Self.slot(f, .text, &table, &textColumn, TextCRDT.init)
            textColumn[s].value.apply(del)
            note(ctx.change, ctx.time, p)
        case .setAdd(_, let f, let v, let clears):
            let (p, s) = Self.slot(f, .set, &table, &setColumn, ORSet.init)
            setColumn[s].value.add(v, stamp: ctx.stamp(id), clears: clears)
            note(ctx.change, ctx.time, p)
        case .setRemove(_, let f, let v, let observed):
            let (p, s) = Self.slot(f, .set, &table, &setColumn, ORSet.init)
            setColumn[s].value.remove(v, stamp: ctx.stamp(id), observed: observed, seen: ctx.clock)
            note(ctx.change, ctx.time, p)
        case .listAppend(_, let f, let v):
            let (p, s) = Self.slot(f, .list, &table, &listColumn, AppendList.init)
            listColumn[s].value.append(RegisterEntry(value: .string(v), stamp: ctx.stamp(id)))
            note(ctx.change, ctx.time, p)
        case .own(_, let grant, let revoke):
            // Whether the change may do this was decided before it was applied (Change.apply).
            if ownership == nil { ownership = Ownership() }
            ownership!.apply(grant: grant, revoke: revoke, context: ctx)
        }
    }

    /// Whether a change in context `ctx` may touch this document (``Ownership``); nil when it
    /// may. A change touching a document it created is always allowed.
    public func refusal(of op: Operation, context ctx: ChangeContext) -> ChangeRefusal? {
        if created.change == ctx.change { return nil }
        guard let o = ownership else {
            if case .own = op { return ChangeRefusal(document: id, reason: .ownedAfterCreation) }
            return nil
        }
        // Not seen by the change: its operations on it are ignored (see apply), not refused.
        if !ctx.includes(created.change) { return nil }
        return o.isOwner(ctx.change.author, inPastOf: ctx) ? nil : ChangeRefusal(document: id, reason: .notOwner)
    }

    /// The table position of `name` and the column position of its field of `kind`, both made
    /// when absent. One hash of the name.
    @inline(__always)
    static func slot<T>(
        _ name: String, _ kind: FieldKind, _ table: inout FieldTable, _ column: inout [Named<T>], _ make: () -> T
    ) -> (position: Int, slot: Int) {
        let h = FieldTable.hash(name)
        let p = table.find(name, hash: h) ?? table.append(name, hash: h)
        return (p, slot(at: p, kind, &table, &column, make))
    }

    /// The column position of the field of `kind` at table position `p`, made when absent.
    @inline(__always)
    static func slot<T>(
        at p: Int, _ kind: FieldKind, _ table: inout FieldTable, _ column: inout [Named<T>], _ make: () -> T
    ) -> Int {
        let s = table.entries[p][kind]
        if s >= 0 { return Int(s) }
        column.append(Named(name: table.entries[p].name, value: make()))
        table.setSlot(p, kind, column.count - 1)
        return column.count - 1
    }

    /// Runs `body` on the text field `name` (made when absent) and notes the edit.
    mutating func editText<R>(_ name: String, context ctx: ChangeContext, _ body: (inout TextCRDT) -> R) -> R {
        let (p, s) = Self.slot(name, .text, &table, &textColumn, TextCRDT.init)
        let r = body(&textColumn[s].value)
        note(ctx.change, ctx.time, p)
        return r
    }

    /// A local register write superseding every value visible here: the same result as applying
    /// `.set(…, pred: visibleIDs)`, with one lookup of the name. Returns the `pred` to send.
    /// Refuses a field that holds another kind.
    mutating func localSet(_ name: String, _ value: Value, id: OpID, context ctx: ChangeContext) throws(EditError)
        -> [OpID]
    {
        let h = FieldTable.hash(name)
        let p: Int
        if let q = table.find(name, hash: h) {
            if table.entries[q][.register] < 0, let k = table.entries[q].firstKind {
                throw Self.kindMismatch(name, k, .register)
            }
            p = q
        } else {
            p = table.append(name, hash: h)
        }
        let s = Self.slot(at: p, .register, &table, &registerColumn, MVRegister.init)
        let pred = registerColumn[s].value.supersedeAll(with: RegisterEntry(value: value, stamp: ctx.stamp(id)))
        note(ctx.change, ctx.time, p)
        return pred
    }

    static func kindMismatch(_ field: String, _ has: FieldKind, _ wanted: FieldKind) -> EditError {
        EditError(.fieldKindMismatch, "field '\(field)' holds a \(has.rawValue), not a \(wanted.rawValue)")
    }

    /// Records that `change` edited the field at table position `position`.
    mutating func note(_ change: ChangeID, _ time: Int64, _ position: Int) {
        let p = Int32(truncatingIfNeeded: position)
        var i = 0
        while i < marks.count && marks[i].author != change.author { i += 1 }
        if i == marks.count { marks.append(AuthorMark(author: change.author, seq: 0, time: time)) }
        if change.seq > marks[i].seq {
            marks[i].seq = change.seq
            marks[i].time = time
            marks[i].fields.reset(p)
        } else if change.seq == marks[i].seq {
            marks[i].fields.insert(p)
        }
    }

    /// Sets a decoded field value (a later duplicate name replaces the earlier one).
    @inline(__always)
    private static func store<T>(
        _ name: String, _ value: consuming T, _ kind: FieldKind, _ table: inout FieldTable, _ column: inout [Named<T>]
    ) {
        let h = FieldTable.hash(name)
        let p = table.find(name, hash: h) ?? table.append(name, hash: h)
        let s = table.entries[p][kind]
        if s >= 0 {
            column[Int(s)].value = value
        } else {
            column.append(Named(name: name, value: value))
            table.setSlot(p, kind, column.count - 1)
        }
    }

    private mutating func pruneDeletionSeen() {
        let live = Set(lifecycle.entries.map(\.stamp.op))
        for k in deletionSeen.keys where !live.contains(k) { deletionSeen[k] = nil }
    }

    // MARK: Snapshot encoding

    /// Snapshot format version: 1 for an open document, 2 for an owned one (version 1 followed
    /// by the ``Ownership``), so every snapshot written before ownership existed reads unchanged.
    public static let snapshotVersion: UInt8 = 1
    static let ownedSnapshotVersion: UInt8 = 2

    /// The materialised state, so loading a document never replays its history.
    public func encoded() -> [UInt8] {
        // (Columns of 0 or 1 entries are used as they are: sorting would only copy them.)
        var t = ReplicaTable()
        var b = BinaryWriter(capacity: 512)
        b.varint(id.op.counter)
        b.varint(t.index(id.op.replica))
        b.string(kind)
        created.encode(into: &b, &t)
        lifecycle.encode(into: &b, &t)
        let dk = deletionSeen.keys.sorted()
        b.varint(dk.count)
        for k in dk {
            b.varint(k.counter)
            b.varint(t.index(k.replica))
            deletionSeen[k]!.encode(into: &b, &t)
        }
        let rk = registerColumn.count < 2 ? registerColumn : registerColumn.sorted { $0.name < $1.name }
        b.varint(rk.count)
        for e in rk {
            b.string(e.name)
            e.value.encode(into: &b, &t)
        }
        let sk = setColumn.count < 2 ? setColumn : setColumn.sorted { $0.name < $1.name }
        b.varint(sk.count)
        for e in sk {
            b.string(e.name)
            e.value.encode(into: &b, &t)
        }
        let lk = listColumn.count < 2 ? listColumn : listColumn.sorted { $0.name < $1.name }
        b.varint(lk.count)
        for e in lk {
            b.string(e.name)
            e.value.encode(into: &b, &t)
        }
        let ek = marks.count < 2 ? marks : marks.sorted { $0.author < $1.author }
        b.varint(ek.count)
        for m in ek {
            b.varint(t.index(m.author))
            b.varint(m.seq)
            b.signed(m.time)
            let fs = m.fields.list.map { table.entries[Int($0)].name }.sorted()
            b.varint(fs.count)
            for f in fs { b.string(f) }
        }
        let tk = textColumn.count < 2 ? textColumn : textColumn.sorted { $0.name < $1.name }
        b.varint(tk.count)
        for e in tk {
            b.string(e.name)
            e.value.encode(into: &b)
        }
        ownership?.encode(into: &b, &t)
        var w = BinaryWriter(capacity: b.bytes.count + 16 * t.list.count + 8)
        w.byte(ownership == nil ? Document.snapshotVersion : Document.ownedSnapshotVersion)
        t.encode(into: &w)
        w.raw(b.bytes)
        return w.bytes
    }

    /// Decodes a snapshot, rejecting malformed input with a typed error.
    public static func decode(_ bytes: [UInt8]) throws(DecodingError) -> Document {
        var r = BinaryReader(bytes)
        let v = try r.byte()
        guard v == snapshotVersion || v == ownedSnapshotVersion else {
            throw DecodingError(
                .unsupportedVersion, at: 0, "snapshot format \(v); this build reads \(snapshotVersion) and \(ownedSnapshotVersion)")
        }
        let t = try ReplicaTable.decode(from: &r)
        let id = DocID(try t.readOp(&r))
        let kind = try r.string()
        let created = try Stamp.decode(from: &r, t)
        var d = Document(id: id, kind: kind, created: created)
        d.lifecycle = try MVRegister.decode(from: &r, t)
        let nd = try r.count(max: r.remaining / 2)
        for _ in 0..<nd {
            let k = try t.readOp(&r)
            d.deletionSeen[k] = try VersionVector.decode(from: &r, t)
        }
        let nr = try r.count(max: r.remaining / 2)
        // Bounded: a hostile count must not make a large allocation up front.
        d.table.reserve(Swift.min(nr, 1 << 16))
        d.registerColumn.reserveCapacity(Swift.min(nr, 1 << 16))
        for _ in 0..<nr {
            let k = try r.string()
            store(k, try MVRegister.decode(from: &r, t), .register, &d.table, &d.registerColumn)
        }
        let ns = try r.count(max: r.remaining / 2)
        for _ in 0..<ns {
            let k = try r.string()
            store(k, try ORSet.decode(from: &r, t), .set, &d.table, &d.setColumn)
        }
        let nl = try r.count(max: r.remaining / 2)
        for _ in 0..<nl {
            let k = try r.string()
            store(k, try AppendList.decode(from: &r, t), .list, &d.table, &d.listColumn)
        }
        let ne = try r.count(max: r.remaining / 4)
        for _ in 0..<ne {
            let a = try t.read(&r)
            let seq = try r.varint()
            let time = try r.signed()
            let nf = try r.count(max: r.remaining)
            var fields = PositionSet()
            for _ in 0..<nf {
                let name = try r.string()
                let h = FieldTable.hash(name)
                fields.insert(Int32(d.table.find(name, hash: h) ?? d.table.append(name, hash: h)))
            }
            let mark = AuthorMark(author: a, seq: seq, time: time, fields: fields)
            if let i = d.marks.firstIndex(where: { $0.author == a }) { d.marks[i] = mark } else { d.marks.append(mark) }
        }
        let nt = try r.count(max: r.remaining / 2)
        for _ in 0..<nt {
            let k = try r.string()
            store(k, try TextCRDT.decode(from: &r), .text, &d.table, &d.textColumn)
        }
        if v == ownedSnapshotVersion { d.ownership = try Ownership.decode(from: &r, t) }
        try r.expectEnd()
        return d
    }
}

// MARK: - A summary for comparing replicas

/// The observable state of a document: what every replica must agree on after convergence.
public struct DocumentView: Hashable, Sendable {
    public var id: DocID
    public var kind: String
    public var deleted: Bool
    public var registers: [String: [RegisterEntry]]
    public var texts: [String: String]
    public var sets: [String: [String]]
    public var lists: [String: [RegisterEntry]]
    public var conflicts: [Conflict]
    /// nil for an open document.
    public var owners: Set<ReplicaID>?
}

extension Document {
    public var view: DocumentView {
        DocumentView(
            id: id, kind: kind, deleted: isDeleted,
            registers: registers.mapValues(\.entries),
            texts: texts.mapValues(\.string),
            sets: sets.mapValues(\.values),
            lists: lists.mapValues(\.entries),
            conflicts: conflicts,
            owners: ownership?.owners
        )
    }
}
