import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// What forks the node's sync driver finds and how they are kept: a peer's head tags that name
/// another envelope than this node holds, and envelopes from a copy of the node's disk.
@Suite struct ForkTests {
    /// Collects the forks a driver reports.
    final class Found: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [FeedFork] = []
        func add(_ f: FeedFork) { lock.withLock { list.append(f) } }
        var all: [FeedFork] { lock.withLock { list } }
    }

    @Test func aPeerSummaryNamingAnotherEnvelopeIsAFork() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try Node.initialize(dataDir: dir.data, office: "สำนักงาน ก", logger: quiet)
        defer { node.close() }
        _ = try node.createDocument(kind: "memo", fields: [("เรื่อง", thai)])
        _ = try node.createDocument(kind: "memo", fields: [("เรื่อง", "ฉบับที่สอง")])
        let space = try #require(try node.store.defaultSpace())
        let me = node.identity.publicKey
        let vector = try node.feedVector(space: space)
        let head = try #require(try node.store.feedHeads([space: vector])[space]?[me])
        #expect(head.lastSequence == vector[me])

        let found = Found()
        let driver = NodeSyncDriver(storage: try node.envelopeStorage(), logger: quiet, onFork: found.add, now: { 42 })
        let peer = SigningKeyPair.generate().publicKey.nodeID
        await driver.peerHeads(SpaceVector(space: space, vector: vector, heads: [me: HeadTag(head.lastID)]), from: peer)
        #expect(found.all.isEmpty, "the same envelope: no fork")

        let other = try #require(HeadTag(bytes: [1, 2, 3, 4, 5, 6, 7, 8]))
        await driver.peerHeads(SpaceVector(space: space, vector: vector, heads: [me: other]), from: peer)
        let expected = FeedFork(
            space: space.hex, author: node.nodeID.text, sequence: vector[me], held: head.lastID.hex,
            peerHolds: "0102030405060708", peer: peer.text, detectedAt: 42, via: "summary")
        #expect(found.all == [expected])

        // Kept once in forks.json, naming the peer that showed it.
        let book = PeerStatusBook(store: node.peerStatusStore, forks: node.dataDirectory)
        book.recordFork(expected)
        book.recordFork(FeedFork(
            space: space.hex, author: node.nodeID.text, sequence: vector[me], held: head.lastID.hex,
            peerHolds: "0102030405060708", peer: peer.text, detectedAt: 99, via: "summary"))
        #expect(PeerStatusBook.forks(node.dataDirectory) == [expected])
        #expect(try node.peerStatuses()[peer.text]?.forks == [expected])
    }

    /// A copy of the node's disk (same key) writes on its own: its envelopes reach the node. One at
    /// a position the node holds, and one chained on the copy's own envelope there: both are
    /// refused and reported as the fork they show, naming both envelopes.
    @Test func envelopesOfACopyOfTheDiskAreReportedAsForks() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let original = try Node.initialize(dataDir: dir.data, office: "สำนักงาน ก", logger: quiet)
        _ = try original.createDocument(kind: "memo", fields: [("เรื่อง", thai)])
        original.close()
        let copyDir = DataDirectory(path: dir.path + "/copy")
        try FileManager.default.copyItem(atPath: dir.data.path, toPath: copyDir.path)
        let node = try Node.open(dataDir: dir.data, logger: quiet)
        defer { node.close() }
        let copy = try Node.open(dataDir: copyDir, logger: quiet)
        defer { copy.close() }
        let space = try #require(try node.store.defaultSpace())
        let me = node.identity.publicKey
        let before = try node.feedVector(space: space)

        _ = try node.createDocument(kind: "memo", fields: [("เรื่อง", "ของเครื่องจริง")])
        _ = try copy.createDocument(kind: "memo", fields: [("เรื่อง", "ของสำเนา")])
        _ = try copy.createDocument(kind: "memo", fields: [("เรื่อง", "ของสำเนา ฉบับที่สอง")])
        let mine = try node.envelopes(space: space, after: before, limit: FetchLimit(envelopes: 10, bytes: 1 << 20)).envelopes
        let theirs = try copy.envelopes(space: space, after: before, limit: FetchLimit(envelopes: 10, bytes: 1 << 20)).envelopes
        #expect(mine.count == 1 && theirs.count == 2)
        #expect(theirs[0].header.seqStart == mine[0].header.seqStart && theirs[0].id != mine[0].id)

        let found = Found()
        let driver = NodeSyncDriver(storage: try node.envelopeStorage(), logger: quiet, onFork: found.add, now: { 7 })
        let vector = try await driver.deliver(space: space, envelopes: theirs, from: me)
        #expect(vector == before.merging(FeedVector([me: mine[0].header.seqEnd])), "nothing of the copy's is taken")
        let position = mine[0].header.seqEnd
        #expect(
            found.all.map { [$0.author, String($0.sequence), $0.held, $0.peerHolds, $0.via] }
                == [[node.nodeID.text, String(position), mine[0].id.hex, theirs[0].id.hex, "envelope"]],
            "\(found.all)")

        // The copy's second envelope alone: it chains on the copy's first, not on the node's.
        let chained = Found()
        let again = NodeSyncDriver(storage: try node.envelopeStorage(), logger: quiet, onFork: chained.add, now: { 8 })
        _ = try await again.deliver(space: space, envelopes: [theirs[1]], from: me)
        #expect(
            chained.all.map { [String($0.sequence), $0.held, $0.peerHolds] }
                == [[String(position), mine[0].id.hex, theirs[0].id.hex]], "\(chained.all)")
    }
}

/// The daemon's poller notices a space joined by another process, which stores no envelope
/// (DaemonCLITests.why7 timed out when the join came after the sessions had been renewed for the
/// space's creation: the store position had not moved, so the poller never looked again).
@Suite struct CarriedSpacesPollTests {
    final class Changes: @unchecked Sendable {
        private let lock = NSLock()
        private var list: [(added: Set<SpaceID>, removed: Set<SpaceID>)] = []
        func add(_ a: Set<SpaceID>, _ r: Set<SpaceID>) { lock.withLock { list.append((a, r)) } }
        var all: [(added: Set<SpaceID>, removed: Set<SpaceID>)] { lock.withLock { list } }
    }

    @Test func aSpaceJoinedInAnotherProcessIsNoticedWithoutAnyEnvelope() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let creator = try Node.initialize(dataDir: DataDirectory(path: dir.path + "/a"), office: "สำนักงาน ก", logger: quiet)
        defer { creator.close() }
        let joinerDir = DataDirectory(path: dir.path + "/b")
        let daemonSide = try Node.initialize(dataDir: joinerDir, office: "สำนักงาน ข", logger: quiet)
        defer { daemonSide.close() }
        let changes = Changes()
        let driver = NodeSyncDriver(
            storage: try daemonSide.envelopeStorage(), logger: quiet, carriedSpacesChanged: changes.add, now: { 42 })
        try driver.primeBaseline()
        let probe = try daemonSide.changeProbe()

        // The CLI, another process on the same data directory, joins a space.
        let space = try creator.createSpace(name: "สารบรรณ")
        let invitation = try creator.invite(space: space.id, invitee: daemonSide.nodeID, office: "สำนักงาน ข")
        let cli = try Node.open(dataDir: joinerDir, logger: quiet)
        _ = try cli.join(Invitation.parse(invitation.text))
        cli.close()

        #expect(try daemonSide.changeProbe() == probe, "the join stored no envelope")
        try driver.poll()
        #expect(changes.all.count == 1)
        #expect(changes.all.first?.added == [space.id])
        // Nothing changed since: no second report.
        try driver.poll()
        #expect(changes.all.count == 1)
    }
}
