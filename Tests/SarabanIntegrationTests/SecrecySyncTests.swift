import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanOffice
import SarabanSync
import Testing

/// A cleared space reaches its members and its designated relay, never another relay that
/// carries it (real daemons on 127.0.0.1).
@Suite(.serialized, .timeLimit(.minutes(2)))
struct SecrecySyncTests {
    @Test func aClearedSpaceIsServedOnlyToMembersAndTheDesignatedRelay() async throws {
        let root = temporaryDirectory("secrecy")
        defer { try? FileManager.default.removeItem(at: root) }
        let designated = try TestNode("cloud", relay: true, root: root)
        let other = try TestNode("other", relay: true, root: root)
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let b = try TestNode("อบต.หนองบัว", root: root)
        let space = try a.node.createSpace(name: "ลับ").id
        try a.node.setSpaceClearance(space, to: .confidential)
        try a.node.designateRelay(space, relay: designated.id)
        let inv = try a.node.invite(space: space, invitee: b.id, office: b.name, cleared: .confidential)
        _ = try b.node.join(Invitation.parse(inv.text))
        for r in [designated, other] { try r.node.carry(space: space, name: "ลับ") }
        try await withNodes([designated, other, a, b]) {
            for n in [designated, other, a, b] { try await n.start() }
            // B reaches A only through relays; both relays dial A and B.
            try a.addPeer(designated)
            try a.addPeer(other)
            try b.addPeer(designated)
            try b.addPeer(other)
            for r in [designated, other] {
                try r.addPeer(a)
                try r.addPeer(b)
            }
            let letter = try a.node.createLetter(kind: .internal, fields: [("ชั้นความลับ", "ลับ"), ("เรื่อง", "ลับเฉพาะ")], space: "ลับ")
            try await eventually("B has the secret letter through the designated relay") {
                (try? b.node.letter(letter).fields["ชั้นความลับ"]) == "ลับ"
            }
            try await eventually("the designated relay holds the space") { try designated.vector(space) == a.vector(space) }
            try await Task.sleep(for: .seconds(1))
            #expect(try other.vector(space).isEmpty, "a relay not designated for the cleared space got its envelopes")
        }
    }

    /// A space declared confidential while a relay that is not designated for it holds an open
    /// session stops reaching that relay: the member's daemon sees the space's change (its
    /// document, not the spaces table), reopens that session, and the new hello leaves the space
    /// out. Before, the open session went on pushing the space's letters until it ended.
    @Test func aSpaceClearedWhileAnUndesignatedRelayIsConnectedStopsReachingIt() async throws {
        let root = temporaryDirectory("secrecy-cleared-later")
        defer { try? FileManager.default.removeItem(at: root) }
        let relay = try TestNode("cloud", relay: true, root: root)
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let space = try a.node.createSpace(name: "งานทั่วไป").id
        try relay.node.carry(space: space, name: "งานทั่วไป")
        let author = a.node.identity.publicKey
        try await withNodes([relay, a]) {
            for n in [relay, a] { try await n.start() }
            try a.addPeer(relay)
            try relay.addPeer(a)
            _ = try a.node.createLetter(kind: .internal, fields: [("เรื่อง", "ก่อนกำหนดชั้นความลับ")], space: "งานทั่วไป")
            try await eventually("the relay holds A's feed") { try relay.vector(space)[author] == a.vector(space)[author] }
            let held = try relay.vector(space)[author]

            try a.node.setSpaceClearance(space, to: .confidential)
            _ = try a.node.createLetter(kind: .internal, fields: [("ชั้นความลับ", "ลับ"), ("เรื่อง", "หลังกำหนด")], space: "งานทั่วไป")
            #expect(try a.vector(space)[author] > held)
            // Sessions reopen within a poll and a redial; give an open session time to push.
            try await Task.sleep(for: .seconds(3))
            #expect(try relay.vector(space)[author] == held, "a relay not designated for a space got its envelopes after it was cleared")
        }
    }

    /// A member removed from a cleared space stops receiving it at once: the admin's daemon sees
    /// the membership change, reopens the removed member's sessions, and their new hellos leave
    /// the space out. Neither the removal's own envelope nor a letter written after it reaches
    /// the removed node (before, the open session pushed both).
    @Test func aMemberRemovedFromAClearedSpaceStopsReceivingIt() async throws {
        let root = temporaryDirectory("secrecy-removed")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let b = try TestNode("อบต.หนองบัว", root: root)
        let space = try a.node.createSpace(name: "ลับ").id
        try a.node.setSpaceClearance(space, to: .confidential)
        let inv = try a.node.invite(space: space, invitee: b.id, office: b.name, cleared: .confidential)
        _ = try b.node.join(Invitation.parse(inv.text))
        let author = a.node.identity.publicKey
        try await withNodes([a, b]) {
            for n in [a, b] { try await n.start() }
            try a.addPeer(b)
            try b.addPeer(a)
            let first = try a.node.createLetter(kind: .internal, fields: [("ชั้นความลับ", "ลับ"), ("เรื่อง", "ก่อนถอน")], space: "ลับ")
            try await eventually("B has the first letter") { (try? b.node.letter(first).fields["เรื่อง"]) == "ก่อนถอน" }
            try await eventually("B holds all of A's feed") { try b.vector(space)[author] == a.vector(space)[author] }
            let held = try b.vector(space)[author]

            _ = try a.node.removeMember(space: space, member: b.id)
            _ = try a.node.createLetter(kind: .internal, fields: [("ชั้นความลับ", "ลับ"), ("เรื่อง", "หลังถอน")], space: "ลับ")
            #expect(try a.vector(space)[author] >= held + 2)
            // Sessions reopen within a poll and a redial; give an open session time to push.
            try await Task.sleep(for: .seconds(3))
            #expect(try b.vector(space)[author] == held, "the removed node got A's envelopes written after its removal")
            #expect(a.daemon?.transport.openChannelPeers.contains(b.id) == true, "A and B still sync their other spaces")
        }
    }
}
