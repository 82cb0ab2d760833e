import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// Defects of the receive path found by the simulator (Docs/TESTING.md, "Findings"), each shown
/// on two or three in-process nodes; each test fails on the code before its fix.
@Suite struct SimulatorFindingsTests {
    /// A member that joins a space receives its inviter's feed in chain order. When a batch ends
    /// after the genesis (a session with small batches, or an inviter whose feed before the
    /// invitation is longer than one batch), the genesis is applied alone; the joiner is not in
    /// the roster yet, and it used to refuse the inviter's next (content) envelope as a removed
    /// node would ("this node was removed from the space"), although it holds that epoch's key
    /// from its invitation. The chain stopped there, so it never received the change that adds
    /// it: it could never sync the space. (`saraban-sim --seeds 1 --start 3`.)
    @Test func aJoinerTakesItsInvitersFeedOneEnvelopeAtATime() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let s = try a.createSpace(name: "s").id
        let before = try a.createDocument(fields: [("subject", "ก่อนเชิญ")], space: s)
        try b.join(try Invitation.parse(try a.invite(space: s, invitee: b.nodeID, office: "บี").text))
        for e in try envelopes(a, s) {
            let r = try b.receiveEnvelopes(space: s, [e])
            #expect(r.refused.count == 0, "envelope \(e.header.seqStart) refused: \(r.refused.map(\.error.description))")
        }
        #expect(try b.feedVector(space: s) == a.feedVector(space: s))
        #expect(try b.document(before).display("subject") == "ก่อนเชิญ")
        #expect(try b.spaceInfo(s)?.members.contains { $0.key == b.identity.publicKey && $0.isActive } == true)
        _ = try b.createDocument(fields: [("subject", "จากบี")], space: s)
    }

    /// A relay reads a batch's control changes only at the end of the batch, so an envelope
    /// sealed in an epoch that a rekey earlier in the same batch makes used to be refused
    /// (`notAMember`: its author had no right in that epoch yet), and every later envelope of
    /// that author in the session refused as a gap. The session still settled (refused data
    /// counts as received), so the relay stayed behind that author until the connection was
    /// made again. (`saraban-sim --seeds 1 --start 23`, before the fix.)
    @Test func aRelayTakesARekeyAndItsNewEpochInOneBatch() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let relay = try office.node("relay", relay: true)
        let s = try a.createSpace(name: "s").id
        try b.join(try Invitation.parse(try a.invite(space: s, invitee: b.nodeID).text))
        try relay.carry(space: s)
        try exchange(a, relay, s)
        try a.removeMember(space: s, member: b.nodeID)
        _ = try a.createDocument(fields: [("subject", "หลังเปลี่ยนกุญแจ")], space: s)
        let (feed, _) = try a.envelopes(space: s, after: try relay.feedVector(space: s), limit: all)
        #expect(feed.map(\.header.epoch) == [ControlEntry.publicEpoch, 1])
        let r = try relay.receiveEnvelopes(space: s, feed)
        #expect(r.refused.count == 0, "\(r.refused.map(\.error.description))")
        #expect(try relay.feedVector(space: s) == a.feedVector(space: s))
    }
}
