import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

private let s1 = space(1)

/// Members `count` nodes that all belong to `spaces` with one shared key.
private func members(_ count: Int, spaces: [SpaceID]) -> [TestNode] {
    let keys = spaces.map { _ in SymmetricKey.generate() }
    return (0..<count).map { i in
        let n = TestNode(["A", "B", "C", "D", "E"][i], index: UInt64(i + 1))
        for (s, k) in zip(spaces, keys) { n.join(s, key: k) }
        return n
    }
}

@Suite struct CatchUpTests {
    @Test func fullCatchUpBothWays() throws {
        let ns = members(2, spaces: [s1, space(2)])
        ns[0].write(s1, envelopes: 30, changesPerEnvelope: 3)
        ns[1].write(s1, envelopes: 20)
        ns[1].write(space(2), envelopes: 5)
        let net = Network(ns, limits: SyncLimits(batchEnvelopes: 8, window: 2))
        let c = net.connect(0, 1)
        net.run()
        #expect(net.violations.isEmpty, "\(net.violations)")
        #expect(converged(ns, s1) && converged(ns, space(2)))
        #expect(ns[0].spaces[s1]!.vector.total == 110)
        #expect(c.sessions[0].isSettled && c.sessions[1].isSettled)
        #expect(c.synced[0] >= 1 && c.synced[1] >= 1)
        // Exactly what each lacked, nothing more.
        #expect(c.sessions[0].stats.envelopesSent == 30)
        #expect(c.sessions[1].stats.envelopesSent == 25)
        #expect(c.sessions[0].stats.duplicatesIgnored == 0 && c.sessions[1].stats.duplicatesIgnored == 0)
        #expect(ns[0].spaces[s1]!.refused.isEmpty && ns[1].spaces[s1]!.refused.isEmpty)
        // Peer status.
        let st = try #require(c.sessions[0].status(of: s1))
        #expect(st.changesPeerLacks == 0 && st.changesWeLack == 0)
    }

    @Test func onlyTheMissingEnvelopesAreSent() throws {
        let ns = members(2, spaces: [s1])
        let a = ns[0].write(s1, envelopes: 100)
        // B already holds A's first 60 (from some earlier exchange) and 10 of its own.
        _ = ns[1].ingest(s1, Array(a.prefix(60)))
        ns[1].write(s1, envelopes: 10)
        let net = Network(ns, limits: SyncLimits(batchEnvelopes: 16, window: 1))
        let c = net.connect(0, 1)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(converged(ns, s1))
        #expect(c.sessions[0].stats.envelopesSent == 40)
        #expect(c.sessions[1].stats.envelopesSent == 10)
        #expect(c.sessions[0].stats.batchesSent == 3)  // 16 + 16 + 8
        #expect(ns[0].spaces[s1]!.replays == 0 && ns[1].spaces[s1]!.replays == 0)
    }

    @Test func newLocalEnvelopesArePushedAtOnce() throws {
        let ns = members(2, spaces: [s1])
        ns[0].write(s1, envelopes: 3)
        let net = Network(ns)
        let c = net.connect(0, 1)
        net.run()
        let before = c.sessions[0].stats.framesSent
        // One local write: the session sends it directly, no fetch round trip.
        let e = ns[0].write(s1, envelopes: 1)
        let actions = c.sessions[0].localEnvelopes(space: s1, e)
        #expect(actions.count == 1)
        guard case .send = actions.first else { Issue.record("expected a send, got \(actions)"); return }
        #expect(c.sessions[0].stats.framesSent == before + 1)
        // Announcing the same envelopes again is a no-op.
        #expect(c.sessions[0].localEnvelopes(space: s1, e).isEmpty)
        net.perform(actions, 0, 0)
        net.run()
        #expect(converged(ns, s1))
        #expect(c.sessions[0].stats.envelopesSent == 4)
    }

    /// Writes made while the window is full wait in the session's queue and leave together, in
    /// one batch, on the next ack: no store read (the old session fell back to a `fetch` for each
    /// one, which cost a relay two database queries per envelope under load).
    @Test func writesWhileTheWindowIsFullLeaveTogetherOnTheNextAck() throws {
        let ns = members(2, spaces: [s1])
        ns[0].write(s1, envelopes: 2)
        let net = Network(ns, limits: SyncLimits(batchEnvelopes: 16, window: 1))
        let c = net.connect(0, 1)
        net.run()
        #expect(converged(ns, s1))
        let batches = c.sessions[0].stats.batchesSent
        let first = c.sessions[0].localEnvelopes(space: s1, ns[0].write(s1, envelopes: 1))
        #expect(frames(first).count == 1, "the first write goes at once: \(first)")
        // The window (1) is full until the peer acks: the next writes are queued, nothing else.
        for _ in 0..<3 {
            let later = c.sessions[0].localEnvelopes(space: s1, ns[0].write(s1, envelopes: 1))
            #expect(later.isEmpty, "expected nothing (queued), got \(later)")
        }
        net.perform(first, 0, 0)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(converged(ns, s1))
        #expect(c.sessions[0].stats.batchesSent == batches + 2, "the three queued writes left in one batch")
        #expect(c.sessions[0].stats.envelopesSent == 6)
        // The queue is bounded: with one batch in flight it takes one batch (16) of a burst of
        // 20; the other 4 are read by a fetch once it has left. All arrive, once, in order.
        let again = c.sessions[0].localEnvelopes(space: s1, ns[0].write(s1, envelopes: 1))
        #expect(frames(again).count == 1)
        let burst = c.sessions[0].localEnvelopes(space: s1, ns[0].write(s1, envelopes: 20))
        #expect(burst.isEmpty, "queued (16) or left to a later fetch (4): \(burst)")
        net.perform(again + burst, 0, 0)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(converged(ns, s1))
        #expect(c.sessions[0].stats.envelopesSent == 27)
    }

    @Test func pushedWritesInterleaveWithCatchUpWithoutDuplicates() throws {
        let ns = members(2, spaces: [s1])
        ns[0].write(s1, envelopes: 50)
        let net = Network(ns, limits: SyncLimits(batchEnvelopes: 4, window: 2), deferWork: true)
        let c = net.connect(0, 1)
        for i in 0..<200 {
            if i % 10 == 0 { net.write(0, s1, envelopes: 1) }
            if i % 15 == 0 { net.write(1, s1, envelopes: 1) }
            net.step()
        }
        net.run()
        #expect(net.violations.isEmpty)
        #expect(converged(ns, s1))
        #expect(c.sessions[0].stats.envelopesSent == 70)
        #expect(c.sessions[1].stats.envelopesSent == 14)
        #expect(c.sessions[0].isSettled && c.sessions[1].isSettled)
    }
}

@Suite struct ResumptionTests {
    /// Cuts the connection after `k` frames reached B, reconnects, and checks that the total sent
    /// is at most what was needed plus one in-flight batch.
    @Test(arguments: [1, 2, 3, 5, 8, 13])
    func resumesFromTheLastAckAfterACut(k: Int) throws {
        let ns = members(2, spaces: [s1])
        ns[0].write(s1, envelopes: 120)
        let batch = 10
        let net = Network(ns, limits: SyncLimits(batchEnvelopes: batch, window: 1))
        let first = net.connect(0, 1)
        while first.framesDelivered[1] < k && net.step() {}
        net.cut(first)
        net.run()
        #expect(ns[1].spaces[s1]!.vector.total < 120)
        net.connect(0, 1)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(converged(ns, s1))
        let sent = net.envelopesSent(by: 0)
        #expect(sent <= 120 + batch * 1, "sent \(sent) envelopes for 120 needed")
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func repeatedRandomCutsNeverResendMoreThanTheWindowEachTime(seed: UInt64) throws {
        let seed = testSeed(seed)
        let ns = members(2, spaces: [s1, space(2)])
        ns[0].write(s1, envelopes: 80)
        ns[0].write(space(2), envelopes: 40)
        ns[1].write(s1, envelopes: 30)
        let batch = 6
        let window = 2
        let net = Network(ns, limits: SyncLimits(batchEnvelopes: batch, window: window), deferWork: true, seed: seed)
        var rng = SplitMix64(seed: seed)
        var cuts = 0
        for _ in 0..<6 {
            let c = net.connect(0, 1)
            let steps = 5 + Int(rng.next() % 40)
            for _ in 0..<steps { net.step() }
            net.cut(c)
            net.run()
            cuts += 1
        }
        net.connect(0, 1)
        net.run()
        #expect(net.violations.isEmpty, "seed \(seed): \(net.violations)")
        #expect(converged(ns, s1) && converged(ns, space(2)), "seed \(seed)")
        let bound = 120 + cuts * batch * window
        #expect(net.envelopesSent(by: 0) <= bound, "seed \(seed): A sent \(net.envelopesSent(by: 0)), bound \(bound)")
        #expect(net.envelopesSent(by: 1) <= 30 + cuts * batch * window, "seed \(seed)")
    }
}

@Suite struct ForwardingTests {
    @Test func storeAndForwardFromAThroughBToC() throws {
        let ns = members(3, spaces: [s1])
        ns[0].write(s1, envelopes: 25)
        ns[2].write(s1, envelopes: 7)
        let net = Network(ns, limits: SyncLimits(batchEnvelopes: 5))
        // A–B, then B–C: A and C never connect.
        net.connect(0, 1)
        net.run()
        net.connect(1, 2)
        net.run()
        net.connect(0, 1)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(converged(ns, s1))
        #expect(ns[0].spaces[s1]!.vector.total == 32)
        #expect(!net.connections.contains { Set([$0.nodes.0, $0.nodes.1]) == Set([0, 2]) })
    }

    @Test func liveWritesFlowThroughAChainImmediately() throws {
        let ns = members(3, spaces: [s1])
        let net = Network(ns)
        let ab = net.connect(0, 1)
        let bc = net.connect(1, 2)
        net.run()
        #expect(ab.sessions[0].isSettled && bc.sessions[1].isSettled)
        net.write(0, s1, envelopes: 4)
        net.write(2, s1, envelopes: 2)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(converged(ns, s1))
        #expect(ns[2].spaces[s1]!.vector[ns[0].author] == 4)
        // No fetch was needed: pushes only; nothing is echoed back to its sender.
        #expect(ab.sessions[1].stats.envelopesSent == 2 && bc.sessions[0].stats.envelopesSent == 4)
    }

    @Test func aRelayWithoutKeysStoresAndForwards() throws {
        let k = SymmetricKey.generate()
        let a = TestNode("A", index: 1)
        let relay = TestNode("R", index: 9, role: .relay)
        let c = TestNode("C", index: 3)
        a.join(s1, key: k)
        c.join(s1, key: k)
        relay.join(s1, key: k)  // a relay drops the key: NodeSpace.key stays nil
        #expect(relay.spaces[s1]!.key == nil)
        a.write(s1, envelopes: 12)
        c.write(s1, envelopes: 3)
        let net = Network([a, relay, c], limits: SyncLimits(batchEnvelopes: 4))
        let ar = net.connect(0, 1)
        net.run()
        #expect(ar.sessions[0].peerHello?.role == .relay && ar.sessions[1].peerHello?.role == .member)
        net.cut(ar)
        net.connect(2, 1)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(c.spaces[s1]!.vector[a.author] == 12)
        #expect(a.spaces[s1]!.vector[c.author] == 0)  // not connected to the relay any more
        net.connect(0, 1)
        net.run()
        #expect(converged([a, c], s1))
        #expect(relay.spaces[s1]!.vector == a.spaces[s1]!.vector)
        // The relay holds only ciphertext.
        let marker = Array("PLAINTEXT-MARKER".utf8)
        for e in relay.spaces[s1]!.log {
            #expect(!contains(e.bytes, marker))
        }
        #expect(relay.spaces[s1]!.replica == nil)
    }

    @Test func spacesThePeerDoesNotCarryAreNeverSent() throws {
        let ks = (0..<3).map { _ in SymmetricKey.generate() }
        let a = TestNode("A", index: 1)
        let b = TestNode("B", index: 2)
        a.join(space(1), key: ks[0])
        a.join(space(2), key: ks[1])
        b.join(space(2), key: ks[1])
        b.join(space(3), key: ks[2])
        a.write(space(1), envelopes: 5)
        a.write(space(2), envelopes: 5)
        b.write(space(3), envelopes: 5)
        let net = Network([a, b])
        let c = net.connect(0, 1)
        net.run()
        #expect(c.sessions[0].sharedSpaces == [space(2)])
        #expect(b.spaces[space(1)] == nil && a.spaces[space(3)] == nil)
        #expect(c.sessions[0].stats.envelopesSent == 5 && c.sessions[1].stats.envelopesSent == 0)
        #expect(converged([a, b], space(2)))
        // A write in a space the peer does not carry goes nowhere.
        net.write(0, space(1), envelopes: 1)
        #expect(c.sessions[0].stats.envelopesSent == 5)
    }
}

@Suite struct BandwidthTests {
    @Test func upToDatePeersSharingTenSpacesExchangeUnderTwoKiB() throws {
        let spaces = (1...10).map { space(UInt64($0)) }
        // Four offices write in every space; A and B are then fully synced.
        let ns = members(4, spaces: spaces)
        for n in 0..<4 { for s in spaces { ns[n].write(s, envelopes: 3 + n) } }
        // Rounds until the envelopes and the head claims (each made at a session's start where
        // what its member holds changed) have reached everyone.
        for round in 1...3 {
            for n in ns { n.claim(time: Int64(round) * 1000) }
            let warm = Network(ns)
            warm.connect(0, 2)
            warm.connect(0, 3)
            warm.connect(1, 2)
            warm.connect(1, 3)
            warm.run()
        }
        for s in spaces { #expect(converged(ns, s)) }
        for n in ns { for s in spaces { #expect(n.claims[s]?.count == 4) } }
        // A fresh session between up-to-date A and B: hello, summary, claims digest, bye each way.
        for n in ns { n.claim(time: 4000) }
        let net = Network(ns)
        let c = net.connect(0, 1)
        net.run()
        #expect(c.sessions[0].isSettled && c.sessions[1].isSettled)
        net.perform(c.sessions[0].close(), 0, 0)
        net.run()
        let total = net.totalBytes
        print("up-to-date sync, 10 spaces × 4 authors: \(total) bytes on the wire (A→B \(c.bytesSent[0]), B→A \(c.bytesSent[1]))")
        #expect(total <= 2048, "\(total) bytes")
        #expect(c.sessions[0].stats.envelopesSent == 0 && c.sessions[1].stats.envelopesSent == 0)
        #expect(c.reasons[1] == .peerSaidBye)
        // Equal heads: one digest of the head tags went each way, no tag (the fork check at
        // equal vectors); equal claims: the combined digest alone, no claim (A: hello, summary,
        // heads digest, claims digest, bye; B: the same without bye).
        #expect(c.peerHeads[0].isEmpty && c.peerHeads[1].isEmpty)
        #expect(c.sessions[0].stats.framesSent == 5 && c.sessions[1].stats.framesSent == 4)
    }
}

/// A session of `node` (its vectors and heads) with some peer, not started.
private func session(of node: TestNode) -> SyncSession {
    SyncSession(
        configuration: SyncConfiguration(role: .member, spaces: node.configuration, heads: node.heads),
        peer: deterministicKeys(9).publicKey)
}

/// The frames among `actions`.
private func frames(_ actions: [SyncAction]) -> [[UInt8]] { actions.compactMap { if case .send(let b) = $0 { b } else { nil } } }

@Suite struct HeadTagTests {
    /// A node restored from an old copy of its database writes again: its feed and a peer's copy
    /// of it diverge at one position while the two vectors stay equal. Nothing is sent either way,
    /// but each side's session hands out the other's head tags, and comparing them with what the
    /// node holds names the author, the position and both envelopes.
    @Test func aForkAtEqualVectorsIsFoundFromTheSummaries() throws {
        let key = SymmetricKey.generate()
        let a = TestNode("A", index: 1)
        let restored = TestNode("A-restored", index: 1)  // the same key: the same author
        let b = TestNode("B", index: 2)
        for n in [a, restored, b] { n.join(s1, key: key) }
        let written = a.write(s1, envelopes: 3)
        _ = b.ingest(s1, written)
        // The restored copy holds only the first two, then writes a third of its own.
        _ = restored.ingest(s1, Array(written.prefix(2)))
        let other = restored.write(s1, envelopes: 1)[0]
        #expect(other.header.seqStart == 3 && other.id != written[2].id)

        // Honest copies: the two heads digests agree, so no tag crosses.
        let honest = Network([a, b])
        let h = honest.connect(0, 1)
        honest.run()
        #expect(h.peerHeads[0].isEmpty && h.peerHeads[1].isEmpty)
        #expect(h.sessions[0].isSettled && h.sessions[1].isSettled)

        // The fork: equal vectors, different digests, so each side sends its tags in `heads`.
        let net = Network([restored, b])
        let c = net.connect(0, 1)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(c.peerHeads[0].count == 1 && c.peerHeads[1].count == 1)
        #expect(c.sessions[0].isSettled && c.sessions[1].isSettled)
        #expect(c.sessions[0].stats.envelopesSent == 0 && c.sessions[1].stats.envelopesSent == 0)
        #expect(restored.spaces[s1]!.vector == b.spaces[s1]!.vector)
        let seenByB = try #require(c.peerHeads[1].first).mismatches(held: { b.held(s1, $0, $1) })
        #expect(seenByB == [HeadMismatch(author: a.author, sequence: 3, held: written[2].id, peerTag: HeadTag(other.id))])
        let seenByRestored = try #require(c.peerHeads[0].first).mismatches(held: { restored.held(s1, $0, $1) })
        #expect(seenByRestored == [HeadMismatch(author: a.author, sequence: 3, held: other.id, peerTag: HeadTag(written[2].id))])
    }

    /// A peer behind on an author is checked at its position too, and envelope boundaries that
    /// differ there are a fork even if no tag could be compared.
    @Test func positionsBelowTheHeadAndDifferentBoundariesAreChecked() throws {
        let key = SymmetricKey.generate()
        let a = TestNode("A", index: 1)
        let b = TestNode("B", index: 2)
        for n in [a, b] { n.join(s1, key: key) }
        let one = a.write(s1, envelopes: 1)
        let two = a.write(s1, envelopes: 1, changesPerEnvelope: 2)  // seq 2…3
        let peer = SpaceVector(space: s1, vector: FeedVector([a.author: 1]), heads: [a.author: HeadTag(one[0].id)])
        #expect(try peer.mismatches(held: { a.held(s1, $0, $1) }).isEmpty)
        let wrong = SpaceVector(space: s1, vector: FeedVector([a.author: 1]), heads: [a.author: HeadTag(two[0].id)])
        #expect(try wrong.mismatches(held: { a.held(s1, $0, $1) }).map(\.held) == [one[0].id])
        // The peer's envelope ends at 2, this node's covers 2…3.
        let boundary = SpaceVector(space: s1, vector: FeedVector([a.author: 2]), heads: [a.author: HeadTag(two[0].id)])
        #expect(try boundary.mismatches(held: { a.held(s1, $0, $1) }).map(\.sequence) == [2])
        // Beyond what this node holds: nothing to compare (the hash chain checks it on arrival).
        let ahead = SpaceVector(space: s1, vector: FeedVector([a.author: 9]), heads: [a.author: HeadTag(two[0].id)])
        #expect(try ahead.mismatches(held: { b.held(s1, $0, $1) }).isEmpty)
    }

    /// A node that predates head tags announces no features: it gets the summary without tags
    /// (tag 0x02, which it reads), and its own summary, without tags, asks the node for nothing.
    @Test func anOlderPeerGetsAndSendsSummariesWithoutTags() throws {
        let a = members(1, spaces: [s1])[0]
        a.write(s1, envelopes: 2)
        var s = session(of: a)
        let hello = frames(s.start(now: .seconds(1)))
        #expect(try SyncMessage.decode(Array(hello[0].dropFirst(4))) == .hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: [.headTags, .headClaims, .headDigest, .horizons])))

        let sent = frames(s.receive(SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1])).framed(), now: .seconds(1)))
        #expect(sent.count == 1 && sent[0][5] == 0x02, "an untagged summary (tag 0x02)")
        #expect(try SyncMessage.decode(Array(sent[0].dropFirst(4))) == .summary([SpaceVector(space: s1, vector: a.spaces[s1]!.vector)]))

        let theirs = s.receive(SyncMessage.summary([SpaceVector(space: s1, vector: FeedVector())]).framed(), now: .seconds(2))
        #expect(!theirs.contains { if case .peerHeads = $0 { true } else { false } })
    }

    /// With a peer that compares digests, the summary goes without tags and one `headsDigest`
    /// follows; when the peer's digest differs, the tags go in `heads`, only for the entries whose
    /// position the peer's summary reaches.
    @Test func digestsThatDifferBringTheTagsThePeerCanCheck() throws {
        let a = members(1, spaces: [s1])[0]
        let mine = a.write(s1, envelopes: 2)
        let other = deterministicKeys(7).publicKey
        var s = session(of: a)
        _ = s.start(now: .seconds(1))
        let sent = frames(s.receive(
            SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: [.headTags, .headDigest])).framed(),
            now: .seconds(1)))
        let messages = try sent.map { try SyncMessage.decode(Array($0.dropFirst(4))) }
        let tagged = SpaceVector(space: s1, vector: FeedVector([a.author: 2]), heads: [a.author: HeadTag(mine[1].id)])
        #expect(messages == [
            .summary([SpaceVector(space: s1, vector: FeedVector([a.author: 2]))]),
            .headsDigest(HeadTag.digest(of: [tagged])),
        ])
        // The peer holds a's feed to 2 as well, and 5 of another author: different digests.
        let theirs = SpaceVector(space: s1, vector: FeedVector([a.author: 2, other: 5]), heads: [a.author: HeadTag(mine[1].id)])
        var actions = s.receive(SyncMessage.summary([SpaceVector(space: s1, vector: theirs.vector)]).framed(), now: .seconds(2))
        actions += s.receive(SyncMessage.headsDigest(HeadTag.digest(of: [theirs])).framed(), now: .seconds(2))
        let answers = try frames(actions).map { try SyncMessage.decode(Array($0.dropFirst(4))) }
        #expect(answers.contains(.heads([tagged], last: true)))
        #expect(!s.isSettled, "the peer owes its heads")
        // Its heads name a's envelope at 2 and another author's at 5: handed to the node as they are.
        let back = SpaceVector(space: s1, vector: FeedVector([a.author: 2, other: 5]), heads: [a.author: HeadTag(mine[1].id), other: HeadTag(mine[0].id)])
        let got = s.receive(SyncMessage.heads([back], last: true).framed(), now: .seconds(3))
        #expect(got.contains { if case .peerHeads(back) = $0 { true } else { false } })

        // A peer behind on a's feed (at 1) gets no tag of a at 2: the hash chain checks it there.
        var t = session(of: a)
        _ = t.start(now: .seconds(1))
        _ = t.receive(SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: .headDigest)).framed(), now: .seconds(1))
        let behind = SpaceVector(space: s1, vector: FeedVector([a.author: 1]), heads: [a.author: HeadTag(mine[0].id)])
        var more = t.receive(SyncMessage.summary([SpaceVector(space: s1, vector: behind.vector)]).framed(), now: .seconds(2))
        more += t.receive(SyncMessage.headsDigest(HeadTag.digest(of: [behind])).framed(), now: .seconds(2))
        let replies = try frames(more).map { try SyncMessage.decode(Array($0.dropFirst(4))) }
        #expect(replies.contains(.heads([], last: true)))
    }

    /// `headsDigest` and `heads` out of turn close the session as `unexpectedMessage`: a digest
    /// before the summaries or twice, `heads` after equal digests or before any digest.
    @Test func headsOutOfTurnAreViolations() throws {
        let a = members(1, spaces: [s1])[0]
        let mine = a.write(s1, envelopes: 1)
        let hello = SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: .headDigest)).framed()
        let same = SpaceVector(space: s1, vector: FeedVector([a.author: 1]), heads: [a.author: HeadTag(mine[0].id)])
        func opened() -> SyncSession {
            var s = session(of: a)
            _ = s.start(now: .seconds(1))
            _ = s.receive(hello, now: .seconds(1))
            return s
        }
        func code(_ actions: [SyncAction]) -> SyncErrorCode? {
            for case .close(.violation(let e)) in actions { return e.code }
            return nil
        }
        var early = opened()
        #expect(code(early.receive(SyncMessage.headsDigest(1).framed(), now: .seconds(2))) == .unexpectedMessage)

        var twice = opened()
        _ = twice.receive(SyncMessage.summary([SpaceVector(space: s1, vector: same.vector)]).framed(), now: .seconds(2))
        let equal = twice.receive(SyncMessage.headsDigest(HeadTag.digest(of: [same])).framed(), now: .seconds(2))
        #expect(code(equal) == nil && !equal.contains { if case .send = $0 { true } else { false } })
        #expect(twice.isSettled, "equal digests: nothing owed either way")
        #expect(code(twice.receive(SyncMessage.heads([same], last: true).framed(), now: .seconds(3))) == .unexpectedMessage)

        var beforeDigest = opened()
        _ = beforeDigest.receive(SyncMessage.summary([SpaceVector(space: s1, vector: same.vector)]).framed(), now: .seconds(2))
        #expect(code(beforeDigest.receive(SyncMessage.heads([same], last: true).framed(), now: .seconds(3))) == .unexpectedMessage)

        var second = opened()
        _ = second.receive(SyncMessage.summary([SpaceVector(space: s1, vector: same.vector)]).framed(), now: .seconds(2))
        _ = second.receive(SyncMessage.headsDigest(7).framed(), now: .seconds(2))
        #expect(code(second.receive(SyncMessage.headsDigest(7).framed(), now: .seconds(3))) == .unexpectedMessage)
    }

    /// A peer of the previous build (head tags, no digest) still gets a summary with tags and
    /// no `headsDigest`; its own tagged summary is handed to the node.
    @Test func aPeerWithoutDigestsGetsTaggedSummaries() throws {
        let a = members(1, spaces: [s1])[0]
        let mine = a.write(s1, envelopes: 1)
        var s = session(of: a)
        _ = s.start(now: .seconds(1))
        let sent = frames(s.receive(
            SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: [.headTags, .headClaims])).framed(), now: .seconds(1)))
        let messages = try sent.map { try SyncMessage.decode(Array($0.dropFirst(4))) }
        let tagged = SpaceVector(space: s1, vector: FeedVector([a.author: 1]), heads: [a.author: HeadTag(mine[0].id)])
        #expect(messages.first == .summary([tagged]))
        #expect(!messages.contains { if case .headsDigest = $0 { true } else { false } })
        let got = s.receive(SyncMessage.summary([tagged]).framed(), now: .seconds(2))
        #expect(got.contains { if case .peerHeads(tagged) = $0 { true } else { false } })
    }

    /// A local envelope stored between the session's start and the peer's hello is in the summary
    /// with its own tag (the configuration's heads are for the vector read before).
    @Test func envelopesPushedBeforeTheHelloAreTaggedToo() throws {
        let a = members(1, spaces: [s1])[0]
        a.write(s1, envelopes: 1)
        var s = session(of: a)
        _ = s.start(now: .seconds(1))
        let later = a.write(s1, envelopes: 1)
        #expect(s.localEnvelopes(space: s1, later).isEmpty)
        let sent = frames(s.receive(
            SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: .headTags)).framed(), now: .seconds(1)))
        #expect(sent.count == 1 && sent[0][5] == 0x0A, "a summary with head tags (tag 0x0A)")
        let summary = try SyncMessage.decode(Array(sent[0].dropFirst(4)))
        #expect(summary == .summary([SpaceVector(space: s1, vector: FeedVector([a.author: 2]), heads: [a.author: HeadTag(later[0].id)])]))
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard needle.count <= haystack.count else { return false }
    for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
        if Array(haystack[i..<(i + needle.count)]) == needle { return true }
    }
    return false
}
