import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The clerk's day between offices (issue 14, acceptance), over real `saraban serve` processes and
/// a relay: every office dials only the relay, which stores and forwards blind.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(5)))
struct CorrespondenceProcessTests {
    /// Runs `saraban ARGS --data DATA`, requiring exit 0; returns stdout trimmed.
    @discardableResult
    func ok(_ data: String, _ args: [String]) throws -> String { try sarabanOK(args + ["--data", data]) }

    func jsonOut(_ data: String, _ args: [String]) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(try ok(data, args + ["--json"]).utf8))
    }

    func inbox(_ data: String) throws -> [[String: Any]] {
        (try jsonOut(data, ["letter", "inbox"]) as? [[String: Any]]) ?? []
    }

    @Test func aProvinceSendsToTwoOfficesOneOfThemOfflineThroughARelay() async throws {
        let root = temporaryDirectory("correspondence")
        defer { try? FileManager.default.removeItem(at: root) }
        func dir(_ n: String) -> String { root.appendingPathComponent(n).path }
        let (r, a, b, c) = (dir("relay"), dir("a"), dir("b"), dir("c"))
        let relayID = try sarabanOK(["init", "--relay", "--office", "cloud", "--data", r])
        let aID = try sarabanOK(["init", "--data", a, "--office", "สำนักงานจังหวัดนครสวรรค์", "--code", "นว 0017"])
        let bID = try sarabanOK(["init", "--data", b, "--office", "อบต.หนองบัว", "--code", "นว 0318"])
        let cID = try sarabanOK(["init", "--data", c, "--office", "อำเภอบรรพตพิสัย", "--code", "นว 0418"])
        let space = try ok(a, ["space", "create", "จังหวัดนครสวรรค์"])
        for (id, data, office) in [(bID, b, "อบต.หนองบัว"), (cID, c, "อำเภอบรรพตพิสัย")] {
            let file = root.appendingPathComponent("\(office).inv").path
            try ok(a, ["space", "invite", space, id, "--office", office, "--out", file])
            try ok(data, ["space", "join", file])
        }
        try ok(a, ["space", "relay", space, relayID])
        try ok(r, ["space", "carry", space])
        let pass = root.appendingPathComponent("officer.pass").path
        FileManager.default.createFile(
            atPath: pass, contents: Data("ผู้ว่าฯ ลงนามเอง\n".utf8), attributes: [.posixPermissions: 0o600])
        try ok(a, ["officer", "add", "นายสมมติ ใจดี", "--position", "ผู้ว่าราชการจังหวัดนครสวรรค์", "--passphrase-file", pass])

        let relay = try serveForTest(r)
        var serving = [relay]
        defer { for s in serving { _ = s.stop() } }
        // The relay trusts the three offices; each office dials only the relay.
        for (id, name) in [(aID, "a"), (bID, "b"), (cID, "c")] {
            try ok(r, ["peer", "add", id, "127.0.0.1:9", "--name", name])
        }
        for data in [a, b, c] { try ok(data, ["peer", "add", relayID, "127.0.0.1:\(relay.port)", "--name", "cloud"]) }
        let serveA = try serveForTest(a)
        let serveC = try serveForTest(c)
        serving += [serveA, serveC]

        // A drafts, attaches a scan, signs (before numbering) and sends to B and C while B is offline.
        let letter = try ok(a, [
            "letter", "new", "--kind", "ภายนอก", "--subject", "ขอเชิญประชุมคณะกรรมการจังหวัด", "--to", "นายอำเภอ",
            "--urgency", "ด่วน", "--set", "ข้อความ=จังหวัดขอเชิญท่านเข้าร่วมประชุม", "--set", "คำลงท้าย=ขอแสดงความนับถือ",
        ])
        let scan = Data((0..<400_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try scan.write(to: root.appendingPathComponent("scan.pdf"))
        try ok(a, ["letter", "attach", letter, root.appendingPathComponent("scan.pdf").path])
        try ok(a, ["letter", "sign", letter, "--officer", "นายสมมติ ใจดี", "--passphrase-file", pass])
        let sent = try #require(try jsonOut(a, ["letter", "send", letter, "--to", "อบต.หนองบัว", "--to", "อำเภอบรรพตพิสัย"]) as? [String: Any])
        #expect(sent["letterNumber"] as? String == "นว 0017/1")
        let dispatch = try #require((sent["dispatches"] as? [[String: Any]])?.first?["id"] as? String)
        #expect((sent["dispatches"] as? [Any])?.count == 1)

        // C receives at once, and fetches the scan from the relay.
        try await eventually("C's inbox has A's letter", timeout: .seconds(60)) { try inbox(c).count == 1 }
        let atC = try #require(try jsonOut(c, ["letter", "receive", dispatch]) as? [String: Any])
        #expect(atC["number"] as? Int == 1)
        let recordC = try #require(atC["letter"] as? String)
        try await eventually("the relay holds the scan", timeout: .seconds(60)) {
            try saraban(["letter", "fetch", recordC, "--data", c]).status == 0
        }
        try ok(c, ["letter", "extract", recordC, "scan.pdf", root.appendingPathComponent("c-scan.pdf").path])
        #expect(FileManager.default.contents(atPath: root.appendingPathComponent("c-scan.pdf").path) == scan)
        #expect(try saraban(["letter", "verify", recordC, "--data", c]).status == 0)
        try await eventually("A sees C's receipt", timeout: .seconds(60)) {
            try ok(a, ["letter", "show", letter]).contains("ส่งถึง อำเภอบรรพตพิสัย  รับแล้ว เลขรับ 1")
        }
        #expect(try ok(a, ["letter", "show", letter]).contains("ส่งถึง อบต.หนองบัว  ยังไม่รับ"))

        // B comes back and receives it; A's record shows both receipts.
        let serveB = try serveForTest(b)
        serving.append(serveB)
        try await eventually("B's inbox has A's letter", timeout: .seconds(60)) { try inbox(b).count == 1 }
        let atB = try #require(try jsonOut(b, ["letter", "receive", dispatch]) as? [String: Any])
        #expect(atB["number"] as? Int == 1)
        try await eventually("A sees B's receipt", timeout: .seconds(60)) {
            try ok(a, ["letter", "show", letter]).contains("ส่งถึง อบต.หนองบัว  รับแล้ว เลขรับ 1")
        }
        #expect(try ok(a, ["letter", "show", letter]).contains("ส่งถึง อำเภอบรรพตพิสัย  รับแล้ว เลขรับ 1"))

        // A second letter; B returns it with a reason and A sees it.
        let second = try ok(a, [
            "letter", "new", "--kind", "ภายนอก", "--subject", "ขอข้อมูลประชากร", "--to", "นายก อบต.",
            "--set", "ข้อความ=ขอข้อมูล", "--set", "คำลงท้าย=ขอแสดงความนับถือ", "--set", "ผู้ลงนาม=นายสมมติ ใจดี",
            "--set", "ตำแหน่ง=ผู้ว่าราชการจังหวัดนครสวรรค์",
        ])
        let sent2 = try #require(try jsonOut(a, ["letter", "send", second, "--to", bID]) as? [String: Any])
        let dispatch2 = try #require((sent2["dispatches"] as? [[String: Any]])?.first?["id"] as? String)
        try await eventually("B's inbox has the second letter", timeout: .seconds(60)) { try inbox(b).count == 1 }
        try ok(b, ["letter", "return", dispatch2, "--reason", "ไม่ใช่หน่วยงานที่รับผิดชอบ"])
        try await eventually("A sees the return", timeout: .seconds(60)) {
            try ok(a, ["letter", "show", second]).contains("ส่งถึง อบต.หนองบัว  ส่งคืน: ไม่ใช่หน่วยงานที่รับผิดชอบ")
        }

        // B cannot change or delete A's dispatch; A's copy stays as A wrote it.
        let before = try ok(a, ["doc", "show", dispatch, "--json"])
        #expect(try saraban(["doc", "set", dispatch, "เรื่อง", "แก้ไขแล้ว", "--data", b]).status == 68)
        #expect(try saraban(["doc", "delete", dispatch, "--data", b]).status == 68)
        try await Task.sleep(for: .seconds(2))
        #expect(try ok(a, ["doc", "show", dispatch, "--json"]) == before)
        #expect(try ok(b, ["letter", "show", dispatch]).contains("เรื่อง  ขอเชิญประชุมคณะกรรมการจังหวัด"))

        // A paper letter taken in at C.
        let paper = try #require(try jsonOut(c, [
            "letter", "intake", "--from", "สำนักงานที่ดินจังหวัดนครสวรรค์", "--number", "นว 0020/455", "--date", "6/12/2569",
            "--subject", "แจ้งผลการรังวัด", "--via", "ไปรษณีย์",
        ]) as? [String: Any])
        #expect(paper["number"] as? Int == 2)

        // Both registers export as CSV that opens as UTF-8 with a byte-order mark.
        for (data, book, rows) in [(a, "send", 2), (c, "receive", 2)] {
            let csv = try saraban(["register", "show", book, "--csv", "--data", data])
            #expect(csv.status == 0, "\(csv.err)")
            let bytes = csv.outBytes
            #expect(Array(bytes.prefix(3)) == [0xEF, 0xBB, 0xBF])
            let text = try #require(String(data: bytes.dropFirst(3), encoding: .utf8))
            #expect(text.split(separator: "\r\n").count == rows + 1, "\(text)")
        }

        for s in serving { #expect(s.stop() == 0, "\(s.log)") }
        serving = []
    }
}
