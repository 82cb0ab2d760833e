/// One operation inside a change. Its id is derived from the change: the first operation gets
/// the change's `startOp` counter, and each operation advances the counter by its ``width``
/// (a text insert of n scalars takes n consecutive ids, everything else one).
public enum Operation: Hashable, Sendable {
    /// Creates a document; the new document's id is this operation's id.
    case createDocument(kind: String)
    /// Deletes a document, superseding the lifecycle entries it saw. Edits made concurrently
    /// with the deletion stay visible as a conflict until someone restores or deletes again.
    case deleteDocument(doc: DocID, pred: [OpID])
    /// Restores a deleted document, superseding the lifecycle entries it saw.
    case restoreDocument(doc: DocID, pred: [OpID])
    /// Writes a multi-value register, superseding exactly the values in `pred`.
    case set(doc: DocID, field: String, value: Value, pred: [OpID])
    case textInsert(doc: DocID, field: String, TextInsert)
    case textDelete(doc: DocID, field: String, TextDelete)
    /// Adds `value` to an add-wins set; `clears` names removals whose conflict this add settles.
    case setAdd(doc: DocID, field: String, value: String, clears: [OpID])
    /// Removes the add-tags of `value` that the author had observed.
    case setRemove(doc: DocID, field: String, value: String, observed: [OpID])
    /// Appends to an append-only list (routing logs, comments).
    case listAppend(doc: DocID, field: String, value: String)
    /// Names who may change an owned document (see ``Ownership``). In the change that creates
    /// the document it makes the document owned (`grant` are its first owners; an empty `grant`
    /// seals it: nobody may change it afterwards); later, only an owner may grant or revoke.
    case own(doc: DocID, grant: [ReplicaID], revoke: [ReplicaID])

    /// How many op ids this operation consumes.
    public var width: Int {
        if case .textInsert(_, _, let ins) = self { return max(1, ins.content.unicodeScalars.count) }
        return 1
    }

    /// The document the operation targets (nil for a creation, whose document is its own id).
    public var document: DocID? {
        switch self {
        case .createDocument: return nil
        case .deleteDocument(let d, _), .restoreDocument(let d, _), .set(let d, _, _, _), .textInsert(let d, _, _),
            .textDelete(let d, _, _), .setAdd(let d, _, _, _), .setRemove(let d, _, _, _), .listAppend(let d, _, _),
            .own(let d, _, _):
            return d
        }
    }

    /// The field the operation touches, if any.
    public var field: String? {
        switch self {
        case .createDocument, .deleteDocument, .restoreDocument, .own: return nil
        case .set(_, let f, _, _), .textInsert(_, let f, _), .textDelete(_, let f, _), .setAdd(_, let f, _, _),
            .setRemove(_, let f, _, _), .listAppend(_, let f, _):
            return f
        }
    }
}

extension Operation {
    // Tags of the binary encoding; new kinds get new tags, old tags never change meaning.
    enum Tag: UInt8 {
        case createDocument = 1, deleteDocument, restoreDocument, set, textInsert, textDelete, setAdd, setRemove, listAppend
        case own
    }

    func encode(into w: inout BinaryWriter, _ t: inout ReplicaTable, _ strings: inout StringTable) {
        func doc(_ d: DocID) {
            w.varint(d.op.counter)
            w.varint(t.index(d.op.replica))
        }
        func ops(_ list: [OpID]) {
            w.varint(list.count)
            for o in list {
                w.varint(o.counter)
                w.varint(t.index(o.replica))
            }
        }
        switch self {
        case .createDocument(let kind):
            w.byte(Tag.createDocument.rawValue)
            w.varint(strings.index(kind))
        case .deleteDocument(let d, let pred):
            w.byte(Tag.deleteDocument.rawValue); doc(d); ops(pred)
        case .restoreDocument(let d, let pred):
            w.byte(Tag.restoreDocument.rawValue); doc(d); ops(pred)
        case .set(let d, let f, let v, let pred):
            w.byte(Tag.set.rawValue); doc(d); w.varint(strings.index(f)); v.encode(into: &w); ops(pred)
        case .textInsert(let d, let f, let ins):
            w.byte(Tag.textInsert.rawValue); doc(d); w.varint(strings.index(f))
            var origins: [OpID] = []
            var flags: UInt8 = 0
            if let l = ins.originLeft { flags |= 1; origins.append(l) }
            if let r = ins.originRight { flags |= 2; origins.append(r) }
            w.byte(flags)
            for o in origins {
                w.varint(o.counter)
                w.varint(t.index(o.replica))
            }
            w.string(ins.content)
        case .textDelete(let d, let f, let del):
            w.byte(Tag.textDelete.rawValue); doc(d); w.varint(strings.index(f))
            w.varint(del.spans.count)
            for s in del.spans {
                w.varint(s.start.counter)
                w.varint(t.index(s.start.replica))
                w.varint(s.length)
            }
        case .setAdd(let d, let f, let v, let clears):
            w.byte(Tag.setAdd.rawValue); doc(d); w.varint(strings.index(f)); w.string(v); ops(clears)
        case .setRemove(let d, let f, let v, let observed):
            w.byte(Tag.setRemove.rawValue); doc(d); w.varint(strings.index(f)); w.string(v); ops(observed)
        case .listAppend(let d, let f, let v):
            w.byte(Tag.listAppend.rawValue); doc(d); w.varint(strings.index(f)); w.string(v)
        case .own(let d, let grant, let revoke):
            w.byte(Tag.own.rawValue); doc(d)
            w.varint(grant.count)
            for g in grant { w.varint(t.index(g)) }
            w.varint(revoke.count)
            for g in revoke { w.varint(t.index(g)) }
        }
    }

    /// Adds the replicas and strings ``encode(into:_:_:)`` refers to, in the order it refers to them.
    func collect(_ t: inout ReplicaTable, _ strings: inout StringTable) {
        switch self {
        case .createDocument(let kind):
            _ = strings.index(kind)
        case .deleteDocument(let d, let pred), .restoreDocument(let d, let pred):
            _ = t.index(d.op.replica)
            for o in pred { _ = t.index(o.replica) }
        case .set(let d, let f, _, let pred):
            _ = t.index(d.op.replica)
            _ = strings.index(f)
            for o in pred { _ = t.index(o.replica) }
        case .textInsert(let d, let f, let ins):
            _ = t.index(d.op.replica)
            _ = strings.index(f)
            if let l = ins.originLeft { _ = t.index(l.replica) }
            if let r = ins.originRight { _ = t.index(r.replica) }
        case .textDelete(let d, let f, let del):
            _ = t.index(d.op.replica)
            _ = strings.index(f)
            for s in del.spans { _ = t.index(s.start.replica) }
        case .setAdd(let d, let f, _, let list), .setRemove(let d, let f, _, let list):
            _ = t.index(d.op.replica)
            _ = strings.index(f)
            for o in list { _ = t.index(o.replica) }
        case .listAppend(let d, let f, _):
            _ = t.index(d.op.replica)
            _ = strings.index(f)
        case .own(let d, let grant, let revoke):
            _ = t.index(d.op.replica)
            for g in grant { _ = t.index(g) }
            for g in revoke { _ = t.index(g) }
        }
    }

    /// Decodes one operation; `id` is the id this operation receives (text inserts carry it).
    static func decode(from r: inout BinaryReader, _ t: ReplicaTable, _ strings: [String], id: OpID)
        throws(DecodingError) -> Operation
    {
        func doc(_ r: inout BinaryReader) throws(DecodingError) -> DocID { DocID(try t.readOp(&r)) }
        func str(_ r: inout BinaryReader) throws(DecodingError) -> String {
            let at = r.offset
            let i = try r.varint()
            guard i < UInt64(strings.count) else { throw DecodingError(.invalidReference, at: at, "string \(i)") }
            return strings[Int(i)]
        }
        func ops(_ r: inout BinaryReader) throws(DecodingError) -> [OpID] {
            let n = try r.count(max: r.remaining / 2)
            var out: [OpID] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try t.readOp(&r)) }
            return out
        }
        let at = r.offset
        let raw = try r.byte()
        guard let tag = Tag(rawValue: raw) else { throw DecodingError(.unknownTag, at: at, "operation tag \(raw)") }
        switch tag {
        case .createDocument: return .createDocument(kind: try str(&r))
        case .deleteDocument: return .deleteDocument(doc: try doc(&r), pred: try ops(&r))
        case .restoreDocument: return .restoreDocument(doc: try doc(&r), pred: try ops(&r))
        case .set:
            let d = try doc(&r)
            let f = try str(&r)
            let v = try Value.decode(from: &r)
            return .set(doc: d, field: f, value: v, pred: try ops(&r))
        case .textInsert:
            let d = try doc(&r)
            let f = try str(&r)
            let flagsAt = r.offset
            let flags = try r.byte()
            guard flags & ~3 == 0 else { throw DecodingError(.invalidValue, at: flagsAt, "insert flags \(flags)") }
            let left = flags & 1 != 0 ? try t.readOp(&r) : nil
            let right = flags & 2 != 0 ? try t.readOp(&r) : nil
            let contentAt = r.offset
            let content = try r.string()
            guard !content.isEmpty else { throw DecodingError(.invalidValue, at: contentAt, "empty text insert") }
            return .textInsert(doc: d, field: f, TextInsert(id: id, originLeft: left, originRight: right, content: content))
        case .textDelete:
            let d = try doc(&r)
            let f = try str(&r)
            let n = try r.count(max: r.remaining / 3)
            var spans: [IDSpan] = []
            spans.reserveCapacity(n)
            for _ in 0..<n {
                let start = try t.readOp(&r)
                let lenAt = r.offset
                let len = try r.count(max: Int(Int32.max))
                guard len > 0 else { throw DecodingError(.invalidValue, at: lenAt, "empty delete span") }
                spans.append(IDSpan(start: start, length: len))
            }
            return .textDelete(doc: d, field: f, TextDelete(spans: spans))
        case .setAdd:
            let d = try doc(&r)
            let f = try str(&r)
            let v = try r.string()
            return .setAdd(doc: d, field: f, value: v, clears: try ops(&r))
        case .setRemove:
            let d = try doc(&r)
            let f = try str(&r)
            let v = try r.string()
            return .setRemove(doc: d, field: f, value: v, observed: try ops(&r))
        case .listAppend:
            let d = try doc(&r)
            let f = try str(&r)
            return .listAppend(doc: d, field: f, value: try r.string())
        case .own:
            let d = try doc(&r)
            func replicas(_ r: inout BinaryReader) throws(DecodingError) -> [ReplicaID] {
                let n = try r.count(max: r.remaining)
                var out: [ReplicaID] = []
                out.reserveCapacity(n)
                for _ in 0..<n { out.append(try t.read(&r)) }
                return out
            }
            let grant = try replicas(&r)
            return .own(doc: d, grant: grant, revoke: try replicas(&r))
        }
    }
}

/// Field names and kinds written once per change.
typealias StringTable = IndexedList<String>
