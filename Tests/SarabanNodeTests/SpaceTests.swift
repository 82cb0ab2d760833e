import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// Several nodes in one temporary directory, exchanging envelopes by calling the APIs directly.
final class Office {
    let dir: TempDir
    var nodes: [Node] = []

    init(_ name: String = #function) { dir = TempDir(name) }

    func node(_ name: String, relay: Bool = false) throws -> Node {
        let n = try Node.initialize(
            dataDir: DataDirectory(path: dir.path + "/" + name), office: "office " + name, relay: relay, logger: quiet)
        nodes.append(n)
        return n
    }

    func close() {
        for n in nodes { n.close() }
        dir.cleanup()
    }
}

let all = FetchLimit(envelopes: 100_000, bytes: 1 << 30)

/// Sends `to` everything `from` holds of `space` that it lacks.
@discardableResult
func exchange(_ from: Node, _ to: Node, _ space: SpaceID) throws -> ReceiveReport {
    let (envs, complete) = try from.envelopes(space: space, after: try to.feedVector(space: space), limit: all)
    #expect(complete)
    return try to.receiveEnvelopes(space: space, envs)
}

func envelopes(_ node: Node, _ space: SpaceID) throws -> [Envelope] {
    try node.envelopes(space: space, after: FeedVector(), limit: all).envelopes
}

func visibleDocuments(_ node: Node, _ space: SpaceID) throws -> [String: String] {
    var out: [String: String] = [:]
    for d in try node.documents() where d.kind != SpaceDocument.kind {
        let s = try node.space(ofDocument: d.id)
        if s == space { out[d.id.description] = d.display("subject") ?? "" }
    }
    return out
}

/// A and B sharing A's default space: B joined by invitation and caught up.
func pair(_ office: Office) throws -> (a: Node, b: Node, space: SpaceID) {
    let a = try office.node("a")
    let b = try office.node("b")
    let space = try #require(try a.store.defaultSpace())
    let inv = try a.invite(space: space, invitee: b.nodeID, office: "office b")
    try b.join(try Invitation.parse(inv.text), as: "a's office")
    let r = try exchange(a, b, space)
    #expect(r.refused.isEmpty, "\(r.refused.map(\.error))")
    return (a, b, space)
}

@Suite struct EnvelopeTests {
    @Test func aWriteIsSealedInTheSameTransaction() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let space = try #require(try a.store.defaultSpace())
        #expect(try a.feedVector(space: space).isEmpty)
        let doc = try a.createDocument(kind: "letter", fields: [("subject", thai)])
        let envs = try envelopes(a, space)
        #expect(envs.count == 1)
        let e = try #require(envs.first)
        #expect(e.header.author == a.identity.publicKey)
        #expect(e.header.seqStart == 1 && e.header.seqEnd == 1 && e.header.epoch == 0 && e.header.previousHash.isZero)
        #expect(try a.feedVector(space: space)[a.identity.publicKey] == 1)
        #expect(try a.status().changes == 1)
        // The envelope holds exactly the logged change.
        let key = try #require(try a.store.spaceKey(space, epoch: 0))
        let opened = try EnvelopePayload.open(e, key: key)
        #expect(opened.changes.count == 1)
        let sealed = try #require(opened.changes.first)
        let logged = try #require(try a.store.change(ChangeID(author: a.replica, seq: 1), space: space))
        #expect(sealed == logged)
        #expect(sealed.documents.contains(doc))
        // A second write chains on the first.
        try a.set(doc, field: "urgency", value: .string("ด่วน"))
        let second = try envelopes(a, space)
        #expect(second.count == 2 && second[1].header.previousHash == e.id && second[1].header.seqStart == 2)
        #expect(try a.changeProbe() == 2)
    }

    @Test func receiveAppliesAnotherNodesEnvelopesAndIsIdempotent() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, space) = try pair(office)
        let doc = try a.createDocument(kind: "letter", fields: [("subject", thai)])
        let r = try exchange(a, b, space)
        #expect(r.accepted.count == 1 && r.refused.isEmpty)
        #expect(try b.document(doc).display("subject") == thai)
        // Replaying everything is a no-op, not an error.
        let before = try b.status()
        let again = try b.receiveEnvelopes(space: space, try envelopes(a, space))
        let total = try envelopes(a, space).count
        #expect(again.accepted.isEmpty && again.refused.isEmpty && again.duplicates.count == total)
        #expect(try b.status() == before)
        #expect(again.holds == (try a.feedVector(space: space)))
        // And back: B writes, A applies.
        try b.set(doc, field: "status", value: .string("รับแล้ว"))
        let back = try exchange(b, a, space)
        #expect(back.accepted.count == 1 && back.refused.isEmpty)
        #expect(try a.document(doc).display("status") == "รับแล้ว")
        #expect(try visibleDocuments(a, space) == (try visibleDocuments(b, space)))
    }

    @Test func tamperedEnvelopeIsRefused() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, space) = try pair(office)
        _ = try a.createDocument(fields: [("subject", "x")])
        let e = try #require(try envelopes(a, space).last)
        for offset in [5, 40, EnvelopeHeader.byteCount + 30, e.bytes.count - 100, e.bytes.count - 1] {
            var bytes = e.bytes
            bytes[offset] ^= 0x01
            guard let bad = try? Envelope.decode(bytes) else { continue }  // header rules caught it already
            let r = try b.receiveEnvelopes(space: space, [bad])
            #expect(r.accepted.isEmpty)
            #expect(r.refused.count == 1, "offset \(offset)")
            let code = r.refused.first?.error.code
            #expect(code == .tampered || code == .notAMember || code == .wrongSpace || code == .wrongEpoch || code == .gap)
        }
        // Ciphertext and signature tampering are "tampered" exactly.
        var bytes = e.bytes
        bytes[EnvelopeHeader.byteCount + 30] ^= 0x80
        let r = try b.receiveEnvelopes(space: space, [try Envelope.decode(bytes)])
        #expect(r.refused.first?.error.code == .tampered)
        // The genuine one is still accepted: nothing was stored for the tampered ones.
        #expect(try b.receiveEnvelopes(space: space, [e]).accepted.count == 1)
    }

    @Test func gapIsRefusedThenFilledAndApplied() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, space) = try pair(office)
        let held = try b.feedVector(space: space)
        let d1 = try a.createDocument(fields: [("subject", "one")])
        let d2 = try a.createDocument(fields: [("subject", "two")])
        let d3 = try a.createDocument(fields: [("subject", "three")])
        let new = try a.envelopes(space: space, after: held, limit: all).envelopes
        #expect(new.count == 3)
        // Out of order: the third first is a gap; the second then also a gap.
        let r1 = try b.receiveEnvelopes(space: space, [new[2], new[1]])
        #expect(r1.refused.map(\.error.code) == [.gap, .gap])
        #expect(r1.holds == held)
        // Fill the gap: everything applies, nothing was lost.
        let r2 = try b.receiveEnvelopes(space: space, [new[0], new[1], new[2]])
        #expect(r2.accepted.count == 3 && r2.refused.isEmpty)
        for (d, s) in [(d1, "one"), (d2, "two"), (d3, "three")] { #expect(try b.document(d).display("subject") == s) }
        // Reordered: an envelope already covered but not the stored one at its position.
        let r3 = try b.receiveEnvelopes(space: space, [new[0]])
        #expect(r3.duplicates.count == 1 && r3.refused.isEmpty)
    }

    @Test func forgedAuthorAndWrongEpochAreRefused() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, space) = try pair(office)
        let key = try #require(try a.store.spaceKey(space, epoch: 0))
        // A stranger who somehow holds the key still cannot author in the space.
        let stranger = SigningKeyPair.generate()
        let forged = try Envelope.seal(
            plaintext: [], header: EnvelopeHeader(
                spaceID: space.bytes, author: stranger.publicKey, seqStart: 1, seqEnd: 1, epoch: 0, previousHash: .zero),
            key: key, signer: stranger)
        // It is held (its author may be added later), never applied nor counted as held in the feed.
        let held = try b.receiveEnvelopes(space: space, [forged])
        #expect(held.held.count == 1 && held.accepted.isEmpty && held.refused.isEmpty)
        #expect(try b.feedVector(space: space)[stranger.publicKey] == 0)
        #expect(try b.authority(space).held == 1)
        // A member's envelope in an epoch nobody has a key for.
        let head = try a.feedVector(space: space)[a.identity.publicKey]
        let last = try #require(try envelopes(a, space).last)
        let wrongEpoch = try Envelope.seal(
            plaintext: [], header: EnvelopeHeader(
                spaceID: space.bytes, author: a.identity.publicKey, seqStart: head + 1, seqEnd: head + 1, epoch: 7,
                previousHash: last.id),
            key: SymmetricKey.generate(), signer: a.identity)
        let r = try b.receiveEnvelopes(space: space, [wrongEpoch])
        #expect(r.held.count == 1 && r.held[0].reason.contains("epoch 7"))
        #expect(try b.feedVector(space: space)[a.identity.publicKey] == head)
        // An envelope for another space in this batch.
        let other = try a.createSpace(name: "other")
        let inOther = try #require(try envelopes(a, other.id).first)
        #expect(try b.receiveEnvelopes(space: space, [inOther]).refused.first?.error.code == .wrongSpace)
        // A space B does not carry.
        #expect(try b.receiveEnvelopes(space: other.id, [inOther]).refused.first?.error.code == .spaceNotCarried)
        // A fork: a different envelope at a stored position.
        let first = try #require(try envelopes(a, space).first)
        let fork = try Envelope.seal(
            plaintext: [], header: first.header, key: key, signer: a.identity)
        #expect(try b.receiveEnvelopes(space: space, [fork]).refused.first?.error.code == .fork)
        // A stored envelope altered on the way is not a fork (its author never signed it).
        var altered = first.bytes
        altered[altered.count - 100] ^= 0x01
        let notAFork = try b.receiveEnvelopes(space: space, [try Envelope.decode(altered)]).refused.first?.error
        #expect(notAFork?.code == .tampered)
        #expect(notAFork?.forkProof == nil)
    }
}

@Suite struct SpaceTests {
    @Test func invitationRoundTripBetweenTwoNodes() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let s = try a.createSpace(name: "กองคลัง")
        let d1 = try a.createDocument(kind: "letter", fields: [("subject", thai)], space: s.id)
        let inv = try a.invite(space: s.id, invitee: b.nodeID)
        #expect(!inv.text.contains(thai))
        let joined = try b.join(try Invitation.parse(inv.text))
        #expect(joined.id == s.id && joined.name == "กองคลัง" && joined.epoch == 0)
        #expect(joined.members.filter(\.isActive).count == 2)
        #expect(try exchange(a, b, s.id).refused.isEmpty)
        #expect(try b.document(d1).display("subject") == thai)
        let d2 = try b.createDocument(kind: "memo", fields: [("subject", "บันทึกข้อความ")], space: s.id)
        #expect(try exchange(b, a, s.id).refused.isEmpty)
        #expect(try a.document(d2).display("subject") == "บันทึกข้อความ")
        #expect(try visibleDocuments(a, s.id) == (try visibleDocuments(b, s.id)))
        #expect(try visibleDocuments(a, s.id).count == 2)
        // Both see the same members, from the space's own membership document.
        let ma = Set(try #require(try a.spaceInfo(s.id)).members.filter(\.isActive).map(\.key))
        let mb = Set(try #require(try b.spaceInfo(s.id)).members.filter(\.isActive).map(\.key))
        #expect(ma == mb && ma == [a.identity.publicKey, b.identity.publicKey])
        // Documents of the default space stay out of the shared one.
        let private1 = try a.createDocument(fields: [("subject", "ลับ")])
        #expect(try a.space(ofDocument: private1) != s.id)
        #expect(try b.carriedSpaces()[s.id] == (try a.feedVector(space: s.id)))
        #expect(try a.memberNodeIDs() == [b.nodeID])
    }

    @Test func anInvitationForAnotherNodeCannotBeOpened() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let c = try office.node("c")
        let s = try a.createSpace(name: "s")
        let inv = try a.invite(space: s.id, invitee: b.nodeID)
        #expect(throws: NodeError.self) { try c.join(try Invitation.parse(inv.text)) }
        do {
            try c.join(try Invitation.parse(inv.text))
        } catch {
            #expect(error.code == .refused)
            #expect(error.message.contains("not this node"))
        }
        #expect(try c.spaceInfo(s.id) == nil)
        // A tampered invitation fails its signature.
        var text = inv.text
        let i = text.index(text.startIndex, offsetBy: Invitation.prefix.count + 20)
        text.replaceSubrange(i...i, with: text[i] == "A" ? "B" : "A")
        #expect(throws: NodeError.self) { try Invitation.parse(text) }
    }

    @Test func aRemovedMemberCannotReadWhatIsWrittenAfterwards() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let c = try office.node("c")
        let s = try a.createSpace(name: "s")
        try b.join(try Invitation.parse(try a.invite(space: s.id, invitee: b.nodeID).text))
        try c.join(try Invitation.parse(try a.invite(space: s.id, invitee: c.nodeID).text))
        let before = try a.createDocument(fields: [("subject", "before")], space: s.id)
        #expect(try exchange(a, b, s.id).refused.isEmpty)
        #expect(try exchange(a, c, s.id).refused.isEmpty)
        #expect(try c.document(before).display("subject") == "before")

        let epoch = try a.removeMember(space: s.id, member: c.nodeID)
        #expect(epoch == 1)
        #expect(try a.spaceInfo(s.id)?.epoch == 1)
        let after = try a.createDocument(fields: [("subject", "after-removal")], space: s.id)
        #expect(try envelopes(a, s.id).last?.header.epoch == 1)

        // B (still a member) opens the rekey record and reads what follows.
        let rb = try exchange(a, b, s.id)
        #expect(rb.refused.isEmpty)
        #expect(try b.document(after).display("subject") == "after-removal")
        #expect(try b.spaceInfo(s.id)?.epoch == 1)
        // C gets the removal (sealed in the old epoch) but not the new key.
        let rc = try exchange(a, c, s.id)
        #expect(rc.refused.count == 1)
        let refusal = try #require(rc.refused.first?.error)
        #expect(refusal.code == .wrongEpoch)
        #expect(refusal.message.contains("removed"))
        #expect(throws: NodeError.self) { try c.document(after) }
        #expect(try c.document(before).display("subject") == "before")  // what it had stays readable
        #expect(try c.store.spaceKey(s.id, epoch: 1) == nil)
        // C's view of the members no longer includes itself, so it cannot write into the space.
        #expect(throws: NodeError.self) { try c.createDocument(fields: [("subject", "x")], space: s.id) }
        // B's writes in the new epoch reach A.
        let fromB = try b.createDocument(fields: [("subject", "from b")], space: s.id)
        #expect(try exchange(b, a, s.id).refused.isEmpty)
        #expect(try a.document(fromB).display("subject") == "from b")
    }

    @Test func relayStoresAndVerifiesButHoldsNoKey() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let b = try office.node("b")
        let relay = try office.node("relay", relay: true)
        #expect(relay.role == .relay)
        #expect(try relay.spaces().isEmpty)
        let s = try a.createSpace(name: "s")
        try b.join(try Invitation.parse(try a.invite(space: s.id, invitee: b.nodeID).text))
        try relay.carry(space: s.id)
        let marker = "PLAINTEXT-MARKER-ลับที่สุด-42"
        let doc = try a.createDocument(fields: [("subject", marker)], space: s.id)
        let r = try exchange(a, relay, s.id)
        let total = try envelopes(a, s.id).count
        #expect(r.refused.isEmpty && r.accepted.count == total)
        #expect(try relay.feedVector(space: s.id) == (try a.feedVector(space: s.id)))
        // Still verifies: tampered and gapped envelopes are refused by the relay too.
        let extra = try a.createDocument(fields: [("subject", "x")], space: s.id)
        _ = extra
        let newest = try #require(try envelopes(a, s.id).last)
        var bytes = newest.bytes
        bytes[EnvelopeHeader.byteCount + 10] ^= 1
        #expect(try relay.receiveEnvelopes(space: s.id, [try Envelope.decode(bytes)]).refused.first?.error.code == .tampered)
        // B catches up from the relay alone.
        #expect(try exchange(relay, b, s.id).refused.isEmpty)
        #expect(try b.document(doc).display("subject") == marker)
        #expect(try relay.store.spaceKeys(s.id).isEmpty)
        #expect(try relay.documents().isEmpty)
        #expect(throws: NodeError.self) { try relay.createDocument(fields: [("subject", "y")]) }
        // Nothing readable in the relay's files; the member's database does hold it (the test is sound).
        relay.close()
        a.close()
        for name in ["relay", "a"] {
            var found = false
            let dirPath = office.dir.path + "/" + name
            for f in try FileManager.default.contentsOfDirectory(atPath: dirPath) {
                let data = try Data(contentsOf: URL(fileURLWithPath: dirPath + "/" + f))
                if data.range(of: Data(marker.utf8)) != nil { found = true }
            }
            #expect(found == (name == "a"), "\(name)")
        }
    }

    @Test func keyFilesAndDatabaseAre0600() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        try a.createSpace(name: "s")
        #expect(mode(a.dataDirectory.keyPath) == 0o600)
        #expect(mode(a.dataDirectory.databasePath) == 0o600)
        #expect(mode(a.dataDirectory.path) == 0o700)
        // Space keys are never printed.
        let defaultSpace = try #require(try a.store.defaultSpace())
        let key = try #require(try a.store.spaceKey(defaultSpace, epoch: 0))
        #expect("\(key)".contains("redacted"))
    }

    @Test func largeWritesAreSplitIntoEnvelopesThatFitAFrame() throws {
        let office = Office()
        defer { office.close() }
        let a = try office.node("a")
        let space = try #require(try a.store.defaultSpace())
        let big = String(repeating: "ก", count: 400_000)  // 1.2 MB of UTF-8 per change
        _ = try a.store.write(space: space, signer: a.identity) { w in
            for _ in 0..<8 {
                _ = try w.change(time: 1) { tx, docs in
                    let id = try tx.createDocument(kind: "document", in: &docs)
                    try tx.set(id, field: "body", value: .string(big), in: &docs)
                }
            }
        }
        let envs = try envelopes(a, space)
        #expect(envs.count > 1)
        #expect(envs.allSatisfy { $0.bytes.count <= SyncLimits.maximumEnvelopeByteCount })
        #expect(envs.last?.header.seqEnd == 8)
        for (i, e) in envs.enumerated().dropFirst() {
            #expect(e.header.seqStart == envs[i - 1].header.seqEnd + 1 && e.header.previousHash == envs[i - 1].id)
        }
        let b = try office.node("b")
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID).text), as: "a's office")
        let r = try exchange(a, b, space)
        #expect(r.refused.isEmpty && r.applied.applied == 10)
    }
}
