import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanOffice
import SarabanStorage
import SarabanSync
import Testing

private let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/legacy/v2-letters")

/// Issue 14, migration: letters of the shared-letter model, written by the previous release
/// (Fixtures/legacy/v2-letters), get this office's records in its own space, once; the shared
/// letters stay readable and the registers are unchanged.
@Suite struct LetterMigrationTests {
    func id(_ name: String) throws -> String {
        try String(contentsOf: fixture.appendingPathComponent(name + ".id"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Copies the fixture's node `name` to `dir` and opens it (at 13 June 2568, Thai time).
    func open(_ name: String, in dir: TempDir) throws -> Node {
        let to = dir.file(name)
        try FileManager.default.copyItem(atPath: fixture.appendingPathComponent(name).path, toPath: to)
        chmod(to, 0o700)
        chmod(to + "/node.key", 0o600)
        chmod(to + "/saraban.db", 0o600)
        for f in (try? FileManager.default.contentsOfDirectory(atPath: to + "/officers")) ?? [] where f.hasSuffix(".key") {
            chmod(to + "/officers/" + f, 0o600)
        }
        return try Node.open(dataDir: DataDirectory(path: to), logger: quiet, now: { 1_749_790_800_000 })
    }

    @Test func sentAndReceivedSharedLettersGetTheirOfficesRecords() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let shared = try #require(DocID(try id("sent-letter")))
        let draft = try #require(DocID(try id("shared-draft")))
        let workspaceLetter = try #require(DocID(try id("workspace-letter")))
        let province = try open("province", in: dir)
        let district = try open("district", in: dir)
        defer { for n in [province, district] { n.close() } }

        // The sender: its record of the shared letter, in its own space, with the district's
        // acknowledgement as its receipt; the shared letter is still there.
        let records = try province.letters().filter { $0.legacy == shared }
        #expect(records.count == 1)
        let sent = try #require(records.first)
        #expect(sent.home == nil && sent.status == .sent)
        #expect(sent.fields["ที่"] == "นว 0017/1" && sent.fields["เรื่อง"] == "ขอเชิญประชุมคณะกรรมการ")
        #expect(sent.fields["ข้อความ"] == "จังหวัดขอเชิญท่านเข้าร่วมประชุม")
        let status = try province.correspondence.deliveryStatus(sent)
        #expect(status.map(\.delivery.office) == ["ที่ทำการปกครองอำเภอบรรพตพิสัย"])
        #expect(status.first?.state == .received(number: 1, year: 2568, date: "13 มิถุนายน 2568", time: "11:15"))
        #expect(try province.officers.verify(sent.id).allSatisfy(\.valid))
        #expect(try province.letter(shared).home == "จังหวัด")
        // A draft, and a letter of the office's own space, are left as they were.
        #expect(try province.letters().filter { $0.legacy == draft || $0.legacy == workspaceLetter }.isEmpty)
        #expect(try province.letter(draft).status == .draft)
        // The send register is unchanged; its form shows the letter through the record.
        let book = try province.registerForms.form(.send, year: 2568)
        #expect(book.rows.map(\.number) == [1, 2])
        #expect(book.rows[0].letter == shared.description && book.rows[0].action == "ที่ทำการปกครองอำเภอบรรพตพิสัย รับแล้ว เลขรับ 1")

        // The receiver: its receive record with its เลขรับ, the sender's signature verifying.
        let received = try #require(try district.letters().first { $0.legacy == shared })
        #expect(received.status == .received && received.receiveEntry?.number == 1)
        let provinceID = try id("province")
        #expect(received.origin?.office == "สำนักงานจังหวัดนครสวรรค์" && received.origin?.node == provinceID)
        #expect(try district.officers.verify(received.id).allSatisfy(\.valid))
        let inbook = try district.registerForms.form(.receive, year: 2568)
        #expect(inbook.rows.count == 1 && inbook.rows[0].letterNumber == "นว 0017/1" && inbook.rows[0].from == "สำนักงานจังหวัดนครสวรรค์")
        #expect(inbook.rows[0].action == "→ ปลัดอำเภอ: เพื่อโปรดพิจารณา")

        // Once: opening again writes nothing.
        let rerun = try province.correspondence.migrateSharedLetters()
        #expect(rerun.sent == 0 && rerun.received == 0)
        let before = try province.status().changes
        province.close()
        let again = try Node.open(dataDir: DataDirectory(path: dir.file("province")), logger: quiet)
        defer { again.close() }
        #expect(try again.status().changes == before)
        #expect(try again.letters().filter { $0.legacy == shared }.count == 1)
    }
}
