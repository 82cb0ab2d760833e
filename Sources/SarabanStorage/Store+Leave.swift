import Foundation
import GRDB
import SarabanCore
import SarabanCrypto
import SarabanFeed

/// What leaving a space removed from this node (`saraban space leave`).
public struct LeftSpace: Sendable, Hashable {
    public var space: SpaceID
    /// Documents of the space deleted here (the membership document included).
    public var documents: Int
    /// Envelopes (this node's and the other members') deleted here.
    public var envelopes: Int
    /// Keys of the space deleted here.
    public var keys: Int
    /// The next sequence number this node would have written in the space: kept (setting
    /// `left.<space hex>.next_seq`) so that a node invited again does not reuse its old numbers.
    public var nextSeq: Int64
}

extension Store {
    /// Deletes everything this node holds of `space` in one transaction: its documents, change log,
    /// envelopes, keys, members, membership log, held and refused records and its settings. The
    /// default space cannot be removed. Nothing is sent to anyone: the other members keep their
    /// copies and still list this node until an admin removes it.
    public func removeSpace(_ space: SpaceID) throws(StorageError) -> LeftSpace {
        var out = LeftSpace(space: space, documents: 0, envelopes: 0, keys: 0, nextSeq: 1)
        try writeTransaction("leave a space") { db in
            let sp = Data(space.bytes)
            guard let nextSeq = try Int64.fetchOne(db, sql: "SELECT next_seq FROM spaces WHERE id = ?", arguments: [sp]) else {
                throw StorageError(.notAllowed, "this node carries no space \(space.hex); `saraban space list` shows those it does", path: path)
            }
            if let def = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'default_space'"), def == sp {
                throw StorageError(.notAllowed, "the office's own space cannot be left", path: path)
            }
            out.nextSeq = nextSeq
            out.documents = try Int.fetchOne(db, sql: "SELECT count(*) FROM documents WHERE space = ?", arguments: [sp]) ?? 0
            out.envelopes = try Int.fetchOne(db, sql: "SELECT count(*) FROM envelopes WHERE space = ?", arguments: [sp]) ?? 0
            out.keys = try Int.fetchOne(db, sql: "SELECT count(*) FROM keyring WHERE space = ?", arguments: [sp]) ?? 0
            // Its letters leave the search index at the next search.
            try db.execute(
                sql: "INSERT OR IGNORE INTO search_dirty(doc) SELECT id FROM documents WHERE space = ? AND kind = ?",
                arguments: [sp, Store.searchKind])
            // Every table with a `space` column (found, not listed, so a table a later migration
            // adds is not forgotten), then the `spaces` row itself.
            let tables = try String.fetchAll(
                db,
                sql: """
                    SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) c
                    WHERE m.type = 'table' AND c.name = 'space' ORDER BY m.name
                    """)
            for table in tables {
                try db.execute(sql: "DELETE FROM \"\(table)\" WHERE space = ?", arguments: [sp])
            }
            try db.execute(sql: "DELETE FROM spaces WHERE id = ?", arguments: [sp])
            // The space's settings (`space.<hex>.*`: salt, creator, clearance, relays).
            try db.execute(sql: "DELETE FROM meta WHERE key LIKE ?", arguments: ["s.space.\(space.hex).%"])
            try db.execute(
                sql: "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: ["s.left.\(space.hex).next_seq", String(nextSeq)])
        }
        return out
    }
}
