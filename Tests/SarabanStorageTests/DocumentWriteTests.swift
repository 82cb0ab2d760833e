import Foundation
import SarabanCore
import SarabanStorage
import Testing

/// Documents written back by a transaction: the id key, and the lookups skipped for documents
/// whose op counter is above the stored `max_op` (they cannot be stored yet).
@Suite struct DocumentWriteTests {
    /// A change of `author` that creates one document of `kind` at op counter `startOp`, then sets its title.
    func create(_ author: ReplicaID, seq: UInt64, startOp: UInt64, kind: String, title: String, deps: VersionVector = VersionVector())
        -> Change
    {
        let doc = DocID(OpID(counter: startOp, replica: author))
        return Change(
            author: author, seq: seq, startOp: startOp, time: Int64(seq) * 1000, deps: deps,
            ops: [.createDocument(kind: kind), .set(doc: doc, field: "title", value: .string(title), pred: [])])
    }

    @Test func storedIDsAreTheTextFormForAnyCounterAndReplica() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let b = try Store.open(path: dir.file("b.db"), replica: replicaB, create: true)
        defer { try? b.close() }
        // Counters of every length (1 to 19 digits, up to the largest a change may use) and replicas
        // with leading zero bytes, alternating so the key's replica part is rewritten each time.
        let authors = [
            ReplicaID(hi: 0, lo: 1), ReplicaID(hi: 0x00FF_0000_0000_0000, lo: 0xFFFF_FFFF_FFFF_FFFF), replicaA,
        ]
        var seqs: [ReplicaID: UInt64] = [:]
        var changes: [Change] = []
        var expected: [DocID] = []
        var counter: UInt64 = 1
        var i = 0
        while counter < (UInt64(1) << 62) {
            let author = authors[i % authors.count]
            let seq = (seqs[author] ?? 0) + 1
            seqs[author] = seq
            changes.append(create(author, seq: seq, startOp: counter, kind: "k\(i)", title: "t\(i)"))
            expected.append(DocID(OpID(counter: counter, replica: author)))
            counter = counter * 10 + 7
            i += 1
        }
        changes.append(create(authors[0], seq: seqs[authors[0]]! + 1, startOp: (UInt64(1) << 62) - 2, kind: "", title: ""))
        expected.append(DocID(OpID(counter: (UInt64(1) << 62) - 2, replica: authors[0])))
        let r = try b.apply(changes: changes)
        #expect(r.applied == changes.count)
        let summaries = try b.documentSummaries()
        #expect(Set(summaries.map(\.id)) == Set(expected))
        #expect(Set(r.documents) == Set(expected.map(\.description)))
        for (n, id) in expected.enumerated() {
            let doc = try #require(try b.document(id))
            #expect(doc.id == id)
            #expect(doc.kind == (n == expected.count - 1 ? "" : "k\(n)"))
            #expect(try b.documentIDs(withPrefix: id.description) == [id])
        }
    }

    @Test func aReusedOpCounterDoesNotRecreateADocument() throws {
        // A faulty author reusing an op counter names a stored document: its create must find it
        // (and do nothing), on a fresh transaction and inside the same batch alike.
        let dir = TempDir()
        defer { dir.cleanup() }
        let first = create(replicaA, seq: 1, startOp: 10, kind: "letter", title: "ต้นฉบับ")
        let reuse = create(replicaA, seq: 2, startOp: 10, kind: "other", title: "ซ้ำ")
        let doc = DocID(OpID(counter: 10, replica: replicaA))

        let b = try Store.open(path: dir.file("b.db"), replica: replicaB, create: true)
        defer { try? b.close() }
        _ = try b.apply(changes: [first])
        #expect(try b.apply(changes: [reuse]).applied == 1)
        let stored = try #require(try b.document(doc))

        let c = try Store.open(path: dir.file("c.db"), replica: replicaB, create: true)
        defer { try? c.close() }
        #expect(try c.apply(changes: [first, reuse]).applied == 2)

        // The in-memory replica (no database) is the reference.
        var replica = Replica(id: replicaB)
        _ = try replica.receive(first)
        _ = try replica.receive(reuse)
        let reference = try #require(replica.documents[doc])
        #expect(stored.kind == "letter")
        #expect(stored.encoded() == reference.encoded())
        #expect(try c.document(doc)?.encoded() == reference.encoded())
    }

    @Test func redeliveryIsANoOpAfterReopen() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let c1 = create(replicaA, seq: 1, startOp: 1, kind: "letter", title: "หนึ่ง")
        let doc = DocID(OpID(counter: 1, replica: replicaA))
        let c2 = Change(
            author: replicaA, seq: 2, startOp: 3, time: 5000, deps: VersionVector(),
            ops: [.set(doc: doc, field: "title", value: .string(thai), pred: [OpID(counter: 2, replica: replicaA)])])
        let b = try Store.open(path: dir.file("b.db"), replica: replicaB, create: true)
        #expect(try b.apply(changes: [c1, c2]).applied == 2)
        let before = try b.documentSummaries()
        let bytes = try b.document(doc)?.encoded()
        try b.close()

        let again = try Store.open(path: dir.file("b.db"), replica: replicaB)
        defer { try? again.close() }
        for batch in [[c1], [c2, c1], [c1, c2, c1]] {
            let r = try again.apply(changes: batch)
            #expect(r.applied == 0 && r.duplicates == batch.count && r.documents.isEmpty)
        }
        #expect(try again.document(doc)?.encoded() == bytes)
        #expect(try again.document(doc)?.registers["title"]?.winner?.value.string == thai)
        #expect(try again.documentSummaries() == before)
        #expect(try again.stats().changes == 2)
    }

    @Test func aRolledBackWriteLeavesItsCountersFree() throws {
        // A write that fails after creating a document stores neither the document nor `max_op`:
        // the next write reuses the counter and creates its document (which is then found).
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try Store.open(path: dir.file("a.db"), replica: replicaA, create: true)
        defer { try? a.close() }
        struct Boom: Error {}
        var lost: DocID?
        #expect(throws: Boom.self) {
            _ = try a.write { w in
                lost = try w.change(time: 1) { tx, docs in try tx.createDocument(kind: "letter", in: &docs) }.value
                throw Boom()
            }
        }
        let lostID = try #require(lost)
        #expect(try a.document(lostID) == nil)
        let made = try a.change(time: 2) { tx, docs -> DocID in
            let id = try tx.createDocument(kind: "memo", in: &docs)
            try tx.set(id, field: "title", value: .string(thai), in: &docs)
            return id
        }
        #expect(made.value == lostID)
        #expect(try a.document(lostID)?.kind == "memo")
        _ = try a.change(time: 3) { tx, docs in try tx.set(lostID, field: "title", value: .string("แก้"), in: &docs) }
        #expect(try a.document(lostID)?.registers["title"]?.winner?.value.string == "แก้")
    }
}
