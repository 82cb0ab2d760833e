import Foundation
import SarabanCrypto
import SarabanNode
@testable import SarabanSync
import SarabanTransport
import Testing

/// A clock that moves one millisecond a reading.
private final class Ticks: @unchecked Sendable {
    private let lock = NSLock()
    private var t: Int64 = 1_000

    func next() -> Int64 { lock.withLock { t += 1; return t } }
}

@Suite struct PeerStatusTests {
    @Test func progressIsSavedAsTheLatestVectorPerSpaceAndTheLagsSummed() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.data.path, withIntermediateDirectories: true)
        let ticks = Ticks()
        let book = PeerStatusBook(directory: dir.data, now: { ticks.next() })
        let peer = SigningKeyPair.generate().publicKey.nodeID
        let k1 = SigningKeyPair.generate().publicKey
        let k2 = SigningKeyPair.generate().publicKey
        let s1 = SpaceID(hi: 1, lo: 1)
        let s2 = SpaceID(hi: 2, lo: 2)
        func progress(_ space: SpaceID, local: [SigningPublicKey: UInt64], peer held: [SigningPublicKey: UInt64]) {
            book.record(
                .progress(
                    peer: peer,
                    status: SpaceSyncStatus(
                        space: space, local: FeedVector(local), peerHolds: FeedVector(held), batchesInFlight: 0,
                        deliveriesPending: 0)))
        }
        book.record(.opened(peer: peer, role: .member, sharedSpaces: [s1, s2]))  // t 1001
        progress(s1, local: [k1: 5], peer: [k1: 2])  // 1002
        progress(s2, local: [k2: 3], peer: [:])  // 1003
        progress(s1, local: [k1: 5], peer: [k1: 4, k2: 1])  // 1004: replaces s1's vector
        book.save()

        let saved = try #require(PeerStatusBook.load(dir.data)[peer.text])
        #expect(saved.sessions == 1 && saved.lastContact == 1004)
        #expect(saved.changesPeerLacks == 1 + 3)
        #expect(saved.changesWeLack == 1)
        #expect(saved.summaries?[s1.hex] == RecordedSummary(at: 1004, vector: FeedVector([k1: 4, k2: 1])))
        #expect(saved.summaries?[s2.hex] == RecordedSummary(at: 1003, vector: FeedVector()))
        #expect(saved.recordedVectors[s1]?.vector == FeedVector([k1: 4, k2: 1]))

        // The file's form: per space hex, `at` and `holds` (author node id → highest sequence).
        let data = try #require(FileManager.default.contents(atPath: book.path))
        let list = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        let summaries = try #require(list.first?["summaries"] as? [String: [String: Any]])
        #expect(summaries[s1.hex]?["at"] as? Int == 1004)
        #expect(summaries[s1.hex]?["holds"] as? [String: Int] == [k1.nodeID.text: 4, k2.nodeID.text: 1])

        // A later save keeps the spaces not heard from since and replaces the others.
        progress(s2, local: [k2: 3], peer: [k2: 3])  // 1005
        book.save()
        let again = try #require(PeerStatusBook.load(dir.data)[peer.text])
        #expect(again.summaries?[s1.hex]?.at == 1004)
        #expect(again.summaries?[s2.hex] == RecordedSummary(at: 1005, vector: FeedVector([k2: 3])))
        #expect(again.changesPeerLacks == 1 && again.changesWeLack == 1)
    }
}
