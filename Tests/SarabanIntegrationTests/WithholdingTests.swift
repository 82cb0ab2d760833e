import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// A relay's storage that hides one author: its summary claims none of that author's envelopes
/// and it never serves them (it still stores them, and passes head claims on unchanged).
struct WithholdingStorage: EnvelopeStorage {
    let inner: any EnvelopeStorage
    let hidden: SigningPublicKey

    var role: NodeRole { inner.role }
    var nodeID: NodeID { inner.nodeID }

    func hide(_ spaces: [SpaceID: FeedVector]) -> [SpaceID: FeedVector] {
        spaces.mapValues { FeedVector($0.entries.filter { $0.key != hidden }) }
    }

    func carriedSpaces() throws -> [SpaceID: FeedVector] { hide(try inner.carriedSpaces()) }
    func carriedSpaces(for peer: NodeID) throws -> [SpaceID: FeedVector] { hide(try inner.carriedSpaces(for: peer)) }

    func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) throws -> (envelopes: [Envelope], complete: Bool) {
        var from = after
        from.raise(hidden, to: .max)  // nothing of the hidden author is read
        return try inner.envelopes(space: space, after: from, limit: limit)
    }

    func receive(space: SpaceID, envelopes: [Envelope]) throws -> (
        accepted: [Envelope], vector: FeedVector,
        forks: [(author: SigningPublicKey, sequence: UInt64, held: EnvelopeID, conflicting: EnvelopeID)]
    ) {
        let r = try inner.receive(space: space, envelopes: envelopes)
        return (r.accepted.filter { $0.header.author != hidden }, hide([space: r.vector])[space]!, r.forks)
    }

    func feedHeads(_ spaces: [SpaceID: FeedVector]) throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        try inner.feedHeads(hide(spaces))
    }

    func storedEnvelope(space: SpaceID, author: SigningPublicKey, covering seq: UInt64) throws -> (seqEnd: UInt64, id: EnvelopeID)? {
        author == hidden ? nil : try inner.storedEnvelope(space: space, author: author, covering: seq)
    }

    func makeDurable() throws { try inner.makeDurable() }
    func changeProbe() throws -> Int64 { try inner.changeProbe() }
    func memberNodeIDs() throws -> Set<NodeID> { try inner.memberNodeIDs() }

    func headClaims(spaces: Set<SpaceID>, heads: [SpaceID: [SigningPublicKey: FeedHead]]) throws -> [SpaceID: [HeadClaim]] {
        try inner.headClaims(spaces: spaces, heads: heads)
    }

    func heldClaims(_ spaces: [SpaceID]) throws -> [SpaceID: [HeadClaim]] { try inner.heldClaims(spaces) }
    func keepClaims(space: SpaceID, _ claims: [HeadClaim]) throws -> ClaimReceipt { try inner.keepClaims(space: space, claims) }
}

/// Withholding is visible (Docs/SECURITY.md, "Withholding"): real daemons on 127.0.0.1.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct WithholdingTests {
    /// A relay serves member B everything but member C's feed, and its summary claims none of
    /// it. C's signed head claim reaches B through that same relay; once B's session settles, B
    /// names the relay, the author and how far behind it is (`peers.json`, `peer list --json`,
    /// `inspect-sync`). When the relay serves C's feed again, the report clears.
    @Test func aMemberNamesTheRelayThatWithheldAnAuthorAndHowFarBehind() async throws {
        let root = temporaryDirectory("withhold")
        defer { try? FileManager.default.removeItem(at: root) }
        let relay = try TestNode("relay", relay: true, root: root)
        let a = try TestNode("A", root: root)
        let b = try TestNode("B", root: root)
        let c = try TestNode("C", root: root)
        let space = try shareSpace("สารบรรณ", creator: a, members: [b, c], relays: [relay])
        for doc in 1...3 { _ = try c.node.createDocument(kind: "memo", fields: [("เรื่อง", "บันทึก \(doc)")], space: space) }
        _ = try a.node.createDocument(kind: "memo", fields: [("เรื่อง", "จาก A")], space: space)
        let cSeq = try c.vector(space)[c.id.publicKey]
        #expect(cSeq >= 3)
        relay.storage = WithholdingStorage(inner: try relay.node.envelopeStorage(relay: true), hidden: c.id.publicKey)
        for n in [relay, a, b, c] { n.options.withholdingGrace = 0 }
        try await withNodes([relay, a, b, c]) {
            try await relay.start()
            try await a.start()
            try await c.start()
            for o in [a, c] { try relay.addPeer(o) }
            try a.addPeer(relay)
            try c.addPeer(relay)
            // The relay stores C's feed and C's claim (made at the start of C's session).
            try await eventually("the relay holds C's feed and claim") {
                try relay.node.feedVector(space: space)[c.id.publicKey] == cSeq
                    && relay.node.store.headClaims([space])[space]?.contains { $0.claimant == c.id.publicKey } == true
            }
            try await b.start()
            try b.addPeer(relay)
            try relay.addPeer(b)
            try await eventually("B reports what the relay withheld") {
                b.node.withheldByPeer().first { $0.peer == relay.id.text }?.withheld.contains { $0.author == c.id.text } == true
            }
            #expect(try b.vector(space)[c.id.publicKey] == 0)
            #expect(try b.vector(space)[a.id.publicKey] == (try a.vector(space)[a.id.publicKey]))
            let report = try #require(b.node.withheldByPeer().first { $0.peer == relay.id.text })
            let w = try #require(report.withheld.first { $0.author == c.id.text })
            #expect(w.space == space.hex && w.behind == cSeq && w.held == 0 && w.claimed == cSeq && w.claimant == c.id.text)
            #expect(report.withheld.allSatisfy { $0.author == c.id.text }, "only C's feed was withheld: \(report.withheld)")
            let listed = try #require(try b.node.peerList().first { $0.node_id == relay.id.text })
            #expect(listed.withheld?.map(\.author) == [c.id.text])
            let peer = try b.node.syncSettings().peer(matching: relay.id.text)
            let preview = try b.node.inspectSyncRecorded(peer: peer)
            #expect(preview.withheld.map(\.behind) == [cSeq])
            let ahead = try #require(preview.spaces.first { $0.space == space }?.claimedAhead.first { $0.author == c.id })
            #expect(ahead.claimed == cSeq && ahead.peer == 0 && ahead.claimant == c.id)

            // The relay serves C's feed again: the next settled session clears the report.
            await relay.stop()
            relay.storage = nil
            try await relay.start()
            try await eventually("B receives C's feed and the report clears") {
                try b.vector(space)[c.id.publicKey] == cSeq
                    && b.node.withheldByPeer().first { $0.peer == relay.id.text } == nil
            }
        }
    }

    /// Sessions of `serve` last for days: a member's daemon makes fresh claims as it goes and its
    /// open sessions pass them on at once, through the relay to the other members, so a member
    /// that keeps syncing never turns stale.
    @Test func claimsMadeDuringLongSessionsReachOtherMembersThroughTheRelay() async throws {
        let root = temporaryDirectory("claims-live")
        defer { try? FileManager.default.removeItem(at: root) }
        let relay = try TestNode("relay", relay: true, root: root)
        let a = try TestNode("A", root: root)
        let b = try TestNode("B", root: root)
        let space = try shareSpace("สารบรรณ", creator: a, members: [b], relays: [relay])
        for n in [relay, a, b] { n.options.claimInterval = .milliseconds(200) }
        let opens = Locked(0)
        b.onEvent = { if case .opened = $0 { opens.withLock { $0 += 1 } } }
        try await withNodes([relay, a, b]) {
            for n in [relay, a, b] { try await n.start() }
            for o in [a, b] {
                try relay.addPeer(o)
                try o.addPeer(relay)
            }
            func claimOfA(at n: TestNode) throws -> HeadClaim? {
                try n.node.store.headClaims([space])[space]?.first { $0.claimant == a.id.publicKey }
            }
            do {
                // Generous: it timed out once at 30 s in CI's parallel run of the daemon suites.
                try await eventually("B holds A's claim", timeout: .seconds(90)) { try claimOfA(at: b) != nil }
            } catch {
                // Where A's claim got to, to tell a relay that never kept it from one that never passed it on.
                print(
                    "WithholdingTests: A's claim at A \((try? claimOfA(at: a)) != nil), at the relay \((try? claimOfA(at: relay)) != nil); "
                        + "B holds \((try? b.vector(space))?.total ?? 0) changes of the space, A \((try? a.vector(space))?.total ?? 0); "
                        + "sessions opened by B: \(opens.withLock { $0 })")
                throw error
            }
            let before = try #require(try claimOfA(at: b))
            // A writes while the sessions stay open: its next claim reaches B without a new session.
            try await Task.sleep(for: .milliseconds(500))  // both sides' dials have settled
            let opened = opens.withLock { $0 }
            _ = try a.node.createDocument(kind: "memo", fields: [("เรื่อง", "ระหว่างเชื่อมต่อ")], space: space)
            let held = try a.vector(space)
            try await eventually("B holds A's newer claim") {
                guard let c = try claimOfA(at: b) else { return false }
                return c.time > before.time && c.vector == held
            }
            #expect(opens.withLock { $0 } == opened, "the claim came through the open session")
        }
    }
}
