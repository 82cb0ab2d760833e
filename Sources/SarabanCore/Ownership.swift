/// Who may change an owned document, decided from each change's causal past so that every
/// replica reaches the same decision whatever order changes arrive in.
///
/// A document is *open* (anyone may change it) unless the change that creates it also carries an
/// ``Operation/own(doc:grant:revoke:)``: then it is *owned*, and a later change touching it is
/// applied only if its author was an owner **in the change's causal past** (the grants its author
/// had seen, minus the revocations it had seen). Otherwise the whole change is refused: none of
/// its operations take effect, on every replica alike, and the store records the refusal. An
/// empty first grant seals the document: its creating change is its only content.
///
/// Grants and revocations are themselves changes to the document, so only an owner can make
/// them. A revocation voids the grants of that replica the revoking author had seen; a grant made
/// concurrently with it survives (the same rule as the add-wins set).
public struct Ownership: Hashable, Sendable {
    /// `replica` became an owner through change `by`.
    public struct Grant: Hashable, Sendable {
        public var replica: ReplicaID
        public var by: ChangeID
    }

    /// Change `by` voided the grants of `replica` that its author had seen.
    public struct Revocation: Hashable, Sendable {
        public var replica: ReplicaID
        public var by: ChangeID
        /// The grants it voided (those of `replica` in its causal past).
        public var voids: [ChangeID]
    }

    public private(set) var grants: [Grant] = []
    public private(set) var revocations: [Revocation] = []

    public init() {}

    /// Owners now: replicas with a grant no revocation voided.
    public var owners: Set<ReplicaID> {
        var out = Set<ReplicaID>()
        for g in grants where !isVoided(g) { out.insert(g.replica) }
        return out
    }

    /// No owner left: nobody may change the document.
    public var isSealed: Bool { owners.isEmpty }

    /// Whether `replica` was an owner in the causal past `past` (a change's context: its
    /// dependencies and its author's earlier changes).
    public func isOwner(_ replica: ReplicaID, inPastOf past: ChangeContext) -> Bool {
        grants.contains { g in
            g.replica == replica && past.includes(g.by)
                && !revocations.contains { r in r.replica == replica && past.includes(r.by) && r.voids.contains(g.by) }
        }
    }

    private func isVoided(_ g: Grant) -> Bool {
        revocations.contains { $0.replica == g.replica && $0.voids.contains(g.by) }
    }

    /// Applies an ``Operation/own(doc:grant:revoke:)`` made by change `ctx`.
    mutating func apply(grant: [ReplicaID], revoke: [ReplicaID], context ctx: ChangeContext) {
        for r in revoke {
            let voids = grants.filter { $0.replica == r && ctx.includes($0.by) }.map(\.by)
            if !voids.isEmpty { revocations.append(Revocation(replica: r, by: ctx.change, voids: voids)) }
        }
        for r in grant where !grants.contains(Grant(replica: r, by: ctx.change)) {
            grants.append(Grant(replica: r, by: ctx.change))
        }
    }

    func encode(into w: inout BinaryWriter, _ t: inout ReplicaTable) {
        func change(_ c: ChangeID) {
            w.varint(t.index(c.author))
            w.varint(c.seq)
        }
        w.varint(grants.count)
        for g in grants {
            w.varint(t.index(g.replica))
            change(g.by)
        }
        w.varint(revocations.count)
        for r in revocations {
            w.varint(t.index(r.replica))
            change(r.by)
            w.varint(r.voids.count)
            for v in r.voids { change(v) }
        }
    }

    static func decode(from r: inout BinaryReader, _ t: ReplicaTable) throws(DecodingError) -> Ownership {
        func change(_ r: inout BinaryReader) throws(DecodingError) -> ChangeID {
            let a = try t.read(&r)
            return ChangeID(author: a, seq: try r.varint())
        }
        var o = Ownership()
        let ng = try r.count(max: r.remaining / 3)
        for _ in 0..<ng {
            let replica = try t.read(&r)
            o.grants.append(Grant(replica: replica, by: try change(&r)))
        }
        let nr = try r.count(max: r.remaining / 4)
        for _ in 0..<nr {
            let replica = try t.read(&r)
            let by = try change(&r)
            let nv = try r.count(max: r.remaining / 2)
            var voids: [ChangeID] = []
            for _ in 0..<nv { voids.append(try change(&r)) }
            o.revocations.append(Revocation(replica: replica, by: by, voids: voids))
        }
        return o
    }
}

extension ChangeContext {
    /// Whether change `id` is in this change's causal past (its dependencies, or an earlier
    /// change of the same author). The change itself is not.
    public func includes(_ id: ChangeID) -> Bool {
        id.author == change.author ? id.seq < change.seq : deps[id.author] >= id.seq
    }
}

/// Why a received change had no effect.
public struct ChangeRefusal: Hashable, Sendable, CustomStringConvertible {
    public enum Reason: String, Hashable, Sendable {
        /// It touches an owned document its author did not own in the change's causal past.
        case notOwner
        /// It tries to make an existing open document owned (only the creating change may).
        case ownedAfterCreation
    }

    public var document: DocID
    public var reason: Reason

    public init(document: DocID, reason: Reason) {
        self.document = document
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .notOwner: "document \(document) is owned and the change's author was not one of its owners"
        case .ownedAfterCreation: "document \(document) was created open and cannot be made owned afterwards"
        }
    }
}
