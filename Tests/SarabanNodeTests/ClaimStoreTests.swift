import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

// Head claims in the store (Docs/SECURITY.md, "Withholding"): what is kept, what is refused, when
// a node makes its own, and members shown as stale.

@Suite struct ClaimStoreTests {
    /// A creator A, member B and relay R carrying the space, caught up.
    func space(_ office: Office) throws -> (a: Node, b: Node, r: Node, space: SpaceID) {
        let a = try office.node("a")
        let b = try office.node("b")
        let r = try office.node("r", relay: true)
        let s = try a.createSpace(name: "s").id
        try b.join(try Invitation.parse(try a.invite(space: s, invitee: b.nodeID, office: "บี").text))
        try r.carry(space: s, name: "s")
        _ = try b.createDocument(kind: "memo", fields: [("เรื่อง", "ทดสอบ")], space: s)
        try syncAll([a, b, r], s)
        return (a, b, r, s)
    }

    func claim(_ n: Node, _ s: SpaceID, time: Int64) throws -> HeadClaim {
        let v = try n.feedVector(space: s)
        return HeadClaim.make(space: s, signer: n.identity, time: time, heads: try n.store.feedHeads([s: v])[s]!)
    }

    /// A claim whose signature does not verify, one by a node that is not a member, and one of
    /// another space are refused, on a member and on a relay (which folds the same roster);
    /// an older claim of a claimant never replaces the newer one held.
    @Test func forgedAndNonMemberClaimsAreRefusedAndOlderOnesNeverReplaceNewer() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, r, s) = try space(office)
        let honest = try claim(b, s, time: 1000)
        var bytes = honest.bytes
        bytes[60] ^= 0x01  // a byte of the signed part
        let altered = try HeadClaim.decode(bytes)
        let outsider = HeadClaim.make(
            space: s, signer: SigningKeyPair.generate(), time: 1000, heads: try b.store.feedHeads([s: try b.feedVector(space: s)])[s]!)
        let elsewhere = HeadClaim.make(space: SpaceID(hi: 1, lo: 2), signer: b.identity, time: 1000, heads: [:])
        for n in [a, r] {
            let receipt = try n.store.keepClaims(space: s, [altered, outsider, elsewhere, honest], receivedAt: 5)
            #expect(receipt.kept == 1 && receipt.refused.count == 3, "\(receipt)")
            #expect(receipt.refused.contains { $0.contains("signature does not verify") })
            #expect(receipt.refused.contains { $0.contains("not a member") })
            #expect(try n.store.headClaims([s])[s] == [honest])

            let older = try claim(b, s, time: 999)
            let same = try claim(b, s, time: 1000)
            let r2 = try n.store.keepClaims(space: s, [older, same], receivedAt: 6)
            #expect(r2.kept == 0 && r2.older == 2)
            #expect(try n.store.headClaims([s])[s] == [honest])
            let newer = try claim(b, s, time: 2000)
            #expect(try n.store.keepClaims(space: s, [newer], receivedAt: 7).kept == 1)
            #expect(try n.store.keepClaims(space: s, [honest], receivedAt: 8).older == 1)
            #expect(try n.store.headClaims([s])[s] == [newer])
        }
    }

    /// A member claims again only when what it holds changed or its claim grew old; a relay never claims.
    @Test func aNodeClaimsWhenWhatItHoldsChanges() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, r, s) = try space(office)
        func refresh(_ n: Node, at t: Int64) throws -> HeadClaim? {
            let heads = try n.store.feedHeads([s: try n.feedVector(space: s)])
            return try n.store.refreshClaims(heads: heads, signer: n.identity, now: t, refreshAfter: 10_000)[s]?
                .first { $0.claimant == n.identity.publicKey }
        }
        let first = try #require(try refresh(b, at: 1000))
        let v1 = try b.feedVector(space: s)
        #expect(first.hasValidSignature && first.vector == v1)
        #expect(try refresh(b, at: 2000) == first)
        _ = try b.createDocument(kind: "memo", fields: [("เรื่อง", "อีกฉบับ")], space: s)
        let second = try #require(try refresh(b, at: 3000))
        let v2 = try b.feedVector(space: s)
        #expect(second.time == 3000 && second.vector == v2)
        #expect(try refresh(b, at: 3000 + 10_000)?.time == 13_000)  // unchanged but old: made again
        // A clock set back still replaces the last claim.
        _ = try a.createDocument(kind: "memo", fields: [("เรื่อง", "x")], space: s)
        try syncAll([a, b], s)
        #expect(try refresh(b, at: 500)?.time == 13_001)
        #expect(try refresh(r, at: 1000) == nil)
    }

    /// While holdings keep changing, a member claims again only once `notSoonerThan` has passed
    /// since its last claim (`Node.claimInterval`): each new claim is sent on by every member.
    @Test func aNodeClaimsAtMostOncePerIntervalWhileItsHoldingsChange() throws {
        let office = Office()
        defer { office.close() }
        let (_, b, _, s) = try space(office)
        func refresh(at t: Int64) throws -> HeadClaim? {
            let heads = try b.store.feedHeads([s: try b.feedVector(space: s)])
            return try b.store.refreshClaims(heads: heads, signer: b.identity, now: t, refreshAfter: 3_600_000, notSoonerThan: 60_000)[s]?
                .first { $0.claimant == b.identity.publicKey }
        }
        let first = try #require(try refresh(at: 1_000))
        _ = try b.createDocument(kind: "memo", fields: [("เรื่อง", "ฉบับที่สอง")], space: s)
        #expect(try refresh(at: 30_000) == first)  // changed, but the last claim is 29 s old
        let second = try #require(try refresh(at: 61_000))
        let now = try b.feedVector(space: s)
        #expect(second.time == 61_000 && second.vector == now)
        #expect(second.vector != first.vector)
    }

    /// A member whose latest claim is older than `stale_after` shows as stale; a fresh claim clears it.
    @Test func aMemberNotHeardFromShowsAsStaleUntilAFreshClaim() throws {
        let office = Office()
        defer { office.close() }
        let (a0, b, _, s) = try space(office)
        let clock = TestClock(10_000_000)
        let dir = a0.dataDirectory
        a0.close()
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.configPath))) as! [String: Any]
        config["stale_after"] = "1h"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: dir.configPath))
        let a = try Node.open(dataDir: dir, logger: quiet, now: clock.closure)
        defer { a.close() }
        #expect(try a.staleMembers().isEmpty)  // no claim of B yet: not heard of, not stale
        _ = try a.store.keepClaims(space: s, [try claim(b, s, time: clock.now)], receivedAt: clock.now)
        clock.advance(30 * 60_000)
        #expect(try a.staleMembers().isEmpty)
        clock.advance(31 * 60_000)
        let stale = try a.staleMembers()
        #expect(stale.map(\.member) == [b.nodeID.text] && stale.first?.space == s.hex && stale.first?.spaceName == "s")
        _ = try a.store.keepClaims(space: s, [try claim(b, s, time: clock.now)], receivedAt: clock.now)
        #expect(try a.staleMembers().isEmpty)
    }

    @Test func staleAfterMustBeANumberAndAUnit() throws {
        for good in ["90s", "30m", "12h", "3d"] { #expect(NodeConfig.milliseconds(good) != nil) }
        #expect(NodeConfig.milliseconds("3d") == Int64(259_200_000))
        for bad in ["3", "d", "3 d", "-1d", "0h", "1w", "๓d"] { #expect(NodeConfig.milliseconds(bad) == nil, "\(bad)") }
        let json = #"{"version":1,"office":"x","nodeID":"sb","listen":"0.0.0.0:1","peers":[],"stale_after":"3 days"}"#
        #expect(throws: NodeError.self) { try NodeConfig.decode(Data(json.utf8), path: "config.json") }
    }

    /// Claims made after the cutoff (the session's start less the grace) do not count; the
    /// largest shortfall per author is reported with its claimant.
    @Test func withholdingCountsClaimsMadeBeforeTheCutoffOnly() throws {
        let office = Office()
        defer { office.close() }
        let (a, b, _, s) = try space(office)
        let early = try claim(b, s, time: 100)
        _ = try b.createDocument(kind: "memo", fields: [("เรื่อง", "ใหม่")], space: s)
        let late = try claim(b, s, time: 900)
        let held = FeedVector()
        let found = WithheldFeed.find(claims: [early, late], held: held, cutoff: 500, detectedAt: 1)
        #expect(found.count == early.entries.count)
        let bee = try #require(found.first { $0.author == b.nodeID.text })
        #expect(bee.claimed == early.vector[b.identity.publicKey] && bee.behind == bee.claimed && bee.claimant == b.nodeID.text)
        #expect(WithheldFeed.find(claims: [early], held: early.vector, cutoff: 500, detectedAt: 1).isEmpty)
        _ = a
    }
}
