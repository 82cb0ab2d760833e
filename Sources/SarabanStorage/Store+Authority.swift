import Foundation
import GRDB
import SarabanCore
import SarabanCrypto
import SarabanFeed

/// What the store knows about a space's authority, for status and the node's decisions.
public struct SpaceAuthority: Sendable, Hashable {
    /// The space has a membership log (a genesis); false: a space made before it (legacy rules).
    public var hasLog: Bool
    public var creator: SigningPublicKey?
    public var admins: Set<SigningPublicKey>
    public var relays: Set<SigningPublicKey>
    /// Former members that hold the current key: nothing is sealed until an admin rekeys.
    public var leakedTo: Set<SigningPublicKey>
    /// Members lacking a key an admin can share with them.
    public var lacking: [SigningPublicKey: [KeyRef]]
    /// Why this node's local changes wait unsealed (nil: they are sealed as they are made).
    public var sealWait: String?
    /// This node's changes not yet sealed into envelopes.
    public var unsealed: Int
    /// Envelopes held until their author is admitted or their key arrives.
    public var held: Int
    /// Received changes refused (not an admin, not an owner, malformed control entry).
    public var refusedChanges: Int
    /// Control changes refused, newest first (at most 20): author, seq, reason.
    public var refusedControls: [RefusedChange]
    /// The current key's reference (roster spaces).
    public var keyRef: KeyRef?
}

/// A received change that had no effect, and why.
public struct RefusedChange: Sendable, Hashable, Codable {
    public var author: String
    public var seq: UInt64
    public var document: String?
    public var reason: String
    public var at: Int64
}

extension Store {
    /// Envelopes a member holds per space until their author is admitted or their key arrives;
    /// beyond this, new ones are refused (the peer sends them again later).
    public static let maximumHeldEnvelopes = 4096
    /// The same bound in bytes.
    public static let maximumHeldBytes = 64 << 20

    // MARK: - The roster

    /// The replica whose legacy genesis a space accepts: the creator of its membership document,
    /// this node for its own default space, or a relay's pin (`space carry --creator`).
    static func legacyCreator(_ db: Database, space: Data, replica: ReplicaID) throws -> ReplicaID? {
        if let doc = try String.fetchOne(db, sql: "SELECT doc FROM spaces WHERE id = ?", arguments: [space]).flatMap(DocID.init) {
            return doc.op.replica
        }
        if let pin = try String.fetchOne(
            db, sql: "SELECT value FROM meta WHERE key = ?", arguments: ["s.space.\(Hex.encode([UInt8](space))).creator"]),
            let key = try? NodeID(parsing: pin)
        {
            return ReplicaID(bytes: key.publicKey.rawRepresentation)
        }
        if let def = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'default_space'"), def == space {
            return replica
        }
        return nil
    }

    /// The space's roster: the cached one while the stored log is unchanged, else rebuilt. A load
    /// made after this transaction wrote control rows passes `cache: false` (a rolled-back row's
    /// number can be used again, so only committed states may be remembered).
    func loadRoster(_ db: Database, space: SpaceID, cache: Bool = true) throws -> Roster {
        let sp = Data(space.bytes)
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT coalesce(max(n), 0), count(verdict), (SELECT doc FROM spaces WHERE id = ?)
                FROM controls WHERE space = ?
                """,
            arguments: [sp, sp])
        let key = RosterCache.Key(last: row?[0] ?? 0, judged: row?[1] ?? 0, document: row?[2])
        if let r = rosters.get(space, key) { return r }
        let r = try Self.loadRoster(db, space: space, replica: replica)
        if cache { rosters.put(space, key, r) }
        return r
    }

    /// The space's roster, rebuilt from its stored control log (verdicts are not judged again).
    static func loadRoster(_ db: Database, space: SpaceID, replica: ReplicaID) throws -> Roster {
        let sp = Data(space.bytes)
        let creator = try legacyCreator(db, space: sp, replica: replica)
        var roster = Roster(space: space, legacyCreator: creator)
        // A relay with no pin takes the first legacy genesis its trusted peers bring (Docs/CLI.md, space carry).
        roster.trustFirstLegacyGenesis = creator == nil
        let rows = try Row.fetchAll(
            db, sql: "SELECT author, seq, deps, entries, verdict, reason FROM controls WHERE space = ? AND verdict IS NOT NULL ORDER BY n",
            arguments: [sp])
        for row in rows {
            guard let c = try controlChange(row) else { continue }
            let verdict: Int = row[4]
            roster.restore(c, refusal: verdict == 1 ? nil : ControlRefusal(row[5] as String? ?? "refused"))
        }
        return roster
    }

    static func controlChange(_ row: Row) throws -> ControlChange? {
        let author = try SigningPublicKey(rawRepresentation: [UInt8](row[0] as Data))
        let deps = try VersionVector.decode([UInt8](row[2] as Data))
        let entries = (row[3] as String).split(separator: "\n").compactMap { ControlEntry(parsing: String($0)) }
        let ctx = ChangeContext(
            change: ChangeID(author: ReplicaID(bytes: author.rawRepresentation), seq: UInt64(row[1] as Int64)), time: 0, deps: deps)
        return ControlChange(author: author, past: ctx, entries: entries)
    }

    /// Records a control change and its verdict (nil verdict: pending, a relay waiting for its past).
    static func saveControl(_ db: Database, space: Data, _ c: ControlChange, verdict: ControlRefusal??) throws {
        let v: Int? = verdict.map { $0 == nil ? 1 : 0 }
        try db.execute(
            sql: """
                INSERT INTO controls(space, author, seq, deps, entries, verdict, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(space, author, seq) DO UPDATE SET verdict = excluded.verdict, reason = excluded.reason
                """,
            arguments: [
                space, Data(c.author.rawRepresentation), Int64(c.id.seq), Data(c.past.deps.encoded()),
                c.entries.map(\.text).joined(separator: "\n"), v, verdict.flatMap { $0?.message },
            ])
    }

    static func recordRefusal(
        _ db: Database, space: Data, _ id: ChangeID, document: DocID?, reason: String, at: Int64
    ) throws {
        try db.execute(
            sql: "INSERT OR IGNORE INTO refused_changes(space, author, seq, document, reason, at) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [space, Data(id.author.bytes), Int64(id.seq), document?.description, reason, at])
    }

    // MARK: - Keys

    static func loadKeyring(_ db: Database, space: Data) throws -> [KeyRef: (epoch: UInt32, key: SymmetricKey)] {
        var out: [KeyRef: (epoch: UInt32, key: SymmetricKey)] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT ref, epoch, key FROM keyring WHERE space = ?", arguments: [space]) {
            guard let ref = KeyRef(parsing: Substring(row[0] as String)) else { continue }
            var bytes = [UInt8](row[2] as Data)
            defer { for i in bytes.indices { bytes[i] = 0 } }
            out[ref] = (UInt32(row[1] as Int64), try SymmetricKey(SecureBytes(bytes)))
        }
        return out
    }

    /// The keys of each epoch, the epoch's own key first.
    static func keysByEpoch(_ ring: [KeyRef: (epoch: UInt32, key: SymmetricKey)], canonical: [KeyRef])
        -> [UInt32: [SymmetricKey]]
    {
        var out: [UInt32: [SymmetricKey]] = [:]
        for (ref, k) in ring.sorted(by: { $0.key < $1.key }) {
            if canonical.indices.contains(Int(k.epoch)) && canonical[Int(k.epoch)] == ref {
                out[k.epoch, default: []].insert(k.key, at: 0)
            } else {
                out[k.epoch, default: []].append(k.key)
            }
        }
        return out
    }

    static func insertKey(_ db: Database, space: Data, ref: KeyRef, epoch: UInt32, key: SymmetricKey) throws {
        var bytes = key.secret.copyBytes()
        defer { for i in bytes.indices { bytes[i] = 0 } }
        try db.execute(
            sql: "INSERT OR IGNORE INTO keyring(space, ref, epoch, key) VALUES (?, ?, ?, ?)",
            arguments: [space, ref.description, Int64(epoch), Data(bytes)])
    }

    // MARK: - Materialising the roster

    /// Writes what the roster decides into the tables the node reads: members (with admin flag
    /// and rights), the keys sealed to `identity` (each checked against its commitment), the
    /// current epoch and key, and whether local changes must wait unsealed. Does nothing for a
    /// space without a membership log.
    func materialize(_ db: Database, space: SpaceID, roster: Roster, identity: SigningKeyPair?) throws {
        let r = roster.current
        guard r.hasGenesis, let epoch = r.epoch, let current = r.currentKey else { return }
        let sp = Data(space.bytes)
        var everyone = r.members
        for (_, hs) in r.holders { everyone.formUnion(hs) }
        let existing = try Self.loadMembers(db, space: sp)
        for key in everyone {
            let rights = r.rights(of: key).sorted()
            let member = r.isMember(key)
            var m = existing[key] ?? SpaceMember(key: key)
            m.sinceEpoch = r.joined[key] ?? rights.first ?? 0
            m.removedEpoch = member ? nil : (rights.last.map { $0 + 1 } ?? 0)
            try Self.upsertMember(db, space: sp, m)
            try db.execute(
                sql: "UPDATE space_members SET admin = ?, rights = ? WHERE space = ? AND member = ?",
                arguments: [r.isAdmin(key), rights.map(String.init).joined(separator: ","), sp, Data(key.rawRepresentation)])
        }
        for (key, _) in existing where !everyone.contains(key) {
            try db.execute(
                sql: "DELETE FROM space_members WHERE space = ? AND member = ?", arguments: [sp, Data(key.rawRepresentation)])
        }
        var ring = try Self.loadKeyring(db, space: sp)
        if let me = identity {
            for box in r.boxes where box.member == me.publicKey && ring[box.key] == nil {
                guard let info = r.keys[box.key], let commitment = info.commitment else { continue }
                do {
                    var raw = try SealedBox.open(box.box, with: me)
                    defer { for i in raw.indices { raw[i] = 0 } }
                    let key = try SymmetricKey(SecureBytes(raw))
                    guard KeyCommitment.commit(key) == commitment else {
                        logger.warning(
                            "a key sealed to this node does not match its commitment; not adopted",
                            metadata: ["space": "\(space)", "key": "\(box.key)", "by": "\(box.by)"])
                        continue
                    }
                    try Self.insertKey(db, space: sp, ref: box.key, epoch: info.epoch, key: key)
                    ring[box.key] = (info.epoch, key)
                } catch {
                    logger.warning("a key sealed to this node does not open", metadata: ["space": "\(space)", "key": "\(box.key)"])
                }
            }
        }
        var wait: String?
        if let me = identity {
            if !r.isMember(me.publicKey) {
                wait = nil  // not a member: local writes are refused, nothing to seal
            } else if !r.leakedTo.isEmpty {
                wait = "the current key is also held by a removed node: waiting for an admin to rotate it"
            } else if ring[current] == nil {
                wait = "this node does not hold the key of epoch \(epoch) yet: waiting for an admin to share it"
            }
        }
        try db.execute(
            sql: "UPDATE spaces SET epoch = ?, key_ref = ?, seal_wait = ? WHERE id = ?",
            arguments: [Int64(epoch), current.description, wait, sp])
    }

    // MARK: - Reading

    /// The authority state of `space` for `saraban status` and the node's checks.
    public func authority(_ space: SpaceID) throws(StorageError) -> SpaceAuthority {
        try read { db in
            let sp = Data(space.bytes)
            let roster = try loadRoster(db, space: space)
            let r = roster.current
            var lacking: [SigningPublicKey: [KeyRef]] = [:]
            for (m, k) in r.lacking { lacking[m, default: []].append(k) }
            let row = try Row.fetchOne(db, sql: "SELECT seal_wait, next_seq FROM spaces WHERE id = ?", arguments: [sp])
            let head = try Int64.fetchOne(
                db, sql: "SELECT max(last_seq) FROM feed_heads WHERE space = ? AND substr(author, 1, 16) = ?",
                arguments: [sp, Data(replica.bytes)]) ?? 0
            let nextSeq: Int64 = row?[1] ?? 1
            var refused: [RefusedChange] = []
            for c in roster.refused.keys.sorted(by: >).prefix(20) {
                refused.append(
                    RefusedChange(author: c.author.description, seq: c.seq, document: nil, reason: roster.refused[c]!.message, at: 0))
            }
            return SpaceAuthority(
                hasLog: r.hasGenesis, creator: r.creator, admins: r.admins, relays: r.relays, leakedTo: r.leakedTo,
                lacking: lacking, sealWait: row?[0], unsealed: Int(max(0, nextSeq - 1 - head)),
                held: try Int.fetchOne(db, sql: "SELECT count(*) FROM held WHERE space = ?", arguments: [sp]) ?? 0,
                refusedChanges: try Int.fetchOne(db, sql: "SELECT count(*) FROM refused_changes WHERE space = ?", arguments: [sp])
                    ?? 0,
                refusedControls: refused, keyRef: r.currentKey)
        }
    }

    /// Member spaces that have no membership log yet (made before it, or left for later).
    public func memberSpacesWithoutLog() throws(StorageError) -> [SpaceID] {
        try read { db in
            try Data.fetchAll(
                db,
                sql: """
                    SELECT id FROM spaces WHERE role = 0
                    AND NOT EXISTS (SELECT 1 FROM controls c WHERE c.space = spaces.id AND c.verdict = 1)
                    """
            ).compactMap { SpaceID(bytes: [UInt8]($0)) }
        }
    }

    /// The space's roster as stored (for the node's own decisions: is this node an admin, who
    /// lacks which key).
    public func roster(_ space: SpaceID) throws(StorageError) -> Roster {
        try read { db in try loadRoster(db, space: space) }
    }

    /// Received changes of `space` that had no effect, newest first.
    public func refusedChanges(_ space: SpaceID, limit: Int = 100) throws(StorageError) -> [RefusedChange] {
        try read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT author, seq, document, reason, at FROM refused_changes WHERE space = ? ORDER BY at DESC, seq DESC LIMIT ?",
                arguments: [Data(space.bytes), limit]
            ).map { row in
                RefusedChange(
                    author: ReplicaID(bytes: [UInt8](row[0] as Data)).description, seq: UInt64(row[1] as Int64),
                    document: row[2], reason: row[3], at: row[4])
            }
        }
    }
}

extension Store {
    /// Applies the space's authority rules to this node's own new changes, before they are
    /// sealed: control changes are judged against the roster (and recorded), other edits of the
    /// membership document need an admin. Throws ``StorageError/Code/notAllowed`` (the whole
    /// write rolls back). Returns whether the membership document was touched.
    func judgeLocal(
        _ db: Database, space: SpaceID, _ changes: [Change], signer: SigningKeyPair, touched: (DocID) -> Bool
    ) throws -> Bool {
        let sp = Data(space.bytes)
        let stored = try String.fetchOne(db, sql: "SELECT doc FROM spaces WHERE id = ?", arguments: [sp]).flatMap(DocID.init)
        let genesisDoc = changes.lazy.compactMap(ControlChange.genesisDocument).first
        guard let doc = stored ?? genesisDoc, touched(doc) || genesisDoc != nil else { return false }
        var roster = try loadRoster(db, space: space)
        for c in changes {
            if let (entries, malformed) = ControlChange.entries(of: c, document: doc) {
                guard !malformed, ControlChange.onlyControl(c, document: doc) else {
                    throw StorageError(.notAllowed, "a control change may hold nothing but well-formed control entries", path: path)
                }
                let cc = ControlChange(author: signer.publicKey, past: ChangeContext(c), entries: entries)
                if let refusal = roster.receive(cc) {
                    throw StorageError(.notAllowed, "the space's rules refuse this membership change: \(refusal.message)", path: path)
                }
                try Self.saveControl(db, space: sp, cc, verdict: .some(nil))
                if stored == nil { try db.execute(sql: "UPDATE spaces SET doc = ? WHERE id = ?", arguments: [doc.description, sp]) }
            } else if roster.current.hasGenesis, c.touches(doc), !roster.current.isAdmin(signer.publicKey) {
                throw StorageError(
                    .notAllowed,
                    "only an admin of the space may change its membership document (names, clearances); ask an admin",
                    path: path)
            }
        }
        return true
    }
}

/// Rosters by space, each with the state of the log it was folded from (last row, rows judged,
/// the membership document): a batch reuses the fold while nothing was added to the log.
final class RosterCache: @unchecked Sendable {
    struct Key: Hashable {
        var last: Int64
        var judged: Int64
        var document: String?
    }

    private let lock = NSLock()
    private var entries: [SpaceID: (key: Key, roster: Roster)] = [:]

    func get(_ space: SpaceID, _ key: Key) -> Roster? {
        lock.lock()
        defer { lock.unlock() }
        guard let e = entries[space], e.key == key else { return nil }
        return e.roster
    }

    func put(_ space: SpaceID, _ key: Key, _ roster: Roster) {
        lock.lock()
        defer { lock.unlock() }
        entries[space] = (key, roster)
    }
}
