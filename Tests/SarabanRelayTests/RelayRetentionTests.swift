import Foundation
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
@testable import SarabanRelayPostgres
import SarabanSync
import SarabanTestSupport
import Testing

/// Retention on a relay on PostgreSQL (Docs/RELAY.md, "Retention"): a month leaves by its
/// partition after it was archived as change files; the relay's horizons move; a member that
/// lacks the retired stretch is told so, is not sent what it cannot chain on, merges the archive
/// and then gets the rest from the relay. Membership logs stay.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RelayRetentionTests {
    /// Moves the envelopes stored so far into `month`, as if the relay had stored them then: the
    /// content envelopes, and the control envelopes that start a feed (as a relay of schema 5
    /// still running during the upgrade stores them); the other control envelopes stay in
    /// `envelopes_keep`. (The test's clock: a relay itself never updates an envelope row.)
    static func backdate(_ location: PostgresLocation, to month: Int) async throws {
        try await PostgresAdmin.execute(
            trusted: [
                "CREATE TABLE envelopes_\(month) PARTITION OF envelopes FOR VALUES FROM (\(month)) TO (\(month + 1))",
                "UPDATE envelopes SET period = \(month) WHERE period > \(month) OR (period = 0 AND seq_start = 1)",
            ], on: location)
    }

    /// A relay rig on PostgreSQL with members A and B of A's space "สารบรรณ".
    static func twoMembers(_ kind: StoreKind) async throws -> (RosterRig, PostgresLocation, PostgresRelayStore, Node, Node, SpaceID) {
        let rig = try await RosterRig(kind)
        let location = try #require(rig.fixture.location)
        let pg = try #require(rig.fixture.store as? PostgresRelayStore)
        let a = try rig.node("a")
        let b = try rig.node("b")
        let space = try a.createSpace(name: "สารบรรณ").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID).text))
        return (rig, location, pg, a, b, space)
    }

    @Test(arguments: StoreKind.available.filter { $0 == .postgresql })
    func aRetiredMonthIsArchivedAndAMemberBelowTheHorizonIsToldThenCatchesUp(_ kind: StoreKind) async throws {
        let (rig, location, pg, a, b, space) = try await Self.twoMembers(kind)
        try a.designateRelay(space, relay: rig.relay.nodeID)
        var old: [DocID] = []
        for i in 1...3 { old.append(try a.createDocument(kind: "letter", fields: [("subject", "เก่า \(i)")], space: space)) }
        let aKey = a.identity.publicKey
        let oldHead = try a.feedVector(space: space)[aKey]
        try await rig.fixture.store.carry([space], for: [])
        try await rig.startRelay()
        try await rig.sync(a)
        #expect(try await rig.stored(space)[aKey] == oldHead)
        let controls = try await pg.controlEnvelopes(of: [space])[space]?.map(\.id) ?? []
        #expect(!controls.isEmpty)

        try await Self.backdate(location, to: 2020_01)
        #expect(try await PostgresAdmin.integer(trusted: "SELECT count(*) FROM envelopes_202001 WHERE epoch = -1", on: location) ?? 0 > 0)
        #expect(try await PostgresAdmin.integer(trusted: "SELECT count(*) FROM envelopes_keep", on: location) ?? 0 > 0)
        var fresh: [DocID] = []
        for i in 1...2 { fresh.append(try a.createDocument(kind: "letter", fields: [("subject", "ใหม่ \(i)")], space: space)) }
        try await rig.sync(a)

        let archive = rig.dir.file("archive")
        let report = try await pg.retire(before: PostgresRelayStore.thisMonth(), archive: URL(fileURLWithPath: archive))
        #expect(report.months.map(\.month) == ["2020-01"])
        #expect(report.months.first?.envelopes ?? 0 > 0)
        #expect(try await pg.monthPartitions().allSatisfy { $0 > 2020_01 }, "the month's partition was dropped")
        #expect(try await pg.feedFloors()[space]?[aKey] == oldHead + 1)
        #expect(try await pg.controlEnvelopes(of: [space])[space]?.map(\.id) == controls, "a membership log was retired")
        #expect(try await rig.stored(space)[aKey] > oldHead, "the relay's vector still runs to the head")

        // The relay process hears of it (NOTIFY) and announces the horizon from then on.
        let driver = try #require(rig.daemons[0].relayDriver)
        try await eventually("the relay knows the new horizon", timeout: .seconds(20)) {
            try await driver.feedFloors([space: FeedVector()])[space]?[aKey] == oldHead + 1
        }

        // B holds little of A's feed: it is told what it lacks, gets nothing it cannot chain on,
        // and the session still settles.
        let bHeld = try b.feedVector(space: space)[aKey]
        #expect(bHeld < oldHead)
        let first = try await rig.sync(b)
        #expect(first.synced, "\(first.error ?? "")")
        #expect(first.gaps == [HorizonGap(space: space, author: aKey, missing: (bHeld + 1)...oldHead)])
        #expect(try b.feedVector(space: space)[aKey] == bHeld)
        #expect((try? b.document(fresh[0])) == nil)

        // The archive: one change file for the space, which B merges; then the relay sends the rest.
        let file = archive + "/2020-01/\(space.hex).changes"
        #expect(FileManager.default.fileExists(atPath: file))
        _ = try b.merge(file: file)
        #expect(try b.feedVector(space: space)[aKey] == oldHead)
        #expect(try b.document(old[2]).display("subject") == "เก่า 3")
        let second = try await rig.sync(b)
        #expect(second.synced && second.gaps.isEmpty, "\(second)")
        #expect(try b.document(fresh[1]).display("subject") == "ใหม่ 2")
        #expect(try b.feedVector(space: space)[aKey] == (try await rig.stored(space))[aKey])

        // A relay process started after the retirement folds the kept log and knows the horizons.
        let other = try await rig.startRelay(try await rig.fixture.second())
        try await eventually("relay \(other) folded the space's log", timeout: .seconds(20)) {
            rig.daemons[other].relayDriver?.roster(space)?.roster.current.hasGenesis == true
        }
        #expect(try await rig.daemons[other].relayDriver?.feedFloors([space: FeedVector()])[space]?[aKey] == oldHead + 1)
        await rig.stop()
    }

    /// Attachments retire with the month they were last stored or served in (one month's margin):
    /// the old one is archived in a member's layout and deleted, its root listed; the one used
    /// last month stays. The attaching office offers both again: the relay confirms the one it
    /// holds and answers the retired one at once, without pulling it back. B cannot fetch the
    /// retired one through the relay, and reads it once the archive is copied into its data
    /// directory. Serving B's fetch of the other counts as a use (this month).
    @Test(arguments: StoreKind.available.filter { $0 == .postgresql })
    func retiredAttachmentsAreArchivedAndNotPulledAgain(_ kind: StoreKind) async throws {
        let (rig, location, pg, a, b, space) = try await Self.twoMembers(kind)
        let (oldLetter, old, oldBytes) = try RelayAttachmentTests.letterWithScan(a, rig, bytes: 256 * 1024 + 5)
        let (recentLetter, recent, recentBytes) = try RelayAttachmentTests.letterWithScan(a, rig, bytes: 1000)
        #expect(old.chunks == 2 && recent.chunks == 1)
        try await rig.fixture.store.carry([space], for: [])
        try await rig.startRelay()
        _ = try a.addPeer(nodeID: rig.relay.nodeID.text, address: "127.0.0.1:\(rig.ports[0])", name: "relay0")
        func push() async throws -> OneShotResult {
            let r = try await a.syncOnce(
                storage: try a.envelopeStorage(), peers: [try a.syncSettings().peer(matching: "relay0")],
                attachmentStallTimeout: .seconds(60), logger: quietLogger("push"))
            return try #require(r.first)
        }
        let first = try await push()
        #expect(first.attachmentsOffered == 2 && first.attachmentsConfirmed == 2 && first.attachmentChunksSent == 3, "\(first)")

        let lastMonth = PostgresRelayStore.previousMonth(PostgresRelayStore.thisMonth())
        try await PostgresAdmin.execute(
            trusted: [
                "UPDATE attachment_manifests SET used = 202001 WHERE root = '\\x\(old.root)'",
                "UPDATE attachment_manifests SET used = \(lastMonth) WHERE root = '\\x\(recent.root)'",
            ], on: location)
        let archive = rig.dir.file("archive")
        let report = try await pg.retire(before: PostgresRelayStore.thisMonth(), archive: URL(fileURLWithPath: archive))
        #expect(report.attachments.map(\.month) == ["2020-01"])
        #expect(report.attachments.first?.attachments == 1 && report.attachments.first?.chunks == 2, "\(report)")
        func chunks(_ root: String) async throws -> Int {
            Int(try await PostgresAdmin.integer(trusted: "SELECT count(*) FROM attachment_chunks WHERE root = '\\x\(root)'", on: location) ?? -1)
        }
        #expect(try await chunks(old.root) == 0)
        #expect(try await chunks(recent.root) == 1, "an attachment used last month was retired (the margin)")
        #expect(try await PostgresAdmin.integer(trusted: "SELECT count(*) FROM retired_roots WHERE root = '\\x\(old.root)'", on: location) == 1)

        // The archive is the attaching office's own files, byte for byte.
        let kept = archive + "/2020-01/attachments/\(old.root)"
        for file in ["manifest", "0", "1"] {
            #expect(FileManager.default.contents(atPath: kept + "/" + file) == FileManager.default.contents(atPath: a.attachmentDirectory(old) + "/" + file))
        }

        // A offers both again: one confirmed, the retired one answered without a pull (no stall).
        let again = try await push()
        #expect(again.attachmentsOffered == 2 && again.attachmentsConfirmed == 1, "\(again)")
        #expect(again.seconds < 45, "the relay did not answer the offer of a retired attachment (the push stalled)")
        #expect(try await chunks(old.root) == 0, "the relay pulled a retired attachment back")

        // B gets the letters; the retired scan is not served by the relay, the other one is.
        _ = try b.addPeer(nodeID: rig.relay.nodeID.text, address: "127.0.0.1:\(rig.ports[0])", name: "relay0")
        try await rig.sync(b)
        let relay0 = try b.syncSettings().peer(matching: "relay0")
        let (gone, goneStatus) = try await b.fetchAttachments(
            oldLetter, storage: try b.envelopeStorage(), peers: [relay0], stallTimeout: .seconds(20), logger: quietLogger("fetch"))
        #expect(gone.first?.chunksReceived == 0 && goneStatus.first?.complete == false, "\(gone)")
        let (got, gotStatus) = try await b.fetchAttachments(
            recentLetter, storage: try b.envelopeStorage(), peers: [relay0], stallTimeout: .seconds(20), logger: quietLogger("fetch"))
        #expect(got.first?.chunksReceived == 1 && gotStatus.first?.complete == true, "\(got)")
        #expect(try b.readAttachment(recent) == recentBytes)
        #expect(
            try await PostgresAdmin.integer(trusted: "SELECT used::int8 FROM attachment_manifests WHERE root = '\\x\(recent.root)'", on: location)
                == Int64(PostgresRelayStore.thisMonth()), "serving a fetch is a use")

        // The operator hands over the archive: B copies it into its data directory and reads the scan.
        try FileManager.default.createDirectory(atPath: b.dataDirectory.path + "/attachments", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: kept, toPath: b.attachmentDirectory(old))
        #expect(try b.readAttachment(old) == oldBytes)
        await rig.stop()
    }

    /// Only months that have ended are retired; a month with nothing to retire changes nothing;
    /// a relay on SQLite has no partitions to retire (the CLI refuses: RelayCLITests).
    @Test(arguments: StoreKind.available.filter { $0 == .postgresql })
    func onlyEndedMonthsAreRetired(_ kind: StoreKind) async throws {
        let fixture = try await RelayFixture.make(kind)
        let pg = try #require(fixture.store as? PostgresRelayStore)
        let next = PostgresRelayStore.thisMonth() % 100 == 12 ? PostgresRelayStore.thisMonth() + 89 : PostgresRelayStore.thisMonth() + 1
        await #expect(throws: NodeError.self) { _ = try await pg.retire(before: next, archive: nil) }
        await #expect(throws: NodeError.self) { _ = try await pg.retire(before: 2026_13, archive: nil) }
        let partitions = try await pg.monthPartitions()
        #expect(partitions.count >= 3, "this month's and the next two's partitions are made ahead: \(partitions)")
        #expect(try await pg.retire(before: PostgresRelayStore.thisMonth(), archive: nil).months.isEmpty)
        #expect(try await pg.monthPartitions() == partitions)
        await fixture.cleanup()
    }
}
