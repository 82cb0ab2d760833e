import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// A change `author` makes by hand, skipping its own node's checks (a modified or hostile
/// node), sealed as the next envelope of its feed: in a control envelope when `control`, else
/// under `key` (its epoch `epoch`).
func forge(
    _ author: Node, space: SpaceID, ops: [SarabanCore.Operation], control: Bool, key: SymmetricKey? = nil, epoch: UInt32 = 0,
    after previous: Envelope? = nil
) throws -> Envelope {
    let mine = try envelopes(author, space).filter { $0.header.author == author.identity.publicKey }
    let head = previous ?? mine.last
    var deps = try author.store.clock(space: space)
    let seq = (head?.header.seqEnd ?? 0) + 1
    deps[author.replica] = 0
    let change = Change(author: author.replica, seq: seq, startOp: 1_000_000 + seq, time: 0, deps: deps, ops: ops)
    let header = EnvelopeHeader(
        spaceID: space.bytes, author: author.identity.publicKey, seqStart: seq, seqEnd: seq,
        epoch: control ? ControlEntry.publicEpoch : epoch, previousHash: head?.id ?? .zero)
    return try Envelope.seal(
        plaintext: EnvelopePayload.encode(changes: [change]), header: header,
        key: control ? ControlKey.key(for: space) : key!, signer: author.identity)
}

/// The control entries `author` appends to the space's log in one forged change.
func forgeControl(_ author: Node, space: SpaceID, _ entries: [ControlEntry], after previous: Envelope? = nil) throws -> Envelope {
    let doc = try #require(try author.spaceInfo(space)?.document)
    return try forge(
        author, space: space, ops: entries.map { .listAppend(doc: doc, field: ControlEntry.field, value: $0.text) }, control: true,
        after: previous)
}

func sealed(_ key: SymmetricKey, to n: NodeID) throws -> [UInt8] {
    try key.secret.withUnsafeBytes { try SealedBox.seal(Array($0), to: n.publicKey) }
}

/// Every envelope each node lacks from the others, until nothing moves.
func syncAll(_ nodes: [Node], _ space: SpaceID) throws {
    for _ in 0..<4 {
        for a in nodes { for b in nodes where a !== b { try exchange(a, b, space) } }
    }
}

@Suite struct AuthorityTests {
    /// A admin, B and X members of space "s", everyone caught up.
    func threeMembers(_ office: Office) throws -> (a: Node, b: Node, x: Node, space: SpaceID) {
        let a = try office.node("a")
        let b = try office.node("b")
        let x = try office.node("x")
        let s = try a.createSpace(name: "s").id
        try b.join(try Invitation.parse(try a.invite(space: s, invitee: b.nodeID, office: "บี").text))
        try x.join(try Invitation.parse(try a.invite(space: s, invitee: x.nodeID, office: "เอ็กซ์").text))
        try syncAll([a, b, x], s)
        return (a, b, x, s)
    }

    /// Issue 13's critical row: a removed member writes itself back in and plants a key for the
    /// next epoch sealed to everyone; before, the admin saw it as a member again and every node
    /// adopted the planted key at the next removal, so the removed node read what followed.
    @Test func aRemovedMemberCannotComeBackNorPlantTheNextKey() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, x, s) = try threeMembers(office)
        try a.removeMember(space: s, member: x.nodeID)
        try syncAll([a, b, x], s)
        #expect(try x.spaceInfo(s)?.members.contains { $0.key == x.identity.publicKey && $0.isActive } == false)
        // X's own node refuses to write membership now.
        #expect(throws: NodeError.self) { try x.invite(space: s, invitee: x.nodeID) }
        // A modified X forges it anyway: itself back in as an admin, and a planted key for epoch 2.
        let planted = SymmetricKey.generate()
        let current = try #require(try x.authority(s).keyRef)
        let reAdd = try forgeControl(x, space: s, [.add(x.nodeID, admin: true, keys: [])])
        for n in [a, b] {
            let r = try n.receiveEnvelopes(space: s, [reAdd])
            #expect(r.accepted.count == 1 && r.refusedChanges.count == 1, "\(r.refusedChanges)")
        }
        var entries: [ControlEntry] = [.rekey(epoch: 2, parent: current, commitment: KeyCommitment.commit(planted))]
        for n in [a, b, x] { entries.append(.key(epoch: 2, n.nodeID, box: try sealed(planted, to: n.nodeID))) }
        let plant = try forgeControl(x, space: s, entries, after: reAdd)
        for n in [a, b] {
            let r = try n.receiveEnvelopes(space: s, [plant])
            #expect(r.accepted.count == 1 && r.refusedChanges.count == 1, "\(r.refusedChanges)")
            #expect(try n.authority(s).refusedChanges == 2)
            #expect(try n.spaceInfo(s)?.members.contains { $0.key == x.identity.publicKey && $0.isActive } == false)
            #expect(try n.authority(s).admins == [a.identity.publicKey])
            #expect(try n.spaceInfo(s)?.epoch == 1)
        }
        // At the next rotation every node adopts A's key, not the planted one; X reads nothing new.
        try a.removeMember(space: s, member: b.nodeID)
        let secret = try a.createDocument(fields: [("subject", "หลังการหมุนกุญแจ")], space: s)
        try syncAll([a, b, x], s)
        #expect(try a.store.spaceKey(s, epoch: 2).map { KeyCommitment.ref(of: $0) } != KeyCommitment.ref(of: planted))
        #expect(throws: NodeError.self) { try x.document(secret) }
        #expect(try x.store.spaceKey(s, epoch: 2) == nil)
    }

    /// A current member (not an admin) cannot plant a future key or make itself an admin.
    @Test func aMemberCannotPlantAKeyOrMakeItselfAdmin() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, x, s) = try threeMembers(office)
        let planted = SymmetricKey.generate()
        let current = try #require(try b.authority(s).keyRef)
        var entries: [ControlEntry] = [.rekey(epoch: 1, parent: current, commitment: KeyCommitment.commit(planted))]
        for n in [a, b, x] { entries.append(.key(epoch: 1, n.nodeID, box: try sealed(planted, to: n.nodeID))) }
        let plant = try forgeControl(b, space: s, entries)
        let r = try a.receiveEnvelopes(space: s, [plant])
        #expect(r.refusedChanges.count == 1 && r.refusedChanges[0].reason.contains("not an admin"))
        #expect(try a.spaceInfo(s)?.epoch == 0)
        #expect(try a.store.spaceKey(s, epoch: 1) == nil)
        let promote = try forgeControl(x, space: s, [.role(x.nodeID, admin: true)])
        #expect(try a.receiveEnvelopes(space: s, [promote]).refusedChanges.count == 1)
        #expect(try a.authority(s).admins == [a.identity.publicKey])
        // Through the node, the same is refused before anything is written (exit 68).
        #expect { try b.setAdmin(space: s, member: b.nodeID, admin: true) } throws: { ($0 as? NodeError)?.code == .refused }
    }

    /// Issue 13: two admins remove two different members while apart. Before, both nodes said
    /// "epoch 1" with different keys, each removed member read the other remover's later
    /// documents, and the honest members' feeds blocked as undecryptable for good.
    @Test func concurrentRemovalsConvergeAndLockBothRemovedMembersOut() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let x = try office.node("x")
        let y = try office.node("y")
        let s = try a.createSpace(name: "s").id
        try b.join(try Invitation.parse(try a.invite(space: s, invitee: b.nodeID, admin: true).text))
        try x.join(try Invitation.parse(try a.invite(space: s, invitee: x.nodeID).text))
        try y.join(try Invitation.parse(try a.invite(space: s, invitee: y.nodeID).text))
        try syncAll([a, b, x, y], s)
        #expect(try b.authority(s).admins.contains(b.identity.publicKey))
        // Apart: A removes X, B removes Y, and each writes in its own epoch 1.
        try a.removeMember(space: s, member: x.nodeID)
        try b.removeMember(space: s, member: y.nodeID)
        let fromA = try a.createDocument(fields: [("subject", "A หลังแยก")], space: s)
        let fromB = try b.createDocument(fields: [("subject", "B หลังแยก")], space: s)
        // The admins meet: both removals known, one key per epoch, nothing blocked.
        try syncAll([a, b], s)
        for n in [a, b] {
            #expect(try n.document(fromA).display("subject") == "A หลังแยก")
            #expect(try n.document(fromB).display("subject") == "B หลังแยก")
            #expect(try n.authority(s).held == 0)
            #expect(try n.authority(s).leakedTo.isEmpty)
            #expect(try n.spaceInfo(s)!.members.filter(\.isActive).map(\.key).sorted(by: SigningPublicKey.precedes)
                == [a.identity.publicKey, b.identity.publicKey].sorted(by: SigningPublicKey.precedes))
        }
        let epoch = try #require(try a.spaceInfo(s)?.epoch)
        let epochB = try b.spaceInfo(s)?.epoch
        #expect(epoch >= 2 && epoch == epochB)
        for e in 0...epoch {
            let ka = try #require(try a.store.spaceKey(s, epoch: e))
            let kb = try #require(try b.store.spaceKey(s, epoch: e))
            #expect(KeyCommitment.ref(of: ka) == KeyCommitment.ref(of: kb), "epoch \(e)")
        }
        // Written after both removals are known: neither removed node can read it.
        let laterA = try a.createDocument(fields: [("subject", "A หลังรวม")], space: s)
        let laterB = try b.createDocument(fields: [("subject", "B หลังรวม")], space: s)
        try syncAll([a, b, x, y], s)
        for removed in [x, y] {
            #expect(throws: NodeError.self) { try removed.document(laterA) }
            #expect(throws: NodeError.self) { try removed.document(laterB) }
            #expect(try removed.store.spaceKey(s, epoch: epoch) == nil)
        }
        #expect(try b.document(laterA).display("subject") == "A หลังรวม")
        #expect(try a.document(laterB).display("subject") == "B หลังรวม")
    }

    /// Issue 13: any member granted itself a clearance and then read a ลับ letter.
    @Test func aSelfGrantedClearanceIsRefusedLocallyAndOnReceipt() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, _, s) = try threeMembers(office)
        #expect { try b.setMemberClearance(s, member: b.nodeID, to: .confidential) } throws: {
            ($0 as? NodeError)?.code == .refused && ($0 as? NodeError)?.message.contains("admin") == true
        }
        #expect { try b.designateRelay(s, relay: b.nodeID) } throws: { ($0 as? NodeError)?.code == .refused }
        // A modified B writes the clearance anyway: every node refuses the change.
        let doc = try #require(try b.spaceInfo(s)?.document)
        let key = try #require(try b.store.sealingKey(s))
        let grant = try forge(
            b, space: s, ops: [.set(doc: doc, field: "cleared.\(b.nodeID.text)", value: .string("ลับ"), pred: [])],
            control: false, key: key.key, epoch: key.epoch)
        let r = try a.receiveEnvelopes(space: s, [grant])
        #expect(r.accepted.count == 1 && r.refusedChanges.count == 1)
        #expect(try a.memberClearance(b.nodeID, in: s) == .none)
    }

    /// Issue 13: a partner made a space named after the id of the victim's own space.
    @Test func aSpaceNameNeverStandsForAnotherSpacesID() throws {
        let office = Office()
        defer { office.close() }
        let victim = try office.node("v")
        let partner = try office.node("p")
        let own = try victim.createSpace(name: "ของเรา").id
        let lure = try partner.createSpace(name: own.hex)
        let inv = try partner.invite(space: lure.id, invitee: victim.nodeID)
        #expect { try victim.join(try Invitation.parse(inv.text)) } throws: {
            ($0 as? NodeError)?.code == .refused && ($0 as? NodeError)?.message.contains(own.hex) == true
        }
        #expect(try victim.resolveSpace(own.hex).id == own)
        // Under another local name it may join; the id still means the victim's own space.
        try victim.join(try Invitation.parse(inv.text), as: "ของพันธมิตร")
        #expect(try victim.resolveSpace(own.hex).id == own)
        #expect { try victim.createSpace(name: "ของเรา") } throws: { ($0 as? NodeError)?.code == .invalidArgument }
    }

    /// Issue 13: an office invited early refused other offices' envelopes as notAMember when they
    /// arrived before the membership that admits them; now they are held, then applied.
    @Test func envelopesBeforeTheirMembershipAreHeldThenApplied() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, _, s) = try threeMembers(office)
        let c = try office.node("c")
        try c.join(try Invitation.parse(try a.invite(space: s, invitee: c.nodeID).text))
        let fromC = try c.createDocument(fields: [("subject", "จาก ค")], space: s)
        // B gets C's envelopes before A's change that adds C.
        let early = try exchange(c, b, s)
        #expect(early.held.count >= 1 && early.refused.isEmpty)
        #expect(throws: NodeError.self) { try b.document(fromC) }
        #expect(try b.authority(s).held >= 1)
        let admitted = try exchange(a, b, s)
        #expect(admitted.released >= 1)
        #expect(try b.document(fromC).display("subject") == "จาก ค")
        #expect(try b.authority(s).held == 0)
    }
}
