import Foundation
import GRDB
import GRDBSQLite
import SarabanCore

/// Appends encoded changes to the `changes` table through one prepared statement, binding the
/// values straight to SQLite (GRDB's `StatementArguments` cost about a microsecond per row,
/// as much as SQLite's own insert).
///
/// The statement is GRDB's cached statement for this connection; only this type steps it, through
/// ``GRDB/Statement/stepBound(_:_:)``, which always leaves it reset.
struct ChangeLogInsert {
    let statement: Statement
    /// The space (16 bytes) every row of this insert belongs to.
    let space: [UInt8]

    init(_ db: Database, space: Data) throws {
        statement = try db.cachedStatement(
            sql: "INSERT OR IGNORE INTO changes(space, author, seq, start_op, time, bytes) VALUES (?, ?, ?, ?, ?, ?)")
        self.space = [UInt8](space)
    }

    /// Inserts one change (a change already logged is left as it is).
    func insert(author: [UInt8], seq: UInt64, startOp: UInt64, time: Int64, bytes: [UInt8]) throws {
        try space.withUnsafeBytes { sp in
            try author.withUnsafeBytes { a in
                try bytes.withUnsafeBytes { b in
                    try statement.stepBound("cannot append to the change log") { s in
                        sqlite3_bind_blob(s, 1, sp.baseAddress, Int32(sp.count), nil)
                        sqlite3_bind_blob(s, 2, a.baseAddress, Int32(a.count), nil)
                        sqlite3_bind_int64(s, 3, Int64(bitPattern: seq))
                        sqlite3_bind_int64(s, 4, Int64(bitPattern: startOp))
                        sqlite3_bind_int64(s, 5, time)
                        sqlite3_bind_blob(s, 6, b.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(b.count), nil)
                    }
                }
            }
        }
    }

    /// Inserts `c`, logged as `bytes` when given (an encoding that decodes to `c`, as its author
    /// sealed it), else as `c.encoded()`.
    func insert(_ c: Change, bytes: [UInt8]? = nil) throws {
        try insert(author: c.author.bytes, seq: c.seq, startOp: c.startOp, time: c.time, bytes: bytes ?? c.encoded())
    }
}

extension Statement {
    /// Steps this (cached) statement once with the values `bind` binds straight to its SQLite
    /// handle, then resets it and clears the bindings, so GRDB's bookkeeping is unaffected.
    /// `bind` binds with SQLITE_STATIC (nil destructor): the buffers it binds must outlive this call.
    func stepBound(_ what: @autoclosure () -> String, _ bind: (OpaquePointer) -> Void) throws {
        let s = sqliteStatement
        bind(s)
        let rc = sqlite3_step(s)
        sqlite3_reset(s)
        sqlite3_clear_bindings(s)
        guard rc == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: rc), message: what())
        }
    }
}
