import Foundation
import GRDB
import SarabanCore
import SarabanCrypto
import SarabanFeed

/// Local changes being made inside one SQLite write transaction (see ``Store/write(_:)``).
///
/// Each ``change(time:_:)`` is one core ``Transaction``: it takes the next sequence number and
/// op counter, edits documents through ``documents``, and appends the encoded change to the log.
public struct LocalWriter {
    /// The documents, read from and written back to the open transaction.
    public var documents: DocumentsInTransaction
    /// This replica's version vector, including the changes made so far in this write.
    public var clock: VersionVector {
        var v = deps
        v[author] = ownSeq
        return v
    }
    /// ``clock`` without the author's own entry (the next change's `deps`), and that entry, kept
    /// apart so that making a change neither copies nor rehashes the vector.
    private let deps: VersionVector
    /// The author's latest sequence number, including the changes made so far in this write.
    public private(set) var ownSeq: UInt64
    /// The greatest op counter seen; the next change starts at `maxOp + 1`.
    public private(set) var maxOp: UInt64
    public let author: ReplicaID
    /// The space (causal domain) the changes belong to.
    public let space: SpaceID
    /// The changes made so far in this write, in order.
    public private(set) var changes: [Change] = []
    /// The logged encoding of each of ``changes`` (sealed as they are, not encoded again).
    private(set) var encodedChanges: [[UInt8]] = []
    let insert: ChangeLogInsert
    let authorBytes: [UInt8]

    init(
        documents: DocumentsInTransaction, clock: VersionVector, maxOp: UInt64, author: ReplicaID, space: SpaceID,
        insert: ChangeLogInsert, authorBytes: [UInt8]
    ) {
        self.documents = documents
        var deps = clock
        deps[author] = 0
        self.deps = deps
        self.ownSeq = clock[author]
        self.maxOp = maxOp
        self.author = author
        self.space = space
        self.insert = insert
        self.authorBytes = authorBytes
    }

    /// Makes one change. `body` runs the core transaction's edits against ``documents``; a
    /// body that edits nothing produces no change (and consumes no sequence number).
    ///
    /// If `body` throws, the error propagates and the whole ``Store/write(_:)`` rolls back.
    public mutating func change<T>(
        time: Int64,
        _ body: (inout Transaction, inout DocumentsInTransaction) throws -> T
    ) throws -> (value: T, change: Change?) {
        var tx = Transaction(author: author, seq: ownSeq + 1, startOp: maxOp + 1, time: time, deps: deps)
        documents.currentTime = time
        let value = try body(&tx, &documents)
        guard let change = tx.finish() else { return (value, nil) }
        let bytes = change.encoded()
        try insert.insert(author: authorBytes, seq: change.seq, startOp: change.startOp, time: change.time, bytes: bytes)
        ownSeq = change.seq
        maxOp = max(maxOp, change.maxOp)
        changes.append(change)
        encodedChanges.append(bytes)
        return (value, change)
    }
}

/// What ``Store/apply(changes:receivedAt:)`` did with a batch.
public struct ApplyReport: Sendable, Hashable, Codable {
    /// Changes applied now (from this batch or released from the pending buffer by it).
    public var applied: Int = 0
    /// Changes of the batch already held (applied or pending): no-ops.
    public var duplicates: Int = 0
    /// Changes still waiting for their causal past, in total after this batch.
    public var waiting: Int = 0
    /// Changes applied with no effect because they were refused (``SarabanCore/Ownership``, or
    /// the space's authority rules): they count as received, and each is recorded with its reason.
    public var refused: Int = 0
    /// The documents whose state changed.
    public var documents: [String] = []

    public init() {}
}

/// Counts shown by `saraban status`.
public struct StoreStats: Sendable, Hashable, Codable {
    public var documents: Int
    public var deletedDocuments: Int
    public var changes: Int
    public var pendingChanges: Int
    /// Bytes of `saraban.db` plus its `-wal` file.
    public var databaseBytes: Int64
}

/// One row of the document list, read without decoding the snapshot.
public struct DocumentSummary: Sendable, Hashable {
    public var id: DocID
    public var kind: String
    public var deleted: Bool
    /// Milliseconds since 1970 of the latest change applied to it.
    public var updatedAt: Int64
}

extension Store {
    // MARK: - Local writes

    /// Runs `body` in ONE SQLite write transaction (BEGIN IMMEDIATE): the counters and clock are
    /// read, `body` makes local changes through the ``LocalWriter``, each change is appended to
    /// the log, touched documents' snapshots are written back, and the counters are bumped,
    /// all committed together. If anything throws, nothing is written.
    ///
    /// `space` is the causal domain of the changes (nil: the node's default space). With a
    /// `signer`, the new changes are also sealed into envelopes under the space's current epoch
    /// key and stored, with the author's feed head, in the SAME transaction (see
    /// ``Store/envelopes(space:after:limit:)``); the space's membership document, if touched, is
    /// re-read (members, keys sealed to `signer`, epoch).
    ///
    /// `durable` (the default): the commit fsyncs the WAL before this returns, so whatever the
    /// caller shows a person (a register number, a document id) survives a power cut. A bulk
    /// writer that shows nothing (an import, a benchmark) may pass false and pay no fsync per
    /// transaction: its envelopes still reach peers only once on disk, because the sync driver
    /// calls ``syncWAL()`` before it sends this node's own envelopes (Docs/ARCHITECTURE.md,
    /// "Durability").
    public func write<T>(
        space: SpaceID? = nil, signer: SigningKeyPair? = nil, durable: Bool = true, _ body: (inout LocalWriter) throws -> T
    ) throws -> (value: T, changes: [Change]) {
        do {
            return try pool.writeWithoutTransaction { db in
                var out: (value: T, changes: [Change])?
                try Self.inTransaction(db, durable: durable) {
                    let space = try space ?? Self.defaultSpace(db, path: path)
                    let spaceBytes = Data(space.bytes)
                    guard let nextSeq = try Int64.fetchOne(
                        db, sql: "SELECT next_seq FROM spaces WHERE id = ? AND role = 0", arguments: [spaceBytes])
                    else {
                        throw StorageError(
                            .notFound,
                            "this node is not a member of space \(space.hex); `saraban space list` shows its spaces",
                            path: path)
                    }
                    var clock = try Self.loadClock(db, space: spaceBytes)
                    var maxOp = try Self.meta(db, "max_op")
                    // Never reuse a sequence number, even if the clock row was lost.
                    if nextSeq > 0 && clock[replica] < UInt64(nextSeq) - 1 { clock[replica] = UInt64(nextSeq) - 1 }
                    maxOp = max(maxOp, 0)
                    var writer = LocalWriter(
                        documents: DocumentsInTransaction(db: db, path: path, space: spaceBytes, storedMaxOp: maxOp),
                        clock: clock,
                        maxOp: maxOp, author: replica, space: space, insert: try ChangeLogInsert(db, space: spaceBytes),
                        authorBytes: replica.bytes)
                    let value = try body(&writer)
                    if !writer.changes.isEmpty {
                        try writer.documents.flush()
                        try Self.setClock(db, space: spaceBytes, replica, writer.ownSeq)
                        try db.execute(
                            sql: "UPDATE spaces SET next_seq = ? WHERE id = ?",
                            arguments: [Int64(writer.ownSeq + 1), spaceBytes])
                        try Self.setMeta(db, "max_op", writer.maxOp)
                        if let signer {
                            // The transaction's documents name every document the changes touched.
                            // A simulated rogue node (a modified binary) skips its own check.
                            let touchedMembership =
                                testHooks?.skipsLocalAuthority == true
                                ? false
                                : try self.judgeLocal(
                                    db, space: space, writer.changes, signer: signer, touched: { writer.documents.hasLoaded($0) })
                            if touchedMembership { try self.refreshSpace(db, space: space, identity: signer) }
                            try self.sealLocal(
                                db, space: space, changes: writer.changes, encoded: writer.encodedChanges, signer: signer)
                        }
                    }
                    out = (value, writer.changes)
                    return .commit
                }
                return out!
            }
        } catch let error as EditError {
            throw error
        } catch let error as DatabaseError {
            throw Self.mapError(error, path: path, doing: "write")
        }
    }

    /// One local change in its own transaction: a convenience over ``write(space:signer:_:)``.
    public func change<T>(
        space: SpaceID? = nil, signer: SigningKeyPair? = nil, time: Int64,
        _ body: (inout Transaction, inout DocumentsInTransaction) throws -> T
    ) throws -> (value: T, change: Change?) {
        let r = try write(space: space, signer: signer) { w in try w.change(time: time, body) }
        return (r.value.value, r.value.change)
    }

    // MARK: - Remote changes

    /// Applies changes received from elsewhere (a peer, a change file), in ONE transaction.
    ///
    /// Every change goes through the pending buffer: those whose causal past is present are
    /// applied in a deterministic order (and may release others), the rest wait in `pending`
    /// for a later batch. A change already applied or already pending is counted as a
    /// duplicate and ignored, so applying the same batch twice is a no-op.
    ///
    /// `space` is the causal domain (nil: the node's default space).
    public func apply(changes incoming: [Change], space: SpaceID? = nil, receivedAt: Int64 = 0) throws(StorageError)
        -> ApplyReport
    {
        do {
            return try pool.writeWithoutTransaction { db in
                var report = ApplyReport()
                try db.inTransaction(.immediate) {
                    let space = try space ?? Self.defaultSpace(db, path: path)
                    report = try self.applyInTransaction(db, space: Data(space.bytes), incoming, receivedAt: receivedAt)
                    return .commit
                }
                return report
            }
        } catch {
            throw Self.mapError(error, path: path, doing: "apply changes")
        }
    }

    func applyInTransaction(_ db: Database, space: Data, _ incoming: [Change], receivedAt: Int64) throws
        -> ApplyReport
    {
        var (report, touched, _) = try applyChanges(db, space: space, incoming, receivedAt: receivedAt)
        report.documents = DocIDText.sortedStrings(touched)
        return report
    }

    /// ``applyInTransaction(_:space:_:receivedAt:)`` without the report's document list: the
    /// documents whose state changed come back as ids instead (unsorted, each once).
    ///
    /// `encoded`, if given, holds each incoming change's bytes as its author sealed them (they
    /// decoded to it): they are logged as they are rather than encoded again.
    ///
    /// `judge`, if given, is asked about each change just before it is applied (in causal
    /// order): a reason refuses it. A refused change, like one ``SarabanCore/Change/apply(to:)``
    /// refuses, is logged and advances the clock but changes no document; it is recorded in
    /// `refused_changes` and returned.
    func applyChanges(
        _ db: Database, space: Data, _ incoming: [Change], encoded: [[UInt8]]? = nil, receivedAt: Int64,
        judge: (Change) throws -> String? = { _ in nil }
    ) throws -> (report: ApplyReport, touched: [DocID], refused: [(change: ChangeID, reason: String)]) {
        var refusals: [(change: ChangeID, reason: String)] = []
        var report = ApplyReport()
        var clock = try Self.loadClock(db, space: space)
        let startClock = clock
        var maxOp = try Self.meta(db, "max_op")

        // The pending buffer, per author by sequence number, each change with its logged bytes if known.
        var pending: [ReplicaID: [UInt64: (change: Change, bytes: [UInt8]?)]] = [:]
        var storedPending = Set<ChangeID>()
        for row in try Row.fetchAll(db, sql: "SELECT author, seq, bytes FROM pending WHERE space = ?", arguments: [space]) {
            let bytes: Data = row[2]
            guard let c = try? Change.decode([UInt8](bytes)) else {
                // A damaged buffered change is dropped: its author still holds it and resends it.
                logger.warning("dropping an unreadable pending change", metadata: ["seq": "\(row[1] as Int64)"])
                try db.execute(
                    sql: "DELETE FROM pending WHERE space = ? AND author = ? AND seq = ?",
                    arguments: [space, row[0], row[1]])
                continue
            }
            pending[c.author, default: [:]][c.seq] = (c, [UInt8](bytes))
            storedPending.insert(c.id)
        }
        precondition(encoded == nil || encoded!.count == incoming.count, "one encoding per change")
        var documents = DocumentsInTransaction(db: db, path: path, space: space, storedMaxOp: maxOp)
        documents.reserve(incoming.count)
        let insert = try ChangeLogInsert(db, space: space)
        func apply(_ c: Change, bytes: [UInt8]?) throws {
            documents.currentTime = c.time
            if let reason = try judge(c) {
                refusals.append((c.id, reason))
                try Self.recordRefusal(db, space: space, c.id, document: nil, reason: reason, at: receivedAt)
            } else if let r = try c.apply(to: &documents) {
                refusals.append((c.id, r.description))
                try Self.recordRefusal(db, space: space, c.id, document: r.document, reason: r.description, at: receivedAt)
            }
            try insert.insert(c, bytes: bytes)
            clock[c.author] = c.seq
            maxOp = max(maxOp, c.maxOp)
            report.applied += 1
        }
        // While nothing waits, a change that is causally ready as it comes is applied straight
        // away (the usual batch: one author's run, in sequence); from the first that is not,
        // the rest go through the buffer below. Either way each change is applied once its
        // author's previous change and its dependencies are, so the result is the same.
        var direct = pending.isEmpty
        let early = testHooks?.applyBeforeDependencies
        for (i, c) in incoming.enumerated() {
            if clock.includes(c.id) || pending[c.author]?[c.seq] != nil {
                report.duplicates += 1
                continue
            }
            if direct && c.seq == clock[c.author] + 1 && (clock.dominates(c.deps) || early?(c) == true) {
                try apply(c, bytes: encoded?[i])
                continue
            }
            direct = false
            pending[c.author, default: [:]][c.seq] = (c, encoded?[i])
        }

        var progress = true
        while progress {
            progress = false
            // Deterministic order: authors sorted, each author's ready run in sequence.
            for author in pending.keys.sorted() {
                while let (c, bytes) = pending[author]?[clock[author] + 1], clock.dominates(c.deps) || early?(c) == true {
                    try apply(c, bytes: bytes)
                    pending[author]![c.seq] = nil
                    progress = true
                }
                if pending[author]?.isEmpty == true { pending[author] = nil }
            }
        }

        let touched = documents.touchedIDs()
        try documents.flush()
        for (author, seq) in clock.entries where seq != startClock[author] {
            try Self.setClock(db, space: space, author, seq)
        }
        try Self.setMeta(db, "max_op", maxOp)
        try db.execute(
            sql: "UPDATE spaces SET next_seq = max(next_seq, ?) WHERE id = ?", arguments: [Int64(clock[replica] + 1), space])
        // Rewrite the buffer: drop what was applied (or already covered), add what waits.
        let delete = try db.cachedStatement(sql: "DELETE FROM pending WHERE space = ? AND author = ? AND seq = ?")
        for id in storedPending where clock.includes(id) {
            try delete.execute(arguments: [space, Data(id.author.bytes), Int64(id.seq)])
        }
        let add = try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO pending(space, author, seq, bytes, received_at) VALUES (?, ?, ?, ?, ?)")
        var waiting = 0
        for (_, bySeq) in pending {
            for (_, (c, bytes)) in bySeq where !clock.includes(c.id) {
                waiting += 1
                if !storedPending.contains(c.id) {
                    try add.execute(arguments: [
                        space, Data(c.author.bytes), Int64(c.seq), Data(bytes ?? c.encoded()), receivedAt,
                    ])
                }
            }
        }
        report.waiting = waiting
        report.refused = refusals.count
        return (report, touched, refusals)
    }

    // MARK: - Reading

    /// The document, or nil. Reads its snapshot: no history is replayed.
    public func document(_ id: DocID) throws(StorageError) -> Document? {
        try read { db in try Self.loadDocument(db, id, path: path) }
    }

    /// Every document (deleted ones too), sorted by id.
    public func documents() throws(StorageError) -> [Document] {
        try read { db in
            try Data.fetchAll(db, sql: "SELECT snapshot FROM documents ORDER BY id").map { data in
                do { return try Document.decode([UInt8](data)) } catch {
                    throw StorageError(.corrupt, "a stored snapshot in \(path) is damaged (\(error))", path: path)
                }
            }
        }
    }

    /// The documents of `kind` (deleted ones too), in `space` when given, sorted by id: only their
    /// rows are read and decoded (index `documents_by_space_kind`; without a space, each space's
    /// rows in turn, the spaces found by a loose scan of the index's first column).
    public func documents(kind: String, space: SpaceID? = nil) throws(StorageError) -> [Document] {
        var out: [Document] = []
        try forEachDocument(kind: kind, space: space) { out.append($0) }
        return out
    }

    /// ``documents(kind:space:)`` one at a time: each is decoded, handed to `body` and dropped
    /// before the next is read, so a caller keeping a small view of each (a list of letters) never
    /// holds every decoded document at once (10,000 letters: about 70 MB, and the heap they
    /// fragmented stayed with the process).
    public func forEachDocument(kind: String, space: SpaceID? = nil, _ body: (Document) -> Void) throws(StorageError) {
        try read { db in
            let rows: RowCursor
            if let space {
                rows = try Row.fetchCursor(
                    db, sql: "SELECT snapshot FROM documents WHERE kind = ? AND space = ? ORDER BY id",
                    arguments: [kind, Data(space.bytes)])
            } else {
                // The distinct spaces by skipping through the index (one seek per space) rather
                // than scanning it, then the rows of `kind` in each.
                rows = try Row.fetchCursor(
                    db,
                    sql: """
                        WITH RECURSIVE s(space) AS (
                            SELECT min(space) FROM documents
                            UNION ALL
                            SELECT (SELECT min(space) FROM documents WHERE space > s.space) FROM s WHERE s.space IS NOT NULL
                        )
                        SELECT snapshot FROM documents WHERE space IN (SELECT space FROM s WHERE space IS NOT NULL) AND kind = ?
                        ORDER BY id
                        """, arguments: [kind])
            }
            while let row = try rows.next() {
                // Straight from SQLite's buffer, without a Data copy of the snapshot.
                let doc = try row.withUnsafeData(atIndex: 0) { (data: Data?) throws -> Document in
                    do { return try Document.decode([UInt8](data ?? Data())) } catch {
                        throw StorageError(.corrupt, "a stored snapshot in \(path) is damaged (\(error))", path: path)
                    }
                }
                body(doc)
            }
        }
    }

    /// Id, kind, deletion flag and update time of every document, sorted by id.
    public func documentSummaries() throws(StorageError) -> [DocumentSummary] {
        // A cursor, not Row.fetchAll: 100k rows would be held twice (rows, then summaries) at the peak.
        try read { db in
            var out: [DocumentSummary] = []
            let rows = try Row.fetchCursor(db, sql: "SELECT id, kind, deleted, updated_at FROM documents ORDER BY id")
            while let row = try rows.next() {
                guard let id = DocID(row[0] as String) else { continue }
                out.append(DocumentSummary(id: id, kind: row[1], deleted: row[2], updatedAt: row[3]))
            }
            return out
        }
    }

    /// The ids of documents whose text form starts with `prefix`.
    public func documentIDs(withPrefix prefix: String) throws(StorageError) -> [DocID] {
        try read { db in
            try String.fetchAll(
                db, sql: "SELECT id FROM documents WHERE substr(id, 1, ?) = ? ORDER BY id",
                arguments: [prefix.utf8.count, prefix]
            ).compactMap(DocID.init)
        }
    }

    /// Counts and sizes for `saraban status`.
    public func stats() throws(StorageError) -> StoreStats {
        let (docs, deleted, changes, pending) = try read { db in
            (
                try Int.fetchOne(db, sql: "SELECT count(*) FROM documents") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM documents WHERE deleted") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM changes") ?? 0,
                try Int.fetchOne(db, sql: "SELECT count(*) FROM pending") ?? 0
            )
        }
        func size(_ p: String) -> Int64 {
            ((try? FileManager.default.attributesOfItem(atPath: p)[.size]) as? NSNumber)?.int64Value ?? 0
        }
        return StoreStats(
            documents: docs, deletedDocuments: deleted, changes: changes, pendingChanges: pending,
            databaseBytes: size(path) + size(path + "-wal"))
    }

    /// This replica's version vector in `space` (nil: the default space): per author, the
    /// highest sequence number applied.
    public func clock(space: SpaceID? = nil) throws(StorageError) -> VersionVector {
        try read { db in try Self.loadClock(db, space: Data((try space ?? Self.defaultSpace(db, path: path)).bytes)) }
    }

    /// The logged change `id` in `space` (nil: the default space), if present.
    public func change(_ id: ChangeID, space: SpaceID? = nil) throws(StorageError) -> Change? {
        try read { db in
            let space = Data((try space ?? Self.defaultSpace(db, path: path)).bytes)
            guard
                let data = try Data.fetchOne(
                    db, sql: "SELECT bytes FROM changes WHERE space = ? AND author = ? AND seq = ?",
                    arguments: [space, Data(id.author.bytes), Int64(id.seq)])
            else { return nil }
            return try Self.decodeChange(data, path: path)
        }
    }

    /// Every logged change not covered by `vector`, in an order that respects causality
    /// (each author's changes by sequence; apply through ``apply(changes:receivedAt:)``,
    /// which buffers any cross-author order). This is what a peer at `vector` is missing.
    public func changes(notIn vector: VersionVector = VersionVector(), space: SpaceID? = nil) throws(StorageError)
        -> [Change]
    {
        try read { db in
            var out: [Change] = []
            let space = Data((try space ?? Self.defaultSpace(db, path: path)).bytes)
            for row in try Row.fetchAll(
                db, sql: "SELECT author, seq, bytes FROM changes WHERE space = ? ORDER BY author, seq", arguments: [space])
            {
                let author = ReplicaID(bytes: [UInt8](row[0] as Data))
                let seq = UInt64(row[1] as Int64)
                if vector[author] >= seq { continue }
                out.append(try Self.decodeChange(row[2], path: path))
            }
            return out
        }
    }

    /// Like ``changes(notIn:)`` but returns the stored encodings without decoding them (for
    /// sending: the bytes its author logged and sealed, which ``Change/encoded()`` produced there).
    public func encodedChanges(notIn vector: VersionVector = VersionVector(), space: SpaceID? = nil) throws(StorageError)
        -> [(id: ChangeID, bytes: [UInt8])]
    {
        try read { db in
            var out: [(id: ChangeID, bytes: [UInt8])] = []
            let space = Data((try space ?? Self.defaultSpace(db, path: path)).bytes)
            for row in try Row.fetchAll(
                db, sql: "SELECT author, seq, bytes FROM changes WHERE space = ? ORDER BY author, seq", arguments: [space])
            {
                let author = ReplicaID(bytes: [UInt8](row[0] as Data))
                let seq = UInt64(row[1] as Int64)
                if vector[author] >= seq { continue }
                out.append((ChangeID(author: author, seq: seq), [UInt8](row[2] as Data)))
            }
            return out
        }
    }

    /// The changes that touch document `id` together with their whole causal past, so a
    /// replica that has none of them can apply them all. Ordered by author and sequence.
    public func changesForExport(_ id: DocID) throws(StorageError) -> [Change] {
        let all = try changes(space: try space(ofDocument: id))
        var byID: [ChangeID: Change] = [:]
        for c in all { byID[c.id] = c }
        // The export frontier: the join of the touching changes' clocks, closed under deps.
        var frontier = VersionVector()
        for c in all where c.touches(id) { frontier.merge(c.clock) }
        var changed = true
        while changed {
            changed = false
            for (author, seq) in frontier.entries {
                if let c = byID[ChangeID(author: author, seq: seq)], !frontier.dominates(c.clock) {
                    frontier.merge(c.clock)
                    changed = true
                }
            }
        }
        return all.filter { frontier.includes($0.id) }
    }

    // MARK: - Helpers

    func read<T>(_ body: (Database) throws -> T) throws(StorageError) -> T {
        do { return try pool.read(body) } catch { throw Self.mapError(error, path: path, doing: "read the database") }
    }

    static func decodeChange(_ data: Data, path: String) throws -> Change {
        do { return try Change.decode([UInt8](data)) } catch {
            throw StorageError(
                .corrupt, "a logged change in \(path) is damaged (\(error)); restore the database from a backup",
                path: path)
        }
    }

    static func loadClock(_ db: Database, space: Data) throws -> VersionVector {
        var v = VersionVector()
        for row in try Row.fetchAll(db, sql: "SELECT author, seq FROM clock WHERE space = ?", arguments: [space]) {
            v[ReplicaID(bytes: [UInt8](row[0] as Data))] = UInt64(row[1] as Int64)
        }
        return v
    }

    static func setClock(_ db: Database, space: Data, _ author: ReplicaID, _ seq: UInt64) throws {
        try db.cachedStatement(
            sql: "INSERT INTO clock(space, author, seq) VALUES (?, ?, ?) ON CONFLICT(space, author) DO UPDATE SET seq = excluded.seq"
        ).execute(arguments: [space, Data(author.bytes), Int64(seq)])
    }

    static func meta(_ db: Database, _ key: String) throws -> UInt64 {
        UInt64(max(0, try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) ?? 0))
    }

    static func setMeta(_ db: Database, _ key: String, _ value: UInt64) throws {
        try db.cachedStatement(
            sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
        ).execute(arguments: [key, Int64(value)])
    }

    /// A node setting kept in the database (`meta` table), or nil.
    public func setting(_ key: String) throws(StorageError) -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: ["s." + key]) }
    }

    /// Stores a node setting in the database (`meta` table).
    public func setSetting(_ key: String, _ value: String) throws(StorageError) {
        do {
            try pool.write { db in
                try db.execute(
                    sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    arguments: ["s." + key, value])
            }
        } catch {
            throw Self.mapError(error, path: path, doing: "write a setting")
        }
    }
}
