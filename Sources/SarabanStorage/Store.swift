import CSQLiteTuning
import Foundation
import GRDB
import GRDBSQLite
import Logging
import SarabanCore
#if canImport(Glibc)
import Glibc
#endif

/// The node's SQLite database: the append-only change log, the materialised documents, the
/// causal clock and the buffer of changes that are not yet causally ready.
///
/// This is the only module that imports GRDB; no `Database` or GRDB type crosses its API.
/// Every public method runs in one SQLite transaction, so a crash leaves either all of a write
/// or none of it.
///
/// ## Topics
/// - Opening: ``open(path:replica:create:logger:)``
/// - Local writes: ``write(time:_:)``
/// - Remote changes: ``apply(changes:)``
/// - Reading: ``document(_:)``, ``documents()``, ``stats()``, ``clock()``
public final class Store: Sendable {
    /// `PRAGMA application_id`: "SRBN". A database without it (and with tables) is refused.
    public static let applicationID: Int32 = 0x5352_424E
    /// `PRAGMA user_version` written by the newest migration this build knows.
    public static let schemaVersion: Int32 = 10

    /// The database file.
    public let path: String
    /// The replica (first 16 bytes of the node's public key) that authors local changes.
    public let replica: ReplicaID

    // DatabasePool serialises writes and runs reads concurrently (WAL); the gate makes closing
    // safe while other tasks still use the store.
    let pool: GatedPool
    let logger: Logger
    /// Rosters folded from the membership logs, reused while their log is unchanged.
    let rosters = RosterCache()
    /// A simulator's planted bugs (``StoreTestHooks``); nil in the node. Set once, right after
    /// opening, before any other call.
    nonisolated(unsafe) public var testHooks: StoreTestHooks?

    private init(path: String, replica: ReplicaID, pool: DatabasePool, logger: Logger) {
        self.path = path
        self.replica = replica
        self.pool = GatedPool(pool, path: path)
        self.logger = logger
    }

    /// Opens (or, with `create`, creates) the database at `path`.
    ///
    /// Before SQLite touches the file, its header is read: a file that is not SQLite, an SQLite
    /// file of another application, or a Saraban database from a newer schema is refused with a
    /// typed error and left byte-for-byte unchanged. Then pending migrations run, and the
    /// database's replica id is checked against `replica` (written on creation).
    public static func open(
        path: String,
        replica: ReplicaID,
        create: Bool = false,
        logger: Logger = Logger(label: "saraban.storage")
    ) throws(StorageError) -> Store {
        try open(path: path, replica: replica, create: create, logger: logger, migratingUpTo: nil)
    }

    /// ``open(path:replica:create:logger:)`` running the migrations only up to `lastMigration`
    /// (nil: all), so tests can build a database of an older schema and migrate it.
    static func open(
        path: String, replica: ReplicaID, create: Bool = false, logger: Logger = Logger(label: "saraban.storage"),
        migratingUpTo lastMigration: String?
    ) throws(StorageError) -> Store {
        let fm = FileManager.default
        let exists = fm.fileExists(atPath: path)
        if !exists && !create {
            throw StorageError(.notFound, "no database at \(path); run `saraban init --office NAME` first", path: path)
        }
        if exists && create {
            throw StorageError(.io, "a database already exists at \(path); refusing to overwrite it", path: path)
        }
        if exists { try checkHeader(path: path) }
        if create { try createOwnerOnly(path) } else { restrictToOwner(path, logger: logger) }
        _ = processWideSettings

        var config = Configuration()
        config.label = "saraban"
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            // WAL + NORMAL for what this node receives: a commit survives a crash of this
            // process, but the last ones may be lost on power loss until the next checkpoint;
            // they are fetched again from peers. Local writes switch to FULL for their
            // transaction (``inDurableTransaction(_:_:)``): nothing they make leaves before it is on disk.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // Temporary files in memory: the sub-journal of a receive batch's savepoint among them.
            // (While the search index had triggers on `documents`, migrations v6 to v7, every
            // statement writing a document also kept a statement journal; on disk that was one page
            // write per document written, 6.5 times the pwrite calls of the release before.)
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw mapError(error, path: path, doing: "open the database")
        }
        do {
            try pool.read { db in try checkIdentity(db, path: path) }
            if let lastMigration { try migrator.migrate(pool, upTo: lastMigration) } else { try migrator.migrate(pool) }
            try pool.writeWithoutTransaction { db in
                try db.inTransaction(.immediate) {
                    if let stored = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'replica'") {
                        let storedReplica = ReplicaID(bytes: [UInt8](stored))
                        guard storedReplica == replica, stored.count == 16 else {
                            throw StorageError(
                                .wrongReplica,
                                "the database \(path) belongs to replica \(storedReplica.hex), but this node's key is "
                                    + "replica \(replica.hex); the data directory mixes files of two nodes: restore the "
                                    + "matching node.key or saraban.db",
                                path: path)
                        }
                    } else {
                        try db.execute(
                            sql: "INSERT INTO meta(key, value) VALUES ('replica', ?)",
                            arguments: [Data(replica.bytes)])
                    }
                    return .commit
                }
                // The writer's page cache (SQLite's default is 2 MiB): a sync batch touches the
                // documents' id index and tables all over, and pages evicted between batches were
                // read back from the file. Only this one connection; readers keep the default.
                try db.execute(sql: "PRAGMA cache_size = -\(writerCacheKiB)")
                try db.execute(sql: "PRAGMA wal_autocheckpoint = \(walAutocheckpointPages)")
            }
        } catch let error as StorageError {
            try? pool.close()
            throw error
        } catch {
            try? pool.close()
            throw mapError(error, path: path, doing: "prepare the database")
        }
        logger.debug("opened database", metadata: ["path": "\(path)"])
        return Store(path: path, replica: replica, pool: pool, logger: logger)
    }

    /// SQLite's process-wide settings, made once before the first connection opens: memory
    /// statistics off. With them on (the system library's default), every SQLite allocation takes
    /// one process-wide mutex, so the writer and the readers of a node, and every node of a
    /// simulation, contend for it. The result is SQLITE_OK, or SQLITE_MISUSE when SQLite was
    /// already initialised by someone else, which leaves the default in place and is harmless.
    /// Code that opens its own SQLite connections in a process that also runs a Store (tests'
    /// integrity probes) reads this first, so the settings hold whichever opens first.
    public static let processWideSettings: Int32 = saraban_sqlite_disable_memstatus()

    /// `db.inTransaction(.immediate, body)` on the writer connection with `synchronous = FULL`
    /// (back to NORMAL after; SQLite refuses to change it inside a transaction): the commit
    /// fsyncs the WAL before it returns, and other connections see it only then, so it and every
    /// earlier commit survive a power loss. Local writes use it: what they make leaves the node
    /// (envelopes pushed to peers, register numbers shown to a clerk) and cannot be fetched back
    /// from anyone. A transaction that wrote nothing costs no fsync.
    static func inDurableTransaction(_ db: Database, _ body: () throws -> Database.TransactionCompletion) throws {
        try inTransaction(db, durable: true, body)
    }

    /// ``inDurableTransaction(_:_:)`` when `durable`, else a plain `BEGIN IMMEDIATE` transaction.
    static func inTransaction(
        _ db: Database, durable: Bool, _ body: () throws -> Database.TransactionCompletion
    ) throws {
        guard durable else { return try db.inTransaction(.immediate, body) }
        try db.execute(sql: "PRAGMA synchronous = FULL")
        defer { try? db.execute(sql: "PRAGMA synchronous = NORMAL") }
        try db.inTransaction(.immediate, body)
    }

    /// Makes every commit so far, by any connection or process, survive a power cut: fsyncs the
    /// WAL (the database file itself is synced by each checkpoint before the WAL is reused; no WAL
    /// file: nothing waits in it). The sync driver calls it before this node's own envelopes leave.
    public func syncWAL() throws(StorageError) {
        let wal = path + "-wal"
        let fd = Glibc.open(wal, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { return }
            throw StorageError(.io, "cannot open \(wal) to sync it: \(String(cString: strerror(errno)))", path: path)
        }
        defer { Glibc.close(fd) }
        guard fdatasync(fd) == 0 else {
            throw StorageError(.io, "cannot sync \(wal): \(String(cString: strerror(errno)))", path: path)
        }
    }

    /// The writer connection's page cache, in KiB.
    static let writerCacheKiB = 16 << 10

    /// WAL pages after which a commit checkpoints (SQLite's default is 1,000).
    static let walAutocheckpointPages = 4096

    /// Closes the connections. Further calls throw.
    public func close() throws(StorageError) {
        do {
            // Fold the WAL into the main file so the file alone is complete (GRDB closes the
            // read-only reader connections last, and those cannot checkpoint on close). FULL,
            // not TRUNCATE: GRDB writes a dummy table into a database whose WAL is empty when it
            // opens a pool, so an empty WAL would make every later open (even of a command
            // that then fails) touch the file.
            try pool.close { pool in
                try? pool.writeWithoutTransaction { db in _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(FULL)") }
            }
        } catch { throw Self.mapError(error, path: path, doing: "close the database") }
    }

    // MARK: - Header and identity checks

    /// Reads the 100-byte SQLite header without opening the file through SQLite (which would
    /// switch a foreign file to WAL mode, that is, change it).
    static func checkHeader(path: String) throws(StorageError) {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw StorageError(.readOnly, "cannot read \(path): check its permissions", path: path)
        }
        defer { try? handle.close() }
        let header: [UInt8]
        do {
            header = [UInt8](try handle.read(upToCount: 100) ?? Data())
        } catch {
            throw StorageError(.io, "cannot read \(path): \(error)", path: path)
        }
        if header.isEmpty { return }  // an empty file is an empty database
        let magic = Array("SQLite format 3\u{0}".utf8)
        guard header.count == 100, Array(header[0..<16]) == magic else {
            throw StorageError(
                .notSQLite,
                "\(path) is not an SQLite database (not a Saraban database); move it aside or use another --data directory",
                path: path)
        }
        func be32(_ at: Int) -> Int32 {
            Int32(bitPattern: UInt32(header[at]) << 24 | UInt32(header[at + 1]) << 16 | UInt32(header[at + 2]) << 8
                | UInt32(header[at + 3]))
        }
        let appID = be32(68)
        let userVersion = be32(60)
        let schemaCookie = be32(40)
        if appID == applicationID {
            if userVersion > schemaVersion { throw newerSchemaError(path: path, version: userVersion) }
            return
        }
        if appID != 0 { throw foreignError(path: path, appID: appID) }
        // application_id 0: an empty database is fine; one with tables is someone else's, unless
        // the header is stale because the schema still sits in an uncheckpointed WAL.
        let walSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        if schemaCookie != 0 && walSize == 0 { throw foreignError(path: path, appID: appID) }
    }

    /// The same checks through SQL, once the file is open (covers a header not yet checkpointed).
    static func checkIdentity(_ db: Database, path: String) throws {
        let appID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        let userVersion = try Int32.fetchOne(db, sql: "PRAGMA user_version") ?? 0
        if appID == applicationID {
            if try userVersion > schemaVersion || migrator.hasBeenSuperseded(db) {
                throw newerSchemaError(path: path, version: userVersion)
            }
            return
        }
        if appID != 0 { throw foreignError(path: path, appID: appID) }
        let objects = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
        if objects > 0 { throw foreignError(path: path, appID: appID) }
    }

    static func foreignError(path: String, appID: Int32) -> StorageError {
        let hex = String(UInt32(bitPattern: appID), radix: 16)
        return StorageError(
            .foreignDatabase,
            "\(path) is an SQLite database of another application (application_id 0x\(hex)), not a Saraban "
                + "database; it was left untouched: move it aside or use another --data directory",
            path: path)
    }

    static func newerSchemaError(path: String, version: Int32) -> StorageError {
        StorageError(
            .newerSchema,
            "\(path) was written by a newer saraban (schema version \(version), this build knows up to "
                + "\(schemaVersion)); it was left untouched: upgrade saraban",
            path: path)
    }

    /// Maps a GRDB/SQLite error to a typed, actionable ``StorageError``.
    static func mapError(_ error: any Error, path: String, doing what: String) -> StorageError {
        if let error = error as? StorageError { return error }
        if let error = error as? SarabanCore.DecodingError {
            return StorageError(.corrupt, "cannot \(what): stored data in \(path) is damaged: \(error)", path: path)
        }
        guard let db = error as? DatabaseError else {
            return StorageError(.io, "cannot \(what) (\(path)): \(error)", path: path)
        }
        let code = db.extendedResultCode.rawValue
        let detail = db.message ?? "\(db.resultCode)"
        switch db.resultCode {
        case .SQLITE_READONLY, .SQLITE_PERM, .SQLITE_CANTOPEN, .SQLITE_AUTH:
            return StorageError(
                .readOnly,
                "cannot \(what): \(path) or its directory is not writable (\(detail)); make the data directory "
                    + "writable by this user",
                sqliteCode: code, path: path)
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StorageError(
                .busy, "cannot \(what): the database is locked by another saraban process (\(detail)); retry",
                sqliteCode: code, path: path)
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return StorageError(
                .corrupt,
                "cannot \(what): \(path) is damaged (\(detail)); restore it from a backup or re-sync from a peer",
                sqliteCode: code, path: path)
        case .SQLITE_FULL:
            return StorageError(.io, "cannot \(what): the disk is full; free space and retry", sqliteCode: code, path: path)
        default:
            return StorageError(.io, "cannot \(what) (\(path)): \(detail)", sqliteCode: code, path: path)
        }
    }

    // MARK: - Migrations

    static let migrator: DatabaseMigrator = {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
            try db.execute(
                sql: """
                    CREATE TABLE meta (
                        key TEXT PRIMARY KEY NOT NULL,
                        value NOT NULL
                    ) WITHOUT ROWID;
                    INSERT INTO meta(key, value) VALUES ('max_op', 0), ('default_space', randomblob(16));

                    -- The spaces this node carries: a member's (role 0) or a relay's (role 1). Each space is
                    -- its own causal domain: own clock, pending buffer and per-author sequence numbers.
                    CREATE TABLE spaces (
                        id BLOB PRIMARY KEY NOT NULL,
                        name TEXT NOT NULL,
                        role INTEGER NOT NULL DEFAULT 0,
                        epoch INTEGER NOT NULL DEFAULT 0,
                        next_seq INTEGER NOT NULL DEFAULT 1,
                        doc TEXT,
                        created_at INTEGER NOT NULL DEFAULT 0
                    ) WITHOUT ROWID;
                    INSERT INTO spaces(id, name) SELECT value, 'office' FROM meta WHERE key = 'default_space';

                    -- The append-only change log: one encoded Change per (space, author, seq).
                    CREATE TABLE changes (
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq INTEGER NOT NULL,
                        start_op INTEGER NOT NULL,
                        time INTEGER NOT NULL,
                        bytes BLOB NOT NULL,
                        PRIMARY KEY (space, author, seq)
                    ) WITHOUT ROWID;

                    -- Materialised state: loading a document never replays its history.
                    CREATE TABLE documents (
                        id TEXT PRIMARY KEY NOT NULL,
                        space BLOB NOT NULL,
                        kind TEXT NOT NULL,
                        deleted INTEGER NOT NULL DEFAULT 0,
                        snapshot BLOB NOT NULL,
                        updated_at INTEGER NOT NULL
                    );
                    CREATE INDEX documents_by_space ON documents(space);

                    -- Per (space, author), the highest sequence number applied (gapless, so a version vector).
                    CREATE TABLE clock (
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq INTEGER NOT NULL,
                        PRIMARY KEY (space, author)
                    ) WITHOUT ROWID;

                    -- Changes received but not yet causally ready.
                    CREATE TABLE pending (
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq INTEGER NOT NULL,
                        bytes BLOB NOT NULL,
                        received_at INTEGER NOT NULL,
                        PRIMARY KEY (space, author, seq)
                    ) WITHOUT ROWID;

                    -- Space keys, one random 32-byte key per epoch (members only; a relay has none).
                    CREATE TABLE space_keys (
                        space BLOB NOT NULL,
                        epoch INTEGER NOT NULL,
                        key BLOB NOT NULL,
                        PRIMARY KEY (space, epoch)
                    ) WITHOUT ROWID;

                    -- Members (Ed25519 keys) of each space; removed_epoch is the epoch their removal began.
                    CREATE TABLE space_members (
                        space BLOB NOT NULL,
                        member BLOB NOT NULL,
                        office TEXT NOT NULL DEFAULT '',
                        added_by BLOB,
                        since_epoch INTEGER NOT NULL DEFAULT 0,
                        removed_epoch INTEGER,
                        PRIMARY KEY (space, member)
                    ) WITHOUT ROWID;

                    -- Signed, encrypted envelopes (opaque bytes), per author in chain order.
                    CREATE TABLE envelopes (
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq_start INTEGER NOT NULL,
                        seq_end INTEGER NOT NULL,
                        epoch INTEGER NOT NULL,
                        id BLOB NOT NULL,
                        bytes BLOB NOT NULL,
                        log INTEGER NOT NULL,
                        PRIMARY KEY (space, author, seq_start)
                    ) WITHOUT ROWID;
                    CREATE INDEX envelopes_by_end ON envelopes(space, author, seq_end);

                    -- The head of each author's hash chain per space (FeedVerifier resumes from it).
                    CREATE TABLE feed_heads (
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        last_seq INTEGER NOT NULL,
                        last_id BLOB NOT NULL,
                        PRIMARY KEY (space, author)
                    ) WITHOUT ROWID;

                    -- Every stored envelope in the order this node stored it: the store order used when
                    -- serving fetches, and the "anything new since N?" probe (max(n)).
                    CREATE TABLE envelope_log (
                        n INTEGER PRIMARY KEY,
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq_start INTEGER NOT NULL
                    );
                    """)
            try db.execute(sql: "PRAGMA user_version = 1")
        }
        m.registerMigration("v2") { db in
            // Envelopes move to a rowid table with their bytes last. In v1's WITHOUT ROWID table
            // SQLite compared whole records while seeking, so every insert and lookup read the
            // overflow pages of the large envelopes it passed; now seeks use a small key index.
            // `log` joins the seq_end index so "where does a peer's catch-up start" reads no row.
            try db.execute(
                sql: """
                    ALTER TABLE envelopes RENAME TO envelopes_v1;
                    CREATE TABLE envelopes (
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq_start INTEGER NOT NULL,
                        seq_end INTEGER NOT NULL,
                        epoch INTEGER NOT NULL,
                        id BLOB NOT NULL,
                        log INTEGER NOT NULL,
                        bytes BLOB NOT NULL,
                        PRIMARY KEY (space, author, seq_start)
                    );
                    INSERT INTO envelopes(space, author, seq_start, seq_end, epoch, id, log, bytes)
                        SELECT space, author, seq_start, seq_end, epoch, id, log, bytes FROM envelopes_v1 ORDER BY log;
                    DROP TABLE envelopes_v1;
                    CREATE INDEX envelopes_by_end ON envelopes(space, author, seq_end, log);
                    """)
            try db.execute(sql: "PRAGMA user_version = 2")
        }
        m.registerMigration("v3") { db in
            // Authority (Docs/SECURITY.md): keys by reference (concurrent rekeys can make several
            // keys for one epoch; a space made earlier keeps its keys as `legacy-EPOCH`), the
            // membership log with each control change's verdict, received changes refused, and
            // envelopes held until their author is admitted or their key arrives.
            try db.execute(
                sql: """
                    CREATE TABLE keyring (
                        space BLOB NOT NULL,
                        ref TEXT NOT NULL,
                        epoch INTEGER NOT NULL,
                        key BLOB NOT NULL,
                        PRIMARY KEY (space, ref)
                    ) WITHOUT ROWID;
                    INSERT INTO keyring(space, ref, epoch, key) SELECT space, 'legacy-' || epoch, epoch, key FROM space_keys;
                    DROP TABLE space_keys;

                    -- Control changes (the membership log) in the order judged; verdict 1 accepted,
                    -- 0 refused (reason), NULL pending (a relay waiting for the change's past).
                    CREATE TABLE controls (
                        n INTEGER PRIMARY KEY AUTOINCREMENT,
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq INTEGER NOT NULL,
                        deps BLOB NOT NULL,
                        entries TEXT NOT NULL,
                        verdict INTEGER,
                        reason TEXT,
                        UNIQUE (space, author, seq)
                    );

                    -- Received changes that had no effect (not an owner, not an admin, malformed control).
                    CREATE TABLE refused_changes (
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq INTEGER NOT NULL,
                        document TEXT,
                        reason TEXT NOT NULL,
                        at INTEGER NOT NULL,
                        PRIMARY KEY (space, author, seq)
                    ) WITHOUT ROWID;

                    -- Verified envelopes waiting for their author to be admitted or their key to arrive.
                    CREATE TABLE held (
                        space BLOB NOT NULL,
                        author BLOB NOT NULL,
                        seq_start INTEGER NOT NULL,
                        seq_end INTEGER NOT NULL,
                        epoch INTEGER NOT NULL,
                        id BLOB NOT NULL,
                        reason TEXT NOT NULL,
                        received_at INTEGER NOT NULL,
                        bytes BLOB NOT NULL,
                        PRIMARY KEY (space, author, seq_start)
                    );

                    ALTER TABLE spaces ADD COLUMN key_ref TEXT;
                    ALTER TABLE spaces ADD COLUMN seal_wait TEXT;
                    ALTER TABLE space_members ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE space_members ADD COLUMN rights TEXT NOT NULL DEFAULT '';
                    """)
            try db.execute(sql: "PRAGMA user_version = 3")
        }
        m.registerMigration("v4") { db in
            // Correspondence (Docs/ESARABAN.md): the inbox, receipts and registers read documents by
            // kind (dispatch, receipt, letter, register) instead of decoding every document.
            try db.execute(sql: "CREATE INDEX documents_by_kind ON documents(kind, space)")
            try db.execute(sql: "PRAGMA user_version = 4")
        }
        // v5 head claims, v6 search, v7 the relay's peer status rows and relay space tables, v8 the
        // search index keyed by date.
        m.registerMigration("v5") { db in
            // Head claims (Docs/SECURITY.md, "Withholding"): the latest verified claim per
            // (space, claimant), its encoding as signed; `time` is the claimant's clock.
            try db.execute(
                sql: """
                    CREATE TABLE head_claims (
                        space BLOB NOT NULL,
                        claimant BLOB NOT NULL,
                        time INTEGER NOT NULL,
                        received_at INTEGER NOT NULL,
                        bytes BLOB NOT NULL,
                        PRIMARY KEY (space, claimant)
                    ) WITHOUT ROWID;
                    """)
            try db.execute(sql: "PRAGMA user_version = 5")
        }
        m.registerMigration("v6") { db in
            // Search (Docs/WEB.md): an FTS5 trigram index of letters (received ones included), kept current by
            // triggers on `documents` (Store+Search.swift).
            try db.execute(sql: searchMigration)
            try db.execute(sql: "PRAGMA user_version = 6")
        }
        m.registerMigration("v7") { db in
            // Peer status as rows updated per session (it was DIR/peers.json, rewritten whole at
            // every session's end: N peers × their per-author summaries at each of N sessions).
            try db.execute(
                sql: """
                    CREATE TABLE peer_status (
                        peer BLOB PRIMARY KEY NOT NULL,
                        last_contact INTEGER,
                        last_synced INTEGER,
                        last_failure INTEGER,
                        last_error TEXT,
                        changes_peer_lacks INTEGER NOT NULL DEFAULT 0,
                        changes_we_lack INTEGER NOT NULL DEFAULT 0,
                        envelopes_sent INTEGER NOT NULL DEFAULT 0,
                        envelopes_received INTEGER NOT NULL DEFAULT 0,
                        bytes_sent INTEGER NOT NULL DEFAULT 0,
                        bytes_received INTEGER NOT NULL DEFAULT 0,
                        sessions INTEGER NOT NULL DEFAULT 0
                    ) WITHOUT ROWID;
                    -- Per (peer, space): what the peer held as of its last summary or ack (a cursor).
                    CREATE TABLE peer_cursors (
                        peer BLOB NOT NULL,
                        space BLOB NOT NULL,
                        at INTEGER NOT NULL,
                        vector BLOB NOT NULL,
                        PRIMARY KEY (peer, space)
                    ) WITHOUT ROWID;
                    -- A relay's spaces named for particular peers (`space carry --for`): such a space is
                    -- served only to them; a carried space named for nobody (listed in
                    -- relay_open_spaces, so a session reads only its own and the open ones) to every peer.
                    CREATE TABLE relay_space_peers (
                        peer BLOB NOT NULL,
                        space BLOB NOT NULL,
                        PRIMARY KEY (peer, space)
                    ) WITHOUT ROWID;
                    CREATE INDEX relay_space_peers_by_space ON relay_space_peers(space);
                    CREATE TABLE relay_open_spaces (space BLOB PRIMARY KEY NOT NULL) WITHOUT ROWID;
                    INSERT INTO relay_open_spaces(space) SELECT id FROM spaces WHERE role = 1;
                    """)
            try db.execute(sql: "PRAGMA user_version = 7")
        }
        m.registerMigration("v8") { db in
            // The search index's triggers on `documents` go: while a table has a trigger, SQLite
            // runs every statement writing it with a statement journal, copying each page the
            // upsert touches (and, inside a savepoint, walking the whole in-memory sub-journal
            // when the statement ends). ``DocumentsInTransaction/flush()`` notes written letters
            // in `search_dirty` itself, and ``removeSpace(_:)`` those it deletes.
            try db.execute(sql: Store.searchTriggersDropped)
            try db.execute(sql: "PRAGMA user_version = 8")
        }
        // v9: the search index keyed by date, so a search stops at its limit (Store+Search.swift),
        // and the content version the web app's caches are keyed by (Store+Version.swift).
        m.registerMigration("v9") { db in
            try db.execute(sql: searchByDateMigration)
            try db.execute(sql: contentVersionMigration)
            try db.execute(sql: "PRAGMA user_version = 9")
        }
        m.registerMigration("v10") { db in
            // One index where v1 and v4 kept two: `documents(space, kind)` serves the queries by
            // space (its prefix) and by kind and space; the few by kind alone go space by space
            // (``Store/documents(kind:space:)``). Every document row written maintained three
            // B-trees besides the table (its id, space, kind and space); now two: about 0.7 µs
            // per new document, 6% of a local write in `saraban-bench sync`.
            try db.execute(
                sql: """
                    DROP INDEX IF EXISTS documents_by_kind;
                    DROP INDEX IF EXISTS documents_by_space;
                    CREATE INDEX documents_by_space_kind ON documents(space, kind);
                    PRAGMA user_version = 10;
                    """)
        }
        return m
    }()
}

/// What the database says about itself (for tests and diagnostics).
public struct SchemaInfo: Sendable, Hashable {
    public var applicationID: Int32
    public var userVersion: Int32
    public var migrations: [String]
    public var tables: [String]
    public var journalMode: String
    public var synchronous: Int
    /// Whether SQLite keeps process-wide memory statistics (``Store/processWideSettings`` turns
    /// them off; with them off, the bytes SQLite reports in use stay 0).
    public var memoryStatistics: Bool
}

extension Store {
    public func schemaInfo() throws(StorageError) -> SchemaInfo {
        try read { db in
            SchemaInfo(
                applicationID: try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0,
                userVersion: try Int32.fetchOne(db, sql: "PRAGMA user_version") ?? 0,
                migrations: try Self.migrator.appliedMigrations(db),
                tables: try String.fetchAll(
                    db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"),
                journalMode: try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "",
                synchronous: try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1,
                memoryStatistics: sqlite3_memory_used() > 0)
        }
    }
}
