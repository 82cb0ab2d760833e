import Foundation
import Testing

/// `saraban space clearance|relay`, `space invite --cleared` and `letter fetch`/`letter show`
/// attachment status, as subprocesses.
@Suite(.ownThread, .timeLimit(.minutes(5))) struct SecrecyAttachmentCLITests {
    func ok(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try run(args)
        #expect(r.status == 0, "saraban \(args.joined(separator: " ")): \(r.stderr)", sourceLocation: sourceLocation)
        return r.stdout.trimmingCharacters(in: .newlines)
    }

    @Test func clearedSpacesRefuseUnclearedMembersAndSecretLetters() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = dir.path + "/a"
        let b = dir.path + "/b"
        _ = try ok(["init", "--data", a, "--office", "สำนักงานจังหวัดนครสวรรค์", "--code", "นว 0017"])
        let bID = try ok(["init", "--data", b, "--office", "อำเภอเมือง"])
        let space = try ok(["space", "create", "ลับ-จังหวัด", "--data", a])
        // A secret letter needs a cleared space.
        let early = try run(["letter", "new", "--data", a, "--kind", "ภายใน", "--secrecy", "ลับ", "--space", "ลับ-จังหวัด"])
        #expect(early.status == 68 && early.stderr.contains("cleared"))
        _ = try ok(["space", "clearance", space, "ลับ", "--data", a])
        let top = try run(["space", "clearance", space, "ลับที่สุด", "--data", a])
        #expect(top.status != 0 && top.stderr.contains("top-secret"))
        // An office not cleared is not invited; cleared, it is.
        let refused = try run(["space", "invite", space, bID, "--data", a])
        #expect(refused.status == 68 && refused.stderr.contains("--cleared"))
        let invite = try run(["space", "invite", space, bID, "--cleared", "ลับ", "--data", a])
        #expect(invite.status == 0, "\(invite.stderr)")
        _ = try ok(["space", "relay", space, bID, "--data", a])
        let id = try ok(["letter", "new", "--data", a, "--kind", "ภายใน", "--secrecy", "ลับ", "--space", "ลับ-จังหวัด"])
        #expect(id.contains("-"))
        // Withdrawing B's clearance stops the letter from being sent.
        _ = try ok(["space", "clearance", space, "ปกติ", "--member", bID, "--data", a])
        let send = try run(["letter", "send", "--data", a, id])
        #expect(send.status == 68 && send.stderr.contains("not cleared"))
    }

    @Test func letterShowListsHeldChunksAndFetchHasNothingToDoWhenComplete() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = dir.data
        _ = try ok(["init", "--data", a, "--office", "สำนักงานจังหวัดนครสวรรค์", "--code", "นว 0017"])
        let id = try ok(["letter", "new", "--data", a, "--kind", "ภายใน", "--subject", "ส่งสำเนา"])
        try Data(repeating: 0x25, count: 300_000).write(to: URL(fileURLWithPath: dir.file("scan.pdf")))
        _ = try ok(["letter", "attach", "--data", a, id, dir.file("scan.pdf")])
        #expect(try ok(["letter", "show", "--data", a, id]).contains("ครบ/complete"))
        let shown = try json(try ok(["letter", "show", "--data", a, id, "--json"])) as! [String: Any]
        let status = try #require((shown["attachmentStatus"] as? [[String: Any]])?.first)
        #expect(status["held"] as? Int == 2 && status["complete"] as? Bool == true)
        let fetched = try json(try ok(["letter", "fetch", "--data", a, id, "--json"])) as! [String: Any]
        #expect((fetched["peers"] as? [Any])?.isEmpty == true)
        // A chunk gone: show says so, and fetch without peers exits 69 naming what is missing.
        let root = try #require(status["root"] as? String)
        try FileManager.default.removeItem(atPath: a + "/attachments/\(root)/1")
        #expect(try ok(["letter", "show", "--data", a, id]).contains("1/2"))
        let missing = try run(["letter", "fetch", "--data", a, id])
        #expect(missing.status == 69 && missing.stderr.contains("peer"))
    }
}
