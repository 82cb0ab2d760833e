import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

// Horizons (Sync/PROTOCOL.md, `horizons`): a relay that no longer holds a feed from its first
// envelope (retention, Docs/RELAY.md) says from where it holds it; a member below that point is
// told what it lacks, is not sent what it cannot chain on, and does not wait for it; a member at
// or above it is served as before.

private let s1 = space(1)

private func member(_ name: String, _ index: UInt64, key: SymmetricKey) -> TestNode {
    let n = TestNode(name, index: index)
    n.join(s1, key: key)
    return n
}

/// The messages in `actions` (frames decoded).
private func messages(_ actions: [SyncAction]) throws -> [SyncMessage] {
    try actions.compactMap { if case .send(let b) = $0 { b } else { nil } }.map { try SyncMessage.decode(Array($0.dropFirst(4))) }
}

private func code(_ actions: [SyncAction]) -> SyncErrorCode? {
    for a in actions { if case .close(.violation(let e)) = a { return e.code } }
    return nil
}

/// A wrote 10 envelopes, C wrote 4; the relay holds them all, then keeps A's feed only from 7.
private func prunedRelay(key: SymmetricKey) -> (a: TestNode, c: TestNode, relay: TestNode) {
    let a = member("A", 1, key: key)
    let c = member("C", 3, key: key)
    let relay = TestNode("R", index: 9, role: .relay)
    relay.join(s1, key: nil)
    a.write(s1, envelopes: 10)
    c.write(s1, envelopes: 4)
    for n in [a, c] {
        let up = Network([n, relay])
        up.connect(0, 1)
        up.run()
    }
    relay.retain(s1, a.author, from: 7)
    return (a, c, relay)
}

@Suite struct HorizonTests {
    /// A new member below the relay's horizon for A: it gets C's feed, none of A's, is told it
    /// lacks A's 1…6, settles, and does not time out waiting for A's envelopes.
    @Test func aMemberBelowTheHorizonIsToldWhatItLacksAndSettles() throws {
        let key = SymmetricKey.generate()
        let (a, c, relay) = prunedRelay(key: key)
        let b = member("B", 2, key: key)
        let net = Network([relay, b])
        let conn = net.connect(0, 1)
        net.run()
        #expect(net.violations.isEmpty, "\(net.violations)")
        #expect(conn.synced == [1, 1], "both sides settle")
        #expect(b.spaces[s1]!.vector[c.author] == 4)
        #expect(b.spaces[s1]!.vector[a.author] == 0, "nothing of A reached B: it could not chain on it")
        #expect(conn.gaps[1][s1] == [a.author: 1...6])
        #expect(conn.gaps[0].isEmpty, "the relay lacks nothing")
        #expect(b.spaces[s1]!.refused.isEmpty, "the relay sent nothing B had to refuse")
        // Time passes well beyond the deadline for announced data: nobody times out.
        for t in stride(from: 10, through: 300, by: 10) {
            net.now = .seconds(t)
            for side in 0..<2 { net.perform(conn.sessions[side].tick(now: net.now), 0, side) }
            net.run()
        }
        #expect(net.timeouts == 0)
        #expect(!conn.closed[0] && !conn.closed[1])
        _ = a
    }

    /// Once B took A's 1…6 elsewhere (from A itself), the relay sends it the rest: 7…10.
    @Test func aMemberThatTookTheOlderPartElsewhereGetsTheRestFromTheRelay() throws {
        let key = SymmetricKey.generate()
        let (a, _, relay) = prunedRelay(key: key)
        let b = member("B", 2, key: key)
        let older = a.spaces[s1]!.log.filter { $0.header.seqEnd <= 6 }
        #expect(b.ingest(s1, older).count == 6)
        let net = Network([relay, b])
        let conn = net.connect(0, 1)
        net.run()
        #expect(net.violations.isEmpty, "\(net.violations)")
        #expect(conn.synced == [1, 1])
        #expect(conn.gaps[1].isEmpty)
        #expect(converged([a, b], s1) || b.spaces[s1]!.vector[a.author] == 10)
        #expect(b.spaces[s1]!.vector[a.author] == 10)
    }

    /// A member at or past the horizon is served as before, and new envelopes of A pushed while
    /// the session runs reach it; a member below it gets them neither by push nor by fetch.
    @Test func pushesBeyondTheHorizonReachOnlyMembersThatCanChainOnThem() throws {
        let key = SymmetricKey.generate()
        let (a, _, relay) = prunedRelay(key: key)
        let caughtUp = member("D", 4, key: key)
        _ = caughtUp.ingest(s1, a.spaces[s1]!.log)
        let below = member("B", 2, key: key)
        let net = Network([relay, caughtUp, below, a])
        let up = net.connect(0, 1)
        let down = net.connect(0, 2)
        net.run()
        let fromA = net.connect(3, 0)
        net.run()
        net.write(3, s1, envelopes: 2)
        net.run()
        #expect(net.violations.isEmpty, "\(net.violations)")
        #expect(caughtUp.spaces[s1]!.vector[a.author] == 12)
        #expect(below.spaces[s1]!.vector[a.author] == 0)
        #expect(below.spaces[s1]!.refused.isEmpty)
        #expect(down.sessions[0].isSettled && down.sessions[1].isSettled)
        #expect(up.sessions[0].isSettled && fromA.sessions[0].isSettled)
    }

    /// A peer whose hello does not announce horizons gets none (it would not read them).
    @Test func horizonsGoOnlyToPeersThatReadThem() throws {
        let relayKeys = deterministicKeys(9)
        let peer = deterministicKeys(2).publicKey
        let floors = [s1: FeedVector([deterministicKeys(1).publicKey: 7])]
        func opened(_ features: HelloFeatures) throws -> [SyncMessage] {
            var s = SyncSession(
                configuration: SyncConfiguration(role: .relay, spaces: [s1: FeedVector([deterministicKeys(1).publicKey: 10])], floors: floors),
                peer: peer)
            _ = s.start(now: .seconds(1))
            let hello = SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: features))
            return try messages(s.receive(hello.framed(), now: .seconds(1)))
        }
        let modern = try opened([.headTags, .headClaims, .headDigest, .horizons])
        #expect(modern.first == .horizons([SpaceVector(space: s1, vector: floors[s1]!)]), "horizons go first, before the summary")
        let old = try opened([.headTags, .headClaims, .headDigest])
        #expect(!old.contains { if case .horizons = $0 { true } else { false } })
        _ = relayKeys
    }

    /// Horizons out of turn, for a space not shared, or saying nothing are violations.
    @Test func malformedOrMisplacedHorizonsAreRefused() throws {
        let me = deterministicKeys(2).publicKey
        let author = deterministicKeys(1).publicKey
        func session() -> SyncSession {
            var s = SyncSession(configuration: SyncConfiguration(role: .member, spaces: [s1: FeedVector()]), peer: deterministicKeys(9).publicKey)
            _ = s.start(now: .seconds(1))
            _ = s.receive(SyncMessage.hello(Hello(role: .relay, receiveWindow: 2, spaces: [s1], features: .horizons)).framed(), now: .seconds(1))
            return s
        }
        var late = session()
        _ = late.receive(SyncMessage.summary([SpaceVector(space: s1, vector: FeedVector([author: 10]))]).framed(), now: .seconds(2))
        #expect(code(late.receive(SyncMessage.horizons([SpaceVector(space: s1, vector: FeedVector([author: 7]))]).framed(), now: .seconds(2))) == .unexpectedMessage)

        var stranger = session()
        #expect(code(stranger.receive(SyncMessage.horizons([SpaceVector(space: space(7), vector: FeedVector([author: 7]))]).framed(), now: .seconds(2))) == .spaceNotShared)

        var one = session()
        #expect(code(one.receive(SyncMessage.horizons([SpaceVector(space: s1, vector: FeedVector([author: 1]))]).framed(), now: .seconds(2))) == .malformed)
        _ = me
    }
}
