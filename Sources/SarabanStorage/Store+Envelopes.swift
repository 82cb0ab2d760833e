import Foundation
import GRDB
import SarabanCore
import SarabanCrypto
import SarabanFeed

/// What a batch of received envelopes did.
public struct ReceiveReport: Sendable {
    /// Verified and stored now (a member also applied their changes), in the order given.
    public var accepted: [Envelope] = []
    /// Already stored (replays): no-ops.
    public var duplicates: [Envelope] = []
    /// Refused, each with its reason; nothing of them was stored.
    public var refused: [(envelope: Envelope, error: EnvelopeError)] = []
    /// Verified but held (not stored as part of the feed, not served) until their author is
    /// admitted or their key arrives; retried after every batch. Not counted in ``holds``.
    public var held: [(envelope: Envelope, reason: String)] = []
    /// Held envelopes (of this batch or earlier ones) released and applied by this batch.
    public var released = 0
    /// Changes received and logged but refused (no effect): not an owner, not an admin.
    public var refusedChanges: [(change: ChangeID, reason: String)] = []
    /// The node's feed vector for the space after the batch.
    public var holds = FeedVector()
    /// What applying the changes did (members only).
    public var applied = ApplyReport()

    public init() {}
}

extension Store {
    /// The largest plaintext sealed into one envelope, leaving room for padding and framing so every
    /// envelope fits one sync frame (``SyncLimits/maximumEnvelopeByteCount``).
    static let plaintextBudget = FeedLimits.maximumEnvelopeByteCount - Envelope.minimumByteCount
        - (FeedLimits.maximumEnvelopeByteCount >> 4)
    static let maximumChangesPerEnvelope = 4096

    // MARK: - Sealing local writes

    /// Seals this node's changes of `space` that are not in an envelope yet, in order, chained
    /// on its feed head and signed with `signer`, inside the caller's transaction: control
    /// changes (the membership log) into control envelopes any node can open
    /// (``SarabanFeed/ControlKey``), the others under the space's current key. Content waits
    /// unsealed while the space says so (`seal_wait`: the current key is also held by a removed
    /// node, or this node lacks it) and everything after it waits with it, to be sealed by
    /// ``sealBacklog(_:space:signer:)`` once an admin's rekey or share arrives.
    /// `recent` are the changes just made with their logged encodings (not read back).
    func sealLocal(
        _ db: Database, space: SpaceID, changes recent: [Change], encoded recentBytes: [[UInt8]], signer: SigningKeyPair
    ) throws {
        let sp = Data(space.bytes)
        guard let row = try Row.fetchOne(
            db, sql: "SELECT seal_wait, doc FROM spaces WHERE id = ? AND role = 0", arguments: [sp])
        else { return }
        let wait: String? = row[0]
        let document = (row[1] as String?).flatMap(DocID.init)
        let author = signer.publicKey
        guard
            let membership = try Row.fetchOne(
                db, sql: "SELECT removed_epoch FROM space_members WHERE space = ? AND member = ?",
                arguments: [sp, Data(author.rawRepresentation)]),
            (membership[0] as Int64?) == nil
        else {
            throw StorageError(
                .notAMember,
                "this node is not (or no longer) a member of space \(space.hex), so it cannot write there: ask an "
                    + "admin of the space to invite it again",
                path: path)
        }
        var head = try Self.loadHead(db, space: sp, author: author)
        var items: [(change: Change, bytes: [UInt8])] = []
        if let first = recent.first(where: { $0.author == replica }), first.seq > head.lastSequence + 1 {
            // Earlier changes still wait unsealed: they go first.
            for row in try Row.fetchAll(
                db, sql: "SELECT bytes FROM changes WHERE space = ? AND author = ? AND seq > ? AND seq < ? ORDER BY seq",
                arguments: [sp, Data(replica.bytes), Int64(head.lastSequence), Int64(first.seq)])
            {
                let bytes = [UInt8](row[0] as Data)
                items.append((try Self.decodeChange(row[0], path: path), bytes))
            }
        }
        for (c, b) in zip(recent, recentBytes) where c.author == replica && c.seq > head.lastSequence { items.append((c, b)) }
        guard !items.isEmpty else { return }
        let sealing = wait == nil ? try Self.sealingKey(db, space: sp) : nil

        var batch: [[UInt8]] = []
        var batchBytes = 0
        var firstSeq: UInt64 = 0
        var batchIsControl = false

        func flush() throws {
            guard !batch.isEmpty else { return }
            let plaintext = EnvelopePayload.encode(batch, capacity: batchBytes + 8 * batch.count)
            let seqEnd = firstSeq + UInt64(batch.count) - 1
            guard firstSeq == head.lastSequence + 1 else {
                throw StorageError(
                    .corrupt,
                    "this node's feed in space \(space.hex) ends at seq \(head.lastSequence) but its next change is "
                        + "\(firstSeq): the envelope chain and the change log disagree; restore the database from a backup",
                    path: path)
            }
            let epoch = batchIsControl ? ControlEntry.publicEpoch : sealing!.epoch
            let key = batchIsControl ? ControlKey.key(for: space) : sealing!.key
            let header = EnvelopeHeader(
                spaceID: space.bytes, author: author, seqStart: firstSeq, seqEnd: seqEnd, epoch: epoch,
                previousHash: head.lastID)
            let envelope = try Envelope.seal(plaintext: plaintext, header: header, key: key, signer: signer)
            guard envelope.bytes.count <= FeedLimits.maximumEnvelopeByteCount else {
                throw StorageError(
                    .io,
                    "a change of \(batchBytes) bytes is too large to sync (envelopes are at most "
                        + "\(FeedLimits.maximumEnvelopeByteCount) bytes): split the edit",
                    path: path)
            }
            try Self.insertEnvelope(db, space: sp, envelope)
            head = FeedHead(lastSequence: seqEnd, lastID: envelope.id)
            batch.removeAll()
            batchBytes = 0
        }

        for (c, enc) in items {
            // A change that does not touch the membership document is no control change: asked
            // first, it spares the usual change the parse of its operations' entries.
            let control =
                (document ?? ControlChange.genesisDocument(c)).map { c.touches($0) && ControlChange.entries(of: c, document: $0) != nil }
                ?? false
            if !control && sealing == nil {
                if wait != nil { break }  // waits, with everything after it
                let epoch = try Int64.fetchOne(db, sql: "SELECT epoch FROM spaces WHERE id = ?", arguments: [sp]) ?? 0
                throw StorageError(
                    .notFound,
                    "this node holds no key for epoch \(epoch) of space \(space.hex), so it cannot seal its changes: "
                        + "it may have been removed from the space; ask an admin to invite it again",
                    path: path)
            }
            if !batch.isEmpty
                && (control != batchIsControl || batchBytes + enc.count + 10 > Self.plaintextBudget
                    || batch.count >= Self.maximumChangesPerEnvelope)
            {
                try flush()
            }
            if batch.isEmpty {
                firstSeq = c.seq
                batchIsControl = control
            }
            batch.append(enc)
            batchBytes += enc.count + 10
        }
        try flush()
    }

    /// Seals whatever of this node's changes of `space` waited unsealed (see
    /// ``sealLocal(_:space:changes:encoded:signer:)``); nothing when nothing waits.
    func sealBacklog(_ db: Database, space: SpaceID, signer: SigningKeyPair) throws {
        let sp = Data(space.bytes)
        let head = try Self.loadHead(db, space: sp, author: signer.publicKey)
        guard let next = try Int64.fetchOne(db, sql: "SELECT next_seq FROM spaces WHERE id = ? AND role = 0", arguments: [sp]),
            UInt64(next) > head.lastSequence + 1
        else { return }
        let rows = try Row.fetchAll(
            db, sql: "SELECT bytes FROM changes WHERE space = ? AND author = ? AND seq > ? ORDER BY seq",
            arguments: [sp, Data(replica.bytes), Int64(head.lastSequence)])
        var changes: [Change] = []
        var bytes: [[UInt8]] = []
        for row in rows {
            changes.append(try Self.decodeChange(row[0], path: path))
            bytes.append([UInt8](row[0] as Data))
        }
        guard !changes.isEmpty else { return }
        do {
            try sealLocal(db, space: space, changes: changes, encoded: bytes, signer: signer)
        } catch let error as StorageError where error.code == .notAMember {
            return  // removed meanwhile: its unsealed changes stay local
        }
    }

    static func loadHead(_ db: Database, space: Data, author: SigningPublicKey) throws -> FeedHead {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT last_seq, last_id FROM feed_heads WHERE space = ? AND author = ?",
                arguments: [space, Data(author.rawRepresentation)])
        else { return FeedHead() }
        return FeedHead(lastSequence: UInt64(row[0] as Int64), lastID: try EnvelopeID(bytes: [UInt8](row[1] as Data)))
    }

    static func loadHeads(_ db: Database, space: Data) throws -> [SigningPublicKey: FeedHead] {
        var out: [SigningPublicKey: FeedHead] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT author, last_seq, last_id FROM feed_heads WHERE space = ?", arguments: [space])
        {
            let author = try SigningPublicKey(rawRepresentation: [UInt8](row[0] as Data))
            out[author] = FeedHead(
                lastSequence: UInt64(row[1] as Int64), lastID: try EnvelopeID(bytes: [UInt8](row[2] as Data)))
        }
        return out
    }

    /// Appends the envelope to the log, stores it and advances its author's head.
    static func insertEnvelope(_ db: Database, space: Data, _ e: Envelope) throws {
        let author = Data(e.header.author.rawRepresentation)
        try db.cachedStatement(sql: "INSERT INTO envelope_log(space, author, seq_start) VALUES (?, ?, ?)")
            .execute(arguments: [space, author, Int64(e.header.seqStart)])
        let n = db.lastInsertedRowID
        try db.cachedStatement(
            sql: """
                INSERT INTO envelopes(space, author, seq_start, seq_end, epoch, id, bytes, log)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            space, author, Int64(e.header.seqStart), Int64(e.header.seqEnd), Int64(e.header.epoch), Data(e.id.bytes),
            Data(e.bytes), n,
        ])
        try db.cachedStatement(
            sql: """
                INSERT INTO feed_heads(space, author, last_seq, last_id) VALUES (?, ?, ?, ?)
                ON CONFLICT(space, author) DO UPDATE SET last_seq = excluded.last_seq, last_id = excluded.last_id
                """
        ).execute(arguments: [space, author, Int64(e.header.seqEnd), Data(e.id.bytes)])
    }

    // MARK: - Serving envelopes

    /// What this node holds of `space`: per author, the last sequence number of its stored envelopes.
    public func feedVector(space: SpaceID) throws(StorageError) -> FeedVector {
        try read { db in try Self.loadFeedVector(db, space: Data(space.bytes)) }
    }

    static func loadFeedVector(_ db: Database, space: Data) throws -> FeedVector {
        var v = FeedVector()
        for (a, h) in try loadHeads(db, space: space) { v[a] = h.lastSequence }
        return v
    }

    /// Every space this node carries (as a member or a relay) with its feed vector.
    public func carriedSpaces() throws(StorageError) -> [SpaceID: FeedVector] {
        try read { db in
            var out: [SpaceID: FeedVector] = [:]
            for data in try Data.fetchAll(db, sql: "SELECT id FROM spaces") {
                guard let id = SpaceID(bytes: [UInt8](data)) else { continue }
                out[id] = try Self.loadFeedVector(db, space: data)
            }
            return out
        }
    }

    /// The envelopes of `space` a peer at `after` lacks: per author, those whose last sequence
    /// number is above `after[author]`, each author's in chain order, across authors in the order
    /// this node stored them; at most `maxEnvelopes` and about `maxBytes` (always at least one).
    /// `complete` is false when more remain.
    public func envelopes(space: SpaceID, after: FeedVector, maxEnvelopes: Int = 512, maxBytes: Int = 1 << 20)
        throws(StorageError) -> (envelopes: [Envelope], complete: Bool)
    {
        try read { db in
            let sp = Data(space.bytes)
            var start: Int64?
            for (author, head) in try Self.loadHeads(db, space: sp) where head.lastSequence > after[author] {
                if let n = try Int64.fetchOne(
                    db, sql: "SELECT min(log) FROM envelopes WHERE space = ? AND author = ? AND seq_end > ?",
                    arguments: [sp, Data(author.rawRepresentation), Int64(after[author])])
                {
                    start = min(start ?? n, n)
                }
            }
            guard let start else { return ([], true) }
            var out: [Envelope] = []
            var bytes = 0
            let cursor = try Row.fetchCursor(
                db,
                sql: """
                    SELECT e.author, e.seq_end, e.bytes, e.id FROM envelope_log l
                    JOIN envelopes e ON e.space = l.space AND e.author = l.author AND e.seq_start = l.seq_start
                    WHERE l.space = ? AND l.n >= ? ORDER BY l.n
                    """,
                arguments: [sp, start])
            var authors: [Data: SigningPublicKey] = [:]
            while let row = try cursor.next() {
                let a: Data = row[0]
                let key: SigningPublicKey
                if let k = authors[a] { key = k } else {
                    key = try SigningPublicKey(rawRepresentation: [UInt8](a))
                    authors[a] = key
                }
                guard UInt64(row[1] as Int64) > after[key] else { continue }
                if !out.isEmpty && (out.count >= max(maxEnvelopes, 1) || bytes >= maxBytes) { return (out, false) }
                let e = try Self.storedEnvelope(bytes: row[2], id: row[3])
                bytes += e.bytes.count
                out.append(e)
            }
            return (out, true)
        }
    }

    /// ``envelopes(space:after:maxEnvelopes:maxBytes:)`` with a sync session's fetch limit.
    public func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) throws(StorageError)
        -> (envelopes: [Envelope], complete: Bool)
    {
        try envelopes(space: space, after: after, maxEnvelopes: limit.envelopes, maxBytes: limit.bytes)
    }

    /// A cheap probe: the position of the last envelope stored (by any process on this database).
    /// A daemon polls it (for example every 250 ms) to notice a CLI write, then reads
    /// ``newEnvelopes(after:limit:)`` to push them.
    public func envelopeLogPosition() throws(StorageError) -> Int64 {
        try read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(max(n), 0) FROM envelope_log") ?? 0 }
    }

    /// The ids and epochs of the spaces this node carries and a summary of their members (how
    /// many, their removal epochs, their admin flags), in one string (cheap): it changes when a
    /// space is created, joined or left, which stores no envelope by itself, and when a
    /// membership changes (the daemon then checks which peers are served other spaces).
    public func spacesFingerprint() throws(StorageError) -> String {
        try read { db in
            try String.fetchOne(
                db,
                sql: """
                    SELECT (SELECT coalesce(group_concat(hex(id) || ':' || epoch, ','), '') FROM (SELECT id, epoch FROM spaces ORDER BY id))
                        || '|' || (SELECT count(*) || ':' || total(coalesce(removed_epoch, 0)) || ':' || total(admin) FROM space_members)
                    """) ?? ""
        }
    }

    /// The envelopes stored after log position `position`, in store order, with the new position.
    public func newEnvelopes(after position: Int64, limit: Int = 4096) throws(StorageError)
        -> (envelopes: [(space: SpaceID, envelope: Envelope)], position: Int64)
    {
        try read { db in
            var out: [(space: SpaceID, envelope: Envelope)] = []
            var last = position
            for row in try Row.fetchAll(
                db,
                sql: """
                    SELECT l.n, l.space, e.bytes, e.id FROM envelope_log l
                    JOIN envelopes e ON e.space = l.space AND e.author = l.author AND e.seq_start = l.seq_start
                    WHERE l.n > ? ORDER BY l.n LIMIT ?
                    """, arguments: [position, max(limit, 1)])
            {
                last = row[0]
                guard let s = SpaceID(bytes: [UInt8](row[1] as Data)) else { continue }
                out.append((s, try Self.storedEnvelope(bytes: row[2], id: row[3])))
            }
            return (out, last)
        }
    }

    /// An envelope read back from the `envelopes` table with the id stored beside it (computed
    /// when it was sealed or verified on receipt), so serving a peer does not hash it again.
    static func storedEnvelope(bytes: Data, id: Data) throws -> Envelope {
        try Envelope.decode([UInt8](bytes), storedID: EnvelopeID(bytes: [UInt8](id)))
    }

    static func envelopeError(_ error: CryptoError, envelope e: Envelope, space: SpaceID, member: Bool) -> EnvelopeError {
        switch error.code {
        case .feedWrongSpace: return EnvelopeError(.wrongSpace, error.message)
        case .feedWrongEpoch:
            return EnvelopeError(
                .wrongEpoch,
                "envelope \(e.id) is sealed with epoch \(e.header.epoch) of space \(space.hex), whose key this node does "
                    + "not hold: if this node was removed from the space it cannot read anything written afterwards; "
                    + "otherwise sync the rekey record first, then retry")
        case .feedBadSignature: return EnvelopeError(.tampered, error.message)
        case .feedReplay: return EnvelopeError(.reordered, error.message)
        case .feedGap: return EnvelopeError(.gap, error.message)
        case .feedOverlap: return EnvelopeError(.reordered, error.message)
        case .feedFork: return EnvelopeError(.fork, error.message, forkProof: error.forkProof)
        default: return EnvelopeError(.tampered, error.message)
        }
    }
}
