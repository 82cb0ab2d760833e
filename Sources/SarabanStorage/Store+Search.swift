import Foundation
import GRDB
import SarabanCore

/// One searchable row: a letter (made here or received) as the search index holds it.
public struct SearchRow: Sendable, Hashable {
    public var subject: String
    /// ที่ and, on a received letter, its เลขรับ (space separated).
    public var number: String
    /// จาก (the sending office or agency) and ส่วนราชการ.
    public var sender: String
    public var body: String
    /// The letter's date as yyyymmdd in the Buddhist Era (25690106), 0 when it has none.
    public var day: Int
    /// `sent` (made here), `received` (a record of a letter from another office) or `draft`.
    public var kind: String
    /// ชั้นความลับ as written (empty: none), so a search shows a secret letter only to users cleared for it.
    public var secrecy: String = ""

    public init(subject: String, number: String, sender: String, body: String, day: Int, kind: String) {
        self.subject = subject
        self.number = number
        self.sender = sender
        self.body = body
        self.day = day
        self.kind = kind
    }
}

/// What to look for: any substring of subject, number, sender or body (Thai has no spaces
/// between words, so the index is of trigrams, not words), and a date range.
public struct SearchQuery: Sendable, Hashable {
    public var text: String
    /// Inclusive yyyymmdd (Buddhist Era) bounds; nil: open.
    public var from: Int?
    public var to: Int?
    public var limit: Int

    public init(text: String, from: Int? = nil, to: Int? = nil, limit: Int = 100) {
        self.text = text
        self.from = from
        self.to = to
        self.limit = limit
    }
}

public struct SearchHit: Sendable, Hashable {
    public var document: DocID
    public var kind: String
    public var subject: String
    public var number: String
    public var sender: String
    public var day: Int
    public var secrecy: String
}

/// The search index (migration v6): an FTS5 table with the trigram tokenizer (SQLite 3.34 or
/// later; Debian 12 has 3.40), so any substring of three or more characters is found through the
/// index, Thai included. Every letter written, by a local edit or by sync alike (a dispatch is
/// indexed once received: its payload is sealed), is noted in `search_dirty` by the statement
/// that writes it (``DocumentsInTransaction/flush()``; ``removeSpace(_:)`` for the letters it
/// deletes); ``refreshSearch(_:)`` re-reads those documents into the index, and every search
/// runs it first, so what a search finds is never behind the store.
///
/// Migration v6 noted them with triggers on `documents`; v8 dropped them: a table with a trigger
/// makes SQLite give every statement writing it a statement journal (each page the document
/// upsert touched was copied, and inside a receive batch's savepoint the in-memory sub-journal
/// was walked at every statement's end: 9% of all CPU of `saraban-bench sync week`, spent in the
/// catch-up's receive).
extension Store {
    /// The document kind the search index holds.
    static let searchKind = "letter"
    /// ``searchKind`` as an SQL list, `('letter')` (what migration v6 was written with).
    static let searchKinds = "('\(searchKind)')"

    /// Migration v8: the triggers of v6 go (see above).
    static let searchTriggersDropped = """
        DROP TRIGGER IF EXISTS search_dirty_insert;
        DROP TRIGGER IF EXISTS search_dirty_update;
        DROP TRIGGER IF EXISTS search_dirty_delete;
        """

    static let searchMigration = """
        CREATE VIRTUAL TABLE search USING fts5(
            subject, number, sender, body, doc UNINDEXED, kind UNINDEXED, day UNINDEXED, secrecy UNINDEXED,
            tokenize = 'trigram'
        );
        CREATE TABLE search_rows (doc TEXT PRIMARY KEY NOT NULL, row INTEGER NOT NULL) WITHOUT ROWID;
        CREATE TABLE search_dirty (doc TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID;
        CREATE TRIGGER search_dirty_insert AFTER INSERT ON documents WHEN NEW.kind IN \(searchKinds)
            BEGIN INSERT INTO search_dirty(doc) SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM search_dirty WHERE doc = NEW.id); END;
        CREATE TRIGGER search_dirty_update AFTER UPDATE ON documents WHEN NEW.kind IN \(searchKinds)
            BEGIN INSERT INTO search_dirty(doc) SELECT NEW.id WHERE NOT EXISTS (SELECT 1 FROM search_dirty WHERE doc = NEW.id); END;
        CREATE TRIGGER search_dirty_delete AFTER DELETE ON documents WHEN OLD.kind IN \(searchKinds)
            BEGIN INSERT INTO search_dirty(doc) SELECT OLD.id WHERE NOT EXISTS (SELECT 1 FROM search_dirty WHERE doc = OLD.id); END;
        INSERT INTO search_dirty(doc) SELECT id FROM documents WHERE kind IN \(searchKinds);
        """

    /// Migration v9: the index's rows keyed by date (``searchRowID(day:sequence:)``), so the newest
    /// matches are read first and a search stops at its limit; the index is emptied and every
    /// letter noted to be indexed again by the next search.
    static let searchByDateMigration = """
        DELETE FROM search;
        DELETE FROM search_rows;
        DELETE FROM search_dirty;
        INSERT INTO search_dirty(doc) SELECT id FROM documents WHERE kind IN \(searchKinds);
        """

    /// A row's key in the index (since v9): its day (yyyymmdd BE, 0 for none) above 32 bits of a
    /// running count of rows indexed, so the index's own rowid order is "newest date first, then
    /// the latest indexed first", what a search returns: FTS5 walks a match's rows in rowid
    /// order and stops at the LIMIT, instead of reading every match's date to sort them (a
    /// common Thai word matches thousands of letters).
    static func searchRowID(day: Int, sequence: Int64) -> Int64 {
        Int64(max(0, min(day, 99_999_999))) << 32 | (sequence & 0xFFFF_FFFF)
    }

    /// Brings the index up to date: every document noted in `search_dirty` is read again and its
    /// row replaced (`extract` says what a document's row is; nil: not searchable, e.g. deleted).
    /// Returns how many documents were indexed.
    @discardableResult
    public func refreshSearch(_ extract: (Document) -> SearchRow?) throws(StorageError) -> Int {
        let path = self.path
        // Nothing noted (the usual case for a search): no write transaction, so concurrent
        // searches do not queue behind the writer.
        let noted = try read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM search_dirty)") ?? false }
        if !noted { return 0 }
        do {
            return try pool.write { db in
                let ids = try String.fetchAll(db, sql: "SELECT doc FROM search_dirty")
                if ids.isEmpty { return 0 }
                // A document's index row is found by `search_rows` (the FTS table's own columns have
                // no index: deleting by `doc` would scan the whole index once per document).
                let find = try db.cachedStatement(sql: "SELECT row FROM search_rows WHERE doc = ?")
                let delete = try db.cachedStatement(sql: "DELETE FROM search WHERE rowid = ?")
                let forget = try db.cachedStatement(sql: "DELETE FROM search_rows WHERE doc = ?")
                let insert = try db.cachedStatement(
                    sql: "INSERT INTO search(rowid, subject, number, sender, body, doc, kind, day, secrecy) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                let remember = try db.cachedStatement(sql: "INSERT INTO search_rows(doc, row) VALUES (?, ?)")
                var sequence = try Int64.fetchOne(db, sql: "SELECT coalesce(max(row & 4294967295), 0) FROM search_rows") ?? 0
                for text in ids {
                    if let old = try Int64.fetchOne(find, arguments: [text]) {
                        try delete.execute(arguments: [old])
                        try forget.execute(arguments: [text])
                    }
                    guard let id = DocID(text), let d = try Self.loadDocument(db, id, path: path), !d.isDeleted,
                        let row = extract(d)
                    else { continue }
                    sequence += 1
                    let rowID = Self.searchRowID(day: row.day, sequence: sequence)
                    try insert.execute(
                        arguments: [rowID, row.subject, row.number, row.sender, row.body, text, row.kind, row.day, row.secrecy])
                    try remember.execute(arguments: [text, rowID])
                }
                try db.execute(sql: "DELETE FROM search_dirty")
                return ids.count
            }
        } catch {
            throw Self.mapError(error, path: path, doing: "update the search index")
        }
    }

    /// Documents matching `q`, newest date first. Three or more characters go through the trigram
    /// index (a phrase: the exact substring); shorter text is a substring scan of the index table.
    public func search(_ q: SearchQuery) throws(StorageError) -> [SearchHit] {
        let text = q.text.trimmingCharacters(in: .whitespacesAndNewlines)
        var clauses: [String] = []
        var args: [(any DatabaseValueConvertible)?] = []
        if text.unicodeScalars.count >= 3 {
            clauses.append("search MATCH ?")
            args.append("\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"")
        } else if !text.isEmpty {
            let like = "%" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_") + "%"
            clauses.append(
                "(subject LIKE ? ESCAPE '\\' OR number LIKE ? ESCAPE '\\' OR sender LIKE ? ESCAPE '\\' OR body LIKE ? ESCAPE '\\')")
            args += [like, like, like, like]
        }
        if let from = q.from {
            clauses.append("day >= ?")
            args.append(from)
        }
        if let to = q.to {
            clauses.append("day <= ?")
            args.append(to)
        }
        let sql =
            "SELECT doc, kind, subject, number, sender, day, secrecy FROM search"
            + (clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND "))
            + " ORDER BY rowid DESC LIMIT ?"  // day, then the latest indexed (searchRowID)
        args.append(max(1, min(q.limit, 1000)))
        return try read { db in
            try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).compactMap { r -> SearchHit? in
                guard let id = DocID(r[0] as String) else { return nil }
                return SearchHit(
                    document: id, kind: r[1], subject: r[2], number: r[3], sender: r[4], day: (r[5] as Int?) ?? 0,
                    secrecy: (r[6] as String?) ?? "")
            }
        }
    }

    /// The same question (the newest `limit` matches) answered by a plain `LIKE` scan of the same
    /// rows, without the trigram index (for the benchmark's comparison).
    public func searchByScan(_ text: String, limit: Int = 100) throws(StorageError) -> Int {
        let like = "%" + text + "%"
        return try read { db in
            try Int.fetchOne(
                db,
                sql: """
                    SELECT count(*) FROM (SELECT doc FROM search WHERE subject || ' ' || number || ' ' || sender || ' ' || body
                        LIKE ? ORDER BY day DESC, rowid DESC LIMIT ?)
                    """, arguments: [like, limit]) ?? 0
        }
    }
}
