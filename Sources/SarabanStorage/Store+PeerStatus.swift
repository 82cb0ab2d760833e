import Foundation
import GRDB
import SarabanCore
import SarabanCrypto
import SarabanFeed

/// What a peer held of one space as of `at` (ms since 1970): its last summary, raised by its acks
/// and by what it sent. A relay's per-(peer, space) delivery cursor.
public struct PeerCursor: Sendable, Hashable {
    public var at: Int64
    public var vector: FeedVector

    public init(at: Int64, vector: FeedVector) {
        self.at = at
        self.vector = vector
    }
}

/// What sessions with one peer (or a failed dial) changed in its status: fields to set (nil:
/// unchanged), counters to add, and the cursors of the spaces heard from. Applying one is
/// O(the rows it names): one status row and one row per cursor, whatever the number of peers.
public struct PeerStatusChange: Sendable, Hashable {
    public enum ErrorUpdate: Sendable, Hashable {
        case keep
        case set(String)
        case clear
    }

    public var peer: SigningPublicKey
    public var lastContact: Int64?
    public var lastSynced: Int64?
    public var lastFailure: Int64?
    public var lastError = ErrorUpdate.keep
    public var changesPeerLacks: UInt64?
    public var changesWeLack: UInt64?
    public var envelopesSent = 0
    public var envelopesReceived = 0
    public var bytesSent = 0
    public var bytesReceived = 0
    public var sessions = 0
    public var cursors: [SpaceID: PeerCursor] = [:]

    public init(peer: SigningPublicKey) { self.peer = peer }

    /// This change followed by `later`: later fields win, counters add up.
    public mutating func merge(_ later: PeerStatusChange) {
        lastContact = later.lastContact ?? lastContact
        lastSynced = later.lastSynced ?? lastSynced
        lastFailure = later.lastFailure ?? lastFailure
        if later.lastError != .keep { lastError = later.lastError }
        changesPeerLacks = later.changesPeerLacks ?? changesPeerLacks
        changesWeLack = later.changesWeLack ?? changesWeLack
        envelopesSent += later.envelopesSent
        envelopesReceived += later.envelopesReceived
        bytesSent += later.bytesSent
        bytesReceived += later.bytesReceived
        sessions += later.sessions
        cursors.merge(later.cursors) { _, new in new }
    }
}

/// One peer's stored status (see ``PeerStatusChange``).
public struct StoredPeerStatus: Sendable, Hashable {
    public var peer: SigningPublicKey
    public var lastContact: Int64?
    public var lastSynced: Int64?
    public var lastFailure: Int64?
    public var lastError: String?
    public var changesPeerLacks: UInt64 = 0
    public var changesWeLack: UInt64 = 0
    public var envelopesSent = 0
    public var envelopesReceived = 0
    public var bytesSent = 0
    public var bytesReceived = 0
    public var sessions = 0
    public var cursors: [SpaceID: PeerCursor] = [:]

    public init(peer: SigningPublicKey) { self.peer = peer }
}

extension FeedVector {
    /// The vector as stored in a cursor row: `count (varint) ‖ { author (32) ‖ seq (varint) } × count`,
    /// authors ascending.
    public var cursorBytes: [UInt8] {
        let entries = sortedEntries
        var w = BinaryWriter(capacity: 2 + entries.count * 36)
        w.varint(entries.count)
        for e in entries {
            w.raw(e.author.rawRepresentation)
            w.varint(e.seq)
        }
        return w.bytes
    }

    /// Reads ``cursorBytes``; nil when the bytes are not such a vector.
    public init?(cursorBytes bytes: [UInt8]) {
        var r = BinaryReader(bytes)
        var entries: [SigningPublicKey: UInt64] = [:]
        guard let n = try? r.varint(), n <= UInt64(bytes.count / 33) else { return nil }
        for _ in 0..<n {
            guard let raw = try? r.raw(32), let key = try? SigningPublicKey(rawRepresentation: Array(raw)),
                let seq = try? r.varint()
            else { return nil }
            entries[key] = seq
        }
        guard r.isAtEnd else { return nil }
        self.init(entries)
    }
}

extension Store {
    /// Applies `changes` in one transaction: per change one upsert of the peer's row (fields set,
    /// counters added in SQL, so concurrent writers, the daemon and a CLI `sync`, never lose an
    /// increment) and one upsert per cursor named. Nothing else is read or rewritten.
    public func applyPeerStatus(_ changes: [PeerStatusChange]) throws(StorageError) {
        guard !changes.isEmpty else { return }
        try writeTransaction("record peer status", durable: false) { db in
            let row = try db.cachedStatement(
                sql: """
                    INSERT INTO peer_status(peer, last_contact, last_synced, last_failure, last_error, changes_peer_lacks,
                        changes_we_lack, envelopes_sent, envelopes_received, bytes_sent, bytes_received, sessions)
                    VALUES (?1, ?2, ?3, ?4, ?5, coalesce(?6, 0), coalesce(?7, 0), ?8, ?9, ?10, ?11, ?12)
                    ON CONFLICT(peer) DO UPDATE SET
                        last_contact = coalesce(?2, last_contact), last_synced = coalesce(?3, last_synced),
                        last_failure = coalesce(?4, last_failure),
                        last_error = CASE ?13 WHEN 0 THEN last_error ELSE ?5 END,
                        changes_peer_lacks = coalesce(?6, changes_peer_lacks), changes_we_lack = coalesce(?7, changes_we_lack),
                        envelopes_sent = envelopes_sent + ?8, envelopes_received = envelopes_received + ?9,
                        bytes_sent = bytes_sent + ?10, bytes_received = bytes_received + ?11, sessions = sessions + ?12
                    """)
            let cursor = try db.cachedStatement(
                sql: """
                    INSERT INTO peer_cursors(peer, space, at, vector) VALUES (?, ?, ?, ?)
                    ON CONFLICT(peer, space) DO UPDATE SET at = excluded.at, vector = excluded.vector
                    """)
            for c in changes {
                let peer = Data(c.peer.rawRepresentation)
                let error: String?
                let touchesError: Int
                switch c.lastError {
                case .keep: (error, touchesError) = (nil, 0)
                case .set(let e): (error, touchesError) = (e, 1)
                case .clear: (error, touchesError) = (nil, 1)
                }
                try row.execute(arguments: [
                    peer, c.lastContact, c.lastSynced, c.lastFailure, error, c.changesPeerLacks.map(Int64.init(clamping:)),
                    c.changesWeLack.map(Int64.init(clamping:)), c.envelopesSent, c.envelopesReceived, c.bytesSent,
                    c.bytesReceived, c.sessions, touchesError,
                ])
                for (space, cur) in c.cursors {
                    try cursor.execute(arguments: [peer, Data(space.bytes), cur.at, Data(cur.vector.cursorBytes)])
                }
            }
        }
    }

    /// Every peer's stored status with its cursors (rows that do not parse are skipped).
    public func peerStatuses() throws(StorageError) -> [StoredPeerStatus] {
        try read { db in
            var out: [SigningPublicKey: StoredPeerStatus] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT * FROM peer_status") {
                guard let key = try? SigningPublicKey(rawRepresentation: [UInt8](r["peer"] as Data)) else { continue }
                var s = StoredPeerStatus(peer: key)
                s.lastContact = r["last_contact"]
                s.lastSynced = r["last_synced"]
                s.lastFailure = r["last_failure"]
                s.lastError = r["last_error"]
                s.changesPeerLacks = UInt64(max(0, r["changes_peer_lacks"] as Int64))
                s.changesWeLack = UInt64(max(0, r["changes_we_lack"] as Int64))
                s.envelopesSent = r["envelopes_sent"]
                s.envelopesReceived = r["envelopes_received"]
                s.bytesSent = r["bytes_sent"]
                s.bytesReceived = r["bytes_received"]
                s.sessions = r["sessions"]
                out[key] = s
            }
            for r in try Row.fetchAll(db, sql: "SELECT peer, space, at, vector FROM peer_cursors") {
                guard let key = try? SigningPublicKey(rawRepresentation: [UInt8](r[0] as Data)),
                    let space = SpaceID(bytes: [UInt8](r[1] as Data)),
                    let vector = FeedVector(cursorBytes: [UInt8](r[3] as Data))
                else { continue }
                out[key, default: StoredPeerStatus(peer: key)].cursors[space] = PeerCursor(at: r[2], vector: vector)
            }
            return Array(out.values)
        }
    }
}

extension Store {
    // MARK: - A relay's spaces per peer

    /// Records who `spaces` (which this relay carries, or has just started carrying) are served to:
    /// with `peers`, only to them (added to any named before); without, to every peer unless a
    /// peer was named for the space before.
    public func nameRelaySpaces(_ spaces: [SpaceID], for peers: [SigningPublicKey]) throws(StorageError) {
        guard !spaces.isEmpty else { return }
        try writeTransaction("name the peers of relayed spaces") { db in
            if peers.isEmpty {
                let open = try db.cachedStatement(
                    sql: """
                        INSERT OR IGNORE INTO relay_open_spaces(space)
                        SELECT ?1 WHERE NOT EXISTS (SELECT 1 FROM relay_space_peers WHERE space = ?1)
                        """)
                for s in spaces { try open.execute(arguments: [Data(s.bytes)]) }
                return
            }
            let insert = try db.cachedStatement(sql: "INSERT OR IGNORE INTO relay_space_peers(peer, space) VALUES (?, ?)")
            let close = try db.cachedStatement(sql: "DELETE FROM relay_open_spaces WHERE space = ?")
            for s in spaces {
                try close.execute(arguments: [Data(s.bytes)])
                for p in peers { try insert.execute(arguments: [Data(p.rawRepresentation), Data(s.bytes)]) }
            }
        }
    }

    /// The relayed spaces served to `peer`: those named for it and those named for nobody (two
    /// index reads: the cost does not grow with the spaces carried for other peers).
    public func relaySpaces(servedTo peer: SigningPublicKey) throws(StorageError) -> [SpaceID] {
        try read { db in
            try Data.fetchAll(
                db,
                sql: "SELECT space FROM relay_open_spaces UNION SELECT space FROM relay_space_peers WHERE peer = ?",
                arguments: [Data(peer.rawRepresentation)]
            ).compactMap { SpaceID(bytes: [UInt8]($0)) }
        }
    }

    /// The feed vectors of those of `spaces` this node carries.
    public func feedVectors(of spaces: [SpaceID]) throws(StorageError) -> [SpaceID: FeedVector] {
        try read { db in
            var out: [SpaceID: FeedVector] = [:]
            for s in spaces where try Bool.fetchOne(db, sql: "SELECT 1 FROM spaces WHERE id = ?", arguments: [Data(s.bytes)]) == true {
                out[s] = try Self.loadFeedVector(db, space: Data(s.bytes))
            }
            return out
        }
    }
}
