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
        let admin = below(3) == 0
        do {
            invitation = try a.live.invite(space: s, invitee: c.nodeID, office: c.name, admin: admin)
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
        if admin { everAdmins[s, default: []].insert(c.index) }
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
        removedByAdmins[s, default: []].insert(m.index)
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
        if admin { everAdmins[s, default: []].insert(m.index) }
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

/// A membership change a rogue node signed without the right to it: no node may let it take effect.
struct RogueChange {
    var space: SpaceID
    var change: ChangeID
    var author: Int
    /// The key the rogue's rekey committed to (a planted key), if it wrote one.
    var plantedKey: KeyRef?
    var text: String
}

extension Simulation {
    /// A member that is not an admin in its own view (or a node removed from the space) tries to
    /// change the membership: first through its node, which must refuse it, then as a modified
    /// node that skips its own checks (``SarabanStorage/StoreTestHooks/skipsLocalAuthority``):
    /// it signs a control change that promotes or re-adds itself, demotes an admin, or removes a
    /// member and rotates to a key of its own, and pushes it to its peers like any other write.
    /// The change's causal past is what the rogue holds, in which it is no admin, so every node's
    /// real receive path must refuse it (Invariants.swift: `checkRogues`).
    func rogueMembership() {
        var candidates: [(SpaceID, SimNode)] = []
        for s in spaceIDs {
            for n in nodes where n.isMember && n.isUp && (try? n.live.spaceInfo(s)) != nil {
                if let a = try? n.live.authority(s), a.hasLog, !a.admins.contains(n.publicKey) { candidates.append((s, n)) }
            }
        }
        guard !candidates.isEmpty else { return }
        let (s, r) = candidates[below(candidates.count)]
        let others = (0..<config.members).filter { $0 != r.index }.map { nodes[$0] }
        guard !others.isEmpty, let doc = try? r.live.spaceInfo(s)?.document else { return }
        let victim = others[below(others.count)]
        let kind = below(4)
        // Through its own node: refused.
        do {
            switch kind {
            case 0: try r.live.setAdmin(space: s, member: r.nodeID, admin: true)
            case 1: _ = try r.live.invite(space: s, invitee: victim.nodeID, office: victim.name, admin: true)
            case 2: try r.live.setAdmin(space: s, member: victim.nodeID, admin: false)
            default: try r.live.removeMember(space: s, member: victim.nodeID)
            }
            fail("\(r.name), no admin of space \(s.hex.prefix(8)) in its own view, changed its membership through its node")
            return
        } catch {}
        stats.rogueRefusedLocally += 1
        // As a modified node.
        var entries: [ControlEntry]
        var planted: KeyRef?
        switch kind {
        case 0, 1:
            entries = [.add(r.nodeID, admin: true, keys: [])]
        case 2:
            entries = [.role(victim.nodeID, admin: false)]
        default:
            guard let roster = try? r.live.store.roster(s), let epoch = roster.current.epoch, let parent = roster.current.currentKey
            else { return }
            let key = SimKeys.space(config.seed &+ UInt64(stats.rogueChanges) &* 7919)
            guard let box = try? key.secret.withUnsafeBytes({ k throws(CryptoError) in try SealedBox.seal(Array(k), to: r.publicKey) })
            else { return }
            planted = KeyCommitment.ref(of: key)
            entries = [
                .remove(victim.nodeID), .rekey(epoch: epoch + 1, parent: parent, commitment: KeyCommitment.commit(key)),
                .key(epoch: epoch + 1, r.nodeID, box: box),
            ]
        }
        let hooks = self.hooks
        hooks.skipsLocalAuthority = true
        defer { hooks.skipsLocalAuthority = false }
        let time = clock.wallMillis
        let written: Change?
        do {
            written = try r.live.store.change(space: s, signer: r.keys, time: time) { tx, docs in
                for e in entries { try tx.append(doc, field: ControlEntry.field, value: e.text, in: &docs) }
            }.change
        } catch {
            // A removed node may no longer seal at all: that is a refusal too.
            trace("\(r.name) (rogue) could not write in \(s.hex.prefix(6)): \(error)")
            return
        }
        guard let c = written else { return }
        let text = entries.map { String($0.text.prefix(24)) }.joined(separator: " | ")
        rogueChanges.append(RogueChange(space: s, change: c.id, author: r.index, plantedKey: planted, text: text))
        stats.rogueChanges += 1
        note(23, r.index, victim.index)
        trace("\(r.name) (rogue) signs \(text) in \(s.hex.prefix(6))")
        announce(r.index)
    }
}
