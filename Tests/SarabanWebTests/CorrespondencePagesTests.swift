import Foundation
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanOffice
@testable import SarabanWeb
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The web node `w` (สำนักงานจังหวัดน่าน) and a second office `o` sharing an exchange space with
/// it, exchanging envelopes by calling the node APIs (no daemon), as the correspondence tests do.
final class TwoOffices: @unchecked Sendable {
    let w: WebNode
    let o: Node
    let space: SpaceID

    init(_ name: String = #function) throws {
        w = try WebNode(name)
        o = try Node.initialize(
            dataDir: DataDirectory(path: w.dir + "/other"), office: "อำเภอเมืองน่าน", letterCode: "นน 0018", logger: quiet)
        space = try o.createSpace(name: "จังหวัดน่าน").id
        let inv = try o.invite(space: space, invitee: w.node.nodeID, office: w.node.config.office)
        try w.node.join(try Invitation.parse(inv.text))
        try sync()
    }

    /// Each side gets everything the other holds of the space.
    func sync() throws {
        for _ in 0..<2 {
            for (from, to) in [(o, w.node), (w.node, o)] {
                let (envs, _) = try from.envelopes(
                    space: space, after: try to.feedVector(space: space), limit: FetchLimit(envelopes: 100_000, bytes: 1 << 30))
                _ = try to.receiveEnvelopes(space: space, envs)
            }
        }
    }

    func stop() async {
        o.close()
        await w.stop()
    }

    /// A complete external letter at `n`, sent to `to`; returns (letter, dispatch).
    @discardableResult
    static func send(
        _ n: Node, to: String, subject: String, urgency: String? = nil, secrecy: String? = nil
    ) throws -> (DocID, DocID) {
        var f: [(name: String, value: String)] = [
            ("เรื่อง", subject), ("เรียน", "ผู้ว่าราชการจังหวัดน่าน"), ("ข้อความ", "ด้วย…\nจึงเรียนมาเพื่อโปรดทราบ"),
            ("คำลงท้าย", "ขอแสดงความนับถือ"), ("ผู้ลงนาม", "นายสมมติ"), ("ตำแหน่ง", "นายอำเภอเมืองน่าน"),
        ]
        if let urgency { f.append(("ชั้นความเร็ว", urgency)) }
        if let secrecy { f.append(("ชั้นความลับ", secrecy)) }
        let id = try n.createLetter(kind: .external, fields: f)
        let r = try n.correspondence.send(id, to: [to])
        return (id, r.dispatches[0].id)
    }
}

/// The reading half of the correspondence pages (Docs/WEB.md, "Pages"): inbox, registers,
/// letters, secret letters and the audit list, attachments, live events, and their JSON API.
@Suite(.timeLimit(.minutes(3))) struct CorrespondencePagesTests {
    @Test func theInboxListsMostUrgentFirstAndReceivesOnlyWithTheCSRFToken() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        let (_, normal) = try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "ขอเชิญประชุมประจำเดือน")
        let (_, urgent) = try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "ขอข้อมูลด่วน", urgency: "ด่วนที่สุด")
        try t.sync()
        let pw = try t.w.addUser("somsri", role: .clerk)
        let (cookie, csrf) = try await t.w.login("somsri", pw)
        let page = try await t.w.get("/inbox", cookies: ["saraban_session": cookie])
        #expect(page.status == 200)
        let a = try #require(page.text.range(of: "ขอข้อมูลด่วน")), b = try #require(page.text.range(of: "ขอเชิญประชุมประจำเดือน"))
        #expect(a.lowerBound < b.lowerBound, "ด่วนที่สุด first")
        #expect(!page.text.contains("badge secret") && !page.text.contains("สิ่งที่แนบ:"))
        #expect(page.text.contains("action=\"/inbox/\(urgent)/receive\"") && page.text.contains("name=\"_csrf\" value=\"\(csrf)\""))
        // Without the token, or with a forged one: 403 and nothing received.
        let bare = try await t.w.post("/inbox/\(urgent)/receive", cookies: ["saraban_session": cookie])
        let forged = try await t.w.post("/inbox/\(urgent)/receive", form: [("_csrf", "x" + csrf)], cookies: ["saraban_session": cookie])
        #expect(bare.status == 403 && forged.status == 403)
        #expect(try t.w.node.correspondence.inbox().count == 2)
        let ok = try await t.w.post("/inbox/\(urgent)/receive", form: [("_csrf", csrf)], cookies: ["saraban_session": cookie])
        #expect(ok.status == 303 && ok.header("location") == "/inbox?received=1")
        #expect(try t.w.node.correspondence.inbox().map(\.dispatch.id) == [normal])
        // The sender sees the receipt with this office's receive number.
        try t.sync()
        let sent = try #require(try t.o.letters().first { $0.fields["เรื่อง"] == "ขอข้อมูลด่วน" })
        guard case .received(let n, _, _, _)? = try t.o.correspondence.deliveryStatus(sent).first?.state else {
            Issue.record("no receipt at the sender")
            return
        }
        #expect(n == 1)
    }

    @Test func aReturnNeedsAReasonAndTheSenderSeesIt() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        let (letter, dispatch) = try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "ส่งผิดหน่วยงาน")
        try t.sync()
        let pw = try t.w.addUser("somsri", role: .clerk)
        let (cookie, csrf) = try await t.w.login("somsri", pw)
        let empty = try await t.w.post(
            "/inbox/\(dispatch)/return", form: [("_csrf", csrf), ("reason", "  ")], cookies: ["saraban_session": cookie])
        #expect(empty.status == 400)
        #expect(try t.w.node.correspondence.inbox().count == 1)
        let r = try await t.w.post(
            "/inbox/\(dispatch)/return", form: [("_csrf", csrf), ("reason", "ไม่ใช่หน่วยงานที่รับผิดชอบ")], cookies: ["saraban_session": cookie])
        #expect(r.status == 303)
        #expect(try t.w.node.correspondence.inbox().isEmpty)
        try t.sync()
        let states = try t.o.correspondence.deliveryStatus(try t.o.letter(letter)).map(\.state)
        guard case .returned(let reason, _, _)? = states.first else { Issue.record("not returned: \(states)"); return }
        #expect(reason == "ไม่ใช่หน่วยงานที่รับผิดชอบ")
    }

    @Test func theSendersLetterPageShowsTheReceiptWithTheReceiveNumber() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        // An earlier letter takes the other office's receive number 1, so this one gets 2.
        let (_, first) = try TwoOffices.send(t.w.node, to: "อำเภอเมืองน่าน", subject: "เรื่องแรก")
        let (letter, dispatch) = try TwoOffices.send(t.w.node, to: "อำเภอเมืองน่าน", subject: "ขอเชิญประชุม")
        try t.sync()
        _ = try t.o.correspondence.receive(first)
        let pw = try t.w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await t.w.login("somsri", pw)
        let before = try await t.w.get("/letters/\(letter)", cookies: ["saraban_session": cookie])
        #expect(before.status == 200 && before.text.contains("ยังไม่รับ"))
        _ = try t.o.correspondence.receive(dispatch)
        try t.sync()
        let after = try await t.w.get("/letters/\(letter)", cookies: ["saraban_session": cookie])
        #expect(after.text.contains("ส่งถึง อำเภอเมืองน่าน") && after.text.contains("รับแล้ว เลขรับ 2"))
        // The official layout: the sheet with ที่, เรื่อง, เรียน and the body's paragraphs.
        #expect(after.text.contains("class=\"sheet kind-external\"") && after.text.contains("<p>จึงเรียนมาเพื่อโปรดทราบ</p>"))
        // Lines the letter does not have (อ้างถึง, สิ่งที่ส่งมาด้วย, a secrecy class) are left out, not shown blank.
        #expect(!after.text.contains("อ้างถึง") && !after.text.contains("สิ่งที่ส่งมาด้วย") && !after.text.contains("class=\"secrecy"))
        let print = try await t.w.get("/letters/\(letter)/print", cookies: ["saraban_session": cookie])
        #expect(print.status == 200 && print.text.contains("body class=\"print-letter\"") && !print.text.contains("<header"))
        let (_, token) = try t.w.app.accounts.createToken(name: "vendor-x", scope: .read)
        let api = try await t.w.get("/api/v1/letters/\(letter)", headers: [("Authorization", "Bearer \(token)")])
        let deliveries = try #require(api.json?["deliveries"] as? [[String: Any]])
        #expect(deliveries.first?["state"] as? String == "received" && deliveries.first?["receive_number"] as? Int == 2)
    }

    /// A ลับ letter "แผนรักษาความปลอดภัย" in a space cleared for it (Node+Clearance.swift), and the
    /// session cookies of two logged-in clerks: somsri (no clearance) and somchai (cleared for ลับ).
    static func secretLetterAndClerks(_ t: TwoOffices, body: String) async throws -> (letter: DocID, clerk: String, cleared: String) {
        let secret = try t.w.node.createSpace(name: "ลับ-จังหวัด").id
        try t.w.node.setSpaceClearance(secret, to: .confidential)
        let letter = try t.w.node.createLetter(
            kind: .internal, fields: [("เรื่อง", "แผนรักษาความปลอดภัย"), ("ชั้นความลับ", "ลับ"), ("ข้อความ", body)],
            space: "ลับ-จังหวัด")
        let clerkPW = try t.w.addUser("somsri", role: .clerk)
        let clearedPW = try t.w.addUser("somchai", role: .clerk)
        try t.w.app.accounts.setClearance("somchai", .confidential)
        let (clerk, _) = try await t.w.login("somsri", clerkPW)
        let (cleared, _) = try await t.w.login("somchai", clearedPW)
        return (letter, clerk, cleared)
    }

    @Test func aSecretLetterIsShownOnlyToClearedUsersAndEveryLookIsAudited() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        let (letter, clerk, cleared) = try await Self.secretLetterAndClerks(t, body: "…")
        let adminPW = try t.w.addUser("admin", role: .admin)
        // By direct URL: the page, the print view and the API are refused to the uncleared clerk.
        for path in ["/letters/\(letter)", "/letters/\(letter)/print", "/api/v1/letters/\(letter)"] {
            let r = try await t.w.get(path, cookies: ["saraban_session": clerk])
            #expect(r.status == 403 && !r.text.contains("แผนรักษาความปลอดภัย"), "\(path): \(r.status)")
        }
        // Probing a secret letter's attachment names tells nothing: 403 whatever the name.
        let probe = try await t.w.get("/letters/\(letter)/attachments/no-such.pdf", cookies: ["saraban_session": clerk])
        #expect(probe.status == 403)
        let (_, token) = try t.w.app.accounts.createToken(name: "vendor-x", scope: .write)
        let byToken = try await t.w.get("/api/v1/letters/\(letter)", headers: [("Authorization", "Bearer \(token)")])
        #expect(byToken.status == 403 && byToken.json?["code"] as? String == "not-cleared")
        // Lists and registers name it by its class only.
        let list = try await t.w.get("/letters", cookies: ["saraban_session": clerk])
        #expect(list.text.contains("(ลับ)") && !list.text.contains("แผนรักษาความปลอดภัย"))
        let ok = try await t.w.get("/letters/\(letter)", cookies: ["saraban_session": cleared])
        #expect(ok.status == 200 && ok.text.contains("แผนรักษาความปลอดภัย") && ok.text.contains("class=\"secrecy top\">ลับ<"))
        // The audit list: five refusals and one view, owner-only, newest first.
        let entries = t.w.app.audit.entries()
        #expect(entries.count == 6 && entries.filter(\.allowed).map(\.who) == ["user:somchai"])
        #expect(entries.last?.who == "user:somsri" && entries.last?.via == "page" && entries.allSatisfy { $0.letter == letter.description })
        var st = stat()
        #expect(stat(t.w.app.audit.path, &st) == 0 && st.st_mode & 0o077 == 0)
        // Admins read it; nobody else does.
        #expect(try await t.w.get("/audit", cookies: ["saraban_session": clerk]).status == 403)
        #expect(try await t.w.get("/api/v1/audit", headers: [("Authorization", "Bearer \(token)")]).status == 403)
        let (admin, _) = try await t.w.login("admin", adminPW)
        let page = try await t.w.get("/audit", cookies: ["saraban_session": admin])
        #expect(page.status == 200 && page.text.contains(letter.description) && page.text.contains("user:somsri"))
        let api = try await t.w.get("/api/v1/audit", cookies: ["saraban_session": admin])
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(api.body)) as? [[String: Any]])
        #expect(rows.count == 6)
    }

    /// The drafting pages and the write API check a secret letter's class as the reading pages
    /// do, and record every look: before, the edit page and the history page refused without a
    /// record, and any token (even read-only) got a secret letter's body from the write API.
    @Test func theDraftingPagesAndTheWriteAPIAuditSecretLettersAndRefuseTokens() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        let (letter, clerk, cleared) = try await Self.secretLetterAndClerks(t, body: "ข้อความลับ")
        let (_, token) = try t.w.app.accounts.createToken(name: "vendor-x", scope: .read)

        for path in ["/letters/\(letter)/edit", "/letters/\(letter)/history", "/api/v1/letters/\(letter)/body"] {
            let r = try await t.w.get(path, cookies: ["saraban_session": clerk])
            #expect(r.status == 403 && !r.text.contains("ข้อความลับ"), "\(path): \(r.status)")
        }
        let byToken = try await t.w.get("/api/v1/letters/\(letter)/body", headers: [("Authorization", "Bearer \(token)")])
        #expect(byToken.status == 403 && !byToken.text.contains("ข้อความลับ"), "\(byToken.status)")
        let edit = try await t.w.get("/letters/\(letter)/edit", cookies: ["saraban_session": cleared])
        #expect(edit.status == 200 && edit.text.contains("แผนรักษาความปลอดภัย"))
        let body = try await t.w.get("/api/v1/letters/\(letter)/body", cookies: ["saraban_session": cleared])
        #expect(body.status == 200 && body.json?["body"] as? String == "ข้อความลับ")

        let entries = t.w.app.audit.entries()
        #expect(entries.count == 6, "\(entries.map { "\($0.who) \($0.via) \($0.allowed)" })")
        #expect(entries.filter(\.allowed).map(\.who).sorted() == ["user:somchai", "user:somchai"])
        #expect(Set(entries.map(\.via)) == ["edit page", "history", "api"])
        #expect(entries.contains { $0.who.hasPrefix("token:") && !$0.allowed })
        #expect(entries.allSatisfy { $0.letter == letter.description })
    }

    @Test func clearancesAreSetWithTheCLI() async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/saraban-clearance-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = ["--data", dir + "/data"]
        _ = try await ServeWebTests.ok(["init", "--office", "สำนักงานจังหวัดน่าน"] + data)
        _ = try await ServeWebTests.ok(
            ["user", "add", "malee", "--role", "clerk", "--clearance", "ลับ", "--password-file", "-"] + data, stdin: "รหัสผ่านยาวพอ\n")
        _ = try await ServeWebTests.ok(["user", "add", "somsri", "--role", "admin", "--password-file", "-"] + data, stdin: "รหัสผ่านยาวพอ\n")
        #expect(try await ServeWebTests.ok(["user", "list"] + data).contains("malee  clerk  malee  (cleared: ลับ)"))
        _ = try await ServeWebTests.ok(["user", "clearance", "somsri", "secret"] + data)
        _ = try await ServeWebTests.ok(["user", "clearance", "malee", "ปกติ"] + data)
        let list = try await ServeWebTests.ok(["user", "list", "--json"] + data)
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(list.utf8)) as? [[String: Any]])
        #expect(rows.first { $0["name"] as? String == "somsri" }?["clearance"] as? String == "ลับมาก")
        #expect(rows.first { $0["name"] as? String == "malee" }?["clearance"] == nil)
        #expect(try await ServeWebTests.saraban(["user", "clearance", "malee", "ลับที่สุด"] + data).status == 68)
        #expect(try await ServeWebTests.saraban(["user", "clearance", "malee", "สูง"] + data).status == 64)
        #expect(try await ServeWebTests.saraban(["user", "clearance", "nobody", "ลับ"] + data).status == 67)
    }

    @Test func theRegisterCSVIsByteForByteTheCLIs() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "ขอเชิญประชุม, สัมมนา \"ประจำปี\"")
        try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "แจ้งเวียน")
        try t.sync()
        _ = try t.w.node.correspondence.receive(try t.w.node.correspondence.inbox().map(\.dispatch.id))
        let pw = try t.w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await t.w.login("somsri", pw)
        let year = t.w.node.registerYear(at: t.w.node.currentMillis)
        let csv = try await t.w.get("/registers/receive/csv?year=\(year)", cookies: ["saraban_session": cookie])
        #expect(csv.status == 200 && csv.header("content-type") == "text/csv; charset=utf-8")
        #expect(csv.header("content-disposition") == "attachment; filename=\"register-receive-\(year).csv\"")
        #expect(Array(csv.body.prefix(3)) == [0xEF, 0xBB, 0xBF] && csv.text.contains("\r\n"))
        let dataDir = t.w.node.dataDirectory.path
        t.w.node.close()
        let cli = try await ServeWebTests.saraban(["register", "show", "receive", "--csv", "--year", "\(year)", "--data", dataDir])
        #expect(cli.status == 0, "\(cli.err)")
        #expect(csv.text == cli.out && csv.text.contains("\"ขอเชิญประชุม, สัมมนา \"\"ประจำปี\"\"\""))
    }

    @Test func theRegisterPageFiltersAndSearchesAnyThaiSubstring() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "ขอเชิญประชุมคณะกรรมการ")
        try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "รายงานผลการดำเนินงาน")
        try t.sync()
        _ = try t.w.node.correspondence.receive(try t.w.node.correspondence.inbox().map(\.dispatch.id))
        let pw = try t.w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await t.w.login("somsri", pw)
        let all = try await t.w.get("/registers/receive", cookies: ["saraban_session": cookie])
        #expect(all.text.contains("ขอเชิญประชุมคณะกรรมการ") && all.text.contains("รายงานผลการดำเนินงาน"))
        // Each subject links to this office's record of the letter.
        let record = try #require(try t.w.node.letters().first { $0.fields["เรื่อง"] == "รายงานผลการดำเนินงาน" })
        #expect(all.text.contains("<a href=\"/letters/\(record.id)\">รายงานผลการดำเนินงาน</a>"))
        let q = WebNode.encode("กรรมการ")  // inside a word: Thai has no spaces
        let some = try await t.w.get("/registers/receive?q=\(q)", cookies: ["saraban_session": cookie])
        #expect(some.text.contains("ขอเชิญประชุมคณะกรรมการ") && !some.text.contains("รายงานผลการดำเนินงาน"))
        let print = try await t.w.get("/registers/receive/print?q=\(q)", cookies: ["saraban_session": cookie])
        #expect(print.text.contains("class=\"register-print\"") && !print.text.contains("รายงานผลการดำเนินงาน"))
        #expect(try await t.w.get("/registers/nonsense", cookies: ["saraban_session": cookie]).status == 404)
        #expect(try await t.w.get("/registers/receive?year=abc", cookies: ["saraban_session": cookie]).status == 400)
        let (_, token) = try t.w.app.accounts.createToken(name: "vendor-x", scope: .read)
        let api = try await t.w.get("/api/v1/registers/receive", headers: [("Authorization", "Bearer \(token)")])
        let lines = try #require(api.json?["lines"] as? [[String: Any]])
        #expect(lines.map { $0["number"] as? Int } == [1, 2])
    }

    @Test func attachmentsDownloadWithThaiNamesAndRefuseTraversal() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        let id = try t.w.node.createLetter(kind: .record, fields: [("เรื่อง", "แนบไฟล์"), ("ข้อความ", "ดูไฟล์แนบ")])
        let file = t.w.dir + "/scan.pdf"
        // Three chunks of 256 KiB or less: streamed out one at a time.
        let bytes = Data((0..<600_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try bytes.write(to: URL(fileURLWithPath: file))
        let ref = try t.w.node.attach(id, file: file, name: "หนังสือ \"เชิญ\".pdf")
        #expect(ref.chunks == 3)
        let pw = try t.w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await t.w.login("somsri", pw)
        let page = try await t.w.get("/letters/\(id)", cookies: ["saraban_session": cookie])
        let url = "/letters/\(id)/attachments/\(WebApp.segment("หนังสือ \"เชิญ\".pdf"))"
        #expect(page.text.contains("href=\"\(url)\""))
        let r = try await t.w.get(url, cookies: ["saraban_session": cookie])
        #expect(r.status == 200 && Data(r.body) == bytes)
        // An ASCII fallback (Thai letters, quotes and backslashes as _) and the exact name, encoded.
        #expect(
            r.header("content-disposition")
                == "attachment; filename=\"_______ ______.pdf\"; filename*=UTF-8''"
                + "%E0%B8%AB%E0%B8%99%E0%B8%B1%E0%B8%87%E0%B8%AA%E0%B8%B7%E0%B8%AD%20%22%E0%B9%80%E0%B8%8A%E0%B8%B4%E0%B8%8D%22.pdf")
        #expect(r.header("content-length") == "600000")
        // Programs fetch it under /api/v1 with a token, at the URL the letter's JSON gives.
        let (_, token) = try t.w.app.accounts.createToken(name: "vendor-x", scope: .read)
        let json = try await t.w.get("/api/v1/letters/\(id)", headers: [("Authorization", "Bearer \(token)")])
        let apiURL = try #require((json.json?["attachments"] as? [[String: Any]])?.first?["url"] as? String)
        #expect(apiURL == "/api/v1" + url)
        let byToken = try await t.w.get(apiURL, headers: [("Authorization", "Bearer \(token)")])
        #expect(byToken.status == 200 && Data(byToken.body) == bytes)
        // A chunk not on this node yet: refused before any byte is sent.
        let chunk = t.w.node.attachmentDirectory(ref) + "/1"
        try FileManager.default.moveItem(atPath: chunk, toPath: chunk + ".away")
        let partial = try await t.w.get(url, cookies: ["saraban_session": cookie])
        #expect(partial.status == 404 && partial.text.contains("ยังมาไม่ครบ"))
        try FileManager.default.moveItem(atPath: chunk + ".away", toPath: chunk)
        for bad in ["..%2F..%2Fnode.key", "%2e%2e", "..", "a%5C..%5Cnode.key", "%00x", "%ff"] {
            let b = try await t.w.get("/letters/\(id)/attachments/\(bad)", cookies: ["saraban_session": cookie])
            #expect(b.status == 400 || b.status == 404, "\(bad): \(b.status)")
            #expect(!b.text.contains("PRIVATE") && b.header("content-disposition") == nil)
        }
        let traversal = try await t.w.get(
            "/letters/\(id)/attachments/..%2F..%2Fnode.key", cookies: ["saraban_session": cookie], headers: [("Accept", "application/json")])
        #expect(traversal.status == 400 && traversal.json?["code"] as? String == "bad-name")
    }

    @Test func liveEventsTellADispatchThatArrivesAndAReceipt() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        let pw = try t.w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await t.w.login("somsri", pw)
        // Logged out: no stream.
        #expect(try await t.w.get("/events", headers: [("Accept", "text/event-stream")]).status != 200)
        let stream = try EventStream(port: t.w.port, cookie: cookie)
        defer { stream.close() }
        #expect(try await stream.read(until: ": connected"))
        let (_, dispatch) = try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "ด่วนมาก", urgency: "ด่วนมาก")
        try t.sync()
        #expect(try await stream.read(until: "event: dispatch\ndata: {\"from\":\"อำเภอเมืองน่าน\",\"id\":\"\(dispatch)\",\"urgency\":\"ด่วนมาก\"}"))
        let (_, out) = try TwoOffices.send(t.w.node, to: "อำเภอเมืองน่าน", subject: "ตอบรับ")
        try t.sync()
        _ = try t.o.correspondence.receive(out)
        try t.sync()
        #expect(try await stream.read(until: "event: receipt"))
        #expect(stream.text.contains("\"office\":\"อำเภอเมืองน่าน\"") && stream.text.contains("\"state\":\"received\""))
    }

    @Test func theSyncPageShowsPeersRelaysForksAndHealth() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        let relay = try Node.initialize(
            dataDir: DataDirectory(path: t.w.dir + "/relay"), office: "คลาวด์กลาง", relay: true, logger: quiet)
        defer { relay.close() }
        _ = try t.w.node.addPeer(nodeID: t.o.nodeID.text, address: "10.0.0.2:7420", name: "อำเภอเมืองน่าน")
        _ = try t.w.node.addPeer(nodeID: relay.nodeID.text, address: "10.0.0.9:7420", name: "คลาวด์")
        try t.o.designateRelay(t.space, relay: relay.nodeID)
        try t.sync()
        let book = PeerStatusBook(store: t.w.node.peerStatusStore, forks: t.w.node.dataDirectory)
        book.recordFork(
            FeedFork(
                space: t.space.hex, author: t.o.nodeID.text, sequence: 7, held: String(repeating: "a", count: 64),
                peerHolds: String(repeating: "b", count: 64), peer: t.o.nodeID.text, detectedAt: t.w.clock.now, via: "envelope"))
        let pw = try t.w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await t.w.login("somsri", pw)
        let page = try await t.w.get("/sync", cookies: ["saraban_session": cookie])
        #expect(page.status == 200 && page.text.contains("พร้อม"))
        #expect(page.text.contains("ตัวกลาง (relay)") && page.text.contains("เครื่องสำนักงาน"))
        #expect(page.text.contains("10.0.0.9:7420") && page.text.contains("ขาดการติดต่อ"))  // never contacted: stale
        #expect(page.text.contains("<td class=\"num\">7</td>") && page.text.contains(t.o.nodeID.text))
        // English on request.
        let en = try await t.w.get("/sync", cookies: ["saraban_session": cookie, "lang": "en"])
        #expect(en.text.contains("Sync status") && en.text.contains("relay") && en.text.contains("Fork reports"))
        let inbox = try await t.w.get("/inbox", cookies: ["saraban_session": cookie, "lang": "en"])
        #expect(inbox.text.contains("Inbox: awaiting receipt"))
    }

    @Test func theInboxAPIReceivesWithAWriteTokenOnly() async throws {
        let t = try TwoOffices()
        try await t.w.start()
        defer { Task { await t.stop() } }
        let (_, d1) = try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "หนึ่ง")
        let (_, d2) = try TwoOffices.send(t.o, to: "สำนักงานจังหวัดน่าน", subject: "สอง", urgency: "ด่วน")
        try t.sync()
        let (_, read) = try t.w.app.accounts.createToken(name: "reader", scope: .read)
        let (_, write) = try t.w.app.accounts.createToken(name: "writer", scope: .write)
        let inbox = try await t.w.get("/api/v1/inbox", headers: [("Authorization", "Bearer \(read)")])
        let items = try #require(try JSONSerialization.jsonObject(with: Data(inbox.body)) as? [[String: Any]])
        #expect(items.map { $0["id"] as? String } == [d2.description, d1.description])
        #expect(items.first?["urgency_en"] as? String == "urgent" && items.first?["subject"] as? String == "สอง")
        let refused = try await t.w.postJSON("/api/v1/inbox/\(d1)/receive", [:], headers: [("Authorization", "Bearer \(read)")])
        #expect(refused.status == 403 && refused.header("content-type")?.hasPrefix("application/problem+json") == true)
        #expect(refused.json?["detail_th"] as? String != nil)
        let ok = try await t.w.postJSON("/api/v1/inbox/\(d1)/receive", [:], headers: [("Authorization", "Bearer \(write)")])
        #expect(ok.status == 200 && ok.json?["number"] as? Int == 1 && ok.json?["existing"] as? Bool == false)
        let again = try await t.w.postJSON("/api/v1/inbox/\(d1)/receive", [:], headers: [("Authorization", "Bearer \(write)")])
        #expect(again.json?["existing"] as? Bool == true && again.json?["number"] as? Int == 1)
        let unknown = try await t.w.postJSON("/api/v1/inbox/nonsense/receive", [:], headers: [("Authorization", "Bearer \(write)")])
        #expect(unknown.status == 404)
        let noReason = try await t.w.postJSON("/api/v1/inbox/\(d2)/return", ["reason": ""], headers: [("Authorization", "Bearer \(write)")])
        #expect(noReason.status == 400)
        let letters = try await t.w.get("/api/v1/letters?per_page=1&page=1", headers: [("Authorization", "Bearer \(read)")])
        #expect(letters.json?["total"] as? Int == 1 && (letters.json?["items"] as? [Any])?.count == 1)
        #expect(try await t.w.get("/api/v1/letters?per_page=0", headers: [("Authorization", "Bearer \(read)")]).status == 400)
    }
}

/// A `GET /events` connection read as it streams, on a thread of its own.
final class EventStream: @unchecked Sendable {
    let fd: Int32
    // Guards `buffer`.
    private let lock = NSLock()
    private var buffer: [UInt8] = []

    init(port: Int, cookie: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard HTTP.loopback(port, { connect(fd, $0, $1) }) == 0 else { throw HTTP.Failure(description: "connect") }
        let head = "GET /events HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nAccept: text/event-stream\r\nCookie: saraban_session=\(cookie)\r\n\r\n"
        _ = Array(head.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: buffer, as: UTF8.self)
    }

    /// Reads until `needle` appears (true) or 30 s pass (false).
    func read(until needle: String) async throws -> Bool {
        let fd = self.fd
        return try await offThread { [self] in
            let deadline = Date().addingTimeInterval(30)
            var chunk = [UInt8](repeating: 0, count: 8192)
            while Date() < deadline {
                if text.contains(needle) { return true }
                let n = recv(fd, &chunk, chunk.count, 0)
                if n > 0 {
                    lock.lock()
                    buffer += chunk[0..<n]
                    lock.unlock()
                } else if n == 0 {
                    return text.contains(needle)
                }
            }
            return text.contains(needle)
        }
    }

    func close() { Glibc.close(fd) }
}
