import Foundation
import Testing

@Suite(.ownThread, .timeLimit(.minutes(5))) struct SpaceCLITests {
    func initNode(_ data: String, office: String) throws -> String {
        let r = try run(["init", "--data", data, "--office", office])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .newlines)
    }

    /// Data directories a, b and c under `dir`, initialised for the three offices; returns them
    /// with b's node id (the one the tests invite).
    func threeNodes(_ dir: TempDir, offices: (String, String, String)) throws -> (String, String, String, String) {
        let (a, b, c) = (dir.path + "/a", dir.path + "/b", dir.path + "/c")
        _ = try initNode(a, office: offices.0)
        let bID = try initNode(b, office: offices.1)
        _ = try initNode(c, office: offices.2)
        return (a, b, c, bID)
    }

    /// Three nodes; a creates space สารบรรณ, b joins it, a writes one document in it. Returns the
    /// data directories, b's node id, the space id and the document id.
    func sharedSpaceWithADocument(_ dir: TempDir) throws -> (String, String, String, String, String, String) {
        let (a, b, c, bID) = try threeNodes(dir, offices: ("อำเภอเมือง", "อบต.หนองบัว", "อบต.บ้านใหม่"))
        let space = try run(["space", "create", "สารบรรณ", "--data", a]).stdout.trimmingCharacters(in: .newlines)
        #expect(try run(["space", "invite", space, bID, "--out", dir.file("inv.txt"), "--data", a]).status == 0)
        #expect(try run(["space", "join", dir.file("inv.txt"), "--data", b]).status == 0)
        let made = try run(["doc", "new", "--data", a, "--space", "สารบรรณ", "--set", "subject=" + thai])
        #expect(made.status == 0, "\(made.stderr)")
        let doc = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").last.map(String.init) ?? ""
        return (a, b, c, bID, space, doc)
    }

    @Test func createInviteJoinListRemove() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b, c, bID) = try threeNodes(dir, offices: ("กรมการปกครอง", "อำเภอเมือง", "อำเภออื่น"))

        let created = try run(["space", "create", "กองคลัง", "--data", a])
        #expect(created.status == 0, "\(created.stderr)")
        let space = created.stdout.trimmingCharacters(in: .newlines)
        #expect(space.count == 32)
        let doc = try run(["doc", "new", "--data", a, "--space", "กองคลัง", "--set", "subject=" + thai])
        #expect(doc.status == 0, "\(doc.stderr)")
        let unknown = try run(["doc", "new", "--data", a, "--space", "ไม่มี"])
        #expect(unknown.status == 67 && unknown.stderr.contains("space list"))

        let invite = try run(["space", "invite", space, bID, "--out", dir.file("invite.txt"), "--data", a])
        #expect(invite.status == 0, "\(invite.stderr)")
        let text = try String(contentsOfFile: dir.file("invite.txt"), encoding: .utf8)
        #expect(text.hasPrefix("sbinvite2:") && !text.contains(thai))
        // The invitation opens only on B.
        let wrong = try run(["space", "join", dir.file("invite.txt"), "--data", c])
        #expect(wrong.status == 68)
        #expect(wrong.stderr.contains("not this node"))
        let join = try run(["space", "join", dir.file("invite.txt"), "--data", b])
        #expect(join.status == 0, "\(join.stderr)")
        #expect(join.stdout.contains("กองคลัง"))

        let list = try json(try run(["space", "list", "--json", "--data", a]).stdout) as? [[String: Any]]
        let shared = try #require(list?.first { $0["id"] as? String == space })
        #expect(shared["name"] as? String == "กองคลัง")
        #expect(shared["documents"] as? Int == 1)
        #expect((shared["members"] as? [Any])?.count == 2)
        #expect(list?.contains { $0["isDefault"] as? Bool == true } == true)
        let textList = try run(["space", "list", "--data", b])
        #expect(textList.stdout.contains(space) && textList.stdout.contains("office (default)"))

        let remove = try run(["space", "remove", "กองคลัง", bID, "--json", "--data", a])
        #expect(remove.status == 0, "\(remove.stderr)")
        #expect((try json(remove.stdout) as? [String: Any])?["epoch"] as? Int == 1)
        let after = try json(try run(["space", "list", "--json", "--data", a]).stdout) as? [[String: Any]]
        #expect(after?.first { $0["id"] as? String == space }?["epoch"] as? Int == 1)
        // Key material is never printed.
        for out in [created.stdout, list.debugDescription, textList.stdout, remove.stdout] {
            #expect(!out.lowercased().contains("key\""))
        }
    }

    /// `doc export` of a space document writes its signed envelopes (JSON names the space and
    /// counts them); `doc merge` applies them at another member (exit 0, then all duplicates),
    /// refuses a node outside the space and a tampered file with exit 65.
    @Test func spaceDocumentExportAndMerge() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b, c, _, space, doc) = try sharedSpaceWithADocument(dir)

        let exported = try run(["doc", "export", "--json", "--data", a, doc, dir.file("s.changes")])
        #expect(exported.status == 0, "\(exported.stderr)")
        let e = try #require(try json(exported.stdout) as? [String: Any])
        #expect(e["space"] as? String == space)
        #expect((e["envelopes"] as? Int ?? 0) >= 1)
        let changes = try #require(e["changes"] as? Int)

        let merged = try run(["doc", "merge", "--json", "--data", b, dir.file("s.changes")])
        #expect(merged.status == 0, "\(merged.stderr)")
        let m = try #require(try json(merged.stdout) as? [String: Any])
        #expect((m["applied"] as? Int ?? 0) + (m["duplicates"] as? Int ?? 0) == changes)
        #expect(try run(["doc", "get", "--data", b, doc, "subject"]).stdout == thai + "\n")
        let again = try run(["doc", "merge", "--data", b, dir.file("s.changes")])
        #expect(again.stdout == "applied 0, duplicate \(changes), waiting 0\n")

        let outside = try run(["doc", "merge", "--data", c, dir.file("s.changes")])
        #expect(outside.status == 65 && outside.stderr.contains("does not carry space"), "\(outside.stderr)")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: dir.file("s.changes")))
        bytes[bytes.count - 100] ^= 0x01  // inside the last envelope's ciphertext (before its tag and signature)
        try bytes.write(to: URL(fileURLWithPath: dir.file("t.changes")))
        let tampered = try run(["doc", "merge", "--data", b, dir.file("t.changes")])
        #expect(tampered.status == 65 && tampered.stderr.contains("altered"), "\(tampered.stderr)")
    }

    /// `space leave` (issue 14, "Daemon and errors"): says in Thai and English what happens, deletes
    /// nothing without --yes, then drops the space, its documents and keys from this node only; the
    /// office's own space and a last admin (while others hold the space) are refused with the next step.
    @Test func leaveASpace() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b, _, bID, space, doc) = try sharedSpaceWithADocument(dir)
        #expect(try run(["doc", "export", "--data", a, doc, dir.file("s.changes")]).status == 0)
        #expect(try run(["doc", "merge", "--data", b, dir.file("s.changes")]).status == 0)
        #expect(try run(["doc", "get", "--data", b, doc, "subject"]).stdout == thai + "\n")
        func carries(_ data: String) throws -> Bool {
            let list = try json(try run(["space", "list", "--json", "--data", data]).stdout) as? [[String: Any]]
            return list?.contains { $0["id"] as? String == space } ?? false
        }

        // The last admin, while b holds the space: refused, naming the next step.
        let lastAdmin = try run(["space", "leave", "สารบรรณ", "--yes", "--data", a])
        #expect(lastAdmin.status == 68, "\(lastAdmin.stderr)")
        #expect(lastAdmin.stderr.contains("last admin") && lastAdmin.stderr.contains("space admin สารบรรณ \(bID)"), "\(lastAdmin.stderr)")
        #expect(try carries(a))
        let own = try run(["space", "leave", "office", "--yes", "--data", b])
        #expect(own.status == 68 && own.stderr.contains("own space"), "\(own.stderr)")
        #expect(try run(["space", "leave", "ไม่มี", "--yes", "--data", b]).status == 67)

        // Without --yes (no terminal): what would happen, in Thai and English, and nothing deleted.
        let unconfirmed = try run(["space", "leave", "สารบรรณ", "--data", b])
        #expect(unconfirmed.status == 64, "\(unconfirmed.stderr)")
        #expect(unconfirmed.stderr.contains("เลิกซิงก์พื้นที่ สารบรรณ") && unconfirmed.stderr.contains("stops syncing space สารบรรณ"))
        #expect(unconfirmed.stderr.contains("keep their copies") && unconfirmed.stderr.contains("--yes"), "\(unconfirmed.stderr)")
        #expect(try carries(b))
        #expect(try run(["doc", "get", "--data", b, doc, "subject"]).stdout == thai + "\n")

        let left = try run(["space", "leave", "สารบรรณ", "--yes", "--json", "--data", b])
        #expect(left.status == 0, "\(left.stderr)")
        let out = try #require(try json(left.stdout) as? [String: Any])
        #expect(out["space"] as? String == space && (out["documents"] as? Int ?? 0) >= 1 && (out["keys"] as? Int ?? 0) >= 1)
        #expect(try !carries(b))
        let gone = try run(["doc", "get", "--data", b, doc, "subject"])
        #expect(gone.status == 67, "\(gone.stderr)")
        #expect(try run(["doc", "new", "--data", b, "--space", "สารบรรณ"]).status == 67)
        #expect(try run(["doc", "merge", "--data", b, dir.file("s.changes")]).status == 65)  // it no longer carries it
        #expect(try run(["space", "leave", "สารบรรณ", "--yes", "--data", b]).status == 67)
        // a still has everything.
        #expect(try run(["doc", "get", "--data", a, doc, "subject"]).stdout == thai + "\n")

        // Once b is removed, a is the last to hold the space and may leave it; it is told so.
        #expect(try run(["space", "remove", "สารบรรณ", bID, "--data", a]).status == 0)
        let last = try run(["space", "leave", "สารบรรณ", "--yes", "--data", a])
        #expect(last.status == 0, "\(last.stderr)")
        #expect(last.stderr.contains("gone for good"), "\(last.stderr)")
        #expect(try !carries(a))
    }

    @Test func relayInitCarriesWithoutKeys() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let relay = dir.path + "/relay"
        let r = try run(["init", "--relay", "--office", "cloud", "--data", relay])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try run(["space", "list", "--data", relay]).stdout.isEmpty)
        let carry = try run(["space", "carry", String(repeating: "ab", count: 16), "--data", relay])
        #expect(carry.status == 0, "\(carry.stderr)")
        #expect(try run(["space", "list", "--data", relay]).stdout.contains("relay"))
        #expect(try run(["space", "create", "x", "--data", relay]).status != 0)
        #expect(try run(["doc", "new", "--data", relay]).status != 0)
    }
}
