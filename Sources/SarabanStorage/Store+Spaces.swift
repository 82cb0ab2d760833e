import Foundation
import GRDB
import SarabanCore
import SarabanCrypto
import SarabanFeed

/// The reserved document that records a space's membership, as ordinary signed changes in the
/// space itself (so membership replicates and merges like any other edit).
///
/// | field | type | holds |
/// |---|---|---|
/// | `name` | register | the space's name |
/// | `members` | set | node id texts of the current members (add-wins) |
/// | `office.<node id>` | register | the member's office name |
/// | `epoch` | register (int) | the current key epoch |
/// | `keys` | list | `"<epoch> <node id> <base64 sealed box>"`: epoch keys sealed to each member (rekey records) |
public enum SpaceDocument {
    public static let kind = "space"
    public static let name = "name"
    public static let members = "members"
    public static let epoch = "epoch"
    public static let keys = "keys"
    public static func office(_ node: NodeID) -> String { "office." + node.text }

    /// A `keys` list entry: `key` sealed to `member` for `epoch`.
    public static func keyEntry(epoch: UInt32, member: NodeID, key: SymmetricKey) throws(CryptoError) -> String {
        let box = try SealedBox.seal(key.secret.copyBytes(), to: member.publicKey)
        return "\(epoch) \(member.text) \(Data(box).base64EncodedString())"
    }
}

/// One member of a space.
public struct SpaceMember: Sendable, Hashable {
    public var key: SigningPublicKey
    public var office: String
    public var addedBy: SigningPublicKey?
    public var sinceEpoch: UInt32
    /// The epoch whose rotation removed the member (its envelopes of earlier epochs stay acceptable).
    public var removedEpoch: UInt32?
    /// An admin of the space (spaces with a membership log; see ``Roster``).
    public var isAdmin = false

    public init(
        key: SigningPublicKey, office: String = "", addedBy: SigningPublicKey? = nil, sinceEpoch: UInt32 = 0,
        removedEpoch: UInt32? = nil
    ) {
        self.key = key
        self.office = office
        self.addedBy = addedBy
        self.sinceEpoch = sinceEpoch
        self.removedEpoch = removedEpoch
    }

    public var isActive: Bool { removedEpoch == nil }
    public var nodeID: NodeID { key.nodeID }
}

/// What the node knows about one space it carries.
public struct SpaceInfo: Sendable, Hashable {
    public var id: SpaceID
    public var name: String
    public var role: NodeRole
    /// The epoch new envelopes are sealed in (members).
    public var epoch: UInt32
    /// Epochs whose keys this node holds (empty for a relay).
    public var keyEpochs: [UInt32]
    /// The membership document, once the space has one.
    public var document: DocID?
    public var members: [SpaceMember]
    /// Documents of the space (the membership document excluded).
    public var documents: Int
    public var isDefault: Bool
}

extension Store {
    // MARK: - Default space

    static func defaultSpace(_ db: Database, path: String) throws -> SpaceID {
        guard let data = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'default_space'"),
            let id = SpaceID(bytes: [UInt8](data))
        else {
            throw StorageError(
                .notFound,
                "this node has no default space (a relay carries spaces but writes none); name a space with --space",
                path: path)
        }
        return id
    }

    /// The space `saraban init` created ("office"), or nil on a relay.
    public func defaultSpace() throws(StorageError) -> SpaceID? {
        try read { db in try? Self.defaultSpace(db, path: path) }
    }

    /// Makes this database a relay's: drops the default member space created with the schema.
    /// Only valid on a fresh database (nothing written yet).
    public func becomeRelay() throws(StorageError) {
        try writeTransaction("become a relay") { db in
            if let id = try? Self.defaultSpace(db, path: path) {
                try db.execute(sql: "DELETE FROM spaces WHERE id = ?", arguments: [Data(id.bytes)])
            }
            try db.execute(sql: "DELETE FROM meta WHERE key = 'default_space'")
        }
    }

    // MARK: - Creating and joining

    /// Records a space: its row, keys and members, in one transaction.
    ///
    /// - Throws: ``StorageError/Code/alreadyExists`` semantics as `.io` with a clear message if the
    ///   space is already carried.
    public func addSpace(
        id: SpaceID, name: String, role: NodeRole, epoch: UInt32 = 0, document: DocID? = nil,
        keys: [KeyRef: (epoch: UInt32, key: SymmetricKey)] = [:], members: [SpaceMember] = [], createdAt: Int64 = 0
    ) throws(StorageError) {
        try writeTransaction("add a space") { db in
            let sp = Data(id.bytes)
            if let existing = try Int.fetchOne(db, sql: "SELECT role FROM spaces WHERE id = ?", arguments: [sp]) {
                throw StorageError(
                    .io,
                    "this node already carries space \(id.hex) (as a \(existing == 1 ? "relay" : "member")); "
                        + "`saraban space list` shows it",
                    path: path)
            }
            try db.execute(
                sql: "INSERT INTO spaces(id, name, role, epoch, next_seq, doc, created_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
                arguments: [sp, name, Int(role.rawValue), Int64(epoch), document?.description, createdAt])
            for (ref, k) in keys { try Self.insertKey(db, space: sp, ref: ref, epoch: k.epoch, key: k.key) }
            for m in members { try Self.upsertMember(db, space: sp, m) }
            // A relay serves a space to every peer until peers are named for it (Store+PeerStatus.swift).
            if role == .relay {
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO relay_open_spaces(space)
                        SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM relay_space_peers WHERE space = ?1)
                        """, arguments: [sp])
            }
        }
    }

    /// Makes `space` (already added) the node's default space, in place of the one the schema
    /// made, which is dropped (only valid on a fresh database).
    public func setDefaultSpace(_ space: SpaceID) throws(StorageError) {
        try writeTransaction("set the default space") { db in
            if let old = try? Self.defaultSpace(db, path: path), old != space {
                try db.execute(sql: "DELETE FROM spaces WHERE id = ?", arguments: [Data(old.bytes)])
            }
            try db.execute(
                sql: "INSERT INTO meta(key, value) VALUES ('default_space', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [Data(space.bytes)])
        }
    }

    /// Names the key new envelopes of `space` are sealed with until its membership log says.
    public func setSealingKey(_ space: SpaceID, ref: KeyRef) throws(StorageError) {
        try writeTransaction("set the sealing key") { db in
            try db.execute(sql: "UPDATE spaces SET key_ref = ? WHERE id = ?", arguments: [ref.description, Data(space.bytes)])
        }
    }

    /// Sets the membership document of a space (after the node created it).
    public func setSpaceDocument(_ space: SpaceID, _ doc: DocID) throws(StorageError) {
        try writeTransaction("record the space document") { db in
            try db.execute(
                sql: "UPDATE spaces SET doc = ? WHERE id = ?", arguments: [doc.description, Data(space.bytes)])
        }
    }

    /// Stores a key of `space` (ignored if already held).
    public func addSpaceKey(_ space: SpaceID, ref: KeyRef, epoch: UInt32, key: SymmetricKey) throws(StorageError) {
        try writeTransaction("store a space key") { db in
            try Self.insertKey(db, space: Data(space.bytes), ref: ref, epoch: epoch, key: key)
        }
    }

    /// Records or updates a member.
    public func addSpaceMember(_ space: SpaceID, _ member: SpaceMember) throws(StorageError) {
        try writeTransaction("record a member") { db in try Self.upsertMember(db, space: Data(space.bytes), member) }
    }

    // MARK: - Reading

    /// Every space this node carries, sorted by name then id.
    public func spaces() throws(StorageError) -> [SpaceInfo] {
        try read { db in try Self.loadSpaces(db, path: path, only: nil) }
    }

    /// One space, or nil when it is not carried.
    public func space(_ id: SpaceID) throws(StorageError) -> SpaceInfo? {
        try read { db in try Self.loadSpaces(db, path: path, only: id).first }
    }

    /// Every key held for `space`, by reference. Never logged.
    public func spaceKeys(_ space: SpaceID) throws(StorageError) -> [KeyRef: (epoch: UInt32, key: SymmetricKey)] {
        try read { db in try Self.loadKeyring(db, space: Data(space.bytes)) }
    }

    /// A key of `epoch` (the sealing key when it is of that epoch), nil when none is held. Never logged.
    public func spaceKey(_ space: SpaceID, epoch: UInt32) throws(StorageError) -> SymmetricKey? {
        try read { db in
            let sp = Data(space.bytes)
            if let k = try Self.sealingKey(db, space: sp), k.epoch == epoch { return k.key }
            return try Self.loadKeyring(db, space: sp).filter { $0.value.epoch == epoch }.sorted { $0.key < $1.key }.first?.value.key
        }
    }

    /// The key new envelopes of `space` are sealed with: the roster's current key, or for a
    /// space without a membership log the key of its current epoch. nil when not held.
    public func sealingKey(_ space: SpaceID) throws(StorageError) -> (ref: KeyRef, epoch: UInt32, key: SymmetricKey)? {
        try read { db in try Self.sealingKey(db, space: Data(space.bytes)) }
    }

    static func sealingKey(_ db: Database, space: Data) throws -> (ref: KeyRef, epoch: UInt32, key: SymmetricKey)? {
        guard let row = try Row.fetchOne(db, sql: "SELECT epoch, key_ref FROM spaces WHERE id = ?", arguments: [space]) else {
            return nil
        }
        let epoch = UInt32(row[0] as Int64)
        let ref = (row[1] as String?).flatMap { KeyRef(parsing: Substring($0)) } ?? .legacy(epoch)
        guard let k = try loadKeyring(db, space: space)[ref] else { return nil }
        return (ref, k.epoch, k.key)
    }

    /// The space a document belongs to.
    public func space(ofDocument id: DocID) throws(StorageError) -> SpaceID {
        try read { db in
            guard let data = try Data.fetchOne(db, sql: "SELECT space FROM documents WHERE id = ?", arguments: [id.description]),
                let s = SpaceID(bytes: [UInt8](data))
            else {
                throw StorageError(.notFound, "no document \(id); `saraban doc list` shows the documents", path: path)
            }
            return s
        }
    }

    static func loadSpaces(_ db: Database, path: String, only: SpaceID?) throws -> [SpaceInfo] {
        let def = try? defaultSpace(db, path: path)
        var out: [SpaceInfo] = []
        let rows: [Row]
        if let only {
            rows = try Row.fetchAll(
                db, sql: "SELECT id, name, role, epoch, doc FROM spaces WHERE id = ?", arguments: [Data(only.bytes)])
        } else {
            rows = try Row.fetchAll(db, sql: "SELECT id, name, role, epoch, doc FROM spaces")
        }
        for row in rows {
            let sp: Data = row[0]
            guard let id = SpaceID(bytes: [UInt8](sp)) else { continue }
            let docText: String? = row[4]
            let doc = docText.flatMap(DocID.init)
            let count =
                try Int.fetchOne(
                    db, sql: "SELECT count(*) FROM documents WHERE space = ? AND id IS NOT ?",
                    arguments: [sp, docText]) ?? 0
            out.append(
                SpaceInfo(
                    id: id, name: row[1], role: NodeRole(rawValue: UInt8(row[2] as Int)) ?? .member,
                    epoch: UInt32(row[3] as Int64), keyEpochs: Set(try loadKeyring(db, space: sp).values.map(\.epoch)).sorted(),
                    document: doc,
                    members: try loadMembers(db, space: sp).values.sorted { $0.key.nodeID.text < $1.key.nodeID.text },
                    documents: count, isDefault: def == id))
        }
        return out.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
    }

    /// The active members (not removed) of every space this node is a member of, without the
    /// per-space document counts of ``spaces()``: cheap enough for a daemon to call every few seconds.
    public func activeMemberKeys() throws(StorageError) -> Set<SigningPublicKey> {
        try read { db in
            var out = Set<SigningPublicKey>()
            for data in try Data.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT m.member FROM space_members m JOIN spaces s ON s.id = m.space
                    WHERE s.role = 0 AND m.removed_epoch IS NULL
                    """)
            {
                if let key = try? SigningPublicKey(rawRepresentation: [UInt8](data)) { out.insert(key) }
            }
            return out
        }
    }

    static func loadMembers(_ db: Database, space: Data) throws -> [SigningPublicKey: SpaceMember] {
        var out: [SigningPublicKey: SpaceMember] = [:]
        for row in try Row.fetchAll(
            db, sql: "SELECT member, office, added_by, since_epoch, removed_epoch, admin FROM space_members WHERE space = ?",
            arguments: [space])
        {
            guard let key = try? SigningPublicKey(rawRepresentation: [UInt8](row[0] as Data)) else { continue }
            let addedBy = (row[2] as Data?).flatMap { try? SigningPublicKey(rawRepresentation: [UInt8]($0)) }
            let removed: Int64? = row[4]
            var m = SpaceMember(
                key: key, office: row[1], addedBy: addedBy, sinceEpoch: UInt32(row[3] as Int64),
                removedEpoch: removed.map { UInt32($0) })
            m.isAdmin = row[5]
            out[key] = m
        }
        return out
    }

    static func upsertMember(_ db: Database, space: Data, _ m: SpaceMember) throws {
        try db.execute(
            sql: """
                INSERT INTO space_members(space, member, office, added_by, since_epoch, removed_epoch)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(space, member) DO UPDATE SET
                    office = CASE WHEN excluded.office != '' THEN excluded.office ELSE office END,
                    added_by = coalesce(added_by, excluded.added_by),
                    removed_epoch = excluded.removed_epoch
                """,
            arguments: [
                space, Data(m.key.rawRepresentation), m.office, m.addedBy.map { Data($0.rawRepresentation) },
                Int64(m.sinceEpoch), m.removedEpoch.map { Int64($0) },
            ])
    }

    // MARK: - Membership from the space document

    /// Re-reads the space's membership document inside the open transaction: members (added,
    /// removed at the document's epoch), offices, epoch keys sealed to `identity`, and the
    /// current epoch (raised only once its key is held). Does nothing if `mayHaveTouched(doc)`
    /// says the write certainly did not touch the membership document `doc`.
    func refreshSpace(
        _ db: Database, space: SpaceID, identity: SigningKeyPair, mayHaveTouched: (DocID) -> Bool = { _ in true }
    ) throws {
        let sp = Data(space.bytes)
        guard let row = try Row.fetchOne(db, sql: "SELECT doc, epoch FROM spaces WHERE id = ? AND role = 0", arguments: [sp]),
            let docText = row[0] as String?, let docID = DocID(docText)
        else { return }
        if !mayHaveTouched(docID) { return }
        let roster = try loadRoster(db, space: space, cache: false)
        if roster.current.hasGenesis {
            try materialize(db, space: space, roster: roster, identity: identity)
            return
        }
        // A space without a membership log (made before it): the legacy fields, as before.
        guard let doc = try Self.loadDocument(db, docID, path: path) else { return }
        var docEpoch: UInt32 = 0
        if case .int(let e)? = doc.registers[SpaceDocument.epoch]?.winner?.value, e >= 0, e <= Int64(UInt32.max) {
            docEpoch = UInt32(e)
        }
        let memberTexts = doc.sets[SpaceDocument.members]?.values ?? []
        var current = Set<SigningPublicKey>()
        let existing = try Self.loadMembers(db, space: sp)
        for text in memberTexts {
            guard let node = try? NodeID(parsing: text) else { continue }
            current.insert(node.publicKey)
            var office = ""
            if case .string(let o)? = doc.registers[SpaceDocument.office(node)]?.winner?.value { office = o }
            var m = existing[node.publicKey] ?? SpaceMember(key: node.publicKey, sinceEpoch: docEpoch)
            if !office.isEmpty { m.office = office }
            m.removedEpoch = nil
            try Self.upsertMember(db, space: sp, m)
        }
        if !current.isEmpty {
            for (key, var m) in existing where !current.contains(key) && m.removedEpoch == nil {
                m.removedEpoch = max(docEpoch, m.sinceEpoch + 1)
                try Self.upsertMember(db, space: sp, m)
            }
        }
        var keys: [UInt32: SymmetricKey] = [:]
        for (ref, k) in try Self.loadKeyring(db, space: sp) where ref == .legacy(k.epoch) { keys[k.epoch] = k.key }
        let me = identity.publicKey.nodeID.text
        for entry in doc.lists[SpaceDocument.keys]?.entries ?? [] {
            guard case .string(let s) = entry.value else { continue }
            let parts = s.split(separator: " ")
            guard parts.count == 3, let epoch = UInt32(parts[0]), keys[epoch] == nil, parts[1] == me,
                let box = Data(base64Encoded: String(parts[2]))
            else { continue }
            do {
                var raw = try SealedBox.open([UInt8](box), with: identity)
                defer { for i in raw.indices { raw[i] = 0 } }
                let key = try SymmetricKey(SecureBytes(raw))
                try Self.insertKey(db, space: sp, ref: .legacy(epoch), epoch: epoch, key: key)
                keys[epoch] = key
            } catch {
                logger.warning(
                    "a rekey record sealed to this node does not open", metadata: ["space": "\(space)", "epoch": "\(epoch)"])
            }
        }
        let epoch = UInt32(row[1] as Int64)
        if docEpoch > epoch, keys[docEpoch] != nil {
            try db.execute(sql: "UPDATE spaces SET epoch = ? WHERE id = ?", arguments: [Int64(docEpoch), sp])
        }
    }

    // MARK: - Helpers

    /// One write transaction, durable (its commit fsyncs the WAL) unless `durable` is false: for
    /// bookkeeping that may be lost with the last transactions on a power cut (peer status
    /// counters, claims received from others: they are fetched or counted again) and is written
    /// often, an fsync each time cost the end-to-end sync row a fifth of its speed.
    func writeTransaction(_ what: String, durable: Bool = true, _ body: (Database) throws -> Void) throws(StorageError) {
        do {
            try pool.writeWithoutTransaction { db in
                try Self.inTransaction(db, durable: durable) {
                    try body(db)
                    return .commit
                }
            }
        } catch {
            throw Self.mapError(error, path: path, doing: what)
        }
    }
}
