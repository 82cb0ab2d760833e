import Foundation
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

/// Head claims (Docs/SECURITY.md, "Withholding") through relays on either store: a member's claim
/// reaches another member that syncs through another relay process, and a relay keeps only
/// claims that verify and whose claimant the space's roster has as a member. A relay on
/// PostgreSQL kept none before (members behind it heard claims only from members they met).
@Suite(.timeLimit(.minutes(2))) struct RelayClaimTests {
    @Test(arguments: StoreKind.available)
    func aMembersClaimReachesAnotherMemberThroughAnotherRelayProcess(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let b = try rig.node("b")
        let space = try a.createSpace(name: "งานสารบรรณ").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID).text))
        try await rig.fixture.store.carry([space], for: [])
        try await rig.startRelay()
        let other = try await rig.startRelay(try await rig.fixture.second())
        _ = try a.createDocument(kind: "letter", fields: [("subject", "ขออนุมัติ")], space: space)
        try await rig.sync(a)
        let claimOfA = try #require(try a.store.headClaims([space])[space]?.first { $0.claimant == a.identity.publicKey })
        try await eventually("b holds a's claim, through the other relay process") {
            try await rig.sync(b, via: other)
            return try b.store.headClaims([space])[space]?.contains { $0.claimant == a.identity.publicKey && $0.time >= claimOfA.time } == true
        }
        await rig.stop()
    }

    /// The claims a relay on PostgreSQL refuses: an outsider's (its signature verifies, but the
    /// roster has no such member), an altered one, one of another space; an older claim never
    /// replaces a newer one. What is kept is what a session is offered.
    @Test(arguments: StoreKind.available.filter { $0 == .postgresql })
    func aRelayKeepsOnlyVerifiedClaimsOfMembers(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let space = try a.createSpace(name: "กองคลัง").id
        try await rig.fixture.store.carry([space], for: [])
        let driver = RelaySyncDriver(store: rig.fixture.store)
        try await driver.prime()
        _ = try await driver.deliver(space: space, envelopes: try RelayRosterTests.envelopes(a, space), from: a.identity.publicKey)
        let heads = try await rig.fixture.store.feedHeads([space: try await rig.stored(space)])[space] ?? [:]
        let outsider = SigningKeyPair.generate()
        let signer = a.identity
        let older = HeadClaim.make(space: space, signer: signer, time: 1_000, heads: heads)
        let newer = HeadClaim.make(space: space, signer: signer, time: 2_000, heads: heads)
        var altered = newer.bytes
        altered[altered.count - 1] ^= 1
        let forged = try HeadClaim.decode(altered)
        let elsewhere = HeadClaim.make(space: SpaceID(hi: 1, lo: 2), signer: signer, time: 3_000, heads: heads)
        let outsiders = HeadClaim.make(space: space, signer: outsider, time: 4_000, heads: heads)

        // A second process on the same database, whose open sessions hear what the first keeps.
        let second = RelaySyncDriver(store: try await rig.fixture.second())
        try await second.prime()
        let watcher = Task { await second.runWatcher() }
        defer { watcher.cancel() }
        let heard = Task { () -> [HeadClaim] in
            for await update in second.localClaims() where update.space == space { return update.claims }
            return []
        }
        try await Task.sleep(for: .milliseconds(300))  // listening
        // Read once before (none): the second process's sessions are then offered what it
        // remembers, which the notification must bring up to date.
        #expect(try await second.headClaims(for: a.nodeID, spaces: [space: FeedVector()], heads: [:]).isEmpty)

        let peer = a.nodeID
        await driver.receiveClaims(space: space, claims: [newer, forged, elsewhere, outsiders], from: peer)
        await driver.receiveClaims(space: space, claims: [older], from: peer)
        let held = try await driver.headClaims(for: peer, spaces: [space: FeedVector()], heads: [:])[space] ?? []
        print("RelayClaimTests: held \(held.map { "\($0.claimant.nodeID) @\($0.time)" })")
        #expect(held.map(\.bytes) == [newer.bytes])
        #expect(await heard.value.map(\.bytes) == [newer.bytes], "the other process's sessions were not told")
        #expect(try await second.headClaims(for: peer, spaces: [space: FeedVector()], heads: [:])[space]?.map(\.bytes) == [newer.bytes])
        second.finish()
        await rig.stop()
    }
}
