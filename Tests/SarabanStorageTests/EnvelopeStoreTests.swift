import Foundation
import SarabanCore
import SarabanCrypto
@testable import SarabanStorage
import SarabanFeed
import Testing

private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A member store of one space whose only member (and writer) is `signer`.
private func memberStore(_ path: String, signer: SigningKeyPair, space: SpaceID, key: SymmetricKey, upTo: String? = nil)
    throws -> Store
{
    let store = try Store.open(
        path: path, replica: ReplicaID(bytes: signer.publicKey.rawRepresentation.prefix(16)), create: true,
        migratingUpTo: upTo)
    try store.addSpace(
        id: space, name: "s", role: .member, epoch: 0, keys: [.legacy(0): (0, key)], members: [SpaceMember(key: signer.publicKey)])
    return store
}

/// Writes `count` changes, each creating a document, in transactions of `perWrite`.
private func write(_ store: Store, space: SpaceID, signer: SigningKeyPair, count: Int, perWrite: Int) throws {
    var i = 0
    while i < count {
        let end = min(count, i + perWrite)
        _ = try store.write(space: space, signer: signer) { w in
            for j in i..<end {
                _ = try w.change(time: Int64(j)) { tx, docs in
                    let doc = try tx.createDocument(kind: "t", in: &docs)
                    try tx.set(doc, field: "n", value: .int(Int64(j)), in: &docs)
                }
            }
        }
        i = end
    }
}

private func allEnvelopes(_ store: Store, space: SpaceID) throws -> [Envelope] {
    try store.envelopes(space: space, after: FeedVector(), maxEnvelopes: 1 << 20, maxBytes: 1 << 40).envelopes
}

@Suite struct EnvelopeStoreTests {
    /// A database written by the release before the membership log (schema 2, Fixtures/legacy):
    /// it opens, migrates to the current schema with every envelope in store order, its keys
    /// move to the key ring as legacy keys, and its feed goes on.
    @Test func migratingASchema2DatabaseKeepsEveryEnvelopeAndKey() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let fixture = repositoryRoot.appendingPathComponent("Fixtures/legacy/v2-network/mueang")
        try FileManager.default.copyItem(atPath: fixture.appendingPathComponent("saraban.db").path, toPath: dir.file("s.db"))
        let seed = [UInt8](try Data(contentsOf: fixture.appendingPathComponent("node.key")))
        let space = SpaceID(hex: "8369b6a83b6388a40234c4ffeba60620")!
        let author = try #require(try SigningPublicKey(rawRepresentation: Array(seed.suffix(32))))
        let store = try Store.open(path: dir.file("s.db"), replica: ReplicaID(bytes: author.rawRepresentation.prefix(16)))
        defer { try? store.close() }
        #expect(try store.schemaInfo().migrations == ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10"])
        #expect(try allEnvelopes(store, space: space).count == 7)
        #expect(try store.envelopeLogPosition() == 7)
        #expect(try store.feedVector(space: space)[author] == 6)
        let ring = try store.spaceKeys(space)
        #expect(Set(ring.keys) == [.legacy(0), .legacy(1)])
        #expect(try store.space(space)?.epoch == 1)
        #expect(try store.sealingKey(space)?.ref == .legacy(1))
        #expect(try store.authority(space).hasLog == false)
    }

    @Test func aBatchIsAppliedTogetherAndRefusalsStayPerEnvelope() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let writer = SigningKeyPair.generate()
        let space = SpaceID(bytes: [UInt8](repeating: 9, count: 16))!
        let key = SymmetricKey.generate()
        let source = try memberStore(dir.file("w.db"), signer: writer, space: space, key: key)
        defer { try? source.close() }
        try write(source, space: space, signer: writer, count: 40, perWrite: 4)
        let feed = try allEnvelopes(source, space: space)
        #expect(feed.count == 10)

        let me = SigningKeyPair.generate()
        let batched = try memberStore(dir.file("a.db"), signer: me, space: space, key: key)
        defer { try? batched.close() }
        try batched.addSpaceMember(space, SpaceMember(key: writer.publicKey))
        // A tampered copy of envelope 6 in the middle, a replay of 2, then the rest.
        var bad = feed[5].bytes
        bad[bad.count / 2] ^= 1
        let tampered = try? Envelope.decode(bad)
        var batch = Array(feed[0..<5])
        if let tampered { batch.append(tampered) }
        batch.append(feed[1])
        batch += feed[5...]
        let report = try batched.receiveEnvelopes(space: space, batch, identity: me)
        #expect(report.accepted.map(\.id) == feed.map(\.id))
        #expect(report.duplicates.map(\.id) == [feed[1].id])
        #expect(report.refused.count == (tampered == nil ? 0 : 1))
        #expect(report.refused.first?.error.code == .tampered)
        #expect(report.applied.applied == 40 && report.applied.documents.count == 40)
        #expect(report.holds[writer.publicKey] == 40)

        // The same envelopes one at a time give the same documents.
        let single = try memberStore(dir.file("b.db"), signer: me, space: space, key: key)
        defer { try? single.close() }
        try single.addSpaceMember(space, SpaceMember(key: writer.publicKey))
        for e in feed { #expect(try single.receiveEnvelopes(space: space, [e], identity: me).accepted.count == 1) }
        #expect(try single.documents().map { $0.encoded() } == batched.documents().map { $0.encoded() })
        #expect(try single.documents().count == 40)

        // A gap inside a batch: the envelopes after it are refused, those before it applied.
        let gapped = try memberStore(dir.file("c.db"), signer: me, space: space, key: key)
        defer { try? gapped.close() }
        try gapped.addSpaceMember(space, SpaceMember(key: writer.publicKey))
        let r = try gapped.receiveEnvelopes(space: space, Array(feed[0..<3]) + Array(feed[4...]), identity: me)
        #expect(r.accepted.map(\.id) == feed[0..<3].map(\.id))
        #expect(r.refused.count == 6 && r.refused.allSatisfy { $0.error.code == .gap })
        #expect(try gapped.documents().count == 12)
    }
}

@Suite struct ReceivedChangeLogTests {
    /// A receiver logs each change as its author sealed it: for an honest author those are the
    /// bytes `Change.encoded()` gives, the same the author logged. Delivering the feed again
    /// (after a reopen) is a no-op.
    @Test func loggedBytesAreTheAuthorsAndRedeliveryIsANoOp() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let writer = SigningKeyPair.generate()
        let space = SpaceID(bytes: [UInt8](repeating: 5, count: 16))!
        let key = SymmetricKey.generate()
        let source = try memberStore(dir.file("w.db"), signer: writer, space: space, key: key)
        defer { try? source.close() }
        try write(source, space: space, signer: writer, count: 50, perWrite: 7)
        let feed = try allEnvelopes(source, space: space)
        let written = try source.encodedChanges(space: space)
        #expect(written.count == 50)

        let me = SigningKeyPair.generate()
        let path = dir.file("r.db")
        let receiver = try memberStore(path, signer: me, space: space, key: key)
        try receiver.addSpaceMember(space, SpaceMember(key: writer.publicKey))
        // Split in two batches, the second overlapping the first.
        let first = try receiver.receiveEnvelopes(space: space, Array(feed.prefix(4)), identity: me)
        let second = try receiver.receiveEnvelopes(space: space, Array(feed.dropFirst(2)), identity: me)
        #expect(first.refused.isEmpty && second.refused.isEmpty)
        #expect(first.applied.applied + second.applied.applied == 50 && second.duplicates.count == 2)
        let received = try receiver.encodedChanges(space: space)
        #expect(received.map(\.id) == written.map(\.id))
        #expect(received.map(\.bytes) == written.map(\.bytes))
        for (c, r) in zip(try receiver.changes(space: space), received) { #expect(c.encoded() == r.bytes) }
        let documents = try receiver.documents().map { $0.encoded() }
        #expect(documents == (try source.documents().map { $0.encoded() }))
        try receiver.close()

        let again = try Store.open(path: path, replica: ReplicaID(bytes: me.publicKey.rawRepresentation.prefix(16)))
        defer { try? again.close() }
        let replay = try again.receiveEnvelopes(space: space, feed, identity: me)
        #expect(replay.accepted.isEmpty && replay.refused.isEmpty && replay.duplicates.count == feed.count)
        #expect(replay.applied.applied == 0 && replay.applied.documents.isEmpty)
        #expect(try again.documents().map { $0.encoded() } == documents)
        #expect(try again.encodedChanges(space: space).map(\.bytes) == written.map(\.bytes))
    }
}
