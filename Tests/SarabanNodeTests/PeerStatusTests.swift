import Foundation
import SarabanCrypto
import SarabanNode
import SarabanStorage
@testable import SarabanSync
import SarabanTransport
import Testing

/// A clock that moves one millisecond a reading.
private final class Ticks: @unchecked Sendable {
    private let lock = NSLock()
    private var t: Int64 = 1_000

    func next() -> Int64 { lock.withLock { t += 1; return t } }
}

/// A ``PeerStatusStore`` that records what it is asked to write.
private final class RecordingStore: PeerStatusStore, @unchecked Sendable {
    private let lock = NSLock()
    private(set) var calls: [[PeerStatusChange]] = []

    func applyPeerStatus(_ changes: [PeerStatusChange]) async throws { lock.withLock { calls.append(changes) } }
    func peerStatuses() async throws -> [StoredPeerStatus] { [] }
}

private func progress(
    _ book: PeerStatusBook, peer: NodeID, _ space: SpaceID, local: [SigningPublicKey: UInt64], held: [SigningPublicKey: UInt64]
) {
    book.record(
        .progress(
            peer: peer,
            status: SpaceSyncStatus(
                space: space, local: FeedVector(local), peerHolds: FeedVector(held), batchesInFlight: 0, deliveriesPending: 0)))
}

@Suite struct PeerStatusTests {
    @Test func progressIsSavedAsTheLatestVectorPerSpaceAndTheLagsSummed() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try Node.initialize(dataDir: dir.data, office: "อบต.บ้านใหม่", logger: quiet)
        defer { node.close() }
        let ticks = Ticks()
        let book = PeerStatusBook(store: node.peerStatusStore, now: { ticks.next() })
        let peer = SigningKeyPair.generate().publicKey.nodeID
        let k1 = SigningKeyPair.generate().publicKey
        let k2 = SigningKeyPair.generate().publicKey
        let s1 = SpaceID(hi: 1, lo: 1)
        let s2 = SpaceID(hi: 2, lo: 2)
        book.record(.opened(peer: peer, role: .member, sharedSpaces: [s1, s2]))  // t 1001
        progress(book, peer: peer, s1, local: [k1: 5], held: [k1: 2])  // 1002
        progress(book, peer: peer, s2, local: [k2: 3], held: [:])  // 1003
        progress(book, peer: peer, s1, local: [k1: 5], held: [k1: 4, k2: 1])  // 1004: replaces s1's vector
        await book.flush()

        let saved = try #require(try node.peerStatuses()[peer.text])
        #expect(saved.sessions == 1 && saved.lastContact == 1004)
        #expect(saved.changesPeerLacks == 1 + 3)
        #expect(saved.changesWeLack == 1)
        #expect(saved.summaries?[s1.hex] == RecordedSummary(at: 1004, vector: FeedVector([k1: 4, k2: 1])))
        #expect(saved.summaries?[s2.hex] == RecordedSummary(at: 1003, vector: FeedVector()))
        #expect(saved.recordedVectors[s1]?.vector == FeedVector([k1: 4, k2: 1]))
        // Nothing is kept in a file any more.
        #expect(!FileManager.default.fileExists(atPath: dir.data.path + "/peers.json"))

        // A later flush keeps the spaces not heard from since and replaces the others; counters add up.
        book.record(.opened(peer: peer, role: .member, sharedSpaces: [s2]))  // 1005
        progress(book, peer: peer, s2, local: [k2: 3], held: [k2: 3])  // 1006
        await book.flush()
        let again = try #require(try node.peerStatuses()[peer.text])
        #expect(again.sessions == 2)
        #expect(again.summaries?[s1.hex]?.at == 1004)
        #expect(again.summaries?[s2.hex] == RecordedSummary(at: 1006, vector: FeedVector([k2: 3])))
        #expect(again.changesPeerLacks == 0 && again.changesWeLack == 0)
    }

    /// The cost that made a relay slow (issue 16): every session's end rewrote every peer's status.
    /// Now a flush after one session writes that peer's row and the cursors of its spaces, however
    /// many peers the node has.
    @Test func aSessionWritesOnlyItsOwnPeersRows() async throws {
        let store = RecordingStore()
        let book = PeerStatusBook(store: store)
        let peers = (0..<200).map { _ in SigningKeyPair.generate().publicKey.nodeID }
        let authors = (0..<200).map { _ in SigningKeyPair.generate().publicKey }
        let space = SpaceID(hi: 9, lo: 9)
        let everyone = Dictionary(uniqueKeysWithValues: authors.map { ($0, UInt64(3)) })
        for p in peers {
            book.record(.opened(peer: p, role: .member, sharedSpaces: [space]))
            progress(book, peer: p, space, local: everyone, held: everyone)
        }
        await book.flush()
        #expect(store.calls.count == 1 && store.calls[0].count == 200)

        let one = peers[17]
        book.record(.opened(peer: one, role: .member, sharedSpaces: [space]))
        progress(book, peer: one, space, local: everyone, held: everyone)
        book.record(.synced(peer: one, stats: SyncStats()))
        await book.flush()
        #expect(store.calls.count == 2)
        let second = store.calls[1]
        #expect(second.map(\.peer) == [one.publicKey])
        #expect(second[0].sessions == 1 && second[0].cursors.count == 1)
        // Nothing left to write: an idle flush writes nothing.
        await book.flush()
        #expect(store.calls.count == 2)
    }

    /// A status file left by an older saraban is still read for the peers the database lacks.
    @Test func aLegacyPeersFileIsReadForPeersWithoutRows() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try Node.initialize(dataDir: dir.data, office: "อบต.บ้านใหม่", logger: quiet)
        defer { node.close() }
        let old = SigningKeyPair.generate().publicKey.nodeID
        let fresh = SigningKeyPair.generate().publicKey.nodeID
        let file = """
            [{"node_id": "\(old.text)", "last_contact": 5, "sessions": 3, "changes_peer_lacks": 2, "changes_we_lack": 1,
              "envelopes_sent": 0, "envelopes_received": 0, "bytes_sent": 0, "bytes_received": 0},
             {"node_id": "\(fresh.text)", "last_contact": 6, "sessions": 9, "changes_peer_lacks": 0, "changes_we_lack": 0,
              "envelopes_sent": 0, "envelopes_received": 0, "bytes_sent": 0, "bytes_received": 0}]
            """
        try Data(file.utf8).write(to: URL(fileURLWithPath: dir.data.path + "/peers.json"))
        let book = PeerStatusBook(store: node.peerStatusStore, now: { 100 })
        book.record(.opened(peer: fresh, role: .member, sharedSpaces: []))
        await book.flush()
        let all = try node.peerStatuses()
        #expect(all[old.text]?.sessions == 3 && all[old.text]?.changesPeerLacks == 2)
        #expect(all[fresh.text]?.sessions == 1 && all[fresh.text]?.lastContact == 100)
    }
}
