import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// Member nodes with real spaces (genesis, invitations, removals) syncing one-shot with relay
/// daemons in this process over one relay store: the SQLite one, or PostgreSQL with one or two
/// relay processes on one database.
final class RosterRig: @unchecked Sendable {
    let fixture: RelayFixture
    var ports: [Int] = []
    var daemons: [NodeDaemon] = []
    var tasks: [Task<Void, any Error>] = []
    var members: [Node] = []
    let dir = TempDir()

    init(_ kind: StoreKind) async throws { fixture = try await RelayFixture.make(kind) }

    var relay: Node { fixture.node }

    /// A node trusted by the relay (in its configured peers).
    func node(_ name: String, relay isRelay: Bool = false) throws -> Node {
        let n = try Node.initialize(
            dataDir: DataDirectory(path: dir.file(name)), office: "สำนักงาน \(name)", relay: isRelay, logger: quietLogger(name))
        _ = try relay.addPeer(nodeID: n.nodeID.text, address: "127.0.0.1:1", name: name)
        members.append(n)
        return n
    }

    /// Starts one relay process (a daemon with its own driver) over `store`; returns its index.
    @discardableResult
    func startRelay(_ store: (any RelayStore)? = nil) async throws -> Int {
        var options = ServeOptions(listen: PeerAddress(host: "127.0.0.1", port: 0))
        options.handleSignals = false
        options.dial = false
        options.transport.rateLimit = nil
        let daemon = try NodeDaemon(node: relay, relay: store ?? fixture.store, options: options, logger: quietLogger("relay"))
        daemons.append(daemon)
        let (ready, yield) = AsyncStream.makeStream(of: Int.self)
        tasks.append(Task {
            try await daemon.run { r in
                yield.yield(r.address.port)
                yield.finish()
            }
        })
        for await p in ready { ports.append(p) }
        return ports.count - 1
    }

    /// One `saraban sync` of `node` with relay process `index`.
    @discardableResult
    func sync(_ node: Node, via index: Int = 0) async throws -> OneShotResult {
        let name = "relay\(index)"
        if (try? node.syncSettings().peer(matching: name)) == nil {
            _ = try node.addPeer(nodeID: relay.nodeID.text, address: "127.0.0.1:\(ports[index])", name: name)
        }
        let peer = try node.syncSettings().peer(matching: name)
        let r = try await node.syncOnce(storage: try node.envelopeStorage(), peers: [peer], logger: quietLogger("sync"))
        return try #require(r.first)
    }

    /// What the relay's store holds of `space`.
    func stored(_ space: SpaceID) async throws -> FeedVector { try await fixture.store.vectors(of: [space])[space] ?? FeedVector() }

    func stop() async {
        for t in tasks { t.cancel() }
        for t in tasks { _ = try? await t.value }
        for n in members { n.close() }
        await fixture.cleanup()
        dir.cleanup()
    }
}

/// Issue 16: the relay on PostgreSQL read no membership log. It stored every verified envelope
/// from any trusted peer and served every space to every trusted peer (or to those an operator
/// named). Now it folds each space's control envelopes into a roster, as the SQLite relay's
/// receive path does, and both stores pass the same tests.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RelayRosterTests {
    /// A non-designated relay trusted by the relay gets nothing of the space; a designated relay
    /// and a member get all of it.
    @Test(arguments: StoreKind.available)
    func aSpaceIsServedOnlyToMembersAndDesignatedRelays(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let b = try rig.node("b")
        let other = try rig.node("other", relay: true)
        let designated = try rig.node("designated", relay: true)
        let space = try a.createSpace(name: "ลับ").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID, cleared: .none).text))
        try a.designateRelay(space, relay: rig.relay.nodeID)
        try a.designateRelay(space, relay: designated.nodeID)
        let secret = try a.createDocument(kind: "letter", fields: [("subject", "ลับเฉพาะ")], space: space)
        try await rig.fixture.store.carry([space], for: [])
        try other.carry(space: space)
        try designated.carry(space: space)
        try await rig.startRelay()
        try await rig.sync(a)
        #expect(try await rig.stored(space)[a.identity.publicKey] > 0)
        try await rig.sync(other)
        #expect(try other.feedVector(space: space).isEmpty, "a relay the admins did not designate was served the space")
        try await rig.sync(designated)
        #expect(try designated.feedVector(space: space) == (try await rig.stored(space)))
        try await rig.sync(b)
        #expect(try b.document(secret).display("subject") == "ลับเฉพาะ")
        await rig.stop()
    }

    /// A trusted relay pushes envelopes of 300 authors outside the roster: none is stored. On
    /// PostgreSQL the push goes through a second relay process, which knows the roster only
    /// from what the first one stored.
    @Test(arguments: StoreKind.available)
    func nothingIsStoredFromAuthorsOutsideTheRoster(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let pusher = try rig.node("pusher", relay: true)
        let space = try a.createSpace(name: "s").id
        try a.designateRelay(space, relay: pusher.nodeID)  // served the space, yet no author
        _ = try a.createDocument(kind: "letter", fields: [("subject", "หนังสือ")], space: space)
        try await rig.fixture.store.carry([space], for: [])
        try pusher.carry(space: space)
        let key = SymmetricKey.generate()
        var junk: [Envelope] = []
        for i in 0..<300 {
            let author = SigningKeyPair.generate()
            let change = Change(
                author: ReplicaID(bytes: author.publicKey.rawRepresentation), seq: 1, startOp: 1, time: Int64(i),
                deps: VersionVector(), ops: [.createDocument(kind: "junk")])
            junk.append(
                try Envelope.seal(
                    plaintext: EnvelopePayload.encode(changes: [change]),
                    header: EnvelopeHeader(
                        spaceID: space.bytes, author: author.publicKey, seqStart: 1, seqEnd: 1, epoch: 0, previousHash: .zero),
                    key: key, signer: author))
        }
        #expect(try pusher.receiveEnvelopes(space: space, junk).accepted.count == 300)
        try await rig.startRelay()
        var via = 0
        if kind == .postgresql { via = try await rig.startRelay(try await rig.fixture.second()) }
        try await rig.sync(a)
        let fromA = try await rig.stored(space)[a.identity.publicKey]
        // Another relay process learns of the genesis, and of the member's envelopes after it,
        // from the store (NOTIFY, then its catch-up): within tens of milliseconds, longer on a
        // loaded machine. Until then the space is open there, as a space without a membership
        // log is, and the pusher would be served only part of the member's feed.
        if kind == .postgresql {
            try await eventually("relay \(via) knows the space's genesis and all the member stored", timeout: .seconds(20), every: .milliseconds(20)) {
                let driver = rig.daemons[via].relayDriver
                return driver?.roster(space)?.roster.current.hasGenesis == true && driver?.knownVector(space)?[a.identity.publicKey] == fromA
            }
        }
        try await rig.sync(pusher, via: via)
        let stored = try await rig.stored(space)
        #expect(stored.entries.count == 1, "the relay stored envelopes of \(stored.entries.count - 1) authors outside the roster")
        #expect(stored[a.identity.publicKey] > 0)
        // The pusher still got the member's envelopes (it is a designated relay).
        #expect(try pusher.feedVector(space: space)[a.identity.publicKey] == stored[a.identity.publicKey])
        await rig.stop()
    }

    /// A member removed (and the space rekeyed) is no longer served the space: the letters
    /// written after its removal never reach it, and its own new envelopes are not stored.
    @Test(arguments: StoreKind.available)
    func aRemovedMemberIsNoLongerServedNorStored(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let b = try rig.node("b")
        let space = try a.createSpace(name: "กองคลัง").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID).text))
        try a.designateRelay(space, relay: rig.relay.nodeID)
        let before = try a.createDocument(kind: "letter", fields: [("subject", "ก่อน")], space: space)
        try await rig.fixture.store.carry([space], for: [])
        try await rig.startRelay()
        try await rig.sync(a)
        try await rig.sync(b)
        #expect(try b.document(before).display("subject") == "ก่อน")
        _ = try a.removeMember(space: space, member: b.nodeID)
        let after = try a.createDocument(kind: "letter", fields: [("subject", "หลัง")], space: space)
        try await rig.sync(a)
        let bHeld = try b.feedVector(space: space)
        _ = try b.createDocument(kind: "letter", fields: [("subject", "ของ b")], space: space)
        try await rig.sync(b)
        #expect((try? b.document(after)) == nil, "a removed member received a letter written after its removal")
        #expect(try b.feedVector(space: space)[a.identity.publicKey] == bHeld[a.identity.publicKey])
        #expect(try await rig.stored(space)[b.identity.publicKey] == bHeld[b.identity.publicKey], "the removed member's new envelope was stored")
        await rig.stop()
    }

    /// What a node holds of `space` beyond `after`, in its store order.
    static func envelopes(_ node: Node, _ space: SpaceID, after: FeedVector = FeedVector()) throws -> [Envelope] {
        try node.envelopes(space: space, after: after, limit: FetchLimit(envelopes: 10_000, bytes: 64 << 20)).envelopes
    }

    /// An open session of a member that is then removed: the driver stops announcing the space
    /// to it at once and tells the daemon to reopen its sessions; the next hello leaves the
    /// space out. (The daemon tests above use one-shot sessions, which never see this.)
    @Test(arguments: StoreKind.available.filter { $0 == .postgresql })
    func removingAMemberNarrowsItsOpenSessions(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let b = try rig.node("b")
        let space = try a.createSpace(name: "กองช่าง").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID).text))
        try await rig.fixture.store.carry([space], for: [])
        let told = Locked<[NodeID]>([])
        let driver = RelaySyncDriver(store: rig.fixture.store, servedSpacesChanged: { peers in told.withLock { $0 += peers } })
        try await driver.prime()
        let first = try Self.envelopes(a, space)
        _ = try await driver.deliver(space: space, envelopes: first, from: a.identity.publicKey)
        let session = driver.localChanges(for: b.nodeID)
        #expect(try await driver.carriedSpaces(for: b.nodeID)[space] != nil)
        #expect(driver.roster(space)?.serves(b.identity.publicKey) == true)
        let held = try a.feedVector(space: space)
        _ = try a.removeMember(space: space, member: b.nodeID)
        _ = try a.createDocument(kind: "letter", fields: [("subject", "หลังถอน")], space: space)
        _ = try await driver.deliver(space: space, envelopes: try Self.envelopes(a, space, after: held), from: a.identity.publicKey)
        #expect(told.current == [b.nodeID])
        #expect(driver.roster(space)?.serves(b.identity.publicKey) == false)
        #expect(try await driver.carriedSpaces(for: b.nodeID)[space] == nil)
        #expect(try await driver.carriedSpaces(for: a.nodeID)[space] != nil)
        // Nothing after the removal was announced to b's session.
        driver.finish()
        var announced = 0
        for await update in session { announced += update.envelopes.count }
        #expect(announced == 0, "the removed member's session heard of \(announced) envelopes")
        await rig.stop()
    }

    /// An admin's control changes stored before the space's genesis (they came through another
    /// relay first) are judged once the genesis arrives. The SQLite relay dropped them (it could
    /// not tell them from other changes without the genesis): the removed member stayed served
    /// and the added one was not.
    @Test(arguments: StoreKind.available)
    func controlChangesStoredBeforeTheGenesisAreJudgedWhenItArrives(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let b = try rig.node("b")
        let c = try rig.node("c")
        let d = try rig.node("d")
        let space = try a.createSpace(name: "กองการศึกษา").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID, admin: true).text))
        _ = try a.invite(space: space, invitee: c.nodeID)
        let fromA = try Self.envelopes(a, space)
        _ = try b.receiveEnvelopes(space: space, fromA)
        _ = try b.removeMember(space: space, member: c.nodeID)
        _ = try b.invite(space: space, invitee: d.nodeID)
        let fromB = try Self.envelopes(b, space, after: try a.feedVector(space: space))
        try await rig.fixture.store.carry([space], for: [])
        let driver = RelaySyncDriver(store: rig.fixture.store)
        try await driver.prime()
        _ = try await driver.deliver(space: space, envelopes: fromB, from: b.identity.publicKey)
        _ = try await driver.deliver(space: space, envelopes: fromA, from: a.identity.publicKey)
        let stored = try await rig.stored(space)
        #expect(stored[a.identity.publicKey] == (try a.feedVector(space: space))[a.identity.publicKey])
        #expect(stored[b.identity.publicKey] == (try b.feedVector(space: space))[b.identity.publicKey])
        #expect(try await driver.carriedSpaces(for: d.nodeID)[space] != nil, "the member b added is not served")
        #expect(try await driver.carriedSpaces(for: c.nodeID)[space] == nil, "the member b removed is still served")
        #expect(try await driver.carriedSpaces(for: b.nodeID)[space] != nil)
        await rig.stop()
    }

    /// A trusted peer's forged genesis read before the real one (an outsider's genesis naming a
    /// membership document of its own) must not decide which document the relay reads as the
    /// space's log. On SQLite the relay took the document from the first genesis it read, before
    /// judging it: the real log was then never read, the forged author's envelopes were stored
    /// and the members were not told apart (b, a member, was served exactly as the outsider).
    @Test(arguments: StoreKind.available)
    func aForgedGenesisReadFirstDoesNotHideTheRealLog(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let b = try rig.node("b")
        let c = try rig.node("c")
        let space = try a.createSpace(name: "กองคลัง").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID).text))
        let outsider = SigningKeyPair.generate()
        let forged = try Self.forgedGenesis(space, by: outsider)
        try await rig.fixture.store.carry([space], for: [])
        let driver = RelaySyncDriver(store: rig.fixture.store)
        try await driver.prime()
        _ = try await driver.deliver(space: space, envelopes: [forged], from: outsider.publicKey)
        _ = try await driver.deliver(space: space, envelopes: try Self.envelopes(a, space), from: a.identity.publicKey)
        let stored = try await rig.stored(space)
        #expect(stored[a.identity.publicKey] == (try a.feedVector(space: space))[a.identity.publicKey])
        #expect(try await driver.carriedSpaces(for: b.nodeID)[space] != nil, "a member is not served")
        #expect(try await driver.carriedSpaces(for: c.nodeID)[space] == nil, "a trusted non-member is served")
        #expect(
            try await driver.carriedSpaces(for: NodeID(publicKey: outsider.publicKey))[space] == nil,
            "the forger is served")
        await rig.stop()
    }

    /// A control envelope from `outsider`, opening with the space's control key, whose change
    /// creates a membership document of its own with a genesis naming `outsider` as creator
    /// (refused: the space id binds another creator).
    static func forgedGenesis(_ space: SpaceID, by outsider: SigningKeyPair) throws -> Envelope {
        let replica = ReplicaID(bytes: outsider.publicKey.rawRepresentation)
        let doc = DocID(OpID(counter: 10, replica: replica))
        let genesis = ControlEntry.genesis(
            creator: NodeID(publicKey: outsider.publicKey), commitment: [UInt8](repeating: 1, count: 32),
            salt: [UInt8](repeating: 2, count: 16))
        let change = Change(
            author: replica, seq: 1, startOp: 10, time: 0, deps: VersionVector(),
            ops: [.createDocument(kind: "space"), .listAppend(doc: doc, field: ControlEntry.field, value: genesis.text)])
        return try Envelope.seal(
            plaintext: EnvelopePayload.encode(changes: [change]),
            header: EnvelopeHeader(
                spaceID: space.bytes, author: outsider.publicKey, seqStart: 1, seqEnd: 1, epoch: ControlEntry.publicEpoch,
                previousHash: .zero),
            key: ControlKey.key(for: space), signer: outsider)
    }

    /// The same control envelopes in another order, or twice, give the same roster: a change
    /// waits until its causal past is held, and is judged from that past.
    @Test func aRelayRosterIsTheSameWhateverTheOrder() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        func make(_ name: String) throws -> Node {
            try Node.initialize(dataDir: DataDirectory(path: dir.file(name)), office: name, logger: quietLogger(name))
        }
        let a = try make("a")
        let b = try make("b")
        let c = try make("c")
        let d = try make("d")
        defer { for n in [a, b, c, d] { n.close() } }
        let space = try a.createSpace(name: "ทะเบียน").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID, admin: true).text))
        _ = try a.invite(space: space, invitee: c.nodeID)
        let fromA = try Self.envelopes(a, space)
        _ = try b.receiveEnvelopes(space: space, fromA)
        // b, an admin, acts on what a did: its changes have a's in their past.
        _ = try b.removeMember(space: space, member: c.nodeID)
        _ = try b.invite(space: space, invitee: d.nodeID)
        let fromB = try Self.envelopes(b, space, after: try a.feedVector(space: space))
        let controls = (fromA + fromB).filter { $0.header.epoch == ControlEntry.publicEpoch }
        var vector = FeedVector()
        for e in fromA + fromB { _ = vector.add(e.header) }

        var inOrder = RelayRoster(space: space)
        for e in controls { inOrder.read(e, held: vector) }
        #expect(inOrder.roster.refused.isEmpty)
        // b's changes first, then a's: nothing is judged before its past is read.
        var reversed = RelayRoster(space: space)
        for e in controls.reversed() { reversed.queue(e) }
        reversed.judgeReady(held: vector)
        for e in controls { reversed.read(e, held: vector) }
        // a's envelopes are not held yet: b's changes wait for them (kept aside until the genesis
        // names the membership document, then judged once their past is held).
        var late = RelayRoster(space: space)
        var onlyB = FeedVector()
        for e in fromB { _ = onlyB.add(e.header) }
        for e in controls where e.header.author == b.identity.publicKey { late.read(e, held: onlyB) }
        #expect(late.roster.accepted.isEmpty && late.roster.refused.isEmpty)
        // Then a's, stored in one batch: read together, judged with the vector that covers them.
        for e in controls where e.header.author == a.identity.publicKey { late.queue(e) }
        late.judgeReady(held: vector)
        for r in [inOrder, reversed, late] {
            #expect(r.pending.isEmpty)
            #expect(r.roster.refused.isEmpty)
            #expect(r.roster.current.members == [a.identity.publicKey, b.identity.publicKey, d.identity.publicKey])
            #expect(r.roster.current.admins == [a.identity.publicKey, b.identity.publicKey])
            #expect(r.roster.accepted.map(\.id).sorted() == inOrder.roster.accepted.map(\.id).sorted())
            #expect(r.serves(d.identity.publicKey) && !r.serves(c.identity.publicKey))
            #expect(r.refusal(fromB[0].header) == nil)
        }
    }

    /// Bad control envelopes reach a relay's roster from any trusted peer: one that does not open
    /// with the control key, one whose change is not a control change, and an outsider's genesis
    /// for a space whose id binds another creator. None changes the roster; the real log then
    /// folds as usual.
    @Test func badControlEnvelopesLeaveTheRosterAsItWas() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try Node.initialize(dataDir: DataDirectory(path: dir.file("a")), office: "a", logger: quietLogger("a"))
        defer { a.close() }
        let space = try a.createSpace(name: "ทะเบียนกลาง").id
        let outsider = SigningKeyPair.generate()
        let replica = ReplicaID(bytes: outsider.publicKey.rawRepresentation)
        func envelope(_ ops: [SarabanCore.Operation], seq: UInt64, key: SymmetricKey, previous: EnvelopeID) throws -> Envelope {
            let change = Change(author: replica, seq: seq, startOp: seq * 10, time: 0, deps: VersionVector(), ops: ops)
            return try Envelope.seal(
                plaintext: EnvelopePayload.encode(changes: [change]),
                header: EnvelopeHeader(
                    spaceID: space.bytes, author: outsider.publicKey, seqStart: seq, seqEnd: seq, epoch: ControlEntry.publicEpoch,
                    previousHash: previous),
                key: key, signer: outsider)
        }
        let doc = DocID(OpID(counter: 30, replica: replica))
        let genesis = ControlEntry.genesis(
            creator: NodeID(publicKey: outsider.publicKey), commitment: [UInt8](repeating: 1, count: 32),
            salt: [UInt8](repeating: 2, count: 16))
        let wrongKey = try envelope([.createDocument(kind: "space")], seq: 1, key: .generate(), previous: .zero)
        let notControl = try envelope([.createDocument(kind: "junk")], seq: 2, key: ControlKey.key(for: space), previous: wrongKey.id)
        let forged = try envelope(
            [.createDocument(kind: "space"), .listAppend(doc: doc, field: ControlEntry.field, value: genesis.text)], seq: 3,
            key: ControlKey.key(for: space), previous: notControl.id)
        var vector = FeedVector()
        for e in [wrongKey, notControl, forged] { _ = vector.add(e.header) }

        var r = RelayRoster(space: space)
        for e in [wrongKey, notControl] {
            let changed = r.read(e, held: vector)
            #expect(!changed)
            #expect(r.pending.isEmpty && r.roster.accepted.isEmpty)
        }
        let changed = r.read(forged, held: vector)
        #expect(!changed, "an outsider's genesis changed the roster")
        #expect(r.roster.refused.count == 1 && !r.roster.current.hasGenesis)
        // The real log still folds: the forged genesis named another document, which the real
        // one replaces once it is read.
        let real = try Self.envelopes(a, space).filter { $0.header.epoch == ControlEntry.publicEpoch }
        for e in real { _ = vector.add(e.header) }
        for e in real { r.queue(e) }
        r.judgeReady(held: vector)
        print("RelayRosterTests.bad: accepted \(r.roster.accepted.count), refused \(r.roster.refused.count), genesis \(r.roster.current.hasGenesis)")
        #expect(r.roster.current.creator == a.identity.publicKey)
        #expect(r.serves(a.identity.publicKey) && !r.serves(outsider.publicKey))
        #expect(r.refusal(forged.header) != nil)
    }
}
