import GRDB

extension Store {
    /// Migration v9's counter of content changes: one row, raised by triggers whenever a row of
    /// `clock` is written or removed (every change applied, made here or received by sync, raises
    /// a `(space, author)` sequence number there in the transaction that writes its documents;
    /// leaving a space removes its rows) and whenever a document row is deleted. It only grows, so
    /// it names a state of the documents: two reads that give the same number saw the same
    /// documents, whichever process wrote them (a CLI command beside the daemon included).
    static let contentVersionMigration = """
        CREATE TABLE content_version (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);
        INSERT INTO content_version(id, n) VALUES (0, 1);
        CREATE TRIGGER content_version_clock_insert AFTER INSERT ON clock
            BEGIN UPDATE content_version SET n = n + 1 WHERE id = 0; END;
        CREATE TRIGGER content_version_clock_update AFTER UPDATE ON clock
            BEGIN UPDATE content_version SET n = n + 1 WHERE id = 0; END;
        CREATE TRIGGER content_version_clock_delete AFTER DELETE ON clock
            BEGIN UPDATE content_version SET n = n + 1 WHERE id = 0; END;
        CREATE TRIGGER content_version_document_delete AFTER DELETE ON documents
            BEGIN UPDATE content_version SET n = n + 1 WHERE id = 0; END;
        """

    /// A number that grows whenever the documents may have changed (``contentVersionMigration``),
    /// for read caches (``ReadCache`` in SarabanNode, the web app's response cache): read it
    /// before reading what is cached, so a write landing in between is seen at the next read.
    public func contentVersion() throws(StorageError) -> Int64 {
        try read { db in
            try Int64.fetchOne(db.cachedStatement(sql: "SELECT n FROM content_version WHERE id = 0")) ?? 0
        }
    }
}
