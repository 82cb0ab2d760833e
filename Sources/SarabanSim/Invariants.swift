import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage

/// The invariants (Docs/TESTING.md), read from the nodes' databases through the `Node` and
/// `Store` APIs: during the run, at every restart, and after the heal.
extension Simulation {
    /// Refusal codes that never come from an honest network: a fork, contents that do not match
    /// their header, a change crossing spaces, and (on a clean stream) tampered bytes.
    func isBad(_ code: EnvelopeError.Code) -> Bool {
        switch code {
        case .fork, .invalidContents, .wrongSpace: true
        case .tampered: !rawFaultsHappened
        default: false
        }
    }

    /// Checked every 16 steps: a member never applies a change whose envelope it does not hold.
    func checkDuring() {
        for n in nodes where n.isUp && n.isMember {
            guard let carried = try? n.live.carriedSpaces() else {
                fail("\(n.name): reading its spaces failed")
                continue
            }
            for s in spaceIDs {
                guard let vector = carried[s] else { continue }
                do {
                    let clock = try n.live.store.clock(space: s)
                    if !vector.replicaVector.dominates(clock) {
                        fail("\(n.name): in space \(s.hex) applied \(clock) beyond the envelopes it holds \(vector.replicaVector)")
                    }
                } catch {
                    fail("\(n.name): reading its clock failed: \(error)")
                }
            }
        }
    }

    /// After a restart: the node still holds every change it acknowledged to its client and every
    /// envelope it acknowledged to a peer (a power loss may lose the latter: it fetches them again).
    func checkAfterRestart(_ n: SimNode) {
        guard let node = n.node else { return }
        for s in spaceIDs {
            let mine = acked.filter { $0.author == n.index && $0.space == s }
            if !mine.isEmpty, let clock = try? node.store.clock(space: s) {
                for w in mine where !clock.includes(w.change) {
                    fail("acknowledged write \(w.change) lost by its author \(n.name) in a \(lostPower.contains(n.index) ? "power loss" : "crash")")
                    break
                }
            }
            if let a = n.acknowledged[s], let v = try? node.feedVector(space: s), !v.dominates(a) {
                fail("\(n.name): acknowledged envelopes of space \(s.hex) to a peer (\(a)) and lost them in a crash (holds \(v))")
            }
        }
    }

    /// What one node holds of one space at the end.
    struct Holding {
        var node: SimNode
        var roster: Roster
        var vector: FeedVector
        var authority: SpaceAuthority
    }

    /// Checked after healing (see Docs/TESTING.md for each).
    func checkFinal() {
        checkDuring()
        for s in spaceIDs { checkSpace(s) }
        checkRelay()
        for n in nodes {
            let bad = n.refused.filter { isBad($0.key) }
            if !bad.isEmpty { fail("\(n.name) refused envelopes an honest network never sends: \(bad)") }
            stats.refusals += n.refused.values.reduce(0, +)
            // A removed node may keep changes whose past it can no longer read.
            let removed = spaceIDs.contains { everMembers[$0]?.contains(n.index) == true && !isMember(n, of: $0) }
            if !removed, let pending = try? n.node?.store.stats().pendingChanges, pending > 0 {
                fail("\(n.name): \(pending) changes still wait for their causal past")
            }
        }
        for inv in extraInvariants {
            for f in inv.check(self) { fail("\(inv.name): \(f)") }
        }
    }

    /// The nodes that see themselves as current members of `s` (a removed node that no peer
    /// told of its removal may still think it is one).
    func currentMembers(_ s: SpaceID) -> [SimNode] {
        nodes.filter { $0.isMember && $0.isUp && isMember($0, of: s) }
    }

    func checkSpace(_ s: SpaceID) {
        let space = "space \(s.hex.prefix(8))"
        var holdings: [Holding] = []
        for n in nodes where n.isUp && (n.role == .relay || (try? n.live.spaceInfo(s)) != nil) {
            do {
                holdings.append(
                    Holding(node: n, roster: try n.live.store.roster(s), vector: try n.live.feedVector(space: s), authority: try n.live.authority(s)))
            } catch {
                fail("\(n.name): reading \(space) failed: \(error)")
                return
            }
        }
        // The roster of the node that judged the most control changes; the current members are
        // its members. Removed nodes may hold less (nobody has to tell them).
        if config.trace {
            for h in holdings {
                trace("roster of \(h.node.name) in \(space): " + h.roster.accepted.map { c in "\(nodeName(c.author))/\(c.id.seq): " + c.entries.map { String($0.text.prefix(40)) }.joined(separator: " | ") }.joined(separator: " ;; "))
            }
        }
        let informed = holdings.filter { $0.node.role == .relay || $0.roster.current.isMember($0.node.publicKey) }
        guard let judge = informed.max(by: { $0.roster.accepted.count < $1.roster.accepted.count }) else { return }
        let roster = judge.roster.current
        var current: [Holding] = []
        for key in roster.members {
            guard let h = holdings.first(where: { $0.node.publicKey == key }) else {
                fail("\(space): \(nodeName(key)) is a member in the roster but does not carry the space")
                continue
            }
            if !isMember(h.node, of: s) { fail("\(space): \(h.node.name) is a member in the roster but does not see itself as one") }
            current.append(h)
        }
        // One roster for the current members and the relay: members, admins, and one key per epoch.
        guard let reference = current.first ?? holdings.first(where: { $0.node.role == .relay }) else { return }
        for h in current + holdings.filter({ $0.node.role == .relay }) {
            let r = h.roster.current
            if r.members != roster.members || r.admins != roster.admins {
                fail("\(space): \(h.node.name) and \(judge.node.name) disagree on the members or admins")
            }
            if r.canonical != roster.canonical {
                fail("\(space): one key per epoch: \(h.node.name) holds \(r.canonical), \(judge.node.name) \(roster.canonical)")
            }
            if h.vector != reference.vector {
                fail("\(space): \(h.node.name) holds \(h.vector), \(reference.node.name) holds \(reference.vector)")
            }
        }
        finalMembers[s] = current.map(\.node)
        // The simulated offices never demote or remove a space's creator (Membership.swift), so
        // it always keeps an admin.
        if roster.admins.isEmpty { fail("\(space): left without an admin: nobody can change its membership again") }
        if !roster.leakedTo.isEmpty {
            fail("\(space): removed nodes \(roster.leakedTo.map(nodeName)) still hold the current key")
        }
        stats.epochs += roster.canonical.count - 1
        stats.concurrentRekeys += roster.keys.values.filter { $0.epoch > 0 }.count - (roster.canonical.count - 1)
        checkReadsEverything(s, current)
        if let reader = current.first?.node { checkRemovedMembers(s, roster: judge.roster, reader: reader) }
        checkAdmission(s, roster: roster, current + holdings.filter { $0.node.role == .relay })
        checkRogues(s, holdings: current + holdings.filter { $0.node.role == .relay })
        checkAcknowledged(s, current: current.map(\.node), holdings: current + holdings.filter { $0.node.role == .relay })
    }

    /// Every current member reads everything: it applied all it holds, holds nothing back,
    /// seals all it wrote, and its documents equal the others'.
    func checkReadsEverything(_ s: SpaceID, _ current: [Holding]) {
        let space = "space \(s.hex.prefix(8))"
        let heldByIntruder = intruders[s].map { $0.envelopes } ?? 0
        var reference: (String, VersionVector, [DocID: DocumentView])?
        let docs = Array(Set(workloadDocs[s] ?? []).union(registerDocs.filter { $0.key.space == s }.values)).sorted()
        for h in current {
            let a = h.authority
            if let w = a.sealWait { fail("\(space): \(h.node.name) still waits to seal: \(w)") }
            if a.unsealed > 0 { fail("\(space): \(h.node.name) has \(a.unsealed) changes never sealed (its feed is blocked)") }
            if a.held > heldByIntruder + toleratedHeld {
                fail("\(space): \(h.node.name) still holds \(a.held) envelopes back (unadmitted authors or missing keys)")
            }
            guard let clock = try? h.node.live.store.clock(space: s) else { continue }
            if clock != h.vector.replicaVector {
                fail("\(space): \(h.node.name) applied \(clock) but holds the envelopes of \(h.vector.replicaVector)")
            }
            var views: [DocID: DocumentView] = [:]
            for d in docs { views[d] = (try? h.node.live.store.document(d))??.view }
            if let (name, refClock, refViews) = reference {
                if clock != refClock { fail("\(space): \(h.node.name) clock \(clock) != \(name) clock \(refClock)") }
                if views != refViews {
                    let differing = docs.filter { views[$0] != refViews[$0] }
                    fail("\(space): \(h.node.name) and \(name) differ on documents \(differing.prefix(3))")
                }
            } else {
                reference = (h.node.name, clock, views)
            }
        }
    }

    /// No removed member reads anything sealed by an author that knew of its removal (the
    /// change's causal past holds it): none of the keys on its disk opens such an envelope, and
    /// it does not hold the current key.
    func checkRemovedMembers(_ s: SpaceID, roster: Roster, reader: SimNode) {
        let space = "space \(s.hex.prefix(8))"
        let removed = (everMembers[s] ?? []).sorted().map { nodes[$0] }.filter { !roster.current.isMember($0.publicKey) }
        guard !removed.isEmpty else { return }
        let all: [Envelope]
        let keys: [KeyRef: (epoch: UInt32, key: SymmetricKey)]
        do {
            all = try reader.live.envelopes(space: s, after: FeedVector(), limit: FetchLimit(envelopes: .max, bytes: .max)).envelopes
            keys = try reader.live.store.spaceKeys(s)
        } catch {
            fail("\(reader.name): reading \(space) failed: \(error)")
            return
        }
        var rings: [Int: [KeyRef: (epoch: UInt32, key: SymmetricKey)]] = [:]
        for r in removed {
            guard let ring = try? r.live.store.spaceKeys(s) else { continue }
            rings[r.index] = ring
            if let k = roster.current.currentKey, ring[k] != nil {
                fail("\(space): \(r.name), removed, holds the current key \(k)")
            }
        }
        for e in all where e.header.epoch != ControlEntry.publicEpoch {
            guard let opened = keys.values.filter({ $0.epoch == e.header.epoch }).lazy.compactMap({ try? EnvelopePayload.open(e, key: $0.key) }).first,
                let last = opened.changes.last
            else { continue }
            let past = roster.state(inPastOf: ChangeContext(last))
            for r in removed where !past.isMember(r.publicKey) && !past.rights(of: r.publicKey).isEmpty {
                for (ref, k) in rings[r.index] ?? [:] where k.epoch == e.header.epoch {
                    if (try? e.open(key: k.key)) != nil {
                        fail("\(space): \(r.name) opens envelope \(e.id) of \(nodeName(e.header.author)) (epoch \(e.header.epoch)) sealed after its removal, with key \(ref)")
                    }
                }
            }
        }
    }

    /// Nothing a non-admin did to the membership takes effect, on any current member or the
    /// relay: no rogue change is in a roster's accepted log, no key a rogue planted is a key of
    /// the space or on a member's disk, the admins are nodes an admin made admins, and no node an
    /// admin removed is a member again (the simulated admins never invite a node twice).
    func checkRogues(_ s: SpaceID, holdings: [Holding]) {
        let space = "space \(s.hex.prefix(8))"
        let rogue = rogueChanges.filter { $0.space == s }
        let admins = everAdmins[s] ?? []
        let removed = removedByAdmins[s] ?? []
        for h in holdings {
            let accepted = Set(h.roster.accepted.map(\.id))
            for c in rogue where accepted.contains(c.change) {
                fail("\(space): \(h.node.name) accepted \(nodes[c.author].name)'s membership change \(c.change) (\(c.text)), made with no right to it")
            }
            let ring = h.node.isMember ? ((try? h.node.live.store.spaceKeys(s)) ?? [:]) : [:]
            for c in rogue {
                guard let k = c.plantedKey else { continue }
                if h.roster.current.keys[k] != nil || ring[k] != nil && h.node.index != c.author {
                    fail("\(space): \(h.node.name) took the key \(k) that \(nodes[c.author].name) planted")
                }
            }
            for key in h.roster.current.admins {
                guard let n = nodes.first(where: { $0.publicKey == key }), admins.contains(n.index) else {
                    fail("\(space): \(h.node.name) has \(nodeName(key)) as an admin, whom no admin made one")
                    continue
                }
            }
            for i in removed where h.roster.current.isMember(nodes[i].publicKey) {
                fail("\(space): \(h.node.name) has \(nodes[i].name) as a member again after an admin removed it")
            }
        }
    }

    /// Every envelope any node stored (relay included) comes from an author the roster admits
    /// for its epoch; an intruder's are held by members and never stored or applied.
    func checkAdmission(_ s: SpaceID, roster: Roster.State, _ holdings: [Holding]) {
        let space = "space \(s.hex.prefix(8))"
        for h in holdings {
            for (author, _) in h.vector.entries {
                let admitted = roster.creator == author || !roster.rights(of: author).isEmpty
                if !admitted {
                    fail("\(space): \(h.node.name) stored envelopes of \(nodeName(author)), whom the roster never admitted")
                }
            }
        }
    }

    /// Jepsen set-full: every change a current member acknowledged to its client is held by
    /// every current member and the relay and applied on every current member, and every
    /// acknowledged list append is in its list.
    func checkAcknowledged(_ s: SpaceID, current: [SimNode], holdings: [Holding]) {
        let space = "space \(s.hex.prefix(8))"
        let clocks = Dictionary(uniqueKeysWithValues: current.compactMap { n in (try? n.live.store.clock(space: s)).map { (n.index, $0) } })
        for w in acked where w.space == s {
            let author = nodes[w.author]
            // A removed node's writes (made before it learned of its removal) reach the others
            // only through a member linked to it directly: the relay stops serving it, and
            // what it never sealed stays on it. Whatever of them arrived is checked above.
            if !current.contains(where: { $0 === author }) { continue }
            for h in holdings where h.vector[author.publicKey] < w.change.seq {
                fail("acknowledged write \(w.change) of \(author.name) missing on \(h.node.name) in \(space) (holds \(h.vector[author.publicKey]))")
                break
            }
            for n in current where !(clocks[n.index]?.includes(w.change) ?? false) {
                fail("acknowledged write \(w.change) of \(author.name) not applied on \(n.name) in \(space)")
                break
            }
        }
        for a in ackedAppends where a.space == s && current.contains(where: { $0.index == a.author }) {
            for n in current {
                let list = (try? n.live.store.document(a.doc))??.lists[a.field]?.entries ?? []
                if !list.contains(where: { $0.value == .string(a.value) }) {
                    fail("acknowledged list append '\(a.value)' missing from \(n.name)")
                    break
                }
            }
        }
    }

    /// The relay holds no key, no document, and no plaintext in any envelope it stored.
    func checkRelay() {
        let relay = nodes[relayIndex]
        guard let node = relay.node else { return }
        for s in spaceIDs {
            if let keys = try? node.store.spaceKeys(s), !keys.isEmpty { fail("the relay holds a key of space \(s.hex)") }
            let all = (try? node.envelopes(space: s, after: FeedVector(), limit: FetchLimit(envelopes: .max, bytes: .max)).envelopes) ?? []
            for e in all where Self.containsPlaintext(e.bytes) {
                fail("the relay holds plaintext in envelope \(e.id)")
                break
            }
        }
        if let docs = try? node.documents(), !docs.isEmpty { fail("the relay holds \(docs.count) documents") }
    }
}
