import Foundation
import Testing

/// Issue 13's rows that a clerk or an attacker reaches with the command line.
@Suite(.ownThread, .timeLimit(.minutes(5))) struct AuthorityCLITests {
    func initNode(_ data: String, office: String) throws -> String {
        let r = try run(["init", "--data", data, "--office", office])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .newlines)
    }

    /// A makes space "กองคลัง" and invites B; returns the space id and B's node id.
    func shared(_ dir: TempDir) throws -> (a: String, b: String, space: String, bID: String) {
        let (a, b) = (dir.path + "/a", dir.path + "/b")
        _ = try initNode(a, office: "กรมการปกครอง")
        let bID = try initNode(b, office: "อำเภอเมือง")
        let space = try run(["space", "create", "กองคลัง", "--data", a]).stdout.trimmingCharacters(in: .newlines)
        let invite = try run(["space", "invite", space, bID, "--out", dir.file("b.invite"), "--data", a])
        #expect(invite.status == 0, "\(invite.stderr)")
        let join = try run(["space", "join", dir.file("b.invite"), "--data", b])
        #expect(join.status == 0, "\(join.stderr)")
        return (a, b, space, bID)
    }

    /// Issue 13: any member granted itself a clearance (exit 0) and then read a ลับ letter.
    @Test func aMemberCannotGrantItselfAClearanceOrDesignateARelay() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b, space, bID) = try shared(dir)
        let grant = try run(["space", "clearance", space, "ลับ", "--member", bID, "--data", b])
        #expect(grant.status == 68, "\(grant.stdout)\(grant.stderr)")
        #expect(grant.stderr.contains("admin") && grant.stderr.contains("ผู้ดูแล"))
        let relay = try run(["space", "relay", space, bID, "--data", b])
        #expect(relay.status == 68)
        let promote = try run(["space", "admin", space, bID, "--data", b])
        #expect(promote.status == 68)
        // The admin may.
        let byAdmin = try run(["space", "clearance", space, "ลับ", "--member", bID, "--data", a])
        #expect(byAdmin.status == 0, "\(byAdmin.stderr)")
        let list = try run(["space", "list", "--json", "--data", a])
        #expect(list.stdout.contains("\"admin\" : true"))
    }

    /// Issue 13: a partner made a space named after the id of the victim's own space, invited the
    /// victim, and `letter new --space <id>` then stored the letter in the partner's space.
    @Test func aSpaceNamedAfterAnotherSpacesIDCannotBeJoined() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (victim, partner) = (dir.path + "/v", dir.path + "/p")
        let vID = try initNode(victim, office: "อำเภอเมือง")
        _ = try initNode(partner, office: "บริษัท")
        let own = try run(["space", "create", "ของเรา", "--data", victim]).stdout.trimmingCharacters(in: .newlines)
        #expect(own.count == 32)
        let lure = try run(["space", "create", own, "--data", partner])
        #expect(lure.status == 0, "\(lure.stderr)")
        let inv = try run(["space", "invite", own, vID, "--out", dir.file("lure.invite"), "--data", partner])
        #expect(inv.status == 0, "\(inv.stderr)")
        let join = try run(["space", "join", dir.file("lure.invite"), "--data", victim])
        #expect(join.status == 68, "\(join.stdout)\(join.stderr)")
        #expect(join.stderr.contains("--as"))
        // The id still means the victim's own space.
        let letter = try run(["doc", "new", "--space", own, "--set", "subject=ลับ", "--data", victim])
        #expect(letter.status == 0, "\(letter.stderr)")
        let spaces = try run(["space", "list", "--json", "--data", victim])
        #expect(spaces.stdout.components(separatedBy: "\"id\" : \"\(own)\"").count == 2)
        #expect(spaces.stdout.components(separatedBy: "\"documents\" : 1").count == 2)
        // Under another local name it may join.
        let renamed = try run(["space", "join", dir.file("lure.invite"), "--as", "ของบริษัท", "--data", victim])
        #expect(renamed.status == 0, "\(renamed.stderr)")
    }
}
