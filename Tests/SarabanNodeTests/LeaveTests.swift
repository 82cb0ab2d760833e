import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// `Node.leaveSpace` (issue 14, `saraban space leave`): everything of the space goes from this
/// node, nothing of the others' copies or of its other spaces.
@Suite struct LeaveTests {
    @Test func leavingDeletesTheSpaceKeysDocumentsAndEnvelopesHereOnly() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let space = try a.createSpace(name: "สารบรรณ").id
        let inv = try a.invite(space: space, invitee: b.nodeID, office: "office b")
        try b.join(try Invitation.parse(inv.text))
        let doc = try a.createDocument(kind: "memo", fields: [("subject", thai)], space: space)
        #expect(try exchange(a, b, space).refused.isEmpty)
        let own = try b.createDocument(kind: "memo", fields: [("subject", "ของสำนักงานเอง")])
        #expect(try b.document(doc).display("subject") == thai)
        #expect(try !b.store.spaceKeys(space).isEmpty)

        let plan = try b.leavePlan(space)
        #expect(plan.otherMembers == 1 && plan.documents >= 1)
        // a is the space's only admin while b holds it.
        #expect(throws: NodeError.self) { try a.leavePlan(space) }
        let left = try b.leaveSpace(space)
        #expect(left.documents >= 2 && left.envelopes >= 1 && left.keys >= 1)

        #expect(try b.store.space(space) == nil)
        #expect(try b.store.spaceKeys(space).isEmpty)
        #expect(throws: NodeError.self) { try b.document(doc) }
        #expect(try b.documents().allSatisfy { (try? b.space(ofDocument: $0.id)) != space })
        #expect(try b.store.setting("left.\(space.hex).next_seq") != nil)
        // Its own space and a's copy are untouched.
        #expect(try b.document(own).display("subject") == "ของสำนักงานเอง")
        #expect(try a.document(doc).display("subject") == thai)
        // What a sends of the space is refused here: the space is not carried any more.
        let after = try a.envelopes(space: space, after: FeedVector(), limit: all).envelopes
        let r = try b.receiveEnvelopes(space: space, after)
        #expect(r.accepted.isEmpty && r.refused.count == after.count)
        #expect(r.refused.allSatisfy { "\($0.error)".contains("does not carry space") })
        #expect(try b.store.space(space) == nil)
    }
}
