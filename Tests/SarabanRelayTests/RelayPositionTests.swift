import Foundation
import SarabanCrypto
import SarabanFeed
import SarabanNode
@testable import SarabanRelayPostgres
import SarabanSync
import Testing

/// The PostgreSQL store's position stream (Docs/RELAY.md, "Catching up by store position"): a
/// relay process reads what the others stored with one query over every space, and never skips an
/// envelope whose transaction commits after a newer one.
@Suite(.timeLimit(.minutes(5))) struct RelayPositionTests {
    static var postgres: Bool { StoreKind.postgresURL != nil }

    /// Relay 1's transaction takes its position (its `n`) first but commits last, after relay 3's
    /// in another space: a reader that moved past relay 3's row would never read relay 1's. The
    /// office on relay 2 gets both, once each.
    @Test(.enabled(if: postgres))
    func anEnvelopeCommittedAfterANewerOneStillReachesAnOfficeOnAnotherRelay() async throws {
        let f = try await RelayFixture.make(.postgresql)
        let location = try #require(f.location)
        let relay2 = try await PostgresRelayStore.open(location, logger: quietLogger("relay2"), deadline: testDeadline)
        let relay3 = try await PostgresRelayStore.open(location, logger: quietLogger("relay3"), deadline: testDeadline)
        let slow = randomSpace()
        let fast = randomSpace()
        try await f.store.carry([slow, fast], for: [])

        // Relay 2, with one office's session on both spaces.
        let driver = RelaySyncDriver(store: relay2, logger: quietLogger("relay2"))
        try await driver.prime()
        let office = SigningKeyPair.generate().publicKey.nodeID
        let pushes = driver.localChanges(for: office)
        #expect(Set(try await driver.carriedSpaces(for: office).keys) == [slow, fast])
        let watcher = Task { await driver.runWatcher() }
        let received = Received()
        let reader = Task { for await u in pushes { received.add(u.envelopes) } }

        // Relay 1's insert into `slow` waits 3 s inside its transaction, after its row took its n
        // (a probe sequence says when it is there).
        try await PostgresAdmin.execute(
            trusted: [
                "CREATE SEQUENCE saraban_test_entered",
                """
                CREATE FUNCTION saraban_test_hold() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.space = '\\x\(slow.hex)'::bytea THEN
                        PERFORM nextval('saraban_test_entered');
                        PERFORM pg_sleep(3);
                    END IF;
                    RETURN NEW;
                END $$
                """,
                "CREATE TRIGGER saraban_test_hold AFTER INSERT ON envelopes FOR EACH ROW EXECUTE FUNCTION saraban_test_hold()",
            ], on: location)
        var a = TestFeed(space: slow)
        var b = TestFeed(space: fast)
        let first = a.next()
        let second = b.next()
        let storing = Task { try await f.store.store(space: slow, envelopes: [first]) }
        try await eventually("relay 1 entered its transaction", timeout: .seconds(30), every: .milliseconds(20)) {
            try await PostgresAdmin.integer(
                trusted: "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM saraban_test_entered", on: location) == 1
        }
        // Relay 3 stores into `fast` and commits while relay 1's transaction is still open.
        #expect(try await relay3.store(space: fast, envelopes: [second]).accepted.count == 1)
        #expect(try await storing.value.accepted.count == 1)
        // The positions were taken in one order and committed in the other.
        #expect(
            try await PostgresAdmin.integer(
                trusted: """
                    SELECT ((SELECT n FROM envelopes WHERE space = '\\x\(slow.hex)'::bytea)
                        < (SELECT n FROM envelopes WHERE space = '\\x\(fast.hex)'::bytea))::int::int8
                    """, on: location) == 1)

        try await eventually("both envelopes at relay 2's office", timeout: .seconds(15), every: .milliseconds(20)) {
            guard Set(received.ids).isSuperset(of: [first.id, second.id]) else { throw TestFailure("it got \(received.ids.count); the one committed last is missing") }
            return true
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(received.ids.count == 2, "each envelope once")

        watcher.cancel()
        reader.cancel()
        driver.finish()
        await relay2.close()
        await relay3.close()
        await f.cleanup()
    }

    /// A database of schema version 1 (before store positions) migrates forward: the envelopes
    /// stored before stay served and keep their rows as they were (no position: rows are never
    /// updated), and the stream reports what other processes store after, across spaces, in
    /// position order and in pages, leaving out what the reading process stored itself.
    @Test(.enabled(if: postgres))
    func aVersion1DatabaseMigratesAndTheStreamReportsWhatOthersStore() async throws {
        let location = try #require(try await freshPostgres())
        let v1 = try await PostgresRelayStore.open(location, logger: quietLogger("v1"), lanes: 2, deadline: testDeadline, schema: 1)
        #expect(try await v1.schemaVersion() == 1)
        let s1 = randomSpace()
        let s2 = randomSpace()
        try await v1.carry([s1, s2], for: [])
        var a = TestFeed(space: s1)
        let before = a.next(2)
        a.epoch = ControlEntry.publicEpoch  // a control envelope, found by schema 3's index
        let before3 = before + [a.next()]
        a.epoch = 0
        #expect(try await v1.store(space: s1, envelopes: before3).accepted.count == 3)
        await v1.close()

        let reader = try await PostgresRelayStore.open(location, logger: quietLogger("v2"), deadline: testDeadline)
        #expect(try await reader.schemaVersion() == PostgresSchema.current)
        let served = try await reader.envelopes(space: s1, after: FeedVector(), limit: FetchLimit(envelopes: 100, bytes: 1 << 20))
        #expect(served.envelopes.map(\.id) == before3.map(\.id))
        #expect(try await reader.controlEnvelopes(of: [s1, s2])[s1]?.map(\.id) == [before3[2].id])
        #expect(try await PostgresAdmin.integer(trusted: "SELECT count(*) FROM envelopes WHERE tx IS NULL", on: location) == 3)

        let start = try #require(try await reader.currentPosition())
        let writer = try await PostgresRelayStore.open(location, logger: quietLogger("writer"), deadline: testDeadline)
        var b = TestFeed(space: s2)
        let later = a.next(2)
        let other = b.next(3)
        _ = try await writer.store(space: s1, envelopes: later)
        _ = try await writer.store(space: s2, envelopes: other)
        // The reader's own: its sessions heard of them when they were stored.
        var c = TestFeed(space: s2)
        #expect(try await reader.store(space: s2, envelopes: c.next(2)).accepted.count == 2)

        // Pages of two, until nothing more (another test's transaction on the same server may
        // hold the horizon back for a moment: read again then).
        var at = start
        var got: [EnvelopeID] = []
        var pages = 0
        var largest = 0
        try await eventually("every page read", timeout: .seconds(30), every: .milliseconds(20)) {
            let p = try await reader.stored(after: at, limit: FetchLimit(envelopes: 2, bytes: 1 << 20))
            largest = max(largest, p.envelopes.count)
            got += p.envelopes.map(\.id)
            at = p.next
            pages += 1
            return !p.more && !p.heldBack && got.count >= 5
        }
        #expect(got == (later + other).map(\.id))
        #expect(pages >= 3 && largest == 2)
        #expect(try await reader.stored(after: at, limit: FetchLimit(envelopes: 100, bytes: 1 << 20)).envelopes.isEmpty)

        // Opened again: nothing to migrate.
        await writer.close()
        let again = try await PostgresRelayStore.open(location, logger: quietLogger("again"), deadline: testDeadline)
        #expect(try await again.schemaVersion() == PostgresSchema.current)
        await again.close()
        await reader.close()
        try? await PostgresAdmin.dropDatabase(location.database, on: PostgresLocation(parsing: StoreKind.postgresURL!))
    }
}

/// Envelopes pushed to a session, in arrival order.
final class Received: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [EnvelopeID] = []

    func add(_ envelopes: [Envelope]) { lock.withLock { list += envelopes.map(\.id) } }
    var ids: [EnvelopeID] { lock.withLock { list } }
}
