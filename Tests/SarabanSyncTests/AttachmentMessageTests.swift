import SarabanCrypto
import SarabanSync
import Testing

/// The `attachment` message (tag 9): its codec and how a session passes it through.
@Suite struct AttachmentMessageTests {
    let s = space(7)
    let root = [UInt8](repeating: 0xAB, count: 32)

    @Test func everyKindRoundTrips() throws {
        let messages: [AttachmentMessage] = [
            .offer(space: s, roots: [root, [UInt8](repeating: 1, count: 32)]),
            .want(space: s, root: root, manifest: true, indices: []),
            .want(space: s, root: root, manifest: false, indices: [0, 3, 65_535]),
            .manifest(space: s, root: root, hashes: [[UInt8](repeating: 2, count: 32)]),
            .chunk(space: s, root: root, index: 4, bytes: [UInt8](repeating: 9, count: 262_184)),
            .missing(space: s, root: root, indices: []),
            .missing(space: s, root: root, indices: [1, 2]),
        ]
        for m in messages {
            let bytes = SyncMessage.attachment(m).encoded()
            #expect(bytes[1] == 9)
            #expect(try SyncMessage.decode(bytes) == .attachment(m))
        }
    }

    @Test func malformedMessagesAreRefused() {
        func bad(_ m: AttachmentMessage, _ edit: (inout [UInt8]) -> Void) -> Bool {
            var b = SyncMessage.attachment(m).encoded()
            edit(&b)
            return (try? SyncMessage.decode(b)) == nil
        }
        let head = 2 + 16 + 1 + 32  // version, tag, space, kind, root
        // Indices out of order.
        #expect(bad(.want(space: s, root: root, manifest: false, indices: [1, 2])) { $0[head + 3] = 0 ; $0[head + 2] = 5 })
        // A want asking for nothing.
        #expect(bad(.want(space: s, root: root, manifest: true, indices: [])) { $0[head] = 0 })
        // An unknown kind, a truncated chunk, trailing bytes.
        #expect(bad(.missing(space: s, root: root, indices: [])) { $0[18] = 77 })
        #expect(bad(.chunk(space: s, root: root, index: 0, bytes: [1, 2, 3])) { $0.removeLast() })
        #expect(bad(.offer(space: s, roots: [root])) { $0.append(0) })
    }

    @Test func aSessionPassesAttachmentsOfSharedSpacesOnly() {
        let a = deterministicKeys(1)
        let b = deterministicKeys(2)
        let cfg = SyncConfiguration(role: .member, spaces: [s: FeedVector()])
        var sa = SyncSession(configuration: cfg, peer: b.publicKey)
        var sb = SyncSession(configuration: cfg, peer: a.publicKey)
        let t = SyncInstant.seconds(1)
        // Nothing is sent before hellos are exchanged.
        #expect(sa.sendAttachment(.missing(space: s, root: root, indices: [])).isEmpty)
        func bytes(_ actions: [SyncAction]) -> [UInt8] {
            actions.reduce(into: []) { if case .send(let b) = $1 { $0 += b } }
        }
        let helloA = bytes(sa.start(now: t))
        let helloB = bytes(sb.start(now: t))
        _ = sa.receive(helloB, now: t)
        _ = sb.receive(helloA, now: t)
        let want = AttachmentMessage.want(space: s, root: root, manifest: true, indices: [0])
        let sent = bytes(sa.sendAttachment(want))
        #expect(!sent.isEmpty)
        let got = sb.receive(sent, now: t)
        #expect(got.contains { if case .attachment(let m) = $0 { m == want } else { false } })
        // The session never sends one for a space the peer does not carry; receiving one is a violation.
        #expect(sa.sendAttachment(.missing(space: space(8), root: root, indices: [])).isEmpty)
        let rogue = SyncMessage.attachment(.missing(space: space(8), root: root, indices: [])).framed()
        let closed = sb.receive(rogue, now: t)
        #expect(closed.contains { if case .close(.violation(let e)) = $0 { e.code == .spaceNotShared } else { false } })
    }
}
