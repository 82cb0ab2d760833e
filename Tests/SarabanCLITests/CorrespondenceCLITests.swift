import Foundation
import Testing

// Correspondence between offices (issue 14), as a registry clerk runs it: `letter send --to`,
// `letter inbox`, `letter receive`, `letter return`, `letter intake`, `office list`, between real
// data directories that sync over the network (A serves, the others run `saraban sync`). Each
// "Why" test names the numbered item of the issue it shows fixed; against the previous release
// (SARABAN_BIN=/work/wt/old/.build/debug/saraban) each fails.

/// One office's data directory, run at the next fake minute of a shared clock.
final class OfficeNode: @unchecked Sendable {
    let data: String
    let office: String
    let nodeID: String
    let clock: FakeMinutes

    init(_ data: String, office: String, code: String, clock: FakeMinutes) throws {
        self.data = data
        self.office = office
        self.clock = clock
        let r = try run(["init", "--data", data, "--office", office, "--code", code])
        #expect(r.status == 0, "\(r.stderr)")
        nodeID = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    func sar(_ args: [String], expect status: Int32? = 0, sourceLocation: SourceLocation = #_sourceLocation) throws -> Result {
        let r = try run(args + ["--data", data], env: ["SARABAN_FAKE_TIME": String(clock.next())])
        if let status {
            #expect(r.status == status, "saraban \(args.joined(separator: " ")): \(r.stderr)", sourceLocation: sourceLocation)
        }
        return r
    }

    func line(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        try sar(args, sourceLocation: sourceLocation).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func jsonOut(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> Any {
        try json(try sar(args + ["--json"], sourceLocation: sourceLocation).stdout)
    }
}

/// A province's office A (admin of the exchange space จังหวัดนครสวรรค์, serving on loopback) and
/// two district offices B and C invited into it, which sync with A.
final class Province: @unchecked Sendable {
    let dir: TempDir
    let a: OfficeNode
    let b: OfficeNode
    let c: OfficeNode
    let server: ServeProcess
    static let officer = "นายสมมติ ใจดี"
    /// The officer's passphrase, in an owner-only file (`--passphrase-file`).
    let passphrase: String

    init(_ name: String = #function) throws {
        dir = TempDir(name)
        let clock = FakeMinutes()
        a = try OfficeNode(dir.file("a"), office: "สำนักงานจังหวัดนครสวรรค์", code: "นว 0017", clock: clock)
        b = try OfficeNode(dir.file("b"), office: "อบต.หนองบัว", code: "นว 0318", clock: clock)
        c = try OfficeNode(dir.file("c"), office: "อำเภอบรรพตพิสัย", code: "นว 0418", clock: clock)
        try a.sar(["space", "create", "จังหวัดนครสวรรค์"])
        for o in [b, c] {
            try a.sar(["space", "invite", "จังหวัดนครสวรรค์", o.nodeID, "--office", o.office, "--out", dir.file("\(o.nodeID).inv")])
            try o.sar(["space", "join", dir.file("\(o.nodeID).inv")])
        }
        passphrase = dir.file("officer.pass")
        FileManager.default.createFile(
            atPath: passphrase, contents: Data("ผู้ว่าฯ ลงนามเอง\n".utf8), attributes: [.posixPermissions: 0o600])
        try a.sar([
            "officer", "add", Self.officer, "--position", "ผู้ว่าราชการจังหวัดนครสวรรค์", "--passphrase-file", passphrase,
        ])
        server = try ServeProcess(data: a.data)
        for o in [b, c] { try o.sar(["peer", "add", a.nodeID, "127.0.0.1:\(server.port)", "--name", "จังหวัด"]) }
    }

    func stop() {
        server.stop()
        dir.cleanup()
    }

    /// One sync of `o` with A (both ways).
    func sync(_ o: OfficeNode, sourceLocation: SourceLocation = #_sourceLocation) throws {
        try o.sar(["sync"], sourceLocation: sourceLocation)
    }

    /// A complete external letter drafted at A (no --space: in A's own space).
    func draft(_ subject: String = "ขอเชิญประชุมคณะกรรมการ") throws -> String {
        try a.line([
            "letter", "new", "--kind", "ภายนอก", "--subject", subject, "--to", "นายก อบต.หนองบัว", "--set",
            "ข้อความ=จังหวัดนครสวรรค์ขอเชิญท่านเข้าร่วมประชุม", "--set", "คำลงท้าย=ขอแสดงความนับถือ",
        ])
    }

    /// The first inbox entry of `o` (its dispatch id).
    func inbox(_ o: OfficeNode) throws -> [[String: Any]] {
        try o.jsonOut(["letter", "inbox"]) as? [[String: Any]] ?? []
    }
}

@Suite(.ownThread, .serialized, .timeLimit(.minutes(4)))
struct CorrespondenceCLITests {
    /// Why 1: a letter made without --space was "sent" (number taken, exit 0) and never left the
    /// office. Now `letter send` names the recipients or refuses without numbering anything,
    /// `letter show` says where the letter lives, and `--to` delivers it.
    @Test func why1_aLetterIsSentOnlyToNamedOfficesAndNoNumberIsWasted() throws {
        let p = try Province()
        defer { p.stop() }
        let id = try p.draft()
        try p.a.sar(["letter", "edit", id, "ผู้ลงนาม", Province.officer])
        try p.a.sar(["letter", "edit", id, "ตำแหน่ง", "ผู้ว่าราชการจังหวัดนครสวรรค์"])
        let noRecipient = try p.a.sar(["letter", "send", id], expect: 64)
        #expect(noRecipient.stderr.contains("--to") && noRecipient.stderr.contains("office list"))
        let book = try #require(try p.a.jsonOut(["register", "show", "send"]) as? [String: Any])
        #expect((book["lines"] as? [Any])?.isEmpty == true, "a number was taken: \(book)")
        let unknown = try p.a.sar(["letter", "send", id, "--to", "อบต.ไม่มีจริง"], expect: 67)
        #expect(unknown.stderr.contains("office list"))
        let shown = try p.a.sar(["letter", "show", id]).stdout
        #expect(shown.contains("อยู่ที่") && shown.contains("this office only"))

        let offices = try #require(try p.a.jsonOut(["office", "list"]) as? [[String: Any]])
        #expect(Set(offices.compactMap { $0["office"] as? String }) == ["อบต.หนองบัว", "อำเภอบรรพตพิสัย"])
        let sent = try #require(try p.a.jsonOut(["letter", "send", id, "--to", "อบต.หนองบัว"]) as? [String: Any])
        #expect(sent["letterNumber"] as? String == "นว 0017/1")
        #expect(sent["status"] as? String == "ส่งแล้ว")
        #expect((sent["dispatches"] as? [[String: Any]])?.first?["spaceName"] as? String == "จังหวัดนครสวรรค์")
        #expect(try p.a.sar(["letter", "show", id]).stdout.contains("ส่งถึง อบต.หนองบัว  ยังไม่รับ"))
        // Sending again writes nothing new.
        let again = try #require(try p.a.jsonOut(["letter", "send", id, "--to", "อบต.หนองบัว"]) as? [String: Any])
        #expect((again["dispatches"] as? [[String: Any]])?.first?["existing"] as? Bool == true)

        try p.sync(p.b)
        let inbox = try p.inbox(p.b)
        #expect(inbox.count == 1)
        #expect(inbox.first?["number"] as? String == "นว 0017/1")
        #expect(inbox.first?["office"] as? String == "สำนักงานจังหวัดนครสวรรค์")
        #expect(inbox.first?["subject"] as? String == "ขอเชิญประชุมคณะกรรมการ")
        // C was not a recipient: its inbox is empty although it shares the space.
        try p.sync(p.c)
        #expect(try p.inbox(p.c).isEmpty)
    }

    /// Why 2: `letter new` → `letter sign` → `letter send` (the natural order) left a signature
    /// that failed for ever ("changed after signing: ที่, วันที่"). Officers now sign the content
    /// and the registry stamps ที่ and วันที่: both offices verify; a real change is still named.
    @Test func why2_signingBeforeSendingVerifiesAtBothOffices() throws {
        let p = try Province()
        defer { p.stop() }
        let id = try p.draft()
        try p.a.sar(["letter", "sign", id, "--officer", Province.officer, "--passphrase-file", p.passphrase])
        try p.a.sar(["letter", "send", id, "--to", "อบต.หนองบัว"])
        let verifyA = try p.a.sar(["letter", "verify", id])
        #expect(verifyA.stdout.contains("ตราทะเบียน ที่ นว 0017/1"))
        #expect(!verifyA.stdout.contains("changed after signing"))

        try p.sync(p.b)
        let dispatch = try #require(try p.inbox(p.b).first?["dispatch"] as? String)
        let received = try #require(try p.b.jsonOut(["letter", "receive", dispatch]) as? [String: Any])
        let record = try #require(received["letter"] as? String)
        let verifyB = try #require(try p.b.jsonOut(["letter", "verify", record]) as? [String: Any])
        #expect(verifyB["valid"] as? Bool == true, "\(verifyB)")

        // A field changed after the signature is still reported by name (at A, before sending).
        let other = try p.draft("เรื่องที่สอง")
        try p.a.sar(["letter", "sign", other, "--officer", Province.officer, "--passphrase-file", p.passphrase])
        try p.a.sar(["letter", "edit", other, "เรียน", "ผู้ว่าราชการจังหวัด"])
        let changed = try p.a.sar(["letter", "verify", other], expect: 68)
        #expect(changed.stdout.contains("changed after signing: เรียน"))
    }

    /// Why 3: the receiving office could edit, delete and close the sender's sent, signed letter.
    /// Now it holds a sealed dispatch nobody can change and its own record; closing its record
    /// leaves the sender's untouched, and the sender sees the receipt.
    @Test func why3_theReceivingOfficeCannotChangeTheSendersLetter() throws {
        let p = try Province()
        defer { p.stop() }
        let id = try p.draft()
        try p.a.sar(["letter", "sign", id, "--officer", Province.officer, "--passphrase-file", p.passphrase])
        try p.a.sar(["letter", "send", id, "--to", "อบต.หนองบัว"])
        try p.sync(p.b)
        let dispatch = try #require(try p.inbox(p.b).first?["dispatch"] as? String)
        // B does not even hold A's letter, only the dispatch.
        try p.b.sar(["letter", "show", id], expect: 67)
        let edit = try p.b.sar(["doc", "set", dispatch, "เรียน", "ผู้อื่น"], expect: 68)
        #expect(edit.stderr.contains("sealed"))
        try p.b.sar(["doc", "delete", dispatch], expect: 68)
        try p.b.sar(["letter", "edit", dispatch, "เรียน", "ผู้อื่น"], expect: 67)

        let received = try #require(try p.b.jsonOut(["letter", "receive", dispatch]) as? [String: Any])
        #expect(received["number"] as? Int == 1)
        let record = try #require(received["letter"] as? String)
        let twice = try #require(try p.b.jsonOut(["letter", "receive", dispatch]) as? [String: Any])
        #expect(twice["existing"] as? Bool == true && twice["number"] as? Int == 1 && twice["letter"] as? String == record)
        // B's record: content as received, its status its own.
        try p.b.sar(["letter", "edit", record, "เรียน", "ผู้อื่น"], expect: 68)
        try p.b.sar(["letter", "edit", record, "สถานะ", "ปิดเรื่อง"])
        try p.sync(p.b)

        let shown = try p.a.sar(["letter", "show", id]).stdout
        #expect(shown.contains("สถานะ:  ส่งแล้ว"), "\(shown)")
        #expect(shown.contains("ส่งถึง อบต.หนองบัว  รับแล้ว เลขรับ 1"), "\(shown)")
        let list = try #require(try p.a.jsonOut(["letter", "list"]) as? [[String: Any]])
        #expect(list.count == 1 && list.first?["id"] as? String == id && list.first?["status"] as? String == "ส่งแล้ว")
        #expect(try p.a.sar(["letter", "verify", id]).status == 0)
        // B's own record is closed; A's dispatch is as A wrote it.
        #expect(try p.b.sar(["letter", "show", record]).stdout.contains("สถานะ:  ปิดเรื่อง"))
        #expect(try p.b.sar(["letter", "show", dispatch]).stdout.contains("เรียน  นายก อบต.หนองบัว"))
    }

    /// Why 4: a paper letter could not enter the receive register (its ที่ was refused). `letter
    /// intake` takes it straight in with its own ที่, ลงวันที่, จาก, ถึง, เรื่อง and a scan.
    @Test func why4_aPaperLetterGoesStraightIntoTheReceiveBook() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let b = try OfficeNode(dir.file("b"), office: "อบต.หนองบัว", code: "นว 0318", clock: FakeMinutes())
        try Data(repeating: 0x41, count: 70_000).write(to: URL(fileURLWithPath: dir.file("scan.pdf")))
        let r = try #require(
            try b.jsonOut([
                "letter", "intake", "--from", "สำนักงานที่ดินจังหวัดนครสวรรค์", "--number", "นว 0020/ว 455", "--date",
                "6/12/2569", "--subject", "แจ้งผลการรังวัดที่ดิน", "--to", "นายก อบต.หนองบัว", "--via", "ไปรษณีย์",
                "--scan", dir.file("scan.pdf"),
            ]) as? [String: Any])
        #expect(r["number"] as? Int == 1 && r["book"] as? String == "receive")
        let record = try #require(r["letter"] as? String)
        let shown = try b.sar(["letter", "show", record]).stdout
        #expect(shown.contains("ที่  นว 0020/ว 455") && shown.contains("วันที่  6 ธันวาคม 2569"))
        #expect(shown.contains("จาก  สำนักงานที่ดินจังหวัดนครสวรรค์") && shown.contains("ช่องทาง: ไปรษณีย์"))
        #expect(shown.contains("scan.pdf"))
        let book = try #require(try b.jsonOut(["register", "show", "receive", "--year", "2569"]) as? [String: Any])
        let line = try #require((book["lines"] as? [[String: Any]])?.first)
        #expect(line["letterNumber"] as? String == "นว 0020/ว 455")
        #expect(line["from"] as? String == "สำนักงานที่ดินจังหวัดนครสวรรค์")
        // A missing ที่ or an unreadable scan: nothing is registered.
        try b.sar(
            ["letter", "intake", "--from", "x", "--number", " ", "--date", "6 ธันวาคม 2569", "--subject", "y"], expect: 64)
        try b.sar(
            ["letter", "intake", "--from", "x", "--number", "1", "--date", "6 ธันวาคม 2569", "--subject", "y", "--scan",
             dir.file("none.pdf")], expect: 64)
        let after = try #require(try b.jsonOut(["register", "show", "receive", "--year", "2569"]) as? [String: Any])
        #expect((after["lines"] as? [Any])?.count == 1)
    }

    /// Why 5: drafts and internal routing (เกษียน) of one office reached every member office of the
    /// space. Now they stay in the office's own space: a full sync gives the other office only the
    /// dispatch, and its record carries none of the sender's routing.
    @Test func why5_draftsAndRoutingStayInTheOffice() throws {
        let p = try Province()
        defer { p.stop() }
        let draft = try p.draft("ร่างภายใน ยังไม่ส่ง")
        try p.a.sar(["letter", "route", draft, "--to", "หัวหน้าสำนักงาน", "--note", "ร่างเพื่อพิจารณา"])
        let sentID = try p.draft()
        try p.a.sar(["letter", "sign", sentID, "--officer", Province.officer, "--passphrase-file", p.passphrase])
        try p.a.sar(["letter", "route", sentID, "--to", "ผู้ว่าราชการจังหวัด", "--note", "เพื่อโปรดลงนาม"])
        try p.a.sar(["letter", "send", sentID, "--to", "อบต.หนองบัว"])
        try p.sync(p.b)
        let dispatch = try #require(try p.inbox(p.b).first?["dispatch"] as? String)
        let record = try #require((try p.b.jsonOut(["letter", "receive", dispatch]) as? [String: Any])?["letter"] as? String)
        let docs = try p.b.sar(["doc", "list"]).stdout
        #expect(!docs.contains(draft) && !docs.contains(sentID))
        #expect(!docs.contains("ร่างภายใน"))
        let letters = try #require(try p.b.jsonOut(["letter", "list"]) as? [[String: Any]])
        #expect(letters.map { $0["id"] as? String } == [record])
        let shown = try p.b.sar(["letter", "show", record]).stdout
        #expect(!shown.contains("เกษียน") && !shown.contains("เพื่อโปรดลงนาม"))
    }

    /// ส่งคืน: B sends a dispatch back with a reason; A's record shows it; B can no longer receive it,
    /// and the inbox no longer lists it.
    @Test func aReturnedLetterShowsItsReasonAtTheSender() throws {
        let p = try Province()
        defer { p.stop() }
        let id = try p.draft()
        try p.a.sar(["letter", "sign", id, "--officer", Province.officer, "--passphrase-file", p.passphrase])
        try p.a.sar(["letter", "send", id, "--to", "อบต.หนองบัว", "--to", "นว 0418"], expect: 67)  // no code known yet
        try p.a.sar(["letter", "send", id, "--to", "อบต.หนองบัว", "--to", p.c.nodeID])
        try p.sync(p.b)
        let dispatch = try #require(try p.inbox(p.b).first?["dispatch"] as? String)
        try p.b.sar(["letter", "return", dispatch, "--reason", " "], expect: 64)
        try p.b.sar(["letter", "return", dispatch, "--reason", "ส่งผิดหน่วยงาน"])
        #expect(try p.inbox(p.b).isEmpty)
        try p.b.sar(["letter", "receive", dispatch], expect: 68)
        try p.sync(p.b)
        let shown = try p.a.sar(["letter", "show", id]).stdout
        #expect(shown.contains("ส่งถึง อบต.หนองบัว  ส่งคืน: ส่งผิดหน่วยงาน"), "\(shown)")
        #expect(shown.contains("ส่งถึง อำเภอบรรพตพิสัย  ยังไม่รับ"), "\(shown)")
    }

    /// Why 9: the receive register lacked ลงวันที่ and การปฏิบัติ, showed internal ids, had no UTF-8
    /// BOM, listed a ลับ letter's full subject and showed reservations in UTC Gregorian time. The
    /// registers now print as the official forms.
    @Test func why9_theRegistersAreTheOfficialForms() throws {
        let p = try Province()
        defer { p.stop() }
        let id = try p.draft()
        try p.a.sar(["letter", "sign", id, "--officer", Province.officer, "--passphrase-file", p.passphrase])
        try p.a.sar(["letter", "send", id, "--to", "อบต.หนองบัว"])
        try p.sync(p.b)
        let dispatch = try #require(try p.inbox(p.b).first?["dispatch"] as? String)
        let record = try #require((try p.b.jsonOut(["letter", "receive", dispatch]) as? [String: Any])?["letter"] as? String)
        try p.b.sar(["letter", "route", record, "--to", "ปลัด อบต.", "--note", "เพื่อโปรดพิจารณา"])
        try p.b.sar([
            "letter", "intake", "--from", "สำนักงานที่ดินจังหวัด", "--number", "นว 0020/455", "--date", "6/12/2569",
            "--subject", "แจ้งผลการรังวัด", "--to", "นายก อบต.หนองบัว", "--via", "ไปรษณีย์",
        ])
        try p.b.sar(["space", "clearance", "office", "ลับ"])
        try p.b.sar([
            "letter", "intake", "--from", "กองกำลังป้องกันชายแดน", "--number", "กห 0401/ลับ 9", "--date", "7/12/2569",
            "--subject", "กำหนดการตรวจพื้นที่ชายแดน", "--secrecy", "ลับ",
        ])
        try p.b.sar(["register", "reserve", "receive", "--until", "2026-12-31"])

        let csv = try p.b.sar(["register", "show", "receive", "--year", "2569", "--csv"])
        #expect(csv.stdoutBytes.starts(with: [0xEF, 0xBB, 0xBF]), "no UTF-8 byte-order mark")
        let lines = csv.stdout.dropFirst().components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.first == "เลขทะเบียนรับ,ที่,ลงวันที่,จาก,ถึง,เรื่อง,การปฏิบัติ,หมายเหตุ,วันที่ลงทะเบียน,เวลา")
        #expect(lines.count == 5)
        #expect(lines[1].hasPrefix("1,นว 0017/1,"))
        #expect(lines[1].contains(",สำนักงานจังหวัดนครสวรรค์,นายก อบต.หนองบัว,ขอเชิญประชุมคณะกรรมการ,→ ปลัด อบต.: เพื่อโปรดพิจารณา,"))
        #expect(lines[2].hasPrefix("2,นว 0020/455,6 ธันวาคม 2569,สำนักงานที่ดินจังหวัด,นายก อบต.หนองบัว,แจ้งผลการรังวัด,,ไปรษณีย์,"))
        // The secret letter: numbered and listed, its subject withheld.
        #expect(lines[3].hasPrefix("3,กห 0401/ลับ 9,7 ธันวาคม 2569,กองกำลังป้องกันชายแดน,,ลับ,,ชั้นความลับ ลับ,"))
        #expect(!csv.stdout.contains("กำหนดการตรวจพื้นที่ชายแดน"))
        #expect(lines[4].hasPrefix("4,,,,,,,จองไว้ถึง 31 ธันวาคม 2569 23:59 น."), "\(lines[4])")
        // No internal ids anywhere in the form.
        for doc in [record, dispatch] { #expect(!csv.stdout.contains(doc)) }
        let cleared = try p.b.sar(["register", "show", "receive", "--year", "2569", "--csv", "--clearance", "ลับ"])
        #expect(cleared.stdout.contains("กำหนดการตรวจพื้นที่ชายแดน"))

        let text = try p.b.sar(["register", "show", "receive", "--year", "2569"]).stdout
        #expect(text.hasPrefix("ทะเบียนหนังสือรับ ปี 2569  อบต.หนองบัว\n"))
        #expect(text.contains("เลขทะเบียนรับ") && text.contains("ลงวันที่") && text.contains("จาก") && text.contains("การปฏิบัติ"))
        #expect(!text.contains(record) && !text.contains("กำหนดการตรวจพื้นที่ชายแดน"))

        // The sender's send book: to whom, and the receipt, once it came back.
        try p.sync(p.b)
        let sendCSV = try p.a.sar(["register", "show", "send", "--year", "2569", "--csv"]).stdout
        #expect(sendCSV.contains("\r\n1,นว 0017/1,"))
        #expect(sendCSV.contains(",สำนักงานจังหวัดนครสวรรค์,อบต.หนองบัว,ขอเชิญประชุมคณะกรรมการ,อบต.หนองบัว รับแล้ว เลขรับ 1,"))
    }
}
