import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

// Head claims on the wire (Sync/PROTOCOL.md, `claimsDigest` and `claims`): the digest exchange,
// claims sent only where the digests differ, relays passing them on, and what the session refuses.

private let s1 = space(1)
private let s2 = space(2)

private func node(_ name: String, _ index: UInt64, role: NodeRole = .member, key: SymmetricKey, spaces: [SpaceID] = [s1])
    -> TestNode
{
    let n = TestNode(name, index: index, role: role)
    for s in spaces { n.join(s, key: key) }
    return n
}

/// The messages in `actions` (frames decoded).
private func messages(_ actions: [SyncAction]) throws -> [SyncMessage] {
    try actions.compactMap { if case .send(let b) = $0 { b } else { nil } }.map { try SyncMessage.decode(Array($0.dropFirst(4))) }
}

@Suite struct ClaimExchangeTests {
    /// A's claim reaches B through a relay that holds no key, and C directly from B; each keeps
    /// the latest per claimant, and a second session with nothing new sends no claim.
    @Test func claimsTravelThroughARelayAndBetweenMembers() throws {
        let key = SymmetricKey.generate()
        let a = node("A", 1, key: key)
        let b = node("B", 2, key: key)
        let c = node("C", 3, key: key)
        let relay = node("R", 9, role: .relay, key: key)
        a.write(s1, envelopes: 3)
        a.claim(time: 1000)

        let up = Network([a, relay])
        up.connect(0, 1)
        up.run()
        #expect(up.violations.isEmpty, "\(up.violations)")
        #expect(relay.claims[s1]?[a.author] == a.claims[s1]?[a.author])

        let down = Network([relay, b])
        let d = down.connect(0, 1)
        down.run()
        #expect(down.violations.isEmpty && d.synced == [1, 1])
        #expect(b.claims[s1]?[a.author]?.time == 1000)
        #expect(b.claims[s1]?[a.author]?.vector == a.spaces[s1]!.vector)

        b.claim(time: 2000)
        let direct = Network([b, c])
        direct.connect(0, 1)
        direct.run()
        #expect(Set(c.claims[s1]!.keys) == [a.author, b.author])

        // Nothing new: the digests agree, so only the combined digest goes each way (hello,
        // summary, heads digest, claims digest).
        let again = Network([b, c])
        let g = again.connect(0, 1)
        again.run()
        #expect(g.synced == [1, 1])
        #expect(g.sessions[0].stats.framesSent == 4 && g.sessions[1].stats.framesSent == 4)
    }

    /// An older claim arriving (from a peer that still holds it) never replaces a newer one.
    @Test func anOlderClaimNeverReplacesANewerOne() throws {
        let key = SymmetricKey.generate()
        let a = node("A", 1, key: key)
        let b = node("B", 2, key: key)
        let c = node("C", 3, key: key)
        a.write(s1, envelopes: 1)
        a.claim(time: 1000)
        let old = a.claims[s1]![a.author]!
        let first = Network([a, b])
        first.connect(0, 1)
        first.run()
        #expect(b.claims[s1]?[a.author] == old)
        a.write(s1, envelopes: 1)
        a.claim(time: 5000)
        let second = Network([a, c])
        second.connect(0, 1)
        second.run()
        #expect(c.claims[s1]?[a.author]?.time == 5000)
        // B still holds the old one and sends it; C keeps the newer.
        let third = Network([b, c])
        third.connect(0, 1)
        third.run()
        #expect(c.claims[s1]?[a.author]?.time == 5000)
        #expect(b.claims[s1]?[a.author]?.time == 5000)
    }

    /// A claim whose signature does not verify, or by a node not a member, is handed to the node
    /// with the others, and the node keeps neither.
    @Test func forgedClaimsAreHandedOnForTheNodeToRefuse() throws {
        let key = SymmetricKey.generate()
        let a = node("A", 1, key: key)
        let b = node("B", 2, key: key)
        a.write(s1, envelopes: 2)
        let outsider = deterministicKeys(77)
        let honest = HeadClaim.make(space: s1, signer: a.keys, time: 10, heads: a.heads[s1]!)
        var bytes = honest.bytes
        bytes[bytes.count - 1] ^= 1
        let altered = try HeadClaim.decode(bytes)
        #expect(honest.hasValidSignature && !altered.hasValidSignature)
        let stranger = HeadClaim.make(space: s1, signer: outsider, time: 20, heads: a.heads[s1]!)
        b.members[s1] = [a.author, b.author]
        b.take(s1, [altered, stranger])
        #expect(b.claims[s1] == nil && b.claimsRefused == 2)
        b.take(s1, [honest])
        #expect(b.claims[s1]?[a.author] == honest)
    }

    /// A peer without the head-claims bit (an older node) gets no digest and no claim.
    @Test func anOlderPeerGetsNoDigest() throws {
        let key = SymmetricKey.generate()
        let a = node("A", 1, key: key)
        a.write(s1, envelopes: 1)
        a.claim(time: 1)
        var s = SyncSession(
            configuration: SyncConfiguration(
                role: .member, spaces: a.configuration, heads: a.heads, claims: a.claims.mapValues { Array($0.values) }),
            peer: deterministicKeys(9).publicKey)
        _ = s.start(now: .seconds(1))
        let sent = try messages(
            s.receive(SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: .headTags)).framed(), now: .seconds(1)))
        #expect(sent.count == 1)
        if case .summary = sent[0] {} else { Issue.record("\(sent)") }
        let after = s.receive(SyncMessage.summary([SpaceVector(space: s1, vector: a.spaces[s1]!.vector)]).framed(), now: .seconds(2))
        #expect(after.contains { if case .synced = $0 { true } else { false } })
    }

    /// Digests that differ: the per-space digests follow, then the claims of the spaces that
    /// differ only, flagged last; the session is settled only once they have come.
    @Test func differingDigestsBringThePerSpaceListAndTheClaims() throws {
        let key = SymmetricKey.generate()
        let a = node("A", 1, key: key, spaces: [s1, s2])
        a.write(s1, envelopes: 1)
        a.write(s2, envelopes: 1)
        a.claim(time: 1)
        let claims = a.claims.mapValues { Array($0.values) }
        var s = SyncSession(
            configuration: SyncConfiguration(role: .member, spaces: a.configuration, heads: a.heads, claims: claims),
            peer: deterministicKeys(9).publicKey)
        _ = s.start(now: .seconds(1))
        let opening = try messages(
            s.receive(
                SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1, s2], features: [.headTags, .headClaims])).framed(),
                now: .seconds(1)))
        let digests = [s1: HeadClaim.digest(claims[s1]!), s2: HeadClaim.digest(claims[s2]!)]
        #expect(opening.last == .claimsDigest(combined: HeadClaim.combinedDigest(digests), spaces: nil))
        _ = s.receive(
            SyncMessage.summary([s1, s2].map { SpaceVector(space: $0, vector: a.spaces[$0]!.vector) }).framed(), now: .seconds(1))
        // The peer holds the same claim of s2 and another of s1.
        let other = HeadClaim.make(space: s1, signer: deterministicKeys(9), time: 5, heads: a.heads[s1]!)
        let theirs = [s1: HeadClaim.digest([other]), s2: digests[s2]!]
        let second = try messages(
            s.receive(SyncMessage.claimsDigest(combined: HeadClaim.combinedDigest(theirs), spaces: nil).framed(), now: .seconds(2)))
        #expect(second == [.claimsDigest(combined: HeadClaim.combinedDigest(digests), spaces: digests)])
        #expect(!s.isSettled)
        let answer = s.receive(SyncMessage.claimsDigest(combined: HeadClaim.combinedDigest(theirs), spaces: theirs).framed(), now: .seconds(2))
        #expect(try messages(answer) == [.claims(space: s1, claims: claims[s1]!, last: true)])
        #expect(!s.isSettled)
        let got = s.receive(SyncMessage.claims(space: s1, claims: [other], last: true).framed(), now: .seconds(3))
        #expect(got.contains { if case .claims(s1, [other], _) = $0 { true } else { false } })
        #expect(s.isSettled)
    }

    /// Once the digests are exchanged, claims made later are pushed to the peer and handed to its node.
    @Test func claimsMadeDuringASessionArePushed() throws {
        let key = SymmetricKey.generate()
        let a = node("A", 1, key: key)
        let b = node("B", 2, key: key)
        a.write(s1, envelopes: 1)
        let net = Network([a, b])
        let c = net.connect(0, 1)
        net.run()
        #expect(c.synced == [1, 1] && b.claims[s1] == nil)
        a.claim(time: 7)
        net.perform(c.sessions[0].localClaims(space: s1, Array(a.claims[s1]!.values)), 0, 0)
        net.run()
        #expect(net.violations.isEmpty)
        #expect(b.claims[s1]?[a.author]?.time == 7)
        // An older peer gets none.
        var old = SyncSession(configuration: SyncConfiguration(role: .member, spaces: a.configuration), peer: b.author)
        _ = old.start(now: .seconds(1))
        _ = old.receive(SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1])).framed(), now: .seconds(1))
        #expect(old.localClaims(space: s1, Array(a.claims[s1]!.values)).isEmpty)
    }

    /// Claims before the peer's digest, a digest out of turn, and a claim of another space in a
    /// `claims` message close the session with typed errors.
    @Test func claimsOutOfTurnAreViolations() throws {
        let key = SymmetricKey.generate()
        let a = node("A", 1, key: key)
        a.write(s1, envelopes: 1)
        func opened() -> SyncSession {
            var s = SyncSession(
                configuration: SyncConfiguration(role: .member, spaces: a.configuration), peer: deterministicKeys(9).publicKey)
            _ = s.start(now: .seconds(1))
            _ = s.receive(
                SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [s1], features: [.headClaims])).framed(),
                now: .seconds(1))
            return s
        }
        let claim = HeadClaim.make(space: s1, signer: deterministicKeys(9), time: 5, heads: a.heads[s1]!)

        var unasked = opened()
        _ = unasked.receive(SyncMessage.claims(space: s1, claims: [claim], last: true).framed(), now: .seconds(2))
        #expect(unasked.closeReason == .violation(SyncError(.unexpectedMessage, "claims for space \(s1) before the claims digest")))

        var twice = opened()
        _ = twice.receive(SyncMessage.claimsDigest(combined: 0, spaces: nil).framed(), now: .seconds(2))
        #expect(!twice.isClosed)
        _ = twice.receive(SyncMessage.claimsDigest(combined: 0, spaces: nil).framed(), now: .seconds(2))
        #expect(twice.closeReason == .violation(SyncError(.unexpectedMessage, "a claimsDigest out of turn")))

        var wrong = SyncMessage.claims(space: s2, claims: [claim], last: true).encoded()
        #expect(throws: DecodingError.self) { try SyncMessage.decode(wrong) }
        wrong = SyncMessage.claims(space: s1, claims: [claim], last: true).encoded()
        wrong[2 + 16] = 2  // the last flag
        #expect(throws: DecodingError.self) { try SyncMessage.decode(wrong) }
    }
}
