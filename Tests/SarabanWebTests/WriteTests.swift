import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanOffice
@testable import SarabanWeb
import Testing

/// The writing half of the web app (Docs/WEB.md, "Drafting", "Routing", "Conflicts", "Search",
/// "Write API"): in-process app on a free port, a raw-socket client.
@Suite(.timeLimit(.minutes(3))) struct WriteTests {
    /// The value of hidden field `name` in a page.
    static func field(_ page: String, _ name: String) -> String? {
        guard let r = page.range(of: "name=\"\(name)\" value=\"") else { return nil }
        let rest = page[r.upperBound...]
        guard let end = rest.firstIndex(of: "\"") else { return nil }
        return String(rest[..<end]).replacingOccurrences(of: "&amp;", with: "&")
    }

    static func letterCount(_ w: WebNode) throws -> Int { try w.node.letters().count }

    @Test func aDraftOfEachKindShowsSarabanOfficesMessagesBesideItsFields() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let (cookie, csrf) = try await w.login("somsri", try w.addUser("somsri", role: .clerk))
        let index = try await w.get("/letters/new", cookies: ["saraban_session": cookie])
        #expect(index.status == 200)
        for kind in LetterKind.allCases {
            #expect(index.text.contains("kind=\(kind.english)"))
            let form = try await w.get("/letters/new?kind=\(kind.english)", cookies: ["saraban_session": cookie])
            #expect(form.status == 200 && form.text.contains(kind.thaiName))
            for f in kind.requiredFields { #expect(form.text.contains("name=\"\(f.english)\""), "\(kind) \(f)") }
        }
        // A date that does not exist: refused beside the field, in Thai, nothing stored.
        let before = try Self.letterCount(w)
        let bad = try await w.post(
            "/letters", form: [("_csrf", csrf), ("kind", "external"), ("subject", "ขอเชิญประชุม"), ("date", "31 กุมภาพันธ์ 2569")],
            cookies: ["saraban_session": cookie])
        #expect(bad.status == 400)
        #expect(bad.text.contains("class=\"field-error\" id=\"e-date\""))
        #expect(bad.text.contains("วันที่ 31 กุมภาพันธ์ 2569 ไม่มีอยู่จริง"))
        #expect(try Self.letterCount(w) == before)
        // A draft with fields missing is kept; the page names each missing field beside it.
        let ok = try await w.post(
            "/letters", form: [("_csrf", csrf), ("kind", "internal"), ("subject", "ขอเชิญประชุม")], cookies: ["saraban_session": cookie])
        #expect(ok.status == 303)
        let page = try await w.get(try #require(ok.header("Location")), cookies: ["saraban_session": cookie])
        #expect(page.text.contains("id=\"e-salutation\""))
        #expect(page.text.contains("หนังสือภายในต้องมีเรียน"))
        // The English switch shows SarabanOffice's English message.
        let en = try await w.get(try #require(ok.header("Location")), cookies: ["saraban_session": cookie, "lang": "en"])
        #expect(en.text.contains("an internal letter needs its salutation (เรียน)"))
    }

    @Test func twoClerksEditingOneDraftBothKeepTheirWords() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let (c1, t1) = try await w.login("somsri", try w.addUser("somsri", role: .clerk))
        let (c2, t2) = try await w.login("somchai", try w.addUser("somchai", role: .clerk))
        let made = try await w.post(
            "/letters",
            form: [("_csrf", t1), ("kind", "internal"), ("subject", "ขอเชิญประชุม"), ("body", "ขอเชิญประชุมคณะกรรมการ วันจันทร์")],
            cookies: ["saraban_session": c1])
        let path = try #require(made.header("Location")).components(separatedBy: "?")[0]
        let id = try #require(DocID(path.components(separatedBy: "/")[2]))
        // Both load the form, then both save: one adds the time, the other changes the committee.
        let p1 = try await w.get(path, cookies: ["saraban_session": c1]).text
        let p2 = try await w.get(path, cookies: ["saraban_session": c2]).text
        let action = path.replacingOccurrences(of: "/edit", with: "/edit")
        func save(_ page: String, _ cookie: String, _ csrf: String, body: String) async throws -> HTTPReply {
            var form = [("_csrf", csrf), ("body", body), ("body_base", try #require(Self.field(page, "body_base")))]
            for name in ["subject", "salutation", "agency"] {
                form.append((name, Self.field(page, "orig_\(name)") ?? ""))
                form.append(("orig_\(name)", Self.field(page, "orig_\(name)") ?? ""))
            }
            return try await w.post(action, form: form, cookies: ["saraban_session": cookie])
        }
        #expect(try await save(p1, c1, t1, body: "ขอเชิญประชุมคณะกรรมการ วันจันทร์\r\nเวลา ๙ นาฬิกา").status == 303)
        #expect(try await save(p2, c2, t2, body: "ขอเชิญประชุมคณะทำงาน วันจันทร์").status == 303)
        #expect(try w.node.letter(id).fields["ข้อความ"] == "ขอเชิญประชุมคณะทำงาน วันจันทร์\nเวลา ๙ นาฬิกา")
        // A forged copy is refused (409) and nothing is stored.
        var forged = try #require(Self.field(p1, "body_base"))
        forged = String(forged.dropLast(2)) + (forged.hasSuffix("AA") ? "BB" : "AA")
        let before = try w.node.letter(id).fields["ข้อความ"]
        let r = try await w.post(
            action, form: [("_csrf", t1), ("body", "ทับทั้งหมด"), ("body_base", forged)], cookies: ["saraban_session": c1])
        #expect(r.status == 409)
        #expect(try w.node.letter(id).fields["ข้อความ"] == before)
    }

    @Test func anOfficerSignsWithTheirPassphraseAndAWrongOneSignsNothing() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let secret = "ผ่านกุญแจลงนาม-2569"
        _ = try w.node.officers.add(
            name: "นายสมชาย ใจดี", position: "ปลัดจังหวัด", passphrase: SecureBytes(Array(secret.utf8)), protection: .minimum)
        let id = try w.node.createLetter(
            kind: .internal,
            fields: [("เรื่อง", "ขอเชิญประชุม"), ("เรียน", "ผู้ว่าราชการจังหวัด"), ("ส่วนราชการ", "สำนักงานจังหวัด"), ("ข้อความ", "ขอเชิญ")])
        let (clerk, clerkCSRF) = try await w.login("somsri", try w.addUser("somsri", role: .clerk))
        let (officer, csrf) = try await w.login("somchai", try w.addUser("somchai", role: .officer))
        // A clerk may not sign.
        let refused = try await w.post(
            "/letters/\(id)/sign", form: [("_csrf", clerkCSRF), ("officer", "นายสมชาย ใจดี"), ("passphrase", secret)],
            cookies: ["saraban_session": clerk])
        #expect(refused.status == 403)
        let wrong = try await w.post(
            "/letters/\(id)/sign", form: [("_csrf", csrf), ("officer", "นายสมชาย ใจดี"), ("passphrase", "ผิด")],
            cookies: ["saraban_session": officer])
        #expect(wrong.status == 403)
        #expect(wrong.text.contains("รหัสผ่านกุญแจลงนามไม่ถูกต้อง ไม่ได้ลงนาม"))
        #expect(try w.node.letter(id).signatures.isEmpty)
        #expect(try w.node.letter(id).fields["ผู้ลงนาม"] == nil)
        let right = try await w.post(
            "/letters/\(id)/sign", form: [("_csrf", csrf), ("officer", "นายสมชาย ใจดี"), ("passphrase", secret)],
            cookies: ["saraban_session": officer])
        #expect(right.status == 303)
        #expect(try w.node.letter(id).signatures.map(\.officer) == ["นายสมชาย ใจดี"])
        #expect(try w.node.officers.verify(id).allSatisfy(\.valid))
        // Registered from the page: the number comes from the register.
        let reg = try await w.post("/letters/\(id)/register", form: [("_csrf", csrf)], cookies: ["saraban_session": officer])
        #expect(reg.status == 303)
        #expect(try w.node.letter(id).fields["ที่"] == "นน/1")
    }

    @Test func theWriteAPIRefusesBadInputAndStoresNothing() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let (_, write) = try w.app.accounts.createToken(name: "vendor-x", scope: .write)
        let (_, read) = try w.app.accounts.createToken(name: "vendor-r", scope: .read)
        let auth = [("Authorization", "Bearer \(write)")]
        let before = try Self.letterCount(w)
        // Unknown top-level key, unknown letter field, wrong type, the number set by the caller.
        for body: [String: Any] in [
            ["kind": "external", "fields": ["subject": "x"], "extra": 1],
            ["kind": "external", "fields": ["colour": "red"]],
            ["kind": "external", "fields": ["subject": 5]],
            ["kind": "external", "fields": ["number": "นน/99"]],
            ["kind": "memo"],
            ["kind": "external", "fields": ["date": "32/13/2569"]],
        ] {
            let r = try await w.postJSON("/api/v1/letters", body, headers: auth)
            #expect(r.status == 400, "\(body): \(r.status)")
            #expect(r.header("Content-Type")?.hasPrefix("application/problem+json") == true)
            #expect(r.json?["detail_th"] as? String != nil && r.json?["detail"] as? String != nil)
        }
        let utf8 = try await HTTP.request(
            w.port, "POST", "/api/v1/letters", headers: [("Content-Type", "application/json")] + auth,
            body: Array("{\"kind\":\"external\",\"fields\":{\"subject\":\"".utf8) + [0xE0, 0xB8] + Array("\"}}".utf8))
        #expect(utf8.status == 400 && utf8.json?["code"] as? String == "invalid-utf8")
        let big = try await HTTP.request(
            w.port, "POST", "/api/v1/letters", headers: [("Content-Type", "application/json")] + auth,
            body: Array("{\"kind\":\"external\",\"fields\":{\"body\":\"".utf8) + [UInt8](repeating: 0x41, count: 1 << 20) + Array("\"}}".utf8))
        #expect(big.status == 413)
        let ro = try await w.postJSON("/api/v1/letters", ["kind": "external"], headers: [("Authorization", "Bearer \(read)")])
        #expect(ro.status == 403)
        #expect(try Self.letterCount(w) == before)

        // A draft, its body edited from its copy, registered.
        let made = try await w.postJSON(
            "/api/v1/letters",
            ["kind": "ภายใน", "fields": ["เรื่อง": "ขออนุมัติเดินทาง", "salutation": "ปลัดจังหวัด", "agency": "กลุ่มงานอำนวยการ", "body": "ขออนุมัติ"]],
            headers: auth)
        #expect(made.status == 201)
        let id = try #require(made.json?["id"] as? String)
        let copy = try await w.get("/api/v1/letters/\(id)/body", headers: auth)
        let base = try #require(copy.json?["body_base"] as? String)
        try w.node.editLetter(try #require(DocID(id)), field: "ข้อความ", value: "ขออนุมัติ", insertAt: 0)  // someone else, meanwhile
        let patched = try await HTTP.request(
            w.port, "PATCH", "/api/v1/letters/\(id)", headers: [("Content-Type", "application/json")] + auth,
            body: [UInt8](try JSONSerialization.data(withJSONObject: ["body": "ขออนุมัติเดินทางไปราชการ", "body_base": base])))
        #expect(patched.status == 200, "\(patched.text)")
        #expect(try w.node.letter(try #require(DocID(id))).fields["ข้อความ"] == "ขออนุมัติขออนุมัติเดินทางไปราชการ")
        let unsigned = try await w.postJSON("/api/v1/letters/\(id)/register", [:], headers: auth)
        #expect(unsigned.status == 400)  // ผู้ลงนาม and ตำแหน่ง are missing
        #expect((unsigned.json?["detail_th"] as? String)?.contains("ผู้ลงนาม") == true)
        let offices = try await w.get("/api/v1/offices", headers: auth)
        #expect(offices.status == 200 && offices.text == "[]")
    }

    @Test func searchFindsThaiSubstringsIncludingLettersArrivingBySync() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let (_, token) = try w.app.accounts.createToken(name: "vendor-r", scope: .read)
        let auth = [("Authorization", "Bearer \(token)")]
        _ = try w.node.createLetter(
            kind: .external, fields: [("เรื่อง", "ขอเชิญประชุมคณะกรรมการบริหาร"), ("วันที่", "6 ธันวาคม 2569"), ("จาก", "สำนักงานจังหวัดแพร่")])
        _ = try w.node.createLetter(kind: .external, fields: [("เรื่อง", "ขออนุมัติเดินทาง"), ("วันที่", "1 มกราคม 2570")])
        func search(_ q: String) async throws -> [[String: Any]] {
            let r = try await w.get("/api/v1/search?" + q, headers: auth)
            #expect(r.status == 200, "\(q): \(r.text)")
            return (try JSONSerialization.jsonObject(with: Data(r.body)) as? [[String: Any]]) ?? []
        }
        // A word inside a Thai run with no spaces, a sender, a short word, a date range.
        #expect(try await search("q=" + WebNode.encode("กรรมการ")).count == 1)
        #expect(try await search("q=" + WebNode.encode("แพร่")).count == 1)
        #expect(try await search("q=" + WebNode.encode("ขอ")).count == 2)
        #expect(try await search("from=" + WebNode.encode("1 ธันวาคม 2569") + "&to=" + WebNode.encode("31 ธันวาคม 2569")).count == 1)
        #expect(try await w.get("/api/v1/search?from=" + WebNode.encode("31 กุมภาพันธ์ 2569"), headers: auth).status == 400)
        // A letter made by another node reaches this one as changes (sync's path): found, and
        // an edit that arrives later is found by its new words.
        let dir = FileManager.default.temporaryDirectory.path + "/saraban-web-search-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let other = try Node.initialize(dataDir: DataDirectory(path: dir), office: "สำนักงานจังหวัดแพร่", letterCode: "พร", logger: quiet)
        defer { other.close() }
        let remote = try other.createLetter(kind: .external, fields: [("เรื่อง", "รายงานผลการตรวจราชการ")])
        _ = try w.node.apply(changes: try other.store.changes())
        #expect(try await search("q=" + WebNode.encode("ตรวจราชการ")).map { $0["id"] as? String } == [remote.description])
        try other.editLetter(remote, field: "เรื่อง", value: "รายงานผลการตรวจสอบบัญชี")
        _ = try w.node.apply(changes: try other.store.changes())
        #expect(try await search("q=" + WebNode.encode("ตรวจราชการ")).isEmpty)
        #expect(try await search("q=" + WebNode.encode("สอบบัญชี")).count == 1)
    }

    @Test func aConflictIsResolvedFromTheConflictsPage() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let dir = FileManager.default.temporaryDirectory.path + "/saraban-web-conflict-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let other = try Node.initialize(dataDir: DataDirectory(path: dir), office: "สำนักงานจังหวัดน่าน", letterCode: "นน", logger: quiet)
        defer { other.close() }
        let id = try w.node.createLetter(kind: .internal, fields: [("เรื่อง", "ขอเชิญประชุม")])
        _ = try other.apply(changes: try w.node.store.changes())
        try w.node.editLetter(id, field: "เรื่อง", value: "ขอเชิญประชุมคณะกรรมการ")
        try other.editLetter(id, field: "เรื่อง", value: "ขอเลื่อนการประชุม")
        _ = try w.node.apply(changes: try other.store.changes())
        #expect(try w.node.letter(id).conflicts == 1)
        let (cookie, csrf) = try await w.login("somsri", try w.addUser("somsri", role: .clerk))
        let page = try await w.get("/conflicts", cookies: ["saraban_session": cookie])
        #expect(page.text.contains("ขอเชิญประชุมคณะกรรมการ") && page.text.contains("ขอเลื่อนการประชุม"))
        #expect(page.text.contains("สำนักงานจังหวัดน่าน"))
        // Keep the other node's value: its change id is the second value's keep field.
        let d = try w.node.document(id)
        let losing = try #require(d.registers["เรื่อง"]?.entries.first { $0.value == .string("ขอเลื่อนการประชุม") })
        let r = try await w.post(
            "/conflicts/resolve",
            form: [("_csrf", csrf), ("document", id.description), ("field", "เรื่อง"), ("keep", losing.stamp.change.description)],
            cookies: ["saraban_session": cookie])
        #expect(r.status == 303)
        #expect(try w.node.letter(id).conflicts == 0)
        #expect(try w.node.letter(id).fields["เรื่อง"] == "ขอเลื่อนการประชุม")
        let again = try await w.get("/conflicts", cookies: ["saraban_session": cookie])
        #expect(again.text.contains("id=\"no-conflicts\""))
        // The history page lists the changes, both offices' included.
        let history = try await w.get("/letters/\(id)/history", cookies: ["saraban_session": cookie])
        #expect(history.status == 200 && history.text.contains("ขอเลื่อนการประชุม"))
    }

    @Test func routingFillsTheWorkListWithDueDatesAndOverdueMarked() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        try w.app.accounts.addUser(name: "head", displayName: "นายหัวหน้า ดีมาก", role: .head, password: SecureBytes(Array("รหัสผ่านยาวพอ".utf8)))
        let (head, csrf) = try await w.login("head", "รหัสผ่านยาวพอ")
        let (clerk, clerkCSRF) = try await w.login("somsri", try w.addUser("somsri", role: .clerk))
        let a = try w.node.createLetter(kind: .internal, fields: [("เรื่อง", "งานที่เลยกำหนด")])
        let b = try w.node.createLetter(kind: .internal, fields: [("เรื่อง", "งานที่ยังไม่ถึงกำหนด")])
        // The test clock is 30 November 2569 (Thai time).
        for (id, due) in [(a, "1 พฤศจิกายน 2569"), (b, "31 ธันวาคม 2569")] {
            let r = try await w.post(
                "/letters/\(id)/route", form: [("_csrf", csrf), ("to", "นางสาวสมศรี ใจดี"), ("note", "ดำเนินการ"), ("due", due)],
                cookies: ["saraban_session": head])
            #expect(r.status == 303, "\(r.text)")
        }
        let work = try await w.get("/work", cookies: ["saraban_session": clerk]).text
        let first = try #require(work.range(of: "งานที่เลยกำหนด"))
        let second = try #require(work.range(of: "งานที่ยังไม่ถึงกำหนด"))
        #expect(first.lowerBound < second.lowerBound)
        #expect(work.components(separatedBy: "class=\"overdue-mark\"").count == 2)
        // A clerk may not route.
        let refused = try await w.post(
            "/letters/\(a)/route", form: [("_csrf", clerkCSRF), ("to", "x")], cookies: ["saraban_session": clerk])
        #expect(refused.status == 403)
    }
}
