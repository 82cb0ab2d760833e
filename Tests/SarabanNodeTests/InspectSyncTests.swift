import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanSync
import Testing

/// `inspect-sync` at the node level: node B inspects node A (an in-process `NodeDaemon` on
/// 127.0.0.1, port 0) after both wrote while apart. The counts must equal what a real sync then
/// moves, and the inspection must leave both stores exactly as they were.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct InspectSyncTests {
    /// What a node holds: per carried space its feed vector and envelope count.
    struct Holdings: Equatable {
        var vectors: [SpaceID: FeedVector]
        var envelopes: [SpaceID: Int]
    }

    func holdings(_ node: Node) throws -> Holdings {
        let vectors = try node.carriedSpaces()
        var counts: [SpaceID: Int] = [:]
        for space in vectors.keys {
            counts[space] = try node.envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: 1 << 20, bytes: 1 << 30))
                .envelopes.count
        }
        return Holdings(vectors: vectors, envelopes: counts)
    }

    /// Starts `node`'s daemon on 127.0.0.1:0 (not dialling anyone); returns its port and a stopper.
    func serve(_ node: Node) async throws -> (port: Int, task: Task<Void, any Error>) {
        var options = ServeOptions(listen: PeerAddress(host: "127.0.0.1", port: 0))
        options.handleSignals = false
        options.dial = false
        let daemon = try NodeDaemon(node: node, storage: try node.envelopeStorage(), options: options, logger: quiet)
        let ready = AsyncStream<Int>.makeStream()
        let task = Task {
            try await daemon.run { r in
                ready.continuation.yield(r.address.port)
                ready.continuation.finish()
            }
        }
        var port = 0
        for await p in ready.stream { port = p }
        return (port, task)
    }

    @Test func countsEqualWhatSyncMovesAndNothingIsStored() async throws {
        let seed = ProcessInfo.processInfo.environment["SARABAN_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)
        print("InspectSyncTests seed \(seed) (replay: SARABAN_SEED=\(seed))")
        var rng = SplitMix64(seed: seed)
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try Node.initialize(dataDir: DataDirectory(path: dir.file("a")), office: "กระทรวงมหาดไทย", logger: quiet)
        let b = try Node.initialize(
            dataDir: DataDirectory(path: dir.file("b")), office: "สำนักงานจังหวัดเชียงใหม่", logger: quiet)
        defer {
            a.close()
            b.close()
        }
        let space = try a.createSpace(name: "สารบรรณ").id
        let invitation = try a.invite(space: space, invitee: b.nodeID, office: "สำนักงานจังหวัดเชียงใหม่")
        _ = try b.join(Invitation.parse(invitation.text))

        let (port, server) = try await serve(a)
        defer { server.cancel() }
        try b.addPeer(nodeID: a.nodeID.text, address: "127.0.0.1:\(port)", name: "มหาดไทย")
        let peer = try b.syncSettings().peer(matching: "มหาดไทย")
        // Start level: one real sync.
        let first = try await b.syncOnce(storage: try b.envelopeStorage(), peers: [peer], logger: quiet)
        #expect(first.first?.synced == true, "\(first)")

        // Apart (A's daemon is up but nobody dials): N changes on each side.
        let na = Int(rng.next() % 6) + 1
        let nb = Int(rng.next() % 6) + 1
        for i in 0..<na { _ = try a.createDocument(kind: "letter", fields: [("subject", "ก \(i)")], space: space) }
        for i in 0..<nb { _ = try b.createDocument(kind: "letter", fields: [("subject", "ข \(i)")], space: space) }

        let beforeA = try holdings(a)
        /// A's recorded status of `b` once it has recorded `sessions` sessions with it, the last
        /// one closed (its bytes added: a periodic save can record a session while it is open).
        var bytesRecorded = 0
        func aStatus(of b: Node, sessions: Int) async throws -> PeerStatus? {
            var seen: PeerStatus?
            for _ in 0..<200 {
                seen = try a.peerStatuses()[b.nodeID.text]
                if seen?.sessions == sessions && seen?.lastError == nil && (seen?.bytesReceived ?? 0) > bytesRecorded { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            bytesRecorded = seen?.bytesReceived ?? 0
            return seen
        }
        let sentBefore = try #require(try await aStatus(of: b, sessions: 1)).envelopesSent
        let beforeB = try holdings(b)
        let preview = try await b.inspectSync(peer: peer, logger: quiet)
        // Nothing moved and nothing was stored, on either side.
        #expect(try holdings(a) == beforeA)
        #expect(try holdings(b) == beforeB)
        // A's side of the session: it saw a second session and sent nothing in it (B never told
        // A what it holds, so A had no gap to fill).
        let seen = try await aStatus(of: b, sessions: 2)
        #expect(seen?.sessions == 2)
        #expect(seen?.envelopesSent == sentBefore, "A sent envelopes during the inspection")
        #expect(try holdings(b) == beforeB)

        #expect(preview.source == .live)
        #expect(preview.peerRole == .member)
        let shared = try #require(preview.spaces.first { $0.space == space })
        #expect(shared.name == "สารบรรณ")
        #expect(shared.toPeer.changes == UInt64(nb), "seed \(seed)")
        #expect(shared.fromPeer.changes == UInt64(na), "seed \(seed)")
        #expect(shared.toPeer.envelopes == nb)  // one envelope per local write
        #expect(shared.fromPeer.envelopes == nil)
        // Per author: B's range goes to A, A's comes from A, named from the member table.
        let fromB = try #require(shared.authors.first { $0.nodeID == b.nodeID })
        let fromA = try #require(shared.authors.first { $0.nodeID == a.nodeID })
        #expect(fromB.office == "สำนักงานจังหวัดเชียงใหม่" && fromA.office == "กระทรวงมหาดไทย")
        #expect(fromB.toPeer == SequenceRange(first: fromB.peer + 1, last: fromB.local, envelopes: nb))
        #expect(fromB.toPeer?.changes == UInt64(nb) && fromB.fromPeer == nil)
        #expect(fromA.fromPeer?.changes == UInt64(na) && fromA.toPeer == nil)
        #expect(fromA.fromPeer?.first == fromA.local + 1)
        // The totals are the vectors' difference.
        let va = beforeA.vectors[space]!
        let vb = beforeB.vectors[space]!
        #expect(shared.toPeer.changes == vb.changesMissing(from: va))
        #expect(shared.fromPeer.changes == va.changesMissing(from: vb))
        #expect(preview.toPeer.changes == preview.spaces.reduce(0) { $0 + $1.toPeer.changes })

        // A real sync moves exactly that.
        let r = try #require(try await b.syncOnce(storage: try b.envelopeStorage(), peers: [peer], logger: quiet).first)
        #expect(r.synced, "\(r)")
        #expect(r.changesSent == preview.toPeer.changes, "seed \(seed)")
        #expect(r.envelopesSent == preview.toPeer.envelopes, "seed \(seed)")
        #expect(r.changesReceived == preview.fromPeer.changes, "seed \(seed)")
        #expect(try a.feedVector(space: space) == b.feedVector(space: space))

        // Now level: nothing either way, live and from the recorded summary.
        let after = try await b.inspectSync(peer: peer, logger: quiet)
        #expect(after.toPeer.changes == 0 && after.fromPeer.changes == 0)
        let recorded = try b.inspectSyncRecorded(peer: peer)
        #expect(recorded.source == .recorded && recorded.recordedAt != nil)
        #expect(recorded.toPeer.changes == 0 && recorded.fromPeer.changes == 0, "\(recorded.spaces)")
        // A write made since is counted offline without dialling.
        _ = try b.createDocument(kind: "memo", fields: [("subject", "ใหม่")], space: space)
        let later = try b.inspectSyncRecorded(peer: peer)
        #expect(later.toPeer.changes == 1 && later.toPeer.envelopes == 1)
    }

    @Test func unreachableAndUnrecordedPeersAreTypedErrors() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try Node.initialize(dataDir: DataDirectory(path: dir.file("a")), office: "ก", logger: quiet)
        let b = try Node.initialize(dataDir: DataDirectory(path: dir.file("b")), office: "ข", logger: quiet)
        defer {
            a.close()
            b.close()
        }
        // A port nobody listens on: bind one, note it, close it.
        let (port, server) = try await serve(a)
        server.cancel()
        _ = await server.result
        try b.addPeer(nodeID: a.nodeID.text, address: "127.0.0.1:\(port)", name: "ก")
        let peer = try b.syncSettings().peer(matching: "ก")
        await #expect(throws: NodeError.self) { try await b.inspectSync(peer: peer, timeout: .seconds(5), logger: quiet) }
        do {
            _ = try await b.inspectSync(peer: peer, timeout: .seconds(5), logger: quiet)
        } catch {
            #expect(error.code == .unreachable && error.code.exitCode == 69)
            #expect(error.message.contains("saraban serve") && error.message.contains("--offline"), "\(error.message)")
        }
        do {
            _ = try b.inspectSyncRecorded(peer: peer)
            Issue.record("expected an error: nothing is recorded")
        } catch {
            #expect(error.code == .unreachable)
            #expect(error.message.contains("saraban sync"), "\(error.message)")
        }
    }
}
