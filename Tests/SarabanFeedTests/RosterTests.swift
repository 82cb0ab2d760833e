import SarabanCore
import SarabanCrypto
import Testing

@testable import SarabanFeed

/// A node writing control changes by hand: its key, its replica id, what it has seen.
struct ControlWriter {
    let keys: SigningKeyPair
    var seq: UInt64 = 0
    /// The changes (of others) this node has seen: its causal past.
    var seen = VersionVector()

    init(_ n: UInt8) { keys = try! SigningKeyPair(seed: SecureBytes([UInt8](repeating: n, count: 32))) }

    var id: NodeID { keys.publicKey.nodeID }
    var replica: ReplicaID { ReplicaID(bytes: keys.publicKey.rawRepresentation) }

    mutating func make(_ entries: [ControlEntry]) -> ControlChange {
        seq += 1
        let ctx = ChangeContext(change: ChangeID(author: replica, seq: seq), time: 0, deps: seen)
        return ControlChange(author: keys.publicKey, past: ctx, entries: entries)
    }

    /// Has now seen `c` (and everything `c` had seen).
    mutating func see(_ c: ControlChange) {
        seen.merge(c.past.deps)
        if c.past.change.author != replica { seen[c.past.change.author] = max(seen[c.past.change.author], c.past.change.seq) }
    }

    func seal(_ key: SymmetricKey, to n: NodeID) -> [UInt8] {
        try! key.secret.withUnsafeBytes { try SealedBox.seal(Array($0), to: n.publicKey) }
    }
}

/// A space made by `admin`: its id, the genesis change and the epoch-0 key.
func makeSpace(_ admin: inout ControlWriter) -> (space: SpaceID, genesis: ControlChange, key: SymmetricKey) {
    let salt = [UInt8](repeating: 5, count: 16)
    let key = SymmetricKey.generate()
    let space = SpaceBinding.spaceID(creator: admin.keys.publicKey, salt: salt)
    let g = admin.make([.genesis(creator: admin.id, commitment: KeyCommitment.commit(key), salt: salt)])
    return (space, g, key)
}

/// A rekey to `epoch` after `parent`, sealed to `members`, removing `removed`.
func rekey(
    _ w: inout ControlWriter, epoch: UInt32, parent: KeyRef, members: [ControlWriter], removing removed: [ControlWriter] = []
) -> (change: ControlChange, key: SymmetricKey) {
    let key = SymmetricKey.generate()
    var entries: [ControlEntry] = removed.map { .remove($0.id) }
    entries.append(.rekey(epoch: epoch, parent: parent, commitment: KeyCommitment.commit(key)))
    for m in members { entries.append(.key(epoch: epoch, m.id, box: w.seal(key, to: m.id))) }
    return (w.make(entries), key)
}

@Suite struct RosterTests {
    @Test func genesisAddRemoveAndRights() throws {
        var a = ControlWriter(1)
        let b = ControlWriter(2)
        let c = ControlWriter(3)
        let (space, g, k0) = makeSpace(&a)
        var r = Roster(space: space)
        #expect(r.receive(g) == nil)
        let add = a.make([.add(b.id, admin: false, keys: [KeyCommitment.ref(of: k0)]), .add(c.id, admin: false, keys: [KeyCommitment.ref(of: k0)])])
        #expect(r.receive(add) == nil)
        #expect(r.current.members == [a.keys.publicKey, b.keys.publicKey, c.keys.publicKey])
        #expect(r.current.admins == [a.keys.publicKey])
        #expect(r.current.mayWrite(c.keys.publicKey, epoch: 0))
        let (rk, k1) = rekey(&a, epoch: 1, parent: KeyCommitment.ref(of: k0), members: [a, b], removing: [c])
        #expect(r.receive(rk) == nil)
        #expect(r.current.epoch == 1)
        #expect(r.current.currentKey == KeyCommitment.ref(of: k1))
        #expect(!r.current.isMember(c.keys.publicKey))
        #expect(r.current.rights(of: c.keys.publicKey) == [0])
        #expect(r.current.rights(of: b.keys.publicKey) == [0, 1])
        #expect(r.current.leakedTo.isEmpty)
    }

    @Test func aRemovedMemberCannotReAddItselfOrPlantAKey() throws {
        var a = ControlWriter(1)
        var x = ControlWriter(4)
        let (space, g, k0) = makeSpace(&a)
        var r = Roster(space: space)
        r.receive(g)
        let add = a.make([.add(x.id, admin: false, keys: [KeyCommitment.ref(of: k0)])])
        r.receive(add)
        x.see(g)
        x.see(add)
        let (rk, _) = rekey(&a, epoch: 1, parent: KeyCommitment.ref(of: k0), members: [a], removing: [x])
        r.receive(rk)
        // The removed node writes, in its old past (which it can always claim), itself back in and
        // a planted key for the next epoch sealed to everyone.
        let readd = x.make([.add(x.id, admin: true, keys: [])])
        #expect(r.receive(readd) != nil)
        let (plant, _) = rekey(&x, epoch: 1, parent: KeyCommitment.ref(of: k0), members: [a, x])
        #expect(r.receive(plant)?.message.contains("not an admin") == true)
        let (future, _) = rekey(&x, epoch: 2, parent: KeyCommitment.ref(of: k0), members: [a, x])
        #expect(r.receive(future) != nil)
        #expect(!r.current.isMember(x.keys.publicKey))
        #expect(r.current.epoch == 1)
        #expect(r.current.holders.values.allSatisfy { !$0.contains(x.keys.publicKey) || $0 == [a.keys.publicKey, x.keys.publicKey] })
        #expect(!r.current.mayWrite(x.keys.publicKey, epoch: 1))
    }

    @Test func aMemberCannotMakeItselfAdminOrDesignateARelay() throws {
        var a = ControlWriter(1)
        var m = ControlWriter(2)
        let (space, g, k0) = makeSpace(&a)
        var r = Roster(space: space)
        r.receive(g)
        let add = a.make([.add(m.id, admin: false, keys: [KeyCommitment.ref(of: k0)])])
        r.receive(add)
        m.see(g)
        m.see(add)
        #expect(r.receive(m.make([.role(m.id, admin: true)])) != nil)
        #expect(r.receive(m.make([.relay(m.id, add: true)])) != nil)
        #expect(r.current.admins == [a.keys.publicKey])
        #expect(r.current.relays.isEmpty)
    }

    @Test func rekeysMustFollowTheirPastAndSealToEveryRemainingMember() throws {
        var a = ControlWriter(1)
        let b = ControlWriter(2)
        let (space, g, k0) = makeSpace(&a)
        var r = Roster(space: space)
        r.receive(g)
        r.receive(a.make([.add(b.id, admin: false, keys: [KeyCommitment.ref(of: k0)])]))
        let k0r = KeyCommitment.ref(of: k0)
        #expect(r.receive(rekey(&a, epoch: 2, parent: k0r, members: [a, b]).change) != nil)  // skips an epoch
        #expect(r.receive(rekey(&a, epoch: 1, parent: .committed(7), members: [a, b]).change) != nil)  // wrong parent
        #expect(r.receive(rekey(&a, epoch: 1, parent: k0r, members: [a]).change) != nil)  // b left out
        #expect(r.receive(a.make([.remove(b.id)])) != nil)  // removal without rekey
        #expect(r.current.epoch == 0)
        #expect(r.receive(rekey(&a, epoch: 1, parent: k0r, members: [a, b]).change) == nil)  // plain rotation
        #expect(r.current.epoch == 1)
    }

    @Test func aGenesisMustBindToTheSpace() throws {
        var a = ControlWriter(1)
        var intruder = ControlWriter(9)
        let (space, _, _) = makeSpace(&a)
        var r = Roster(space: space)
        let fake = intruder.make([
            .genesis(creator: intruder.id, commitment: [UInt8](repeating: 1, count: 32), salt: [UInt8](repeating: 5, count: 16))
        ])
        #expect(r.receive(fake) != nil)
        #expect(!r.current.hasGenesis)
        // A legacy genesis only from the creator named by the membership document.
        var legacy = Roster(space: space, legacyCreator: a.replica)
        #expect(legacy.receive(intruder.make([.genesisLegacy(creator: intruder.id, epoch: 1)])) != nil)
        #expect(legacy.receive(a.make([.genesisLegacy(creator: a.id, epoch: 1)])) == nil)
        #expect(legacy.current.canonical == [.legacy(0), .legacy(1)])
    }

    /// Two admins each remove a different member while apart: one key per epoch everywhere,
    /// the roster flags the leak, a rekey by either admin heals it, and the outcome is the same
    /// whatever order the changes arrive in.
    @Test func concurrentRemovalsConvergeToOneKeyPerEpoch() throws {
        var a = ControlWriter(1)
        var b = ControlWriter(2)
        let x = ControlWriter(3)
        let y = ControlWriter(4)
        let (space, g, k0) = makeSpace(&a)
        let k0r = KeyCommitment.ref(of: k0)
        let add = a.make([
            .add(b.id, admin: true, keys: [k0r]), .add(x.id, admin: false, keys: [k0r]), .add(y.id, admin: false, keys: [k0r]),
        ])
        b.see(g)
        b.see(add)
        let (ra, _) = rekey(&a, epoch: 1, parent: k0r, members: [a, b, y], removing: [x])
        let (rb, _) = rekey(&b, epoch: 1, parent: k0r, members: [a, b, x], removing: [y])
        var one = Roster(space: space)
        var two = Roster(space: space)
        for c in [g, add, ra, rb] { #expect(one.receive(c) == nil) }
        for c in [g, add, rb, ra] { #expect(two.receive(c) == nil) }
        #expect(one.current.canonical == two.current.canonical)
        #expect(one.current.members == two.current.members)
        #expect(one.current.members == [a.keys.publicKey, b.keys.publicKey])
        // The epoch-1 key is held by one of the removed nodes: sealing must wait for a rekey.
        #expect(!one.current.leakedTo.isEmpty)
        #expect(one.current.leakedTo == two.current.leakedTo)
        // Admin a heals once it has seen both.
        a.see(rb)
        let (heal, _) = rekey(&a, epoch: 2, parent: one.current.currentKey!, members: [a, b])
        #expect(one.receive(heal) == nil)
        #expect(two.receive(heal) == nil)
        #expect(one.current.epoch == 2 && one.current.leakedTo.isEmpty)
        #expect(one.current.canonical == two.current.canonical)
        for removed in [x, y] {
            #expect(!one.current.mayWrite(removed.keys.publicKey, epoch: 2))
            #expect(!(one.current.holders[one.current.currentKey!] ?? []).contains(removed.keys.publicKey))
        }
        // Both epoch-1 keys stay known (to open what was sealed with either), one is the epoch's.
        #expect(one.current.keys.values.filter { $0.epoch == 1 }.count == 2)
    }

    /// Two admins remove each other concurrently (each valid in its own past). Applied both, the
    /// space had no admin left, and the epoch's key was held by a removed node, so nobody could
    /// seal or heal it: the space was dead. Now the removal by the smaller replica id stands and
    /// the other is void, whatever order they arrive in; the winner heals nothing because nothing
    /// leaked, and the loser can no longer change anything.
    @Test func twoAdminsRemovingEachOtherLeaveOneAdmin() throws {
        var a = ControlWriter(1)
        var b = ControlWriter(2)
        let c = ControlWriter(3)
        let (space, g, k0) = makeSpace(&a)
        let k0r = KeyCommitment.ref(of: k0)
        let add = a.make([.add(b.id, admin: true, keys: [k0r]), .add(c.id, admin: false, keys: [k0r])])
        b.see(g)
        b.see(add)
        let (ra, ka) = rekey(&a, epoch: 1, parent: k0r, members: [a, c], removing: [b])
        let (rb, kb) = rekey(&b, epoch: 1, parent: k0r, members: [b, c], removing: [a])
        let (winner, loser, winnerKey, loserKey) = a.replica < b.replica ? (a, b, ka, kb) : (b, a, kb, ka)
        var one = Roster(space: space)
        var two = Roster(space: space)
        for x in [g, add, ra, rb] { #expect(one.receive(x) == nil) }
        for x in [g, add, rb, ra] { #expect(two.receive(x) == nil) }
        for r in [one, two] {
            #expect(r.current.admins == [winner.keys.publicKey], "admins: \(r.current.admins.map(\.nodeID))")
            #expect(r.current.members == [winner.keys.publicKey, c.keys.publicKey])
            #expect(r.current.currentKey == KeyCommitment.ref(of: winnerKey))
            #expect(r.current.leakedTo.isEmpty, "the epoch's key is held by members only")
            #expect(r.current.keys[KeyCommitment.ref(of: loserKey)] != nil, "the void rekey's key stays known, to open what it sealed")
            #expect(!r.current.mayWrite(loser.keys.publicKey, epoch: 1))
            #expect(r.current.mayWrite(c.keys.publicKey, epoch: 1))
        }
        #expect(one.current.void == two.current.void)
        // Only the winner changes the space from here.
        var w = winner
        var l = loser
        for x in [g, add, ra, rb] { w.see(x); l.see(x) }
        let d = ControlWriter(4)
        #expect(one.receive(l.make([.add(d.id, admin: false, keys: [])])) != nil)
        #expect(one.receive(w.make([.add(d.id, admin: false, keys: [])])) == nil)
    }

    /// The same with demotions, and around a cycle of three admins (a ousts b, b ousts c, c ousts
    /// a, all concurrently): an admin is left, the same on every node whatever the order.
    @Test func concurrentOustingNeverLeavesASpaceWithoutAnAdmin() throws {
        var a = ControlWriter(1)
        var b = ControlWriter(2)
        var c = ControlWriter(3)
        let (space, g, k0) = makeSpace(&a)
        let k0r = KeyCommitment.ref(of: k0)
        let add = a.make([.add(b.id, admin: true, keys: [k0r]), .add(c.id, admin: true, keys: [k0r])])
        for x in [g, add] { b.see(x); c.see(x) }
        let da = a.make([.role(b.id, admin: false)])
        let db = b.make([.role(a.id, admin: false)])
        var demoted: Set<[SigningPublicKey]> = []
        for order in [[da, db], [db, da]] {
            var r = Roster(space: space)
            for x in [g, add] + order { #expect(r.receive(x) == nil) }
            #expect(!r.current.admins.isEmpty)
            #expect(r.current.admins.contains(c.keys.publicKey))
            demoted.insert(r.current.admins.sorted(by: SigningPublicKey.precedes))
        }
        #expect(demoted.count == 1, "every order gives the same admins")

        let (ra, _) = rekey(&a, epoch: 1, parent: k0r, members: [a, c], removing: [b])
        let (rb, _) = rekey(&b, epoch: 1, parent: k0r, members: [a, b], removing: [c])
        let (rc, _) = rekey(&c, epoch: 1, parent: k0r, members: [b, c], removing: [a])
        var results: Set<[SigningPublicKey]> = []
        for order in [[ra, rb, rc], [rc, rb, ra], [rb, rc, ra]] {
            var r = Roster(space: space)
            for x in [g, add] + order { #expect(r.receive(x) == nil) }
            #expect(!r.current.admins.isEmpty, "the cycle left no admin")
            #expect(r.current.leakedTo.isEmpty || !r.current.admins.isEmpty)
            results.insert(r.current.admins.sorted(by: SigningPublicKey.precedes))
        }
        #expect(results.count == 1, "every order gives the same admins: \(results)")
    }

    @Test func entriesRoundTripAsText() throws {
        let n = ControlWriter(1).id
        let entries: [ControlEntry] = [
            .genesis(creator: n, commitment: [UInt8](repeating: 1, count: 32), salt: [UInt8](repeating: 2, count: 16)),
            .genesisLegacy(creator: n, epoch: 3), .add(n, admin: true, keys: [.committed(0xABCD), .legacy(2)]),
            .add(n, admin: false, keys: []), .remove(n), .role(n, admin: false),
            .rekey(epoch: 4, parent: .legacy(3), commitment: [UInt8](repeating: 3, count: 32)),
            .key(epoch: 4, n, box: [1, 2, 3]), .share(.committed(1), n, box: [9]), .relay(n, add: true), .relay(n, add: false),
        ]
        for e in entries { #expect(ControlEntry(parsing: e.text) == e) }
        for bad in ["", "add", "add sb123 member -", "rekey x y z", "relay * \(n.text)", "genesis \(n.text) 00 00", "nonsense"] {
            #expect(ControlEntry(parsing: bad) == nil)
        }
    }
}
