import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// Defects found by the simulator (Docs/TESTING.md, "Findings"), each shown on a few in-process
/// nodes. The fixed ones fail on the code before their fix; the open ones are wrapped in
/// `withKnownIssue`, so the suite stays green while they are open and flags the day they are fixed.
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

    /// An admin invites D while another admin, apart, removes a member and rotates the key; D's
    /// invitation carries only the old epoch's key. When the first admin learns of the rotation
    /// it shares the new key with D, but that share (a control change) depends on everything the
    /// admin had seen, including the other admin's envelopes sealed with the new key: D could not
    /// apply the share before opening them, nor open them before applying the share. It held
    /// them for good and never read the space again. (`saraban-sim --seeds 1 --start 143`.) With
    /// `sharesFirst`, D gets A's envelopes (the share) before C's (the rekey and what follows).
    @Test(arguments: [false, true]) func aKeySharedAfterItsOwnEnvelopesStillArrives(sharesFirst: Bool) throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let c = try office.node("c")
        let s = try a.createSpace(name: "s").id
        try b.join(try Invitation.parse(try a.invite(space: s, invitee: b.nodeID).text))
        try c.join(try Invitation.parse(try a.invite(space: s, invitee: c.nodeID, admin: true).text))
        try syncAll([a, b, c], s)
        // Apart: C removes B (epoch 1, sealed to A and C) and writes; A invites D (epoch 0 keys).
        try c.removeMember(space: s, member: b.nodeID)
        let later = try c.createDocument(fields: [("subject", "ยุคใหม่")], space: s)
        let d = try office.node("d")
        try d.join(try Invitation.parse(try a.invite(space: s, invitee: d.nodeID).text))
        // A learns of the rotation and shares the epoch-1 key with D; D then syncs with A.
        try exchange(c, a, s)
        #expect(try a.authority(s).lacking.isEmpty)
        if sharesFirst {
            let mine = try a.envelopes(space: s, after: try d.feedVector(space: s), limit: all).envelopes
                .filter { $0.header.author == a.identity.publicKey }
            _ = try d.receiveEnvelopes(space: s, mine)
        }
        try exchange(a, d, s)
        #expect(try d.authority(s).held == 0)
        #expect(try d.document(later).display("subject") == "ยุคใหม่")
        #expect(try d.feedVector(space: s) == a.feedVector(space: s))
    }

    /// Found by the simulator after the head-claims merge (`saraban-sim --seeds 1 --start 387
    /// --nodes 3`): admin C adds B while admin A, apart, removes C (epoch 1, sealed to A alone)
    /// and writes. When A learns of B it shares the epoch-1 key with B: a control envelope at the
    /// end of A's feed, after the envelopes sealed with that key. B, given A's envelopes one at a
    /// time, held the first (no key of epoch 1), then held the rest behind it, the share among
    /// them, unread: it waited for ever for a key it already held in its hands.
    @Test func aShareBehindHeldEnvelopesIsTakenAtOnce() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let c = try office.node("c")
        let s = try a.createSpace(name: "s").id
        try c.join(try Invitation.parse(try a.invite(space: s, invitee: c.nodeID, admin: true).text))
        try syncAll([a, c], s)
        // Apart: C adds B; A removes C (epoch 1) and writes under the new key.
        try b.join(try Invitation.parse(try c.invite(space: s, invitee: b.nodeID).text))
        try exchange(c, b, s)
        try a.removeMember(space: s, member: c.nodeID)
        var docs: [DocID] = []
        for i in 0..<3 { docs.append(try a.createDocument(fields: [("subject", "ยุคที่หนึ่ง \(i)")], space: s)) }
        // A learns of B's addition and shares the epoch-1 key with it, last in its feed.
        try exchange(c, a, s)
        #expect(try a.authority(s).lacking.isEmpty)
        let mine = try a.envelopes(space: s, after: try b.feedVector(space: s), limit: all).envelopes
            .filter { $0.header.author == a.identity.publicKey }
        #expect(mine.count >= 3)
        for e in mine { _ = try b.receiveEnvelopes(space: s, [e]) }
        #expect(try b.authority(s).held == 0)
        for d in docs { #expect(try b.document(d).display("subject")?.hasPrefix("ยุคที่หนึ่ง") == true) }
    }

    /// Open: a member that has not received its space's genesis yet (it joined and has not
    /// synced) takes any control envelope, from anyone: the roster refuses its change, but the
    /// envelope is stored in the feed and served, and the member's next changes depend on it, so
    /// every node that (rightly) refuses the outsider's envelope waits for ever for that
    /// member's changes. An outsider that can reach a fresh member blocks its feed everywhere.
    @Test func anOutsidersControlEnvelopeBeforeTheGenesisIsHeld() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let outsider = try office.node("x")
        let s = try a.createSpace(name: "s").id
        try b.join(try Invitation.parse(try a.invite(space: s, invitee: b.nodeID).text))
        let doc = try #require(try a.spaceInfo(s)?.document)
        let entry = ControlEntry.add(outsider.nodeID, admin: true, keys: [])
        let change = Change(
            author: outsider.replica, seq: 1, startOp: 1, time: 0, deps: VersionVector(),
            ops: [.listAppend(doc: doc, field: ControlEntry.field, value: entry.text)])
        let forged = try Envelope.seal(
            plaintext: EnvelopePayload.encode(changes: [change]),
            header: EnvelopeHeader(
                spaceID: s.bytes, author: outsider.identity.publicKey, seqStart: 1, seqEnd: 1, epoch: ControlEntry.publicEpoch,
                previousHash: .zero),
            key: ControlKey.key(for: s), signer: outsider.identity)
        let r = try b.receiveEnvelopes(space: s, [forged])
        withKnownIssue("a member without its space's genesis stores any control envelope") {
            #expect(r.accepted.count == 0)
        }
        try exchange(a, b, s)
        let fromB = try b.createDocument(fields: [("subject", "จากบี")], space: s)
        try exchange(b, a, s)
        let seen = try? a.document(fromB).display("subject")
        withKnownIssue("the member's next changes depend on the outsider's, which the others refuse") {
            #expect(seen == "จากบี")
        }
    }

    /// Fixed: each control change is judged against its own causal past, so two admins that,
    /// apart, demote or remove each other both succeeded, and the space was left with no admin:
    /// nobody could add, remove, rotate or grant again, and when the surviving rekey was the one
    /// the other removed admin held, nobody could seal anything any more (`saraban-sim --seeds 1
    /// --start 723`, before its offices were told never to demote or remove a space's creator).
    /// Now the change by the smaller replica id stands and the other is void (Docs/SECURITY.md,
    /// "Admins ousting each other"): one admin is left, the same on both nodes, and it still runs
    /// the space (it admits a new office, which reads what is written after).
    @Test func twoAdminsOustingEachOtherLeaveTheSpaceWithOneAdmin() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let c = try office.node("c")
        let d = try office.node("d")
        let s = try a.createSpace(name: "s").id
        try c.join(try Invitation.parse(try a.invite(space: s, invitee: c.nodeID, admin: true).text))
        try syncAll([a, c], s)
        try a.setAdmin(space: s, member: c.nodeID, admin: false)
        try c.removeMember(space: s, member: a.nodeID)
        try syncAll([a, c], s)
        let admins = try c.authority(s).admins
        #expect(try a.authority(s).admins == admins)
        #expect(admins.count == 1, "admins left: \(admins)")
        let admin = try #require([a, c].first { admins.contains($0.identity.publicKey) })
        let other = admin === a ? c : a
        try d.join(try Invitation.parse(try admin.invite(space: s, invitee: d.nodeID).text))
        try syncAll([admin, d], s)
        let letter = try admin.createDocument(fields: [("subject", "หลังการแก้")], space: s)
        try syncAll([admin, d], s)
        #expect(try d.document(letter).display("subject") == "หลังการแก้")
        // The ousted one changes nothing more.
        #expect(throws: NodeError.self) { _ = try other.invite(space: s, invitee: d.nodeID) }
    }
}
