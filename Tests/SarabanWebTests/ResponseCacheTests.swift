import Foundation
import NIOCore
import SarabanCore
import SarabanNode
import SarabanOffice
@testable import SarabanWeb
import Testing

/// The response cache (ResponseCache.swift) keeps the register page, the letter list API and the
/// search API per store content version: a write is seen at the next request, a body showing a
/// secret letter is never served to a caller whose clearance does not cover it (the same user,
/// once their clearance is taken away, included), each session gets its own CSRF token, and the
/// cache stays within its bytes.
@Suite struct ResponseCacheTests {
    @Test func keptPagesFollowWritesClearancesAndSessions() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let year = w.node.registerYear(at: w.node.currentMillis)
        let secretSpace = try w.node.createSpace(name: "ลับ-จังหวัด").id
        try w.node.setSpaceClearance(secretSpace, to: .confidential)
        let secret = try w.node.createLetter(
            kind: .internal, fields: [("เรื่อง", "แผนรักษาความปลอดภัยสถานที่"), ("ชั้นความลับ", "ลับ")], space: "ลับ-จังหวัด")
        _ = try w.node.allocate(.receive, letter: secret, summary: "แผน")
        let plain = try w.node.createLetter(kind: .internal, fields: [("เรื่อง", "ขอเชิญประชุมคณะทำงานรักษาความสะอาด")])
        _ = try w.node.allocate(.receive, letter: plain, summary: "ประชุม")
        let pw = try w.addUser("somsri", role: .clerk)
        try w.app.accounts.setClearance("somsri", .confidential)
        let (first, firstCSRF) = try await w.login("somsri", pw)
        let (second, secondCSRF) = try await w.login("somsri", pw)
        #expect(firstCSRF != secondCSRF)
        let (_, token) = try w.app.accounts.createToken(name: "vendor-x", scope: .read)
        let bearer = [("Authorization", "Bearer \(token)")]
        let register = "/registers/receive?year=\(year)"
        let search = "/api/v1/search?q=" + WebNode.encode("รักษาความ")
        let letters = "/api/v1/letters?year=\(year)"

        // Cleared: the register page, the letter list and the search show the secret subject.
        let cleared = try await w.get(register, cookies: ["saraban_session": first])
        #expect(cleared.status == 200 && cleared.text.contains("แผนรักษาความปลอดภัยสถานที่"))
        let clearedHits = try await w.get(search, cookies: ["saraban_session": first])
        #expect(clearedHits.text.contains("แผนรักษาความปลอดภัยสถานที่") && clearedHits.text.contains("ประชุมคณะทำงาน"))
        let clearedList = try await w.get(letters, cookies: ["saraban_session": first])
        #expect(clearedList.text.contains("แผนรักษาความปลอดภัยสถานที่"))

        // The second session of the same user is served the kept page with its own CSRF token.
        let hits = w.app.responses.usage.hits
        let other = try await w.get(register, cookies: ["saraban_session": second])
        #expect(w.app.responses.usage.hits == hits + 1)
        #expect(other.text.contains("content=\"\(secondCSRF)\"") && other.text.contains("value=\"\(secondCSRF)\""))
        #expect(!other.text.contains(firstCSRF) && !other.text.contains(w.app.responses.csrfMarker))
        #expect(cleared.text.contains("content=\"\(firstCSRF)\"") && !cleared.text.contains(secondCSRF))

        // The token has no clearance: its list and its search withhold the secret letter.
        let tokenList = try await w.get(letters, headers: bearer)
        #expect(tokenList.status == 200 && !tokenList.text.contains("แผนรักษาความปลอดภัยสถานที่") && tokenList.text.contains("ประชุมคณะทำงาน"))
        let tokenHits = try await w.get(search, headers: bearer)
        #expect(!tokenHits.text.contains("แผนรักษาความปลอดภัยสถานที่") && tokenHits.text.contains("ประชุมคณะทำงาน"))

        // The same user's clearance taken away: nothing kept for the cleared is served to them.
        try w.app.accounts.setClearance("somsri", .none)
        let uncleared = try await w.get(register, cookies: ["saraban_session": first])
        #expect(uncleared.status == 200 && !uncleared.text.contains("แผนรักษาความปลอดภัยสถานที่"))
        #expect(uncleared.text.contains("ประชุมคณะทำงาน"))
        let unclearedHits = try await w.get(search, cookies: ["saraban_session": first])
        #expect(!unclearedHits.text.contains("แผนรักษาความปลอดภัยสถานที่") && unclearedHits.text.contains("ประชุมคณะทำงาน"))
        let unclearedList = try await w.get(letters, cookies: ["saraban_session": first])
        #expect(!unclearedList.text.contains("แผนรักษาความปลอดภัยสถานที่"))

        // A write is seen at the next request of each, whatever was kept.
        let late = try w.node.createLetter(kind: .internal, fields: [("เรื่อง", "รักษาความสงบเรียบร้อยงานกาชาด")])
        _ = try w.node.allocate(.receive, letter: late, summary: "กาชาด")
        #expect(try await w.get(register, cookies: ["saraban_session": first]).text.contains("รักษาความสงบเรียบร้อยงานกาชาด"))
        #expect(try await w.get(search, headers: bearer).text.contains("รักษาความสงบเรียบร้อยงานกาชาด"))
        let after = try await w.get(letters, headers: bearer)
        #expect(after.json?["total"] as? Int == 3 && after.text.contains("รักษาความสงบเรียบร้อยงานกาชาด"))
        #expect(w.app.responses.usage.bytes <= w.app.responses.capacity)
    }

    @Test func theCacheKeepsOneVersionWithinItsBytesAndBodiesUntilTheyExpire() {
        let cache = ResponseCache(capacity: 4_000)
        func body(_ c: Character) -> [ByteBuffer] { [ByteBuffer(string: String(repeating: c, count: 900))] }
        for k in ["a", "b", "c", "d"] { cache.keep(k, version: 5, validUntil: nil, body(Character(k))) }
        #expect(cache.usage.bodies == 4)
        _ = cache.pieces("a", version: 5, now: 0)  // used: "b" is now the least recently used
        cache.keep("e", version: 5, validUntil: nil, body("e"))
        #expect(cache.usage.bytes <= 3_000)
        #expect(cache.pieces("a", version: 5, now: 0) != nil && cache.pieces("e", version: 5, now: 0) != nil)
        #expect(cache.pieces("b", version: 5, now: 0) == nil)
        // Another version does not see these; a body of an older version is not kept.
        #expect(cache.pieces("a", version: 6, now: 0) == nil)
        cache.keep("old", version: 4, validUntil: nil, body("o"))
        #expect(cache.pieces("old", version: 4, now: 0) == nil && cache.pieces("a", version: 5, now: 0) != nil)
        // A newer version empties it; a body holds until its instant.
        cache.keep("r", version: 7, validUntil: 1_000, body("r"))
        #expect(cache.usage.bodies == 1 && cache.pieces("a", version: 5, now: 0) == nil)
        #expect(cache.pieces("r", version: 7, now: 1_000) != nil && cache.pieces("r", version: 7, now: 1_001) == nil)
        // Bodies larger than a quarter of the capacity are not kept.
        cache.keep("big", version: 7, validUntil: nil, [ByteBuffer(string: String(repeating: "x", count: 1_100))])
        #expect(cache.pieces("big", version: 7, now: 0) == nil)
        // A page is cut at the marker and joined with each session's token.
        let m = cache.csrfMarker
        let pieces = cache.cut(ByteBuffer(string: "<meta content=\"\(m)\"><input value=\"\(m)\">ท้าย"))
        #expect(pieces.count == 3)
        #expect(String(buffer: ResponseCache.join(pieces, csrf: "tok-1")) == "<meta content=\"tok-1\"><input value=\"tok-1\">ท้าย")
        // Keys are length-prefixed: parts cannot be shifted from one to the next.
        #expect(ResponseCache.key(["ab", "c"]) != ResponseCache.key(["a", "bc"]))
    }
}
