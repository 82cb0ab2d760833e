import Foundation
import GRDB
import SarabanCore

/// The core's ``DocumentStore`` backed by an open SQLite write transaction: documents are loaded
/// from their snapshots on first use, edited in memory, and written back once when the
/// transaction ends. Exists only inside ``Store/write(_:)`` and ``Store/apply(changes:receivedAt:)``.
public struct DocumentsInTransaction: DocumentStore {
    // The connection of the open transaction; never escapes the closure that received it.
    let db: Database
    let path: String
    /// Loaded documents; `.some(nil)` records that the document is absent.
    private var cache: [DocID: Document?] = [:]
    private var dirty: [DocID: Int64] = [:]
    /// The document used last, kept outside the dictionary: consecutive edits of one document
    /// (the common case) neither hash nor copy it.
    private var current: (id: DocID, doc: Document?)?

    /// The space (16 bytes) of the changes being applied: new documents belong to it, and a
    /// document of another space is refused (a change never crosses spaces).
    let space: Data

    init(db: Database, path: String, space: Data) {
        self.db = db
        self.path = path
        self.space = space
    }

    public mutating func withDocument<T>(_ id: DocID, _ body: (inout Document?) throws -> T) throws -> T {
        try select(id)
        // Move the document out so `body` edits a uniquely referenced value in place; whatever
        // `body` leaves (even when it throws) goes back.
        var doc: Document? = nil
        swap(&doc, &current!.doc)
        defer { current!.doc = doc }
        let result = try body(&doc)
        markDirty(id)
        return result
    }

    public mutating func withExistingDocument<T>(_ id: DocID, _ body: (inout Document) throws -> T) throws -> T? {
        try select(id)
        guard current!.doc != nil else { return nil }
        // Edited where it is stored: the document is never copied.
        let result = try body(&current!.doc!)
        markDirty(id)
        return result
    }

    /// Makes `id` the current document, loading it on first use.
    private mutating func select(_ id: DocID) throws {
        guard current?.id != id else { return }
        settleCurrent()
        let doc: Document?
        if let cached = cache.removeValue(forKey: id) {
            doc = cached
        } else {
            doc = try Store.loadDocument(db, id, path: path, space: space)
        }
        current = (id, doc)
    }

    /// Records that the current document was touched at ``currentTime``; it reaches ``dirty``
    /// when another document becomes current or at ``flush()``, so `id` is not hashed per edit.
    private mutating func markDirty(_ id: DocID) {
        currentDirty = currentTime
    }

    /// Puts the current document back into the cache and its touch time into ``dirty``.
    private mutating func settleCurrent() {
        if let previous = current {
            cache[previous.id] = previous.doc
            if let t = currentDirty { dirty[previous.id] = t }
        }
        current = nil
        currentDirty = nil
    }

    /// The latest time the current document was touched, not yet in ``dirty``.
    private var currentDirty: Int64?

    /// The wall-clock time recorded as `updated_at` for documents touched next.
    var currentTime: Int64 = 0

    /// Writes every touched document's snapshot back.
    mutating func flush() throws {
        settleCurrent()
        guard !dirty.isEmpty else { return }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO documents(id, space, kind, deleted, snapshot, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, deleted = excluded.deleted,
                    snapshot = excluded.snapshot, updated_at = max(updated_at, excluded.updated_at)
                """)
        for (id, time) in dirty {
            guard let entry = cache[id], let doc = entry else { continue }
            try statement.execute(arguments: [
                id.description, space, doc.kind, doc.isDeleted, Data(doc.encoded()), time,
            ])
        }
        dirty.removeAll(keepingCapacity: true)
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
