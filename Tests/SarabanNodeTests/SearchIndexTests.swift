import SarabanCore
import SarabanNode
import SarabanOffice
import SarabanStorage
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
        #expect(try node.store.schemaInfo().migrations.contains("v6"))
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
}
