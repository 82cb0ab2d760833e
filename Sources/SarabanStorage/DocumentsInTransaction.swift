import Foundation
import GRDB
import GRDBSQLite
import SarabanCore

/// The core's ``DocumentStore`` backed by an open SQLite write transaction: documents are loaded
/// from their snapshots on first use, edited in memory, and written back once when the
/// transaction ends. Exists only inside ``Store/write(_:)`` and ``Store/apply(changes:receivedAt:)``.
public struct DocumentsInTransaction: DocumentStore {
    // The connection of the open transaction; never escapes the closure that received it.
    let db: Database
    let path: String
    /// A loaded document (nil: absent) and, if it was touched in this transaction and not yet
    /// written back, the latest time it was touched.
    private struct Entry {
        var doc: Document?
        var touched: Int64?
    }
    /// The documents loaded or made in this transaction, in the order first used, with their
    /// ids beside them; ``slot`` finds an id's position. Kept in arrays so a document is edited
    /// and read where it is stored (an element of a dictionary's values is copied, with a
    /// retain of every buffer of its document, whenever it is read).
    private var entries: [Entry] = []
    private var ids: [DocID] = []
    private var slot: [DocID: Int] = [:]
    /// The greatest op counter of any id in ``ids``: an id above it and above ``storedMaxOp`` is
    /// nowhere yet, so it is neither hashed nor looked up before it is added.
    private var maxCounterSeen: UInt64 = 0
    /// The position of the document used last: consecutive edits of one document (the common
    /// case) do not hash its id again.
    private var current = -1

    /// The space (16 bytes) of the changes being applied: new documents belong to it, and a
    /// document of another space is refused (a change never crosses spaces).
    let space: Data

    /// The `max_op` meta value when the transaction began. Every stored document's id is the op
    /// id of the `createDocument` that made it, and `max_op` is raised to cover every applied
    /// change in the same transaction that writes its documents, so a document whose op counter
    /// is above this value is not in the database: it is only in ``entries`` (made earlier in this
    /// transaction) or nowhere, and looking it up would find nothing. (Holds on every path:
    /// documents are written only by ``flush()``, inside ``Store/write(space:signer:_:)`` and
    /// ``Store/apply(changes:space:receivedAt:)``, which both store the raised `max_op`; a
    /// redelivered change's ids are at or below it, so it is looked up as before.)
    let storedMaxOp: UInt64

    init(db: Database, path: String, space: Data, storedMaxOp: UInt64) {
        self.db = db
        self.path = path
        self.space = space
        self.storedMaxOp = storedMaxOp
    }

    public mutating func withDocument<T>(_ id: DocID, _ body: (inout Document?) throws -> T) throws -> T {
        let i = try select(id)
        // Edited where it is stored: `body` gets a uniquely referenced value and whatever it
        // leaves (even when it throws) stays.
        defer { entries[i].touched = currentTime }
        return try body(&entries[i].doc)
    }

    public mutating func withExistingDocument<T>(_ id: DocID, _ body: (inout Document) throws -> T) throws -> T? {
        let i = try select(id)
        guard entries.withUnsafeBufferPointer({ $0[i].doc != nil }) else { return nil }
        defer { entries[i].touched = currentTime }
        return try body(&entries[i].doc!)
    }

    /// Makes room for `count` more documents in this transaction (a batch of received changes
    /// knows how many documents it may touch), so the tables are not regrown as they arrive.
    mutating func reserve(_ count: Int) {
        entries.reserveCapacity(entries.count + count)
        ids.reserveCapacity(ids.count + count)
        slot.reserveCapacity(slot.count + count)
    }

    /// The position of `id`'s entry, loading the document on first use.
    private mutating func select(_ id: DocID) throws -> Int {
        if current >= 0 && ids[current] == id { return current }
        let counter = id.op.counter
        let doc: Document?
        if counter > maxCounterSeen && counter > storedMaxOp {
            // A new document (its creation, typically): neither made earlier in this transaction nor stored.
            doc = nil
        } else if let i = slot[id] {
            current = i
            return i
        } else if counter > storedMaxOp {
            doc = nil
        } else {
            doc = try Store.loadDocument(db, id, path: path, space: space)
        }
        maxCounterSeen = max(maxCounterSeen, counter)
        current = entries.count
        slot[id] = current
        ids.append(id)
        entries.append(Entry(doc: doc, touched: nil))
        return current
    }

    /// Whether `id` was used in this transaction (every document a change touched was; one
    /// looked for and found absent is too).
    func hasLoaded(_ id: DocID) -> Bool {
        (current >= 0 && ids[current] == id) || slot[id] != nil
    }

    /// The documents touched since the last ``flush()`` (absent ones too: an operation on a
    /// document that does not exist still names it).
    func touchedIDs() -> [DocID] {
        entries.withUnsafeBufferPointer { entries in entries.indices.compactMap { entries[$0].touched != nil ? ids[$0] : nil } }
    }

    /// The wall-clock time recorded as `updated_at` for documents touched next.
    var currentTime: Int64 = 0

    /// Writes every touched document's snapshot back, binding the values straight to the
    /// cached statement (as ``ChangeLogInsert`` does): GRDB's `StatementArguments` boxing cost
    /// as much as SQLite's own upsert. A letter written is noted for the search index
    /// (`search_dirty`, see ``Store/refreshSearch(_:)``).
    ///
    /// An update leaves `kind` as it is: a document's kind is fixed by the operation that created
    /// it (its id), and naming an indexed column in `SET` makes SQLite rewrite that column's index
    /// entry (`documents_by_space_kind`) on every update, even to the same value.
    mutating func flush() throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO documents(id, space, kind, deleted, snapshot, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET deleted = excluded.deleted,
                    snapshot = excluded.snapshot, updated_at = max(updated_at, excluded.updated_at)
                """)
        let noteSearch = try db.cachedStatement(sql: "INSERT OR IGNORE INTO search_dirty(doc) VALUES (?)")
        let space = [UInt8](self.space)
        var key = DocIDText()
        // Read where they are stored, through a buffer pointer: the array's own subscript
        // getter copies the element, and with it retains every buffer of its document.
        try entries.withUnsafeBufferPointer { entries in
            for index in entries.indices {
                // Optional chaining reads the stored document; `!` or `!= nil` made a copy.
                guard let time = entries[index].touched, let snapshot = entries[index].doc?.encoded() else { continue }
                let id = ids[index]
                let deleted = entries[index].doc?.isDeleted ?? false
                var kind = entries[index].doc?.kind ?? ""
                try key.withText(id) { idText, idCount in
                    try space.withUnsafeBytes { sp in
                        try snapshot.withUnsafeBytes { b in
                            try kind.withUTF8 { k in
                                try statement.stepBound("cannot write document \(id)") { s in
                                    sqlite3_bind_text(s, 1, idText, Int32(idCount), nil)
                                    sqlite3_bind_blob(s, 2, sp.baseAddress, Int32(sp.count), nil)
                                    let kindText = UnsafeRawPointer(k.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                                        .assumingMemoryBound(to: CChar.self)
                                    sqlite3_bind_text(s, 3, kindText, Int32(k.count), nil)
                                    sqlite3_bind_int64(s, 4, deleted ? 1 : 0)
                                    sqlite3_bind_blob(s, 5, b.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(b.count), nil)
                                    sqlite3_bind_int64(s, 6, time)
                                }
                            }
                        }
                        if kind == Store.searchKind {
                            try noteSearch.stepBound("cannot note document \(id) for the search index") { s in
                                sqlite3_bind_text(s, 1, idText, Int32(idCount), nil)
                            }
                        }
                    }
                }
            }
        }
        // Written: untouched again, but kept (a document made in this transaction is above
        // ``storedMaxOp``, so only this cache knows it exists).
        for i in entries.indices { entries[i].touched = nil }
    }
}

/// A document id's text form (``DocID/description``: decimal counter, `-`, 32 hex digits of the
/// replica) written into a reused buffer, the replica's hex kept from the previous id.
struct DocIDText {
    private var buffer = [CChar](repeating: 0, count: 20 + 1 + 32)
    private var replica: ReplicaID?

    private static let digits = Array("0123456789abcdef".utf8)

    /// Calls `body` with the UTF-8 text (not NUL-terminated) and its length.
    mutating func withText<T>(_ id: DocID, _ body: (UnsafePointer<CChar>, Int) throws -> T) rethrows -> T {
        // The counter's digits, right-aligned in the first 20 bytes.
        var n = id.op.counter
        var start = 20
        repeat {
            start -= 1
            buffer[start] = CChar(bitPattern: UInt8(ascii: "0") + UInt8(n % 10))
            n /= 10
        } while n > 0
        if replica != id.op.replica {
            replica = id.op.replica
            buffer[20] = CChar(bitPattern: UInt8(ascii: "-"))
            let r = id.op.replica
            for i in 0..<16 {
                let byte = UInt8(truncatingIfNeeded: (i < 8 ? r.hi : r.lo) >> (56 - 8 * UInt64(i % 8)))
                buffer[21 + 2 * i] = CChar(bitPattern: Self.digits[Int(byte >> 4)])
                buffer[22 + 2 * i] = CChar(bitPattern: Self.digits[Int(byte & 0x0f)])
            }
        }
        return try buffer.withUnsafeBufferPointer { p in try body(p.baseAddress! + start, 53 - start) }
    }

    /// ``DocID/description``, built in the buffer.
    mutating func string(_ id: DocID) -> String {
        withText(id) { p, n in
            p.withMemoryRebound(to: UInt8.self, capacity: n) { String(decoding: UnsafeBufferPointer(start: $0, count: n), as: UTF8.self) }
        }
    }

    /// The text forms of `ids`, sorted (as ``ApplyReport/documents`` lists them).
    static func sortedStrings<S: Sequence>(_ ids: S) -> [String] where S.Element == DocID {
        var text = DocIDText()
        var out = ids.map { text.string($0) }
        out.sort()
        return out
    }
}

extension Store {
    static func loadDocument(_ db: Database, _ id: DocID, path: String, space: Data? = nil) throws -> Document? {
        let statement = try db.cachedStatement(sql: "SELECT snapshot, space FROM documents WHERE id = ?")
        guard let row = try Row.fetchOne(statement, arguments: [id.description]) else { return nil }
        let data: Data = row[0]
        if let space, space != row[1] as Data {
            throw StorageError(
                .wrongSpace,
                "document \(id) belongs to space \(Hex.encode([UInt8](row[1] as Data))), not \(Hex.encode([UInt8](space))): "
                    + "a change never crosses spaces; edit it in its own space",
                path: path)
        }
        do {
            return try Document.decode([UInt8](data))
        } catch {
            throw StorageError(
                .corrupt,
                "the stored snapshot of document \(id) in \(path) is damaged (\(error)); restore the database "
                    + "from a backup or re-sync from a peer",
                path: path)
        }
    }
}
