/// Where documents live while changes are applied: memory in tests and simulators, an open
/// SQLite transaction in the node. Access is scoped so the document is mutated in place.
public protocol DocumentStore {
    /// Runs `body` on the document (`nil` when absent); whatever `body` leaves is stored.
    mutating func withDocument<T>(_ id: DocID, _ body: (inout Document?) throws -> T) throws -> T

    /// Runs `body` on the document in place, or returns nil when it is absent. Stores that can
    /// reach the stored value directly implement this so an edit never copies the document.
    mutating func withExistingDocument<T>(_ id: DocID, _ body: (inout Document) throws -> T) throws -> T?
}

extension DocumentStore {
    public mutating func withExistingDocument<T>(_ id: DocID, _ body: (inout Document) throws -> T) throws -> T? {
        try withDocument(id) { doc in
            if case .none = doc { return nil }
            return try body(&doc!)
        }
    }
}

/// Why a local edit was refused. Remote changes never fail this way: they apply deterministically.
public struct EditError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unknownDocument, documentDeleted, fieldKindMismatch, positionOutOfRange, notInSet, noSuchValue, invalidValue
        /// The document is owned (``Ownership``) and this replica is not one of its owners.
        case notOwner
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

extension Change {
    /// Applies every operation to the documents in `store`. Operations naming a document that
    /// does not exist are ignored (every replica ignores them alike).
    ///
    /// A change touching an owned document its author did not own in the change's causal past
    /// (``Ownership``) is refused whole: nothing is applied and the refusal is returned, the same
    /// on every replica. The caller still counts the change as received (its sequence number is
    /// used), so the author's later changes are not held up.
    @discardableResult
    public func apply<S: DocumentStore>(to store: inout S) throws -> ChangeRefusal? {
        let ctx = ChangeContext(self)
        if let refusal = try refusal(in: &store, context: ctx) { return refusal }
        // The op ids as ``identifiedOps`` gives them, without building that array per change.
        var counter = startOp
        for op in ops {
            let id = OpID(counter: counter, replica: author)
            counter += UInt64(op.width)
            if case .createDocument(let kind) = op {
                try store.withDocument(DocID(id)) { doc in
                    if doc == nil { doc = Document(id: DocID(id), kind: kind, created: ctx.stamp(id)) }
                }
                continue
            }
            guard let target = op.document else { continue }
            try store.withDocument(target) { doc in
                doc?.apply(op, id: id, context: ctx)
            }
        }
        return nil
    }

    /// The first operation the change may not make, checked before anything is applied. Each
    /// document is looked up once (a change usually touches one: it is kept apart, so the usual
    /// change allocates no list of them).
    private func refusal<S: DocumentStore>(in store: inout S, context ctx: ChangeContext) throws -> ChangeRefusal? {
        var first: DocID?
        var others: [DocID] = []
        for op in ops {
            guard let target = op.document else { continue }
            if case .own = op {} else if target == first || others.contains(target) { continue }
            if first == nil { first = target } else if target != first { others.append(target) }
            if let r = try store.withExistingDocument(target, { $0.refusal(of: op, context: ctx) }) ?? nil { return r }
        }
        return nil
    }
}

/// Builds one local change. Each edit is applied to the store at once (so later edits in the
/// same change see it) and recorded; ``finish()`` yields the change to log and send.
public struct Transaction: Sendable {
    public let author: ReplicaID
    public let seq: UInt64
    public let startOp: UInt64
    public let time: Int64
    public let deps: VersionVector
    public private(set) var ops: [Operation] = []
    private(set) var next: UInt64
    let context: ChangeContext

    /// - Parameters:
    ///   - seq: the author's next sequence number (1 for the first change).
    ///   - startOp: one more than the greatest op counter the replica has seen.
    ///   - time: wall-clock milliseconds, from the caller's clock.
    ///   - deps: the replica's version vector.
    public init(author: ReplicaID, seq: UInt64, startOp: UInt64, time: Int64, deps: VersionVector) {
        self.author = author
        self.seq = seq
        self.startOp = startOp
        self.time = time
        var d = deps
        if !d.entries.isEmpty && d[author] != 0 { d[author] = 0 }
        self.deps = d
        self.next = startOp
        self.context = ChangeContext(change: ChangeID(author: author, seq: seq), time: time, deps: d)
    }

    /// The change, or nil when nothing was edited.
    public func finish() -> Change? {
        ops.isEmpty
            ? nil : Change(normalized: author, seq: seq, startOp: startOp, time: time, deps: deps, ops: ops)
    }

    mutating func record(_ op: Operation) -> OpID {
        let id = OpID(counter: next, replica: author)
        next += UInt64(op.width)
        ops.append(op)
        return id
    }

    private func stamp(_ id: OpID) -> Stamp { context.stamp(id) }

    /// Runs `body` on a live document, refusing unknown and deleted ones. Inlined so that `T` is
    /// concrete at each call (no generic metadata looked up per edit).
    @inline(__always)
    func edit<S: DocumentStore, T>(
        _ docID: DocID, in store: inout S, allowDeleted: Bool = false, _ body: (inout Document) throws -> T
    ) throws -> T {
        // Edited in place: the document is never copied.
        let result = try store.withExistingDocument(docID) { d -> T in
            if let o = d.ownership, d.created.change != context.change, !o.owners.contains(author) {
                throw EditError(
                    .notOwner,
                    o.isSealed
                        ? "document \(docID) is sealed: nobody may change it after it was made"
                        : "document \(docID) belongs to its owners (\(o.owners.count) node(s)) and this node is not one; "
                            + "ask its owner to make the change")
            }
            if !allowDeleted && d.isDeleted {
                throw EditError(.documentDeleted, "document \(docID) is deleted; restore it before editing")
            }
            return try body(&d)
        }
        guard let result else {
            throw EditError(.unknownDocument, "no document \(docID); `saraban doc list` shows the documents here")
        }
        return result
    }


    /// Applies one operation built from the current document (nil: nothing to do) and records it.
    private mutating func applyLocal<S: DocumentStore>(
        _ docID: DocID, in store: inout S, allowDeleted: Bool = false, _ make: (Document) throws -> Operation?
    ) throws {
        let id = OpID(counter: next, replica: author)
        let ctx = context
        let op = try edit(docID, in: &store, allowDeleted: allowDeleted) { d -> Operation? in
            guard let op = try make(d) else { return nil }
            d.apply(op, id: id, context: ctx)
            return op
        }
        if let op { _ = record(op) }
    }

    public mutating func createDocument<S: DocumentStore>(kind: String, in store: inout S) throws -> DocID {
        let op = Operation.createDocument(kind: kind)
        let id = OpID(counter: next, replica: author)
        let docID = DocID(id)
        let stamp = stamp(id)
        try store.withDocument(docID) { doc in doc = Document(id: docID, kind: kind, created: stamp) }
        _ = record(op)
        return docID
    }

    /// Creates an owned document (``Ownership``): only `owners` may change it after this change;
    /// with no owners it is sealed (what this change writes into it is all it will ever hold).
    public mutating func createDocument<S: DocumentStore>(kind: String, owners: [ReplicaID], in store: inout S) throws
        -> DocID
    {
        let docID = try createDocument(kind: kind, in: &store)
        try own(docID, grant: owners, revoke: [], in: &store)
        return docID
    }

    /// Grants ownership of an owned document to `grant` and revokes it from `revoke` (this
    /// replica must be an owner; in the creating change it makes the document owned).
    public mutating func own<S: DocumentStore>(
        _ docID: DocID, grant: [ReplicaID], revoke: [ReplicaID], in store: inout S
    ) throws {
        let ctx = context
        try applyLocal(docID, in: &store, allowDeleted: true) { d in
            if d.ownership == nil && d.created.change != ctx.change {
                throw EditError(.invalidValue, "document \(docID) was created open; it cannot be made owned afterwards")
            }
            return Operation.own(doc: docID, grant: grant, revoke: revoke)
        }
    }

    /// Writes a register, superseding every value currently visible (this also resolves a conflict).
    public mutating func set<S: DocumentStore>(_ docID: DocID, field: String, value: Value, in store: inout S) throws {
        let id = OpID(counter: next, replica: author)
        let ctx = context
        let pred = try edit(docID, in: &store) { d in try d.localSet(field, value, id: id, context: ctx) }
        _ = record(.set(doc: docID, field: field, value: value, pred: pred))
    }

    /// Resolves a register conflict by keeping the value written by operation `keep`.
    public mutating func resolve<S: DocumentStore>(_ docID: DocID, field: String, keep: OpID, in store: inout S) throws {
        var value: Value?
        try edit(docID, in: &store) { d in
            value = d.registers[field]?.entries.first { $0.stamp.op == keep }?.value
        }
        guard let v = value else {
            throw EditError(.noSuchValue, "field '\(field)' holds no value written by \(keep); `saraban conflicts` lists them")
        }
        try set(docID, field: field, value: v, in: &store)
    }

    public mutating func insertText<S: DocumentStore>(
        _ docID: DocID, field: String, at pos: Int, _ text: String, in store: inout S
    ) throws {
        guard !text.isEmpty else { throw EditError(.invalidValue, "nothing to insert") }
        let id = OpID(counter: next, replica: author)
        let ctx = context
        let op = try edit(docID, in: &store) { d -> Operation in
            try checkFieldKind(d, field, .text)
            let len = d.texts[field]?.count ?? 0
            guard pos >= 0 && pos <= len else {
                throw EditError(.positionOutOfRange, "position \(pos) is outside the text (length \(len))")
            }
            let ins = d.localInsert(field, at: pos, text, id: id, context: ctx)
            return Operation.textInsert(doc: docID, field: field, ins)
        }
        _ = record(op)
    }

    public mutating func deleteText<S: DocumentStore>(
        _ docID: DocID, field: String, at pos: Int, count: Int, in store: inout S
    ) throws {
        let ctx = context
        let op = try edit(docID, in: &store) { d -> Operation? in
            try checkFieldKind(d, field, .text)
            let len = d.texts[field]?.count ?? 0
            guard pos >= 0, count >= 0, pos + count <= len else {
                throw EditError(.positionOutOfRange, "range \(pos)..<\(pos + count) is outside the text (length \(len))")
            }
            guard count > 0 else { return nil }
            let del = d.localDelete(field, at: pos, count: count, context: ctx)
            return del.spans.isEmpty ? nil : Operation.textDelete(doc: docID, field: field, del)
        }
        if let op { _ = record(op) }
    }

    public mutating func addToSet<S: DocumentStore>(_ docID: DocID, field: String, value: String, in store: inout S) throws {
        try applyLocal(docID, in: &store) { d in
            try checkFieldKind(d, field, .set)
            // An add settles every contested removal of the same value the author can see.
            let clears = d.sets[field]?.contested(value).map(\.removal.stamp.op) ?? []
            return Operation.setAdd(doc: docID, field: field, value: value, clears: clears)
        }
    }

    public mutating func removeFromSet<S: DocumentStore>(_ docID: DocID, field: String, value: String, in store: inout S) throws {
        try applyLocal(docID, in: &store) { d in
            try checkFieldKind(d, field, .set)
            guard let s = d.sets[field], s.contains(value) else {
                throw EditError(.notInSet, "'\(value)' is not in set '\(field)'")
            }
            return Operation.setRemove(doc: docID, field: field, value: value, observed: s.observedTags(value))
        }
    }

    public mutating func append<S: DocumentStore>(_ docID: DocID, field: String, value: String, in store: inout S) throws {
        try applyLocal(docID, in: &store) { d in
            try checkFieldKind(d, field, .list)
            return Operation.listAppend(doc: docID, field: field, value: value)
        }
    }

    /// Deletes the document. Deleting an already deleted document again confirms the deletion
    /// and settles a delete-against-edit conflict.
    public mutating func deleteDocument<S: DocumentStore>(_ docID: DocID, in store: inout S) throws {
        try applyLocal(docID, in: &store, allowDeleted: true) { d in
            Operation.deleteDocument(doc: docID, pred: d.lifecycle.visibleIDs)
        }
    }

    public mutating func restoreDocument<S: DocumentStore>(_ docID: DocID, in store: inout S) throws {
        try applyLocal(docID, in: &store, allowDeleted: true) { d in
            Operation.restoreDocument(doc: docID, pred: d.lifecycle.visibleIDs)
        }
    }
}

extension Document {
    /// A local text insert: the text CRDT edits in place and returns the op to send.
    mutating func localInsert(_ field: String, at pos: Int, _ text: String, id: OpID, context ctx: ChangeContext) -> TextInsert {
        editText(field, context: ctx) { $0.insert(at: pos, text, id: id) }
    }

    /// A local text delete: the text CRDT edits in place and returns the op to send.
    mutating func localDelete(_ field: String, at pos: Int, count: Int, context ctx: ChangeContext) -> TextDelete {
        editText(field, context: ctx) { $0.delete(at: pos, count: count) }
    }
}

/// Refuses a local edit of `field` as `kind` when the field already holds another kind.
private func checkFieldKind(_ d: Document, _ field: String, _ kind: FieldKind) throws {
    if let k = d.kind(of: field), k != kind { throw Document.kindMismatch(field, k, kind) }
}
