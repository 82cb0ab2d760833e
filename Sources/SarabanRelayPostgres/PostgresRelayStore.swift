import Foundation
import Logging
import PostgresNIO
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage
import SarabanSync

/// A relay's store on PostgreSQL: many relay processes (on one host or many) share one database,
/// so an office may connect to any of them.
///
/// - Envelopes are appended to a table range-partitioned by the month they were stored in; a
///   row is never updated or deleted, and a month leaves by partition (``retire(before:archive:)``). Storing is idempotent: each (space, author) chain is extended under a transaction
///   advisory lock, after reading its head, so the same envelope arriving through two relays is
///   stored once and the second is a duplicate.
/// - Deliveries from all sessions of a process are stored together: while one transaction runs,
///   the next batch gathers (group commit), so the database sees a few large transactions rather
///   than one per envelope.
/// - Every transaction that stored envelopes ends with `NOTIFY saraban_envelopes` naming its
///   spaces; every relay process LISTENs and pushes what is new to its sessions (``changes()``).
/// - Only bound parameters reach the database (`PostgresQuery` interpolation binds every value).
public final class PostgresRelayStore: RelayStore, @unchecked Sendable {
    public let location: PostgresLocation
    let client: PostgresClient
    let logger: Logger
    private let runTask: Task<Void, Never>
    /// This process's name in notifications (its own are skipped).
    let instance = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    let lanes: [StoreLane]
    /// How long a store call may wait for the database before the office is told it is unavailable.
    public let deadline: Duration
    /// Transactions of this process that stored envelopes and returned to their callers (which
    /// announced them): ``stored(after:limit:)`` leaves them out. Pruned as the horizon passes them.
    private let ownLock = NSLock()
    private var ownTransactions: Set<Int64> = []
    /// Envelope rows carry their month (schema 6; false only in the migration tests' older stores).
    private(set) var periods = true
    /// Schema 7 or later: attachments record their last use and may be retired.
    private(set) var attachmentUse = true
    /// When this process last made the coming months' partitions (nil: before schema 6).
    private var partitionsMadeAt: ContinuousClock.Instant?
    /// ``servedSpaces(to:)`` by peer, kept only while this process listens for notifications (a
    /// `space carry` anywhere clears it: ``carry(_:for:)`` notifies). One query per session less:
    /// about a tenth of a relay's CPU per idle session went to the PostgreSQL client.
    private var served: [NodeID: [SpaceID]] = [:]
    private var servedGeneration = 0
    private var servedSince = ContinuousClock.now
    private var listening = false
    static let servedKept = 100_000
    /// The cache is also dropped this often: a notification sent while the listening connection
    /// was being re-established is lost, and a carry must not stay unseen for longer.
    static let servedLifetime: Duration = .seconds(300)
    static let channel = "saraban_envelopes"

    public var kind: String { "postgresql" }

    private init(location: PostgresLocation, logger: Logger, lanes: Int, deadline: Duration) {
        self.location = location
        self.deadline = deadline
        self.logger = logger
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .error)
        let client = PostgresClient(configuration: location.clientConfiguration(), backgroundLogger: quiet)
        self.client = client
        runTask = Task { await client.run() }
        var made: [StoreLane] = []
        for _ in 0..<max(1, lanes) { made.append(StoreLane()) }
        self.lanes = made
        for l in made { l.store = self }
    }

    /// Connects to `location`, creating or migrating the schema. Throws ``RelayStoreError`` when
    /// the database cannot be reached and `NodeError` when its schema is newer than this build's.
    /// `deadline` is how long one call may wait for the database (5 s for a relay in service).
    public static func open(
        _ location: PostgresLocation, logger: Logger = Logger(label: "saraban.relay.postgres"), lanes: Int = 2,
        deadline: Duration = .seconds(5)
    ) async throws -> PostgresRelayStore {
        try await open(location, logger: logger, lanes: lanes, deadline: deadline, schema: PostgresSchema.current)
    }

    /// `schema`: the version to migrate to (an older one only in the migration tests).
    static func open(
        _ location: PostgresLocation, logger: Logger, lanes: Int, deadline: Duration, schema: Int
    ) async throws -> PostgresRelayStore {
        let store = PostgresRelayStore(location: location, logger: logger, lanes: lanes, deadline: deadline)
        do {
            // Fail fast when the server is not there at all (the pool would keep trying).
            // (10 s, or the caller's deadline when longer: tests that start many stores at once
            // on a loaded machine waited longer than 10 s for their first connection.)
            _ = try await store.guarded("connect to the database", seconds: max(10, Double(deadline.components.seconds))) {
                try await store.client.query("SELECT 1", logger: store.logger).collect()
            }
            try await store.migrate(to: schema)
            store.periods = schema >= 6
            store.attachmentUse = schema >= 7
            if schema >= 6 {
                try await store.makePartitionsAhead()
                store.ownLock.withLock { store.partitionsMadeAt = .now }
            }
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    public func close() async {
        // Cancelling run() closes the pool's connections.
        runTask.cancel()
        await runTask.value
    }

    // MARK: - Schema

    /// The schema version of the database (0: none yet).
    public func schemaVersion() async throws -> Int {
        try await guarded("read the schema version") {
            let exists = try await self.client.query("SELECT to_regclass('saraban_schema') IS NOT NULL", logger: self.logger)
            var found = false
            for try await e in exists.decode(Bool.self) { found = e }
            guard found else { return 0 }
            var v = 0
            for try await x in try await self.client.query("SELECT coalesce(max(version), 0) FROM saraban_schema", logger: self.logger)
                .decode(Int.self)
            {
                v = x
            }
            return v
        }
    }

    func migrate(to target: Int) async throws {
        try await guarded("migrate the schema", seconds: 120) {
            try await self.client.withConnection { conn in
                try await conn.query("SELECT pg_advisory_lock(\(PostgresSchema.migrationLock))", logger: self.logger).drain()
                do {
                    try await self.migrateLocked(conn, to: target)
                } catch {
                    try? await conn.query("SELECT pg_advisory_unlock(\(PostgresSchema.migrationLock))", logger: self.logger).drain()
                    throw error
                }
                try await conn.query("SELECT pg_advisory_unlock(\(PostgresSchema.migrationLock))", logger: self.logger).drain()
            }
        }
    }

    private func migrateLocked(_ conn: PostgresConnection, to target: Int) async throws {
        try await conn.query(
            """
            CREATE TABLE IF NOT EXISTS saraban_schema (
                version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())
            """, logger: logger).drain()
        var have = 0
        for try await v in try await conn.query("SELECT coalesce(max(version), 0) FROM saraban_schema", logger: logger).decode(Int.self) {
            have = v
        }
        guard have <= PostgresSchema.current else {
            throw NodeError(
                .newerSchema,
                "the relay database \(location.redacted) has schema version \(have), newer than this build's "
                    + "\(PostgresSchema.current): upgrade saraban on this relay (ฐานข้อมูลเป็นรุ่นใหม่กว่าโปรแกรม)")
        }
        for version in (have + 1)..<(max(have, target) + 1) {
            let statements = PostgresSchema.migrations[version - 1]
            try await conn.withTransaction(logger: logger) { tx in
                // DDL written in PostgresSchema.swift (no value from outside).
                for sql in statements { try await tx.query(PostgresQuery(unsafeSQL: sql), logger: self.logger).drain() }
                try await tx.query("INSERT INTO saraban_schema(version) VALUES (\(version))", logger: self.logger).drain()
            }
            logger.notice("migrated the relay database", metadata: ["version": "\(version)"])
        }
    }

    // MARK: - Errors and deadlines

    /// Runs `body` with a deadline, mapping database conditions the office should retry to
    /// ``RelayStoreError`` (unreachable, shutting down, full, read-only).
    func guarded<T: Sendable>(_ what: String, seconds: Double? = nil, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let limit = seconds ?? Double(deadline.components.seconds)
        do {
            return try await withDeadline(limit, what, body)
        } catch {
            throw Self.refusal(error, doing: what) ?? error
        }
    }

    /// The ``RelayStoreError`` for a failure the office should retry later, or nil.
    static func refusal(_ error: any Error, doing what: String) -> RelayStoreError? {
        if let e = error as? RelayStoreError { return e }
        if let t = error as? PostgresTransactionError {
            for inner in [t.beginError, t.closureError, t.commitError].compactMap({ $0 }) {
                if let r = refusal(inner, doing: what) { return r }
            }
            return nil
        }
        // The pool's own failures (its module is underscored, so matched by name): it could not
        // open a connection for a while, or is shutting down.
        if String(describing: type(of: error)).hasPrefix("ConnectionPoolError") {
            return RelayStoreError(.unavailable, "cannot \(what): cannot open a connection to the database")
        }
        guard let p = error as? PSQLError else { return nil }
        switch p.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .poolClosed, .clientClosedConnection:
            return RelayStoreError(.unavailable, "cannot \(what): the database connection failed or closed")
        case .server:
            let state = p.serverInfo?[.sqlState] ?? ""
            let message = p.serverInfo?[.message] ?? "server error"
            switch state {
            case "53100", "53200", "53400": return RelayStoreError(.full, "cannot \(what): \(message) (SQLSTATE \(state))")
            case "25006", "42501": return RelayStoreError(.readOnly, "cannot \(what): \(message) (SQLSTATE \(state))")
            default:
                if state.hasPrefix("08") || state.hasPrefix("57P") || state == "53300" {
                    return RelayStoreError(.unavailable, "cannot \(what): \(message) (SQLSTATE \(state))")
                }
                return nil
            }
        default:
            return nil
        }
    }

    // MARK: - Spaces

    public func carriedSpaces() async throws -> [SpaceID: FeedVector] {
        try await guarded("read the carried spaces") {
            try await self.vectors(
                self.client.query(
                    "SELECT s.id, h.author, h.last_seq FROM spaces s LEFT JOIN feed_heads h ON h.space = s.id",
                    logger: self.logger))
        }
    }

    public func vectors(of spaces: [SpaceID]) async throws -> [SpaceID: FeedVector] {
        guard !spaces.isEmpty else { return [:] }
        let ids = spaces.map { ByteBuffer(bytes: $0.bytes) }
        return try await guarded("read feed vectors") {
            try await self.vectors(
                self.client.query(
                    "SELECT s.id, h.author, h.last_seq FROM spaces s LEFT JOIN feed_heads h ON h.space = s.id WHERE s.id = ANY(\(ids))",
                    logger: self.logger))
        }
    }

    private func vectors(_ rows: PostgresRowSequence) async throws -> [SpaceID: FeedVector] {
        var out: [SpaceID: [SigningPublicKey: UInt64]] = [:]
        for try await (id, author, seq) in rows.decode((ByteBuffer, ByteBuffer?, Int64?).self) {
            guard let space = SpaceID(bytes: Array(id.readableBytesView)) else { continue }
            var entries = out[space] ?? [:]
            if let author, let seq, let key = try? SigningPublicKey(rawRepresentation: Array(author.readableBytesView)) {
                entries[key] = UInt64(seq)
            }
            out[space] = entries
        }
        return out.mapValues { FeedVector($0) }
    }

    /// The envelope ending at each author's entry of `spaces`, from `feed_heads` (the head tags of
    /// the relay's summaries: without them every session with a member of this build exchanged its
    /// tags, as the two head digests differed). An entry the table has moved past (another relay
    /// process stored more since the vector was read) gets no tag.
    public func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        guard !spaces.isEmpty else { return [:] }
        let ids = spaces.keys.map { ByteBuffer(bytes: $0.bytes) }
        return try await guarded("read feed heads") {
            var out: [SpaceID: [SigningPublicKey: FeedHead]] = [:]
            let rows = try await self.client.query(
                "SELECT space, author, last_seq, last_id FROM feed_heads WHERE space = ANY(\(ids))", logger: self.logger)
            for try await (s, a, seq, id) in rows.decode((ByteBuffer, ByteBuffer, Int64, ByteBuffer).self) {
                guard let space = SpaceID(bytes: Array(s.readableBytesView)),
                    let author = try? SigningPublicKey(rawRepresentation: Array(a.readableBytesView)),
                    let last = try? EnvelopeID(bytes: Array(id.readableBytesView)),
                    spaces[space]?[author] == UInt64(seq)
                else { continue }
                out[space, default: [:]][author] = FeedHead(lastSequence: UInt64(seq), lastID: last)
            }
            return out
        }
    }

    public func carry(_ spaces: [SpaceID], for peers: [NodeID]) async throws {
        guard !spaces.isEmpty else { return }
        let ids = spaces.map { ByteBuffer(bytes: $0.bytes) }
        let names = spaces.map(\.hex)
        let open = peers.isEmpty
        let pairPeers = peers.flatMap { p in ids.map { _ in ByteBuffer(bytes: p.publicKey.rawRepresentation) } }
        let pairSpaces = peers.flatMap { _ in ids }
        try await guarded("carry spaces") {
            try await self.client.withTransaction(logger: self.logger) { tx in
                try await tx.query(
                    """
                    INSERT INTO spaces(id, name, open) SELECT id, name, \(open) FROM unnest(\(ids)::bytea[], \(names)::text[]) AS u(id, name)
                    ON CONFLICT (id) DO UPDATE SET open = spaces.open AND excluded.open
                    """, logger: self.logger).drain()
                if !pairPeers.isEmpty {
                    try await tx.query(
                        """
                        INSERT INTO space_peers(peer, space) SELECT * FROM unnest(\(pairPeers)::bytea[], \(pairSpaces)::bytea[])
                        ON CONFLICT DO NOTHING
                        """, logger: self.logger).drain()
                }
                // Every relay process forgets which spaces it serves to whom (sent at commit).
                try await tx.query("SELECT pg_notify(\(Self.channel), \(self.instance + " k"))", logger: self.logger).drain()
            }
        }
        forgetServed()
    }

    /// Whether this process listens for notifications (and so keeps ``servedSpaces(to:)``).
    var listensForChanges: Bool { ownLock.withLock { listening } }

    /// Forgets the cached ``servedSpaces(to:)``: read afresh when next asked.
    private func forgetServed() {
        ownLock.withLock {
            served = [:]
            servedGeneration += 1
            servedSince = .now
        }
    }

    private func setListening(_ on: Bool) {
        ownLock.withLock {
            listening = on
            served = [:]
            servedGeneration += 1
            servedSince = .now
        }
    }

    public func servedSpaces(to peer: NodeID) async throws -> [SpaceID] {
        let (known, generation) = ownLock.withLock { () -> ([SpaceID]?, Int) in
            if ContinuousClock.now - servedSince > Self.servedLifetime {
                served = [:]
                servedGeneration += 1
                servedSince = .now
            }
            return (listening ? served[peer] : nil, servedGeneration)
        }
        if let known { return known }
        let key = ByteBuffer(bytes: peer.publicKey.rawRepresentation)
        let out = try await guarded("read the spaces served to a peer") {
            var out: [SpaceID] = []
            let rows = try await self.client.query(
                "SELECT id FROM spaces WHERE open UNION ALL SELECT space FROM space_peers WHERE peer = \(key)", logger: self.logger)
            for try await id in rows.decode(ByteBuffer.self) {
                if let s = SpaceID(bytes: Array(id.readableBytesView)) { out.append(s) }
            }
            return out
        }
        ownLock.withLock {
            // Not if a carry was heard meanwhile (the rows read may predate it).
            guard listening, generation == servedGeneration else { return }
            if served.count >= Self.servedKept { served = [:] }
            served[peer] = out
        }
        return out
    }

    /// The control envelopes of `spaces` in store order, by the partial index of schema 3 (a few
    /// per space, whatever the space's size).
    public func controlEnvelopes(of spaces: [SpaceID]) async throws -> [SpaceID: [Envelope]] {
        guard !spaces.isEmpty else { return [:] }
        let ids = spaces.map { ByteBuffer(bytes: $0.bytes) }
        let control = Int32(bitPattern: ControlEntry.publicEpoch)
        return try await guarded("read control envelopes") {
            var out: [SpaceID: [Envelope]] = [:]
            let rows = try await self.client.query(
                "SELECT space, id, bytes FROM envelopes WHERE epoch = \(control) AND space = ANY(\(ids)) ORDER BY space, n",
                logger: self.logger)
            for try await (s, id, bytes) in rows.decode((ByteBuffer, ByteBuffer, ByteBuffer).self) {
                guard let space = SpaceID(bytes: Array(s.readableBytesView)) else { continue }
                out[space, default: []].append(
                    try Envelope.decode(Array(bytes.readableBytesView), storedID: EnvelopeID(bytes: Array(id.readableBytesView))))
            }
            return out
        }
    }

    // MARK: - Serving

    public func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (envelopes: [Envelope], complete: Bool) {
        let sp = ByteBuffer(bytes: space.bytes)
        let entries = after.sortedEntries
        let authors = entries.map { ByteBuffer(bytes: $0.author.rawRepresentation) }
        let seqs = entries.map { Int64(clamping: $0.seq) }
        let maxRows = max(limit.envelopes, 1)
        let maxBytes = max(limit.bytes, 1)
        return try await guarded("read envelopes") {
            // Per author the peer lacks, where its catch-up starts in store order (the envelope
            // holding its next sequence number: a vector ends on an envelope boundary).
            let starts = try await self.client.query(
                """
                SELECT min((SELECT e.n FROM envelopes e WHERE e.space = h.space AND e.author = h.author
                        AND e.seq_start <= coalesce((\(seqs)::int8[])[array_position(\(authors)::bytea[], h.author)], 0) + 1
                        ORDER BY e.seq_start DESC LIMIT 1))
                FROM feed_heads h
                WHERE h.space = \(sp) AND h.last_seq > coalesce((\(seqs)::int8[])[array_position(\(authors)::bytea[], h.author)], 0)
                """, logger: self.logger)
            var start: Int64?
            for try await n in starts.decode(Int64?.self) { start = n }
            guard let start else { return ([], true) }
            // From there in store order, what each author lacks, cut after about maxBytes.
            let rows = try await self.client.query(
                """
                SELECT id, bytes, before, total FROM (
                    SELECT n, id, bytes, sum(len) OVER (ORDER BY n) - len AS before, count(*) OVER () AS total FROM (
                        SELECT n, id, bytes, octet_length(bytes) AS len FROM envelopes
                        WHERE space = \(sp) AND n >= \(start)
                            AND seq_end > coalesce((\(seqs)::int8[])[array_position(\(authors)::bytea[], author)], 0)
                        ORDER BY n LIMIT \(maxRows)) l) w
                WHERE before < \(maxBytes) ORDER BY n
                """, logger: self.logger)
            var out: [Envelope] = []
            var total = 0
            for try await (id, bytes, _, count) in rows.decode((ByteBuffer, ByteBuffer, Int64, Int64).self) {
                total = Int(count)
                out.append(
                    try Envelope.decode(Array(bytes.readableBytesView), storedID: EnvelopeID(bytes: Array(id.readableBytesView))))
            }
            return (out, total < maxRows && out.count == total)
        }
    }

    // MARK: - The position stream

    /// The horizon now: every transaction with a lower id has ended (committed or rolled back),
    /// so what is stored below it is final and a reader starting there misses nothing stored later.
    public func currentPosition() async throws -> StorePosition? {
        try await guarded("read the store position") {
            var horizon: Int64 = 0
            for try await x in try await self.client.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8", logger: self.logger)
                .decode(Int64.self)
            {
                horizon = x
            }
            return StorePosition(transaction: horizon, index: -1)
        }
    }

    /// One query, whatever the number of spaces: the rows after `position` in (tx, n) order whose
    /// transaction is below the horizon (`xmin` of the query's snapshot: every transaction below it
    /// has ended, so no row can appear there later), less this process's own transactions. A
    /// transaction that took its `n` earlier but commits later than a newer one is still running
    /// when the newer one's rows become visible, so the horizon stops below it until it ends: its
    /// rows are read then, never skipped. `heldBack` says committed rows wait above the horizon
    /// (asked as the first such row in index order: written as `EXISTS`, the planner often chose
    /// a sequential scan of the whole month's partition for it, on every read).
    public func stored(after position: StorePosition, limit: FetchLimit) async throws -> StoredPage {
        let own = ownLock.withLock { Array(ownTransactions) }
        let maxRows = max(limit.envelopes, 1)
        let maxBytes = max(limit.bytes, 1)
        let (tx, n) = (position.transaction, position.index)
        let page = try await guarded("read envelopes by store position") {
            let rows = try await self.client.query(
                Self.positionQuery(tx: tx, n: n, own: own, maxRows: maxRows, maxBytes: maxBytes), logger: self.logger)
            var horizon: Int64 = 0
            var held = false
            var total = 0
            var rowsRead: [(tx: Int64, n: Int64, envelope: Envelope)] = []
            for try await (h, waiting, rtx, rn, id, bytes, count) in rows.decode(
                (Int64, Bool, Int64?, Int64?, ByteBuffer?, ByteBuffer?, Int64?).self)
            {
                (horizon, held) = (h, waiting)
                guard let rtx, let rn, let id, let bytes, let count else { continue }
                total = Int(count)
                rowsRead.append(
                    (rtx, rn, try Envelope.decode(Array(bytes.readableBytesView), storedID: EnvelopeID(bytes: Array(id.readableBytesView)))))
            }
            // Put in position order here: sorting in the statement sorted the page's bytes too,
            // which spilled to disk once a page passed `work_mem`.
            rowsRead.sort { ($0.tx, $0.n) < ($1.tx, $1.n) }
            let last = rowsRead.last.map { StorePosition(transaction: $0.tx, index: $0.n) }
            let out = rowsRead.map(\.envelope)
            let more = total >= maxRows || out.count < total
            // Read to the end below the horizon: the next read may start at it.
            let next = more ? last ?? position : StorePosition(transaction: max(horizon, tx), index: max(horizon, tx) == tx ? n : -1)
            return StoredPage(envelopes: out, next: next, more: more, heldBack: held)
        }
        // Own transactions below the new position can no longer be met.
        ownLock.withLock { ownTransactions = ownTransactions.filter { $0 >= page.next.transaction } }
        return page
    }

    /// The position read's statement (``stored(after:limit:)``; a test explains its plan).
    static func positionQuery(tx: Int64, n: Int64, own: [Int64], maxRows: Int, maxBytes: Int) -> PostgresQuery {
        """
        WITH h AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::int8 AS x),
        page AS (
            SELECT e.tx, e.n, e.id, e.bytes, octet_length(e.bytes) AS len FROM envelopes e
            WHERE (e.tx, e.n) > (\(tx), \(n)) AND e.tx < (SELECT x FROM h) AND e.tx <> ALL(\(own)::int8[])
            ORDER BY e.tx, e.n LIMIT \(maxRows)
        ), cut AS (
            SELECT tx, n, id, bytes, sum(len) OVER (ORDER BY tx, n) - len AS before, count(*) OVER () AS total FROM page
        )
        SELECT (SELECT x FROM h),
            (SELECT e.tx FROM envelopes e WHERE e.tx >= (SELECT x FROM h) AND e.tx <> ALL(\(own)::int8[])
                ORDER BY e.tx, e.n LIMIT 1) IS NOT NULL,
            c.tx, c.n, c.id, c.bytes, c.total
        FROM (SELECT 1) one LEFT JOIN cut c ON c.before < \(maxBytes)
        """
    }

    // MARK: - Storing

    public func store(space: SpaceID, envelopes: [Envelope]) async throws -> ReceiveReport {
        guard !envelopes.isEmpty else {
            var r = ReceiveReport()
            r.holds = try await vectors(of: [space])[space] ?? FeedVector()
            return r
        }
        return try await withCheckedThrowingContinuation { c in
            lane(of: space).submit(Delivery(space: space, envelopes: envelopes)) { c.resume(with: $0) }
        }
    }

    /// Stored by the space's lane, which calls `done` once the transaction ends (no task between).
    public func store(space: SpaceID, envelopes: [Envelope], then done: @escaping @Sendable (Result<ReceiveReport, any Error>) -> Void) {
        // Nothing to store: what is held, read outside the lanes.
        guard !envelopes.isEmpty else { return storeInTask(space: space, envelopes: envelopes, then: done) }
        lane(of: space).submit(Delivery(space: space, envelopes: envelopes), then: done)
    }

    private func lane(of space: SpaceID) -> StoreLane { lanes[Int(space.lo % UInt64(lanes.count))] }

    struct Delivery: Sendable {
        var space: SpaceID
        var envelopes: [Envelope]
    }

    /// Stores `deliveries` in one transaction; a report per delivery, in order.
    func storeBatch(_ deliveries: [Delivery]) async throws -> [ReceiveReport] {
        let (reports, transaction) = try await guarded("store envelopes") {
            try await self.client.withTransaction(logger: self.logger) { tx in
                try await self.storeBatch(deliveries, in: tx)
            }
        }
        // Committed, and its callers announce what it stored: the position stream leaves it out.
        // (Not recorded when the deadline gave up on it: should it commit after all, the stream
        // reports it, so this process's sessions hear of it too.)
        if let transaction { ownLock.withLock { _ = ownTransactions.insert(transaction) } }
        return reports
    }

    /// The reports, and the id of the transaction when it stored anything.
    private func storeBatch(_ deliveries: [Delivery], in tx: PostgresConnection) async throws -> ([ReceiveReport], Int64?) {
        struct Feed: Hashable {
            var space: SpaceID
            var author: SigningPublicKey
        }
        var feeds = Set<Feed>()
        for d in deliveries {
            for e in d.envelopes where e.header.spaceID == d.space.bytes { feeds.insert(Feed(space: d.space, author: e.header.author)) }
        }
        let ordered = Array(feeds)
        // One lock per feed, always taken in the same (key) order: relays storing the same feeds
        // wait for each other instead of deadlocking; different feeds never wait.
        let keys = Array(Set(ordered.map { Self.lockKey($0.space, $0.author) })).sorted()
        if !keys.isEmpty {
            try await tx.query("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(\(keys)::int8[]) AS k", logger: logger).drain()
        }
        let spaceBufs = ordered.map { ByteBuffer(bytes: $0.space.bytes) }
        let authorBufs = ordered.map { ByteBuffer(bytes: $0.author.rawRepresentation) }
        var heads: [Feed: FeedHead] = [:]
        if !ordered.isEmpty {
            let rows = try await tx.query(
                """
                SELECT h.space, h.author, h.last_seq, h.last_id FROM feed_heads h
                JOIN unnest(\(spaceBufs)::bytea[], \(authorBufs)::bytea[]) AS f(space, author) ON h.space = f.space AND h.author = f.author
                """, logger: logger)
            for try await (s, a, seq, id) in rows.decode((ByteBuffer, ByteBuffer, Int64, ByteBuffer).self) {
                guard let space = SpaceID(bytes: Array(s.readableBytesView)),
                    let author = try? SigningPublicKey(rawRepresentation: Array(a.readableBytesView)),
                    let last = try? EnvelopeID(bytes: Array(id.readableBytesView))
                else { continue }
                heads[Feed(space: space, author: author)] = FeedHead(lastSequence: UInt64(seq), lastID: last)
            }
        }
        // Stored ids at positions an envelope of the batch repeats (at or below its feed's head).
        var lookup: [(ByteBuffer, ByteBuffer, Int64)] = []
        for d in deliveries {
            for e in d.envelopes where e.header.spaceID == d.space.bytes {
                let f = Feed(space: d.space, author: e.header.author)
                if e.header.seqStart <= (heads[f]?.lastSequence ?? 0) {
                    lookup.append((ByteBuffer(bytes: d.space.bytes), ByteBuffer(bytes: e.header.author.rawRepresentation), Int64(clamping: e.header.seqStart)))
                }
            }
        }
        struct Position: Hashable {
            var feed: Feed
            var seqStart: UInt64
        }
        var stored: [Position: EnvelopeID] = [:]
        if !lookup.isEmpty {
            let rows = try await tx.query(
                """
                SELECT e.space, e.author, e.seq_start, e.id FROM envelopes e
                JOIN unnest(\(lookup.map(\.0))::bytea[], \(lookup.map(\.1))::bytea[], \(lookup.map(\.2))::int8[]) AS p(space, author, seq_start)
                    ON e.space = p.space AND e.author = p.author AND e.seq_start = p.seq_start
                """, logger: logger)
            for try await (s, a, seq, id) in rows.decode((ByteBuffer, ByteBuffer, Int64, ByteBuffer).self) {
                guard let space = SpaceID(bytes: Array(s.readableBytesView)),
                    let author = try? SigningPublicKey(rawRepresentation: Array(a.readableBytesView)),
                    let eid = try? EnvelopeID(bytes: Array(id.readableBytesView))
                else { continue }
                stored[Position(feed: Feed(space: space, author: author), seqStart: UInt64(seq))] = eid
            }
        }

        // Judge every envelope in order, one verifier per space (a relay accepts any epoch).
        var verifiers: [SpaceID: FeedVerifier] = [:]
        var reports: [ReceiveReport] = []
        var insert: [Envelope] = []
        var insertSpaces: [SpaceID] = []
        for d in deliveries {
            var report = ReceiveReport()
            var verifier =
                verifiers[d.space]
                ?? FeedVerifier(
                    spaceID: d.space.bytes, knownEpochs: [],
                    heads: Dictionary(uniqueKeysWithValues: heads.filter { $0.key.space == d.space }.map { ($0.key.author, $0.value) }))
            for e in d.envelopes {
                let h = e.header
                guard h.spaceID == d.space.bytes else {
                    report.refused.append(
                        (e, EnvelopeError(.wrongSpace, "envelope \(e.id) belongs to another space than \(d.space.hex): route it to its space")))
                    continue
                }
                let f = Feed(space: d.space, author: h.author)
                if h.seqStart <= verifier.head(of: h.author).lastSequence {
                    let known = stored[Position(feed: f, seqStart: h.seqStart)]
                    if known == e.id {
                        report.duplicates.append(e)
                        continue
                    }
                    if let known {
                        report.refused.append(
                            (e,
                                e.isSignatureValid()
                                    ? EnvelopeError(
                                        .fork,
                                        "\(h.author) signed two different envelopes at seq \(h.seqStart) in space \(d.space.hex) (stored \(known.hex), received \(e.id.hex)): the author forked its feed; keep both envelopes as proof and alert an administrator")
                                    : EnvelopeError(
                                        .tampered,
                                        "envelope at seq \(h.seqStart) of \(h.author) in space \(d.space.hex) differs from the stored one and its signature does not verify: it was altered on the way or forged; drop it")))
                        continue
                    }
                }
                verifier.knownEpochs.insert(h.epoch)
                do {
                    try verifier.accept(e)
                } catch {
                    if error.code == .feedReplay {
                        report.duplicates.append(e)
                    } else {
                        report.refused.append((e, Self.envelopeError(error, e, d.space)))
                    }
                    continue
                }
                stored[Position(feed: f, seqStart: h.seqStart)] = e.id
                report.accepted.append(e)
                insert.append(e)
                insertSpaces.append(d.space)
            }
            var holds = FeedVector()
            for e in d.envelopes { _ = holds.raise(e.header.author, to: verifier.head(of: e.header.author).lastSequence) }
            report.holds = holds
            verifiers[d.space] = verifier
            reports.append(report)
        }
        guard !insert.isEmpty else { return (reports, nil) }

        var newHeads: [Feed: FeedHead] = [:]
        for (e, s) in zip(insert, insertSpaces) {
            newHeads[Feed(space: s, author: e.header.author)] = FeedHead(lastSequence: e.header.seqEnd, lastID: e.id)
        }
        let touched = Set(insertSpaces)
        var payload = instance + " " + touched.map(\.hex).sorted().joined(separator: ",")
        if payload.utf8.count > 7_900 { payload = instance + " *" }
        // (Every result is read to its end: an error the server sends while executing a statement
        // arrives with its rows, and a transaction whose statement failed "commits" as a rollback.)
        let rows = try await tx.query(
            """
            WITH stored AS (
                INSERT INTO envelopes(space, author, seq_start, seq_end, epoch, id, bytes\(unescaped: periods ? ", period" : ""))
                SELECT u.*\(unescaped: periods ? ", " + PostgresSchema.periodNow : "") FROM unnest(
                    \(insertSpaces.map { ByteBuffer(bytes: $0.bytes) })::bytea[],
                    \(insert.map { ByteBuffer(bytes: $0.header.author.rawRepresentation) })::bytea[],
                    \(insert.map { Int64(clamping: $0.header.seqStart) })::int8[],
                    \(insert.map { Int64(clamping: $0.header.seqEnd) })::int8[],
                    \(insert.map { Int32(bitPattern: $0.header.epoch) })::int4[],
                    \(insert.map { ByteBuffer(bytes: $0.id.bytes) })::bytea[],
                    \(insert.map { ByteBuffer(bytes: $0.bytes) })::bytea[]) AS u(space, author, seq_start, seq_end, epoch, id, bytes)
                RETURNING 1
            ), heads AS (
                INSERT INTO feed_heads(space, author, last_seq, last_id)
                SELECT * FROM unnest(
                    \(newHeads.keys.map { ByteBuffer(bytes: $0.space.bytes) })::bytea[],
                    \(newHeads.keys.map { ByteBuffer(bytes: $0.author.rawRepresentation) })::bytea[],
                    \(newHeads.values.map { Int64(clamping: $0.lastSequence) })::int8[],
                    \(newHeads.values.map { ByteBuffer(bytes: $0.lastID.bytes) })::bytea[])
                ON CONFLICT (space, author) DO UPDATE SET last_seq = excluded.last_seq, last_id = excluded.last_id
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM heads), pg_current_xact_id()::text::int8
            FROM (SELECT pg_notify(\(Self.channel), \(payload))) n
            """, logger: logger)
        var counts: (Int64, Int64, Int64)?
        for try await c in rows.decode((Int64, Int64, Int64).self) { counts = c }
        guard let counts, counts.0 == Int64(insert.count), counts.1 == Int64(newHeads.count) else {
            throw RelayStoreError(
                .unavailable, "cannot store envelopes: the database stored \(counts.map { "\($0.0)" } ?? "no") of \(insert.count)")
        }
        return (reports, counts.2)
    }

    /// The advisory lock key of one feed: the first 64 bits of BLAKE2b (its shortest output, 16
    /// bytes) over space and author. (Asking BLAKE2b for 8 bytes fails; an earlier fallback to the
    /// space's first 8 bytes made one lock of every space sharing them, serialising all storing.)
    static func lockKey(_ space: SpaceID, _ author: SigningPublicKey) -> Int64 {
        // Cannot throw: the output length is BLAKE2b's own minimum and there is no key.
        let h = try! BLAKE2b.hash(space.bytes + author.rawRepresentation, outputLength: BLAKE2b.minimumOutputLength)
        var v: UInt64 = 0
        for b in h.prefix(8) { v = v << 8 | UInt64(b) }
        return Int64(bitPattern: v)
    }

    static func envelopeError(_ error: CryptoError, _ e: Envelope, _ space: SpaceID) -> EnvelopeError {
        switch error.code {
        case .feedWrongSpace: return EnvelopeError(.wrongSpace, error.message)
        case .feedBadSignature: return EnvelopeError(.tampered, error.message)
        case .feedReplay, .feedOverlap: return EnvelopeError(.reordered, error.message)
        case .feedGap: return EnvelopeError(.gap, error.message)
        case .feedFork: return EnvelopeError(.fork, error.message, forkProof: error.forkProof)
        default: return EnvelopeError(.tampered, error.message)
        }
    }

    // MARK: - Notifications

    public func changes() -> AsyncStream<RelayStoreChange> {
        AsyncStream { continuation in
            let task = Task {
                var failures = 0
                while !Task.isCancelled {
                    do {
                        try await self.client.withConnection { conn in
                            try await conn.listen(on: Self.channel) { notifications in
                                // (Re)connected: anything may have been stored, months retired or
                                // spaces carried while nobody listened.
                                failures = 0
                                self.setListening(true)
                                defer { self.setListening(false) }
                                continuation.yield(.anywhere)
                                continuation.yield(.floors)
                                for try await n in notifications {
                                    guard let space = n.payload.split(separator: " ", maxSplits: 1).last,
                                        !n.payload.hasPrefix(self.instance + " ")
                                    else { continue }
                                    if space == "k" {
                                        // Spaces were carried (`space carry`): who is served what changed.
                                        self.forgetServed()
                                    } else if space == "*" {
                                        continuation.yield(.anywhere)
                                    } else if space == "f" {
                                        // Another process retired months: the horizons moved.
                                        continuation.yield(.floors)
                                    } else if space.hasPrefix("c:") {
                                        // Head claims kept by another process (PostgresClaimStore).
                                        if let s = SpaceID(hex: String(space.dropFirst(2))) { continuation.yield(.claims([s])) }
                                    } else {
                                        continuation.yield(.spaces(Set(space.split(separator: ",").compactMap { SpaceID(hex: String($0)) })))
                                    }
                                }
                            }
                        }
                    } catch {
                        if Task.isCancelled { break }
                        failures += 1
                        if failures == 1 { self.logger.warning("lost the notification channel; listening again") }
                    }
                    // Back off while the database is away (0.25 s doubling to 5 s).
                    try? await Task.sleep(for: .milliseconds(min(5_000, 250 << min(failures, 5))))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    public func health() async -> RelayHealth {
        do {
            _ = try await guarded("check the database", seconds: 2) {
                try await self.client.query("SELECT 1", logger: self.logger).collect()
            }
            // Hourly, the coming months' partitions (a relay running across a month's end).
            let due = ownLock.withLock { partitionsMadeAt.map { ContinuousClock.now - $0 > .seconds(3600) } ?? false }
            if due {
                do {
                    try await makePartitionsAhead()
                    ownLock.withLock { partitionsMadeAt = .now }
                } catch {
                    logger.warning("cannot make the coming months' partitions (rows then go to envelopes_default): \(error)")
                }
            }
            return .ready
        } catch {
            return .unready("\(error)")
        }
    }

    // MARK: - Peer status

    public func applyPeerStatus(_ changes: [PeerStatusChange]) async throws {
        guard !changes.isEmpty else { return }
        let peers = changes.map { ByteBuffer(bytes: $0.peer.rawRepresentation) }
        func opt(_ v: Int64?) -> Int64 { v ?? -1 }
        let contact = changes.map { opt($0.lastContact) }
        let synced = changes.map { opt($0.lastSynced) }
        let failure = changes.map { opt($0.lastFailure) }
        let peerLacks = changes.map { $0.changesPeerLacks.map { Int64(clamping: $0) } ?? -1 }
        let weLack = changes.map { $0.changesWeLack.map { Int64(clamping: $0) } ?? -1 }
        let sent = changes.map { Int64($0.envelopesSent) }
        let received = changes.map { Int64($0.envelopesReceived) }
        let bytesSent = changes.map { Int64($0.bytesSent) }
        let bytesReceived = changes.map { Int64($0.bytesReceived) }
        let sessions = changes.map { Int64($0.sessions) }
        var errorPeers: [ByteBuffer] = []
        var errors: [String] = []
        var cursorPeers: [ByteBuffer] = []
        var cursorSpaces: [ByteBuffer] = []
        var cursorAt: [Int64] = []
        var cursorVectors: [ByteBuffer] = []
        for c in changes {
            switch c.lastError {
            case .keep: break
            case .clear:
                errorPeers.append(ByteBuffer(bytes: c.peer.rawRepresentation))
                errors.append("")
            case .set(let e):
                errorPeers.append(ByteBuffer(bytes: c.peer.rawRepresentation))
                errors.append(e.isEmpty ? " " : e)
            }
            for (space, cur) in c.cursors {
                cursorPeers.append(ByteBuffer(bytes: c.peer.rawRepresentation))
                cursorSpaces.append(ByteBuffer(bytes: space.bytes))
                cursorAt.append(cur.at)
                cursorVectors.append(ByteBuffer(bytes: cur.vector.cursorBytes))
            }
        }
        let (errorPeers_, errors_, cursorPeers_, cursorSpaces_, cursorAt_, cursorVectors_) =
            (errorPeers, errors, cursorPeers, cursorSpaces, cursorAt, cursorVectors)
        try await guarded("record peer status") {
            let (errorPeers, errors, cursorPeers, cursorSpaces, cursorAt, cursorVectors) =
                (errorPeers_, errors_, cursorPeers_, cursorSpaces_, cursorAt_, cursorVectors_)
            try await self.client.withTransaction(logger: self.logger) { tx in
                try await tx.query(
                    """
                    INSERT INTO peer_status(peer) SELECT unnest(\(peers)::bytea[]) ON CONFLICT DO NOTHING
                    """, logger: self.logger).drain()
                try await tx.query(
                    """
                    UPDATE peer_status p SET
                        last_contact = CASE WHEN u.lc >= 0 THEN u.lc ELSE p.last_contact END,
                        last_synced = CASE WHEN u.ls >= 0 THEN u.ls ELSE p.last_synced END,
                        last_failure = CASE WHEN u.lf >= 0 THEN u.lf ELSE p.last_failure END,
                        changes_peer_lacks = CASE WHEN u.cpl >= 0 THEN u.cpl ELSE p.changes_peer_lacks END,
                        changes_we_lack = CASE WHEN u.cwl >= 0 THEN u.cwl ELSE p.changes_we_lack END,
                        envelopes_sent = p.envelopes_sent + u.es, envelopes_received = p.envelopes_received + u.er,
                        bytes_sent = p.bytes_sent + u.bs, bytes_received = p.bytes_received + u.br, sessions = p.sessions + u.ss
                    FROM unnest(\(peers)::bytea[], \(contact)::int8[], \(synced)::int8[], \(failure)::int8[], \(peerLacks)::int8[],
                        \(weLack)::int8[], \(sent)::int8[], \(received)::int8[], \(bytesSent)::int8[], \(bytesReceived)::int8[],
                        \(sessions)::int8[]) AS u(peer, lc, ls, lf, cpl, cwl, es, er, bs, br, ss)
                    WHERE p.peer = u.peer
                    """, logger: self.logger).drain()
                if !errorPeers.isEmpty {
                    try await tx.query(
                        """
                        UPDATE peer_status p SET last_error = nullif(u.e, '')
                        FROM unnest(\(errorPeers)::bytea[], \(errors)::text[]) AS u(peer, e) WHERE p.peer = u.peer
                        """, logger: self.logger).drain()
                }
                if !cursorPeers.isEmpty {
                    try await tx.query(
                        """
                        INSERT INTO peer_cursors(peer, space, at, vector)
                        SELECT * FROM unnest(\(cursorPeers)::bytea[], \(cursorSpaces)::bytea[], \(cursorAt)::int8[], \(cursorVectors)::bytea[])
                        ON CONFLICT (peer, space) DO UPDATE SET at = excluded.at, vector = excluded.vector
                        """, logger: self.logger).drain()
                }
            }
        }
    }

    public func peerStatuses() async throws -> [StoredPeerStatus] {
        try await guarded("read peer status") {
            var out: [SigningPublicKey: StoredPeerStatus] = [:]
            let rows = try await self.client.query(
                """
                SELECT peer, last_contact, last_synced, last_failure, last_error, changes_peer_lacks, changes_we_lack,
                    envelopes_sent, envelopes_received, bytes_sent, bytes_received, sessions FROM peer_status
                """, logger: self.logger)
            for try await r in rows.decode(
                (ByteBuffer, Int64?, Int64?, Int64?, String?, Int64, Int64, Int64, Int64, Int64, Int64, Int64).self)
            {
                guard let key = try? SigningPublicKey(rawRepresentation: Array(r.0.readableBytesView)) else { continue }
                var s = StoredPeerStatus(peer: key)
                (s.lastContact, s.lastSynced, s.lastFailure, s.lastError) = (r.1, r.2, r.3, r.4)
                s.changesPeerLacks = UInt64(max(0, r.5))
                s.changesWeLack = UInt64(max(0, r.6))
                (s.envelopesSent, s.envelopesReceived, s.bytesSent, s.bytesReceived, s.sessions) =
                    (Int(r.7), Int(r.8), Int(r.9), Int(r.10), Int(r.11))
                out[key] = s
            }
            let cursors = try await self.client.query("SELECT peer, space, at, vector FROM peer_cursors", logger: self.logger)
            for try await (p, s, at, v) in cursors.decode((ByteBuffer, ByteBuffer, Int64, ByteBuffer).self) {
                guard let key = try? SigningPublicKey(rawRepresentation: Array(p.readableBytesView)),
                    let space = SpaceID(bytes: Array(s.readableBytesView)),
                    let vector = FeedVector(cursorBytes: Array(v.readableBytesView))
                else { continue }
                out[key, default: StoredPeerStatus(peer: key)].cursors[space] = PeerCursor(at: at, vector: vector)
            }
            return Array(out.values)
        }
    }

    // MARK: - Sizes (the bench's bytes per envelope)

    /// Envelope rows and the bytes of the envelope tables (heap, TOAST and indexes, all partitions).
    public func envelopeFootprint() async throws -> (rows: Int, bytes: Int) {
        try await guarded("measure the envelope tables") {
            var rows = 0
            var bytes = 0
            for try await (r, b) in try await self.client.query(
                """
                SELECT (SELECT count(*) FROM envelopes),
                    (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('envelopes'))::int8
                """, logger: self.logger
            ).decode((Int64, Int64).self) {
                rows = Int(r)
                bytes = Int(b)
            }
            return (rows, bytes)
        }
    }
}

/// Runs `body`; throws ``RelayStoreError/Code/unavailable`` if it has not finished after `seconds`
/// (the work is abandoned, not awaited: a database that stopped answering must not hold the caller).
func withDeadline<T: Sendable>(
    _ seconds: Double, _ what: String, timer: TaskSlot = TaskSlot(), _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let once = Once()
        // The timer is cancelled as soon as the work ends. Left sleeping, each call's timer task
        // (and the finished work task it held) lived for the whole deadline: with a call or more per
        // envelope stored, the relay held thousands of them (saraban-bench fleet, 1,000 offices at
        // 300 envelopes/s: RSS 170 -> 156 MB; found with heaptrack).
        let work = Task {
            do {
                let v = try await body()
                if once.claim() { c.resume(returning: v) }
            } catch {
                if once.claim() { c.resume(throwing: error) }
            }
            timer.cancel()
        }
        timer.set(
            Task {
                try? await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                if once.claim() {
                    work.cancel()
                    c.resume(throwing: RelayStoreError(.unavailable, "cannot \(what): the database did not answer within \(seconds) s"))
                }
            })
    }
}

/// A task that may be cancelled before it is stored (then it is cancelled as it is stored).
final class TaskSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var task: Task<Void, Never>?
    private var cancelled = false

    func set(_ t: Task<Void, Never>) {
        let cancelNow = lock.withLock { () -> Bool in
            if cancelled { return true }
            task = t
            return false
        }
        if cancelNow { t.cancel() }
    }

    /// Cancelled, and the task (if one was stored) released.
    var isCancelled: Bool { lock.withLock { cancelled && task == nil } }

    func cancel() {
        let t = lock.withLock { () -> Task<Void, Never>? in
            cancelled = true
            defer { task = nil }
            return task
        }
        t?.cancel()
    }
}

final class Once: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func claim() -> Bool { lock.withLock { if done { return false }; done = true; return true } }
}

/// One queue of deliveries stored together: while a transaction runs, the next batch gathers.
final class StoreLane: @unchecked Sendable {
    weak var store: PostgresRelayStore?
    private let lock = NSLock()
    typealias Done = @Sendable (Result<ReceiveReport, any Error>) -> Void
    private var queue: [(PostgresRelayStore.Delivery, Done)] = []
    private var running = false
    /// At most this many envelopes, or bytes, per transaction.
    static let maxEnvelopes = 1_000
    static let maxBytes = 8 << 20

    /// Queues `d`; `done` is called with its report from the task that ran its transaction.
    func submit(_ d: PostgresRelayStore.Delivery, then done: @escaping Done) {
        let start = lock.withLock { () -> Bool in
            queue.append((d, done))
            if running { return false }
            running = true
            return true
        }
        if start { Task { await drain() } }
    }

    private func drain() async {
        while true {
            let jobs = lock.withLock { () -> [(PostgresRelayStore.Delivery, Done)] in
                var n = 0
                var bytes = 0
                var take = 0
                for (d, _) in queue {
                    if take > 0 && (n + d.envelopes.count > Self.maxEnvelopes || bytes > Self.maxBytes) { break }
                    n += d.envelopes.count
                    bytes += d.envelopes.reduce(0) { $0 + $1.bytes.count }
                    take += 1
                }
                let out = Array(queue.prefix(take))
                queue.removeFirst(take)
                if out.isEmpty { running = false }
                return out
            }
            if jobs.isEmpty { return }
            guard let store else {
                for (_, done) in jobs { done(.failure(RelayStoreError(.unavailable, "the relay store was closed"))) }
                continue
            }
            do {
                let reports = try await store.storeBatch(jobs.map(\.0))
                for (i, (_, done)) in jobs.enumerated() { done(.success(reports[i])) }
            } catch {
                for (_, done) in jobs { done(.failure(error)) }
            }
        }
    }
}

extension PostgresRowSequence {
    /// Reads every row (and so any error the server sends while executing), keeping none.
    func drain() async throws {
        for try await _ in self {}
    }
}
