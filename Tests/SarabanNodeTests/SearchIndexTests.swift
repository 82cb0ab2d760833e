import SarabanCore
import SarabanNode
import SarabanOffice
import SarabanStorage
import SarabanSync
import Testing

/// The search index (store migration v6): letters already in a database written by an earlier
/// release are indexed when it is opened; deleted letters leave the index.
@Suite struct SearchIndexTests {
    @Test func lettersOfAnEarlierReleaseAreFoundAfterTheMigration() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        // Opened as the migration tests open it (at 13 June 2568, Thai time).
        let node = try LetterMigrationTests().open("province", in: dir)
        defer { node.close() }
        #expect(try node.store.schemaInfo().migrations.suffix(4) == ["v7", "v8", "v9", "v10"])
        let hits = try node.search(SearchQuery(text: "กรรมการ"))
        #expect(!hits.isEmpty)
        #expect(Set(hits.map(\.document)).isSubset(of: Set(try node.letters().map(\.id))))
        #expect(try node.search(SearchQuery(text: "นว 0017/1")).contains { $0.number.contains("นว 0017/1") })
        // A new letter is found at once; deleted, it leaves the index.
        let id = try node.createLetter(kind: .internal, fields: [("เรื่อง", "ขอความอนุเคราะห์ข้อมูลสถิติ")])
        #expect(try node.search(SearchQuery(text: "อนุเคราะห์")).map(\.document) == [id])
        try node.deleteDocument(id)
        #expect(try node.search(SearchQuery(text: "อนุเคราะห์")).isEmpty)
    }

    /// Since migration v8 the statement that writes a letter notes it for the index (no triggers
    /// on `documents`): a letter received by sync is found, and leaving its space takes it out.
    @Test func aReceivedLetterIsFoundUntilItsSpaceIsLeft() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let space = try a.createSpace(name: "สารบรรณ").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID, office: "office b").text))
        let id = try a.createLetter(kind: .internal, fields: [("เรื่อง", "ขอรับการสนับสนุนงบประมาณ")], space: space.hex)
        #expect(try b.search(SearchQuery(text: "สนับสนุนงบ")).isEmpty)
        #expect(try exchange(a, b, space).refused.isEmpty)
        #expect(try b.search(SearchQuery(text: "สนับสนุนงบ")).map(\.document) == [id])
        try b.leaveSpace(space)
        #expect(try b.search(SearchQuery(text: "สนับสนุนงบ")).isEmpty)
        #expect(try a.search(SearchQuery(text: "สนับสนุนงบ")).map(\.document) == [id])
    }

    /// The index is keyed by date (migration v9): a word matching many letters gives the newest
    /// dates first, letters of one day the latest indexed first, and a letter whose date changes
    /// moves; the limit keeps the newest.
    @Test func manyMatchesComeNewestDateFirstAndStopAtTheLimit() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try Node.initialize(dataDir: DataDirectory(path: dir.path + "/n"), office: "จังหวัด", letterCode: "นว 0017")
        defer { node.close() }
        let days = ["5 มกราคม 2569", "1 ธันวาคม 2568", "20 มีนาคม 2569", "5 มกราคม 2569", ""]
        var ids: [DocID] = []
        for (i, day) in days.enumerated() {
            var fields = [("เรื่อง", "ขอเชิญประชุมครั้งที่ \(i)")]
            if !day.isEmpty { fields.append(("วันที่", day)) }
            ids.append(try node.createLetter(kind: .internal, fields: fields))
            _ = try node.search(SearchQuery(text: "ประชุม"))  // indexed one at a time, in this order
        }
        #expect(try node.search(SearchQuery(text: "ประชุม")).map(\.document) == [ids[2], ids[3], ids[0], ids[1], ids[4]])
        #expect(try node.search(SearchQuery(text: "ประชุม", limit: 2)).map(\.document) == [ids[2], ids[3]])
        try node.set(ids[1], field: "วันที่", value: .string("1 เมษายน 2569"))
        #expect(try node.search(SearchQuery(text: "ประชุม", limit: 2)).map(\.document) == [ids[1], ids[2]])
        #expect(try node.search(SearchQuery(text: "ประชุม", from: 25690101, to: 25690131)).map(\.document) == [ids[3], ids[0]])
    }
}
