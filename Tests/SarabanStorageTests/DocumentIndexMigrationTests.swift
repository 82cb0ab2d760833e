import Foundation
import GRDB
import SarabanCore
import SarabanFeed
@testable import SarabanStorage
import Testing

/// Migration v10: `documents(space, kind)` replaces v1's `documents(space)` and v4's
/// `documents(kind, space)`; the reads by kind, with and without a space, find the same documents.
@Suite struct DocumentIndexMigrationTests {
    func create(_ author: ReplicaID, seq: UInt64, startOp: UInt64, kind: String) -> Change {
        let doc = DocID(OpID(counter: startOp, replica: author))
        return Change(
            author: author, seq: seq, startOp: startOp, time: Int64(seq) * 1000, deps: VersionVector(),
            ops: [.createDocument(kind: kind), .set(doc: doc, field: "n", value: .string("\(seq)"), pred: [])])
    }

    func indexes(_ store: Store) throws -> [String] {
        try store.pool.read { db in
            try String.fetchAll(
                db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'documents' AND sql IS NOT NULL ORDER BY name")
        }
    }

    @Test func oneIndexServesReadsBySpaceAndByKind() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let old = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true, migratingUpTo: "v9")
        #expect(try indexes(old) == ["documents_by_kind", "documents_by_space"])
        // Letters and other documents in the default space, and letters in two more spaces.
        let kinds = ["letter", "bench", "letter", "register", "letter"]
        _ = try old.apply(changes: kinds.enumerated().map { create(replicaA, seq: UInt64($0 + 1), startOp: UInt64(10 * $0 + 1), kind: $1) })
        let s1 = SpaceID(hi: 1, lo: 1)
        let s2 = SpaceID(hi: 2, lo: 2)
        try old.addSpace(id: s1, name: "หนึ่ง", role: .member)
        try old.addSpace(id: s2, name: "สอง", role: .member)
        _ = try old.apply(changes: [create(replicaB, seq: 1, startOp: 1, kind: "letter")], space: s1)
        _ = try old.apply(
            changes: [create(replicaB, seq: 1, startOp: 101, kind: "letter"), create(replicaB, seq: 2, startOp: 201, kind: "letter")], space: s2)
        let before = try old.documents(kind: "letter").map(\.id)
        let inS2Before = try old.documents(kind: "letter", space: s2).map(\.id)
        #expect(before.count == 6 && inS2Before.count == 2)
        try old.close()

        let store = try Store.open(path: dir.file("s.db"), replica: replicaA)
        defer { try? store.close() }
        #expect(try indexes(store) == ["documents_by_space_kind"])
        #expect(try store.schemaInfo().userVersion == 10)
        #expect(try store.documents(kind: "letter").map(\.id) == before)
        #expect(try store.documents(kind: "letter", space: s2).map(\.id) == inS2Before)
        #expect(try store.documents(kind: "register").count == 1)
        #expect(try store.documents(kind: "nothing").isEmpty)
        // A read by space alone goes through the index too (its first column).
        let detail = try store.pool.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT count(*) FROM documents WHERE space = ?", arguments: [Data(s2.bytes)])
                .map { $0["detail"] as String }
        }
        #expect(detail.contains { $0.contains("documents_by_space_kind") }, "\(detail)")
    }
}
