import Foundation
import SarabanCore
import SarabanFeed
@testable import SarabanStorage
import Testing

/// Migrations v8 and v9 on a database of schema 7 (main before it: the search index's rows numbered in
/// the order they were indexed, the relay's peer status tables): the index is emptied and every
/// letter noted, so the next refresh keys its rows by date; the content version counter starts
/// and grows with every change applied and every document removed.
@Suite struct SearchByDateMigrationTests {
    /// A letter document of `author` (its `seq`-th change, op counters from `startOp`) with a
    /// subject and a day (yyyymmdd, BE).
    func letter(_ author: ReplicaID, seq: UInt64, startOp: UInt64, subject: String, day: Int) -> Change {
        let doc = DocID(OpID(counter: startOp, replica: author))
        return Change(
            author: author, seq: seq, startOp: startOp, time: Int64(seq) * 1000, deps: VersionVector(),
            ops: [
                .createDocument(kind: "letter"), .set(doc: doc, field: "subject", value: .string(subject), pred: []),
                .set(doc: doc, field: "day", value: .string(String(day)), pred: []),
            ])
    }

    static func row(_ d: Document) -> SearchRow? {
        SearchRow(subject: d.display("subject") ?? "", number: "", sender: "", body: "", day: Int(d.display("day") ?? "") ?? 0, kind: "sent")
    }

    @Test func aSchema7IndexIsKeyedByDateAfterTheMigration() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let days = [25_680_105, 25_690_301, 25_681_201]
        let old = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true, migratingUpTo: "v7")
        var changes: [Change] = []
        for (i, day) in days.enumerated() {
            changes.append(letter(replicaA, seq: UInt64(i + 1), startOp: UInt64(10 * i + 1), subject: "ขอเชิญประชุมครั้งที่ \(i)", day: day))
        }
        _ = try old.apply(changes: changes)
        // The index as schema 7 wrote it: rows numbered 1, 2, 3 in the order indexed, nothing noted.
        let ids = changes.map { DocID(OpID(counter: $0.startOp, replica: replicaA)) }
        try old.pool.write { db in
            try db.execute(sql: "DELETE FROM search_dirty")
            for (i, id) in ids.enumerated() {
                try db.execute(
                    sql: "INSERT INTO search(rowid, subject, number, sender, body, doc, kind, day, secrecy) VALUES (?, ?, '', '', '', ?, 'sent', ?, '')",
                    arguments: [i + 1, "ขอเชิญประชุมครั้งที่ \(i)", id.description, days[i]])
                try db.execute(sql: "INSERT INTO search_rows(doc, row) VALUES (?, ?)", arguments: [id.description, i + 1])
            }
        }
        // Read newest row first, schema 7's rows come in the order indexed, not by date.
        #expect(try old.search(SearchQuery(text: "ประชุม")).map(\.document) == [ids[2], ids[1], ids[0]])
        #expect(try old.schemaInfo().userVersion == 7)
        try old.close()

        let store = try Store.open(path: dir.file("s.db"), replica: replicaA)
        defer { try? store.close() }
        let info = try store.schemaInfo()
        #expect(info.userVersion == Store.schemaVersion && info.migrations.suffix(4) == ["v7", "v8", "v9", "v10"])
        #expect(info.tables.contains("content_version") && info.tables.contains("peer_status"))
        #expect(try store.refreshSearch(Self.row) == 3)
        #expect(try store.search(SearchQuery(text: "ประชุม")).map(\.document) == [ids[1], ids[2], ids[0]])
        #expect(try store.search(SearchQuery(text: "ประชุม", limit: 1)).map(\.document) == [ids[1]])
        let keys = try store.pool.read { db in try Int64.fetchAll(db, sql: "SELECT rowid >> 32 FROM search ORDER BY rowid") }
        #expect(keys == [25_680_105, 25_681_201, 25_690_301])

        // The content version grows with a change applied here or received, and with a space left.
        let v0 = try store.contentVersion()
        _ = try store.apply(changes: [letter(replicaA, seq: 4, startOp: 100, subject: "ใหม่", day: 25_690_302)])
        let v1 = try store.contentVersion()
        #expect(v1 > v0)
        _ = try store.apply(changes: [letter(replicaB, seq: 1, startOp: 1, subject: "จากที่อื่น", day: 25_690_303)])
        let v2 = try store.contentVersion()
        #expect(v2 > v1)
        // Nothing applied (a change already held): the version stays.
        _ = try store.apply(changes: [letter(replicaB, seq: 1, startOp: 1, subject: "จากที่อื่น", day: 25_690_303)])
        #expect(try store.contentVersion() == v2)
    }

    @Test func leavingASpaceRaisesTheContentVersion() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true)
        defer { try? store.close() }
        let other = SpaceID(bytes: [UInt8](repeating: 7, count: 16))!
        try store.addSpace(id: other, name: "อื่น", role: .member)
        _ = try store.apply(changes: [letter(replicaB, seq: 1, startOp: 1, subject: "ในพื้นที่อื่น", day: 25_690_101)], space: other)
        let before = try store.contentVersion()
        let left = try store.removeSpace(other)
        #expect(left.documents == 1)
        #expect(try store.contentVersion() > before)
    }
}
