/// An error from the storage layer: what went wrong, what to do next, and the SQLite result code
/// underneath when there is one.
///
/// `Code` is an extensible struct (new codes do not break callers that switch with `default`),
/// in the manner of NIO's `FileSystemError` and Hummingbird's `PersistError`.
public struct StorageError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Internal: String, Sendable {
            case notSQLite
            case foreignDatabase
            case newerSchema
            case readOnly
            case busy
            case corrupt
            case wrongReplica
            case notFound
            case wrongSpace
            case notAMember
            case notAllowed
            case closed
            case io
        }

        private let value: Internal
        private init(_ value: Internal) { self.value = value }

        /// The file is not an SQLite database at all.
        public static var notSQLite: Self { .init(.notSQLite) }
        /// An SQLite database that belongs to another application (its `application_id` is not Saraban's).
        public static var foreignDatabase: Self { .init(.foreignDatabase) }
        /// A Saraban database written by a newer build: this build must not touch it.
        public static var newerSchema: Self { .init(.newerSchema) }
        /// The database or its directory cannot be written.
        public static var readOnly: Self { .init(.readOnly) }
        /// Another process held the write lock for longer than the busy timeout.
        public static var busy: Self { .init(.busy) }
        /// Stored bytes failed to decode, or SQLite reported corruption.
        public static var corrupt: Self { .init(.corrupt) }
        /// The database belongs to another node (its replica id differs from this node's key).
        public static var wrongReplica: Self { .init(.wrongReplica) }
        /// A document or row that the caller named does not exist.
        public static var notFound: Self { .init(.notFound) }
        /// A change or edit names a document of another space.
        public static var wrongSpace: Self { .init(.wrongSpace) }
        /// This node is not (or no longer) a member of the space it tried to write in.
        public static var notAMember: Self { .init(.notAMember) }
        /// The space's authority rules refuse the write (not an admin, not an owner, a rekey out of turn).
        public static var notAllowed: Self { .init(.notAllowed) }
        /// The store was closed (or is closing): the operation did not start.
        public static var closed: Self { .init(.closed) }
        /// Any other SQLite or file-system failure.
        public static var io: Self { .init(.io) }

        public var description: String { value.rawValue }
    }

    public let code: Code
    /// What happened and what to do next, written for the operator.
    public let message: String
    /// The SQLite (extended) result code, when SQLite reported the failure.
    public let sqliteCode: Int32?
    /// The database file concerned, when known.
    public let path: String?

    public init(_ code: Code, _ message: String, sqliteCode: Int32? = nil, path: String? = nil) {
        self.code = code
        self.message = message
        self.sqliteCode = sqliteCode
        self.path = path
    }

    public var description: String {
        var s = message
        if let sqliteCode { s += " (SQLite result code \(sqliteCode))" }
        return s
    }
}
