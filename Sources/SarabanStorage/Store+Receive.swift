import Foundation
import GRDB
import SarabanCore
import SarabanCrypto
import SarabanFeed

extension Store {
    // MARK: - Receiving

    /// Verifies, stores and (on a member with `identity`) opens and applies envelopes received
    /// for `space`, in ONE transaction.
    ///
    /// Each envelope, in the order given: it must be for `space`; a stored one (same author and
    /// start, same id) is a duplicate no-op, a different one its author signed is a fork. Its
    /// author must be **admitted** for its epoch by the space's roster (``SarabanFeed/Roster``:
    /// the author legitimately received a key of that epoch; a control envelope needs any
    /// membership); on a member it must open with a key of its epoch. Then `FeedVerifier`
    /// checks signature, chain and epoch, and a member applies the changes through the pending
    /// buffer, judging each control change against the roster of its causal past and each
    /// change against the owners of the documents it touches (a refused change is logged with
    /// no effect). A relay stores envelopes unopened, except control envelopes, which it opens
    /// with the public control key to fold the same roster.
    ///
    /// A member **holds** an envelope it cannot admit or open yet (its author's addition or its
    /// key may still be on the way): verified, kept apart (not in the feed vector, not served),
    /// at most ``maximumHeldEnvelopes`` / ``maximumHeldBytes`` per space, and retried after every
    /// batch, so an envelope arriving before the membership that admits it is applied as soon as
    /// that membership is. A relay refuses instead (the peer sends it again later).
    public func receiveEnvelopes(
        space: SpaceID, _ incoming: [Envelope], identity: SigningKeyPair?, receivedAt: Int64 = 0
    ) throws(StorageError) -> ReceiveReport {
        do {
            return try pool.writeWithoutTransaction { db in
                var report = ReceiveReport()
                try db.inTransaction(.immediate) {
                    var r = try Receiver(store: self, db: db, space: space, identity: identity, receivedAt: receivedAt)
                    report = try r.receive(incoming)
                    return .commit
                }
                return report
            }
        } catch {
            throw Self.mapError(error, path: path, doing: "store received envelopes")
        }
    }

    /// The position of `c`'s envelope: whether it was a control envelope, from the stored feed.
    static func isPublic(_ db: Database, space: Data, author: Data, seq: UInt64) throws -> Bool {
        try Int64.fetchOne(
            db,
            sql: "SELECT epoch FROM envelopes WHERE space = ? AND author = ? AND seq_start <= ? AND seq_end >= ? LIMIT 1",
            arguments: [space, author, Int64(seq), Int64(seq)]) == Int64(ControlEntry.publicEpoch)
    }
}

/// One receive transaction: the space's roster, keys and heads loaded once, the checks, the
/// runs of envelopes applied together, the held envelopes retried.
struct Receiver {
    let store: Store
    let db: Database
    let space: SpaceID
    let sp: Data
    let receivedAt: Int64
    /// The member identity (nil on a relay).
    let me: SigningKeyPair?
    var member: Bool { me != nil }
    var roster: Roster
    var rosterChanged = false {
        didSet { if rosterChanged { rosterEverChanged = true; rosterDirty = true } }
    }
    var rosterEverChanged = false
    /// The roster changed since the tables and keys were last refreshed from it.
    var rosterDirty = false
    var ring: [KeyRef: (epoch: UInt32, key: SymmetricKey)]
    var keys: [UInt32: [SymmetricKey]]
    var legacyMembers: [SigningPublicKey: SpaceMember]
    var verifier: FeedVerifier
    var document: DocID?
    var authors: [ReplicaID: SigningPublicKey] = [:]
    /// Per author, the range of its held envelopes.
    var heldAuthors: [SigningPublicKey: (first: UInt64, last: UInt64)] = [:]
    var heldCount = 0
    var heldBytes = 0
    /// Where the changes of this batch came from: per author replica, the envelopes noted (each
    /// holds exactly its header's sequence range, ``EnvelopePayload/decode(_:header:id:)``; two
    /// that cover one change are the same envelope noted twice, as the verifier admits one chain
    /// per author). Noted per envelope, not per change: a dictionary entry per change cost more
    /// than the judging it serves.
    var sources: [ReplicaID: [Source]] = [:]
    /// The envelope of the change judged last (its author's list in ``sources`` as it was then,
    /// and its position there): the next change is usually the next one in it, or in the
    /// envelope after it, found with no hashing.
    var lastSource: (replica: ReplicaID, list: [Source], index: Int)?
    var report = ReceiveReport()
    var touched = Set<DocID>()
    let existing: Statement
    let existingHeld: Statement

    init(store: Store, db: Database, space: SpaceID, identity: SigningKeyPair?, receivedAt: Int64) throws {
        self.store = store
        self.db = db
        self.space = space
        sp = Data(space.bytes)
        self.receivedAt = receivedAt
        let role = try Int.fetchOne(db, sql: "SELECT role FROM spaces WHERE id = ?", arguments: [sp])
        me = role == 0 ? identity : nil
        roster = try store.loadRoster(db, space: space)
        ring = role == 0 ? try Store.loadKeyring(db, space: sp) : [:]
        keys = Store.keysByEpoch(ring, canonical: roster.current.canonical)
        legacyMembers = try Store.loadMembers(db, space: sp)
        let heads = try Store.loadHeads(db, space: sp)
        for a in heads.keys { authors[ReplicaID(bytes: a.rawRepresentation)] = a }
        verifier = FeedVerifier(spaceID: space.bytes, knownEpochs: Set(keys.keys).union([ControlEntry.publicEpoch]), heads: heads)
        document = try String.fetchOne(db, sql: "SELECT doc FROM spaces WHERE id = ?", arguments: [sp]).flatMap(DocID.init)
        for row in try Row.fetchAll(
            db, sql: "SELECT author, min(seq_start), max(seq_end), count(*), sum(length(bytes)) FROM held WHERE space = ? GROUP BY author",
            arguments: [sp])
        {
            let a = try SigningPublicKey(rawRepresentation: [UInt8](row[0] as Data))
            heldAuthors[a] = (UInt64(row[1] as Int64), UInt64(row[2] as Int64))
            heldCount += row[3] as Int
            heldBytes += row[4] as Int
        }
        existing = try db.cachedStatement(sql: "SELECT id FROM envelopes WHERE space = ? AND author = ? AND seq_start = ?")
        existingHeld = try db.cachedStatement(sql: "SELECT id FROM held WHERE space = ? AND author = ? AND seq_start = ?")
        if role == nil { carried = false }
    }

    var carried = true

    /// One envelope of this batch as ``sources`` holds it.
    struct Source {
        var seqs: ClosedRange<UInt64>
        var author: SigningPublicKey
        var isPublic: Bool
    }
    /// A relay queued control changes in this batch that it has not judged yet.
    var controlsQueued = false

    /// What the checks of one received envelope found.
    enum Verdict {
        case duplicate
        case refused(EnvelopeError)
        case hold(String)
        /// Verified (`trial` is the verifier having accepted it); on a member (and for control
        /// envelopes on a relay), opened into `changes`.
        case ready(trial: FeedVerifier, changes: EnvelopePayload.Opened?)
    }

    struct Opened {
        var envelope: Envelope
        var changes: EnvelopePayload.Opened
        var trial: FeedVerifier
    }

    // MARK: The batch

    mutating func receive(_ incoming: [Envelope]) throws -> ReceiveReport {
        guard carried else {
            for e in incoming {
                report.refused.append(
                    (e, EnvelopeError(
                        .spaceNotCarried,
                        "this node does not carry space \(space.hex): join it (`saraban space join`) or, on a relay, "
                            + "carry it (`saraban space carry`)")))
            }
            return report
        }
        try process(incoming, fromHeld: false)
        try releaseHeld()
        // A key shared in a change still waiting for its past, once the roster knows its rekey.
        if member, rosterEverChanged, try adoptWaitingShares() { try releaseHeld() }
        if !member {
            try judgePendingControls()
            if rosterDirty { try refreshAuthority() }
        }
        if rosterEverChanged, let me { try store.sealBacklog(db, space: space, signer: me) }
        report.applied.documents = DocIDText.sortedStrings(touched)
        report.holds = try Store.loadFeedVector(db, space: sp)
        return report
    }

    /// Held envelopes get another chance whenever the batch may have admitted their authors
    /// or brought their keys; repeats while that releases something.
    mutating func releaseHeld() throws {
        var rounds = 0
        while heldCount > 0 && (rosterChanged || !report.accepted.isEmpty) && rounds < 64 {
            rounds += 1
            let before = report.released
            rosterChanged = false
            let rows = try Row.fetchAll(
                db, sql: "SELECT bytes, id FROM held WHERE space = ? ORDER BY author, seq_start", arguments: [sp])
            try db.execute(sql: "DELETE FROM held WHERE space = ?", arguments: [sp])
            heldAuthors = [:]
            heldCount = 0
            heldBytes = 0
            let envelopes = try rows.map { try Store.storedEnvelope(bytes: $0[0], id: $0[1]) }
            try process(envelopes, fromHeld: true)
            if report.released == before && !rosterChanged { break }
        }
    }

    /// Checks and stores `incoming` in order, applying consecutive opened envelopes together.
    mutating func process(_ incoming: [Envelope], fromHeld: Bool) throws {
        var run: [Opened] = []
        var runStart = verifier
        var i = 0
        while i < incoming.count {
            let e = incoming[i]
            switch try check(e) {
            case .duplicate:
                if !fromHeld { report.duplicates.append(e) }
            case .refused(let error):
                // Judged against a run not yet applied: apply it, then judge again.
                if !run.isEmpty {
                    try applyRun(&run, start: runStart)
                    continue
                }
                // A relay judges the control changes of this batch so far, then judges again
                // (a rekey and the first envelope of its epoch often travel together).
                if controlsQueued {
                    controlsQueued = false
                    try judgePendingControls()
                    if rosterDirty { try refreshAuthority() }
                    continue
                }
                report.refused.append((e, error))
            case .hold(let reason):
                if !run.isEmpty {
                    try applyRun(&run, start: runStart)
                    continue
                }
                try hold(e, reason: reason, fromHeld: fromHeld)
            case .ready(let trial, let changes?) where member:
                if e.header.epoch == ControlEntry.publicEpoch { try adoptSharedKeys(changes) }
                if run.isEmpty { runStart = verifier }
                run.append(Opened(envelope: e, changes: changes, trial: trial))
                verifier = trial
                if fromHeld { report.released += 1 }
            case .ready(let trial, let changes):
                // A relay's: stored unopened (a control envelope's changes queued for judging).
                if !run.isEmpty {
                    try applyRun(&run, start: runStart)
                    continue
                }
                try Store.insertEnvelope(db, space: sp, e)
                if let changes { try queueControls(changes, author: e.header.author) }
                verifier = trial
                report.accepted.append(e)
            }
            i += 1
        }
        try applyRun(&run, start: runStart)
    }

    // MARK: Checks

    /// Whether the roster admits `h`'s author for its epoch (nil) or why not.
    func notAdmitted(_ h: EnvelopeHeader) -> String? {
        let r = roster.current
        if r.hasGenesis { return r.refusal(of: h, in: space) }
        // A space without a membership log yet: control envelopes may bring its genesis; a
        // relay stores from its trusted peers, a member applies the legacy rules.
        if h.epoch == ControlEntry.publicEpoch || !member { return nil }
        let m = legacyMembers[h.author]
        guard let m, m.removedEpoch.map({ h.epoch < $0 }) ?? true else {
            return m == nil
                ? "\(h.author) is not a member of space \(space.hex)"
                : "\(h.author) was removed from space \(space.hex) at epoch \(m!.removedEpoch!)"
        }
        return nil
    }

    mutating func check(_ e: Envelope) throws -> Verdict {
        let h = e.header
        guard h.spaceID == space.bytes else {
            return .refused(
                EnvelopeError(
                    .wrongSpace, "envelope \(e.id) belongs to space \(Hex.encode(h.spaceID)), not \(space.hex): route it to its space"))
        }
        let authorBytes = Data(h.author.rawRepresentation)
        if h.seqStart <= verifier.head(of: h.author).lastSequence,
            let stored = try Data.fetchOne(existing, arguments: [sp, authorBytes, Int64(h.seqStart)])
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
            let storedID = try EnvelopeID(bytes: [UInt8](stored))
            return .refused(
                EnvelopeError(
                    .fork,
                    "\(h.author) signed two different envelopes at seq \(h.seqStart) in space \(space.hex) "
                        + "(stored \(storedID.hex), received \(e.id.hex)): the author forked its feed; keep both "
                        + "envelopes as proof and alert an administrator"))
        }
        if heldAuthors[h.author] != nil, let held = try Data.fetchOne(existingHeld, arguments: [sp, authorBytes, Int64(h.seqStart)]),
            [UInt8](held) == e.id.bytes
        {
            return .duplicate
        }
        // A node removed from the space cannot read what is written afterwards: say so, do not
        // hold it. (A node that joined, whose addition has not arrived yet, holds the key of the
        // epochs its invitation carried: it reads on.)
        if let me, roster.current.hasGenesis, !roster.current.isMember(me.publicKey), h.epoch != ControlEntry.publicEpoch,
            !roster.current.mayWrite(me.publicKey, epoch: h.epoch), keys[h.epoch] == nil
        {
            return .refused(
                EnvelopeError(
                    .wrongEpoch,
                    "envelope \(e.id) is sealed with epoch \(h.epoch) of space \(space.hex), whose key this node does "
                        + "not hold: this node was removed from the space and cannot read anything written afterwards"))
        }
        var why = notAdmitted(h)
        if let hook = store.testHooks?.admission { why = hook(h, why) }
        if let why {
            guard member else { return .refused(EnvelopeError(.notAMember, "envelope \(e.id) was refused: \(why): drop it")) }
            return .hold(why)
        }
        // Behind a held envelope of the same author: held too, in order.
        if let range = heldAuthors[h.author], h.seqStart > verifier.head(of: h.author).lastSequence + 1,
            h.seqStart <= range.last + 1
        {
            // A control envelope behind held ones may carry the very key they wait for: an admin
            // shares an epoch's key after the envelopes it sealed with it. Take the keys it shares
            // now (a box must open to the key the roster committed to, so a forged share adopts
            // nothing); the held envelopes then get another chance, this one with them.
            if member, h.epoch == ControlEntry.publicEpoch,
                let opened = try? EnvelopePayload.open(e, key: ControlKey.key(for: space))
            {
                _ = try adoptSharedKeys(opened)
            }
            return .hold("it follows an envelope of \(h.author) still held")
        }
        let isPublic = h.epoch == ControlEntry.publicEpoch
        if member && !isPublic && keys[h.epoch] == nil {
            return .hold("no key of epoch \(h.epoch) is held yet (its rekey or an admin's share may be on the way)")
        }
        var trial = verifier
        trial.knownEpochs.insert(h.epoch)
        do {
            try trial.accept(e)
        } catch {
            return .refused(Store.envelopeError(error, envelope: e, space: space, member: member))
        }
        if isPublic {
            do { return .ready(trial: trial, changes: try EnvelopePayload.open(e, key: ControlKey.key(for: space))) } catch {
                return .refused(error)
            }
        }
        guard member else { return .ready(trial: trial, changes: nil) }
        var lastError: EnvelopeError?
        for key in keys[h.epoch] ?? [] {
            do { return .ready(trial: trial, changes: try EnvelopePayload.open(e, key: key)) } catch {
                lastError = error
                if error.code != .undecryptable { break }
            }
        }
        let error = lastError ?? EnvelopeError(.undecryptable, "envelope \(e.id) does not open")
        // Sealed with a key of its epoch this node has not received yet (a concurrent rekey).
        if error.code == .undecryptable,
            roster.current.keys.contains(where: { $0.value.epoch == h.epoch && ring[$0.key] == nil })
        {
            return .hold("it is sealed with a key of epoch \(h.epoch) this node has not received yet")
        }
        return .refused(error)
    }

    mutating func hold(_ e: Envelope, reason: String, fromHeld: Bool) throws {
        guard heldCount < Store.maximumHeldEnvelopes, heldBytes + e.bytes.count <= Store.maximumHeldBytes else {
            report.refused.append(
                (e, EnvelopeError(
                    .notAMember,
                    "envelope \(e.id) was refused: \(reason); this node already holds \(heldCount) envelopes of space "
                        + "\(space.hex) waiting for their authors to be admitted; the peer will send it again")))
            return
        }
        guard e.isSignatureValid() else {
            report.refused.append((e, EnvelopeError(.tampered, "envelope \(e.id) does not carry its author's signature: drop it")))
            return
        }
        let h = e.header
        try db.execute(
            sql: """
                INSERT OR IGNORE INTO held(space, author, seq_start, seq_end, epoch, id, reason, received_at, bytes)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                sp, Data(h.author.rawRepresentation), Int64(h.seqStart), Int64(h.seqEnd), Int64(h.epoch), Data(e.id.bytes),
                reason, receivedAt, Data(e.bytes),
            ])
        let r = heldAuthors[h.author]
        heldAuthors[h.author] = (min(r?.first ?? h.seqStart, h.seqStart), max(r?.last ?? h.seqEnd, h.seqEnd))
        heldCount += 1
        heldBytes += e.bytes.count
        if !fromHeld { report.held.append((e, reason)) }
    }

    // MARK: Applying

    /// Applies a run of opened envelopes together (one pass through the pending buffer); if that
    /// fails, one envelope per savepoint, so one bad envelope leaves no trace.
    mutating func applyRun(_ run: inout [Opened], start: FeedVerifier) throws {
        guard !run.isEmpty else { return }
        let batch = run
        run.removeAll()
        for o in batch { note(o) }
        if batch.count > 1 {
            let saved = roster
            do {
                try db.inSavepoint {
                    let applied = batch.filter { appliesChanges($0) }
                    try apply(applied.flatMap(\.changes.changes), encoded: applied.flatMap(\.changes.bytes))
                    for o in batch { try Store.insertEnvelope(db, space: sp, o.envelope) }
                    return .commit
                }
                report.accepted += batch.map(\.envelope)
                return
            } catch let error as StorageError where error.code == .wrongSpace || error.code == .corrupt {
                roster = saved
            } catch is EditError {
                roster = saved
            }
        }
        verifier = start
        for o in batch {
            let trial: FeedVerifier
            let changes: EnvelopePayload.Opened
            if o.envelope.id == batch[0].envelope.id {
                (trial, changes) = (o.trial, o.changes)
            } else {
                switch try check(o.envelope) {
                case .duplicate:
                    report.duplicates.append(o.envelope)
                    continue
                case .refused(let error):
                    report.refused.append((o.envelope, error))
                    continue
                case .hold(let reason):
                    try hold(o.envelope, reason: reason, fromHeld: false)
                    continue
                case .ready(let t, let c):
                    guard let c else { continue }
                    (trial, changes) = (t, c)
                }
            }
            let saved = roster
            do {
                try db.inSavepoint {
                    if appliesChanges(o) { try apply(changes.changes, encoded: changes.bytes) }
                    try Store.insertEnvelope(db, space: sp, o.envelope)
                    return .commit
                }
            } catch let error as StorageError where error.code == .wrongSpace || error.code == .corrupt {
                roster = saved
                report.refused.append((o.envelope, EnvelopeError(.invalidContents, "envelope \(o.envelope.id) was refused: \(error.message)")))
                continue
            } catch let error as EditError {
                roster = saved
                report.refused.append((o.envelope, EnvelopeError(.invalidContents, "envelope \(o.envelope.id) was refused: \(error)")))
                continue
            }
            verifier = trial
            report.accepted.append(o.envelope)
        }
    }

    /// Takes at once the keys a control envelope shares with this node (`share` entries) whose
    /// commitment the roster already holds (an accepted rekey made them), before its changes are
    /// applied: a share depends on everything its admin had seen, which may include envelopes
    /// sealed with that very key, so waiting for its causal past would wait for ever. The box
    /// must open to exactly the committed key, so whoever sent it, it is that epoch's key.
    @discardableResult
    mutating func adoptSharedKeys(_ opened: EnvelopePayload.Opened) throws -> Bool {
        try adoptSharedKeys(opened.changes)
    }

    /// ``adoptSharedKeys(_:)`` for the changes of the space waiting in the pending buffer.
    mutating func adoptWaitingShares() throws -> Bool {
        let rows = try Data.fetchAll(db, sql: "SELECT bytes FROM pending WHERE space = ?", arguments: [sp])
        return try adoptSharedKeys(rows.compactMap { try? Change.decode([UInt8]($0)) })
    }

    mutating func adoptSharedKeys(_ changes: [Change]) throws -> Bool {
        guard let me, let doc = document else { return false }
        var adopted = false
        for c in changes {
            guard let (entries, malformed) = ControlChange.entries(of: c, document: doc), !malformed else { continue }
            for case .share(let ref, let node, let box) in entries where node.publicKey == me.publicKey && ring[ref] == nil {
                guard let info = roster.current.keys[ref], let commitment = info.commitment,
                    var raw = try? SealedBox.open(box, with: me)
                else { continue }
                defer { for i in raw.indices { raw[i] = 0 } }
                guard let key = try? SymmetricKey(SecureBytes(raw)), KeyCommitment.commit(key) == commitment else { continue }
                try Store.insertKey(db, space: sp, ref: ref, epoch: info.epoch, key: key)
                ring[ref] = (info.epoch, key)
                keys = Store.keysByEpoch(ring, canonical: roster.current.canonical)
                rosterChanged = true  // held envelopes sealed with it get another chance
                adopted = true
            }
        }
        return adopted
    }

    /// Whether `o`'s changes are applied as it is stored (always, unless a simulator planted a bug).
    func appliesChanges(_ o: Opened) -> Bool { store.testHooks?.appliesChanges?(o.envelope) ?? true }

    /// Writes the roster's decisions to the tables and takes the keys it sealed to this node,
    /// so the envelopes that follow in this batch are judged and opened with them.
    mutating func refreshAuthority() throws {
        rosterDirty = false
        try store.materialize(db, space: space, roster: roster, identity: me)
        if member {
            ring = try Store.loadKeyring(db, space: sp)
            keys = Store.keysByEpoch(ring, canonical: roster.current.canonical)
        }
    }

    mutating func note(_ o: Opened) {
        let h = o.envelope.header
        let replica = ReplicaID(bytes: h.author.rawRepresentation)
        authors[replica] = h.author
        sources[replica, default: []].append(
            Source(seqs: h.seqStart...h.seqEnd, author: h.author, isPublic: h.epoch == ControlEntry.publicEpoch))
        lastSource = nil  // holds the list as it was
    }

    mutating func apply(_ changes: [Change], encoded: [[UInt8]]) throws {
        let store = self.store
        let result = try store.applyChanges(db, space: sp, changes, encoded: encoded, receivedAt: receivedAt) { c in
            try self.judge(c)
        }
        report.applied.applied += result.report.applied
        report.applied.duplicates += result.report.duplicates
        report.applied.waiting = result.report.waiting
        report.applied.refused += result.report.refused
        report.refusedChanges += result.refused
        touched.formUnion(result.touched)
        if rosterDirty { try refreshAuthority() }
        // A space without a membership log: its legacy membership fields decide, re-read after
        // every change to them (the envelopes that follow are judged by the new membership).
        if !roster.current.hasGenesis, member, let doc = document, result.touched.contains(doc) {
            try store.refreshSpace(db, space: space, identity: me!)
            legacyMembers = try Store.loadMembers(db, space: sp)
            ring = try Store.loadKeyring(db, space: sp)
            keys = Store.keysByEpoch(ring, canonical: roster.current.canonical)
            rosterChanged = true
        }
    }

    /// The authority rules for one change about to be applied (nil: apply it).
    mutating func judge(_ c: Change) throws -> String? {
        let source = try self.source(of: c)
        let doc = document ?? ControlChange.genesisDocument(c)
        // Most changes do not touch the membership document: asked first, so they skip the rest.
        let touchesDoc = doc.map(c.touches) ?? false
        if let doc, touchesDoc, let (entries, malformed) = ControlChange.entries(of: c, document: doc) {
            guard source.isPublic else { return "control entries may only travel in a control envelope" }
            guard !malformed else { return "a control entry does not parse" }
            guard ControlChange.onlyControl(c, document: doc) else { return "a control change may hold nothing but control entries" }
            let cc = ControlChange(author: source.author, past: ChangeContext(c), entries: entries)
            let refusal = roster.receive(cc)
            try Store.saveControl(db, space: sp, cc, verdict: .some(refusal))
            if let refusal { return refusal.message }
            rosterChanged = true
            if document == nil {
                document = doc
                try db.execute(sql: "UPDATE spaces SET doc = ? WHERE id = ?", arguments: [doc.description, sp])
            }
            return nil
        }
        if source.isPublic { return "a control envelope may hold nothing but control changes" }
        // Other edits of the membership document (office names, clearances): admins only.
        if touchesDoc, roster.current.hasGenesis,
            !roster.state(inPastOf: ChangeContext(c)).isAdmin(source.author)
        {
            return "only an admin of the space may change its membership document"
        }
        return nil
    }

    mutating func source(of c: Change) throws -> (author: SigningPublicKey, isPublic: Bool) {
        if let last = lastSource, last.replica == c.author {
            let (list, i) = (last.list, last.index)
            // The same envelope, or the one after it (a run is applied in order).
            if list[i].seqs.contains(c.seq) { return (list[i].author, list[i].isPublic) }
            if i + 1 < list.count && list[i + 1].seqs.contains(c.seq) {
                lastSource!.index = i + 1
                return (list[i + 1].author, list[i + 1].isPublic)
            }
        }
        if let list = sources[c.author], let i = list.lastIndex(where: { $0.seqs.contains(c.seq) }) {
            lastSource = (c.author, list, i)
            return (list[i].author, list[i].isPublic)
        }
        guard let author = try authors[c.author] ?? authorKey(c.author) else {
            throw StorageError(.corrupt, "no envelope holds change \(c.id)", path: store.path)
        }
        return (author, try Store.isPublic(db, space: sp, author: Data(author.rawRepresentation), seq: c.seq))
    }

    func authorKey(_ r: ReplicaID) throws -> SigningPublicKey? {
        try Data.fetchOne(
            db, sql: "SELECT author FROM feed_heads WHERE space = ? AND substr(author, 1, 16) = ?",
            arguments: [sp, Data(r.bytes)]
        ).map { try SigningPublicKey(rawRepresentation: [UInt8]($0)) }
    }

    /// The membership document a genesis change creates or appends to (before the space knows its document).
    // MARK: A relay's roster

    /// A relay stores control envelopes unopened for its peers but reads their control changes,
    /// judged once the relay holds their whole causal past (so it judges from the same past as
    /// the members).
    mutating func queueControls(_ opened: EnvelopePayload.Opened, author: SigningPublicKey) throws {
        for c in opened.changes {
            // Before a genesis is accepted the document is unknown: only a genesis is queued (under
            // the document it creates), and the document is named once one is accepted (in
            // ``judgePendingControls()``). Named from the first genesis read, a trusted peer's
            // forged genesis hid the real log.
            let cc: ControlChange?
            if let document {
                cc = ControlChange.parse(c, document: document, author: author)
            } else if let doc = ControlChange.genesisDocument(c), let g = ControlChange.parse(c, document: doc, author: author),
                g.entries.contains(where: \.isGenesis)
            {
                cc = g
            } else {
                cc = nil
            }
            guard let cc else { continue }
            try Store.saveControl(db, space: sp, cc, verdict: nil)
            controlsQueued = true
        }
    }

    /// The membership document genesis `g` creates, read back from its stored control envelope.
    func genesisDocument(of g: ControlChange) throws -> DocID? {
        let seq = Int64(g.id.seq)
        guard
            let bytes = try Data.fetchOne(
                db,
                sql: "SELECT bytes FROM envelopes WHERE space = ? AND author = ? AND seq_start <= ? AND seq_end >= ? AND epoch = ?",
                arguments: [sp, Data(g.author.rawRepresentation), seq, seq, Int64(ControlEntry.publicEpoch)]),
            let e = try? Envelope.decode([UInt8](bytes)),
            let opened = try? EnvelopePayload.open(e, key: ControlKey.key(for: space))
        else { return nil }
        return opened.changes.first(where: { $0.seq == g.id.seq }).flatMap(ControlChange.genesisDocument)
    }

    /// Control changes stored before the genesis named the membership document were not
    /// queued (nothing told them from other changes then): queue them now, from the space's
    /// stored control envelopes, so they are judged like the rest (once their past is held).
    mutating func queueStoredControls(document doc: DocID) throws {
        let rows = try Row.fetchAll(
            db, sql: "SELECT id, bytes FROM envelopes WHERE space = ? AND epoch = ?",
            arguments: [sp, Int64(ControlEntry.publicEpoch)])
        for row in rows {
            guard let id = try? EnvelopeID(bytes: [UInt8](row[0] as Data)),
                let e = try? Envelope.decode([UInt8](row[1] as Data), storedID: id),
                let opened = try? EnvelopePayload.open(e, key: ControlKey.key(for: space))
            else { continue }
            for c in opened.changes {
                guard let cc = ControlChange.parse(c, document: doc, author: e.header.author),
                    try Int.fetchOne(
                        db, sql: "SELECT 1 FROM controls WHERE space = ? AND author = ? AND seq = ?",
                        arguments: [sp, Data(e.header.author.rawRepresentation), Int64(c.seq)]) == nil
                else { continue }
                try Store.saveControl(db, space: sp, cc, verdict: nil)
                controlsQueued = true
            }
        }
    }

    mutating func judgePendingControls() throws {
        let rows = try Row.fetchAll(
            db, sql: "SELECT author, seq, deps, entries FROM controls WHERE space = ? AND verdict IS NULL ORDER BY n", arguments: [sp])
        guard !rows.isEmpty else { return }
        var pending = try rows.compactMap { try Store.controlChange($0) }
        var held: [ReplicaID: UInt64] = [:]
        for (a, h) in try Store.loadHeads(db, space: sp) { held[ReplicaID(bytes: a.rawRepresentation)] = h.lastSequence }
        var accepted: ControlChange?
        for (c, refusal) in roster.receiveReady(&pending, held: { held[$0] ?? 0 }) {
            try Store.saveControl(db, space: sp, c, verdict: .some(refusal))
            if refusal == nil {
                rosterChanged = true
                if document == nil, c.entries.contains(where: \.isGenesis) { accepted = c }
            }
        }
        // The accepted genesis names the document: the space's other stored control changes can
        // now be told from its other changes, and are judged like the rest.
        if let accepted, let doc = try genesisDocument(of: accepted) {
            document = doc
            try db.execute(sql: "UPDATE spaces SET doc = ? WHERE id = ?", arguments: [doc.description, sp])
            try queueStoredControls(document: doc)
            try judgePendingControls()
        }
    }
}
