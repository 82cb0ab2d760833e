import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage

/// An outsider that stole a space key (a member's backup, say) and pushes envelopes of its own,
/// sealed with it, to members: its author was never admitted, so no node may apply them.
struct Intruder {
    let keys: SigningKeyPair
    var head = FeedHead()
    var envelopes = 0

    init(seed: UInt64) { keys = SimKeys.signing(seed) }

    var replica: ReplicaID { ReplicaID(bytes: keys.publicKey.rawRepresentation) }
}

/// Membership churn through the real membership log: admins invite, remove (a removal and its
/// rekey are one control change) and change roles with the `Node` API, whatever the network
/// is doing, so partitioned admins rotate keys concurrently; a removed node knows it cannot
/// write; each admin's node heals on its own after a batch with control changes (rotates a key a
/// removed node holds, shares keys members lack). The invariants are in Invariants.swift.
extension Simulation {
    /// Whether `n` is a member of `s` as it sees it.
    func isMember(_ n: SimNode, of s: SpaceID) -> Bool {
        guard let node = n.node, let info = try? node.spaceInfo(s), info.role == .member else { return false }
        return info.members.contains { $0.key == n.publicKey && $0.isActive }
    }

    /// The up nodes that are admins of `s` as they see it.
    func upAdmins(_ s: SpaceID) -> [SimNode] {
        nodes.filter { n in
            n.isMember && n.isUp && isMember(n, of: s) && ((try? n.live.authority(s).admins.contains(n.publicKey)) ?? false)
        }
    }

    /// The members of `s` in `admin`'s view (itself included).
    func members(of s: SpaceID, seenBy admin: SimNode) -> [SimNode] {
        guard let info = try? admin.live.spaceInfo(s) else { return [] }
        let keys = Set(info.members.filter(\.isActive).map(\.key))
        return nodes.filter { keys.contains($0.publicKey) }
    }

    /// An admin invites a node that was never in the space; the node joins at once.
    func addMember() {
        let s = spaceIDs[below(spaceIDs.count)]
        let admins = upAdmins(s)
        guard !admins.isEmpty else { return }
        let a = admins[below(admins.count)]
        let candidates = (0..<config.members).filter { nodes[$0].isUp && !(everMembers[s]?.contains($0) ?? false) }
        guard !candidates.isEmpty else { return }
        let c = nodes[candidates[below(candidates.count)]]
        let invitation: Invitation
        do {
            invitation = try a.live.invite(space: s, invitee: c.nodeID, office: c.name, admin: below(3) == 0)
        } catch {
            fail("\(a.name): inviting \(c.name) to space \(s.hex) failed: \(error)")
            return
        }
        note(18, a.index, c.index)
        trace("\(a.name) invites \(c.name) to \(s.hex.prefix(6))")
        stats.adds += 1
        announce(a.index)
        do { try c.live.join(invitation) } catch {
            fail("\(c.name): joining space \(s.hex) failed: \(error)")
            return
        }
        everMembers[s, default: []].insert(c.index)
        renewSessions(of: c.index)
    }

    /// The simulated offices keep each space's creator an admin: concurrent demotions or
    /// removals of admins can otherwise leave a space with no admin at all, a gap of the
    /// authority rules (Docs/TESTING.md, Findings) that would then block its writers for good.
    /// An admin removes another member (and rotates the key, in the same control change).
    func removeMember() {
        let s = spaceIDs[below(spaceIDs.count)]
        let admins = upAdmins(s)
        guard !admins.isEmpty else { return }
        let a = admins[below(admins.count)]
        let creator = (try? a.live.authority(s))?.creator
        let targets = members(of: s, seenBy: a).filter { $0.index != a.index && $0.publicKey != creator }
        guard !targets.isEmpty else { return }
        let m = targets[below(targets.count)]
        do { try a.live.removeMember(space: s, member: m.nodeID) } catch {
            fail("\(a.name): removing \(m.name) from space \(s.hex) failed: \(error)")
            return
        }
        note(19, a.index, m.index)
        trace("\(a.name) removes \(m.name) from \(s.hex.prefix(6))")
        stats.removals += 1
        announce(a.index)
    }

    /// An admin makes a member an admin, or an admin (itself too) a plain member again.
    func changeRole() {
        let s = spaceIDs[below(spaceIDs.count)]
        let admins = upAdmins(s)
        guard !admins.isEmpty else { return }
        let a = admins[below(admins.count)]
        guard let seen = try? a.live.authority(s) else { return }
        let targets = members(of: s, seenBy: a).filter { $0.publicKey != seen.creator }
        guard !targets.isEmpty else { return }
        let m = targets[below(targets.count)]
        let admin = !seen.admins.contains(m.publicKey)
        // The node refuses to demote the last admin it knows of; so does the simulated client.
        if !admin && seen.admins.count < 2 { return }
        do { try a.live.setAdmin(space: s, member: m.nodeID, admin: admin) } catch {
            fail("\(a.name): making \(m.name) \(admin ? "an admin" : "a member") of space \(s.hex) failed: \(error)")
            return
        }
        note(20, a.index, m.index)
        trace("\(a.name) makes \(m.name) \(admin ? "an admin" : "a member") of \(s.hex.prefix(6))")
        stats.roleChanges += 1
        announce(a.index)
    }

    /// The intruder seals a change of its own with a key stolen from an up member and pushes it
    /// to that member (as a session with it would); a third of the time it is a control change
    /// making itself an admin. Members hold it (its author was never admitted) and never apply it.
    func intrude() {
        let s = spaceIDs[below(spaceIDs.count)]
        // Only members that hold the space's membership log: one that has not received its
        // genesis yet takes any control envelope (a finding, Docs/TESTING.md: an intruder then
        // blocks that member's feed everywhere).
        let victims = nodes.filter { n in
            n.isMember && n.isUp && isMember(n, of: s) && ((try? n.live.authority(s).hasLog) ?? false)
        }
        guard !victims.isEmpty else { return }
        let v = victims[below(victims.count)]
        guard let stolen = try? v.live.store.sealingKey(s), let document = try? v.live.spaceInfo(s)?.document else { return }
        var intruder = intruders[s] ?? Intruder(seed: config.seed ^ 0x1_7E0D_E500 &+ UInt64(spaceIDs.firstIndex(of: s)!))
        let control = below(3) == 0
        let seq = intruder.head.lastSequence + 1
        let me = intruder.keys.publicKey.nodeID
        let op: Operation =
            control
            ? .listAppend(doc: document, field: ControlEntry.field, value: ControlEntry.add(me, admin: true, keys: []).text)
            : .createDocument(kind: "หนังสือปลอม \(Workload.marker)")
        let change = Change(author: intruder.replica, seq: seq, startOp: seq, time: clock.wallMillis, deps: VersionVector(), ops: [op])
        let header = EnvelopeHeader(
            spaceID: s.bytes, author: intruder.keys.publicKey, seqStart: change.seq, seqEnd: change.seq,
            epoch: control ? ControlEntry.publicEpoch : stolen.epoch, previousHash: intruder.head.lastID)
        guard
            let e = try? Envelope.seal(
                plaintext: EnvelopePayload.encode(changes: [change]), header: header,
                key: control ? ControlKey.key(for: s) : stolen.key, signer: intruder.keys)
        else { return }
        intruder.head = FeedHead(lastSequence: change.seq, lastID: e.id)
        intruder.envelopes += 1
        intruders[s] = intruder
        stats.intruderEnvelopes += 1
        note(21, v.index)
        trace("intruder -> \(v.name) \(s.hex.prefix(6)) \(control ? "control" : "content")")
        do {
            let report = try v.live.receiveEnvelopes(space: s, [e])
            record(report, at: v)
        } catch {
            fail("\(v.name): receiving the intruder's envelope failed: \(error)")
        }
        announce(v.index)
    }
}
