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

    /// Seals `changes` (consecutive, this node's, in `space`) into envelopes chained on this
    /// author's feed head and stores them, inside the caller's transaction. `encoded[i]` is
    /// `changes[i].encoded()`, as logged.
    func sealLocal(
        _ db: Database, space: SpaceID, changes: [Change], encoded: [[UInt8]], signer: SigningKeyPair
    ) throws {
        let sp = Data(space.bytes)
        guard let epoch64 = try Int64.fetchOne(db, sql: "SELECT epoch FROM spaces WHERE id = ?", arguments: [sp]) else {
            return
        }
        let epoch = UInt32(epoch64)
        guard let key = try Self.loadKeys(db, space: sp)[epoch] else {
            throw StorageError(
                .notFound,
                "this node holds no key for epoch \(epoch) of space \(space.hex), so it cannot seal its changes: "
                    + "it may have been removed from the space; ask a member to invite it again",
                path: path)
        }
        let author = signer.publicKey
        guard
            let membership = try Row.fetchOne(
                db, sql: "SELECT removed_epoch FROM space_members WHERE space = ? AND member = ?",
                arguments: [sp, Data(author.rawRepresentation)]),
            (membership[0] as Int64?) == nil
        else {
            throw StorageError(
                .notAMember,
                "this node is not (or no longer) a member of space \(space.hex), so it cannot write there: ask a "
                    + "member to invite it again",
                path: path)
        }
        var head = try Self.loadHead(db, space: sp, author: author)
        var batch: [[UInt8]] = []
        var batchBytes = 0
        var firstSeq: UInt64 = 0

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

        for (c, enc) in zip(changes, encoded) where c.author == replica {
            if !batch.isEmpty
                && (batchBytes + enc.count + 10 > Self.plaintextBudget || batch.count >= Self.maximumChangesPerEnvelope)
            {
                try flush()
            }
            if batch.isEmpty { firstSeq = c.seq }
            batch.append(enc)
            batchBytes += enc.count + 10
        }
        try flush()
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

    // MARK: - Receiving

    /// Verifies, stores and (on a member with `identity`) opens and applies envelopes received
    /// for `space`, in ONE transaction.
    ///
    /// Each envelope, in the order given: it must be for `space`; a stored one (same author and
    /// start, same id) is a duplicate no-op; on a member its author must be a member for its epoch;
    /// ``FeedVerifier`` resumes from the persisted heads (signature, chain, epoch: a member knows
    /// the epochs whose keys it holds, a relay accepts any); a member then decrypts it, checks the
    /// changes match the header, and applies them through the space's pending buffer (membership
    /// changes take effect for the next envelope). Then it is stored and its author's head
    /// advanced. A refused envelope leaves no trace and does not stop the batch.
    ///
    /// Consecutive envelopes that pass the checks are applied together in one savepoint (one
    /// pass through the pending buffer, each document loaded and written back once). If that
    /// fails, or their changes touched the space's membership document, it is rolled back and
    /// the run is redone one envelope per savepoint, each judged after the one before it.
    public func receiveEnvelopes(
        space: SpaceID, _ incoming: [Envelope], identity: SigningKeyPair?, receivedAt: Int64 = 0
    ) throws(StorageError) -> ReceiveReport {
        do {
            return try pool.writeWithoutTransaction { db in
                var report = ReceiveReport()
                try db.inTransaction(.immediate) {
                    report = try self.receiveInTransaction(
                        db, space: space, incoming, identity: identity, receivedAt: receivedAt)
                    return .commit
                }
                return report
            }
        } catch {
            throw Self.mapError(error, path: path, doing: "store received envelopes")
        }
    }

    /// What the checks of one received envelope found.
    private enum Verdict {
        case duplicate
        case refused(EnvelopeError)
        /// Verified (`trial` is the verifier having accepted it); on a member, opened into `changes`.
        case ready(trial: FeedVerifier, changes: EnvelopePayload.Opened?)
    }

    /// One verified, opened envelope waiting to be applied with the others of its run.
    private struct Opened {
        var envelope: Envelope
        var changes: EnvelopePayload.Opened
        var trial: FeedVerifier
    }

    private func receiveInTransaction(
        _ db: Database, space: SpaceID, _ incoming: [Envelope], identity: SigningKeyPair?, receivedAt: Int64
    ) throws -> ReceiveReport {
        var report = ReceiveReport()
        let sp = Data(space.bytes)
        guard let roleValue = try Int.fetchOne(db, sql: "SELECT role FROM spaces WHERE id = ?", arguments: [sp]) else {
            for e in incoming {
                report.refused.append(
                    (e, EnvelopeError(
                        .spaceNotCarried,
                        "this node does not carry space \(space.hex): join it (`saraban space join`) or, on a relay, "
                            + "carry it (`saraban space carry`)")))
            }
            return report
        }
        let me: SigningKeyPair? = roleValue == 0 ? identity : nil
        let member = me != nil
        var keys = member ? try Self.loadKeys(db, space: sp) : [:]
        var members = try Self.loadMembers(db, space: sp)
        var verifier = FeedVerifier(
            spaceID: space.bytes, knownEpochs: Set(keys.keys), heads: try Self.loadHeads(db, space: sp))
        let existing = try db.cachedStatement(
            sql: "SELECT id FROM envelopes WHERE space = ? AND author = ? AND seq_start = ?")
        let membershipDocument =
            member
            ? try String.fetchOne(db, sql: "SELECT doc FROM spaces WHERE id = ?", arguments: [sp]).flatMap(DocID.init)
            : nil
        // Documents whose state changed, named (as text) once at the end.
        var touched = Set<DocID>()

        func merge(_ applied: (report: ApplyReport, touched: [DocID])) {
            report.applied.applied += applied.report.applied
            report.applied.duplicates += applied.report.duplicates
            report.applied.waiting = applied.report.waiting
            touched.formUnion(applied.touched)
        }

        /// Judges `e` against the current state (stored envelopes, members, `verifier`).
        func check(_ e: Envelope) throws -> Verdict {
            let h = e.header
            guard h.spaceID == space.bytes else {
                return .refused(
                    EnvelopeError(
                        .wrongSpace,
                        "envelope \(e.id) belongs to space \(Hex.encode(h.spaceID)), not \(space.hex): route it to its space"))
            }
            // Each author's envelopes are stored in chain order and its head advanced with them, so
            // only a position at or below the head can be stored already.
            if h.seqStart <= verifier.head(of: h.author).lastSequence,
                let stored = try Data.fetchOne(
                    existing, arguments: [sp, Data(h.author.rawRepresentation), Int64(h.seqStart)])
            {
                if [UInt8](stored) == e.id.bytes { return .duplicate }
                // Only an envelope its author really signed proves a fork; anything else at a stored
                // position was altered on the way (or forged) and is refused as such.
                guard e.isSignatureValid() else {
                    return .refused(
                        EnvelopeError(
                            .tampered,
                            "envelope at seq \(h.seqStart) of \(h.author) in space \(space.hex) differs from the stored "
                                + "one and its signature does not verify: it was altered on the way or forged; drop it"))
                }
                // (ForkProof's initialiser is internal to SarabanCrypto: the two ids are in the message,
                // and both signed envelopes, the stored one and this one, are the proof.)
                let storedID = try EnvelopeID(bytes: [UInt8](stored))
                return .refused(
                    EnvelopeError(
                        .fork,
                        "\(h.author) signed two different envelopes at seq \(h.seqStart) in space \(space.hex) "
                            + "(stored \(storedID.hex), received \(e.id.hex)): the author forked its feed; keep both "
                            + "envelopes as proof and alert an administrator"))
            }
            if member {
                let m = members[h.author]
                guard let m, m.removedEpoch.map({ h.epoch < $0 }) ?? true else {
                    return .refused(
                        EnvelopeError(
                            .notAMember,
                            m == nil
                                ? "envelope \(e.id) is signed by \(h.author), who is not a member of space \(space.hex): "
                                    + "drop it (if it was just invited, its envelopes are accepted once the invitation's change arrives)"
                                : "envelope \(e.id) by \(h.author) uses epoch \(h.epoch), but that node was removed from "
                                    + "space \(space.hex) at epoch \(m!.removedEpoch!): drop it"))
                }
            } else {
                verifier.knownEpochs.insert(h.epoch)
            }
            var trial = verifier
            do {
                try trial.accept(e)
            } catch {
                return .refused(Self.envelopeError(error, envelope: e, space: space, member: member))
            }
            if member, let key = keys[h.epoch] {
                do { return .ready(trial: trial, changes: try EnvelopePayload.open(e, key: key)) } catch {
                    return .refused(error)
                }
            }
            return .ready(trial: trial, changes: nil)
        }

        /// Applies one opened envelope in its own savepoint, then re-reads the membership (it may
        /// have changed who may write next); a refusal is recorded in the report.
        func applyOne(_ o: Opened) throws {
            let e = o.envelope
            do {
                var applied: (report: ApplyReport, touched: [DocID]) = (ApplyReport(), [])
                try db.inSavepoint {
                    applied = try self.applyChanges(
                        db, space: sp, o.changes.changes, encoded: o.changes.bytes, receivedAt: receivedAt)
                    try Self.insertEnvelope(db, space: sp, e)
                    try self.refreshSpace(db, space: space, identity: me!)
                    return .commit
                }
                merge(applied)
            } catch let error as StorageError where error.code == .wrongSpace || error.code == .corrupt {
                report.refused.append((e, EnvelopeError(.invalidContents, "envelope \(e.id) was refused: \(error.message)")))
                return
            } catch let error as EditError {
                report.refused.append((e, EnvelopeError(.invalidContents, "envelope \(e.id) was refused: \(error)")))
                return
            }
            keys = try Self.loadKeys(db, space: sp)
            members = try Self.loadMembers(db, space: sp)
            verifier = o.trial
            verifier.knownEpochs.formUnion(keys.keys)
            report.accepted.append(e)
        }

        // Consecutive envelopes that verify and open are applied together: one pass through the
        // pending buffer, each document loaded and written back once. Membership is read once for
        // the run, so a run whose changes touch the membership document (or one that fails) is
        // rolled back and redone one envelope at a time, each judged after the one before it.
        var run: [Opened] = []
        var runStart = verifier

        func applyRun() throws {
            guard !run.isEmpty else { return }
            let batch = run
            run.removeAll()
            if batch.count > 1 {
                var applied: (report: ApplyReport, touched: [DocID])?
                do {
                    try db.inSavepoint {
                        let r = try self.applyChanges(
                            db, space: sp, batch.flatMap(\.changes.changes), encoded: batch.flatMap(\.changes.bytes),
                            receivedAt: receivedAt)
                        if let membershipDocument, r.touched.contains(membershipDocument) { return .rollback }
                        for o in batch { try Self.insertEnvelope(db, space: sp, o.envelope) }
                        applied = r
                        return .commit
                    }
                } catch let error as StorageError where error.code == .wrongSpace || error.code == .corrupt {
                    applied = nil
                } catch is EditError {
                    applied = nil
                }
                if let applied {
                    merge(applied)
                    report.accepted += batch.map(\.envelope)
                    return
                }
            }
            verifier = runStart
            try applyOne(batch[0])
            for o in batch.dropFirst() {
                switch try check(o.envelope) {
                case .duplicate: report.duplicates.append(o.envelope)
                case .refused(let error): report.refused.append((o.envelope, error))
                case .ready(let trial, let changes?): try applyOne(Opened(envelope: o.envelope, changes: changes, trial: trial))
                case .ready(let trial, nil):
                    try Self.insertEnvelope(db, space: sp, o.envelope)
                    verifier = trial
                    report.accepted.append(o.envelope)
                }
            }
        }

        var i = 0
        while i < incoming.count {
            let e = incoming[i]
            switch try check(e) {
            case .duplicate:
                report.duplicates.append(e)
            case .refused(let error):
                // Judged against a run not yet applied: apply it, then judge again.
                if !run.isEmpty {
                    try applyRun()
                    continue
                }
                report.refused.append((e, error))
            case .ready(let trial, let changes?):
                if run.isEmpty { runStart = verifier }
                run.append(Opened(envelope: e, changes: changes, trial: trial))
                verifier = trial
            case .ready(let trial, nil):
                // A relay's (stored unopened, in order).
                if !run.isEmpty {
                    try applyRun()
                    continue
                }
                try Self.insertEnvelope(db, space: sp, e)
                verifier = trial
                report.accepted.append(e)
            }
            i += 1
        }
        try applyRun()
        report.applied.documents = DocIDText.sortedStrings(touched)
        report.holds = try Self.loadFeedVector(db, space: sp)
        return report
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
