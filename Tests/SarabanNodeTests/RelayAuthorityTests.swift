import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// A relay daemon in this process on a loopback port, and one-shot syncs against it.
final class RelayRig {
    let dir: TempDir
    let relay: Node
    var port = 0
    var task: Task<Void, any Error>?

    init(_ name: String = #function) throws {
        dir = TempDir(name)
        relay = try Node.initialize(dataDir: DataDirectory(path: dir.file("relay")), office: "คลาวด์", relay: true, logger: quiet)
    }

    func node(_ name: String, relay isRelay: Bool = false) throws -> Node {
        let n = try Node.initialize(
            dataDir: DataDirectory(path: dir.file(name)), office: "สำนักงาน \(name)", relay: isRelay, logger: quiet)
        _ = try relay.addPeer(nodeID: n.nodeID.text, address: "127.0.0.1:1", name: name)
        return n
    }

    func start() async throws {
        var options = ServeOptions(listen: PeerAddress(host: "127.0.0.1", port: 0))
        options.handleSignals = false
        options.dial = false
        let daemon = try NodeDaemon(node: relay, storage: try relay.envelopeStorage(relay: true), options: options, logger: quiet)
        let ready = AsyncStream<Int>.makeStream()
        task = Task {
            try await daemon.run { r in
                ready.continuation.yield(r.address.port)
                ready.continuation.finish()
            }
        }
        for await p in ready.stream { port = p }
    }

    /// One `saraban sync` of `node` with the relay.
    @discardableResult
    func sync(_ node: Node) async throws -> OneShotResult {
        if (try? node.syncSettings().peer(matching: "relay")) == nil {
            _ = try node.addPeer(nodeID: relay.nodeID.text, address: "127.0.0.1:\(port)", name: "relay")
        }
        let peer = try node.syncSettings().peer(matching: "relay")
        let r = try await node.syncOnce(storage: try node.envelopeStorage(), peers: [peer], logger: quiet)
        return try #require(r.first)
    }

    func stop() {
        task?.cancel()
        relay.close()
        dir.cleanup()
    }
}

@Suite(.serialized, .timeLimit(.minutes(2))) struct RelayAuthorityTests {
    /// Issue 13: offices invited one after another, each writing before any sync, refused each
    /// other's envelopes when they came before the membership that admits them, and needed
    /// three rounds of one-shot syncs through a relay to converge. Now two rounds do.
    @Test func twentyOfficesConvergeInTwoRoundsThroughARelay() async throws {
        let rig = try RelayRig()
        defer { rig.stop() }
        let admin = try rig.node("จังหวัด")
        let space = try admin.createSpace(name: "สารบรรณจังหวัด").id
        try rig.relay.carry(space: space)
        var offices: [Node] = []
        var letters: [DocID] = [try admin.createDocument(kind: "letter", fields: [("subject", "จากจังหวัด")], space: space)]
        for i in 0..<20 {
            let o = try rig.node("อปท\(i)")
            try o.join(try Invitation.parse(try admin.invite(space: space, invitee: o.nodeID, office: "อปท \(i)").text))
            letters.append(try o.createDocument(kind: "letter", fields: [("subject", "หนังสือ \(i)")], space: space))
            offices.append(o)
        }
        try await rig.start()
        defer { for o in offices { o.close() }; admin.close() }
        for round in 1...2 {
            try await rig.sync(admin)
            for o in offices { try await rig.sync(o) }
            let missing = try offices.map { o in try letters.filter { (try? o.document($0)) == nil }.count }
            print("RelayAuthorityTests.twentyOffices: after round \(round), letters missing per office: \(missing)")
        }
        for o in offices + [admin] {
            for l in letters { #expect((try? o.document(l)) != nil, "\(o.config.office) lacks \(l)") }
            #expect(try o.authority(space).held == 0)
        }
    }

    /// Issue 13: a relay served every carried space to every peer it trusts: a non-designated
    /// trusted relay got all envelopes of a ลับ space. Now it gets nothing of it, a designated one does.
    @Test func aRelayServesASpaceOnlyToMembersAndDesignatedRelays() async throws {
        let rig = try RelayRig()
        defer { rig.stop() }
        let a = try rig.node("a")
        let b = try rig.node("b")
        let other = try rig.node("other", relay: true)
        let designated = try rig.node("designated", relay: true)
        defer { for n in [a, b, other, designated] { n.close() } }
        let space = try a.createSpace(name: "ลับ").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID, cleared: .none).text))
        try a.designateRelay(space, relay: rig.relay.nodeID)
        try a.designateRelay(space, relay: designated.nodeID)
        let secret = try a.createDocument(kind: "letter", fields: [("subject", "ลับเฉพาะ")], space: space)
        try rig.relay.carry(space: space)
        try other.carry(space: space)
        try designated.carry(space: space)
        try await rig.start()
        try await rig.sync(a)
        #expect(try rig.relay.feedVector(space: space)[a.identity.publicKey] > 0)
        try await rig.sync(other)
        #expect(try other.feedVector(space: space).isEmpty)
        try await rig.sync(designated)
        #expect(try designated.feedVector(space: space) == (try rig.relay.feedVector(space: space)))
        try await rig.sync(b)
        #expect(try b.document(secret).display("subject") == "ลับเฉพาะ")
    }

    /// Issue 13: a relay stored envelopes from anyone: a trusted non-member pushed envelopes of
    /// 3,000 fresh authors and every member's sync downloaded them again. Now it stores none.
    @Test func aRelayStoresNothingFromAuthorsOutsideTheRoster() async throws {
        let rig = try RelayRig()
        defer { rig.stop() }
        let a = try rig.node("a")
        let pusher = try rig.node("pusher", relay: true)
        defer { for n in [a, pusher] { n.close() } }
        let space = try a.createSpace(name: "s").id
        try a.designateRelay(space, relay: pusher.nodeID)  // it is served the space, yet is no author
        try rig.relay.carry(space: space)
        try pusher.carry(space: space)
        // The pusher holds 3,000 envelopes of fresh authors (it has no roster yet, so it took them).
        let key = SymmetricKey.generate()
        var junk: [Envelope] = []
        for i in 0..<3000 {
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
        let taken = try pusher.receiveEnvelopes(space: space, junk)
        #expect(taken.accepted.count == 3000)
        try await rig.start()
        try await rig.sync(a)
        try await rig.sync(pusher)
        let stored = try rig.relay.feedVector(space: space)
        #expect(stored.entries.count == 1, "the relay stored envelopes of \(stored.entries.count - 1) authors outside the roster")
        #expect(stored[a.identity.publicKey] > 0)
    }
}
