import Foundation
import SarabanCore
import SarabanNode
import SarabanOffice
@testable import SarabanWeb
import Testing

/// The register page shows a book a page at a time (a year's book holds thousands of lines), and
/// what the web app keeps between requests (the node's read cache) never hides a write or an
/// expired reservation.
@Suite struct RegisterPagingTests {
    @Test func theRegisterPageShowsOnePageAtATimeAndSeesNewLinesAtOnce() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let year = w.node.registerYear(at: w.node.currentMillis)
        for i in 1...55 {
            let id = try w.node.createLetter(kind: .internal, fields: [("เรื่อง", "เรื่องทดสอบลำดับที่ \(i) จบ")])
            _ = try w.node.allocate(.receive, letter: id, summary: "ลำดับที่ \(i)")
        }
        let pw = try w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await w.login("somsri", pw)
        let first = try await w.get("/registers/receive?year=\(year)", cookies: ["saraban_session": cookie])
        #expect(first.status == 200)
        #expect(first.text.contains("ลำดับที่ 1 จบ") && first.text.contains("ลำดับที่ 50 จบ") && !first.text.contains("ลำดับที่ 51 จบ"))
        #expect(first.text.contains("55 / 55") && first.text.contains("page=2\">→</a>"))
        let second = try await w.get("/registers/receive?year=\(year)&page=2", cookies: ["saraban_session": cookie])
        #expect(second.text.contains("ลำดับที่ 55 จบ") && !second.text.contains("ลำดับที่ 50 จบ") && second.text.contains("page=1\">←</a>"))
        // A search keeps its words in the pager's links (percent-encoded) and pages its own matches.
        let q = WebNode.encode("ทดสอบ")
        let searched = try await w.get("/registers/receive?year=\(year)&q=\(q)&per_page=20&page=3", cookies: ["saraban_session": cookie])
        #expect(searched.text.contains("ลำดับที่ 41 จบ") && !searched.text.contains("ลำดับที่ 40 จบ"))
        #expect(searched.text.contains("q=\(q)&amp;per_page=20&amp;page=2\">←</a>"))

        // A line written after the page was read (and cached) is on the next read.
        let late = try w.node.createLetter(kind: .internal, fields: [("เรื่อง", "เรื่องมาทีหลัง")])
        _ = try w.node.allocate(.receive, letter: late, summary: "มาทีหลัง")
        let again = try await w.get("/registers/receive?year=\(year)&page=2", cookies: ["saraban_session": cookie])
        #expect(again.text.contains("เรื่องมาทีหลัง") && again.text.contains("56 / 56"))
        let (_, token) = try w.app.accounts.createToken(name: "vendor-x", scope: .read)
        let list = try await w.get("/api/v1/letters?year=\(year)", headers: [("Authorization", "Bearer \(token)")])
        #expect(list.json?["total"] as? Int == 56)
    }

    @Test func aCachedRegisterShowsAReservationExpiredOnTime() throws {
        let w = try WebNode()
        defer { w.node.close() }
        let id = try w.node.createLetter(kind: .internal, fields: [("เรื่อง", "เรื่องแรก")])
        let a = try w.node.allocate(.send, letter: id, summary: "แรก")
        let (n, _) = try w.node.reserve(.send, until: w.node.currentMillis + 1_500, purpose: "จองไว้ให้กองคลัง")
        let before = try w.node.registerForms.form(.send, year: a.year)
        #expect(before.rows.first { $0.number == n }?.state == .reserved)
        Thread.sleep(forTimeInterval: 2)
        let after = try w.node.registerForms.form(.send, year: a.year)
        #expect(after.rows.first { $0.number == n }?.state == .expired)
    }
}
