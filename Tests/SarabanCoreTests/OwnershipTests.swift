import Testing

@testable import SarabanCore

private let alice = ReplicaID(hi: 0xA11CE, lo: 1)
private let bob = ReplicaID(hi: 0xB0B, lo: 2)
private let carol = ReplicaID(hi: 0xCA201, lo: 3)

private func deliver(_ from: Replica, to: inout Replica) throws {
    for c in from.changes(missingFrom: to.clock) { try to.receive(c) }
}

/// A change by `author` made by hand (a node that skips its own checks, or a hostile one).
private func forged(_ author: ReplicaID, seq: UInt64, deps: VersionVector, startOp: UInt64, _ ops: [Operation]) -> Change {
    Change(author: author, seq: seq, startOp: startOp, time: 0, deps: deps, ops: ops)
}

@Suite struct OwnershipTests {
    /// alice makes a document owned by herself; bob has seen it.
    func ownedByAlice() throws -> (a: Replica, b: Replica, doc: DocID) {
        var a = Replica(id: alice)
        var b = Replica(id: bob)
        var doc: DocID?
        try a.edit(time: 1) { tx, s in
            doc = try tx.createDocument(kind: "dispatch", owners: [alice], in: &s)
            try tx.set(doc!, field: "เรื่อง", value: .string("ขอเชิญประชุม"), in: &s)
        }
        try deliver(a, to: &b)
        return (a, b, try #require(doc))
    }

    @Test func aNonOwnerCannotEditLocally() throws {
        var (_, b, d) = try ownedByAlice()
        #expect(b.documents[d]?.ownership?.owners == [alice])
        #expect { try b.edit(time: 2) { tx, s in try tx.set(d, field: "เรื่อง", value: .string("แก้"), in: &s) } } throws: {
            ($0 as? EditError)?.code == .notOwner
        }
        #expect { try b.edit(time: 2) { tx, s in try tx.deleteDocument(d, in: &s) } } throws: {
            ($0 as? EditError)?.code == .notOwner
        }
        #expect(b.documents[d]?.display("เรื่อง") == "ขอเชิญประชุม")
    }

    @Test func aNonOwnersChangeIsRefusedWholeOnEveryReplica() throws {
        var (a, b, d) = try ownedByAlice()
        // bob's hand-made change edits alice's document AND creates one of his own.
        let c = forged(
            bob, seq: 1, deps: b.clock, startOp: b.maxOp + 1,
            [.set(doc: d, field: "เรื่อง", value: .string("ปลอม"), pred: []), .createDocument(kind: "memo")])
        try b.receive(c)
        try a.receive(c)
        for r in [a, b] {
            #expect(r.refused[c.id] == ChangeRefusal(document: d, reason: .notOwner))
            #expect(r.documents[d]?.display("เรื่อง") == "ขอเชิญประชุม")
            #expect(r.documents.count == 1)  // the memo was not created either
            #expect(r.clock[bob] == 1)  // counted as received: bob's next change is not held up
        }
        #expect(a.views == b.views)
        // bob's next, honest change applies.
        let next = forged(bob, seq: 2, deps: b.clock, startOp: b.maxOp + 10, [.createDocument(kind: "memo")])
        try a.receive(next)
        #expect(a.documents.count == 2)
    }

    @Test func aGrantCountsOnlyForChangesThatSawIt() throws {
        var (a, b, d) = try ownedByAlice()
        let bobBefore = b.clock
        // alice grants bob; concurrently bob (not having seen it) edits.
        try a.edit(time: 2) { tx, s in try tx.own(d, grant: [bob], revoke: [], in: &s) }
        let early = forged(bob, seq: 1, deps: bobBefore, startOp: 100, [.set(doc: d, field: "ถึง", value: .string("ก่อน"), pred: [])])
        // Two replicas receive the grant and bob's early edit in opposite orders.
        var x = Replica(id: carol)
        var y = Replica(id: carol)
        try deliver(a, to: &x)
        try x.receive(early)
        try y.receive(early)
        try deliver(a, to: &y)
        for r in [x, y] {
            #expect(r.refused[early.id]?.reason == .notOwner)
            #expect(r.documents[d]?.display("ถึง") == nil)
        }
        #expect(x.views == y.views)
        // After seeing the grant bob may edit, and everyone applies it.
        try b.receive(early)  // bob's own node holds its seq 1 (refused there too)
        #expect(b.refused[early.id]?.reason == .notOwner)
        try deliver(a, to: &b)
        try b.edit(time: 3) { tx, s in try tx.set(d, field: "ถึง", value: .string("หลัง"), in: &s) }
        try deliver(b, to: &x)
        #expect(x.documents[d]?.display("ถึง") == "หลัง")
    }

    @Test func anEditConcurrentWithItsAuthorsRevocationStands() throws {
        var (a, b, d) = try ownedByAlice()
        try a.edit(time: 2) { tx, s in try tx.own(d, grant: [bob], revoke: [], in: &s) }
        try deliver(a, to: &b)
        // alice revokes bob while bob, not knowing, edits: his edit was made as an owner.
        try a.edit(time: 3) { tx, s in try tx.own(d, grant: [], revoke: [bob], in: &s) }
        try b.edit(time: 3) { tx, s in try tx.set(d, field: "ถึง", value: .string("ระหว่าง"), in: &s) }
        var x = Replica(id: carol)
        var y = Replica(id: carol)
        try deliver(a, to: &x)
        try deliver(b, to: &x)
        try deliver(b, to: &y)
        try deliver(a, to: &y)
        #expect(x.views == y.views)
        #expect(x.documents[d]?.display("ถึง") == "ระหว่าง")
        #expect(x.documents[d]?.ownership?.owners == [alice])
        // Once bob has seen the revocation he can no longer edit.
        try deliver(a, to: &b)
        #expect { try b.edit(time: 4) { tx, s in try tx.set(d, field: "ถึง", value: .string("หลัง"), in: &s) } } throws: {
            ($0 as? EditError)?.code == .notOwner
        }
    }

    @Test func aSealedDocumentNeverChanges() throws {
        var a = Replica(id: alice)
        var d: DocID?
        try a.edit(time: 1) { tx, s in
            d = try tx.createDocument(kind: "dispatch", owners: [], in: &s)
            try tx.set(d!, field: "เรื่อง", value: .string("ส่งแล้ว"), in: &s)
        }
        let doc = try #require(d)
        #expect(a.documents[doc]?.ownership?.isSealed == true)
        #expect { try a.edit(time: 2) { tx, s in try tx.set(doc, field: "เรื่อง", value: .string("แก้"), in: &s) } } throws: {
            ($0 as? EditError)?.code == .notOwner
        }
        let forgedByCreator = forged(alice, seq: 2, deps: VersionVector(), startOp: 50, [.deleteDocument(doc: doc, pred: [])])
        try a.receive(forgedByCreator)
        #expect(a.refused[forgedByCreator.id]?.reason == .notOwner)
        #expect(a.documents[doc]?.isDeleted == false)
    }

    @Test func anOpenDocumentCannotBeCapturedLater() throws {
        var a = Replica(id: alice)
        var b = Replica(id: bob)
        var d: DocID?
        try a.edit(time: 1) { tx, s in d = try tx.createDocument(kind: "memo", in: &s) }
        let doc = try #require(d)
        try deliver(a, to: &b)
        #expect { try b.edit(time: 2) { tx, s in try tx.own(doc, grant: [bob], revoke: [], in: &s) } } throws: {
            ($0 as? EditError)?.code == .invalidValue
        }
        let capture = forged(bob, seq: 1, deps: b.clock, startOp: 20, [.own(doc: doc, grant: [bob], revoke: [])])
        try a.receive(capture)
        #expect(a.refused[capture.id]?.reason == .ownedAfterCreation)
        #expect(a.documents[doc]?.ownership == nil)
    }

    @Test func anOwnedDocumentUnseenByTheChangeIsIgnoredNotRefused() throws {
        // A change naming a document whose creation is not in its causal past: a replica that
        // already holds the document must do what one that does not would (ignore that op,
        // apply the rest), or the two would differ.
        let (a, _, d) = try ownedByAlice()
        let blind = forged(bob, seq: 1, deps: VersionVector(), startOp: 30, [
            .set(doc: d, field: "เรื่อง", value: .string("ไม่เห็น"), pred: []), .createDocument(kind: "memo"),
        ])
        var holder = Replica(id: carol)
        try deliver(a, to: &holder)
        try holder.receive(blind)
        var late = Replica(id: carol)
        try late.receive(blind)
        try deliver(a, to: &late)
        #expect(holder.refused.isEmpty && late.refused.isEmpty)
        #expect(holder.views == late.views)
        #expect(holder.documents[d]?.display("เรื่อง") == "ขอเชิญประชุม")
        #expect(holder.documents.count == 2)
    }

    @Test func ownershipSurvivesEncoding() throws {
        var (a, _, d) = try ownedByAlice()
        try a.edit(time: 2) { tx, s in try tx.own(d, grant: [bob, carol], revoke: [alice], in: &s) }
        let doc = try #require(a.documents[d])
        let back = try Document.decode(doc.encoded())
        #expect(back.ownership == doc.ownership)
        #expect(back.ownership?.owners == [bob, carol])
        #expect(doc.encoded().first == 2)
        // An open document's snapshot keeps format 1.
        var o = Replica(id: alice)
        var m: DocID?
        try o.edit(time: 1) { tx, s in m = try tx.createDocument(kind: "memo", in: &s) }
        #expect(o.documents[m!]!.encoded().first == 1)
        // The own operation round-trips through the change encoding.
        let c = try #require(a.log.last)
        #expect(try Change.decode(c.encoded()) == c)
    }
}
