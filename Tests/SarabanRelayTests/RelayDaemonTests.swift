import Foundation
import SarabanCrypto
import SarabanFleet
import SarabanNode
import SarabanRelayPostgres
import SarabanStorage
import SarabanSync
import Testing

/// A policy for the test: refuses one author's envelopes in one space, hides one space from one peer.
struct TestPolicy: RelayPolicy {
    var refuseAuthor: SigningPublicKey
    var refuseIn: SpaceID
    var hide: SpaceID
    var from: NodeID

    func mayServe(space: SpaceID, peer: NodeID) -> Bool { !(space == hide && peer == from) }
    func mayStore(space: SpaceID, author: SigningPublicKey, epoch: UInt32) -> Bool { !(space == refuseIn && author == refuseAuthor) }
}

@Suite(.timeLimit(.minutes(3))) struct RelayDaemonTests {
    /// A relay daemon in this process over each store, three simulated offices in a ring of pair
    /// spaces: letters reach the other member through the relay; the policy hook decides what is
    /// stored (an author refused in one space) and served (a space hidden from one office).
    @Test(arguments: StoreKind.available)
    func lettersCrossTheRelayAndThePolicyDecidesWhatIsStoredAndServed(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let topology = try FleetTopology(offices: 3, spaceSize: 2, seed: 7)
        let ledger = FleetLedger()
        let offices = topology.makeOffices(ledger: ledger, bodyBytes: 200)
        let spaces = (0..<3).map(topology.space)  // space j: offices j and j+1
        try await f.store.carry(spaces, for: [])
        try FleetRelays.setPeers(data: f.node.dataDirectory.path, offices: offices.map(\.nodeID))
        let policy = TestPolicy(refuseAuthor: offices[2].identity.publicKey, refuseIn: spaces[1], hide: spaces[2], from: offices[0].nodeID)
        var options = ServeOptions(listen: PeerAddress(host: "127.0.0.1", port: 0))
        options.handleSignals = false
        options.dial = false
        options.transport.rateLimit = nil
        let daemon = try NodeDaemon(node: f.node, relay: f.store, policy: policy, options: options, logger: quietLogger("relay"))
        let (ports, reported) = AsyncStream.makeStream(of: Int.self)
        let running = Task {
            try await daemon.run { r in
                reported.yield(r.address.port)
                reported.finish()
            }
        }
        var port = 0
        for await p in ports { port = p }
        let counts = FleetSessionCounts()
        let dialler = FleetDialler(relayID: f.node.nodeID, counts: counts)
        let relay = FleetAddress(host: "127.0.0.1", port: port)
        let sessions = offices.map { o in
            Task { await dialler.stayConnected(o, endpoint: dialler.endpoint(for: o), relays: [relay], first: 0) }
        }
        try await eventually("three sessions open", timeout: .seconds(20), every: .milliseconds(20)) { counts.open == 3 }

        let a = try offices[0].write(in: spaces[0])  // to office 1
        let refused = try offices[2].write(in: spaces[1])  // by office 2, refused by the policy
        let hidden = try offices[2].write(in: spaces[2])  // to office 0, which is not served space 2
        try await eventually("office 1 holds the letter", timeout: .seconds(10), every: .milliseconds(20)) {
            offices[1].vector(of: spaces[0])?[a.header.author] == 1
        }
        try await eventually("the relay holds the hidden space's letter", timeout: .seconds(10), every: .milliseconds(20)) {
            try await f.store.carriedSpaces()[spaces[2]]?[hidden.header.author] == 1
        }
        try await Task.sleep(for: .milliseconds(500))
        #expect(offices[1].vector(of: spaces[1])?[refused.header.author] == 0)
        #expect(try await f.store.carriedSpaces()[spaces[1]]?[refused.header.author] == 0)
        #expect(offices[0].vector(of: spaces[2])?[hidden.header.author] == 0)
        // The relay's peer status rows record each office's sessions.
        await daemon.status.flush()
        let statuses = try await f.store.peerStatuses()
        #expect(Set(statuses.filter { $0.sessions >= 1 }.map(\.peer)) == Set(offices.map(\.identity.publicKey)))

        for s in sessions { s.cancel() }
        running.cancel()
        _ = try? await running.value
        await f.cleanup()
    }
}

/// `pg_dump` for the blind-relay test: `SARABAN_TEST_PG_DUMP`, else on PATH or in Debian's place.
let pgDump: String? = {
    let fm = FileManager.default
    var candidates = [ProcessInfo.processInfo.environment["SARABAN_TEST_PG_DUMP"] ?? ""]
    candidates += (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map { "\($0)/pg_dump" }
    candidates += ((try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []).sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin/pg_dump" }
    return candidates.first { !$0.isEmpty && fm.isExecutableFile(atPath: $0) }
}()

@Suite(.timeLimit(.minutes(3))) struct BlindRelayTests {
    /// The PostgreSQL store is blind: a dump of the whole database (envelopes, heads, cursors,
    /// peer status) holds the envelopes as opaque bytes and neither the letters' plaintext nor the
    /// space key nor the author's signing key.
    @Test(.enabled(if: StoreKind.postgresURL != nil && pgDump != nil))
    func aDumpOfThePostgresStoreHoldsNoPlaintextAndNoKey() async throws {
        let f = try await RelayFixture.make(.postgresql)
        let space = randomSpace()
        try await f.store.carry([space], for: [])
        var feed = TestFeed(space: space)
        let marker = "ความลับทางราชการ PLANTED-\(UInt64.random(in: 0...UInt64.max))"
        let envelopes = (0..<5).map { _ in feed.next(Array(marker.utf8)) }
        let r = try await f.store.store(space: space, envelopes: envelopes)
        #expect(r.accepted.count == 5)
        var status = PeerStatusChange(peer: feed.signer.publicKey)
        status.sessions = 1
        status.cursors[space] = PeerCursor(at: 1, vector: FeedVector([feed.signer.publicKey: 5]))
        try await f.store.applyPeerStatus([status])

        let loc = try #require(f.location)
        let dumpFile = FileManager.default.temporaryDirectory.path + "/saraban-dump-\(UUID().uuidString).sql"
        defer { try? FileManager.default.removeItem(atPath: dumpFile) }
        let p = try ChildProcess(
            [pgDump!, "--no-owner", "-h", loc.socketDirectory ?? loc.host, "-p", "\(loc.port)", "-U", loc.user, loc.database],
            stdout: .file(dumpFile))
        #expect(p.wait() == 0)
        let data = FileManager.default.contents(atPath: dumpFile) ?? Data()
        let dump = String(decoding: data, as: UTF8.self).lowercased()
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        // The dump holds the envelopes (so the search below looks where they are) ...
        #expect(dump.contains(hex(envelopes[0].id.bytes)))
        #expect(dump.contains(hex(Array(envelopes[0].bytes.suffix(64)))))
        // ... and no plaintext, raw or hex, and no key.
        let key = feed.key.secret.withUnsafeBytes { Array($0) }
        let seed = feed.signer.seed.withUnsafeBytes { Array($0) }
        #expect(!dump.contains(marker.lowercased()))
        #expect(!dump.contains("planted"))
        #expect(!dump.contains(hex(Array(marker.utf8))))
        #expect(!dump.contains(hex(Array(marker.utf8.suffix(24)))))
        #expect(!dump.contains(hex(key)))
        #expect(!dump.contains(hex(seed)))
        await f.cleanup()
    }
}
