import Foundation
import PostgresNIO
import SarabanCore
import SarabanCrypto
import SarabanNode
@testable import SarabanRelayPostgres
import SarabanStorage
import SarabanSync
import Testing

/// One suite, every relay store: what a relay does with envelopes, spaces and peer status must
/// not depend on the engine underneath.
@Suite(.timeLimit(.minutes(5))) struct RelayStoreTests {
    @Test(arguments: StoreKind.available)
    func storesIdempotentlyAndServesWhatAVectorLacks(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let space = randomSpace()
        try await f.store.carry([space], for: [])
        var a = TestFeed(space: space)
        var b = TestFeed(space: space)
        let first = a.next(6)
        let fromB = b.next(3)
        let r1 = try await f.store.store(space: space, envelopes: Array(first.prefix(4)) + fromB)
        #expect(r1.accepted.count == 7 && r1.duplicates.isEmpty && r1.refused.isEmpty)
        // Resent (a cut before the ack): the repeats are duplicates, never second rows.
        let r2 = try await f.store.store(space: space, envelopes: first)
        #expect(r2.accepted.map(\.id) == first.suffix(2).map(\.id))
        #expect(r2.duplicates.count == 4)
        #expect(r2.holds[a.signer.publicKey] == 6)

        let all = try await f.store.envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: 100, bytes: 1 << 20))
        #expect(all.complete)
        #expect(Set(all.envelopes.map(\.id)) == Set((first + fromB).map(\.id)))
        #expect(all.envelopes.count == 9)
        // Store order: each author's envelopes in chain order.
        #expect(all.envelopes.filter { $0.header.author == a.signer.publicKey }.map(\.id) == first.map(\.id))

        // After a vector: only what it lacks.
        let lacking = try await f.store.envelopes(
            space: space, after: FeedVector([a.signer.publicKey: 4, b.signer.publicKey: 3]),
            limit: FetchLimit(envelopes: 100, bytes: 1 << 20))
        #expect(lacking.envelopes.map(\.id) == first.suffix(2).map(\.id) && lacking.complete)
        // Limits: a count, and bytes (always at least one envelope).
        let three = try await f.store.envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: 3, bytes: 1 << 20))
        #expect(three.envelopes.count == 3 && !three.complete)
        let one = try await f.store.envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: 100, bytes: 1))
        #expect(one.envelopes.count == 1 && !one.complete)
        let none = try await f.store.envelopes(
            space: space, after: FeedVector([a.signer.publicKey: 6, b.signer.publicKey: 3]), limit: FetchLimit(envelopes: 100, bytes: 1 << 20))
        #expect(none.envelopes.isEmpty && none.complete)

        let carried = try await f.store.carriedSpaces()
        #expect(carried[space] == FeedVector([a.signer.publicKey: 6, b.signer.publicKey: 3]))
        #expect(try await f.store.vectors(of: [space, randomSpace()]) == [space: carried[space]!])

        // The head tags of the relay's summaries: the envelope ending at each entry; for an entry
        // below the store's head, that envelope (SQLite looks it up) or none (PostgreSQL reads
        // only the heads table), never another.
        let heads = try await f.store.feedHeads([space: carried[space]!])
        #expect(heads[space]?[a.signer.publicKey] == FeedHead(lastSequence: 6, lastID: first[5].id))
        #expect(heads[space]?[b.signer.publicKey] == FeedHead(lastSequence: 3, lastID: fromB[2].id))
        let behind = try await f.store.feedHeads([space: FeedVector([a.signer.publicKey: 5, b.signer.publicKey: 3])])
        let atFive = behind[space]?[a.signer.publicKey]
        #expect(atFive == nil || atFive == FeedHead(lastSequence: 5, lastID: first[4].id))
        #expect(behind[space]?[b.signer.publicKey] == FeedHead(lastSequence: 3, lastID: fromB[2].id))
        await f.cleanup()
    }

    /// The relay's sessions get their head tags from the driver's memory (no database read per
    /// session): loaded with the vectors, raised by every envelope stored.
    @Test(arguments: StoreKind.available)
    func theDriverKnowsTheFeedHeadsWithoutReadingTheStore(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let space = randomSpace()
        try await f.store.carry([space], for: [])
        var a = TestFeed(space: space)
        let stored = a.next(3)
        _ = try await f.store.store(space: space, envelopes: stored)
        // A driver started now loads the heads with the vectors.
        let driver = RelaySyncDriver(store: f.store)
        try await driver.prime()
        let author = a.signer.publicKey
        #expect(try await driver.feedHeads([space: FeedVector([author: 3])]) == [space: [author: FeedHead(lastSequence: 3, lastID: stored[2].id)]])
        // Raised by a delivery; an entry behind the head gets no tag (never another envelope's).
        let more = a.next(2)
        _ = try await driver.deliver(space: space, envelopes: more, from: author)
        #expect(try await driver.feedHeads([space: FeedVector([author: 5])]) == [space: [author: FeedHead(lastSequence: 5, lastID: more[1].id)]])
        #expect(try await driver.feedHeads([space: FeedVector([author: 4])]).isEmpty)
        #expect(try await driver.feedHeads([randomSpace(): FeedVector([author: 1])]).isEmpty)
        driver.finish()
        await f.cleanup()
    }

    @Test(arguments: StoreKind.available)
    func refusesGapsForksTamperingAndOtherSpaces(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let space = randomSpace()
        try await f.store.carry([space], for: [])
        var a = TestFeed(space: space)
        let two = a.next(2)
        _ = try await f.store.store(space: space, envelopes: [two[0]])
        // A gap: the third without the second.
        let third = a.next()
        let gap = try await f.store.store(space: space, envelopes: [third])
        #expect(gap.refused.map(\.error.code) == [.gap])
        // A fork: the author signs a different envelope at stored seq 1.
        var fork = TestFeed(space: space, signer: a.signer, key: a.key)
        let other = fork.next()
        let forked = try await f.store.store(space: space, envelopes: [other])
        #expect(forked.refused.map(\.error.code) == [.fork])
        // Tampered bytes at the next position.
        var bytes = two[1].bytes
        bytes[bytes.count - 80] ^= 1
        let tampered = try Envelope.decode(bytes)
        let t = try await f.store.store(space: space, envelopes: [tampered])
        #expect(t.refused.map(\.error.code) == [.tampered])
        // Another space's envelope in this space's batch.
        var elsewhere = TestFeed(space: randomSpace())
        let w = try await f.store.store(space: space, envelopes: [elsewhere.next()])
        #expect(w.refused.map(\.error.code) == [.wrongSpace])
        // Nothing refused was stored; the chain continues.
        let ok = try await f.store.store(space: space, envelopes: [two[1], third])
        #expect(ok.accepted.count == 2)
        let all = try await f.store.envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: 100, bytes: 1 << 20))
        #expect(all.envelopes.map(\.id) == [two[0].id, two[1].id, third.id])
        await f.cleanup()
    }

    @Test(arguments: StoreKind.available)
    func spacesNamedForPeersAreServedOnlyToThem(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let open = randomSpace()
        let named = randomSpace()
        let p1 = SigningKeyPair.generate().publicKey.nodeID
        let p2 = SigningKeyPair.generate().publicKey.nodeID
        try await f.store.carry([open], for: [])
        try await f.store.carry([named], for: [p1])
        try await f.store.carry([named], for: [p1])  // idempotent
        #expect(Set(try await f.store.servedSpaces(to: p1)) == [open, named])
        #expect(Set(try await f.store.servedSpaces(to: p2)) == [open])
        #expect(Set(try await f.store.carriedSpaces().keys) == [open, named])
        await f.cleanup()
    }

    /// Storing takes one advisory lock per feed (space, author), so relays storing different
    /// feeds never wait for each other. Spaces whose ids share their first 8 bytes (every space of
    /// a fleet run did) and authors of one space get different keys. (The key was once the space's
    /// first 8 bytes for every feed: all storing of a fleet ran through one lock, one transaction
    /// at a time, across every relay process.)
    @Test func eachFeedHasItsOwnLockKey() {
        let hi = UInt64.random(in: 0...UInt64.max)
        let spaces = (0..<64).map { SpaceID(hi: hi, lo: UInt64($0)) }
        let authors = (0..<16).map { _ in SigningKeyPair.generate().publicKey }
        var keys = Set<Int64>()
        for s in spaces {
            for a in authors { keys.insert(PostgresRelayStore.lockKey(s, a)) }
        }
        #expect(keys.count == spaces.count * authors.count)
        // The same feed, the same key (every relay process must take the same lock).
        #expect(PostgresRelayStore.lockKey(spaces[3], authors[5]) == PostgresRelayStore.lockKey(spaces[3], authors[5]))
    }

    /// The position read (how a relay process hears what others stored) must not scan the
    /// month's partition: it runs several times a second in every relay process, and a month of
    /// a national relay holds hundreds of millions of rows. Its "rows held back above the horizon"
    /// check was an `EXISTS`, which the planner ran as a sequential scan once the partition had
    /// statistics (auto_explain in the fleet: 14,000 buffers per read).
    @Test(arguments: StoreKind.available.filter { $0 == .postgresql })
    func thePositionReadDoesNotScanTheMonth(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let pg = try #require(f.store as? PostgresRelayStore)
        // 30,000 rows of about 1.5 KB in this month's partition, stored by 3,000 transactions (as
        // after a few minutes of a busy relay), and their statistics.
        try await PostgresAdmin.execute(
            trusted: [
                """
                INSERT INTO envelopes(space, author, seq_start, seq_end, epoch, id, bytes, tx)
                SELECT decode(lpad(to_hex(g % 500), 32, '0'), 'hex'), decode(lpad(to_hex(g), 64, '0'), 'hex'), g, g, 0,
                    decode(lpad(to_hex(g), 32, '0'), 'hex'), decode(repeat('ab', 1500), 'hex'), 1000 + g / 10
                FROM generate_series(1, 30000) g
                """,
                "ANALYZE envelopes",
            ], on: try #require(f.location))
        var month = ""
        for try await name in try await pg.client.query("SELECT tableoid::regclass::text FROM envelopes LIMIT 1").decode(String.self) {
            month = name
        }
        #expect(month.hasPrefix("envelopes_"))
        let read = PostgresRelayStore.positionQuery(tx: 0, n: 0, own: [1, 2], maxRows: 512, maxBytes: 4 << 20)
        var plan: [String] = []
        for try await line in try await pg.client.query(PostgresQuery(unsafeSQL: "EXPLAIN (VERBOSE) " + read.sql, binds: read.binds))
            .decode(String.self)
        {
            plan.append(line.trimmingCharacters(in: .whitespaces))
        }
        let listing = plan.joined(separator: "\n")
        #expect(!plan.isEmpty)
        // (A verbose plan names the table with its schema: `Seq Scan on public.envelopes_YYYYMM e`.)
        #expect(!plan.contains { $0.contains("Seq Scan on") && $0.contains("\(month) ") }, "the position read scans \(month):\n\(listing)")
        // Nor sort the page's bytes (up to 4 MB: past `work_mem`, a sort spills to disk). The page
        // is put in position order by the relay after reading it.
        let sortedBytes = zip(plan, plan.dropFirst()).filter { node, output in
            (node.hasPrefix("Sort ") || node.hasPrefix("->  Sort ")) && output.hasPrefix("Output:") && output.contains("bytes")
        }
        #expect(sortedBytes.isEmpty, "the position read sorts envelope bytes:\n\(listing)")
        await f.cleanup()
    }

    /// A relay process on PostgreSQL remembers which spaces it serves to whom while it listens for
    /// notifications; a `space carry` through another process (another store) reaches it.
    @Test(arguments: StoreKind.available.filter { $0 == .postgresql })
    func aSpaceCarriedThroughAnotherProcessIsServedAtOnce(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let pg = try #require(f.store as? PostgresRelayStore)
        let changes = Task { for await _ in pg.changes() {} }  // listening, as a running relay is
        let peer = SigningKeyPair.generate().publicKey.nodeID
        let first = randomSpace()
        try await f.store.carry([first], for: [peer])
        try await eventually("the store listens", timeout: .seconds(20)) { pg.listensForChanges }
        #expect(try await pg.servedSpaces(to: peer) == [first])
        // Remembered: a row written behind the relays' back (no notification) is not seen yet.
        let hidden = randomSpace()
        try await PostgresAdmin.execute(
            trusted: [
                "INSERT INTO spaces(id, name, open) VALUES ('\\x\(hidden.hex)', 'hidden', false)",
                "INSERT INTO space_peers(peer, space) VALUES ('\\x\(Hex.encode(peer.publicKey.rawRepresentation))', '\\x\(hidden.hex)')",
            ], on: try #require(f.location))
        #expect(try await pg.servedSpaces(to: peer) == [first], "the served spaces were read again for each session")
        // A carry through another process (another store, as `saraban space carry` is) is heard.
        let other = try await f.second()
        let later = randomSpace()
        try await other.carry([later], for: [peer])
        try await eventually("the carry through another process is served", timeout: .seconds(20)) {
            Set(try await pg.servedSpaces(to: peer)) == [first, hidden, later]
        }
        await other.close()
        changes.cancel()
        await f.cleanup()
    }

    @Test(arguments: StoreKind.available)
    func peerStatusRowsAddCountersAndKeepUnchangedFields(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let peer = SigningKeyPair.generate().publicKey
        let author = SigningKeyPair.generate().publicKey
        let space = randomSpace()
        var c1 = PeerStatusChange(peer: peer)
        c1.lastContact = 1_000
        c1.lastSynced = 1_000
        c1.sessions = 1
        c1.envelopesSent = 5
        c1.lastError = .set("ขาดการเชื่อมต่อ: connection reset")
        c1.changesPeerLacks = 4
        c1.cursors[space] = PeerCursor(at: 1_000, vector: FeedVector([author: 3]))
        try await f.store.applyPeerStatus([c1])
        var c2 = PeerStatusChange(peer: peer)
        c2.lastContact = 2_000
        c2.sessions = 1
        c2.envelopesSent = 2
        c2.cursors[space] = PeerCursor(at: 2_000, vector: FeedVector([author: 7]))
        try await f.store.applyPeerStatus([c2])
        var s = try #require(try await f.store.peerStatuses().first { $0.peer == peer })
        #expect(s.lastContact == 2_000 && s.lastSynced == 1_000)
        #expect(s.sessions == 2 && s.envelopesSent == 7)
        #expect(s.lastError == "ขาดการเชื่อมต่อ: connection reset" && s.changesPeerLacks == 4)
        #expect(s.cursors[space] == PeerCursor(at: 2_000, vector: FeedVector([author: 7])))
        var c3 = PeerStatusChange(peer: peer)
        c3.lastError = .clear
        try await f.store.applyPeerStatus([c3])
        s = try #require(try await f.store.peerStatuses().first { $0.peer == peer })
        #expect(s.lastError == nil && s.sessions == 2)
        await f.cleanup()
    }

    /// Two relay processes on one database: the same envelopes through both are stored once, and
    /// what one stores wakes the other (LISTEN/NOTIFY for PostgreSQL, the log probe for SQLite).
    @Test(arguments: StoreKind.available)
    func twoRelaysOnOneDatabaseStoreOnceAndWakeEachOther(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let other = try await f.second()
        let space = randomSpace()
        try await f.store.carry([space], for: [])
        var a = TestFeed(space: space)
        let batch = a.next(20)
        // Subscribe on the second relay, then store through both at once.
        let changes = other.changes()
        let woke = Task { () -> Bool in
            for await c in changes {
                switch c {
                case .anywhere, .claims, .floors: continue  // (re)connected, a probe, claims or horizons: wait for a change naming the space
                case .spaces(let s): if s.contains(space) { return true }
                }
            }
            return false
        }
        try await Task.sleep(for: .milliseconds(300))
        async let r1 = f.store.store(space: space, envelopes: batch)
        async let r2 = other.store(space: space, envelopes: batch)
        let (x, y) = try await (r1, r2)
        #expect(x.refused.isEmpty && y.refused.isEmpty)
        #expect(x.accepted.count + y.accepted.count == 20)
        #expect(x.duplicates.count + y.duplicates.count == 20)
        let all = try await other.envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: 100, bytes: 1 << 20))
        #expect(all.envelopes.map(\.id) == batch.map(\.id))
        if kind == .postgresql {
            // The second relay is woken naming the space (both stored some, or the first did all).
            let third = a.next()
            _ = try await f.store.store(space: space, envelopes: [third])
            let deadline = Task {
                try? await Task.sleep(for: .seconds(5))
                woke.cancel()
            }
            #expect(await woke.value)
            deadline.cancel()
        } else {
            woke.cancel()
        }
        await other.close()
        await f.cleanup()
    }
}

extension RelayStoreTests {
    /// Many sessions storing at once (the PostgreSQL store gathers them into one transaction):
    /// every feed's envelopes, stored concurrently round after round, are all accepted in order.
    @Test(arguments: StoreKind.available)
    func concurrentDeliveriesOfManyFeedsAreAllStored(_ kind: StoreKind) async throws {
        let f = try await RelayFixture.make(kind)
        let spaces = (0..<8).map { _ in randomSpace() }
        try await f.store.carry(spaces, for: [])
        var feeds = spaces.flatMap { s in [TestFeed(space: s), TestFeed(space: s)] }
        for _ in 0..<5 {
            let batch = feeds.indices.map { feeds[$0].next() }
            let reports = try await withThrowingTaskGroup(of: ReceiveReport.self) { group in
                for e in batch {
                    group.addTask { try await f.store.store(space: SpaceID(e.header)!, envelopes: [e]) }
                }
                var out: [ReceiveReport] = []
                for try await r in group { out.append(r) }
                return out
            }
            #expect(reports.allSatisfy { $0.accepted.count == 1 && $0.refused.isEmpty }, "\(reports.flatMap(\.refused).map(\.error))")
        }
        let carried = try await f.store.carriedSpaces()
        for feed in feeds { #expect(carried[feed.space]?[feed.signer.publicKey] == 5) }
        await f.cleanup()
    }
}
