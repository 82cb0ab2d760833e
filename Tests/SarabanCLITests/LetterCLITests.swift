import Foundation
import Testing

/// `saraban letter|register|officer` end to end, as subprocesses: two offices exchanging a letter
/// (its dispatch and the receipt) through change files (doc export / doc merge), as they would over a USB stick.
@Suite(.ownThread, .timeLimit(.minutes(5))) struct LetterCLITests {
    let env = ["SARABAN_FAKE_TIME": "2025-06-13T03:00:00Z"]  // 10:00 on 13 June 2568 in Thailand

    func ok(_ args: [String], _ env: [String: String]? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws
        -> String
    {
        let r = try run(args, env: env ?? self.env)
        #expect(r.status == 0, "saraban \(args.joined(separator: " ")): \(r.stderr)", sourceLocation: sourceLocation)
        return r.stdout
    }

    @Test func letterLifecycleBetweenTwoOffices() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = dir.path + "/a"
        let b = dir.path + "/b"
        _ = try ok(["init", "--data", a, "--office", "สำนักงานจังหวัดนครสวรรค์", "--code", "นว 0017"])
        _ = try ok(["init", "--data", b, "--office", "ที่ทำการปกครองอำเภอบรรพตพิสัย", "--code", "นว 0318"])
        let pass = dir.file("passphrase")
        FileManager.default.createFile(atPath: pass, contents: Data("ผู้ว่าฯ ลงนามเอง\n".utf8), attributes: [.posixPermissions: 0o600])
        _ = try ok([
            "officer", "add", "--data", a, "นายสมมติ ใจดีเสมอ", "--position", "ผู้ว่าราชการจังหวัดนครสวรรค์",
            "--passphrase-file", pass,
        ])

        // Validation errors: non-zero exit, Thai and English.
        let bad = try run(["letter", "new", "--data", a, "--kind", "ภายนอก", "--urgency", "เร็วจี๋"], env: env)
        #expect(bad.status == 64)
        #expect(bad.stderr.contains("ชั้นความเร็ว") && bad.stderr.contains("urgency"))
        let badKind = try run(["letter", "new", "--data", a, "--kind", "จดหมายรัก"], env: env)
        #expect(badKind.status == 64 && badKind.stderr.contains("unknown letter kind"))
        let top = try run(["letter", "new", "--data", a, "--kind", "ภายใน", "--secrecy", "ลับที่สุด"], env: env)
        #expect(top.status == 68 && top.stderr.contains("ลับที่สุด") && top.stderr.contains("top-secret"))
        let secret = try run(["letter", "new", "--data", a, "--kind", "ภายใน", "--secrecy", "ลับ"], env: env)
        #expect(secret.status == 68 && secret.stderr.contains("cleared"))

        let id = try ok([
            "letter", "new", "--data", a, "--kind", "ภายนอก", "--subject", "ขอเชิญประชุมคณะกรรมการ",
            "--to", "นายอำเภอบรรพตพิสัย", "--urgency", "ด่วน",
            "--set", "ข้อความ=จังหวัดนครสวรรค์จึงขอเชิญท่านเข้าร่วมประชุม", "--set", "คำลงท้าย=ขอแสดงความนับถือ",
            "--set", "ส่วนราชการ=สำนักงานจังหวัดนครสวรรค์",
        ]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(id.contains("-"))
        let early = try run(["letter", "register", "--data", a, id], env: env)
        #expect(early.status == 64 && early.stderr.contains("ผู้ลงนาม") && early.stderr.contains("signer"))

        _ = try ok(["letter", "edit", "--data", a, id, "ผู้ลงนาม", "นายสมมติ ใจดีเสมอ"])
        _ = try ok(["letter", "edit", "--data", a, id, "position", "ผู้ว่าราชการจังหวัดนครสวรรค์"])
        let registered = try ok(["letter", "register", "--data", a, id])
        #expect(registered.contains("ที่ นว 0017/1") && registered.contains("13 มิถุนายน 2568"))
        _ = try ok(["letter", "sign", "--data", a, id, "--officer", "นายสมมติ ใจดีเสมอ", "--passphrase-file", pass])
        // To B, through a space the two offices share (a change file carries the dispatch here).
        let bID = try ok(["id", "--data", b]).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try ok(["space", "create", "--data", a, "จังหวัด"])
        _ = try ok(["space", "invite", "--data", a, "จังหวัด", bID, "--office", "ที่ทำการปกครองอำเภอบรรพตพิสัย", "--out", dir.file("inv")])
        _ = try ok(["space", "join", "--data", b, dir.file("inv")])
        let sent = try json(try ok(["letter", "send", "--data", a, id, "--to", "ที่ทำการปกครองอำเภอบรรพตพิสัย", "--json"])) as! [String: Any]
        #expect(sent["letterNumber"] as? String == "นว 0017/1")
        #expect(sent["status"] as? String == "ส่งแล้ว")
        let dispatch = try #require((sent["dispatches"] as? [[String: Any]])?.first?["id"] as? String)
        #expect(try ok(["letter", "verify", "--data", a, id]).contains("valid"))

        let show = try ok(["letter", "show", "--data", a, id])
        #expect(show.contains("ที่  นว 0017/1"))
        #expect(show.contains("วันที่  13 มิถุนายน 2568"))
        #expect(show.contains("เรื่อง  ขอเชิญประชุมคณะกรรมการ"))
        #expect(show.contains("เรียน  นายอำเภอบรรพตพิสัย"))
        #expect(show.contains("ด่วน"))
        #expect(show.contains("(นายสมมติ ใจดีเสมอ)"))
        let thaiShow = try ok(["letter", "show", "--data", a, id, "--thai-digits"])
        #expect(thaiShow.contains("วันที่  ๑๓ มิถุนายน ๒๕๖๘") && thaiShow.contains("นว ๐๐๑๗/๑"))

        // A → B by change file: the dispatch (and the space's log it depends on).
        _ = try ok(["doc", "export", "--data", a, dispatch, dir.file("to-b.changes")])
        _ = try ok(["doc", "merge", "--data", b, dir.file("to-b.changes")])
        let bEnv = ["SARABAN_FAKE_TIME": "2025-06-13T04:15:00Z"]
        let rec = try ok(["letter", "receive", "--data", b, dispatch], bEnv)
        #expect(rec.contains("เลขรับ 1") && rec.contains("11:15"))
        let again = try ok(["letter", "receive", "--data", b, dispatch], bEnv)
        #expect(again.contains("already received"))
        let received = try json(try ok(["letter", "receive", "--data", b, dispatch, "--json"], bEnv)) as! [String: Any]
        let record = try #require(received["letter"] as? String)
        #expect(try ok(["letter", "verify", "--data", b, record]).contains("valid"))
        let regB = try json(try ok(["register", "show", "--data", b, "receive", "--year", "2568", "--json"])) as! [String: Any]
        let linesB = regB["lines"] as! [[String: Any]]
        #expect(linesB.count == 1)
        #expect(linesB.first?["letterNumber"] as? String == "นว 0017/1")
        _ = try ok(["letter", "route", "--data", b, record, "--to", "ปลัดอำเภอ", "--note", "เพื่อโปรดพิจารณา"], bEnv)

        // B → A: the receipt reaches the sender's record; B's routing stays at B.
        let receipts = try json(try ok(["doc", "list", "--data", b, "--json"])) as! [[String: Any]]
        let receipt = try #require(receipts.first { $0["kind"] as? String == "receipt" }?["id"] as? String)
        _ = try ok(["doc", "export", "--data", b, receipt, dir.file("to-a.changes")])
        _ = try ok(["doc", "merge", "--data", a, dir.file("to-a.changes")])
        let back = try ok(["letter", "show", "--data", a, id])
        #expect(back.contains("ส่งถึง ที่ทำการปกครองอำเภอบรรพตพิสัย  รับแล้ว เลขรับ 1 (13 มิ.ย. 2568 11:15)"))
        #expect(!back.contains("เกษียน"))
        let shown = try json(try ok(["letter", "show", "--data", a, id, "--json"])) as! [String: Any]
        #expect((shown["deliveries"] as! [[String: Any]]).first?["number"] as? Int == 1)

        // Tampering after signing: verify names the field and fails (a draft at A).
        let draft = try ok([
            "letter", "new", "--data", a, "--kind", "ภายนอก", "--subject", "ร่าง", "--to", "นายอำเภอ",
            "--set", "ข้อความ=ข้อความ", "--set", "คำลงท้าย=ขอแสดงความนับถือ",
        ]).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = try ok(["letter", "sign", "--data", a, draft, "--officer", "นายสมมติ ใจดีเสมอ", "--passphrase-file", pass])
        _ = try ok(["letter", "edit", "--data", a, draft, "เรียน", "ผู้ว่าราชการจังหวัด"])
        let tampered = try run(["letter", "verify", "--data", a, draft], env: env)
        #expect(tampered.status == 68)
        #expect(tampered.stdout.contains("changed after signing: เรียน"))
        #expect(tampered.stderr.contains("เรียน"))
        // A sent letter's content is what the recipients hold: it no longer changes.
        let locked = try run(["letter", "edit", "--data", a, id, "เรียน", "ผู้อื่น"], env: env)
        #expect(locked.status == 68)

        // Registers: CSV, reservation, cancellation.
        let csv = try ok(["register", "show", "--data", a, "send", "--csv"])
        #expect(csv.hasPrefix("\u{FEFF}เลขทะเบียนส่ง,ที่,ลงวันที่,จาก,ถึง,เรื่อง,การปฏิบัติ,หมายเหตุ"))
        #expect(csv.contains(
            "1,นว 0017/1,13 มิถุนายน 2568,สำนักงานจังหวัดนครสวรรค์,ที่ทำการปกครองอำเภอบรรพตพิสัย,ขอเชิญประชุมคณะกรรมการ,"
                + "ที่ทำการปกครองอำเภอบรรพตพิสัย รับแล้ว เลขรับ 1,,13 มิถุนายน 2568,10:00\r\n"))
        #expect(try ok(["register", "reserve", "--data", a, "send", "--until", "2h"]).trimmingCharacters(in: .whitespacesAndNewlines) == "2")
        _ = try ok(["register", "cancel", "--data", a, "send", "2", "--reason", "ไม่ใช้แล้ว"])
        let text = try ok(["register", "show", "--data", a, "ส่ง"])
        #expect(text.contains("ทะเบียนหนังสือส่ง ปี 2568"))
        #expect(text.contains("ยกเลิก: ไม่ใช้แล้ว"))
        let reserveB = try ok(["register", "reserve", "--data", b, "send", "--until", "1h"])
        #expect(reserveB.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        let later = try ok(["register", "show", "--data", b, "send"], ["SARABAN_FAKE_TIME": "2025-06-13T09:00:00Z"])
        #expect(later.contains("หมดอายุการจอง"))
        let noReason = try run(["register", "cancel", "--data", a, "send", "1"], env: env)
        #expect(noReason.status == 64)

        let list = try json(try ok(["letter", "list", "--data", a, "--json", "--status", "sent"])) as! [[String: Any]]
        #expect(list.count == 1 && list.first?["number"] as? String == "นว 0017/1")
        let drafts = try json(try ok(["letter", "list", "--data", a, "--json", "--status", "draft"])) as! [[String: Any]]
        #expect(drafts.count == 1 && drafts.first?["subject"] as? String == "ร่าง")
        let transition = try run(["letter", "edit", "--data", a, id, "สถานะ", "ร่าง"], env: env)
        #expect(transition.status == 68 && transition.stderr.contains("cannot go from sent to draft"))
    }

    /// A data directory with one office initialised.
    func office(_ dir: TempDir) throws -> String {
        _ = try ok(["init", "--data", dir.data, "--office", "สำนักงานจังหวัดนครสวรรค์", "--code", "นว 0017"])
        return dir.data
    }

    /// Issue 14, Why 6: dates as clerks type them (6/12/2569, Thai digits and abbreviated months),
    /// and a Christian Era year refused naming the Buddhist Era year it probably meant.
    @Test func why6_datesAsClerksWriteThem() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try office(dir)
        let slash = try ok(["letter", "new", "--data", a, "--kind", "ภายนอก", "--subject", "ก", "--set", "วันที่=6/12/2569"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try ok(["letter", "show", "--data", a, slash]).contains("วันที่  6 ธันวาคม 2569"))
        _ = try ok(["letter", "edit", "--data", a, slash, "วันที่", "๗ ธ.ค. ๒๕๖๙"])
        #expect(try ok(["letter", "show", "--data", a, slash]).contains("วันที่  7 ธันวาคม 2569"))
        let ce = try run(["letter", "new", "--data", a, "--kind", "ภายนอก", "--subject", "ข", "--set", "วันที่=6 ธันวาคม 2026"], env: env)
        #expect(ce.status == 64, "\(ce.stderr)")
        #expect(ce.stderr.contains("2569") && ce.stderr.contains("Buddhist Era"), "\(ce.stderr)")
    }

    /// Why 10: "an external letter", not "a external letter".
    @Test func why10_anExternalLetter() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try office(dir)
        let draft = try run(["letter", "new", "--data", a, "--kind", "ภายนอก", "--subject", "ค"], env: env)
        #expect(draft.stderr.contains("an external letter needs") && !draft.stderr.contains("a external"), "\(draft.stderr)")
    }

    /// Why 10: letters listed in id order (1-…, 2-…, 10-…), not as text (10 before 2).
    @Test func why10_letterListSortsIDsAsNumbers() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try office(dir)
        for i in 0..<11 { _ = try ok(["letter", "new", "--data", a, "--kind", "ภายใน", "--subject", "เรื่อง \(i)"]) }
        let counters = try ok(["letter", "list", "--data", a]).split(separator: "\n").compactMap { Int($0.prefix { $0 != "-" }) }
        #expect(counters.count == 11)
        #expect(counters == counters.sorted() && counters.last! >= 10, "\(counters)")
    }

    /// Why 10: `--status` with an unknown status is exit 64 listing the valid ones (it printed
    /// nothing with exit 0); statuses are matched whatever their case.
    @Test func why10_unknownStatusIsRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try office(dir)
        _ = try ok(["letter", "new", "--data", a, "--kind", "ภายใน", "--subject", "ร่าง"])
        let bogus = try run(["letter", "list", "--data", a, "--status", "ส่ง"], env: env)
        #expect(bogus.status == 64 && bogus.stdout.isEmpty)
        #expect(bogus.stderr.contains("ส่งแล้ว") && bogus.stderr.contains("registered"), "\(bogus.stderr)")
        #expect(try ok(["letter", "list", "--data", a, "--status", "Draft"]).split(separator: "\n").count == 1)
    }

    /// Why 10: no doubled ทะเบียน in the cancel message.
    @Test func why10_cancelMessageHasNoDoubledWord() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try office(dir)
        let cancel = try run(["register", "cancel", "--data", a, "ส่ง", "1", "--reason", "พิมพ์ผิด"], env: env)
        #expect(cancel.status == 67)
        #expect(cancel.stderr.contains("ไม่มีทะเบียนหนังสือส่ง") && !cancel.stderr.contains("ทะเบียนทะเบียน"), "\(cancel.stderr)")
    }

    /// Why 10: a plain document of kind "letter" (`doc new --kind letter`, as README's quick start
    /// made) is not called "a letter, not a letter": `letter show` says what it is and how to make a
    /// letter; the quick start makes a letter with `letter new`.
    @Test func why10_aPlainDocumentIsNotCalledALetterThatIsNotALetter() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try office(dir)
        let doc = try ok(["doc", "new", "--data", a, "--kind", "letter", "--set", "subject=ขออนุมัติเดินทางไปราชการ"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let show = try run(["letter", "show", "--data", a, doc], env: env)
        #expect(show.status == 67)
        #expect(!show.stderr.contains("is a letter, not a letter"), "\(show.stderr)")
        #expect(show.stderr.contains("doc new") && show.stderr.contains("letter new --kind"), "\(show.stderr)")
        let readme = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/README.md", encoding: .utf8)
        #expect(!readme.contains("doc new --kind letter") && readme.contains("letter new"))
    }

    @Test func attachAndExtract() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = dir.data
        _ = try ok(["init", "--data", a, "--office", "สำนักงานจังหวัดนครสวรรค์", "--code", "นว 0017"])
        let id = try ok(["letter", "new", "--data", a, "--kind", "ภายใน", "--subject", "ส่งสำเนา"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try bytes.write(to: URL(fileURLWithPath: dir.file("scan.pdf")))
        let out = try json(try ok(["letter", "attach", "--data", a, id, dir.file("scan.pdf"), "--json"])) as! [String: Any]
        #expect(out["chunks"] as? Int == 2 && out["size"] as? Int == 300_000 && out["name"] as? String == "scan.pdf")
        _ = try ok(["letter", "extract", "--data", a, id, "scan.pdf", dir.file("copy.pdf")])
        #expect(FileManager.default.contents(atPath: dir.file("copy.pdf")) == bytes)
    }
}
