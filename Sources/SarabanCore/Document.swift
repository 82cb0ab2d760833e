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

    mutating func note(_ s: UInt64, _ t: Int64, _ field: String) {
        if s > seq {
            seq = s
            time = t
            fieldSet = [field]
        } else if s == seq {
            fieldSet.insert(field)
        }
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
    public private(set) var registers: [String: MVRegister] = [:]
    public internal(set) var texts: [String: TextCRDT] = [:]
    public private(set) var sets: [String: ORSet] = [:]
    public private(set) var lists: [String: AppendList] = [:]
    /// Per author, the latest change that edited a field, and the fields it edited.
    public private(set) var editors: [ReplicaID: EditMark] = [:]

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
        for k in registers.keys { out.append((k, .register)) }
        for k in texts.keys { out.append((k, .text)) }
        for k in sets.keys { out.append((k, .set)) }
        for k in lists.keys { out.append((k, .list)) }
        return out.sorted { $0.name != $1.name ? $0.name < $1.name : $0.kind.rawValue < $1.kind.rawValue }
    }

    public func kind(of field: String) -> FieldKind? {
        if registers[field] != nil { return .register }
        if texts[field] != nil { return .text }
        if sets[field] != nil { return .set }
        if lists[field] != nil { return .list }
        return nil
    }

    /// The field's shown value as text: the register winner, the text, the set's sorted
    /// elements or the list's values, one per line for sets and lists.
    public func display(_ field: String) -> String? {
        if let r = registers[field] { return r.winner?.value.description }
        if let t = texts[field] { return t.string }
        if let s = sets[field] { return s.values.joined(separator: "\n") }
        if let l = lists[field] { return l.entries.map(\.value.description).joined(separator: "\n") }
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
            for (author, mark) in editors {
                let unseen = deletions.contains { d in
                    (deletionSeen[d.stamp.op] ?? VersionVector())[author] < mark.seq
                }
                if unseen { edits[author] = mark }
            }
            if !edits.isEmpty { out.append(.deletion(deletions: deletions, concurrentEdits: edits)) }
        }
        for k in registers.keys.sorted() where registers[k]!.isConflicted {
            out.append(.register(field: k, values: registers[k]!.entries))
        }
        for k in sets.keys.sorted() {
            let s = sets[k]!
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
            registers[f, default: MVRegister()].apply(RegisterEntry(value: v, stamp: ctx.stamp(id)), pred: pred)
        case .textInsert(_, let f, let ins):
            texts[f, default: TextCRDT()].apply(ins)
        case .textDelete(_, let f, let del):
            texts[f, default: TextCRDT()].apply(del)
        case .setAdd(_, let f, let v, let clears):
            sets[f, default: ORSet()].add(v, stamp: ctx.stamp(id), clears: clears)
        case .setRemove(_, let f, let v, let observed):
            sets[f, default: ORSet()].remove(v, stamp: ctx.stamp(id), observed: observed, seen: ctx.clock)
        case .listAppend(_, let f, let v):
            lists[f, default: AppendList()].append(RegisterEntry(value: .string(v), stamp: ctx.stamp(id)))
        }
        if let f = op.field { noteEdit(by: ctx.change, time: ctx.time, field: f) }
    }

    mutating func noteEdit(by change: ChangeID, time: Int64, field: String) {
        editors[change.author, default: EditMark(seq: 0, time: time, fields: [])].note(change.seq, time, field)
    }

    private mutating func pruneDeletionSeen() {
        let live = Set(lifecycle.entries.map(\.stamp.op))
        for k in deletionSeen.keys where !live.contains(k) { deletionSeen[k] = nil }
    }

    // MARK: Snapshot encoding

    /// Snapshot format version.
    public static let snapshotVersion: UInt8 = 1

    /// The materialised state, so loading a document never replays its history.
    public func encoded() -> [UInt8] {
        var t = ReplicaTable()
        var b = BinaryWriter(capacity: 256)
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
        let rk = registers.keys.sorted()
        b.varint(rk.count)
        for k in rk {
            b.string(k)
            registers[k]!.encode(into: &b, &t)
        }
        let sk = sets.keys.sorted()
        b.varint(sk.count)
        for k in sk {
            b.string(k)
            sets[k]!.encode(into: &b, &t)
        }
        let lk = lists.keys.sorted()
        b.varint(lk.count)
        for k in lk {
            b.string(k)
            lists[k]!.encode(into: &b, &t)
        }
        let ek = editors.keys.sorted()
        b.varint(ek.count)
        for k in ek {
            let m = editors[k]!
            b.varint(t.index(k))
            b.varint(m.seq)
            b.signed(m.time)
            let fs = m.fields
            b.varint(fs.count)
            for f in fs { b.string(f) }
        }
        let tk = texts.keys.sorted()
        b.varint(tk.count)
        for k in tk {
            b.string(k)
            texts[k]!.encode(into: &b)
        }
        var w = BinaryWriter(capacity: b.bytes.count + 16 * t.list.count + 8)
        w.byte(Document.snapshotVersion)
        t.encode(into: &w)
        w.raw(b.bytes)
        return w.bytes
    }

    /// Decodes a snapshot, rejecting malformed input with a typed error.
    public static func decode(_ bytes: [UInt8]) throws(DecodingError) -> Document {
        var r = BinaryReader(bytes)
        let v = try r.byte()
        guard v == snapshotVersion else {
            throw DecodingError(.unsupportedVersion, at: 0, "snapshot format \(v); this build reads \(snapshotVersion)")
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
        for _ in 0..<nr {
            let k = try r.string()
            d.registers[k] = try MVRegister.decode(from: &r, t)
        }
        let ns = try r.count(max: r.remaining / 2)
        for _ in 0..<ns {
            let k = try r.string()
            d.sets[k] = try ORSet.decode(from: &r, t)
        }
        let nl = try r.count(max: r.remaining / 2)
        for _ in 0..<nl {
            let k = try r.string()
            d.lists[k] = try AppendList.decode(from: &r, t)
        }
        let ne = try r.count(max: r.remaining / 4)
        for _ in 0..<ne {
            let a = try t.read(&r)
            let seq = try r.varint()
            let time = try r.signed()
            let nf = try r.count(max: r.remaining)
            var fields = Set<String>()
            for _ in 0..<nf { fields.insert(try r.string()) }
            d.editors[a] = EditMark(seq: seq, time: time, fields: fields)
        }
        let nt = try r.count(max: r.remaining / 2)
        for _ in 0..<nt {
            let k = try r.string()
            d.texts[k] = try TextCRDT.decode(from: &r)
        }
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
}

extension Document {
    public var view: DocumentView {
        DocumentView(
            id: id, kind: kind, deleted: isDeleted,
            registers: registers.mapValues(\.entries),
            texts: texts.mapValues(\.string),
            sets: sets.mapValues(\.values),
            lists: lists.mapValues(\.entries),
            conflicts: conflicts
        )
    }
}
