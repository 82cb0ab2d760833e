import GRDB

extension Store {
    /// A number that changes whenever a document does: every change applied, made here or
    /// received by sync, raises one `(space, author)` sequence number in `clock` in the same
    /// transaction that writes its documents. The count of rows is folded in, so a space left
    /// (its rows gone) changes it too. For read caches (``ReadCache`` in SarabanNode): read it
    /// before reading what is cached, so a write landing in between is seen at the next read.
    public func contentVersion() throws(StorageError) -> Int64 {
        try read { db in
            let row = try Row.fetchOne(db, sql: "SELECT count(*), coalesce(sum(seq), 0) FROM clock")
            let rows: Int64 = row?[0] ?? 0
            let seqs: Int64 = row?[1] ?? 0
            return seqs &* 1_000_003 &+ rows
        }
    }
}
