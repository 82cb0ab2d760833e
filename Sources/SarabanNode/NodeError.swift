import SarabanStorage

/// An error from the node layer. `message` says what happened and what to do next; the CLI
/// prints it as is and exits with ``Code/exitCode``.
public struct NodeError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Internal: String, Sendable {
            case notInitialized, alreadyInitialized, readOnly, corruptKey, insecureKey, badConfig
            case foreignDatabase, newerSchema, storage, busy
            case unknownDocument, ambiguousDocument, unknownField, invalidArgument, invalidFile, io, refused
            case unreachable, wrongPassphrase
        }

        private let value: Internal
        private init(_ value: Internal) { self.value = value }

        /// The data directory does not exist or was never initialised.
        public static var notInitialized: Self { .init(.notInitialized) }
        /// `init` on a directory that already holds a node.
        public static var alreadyInitialized: Self { .init(.alreadyInitialized) }
        /// The data directory (or a file in it) cannot be written.
        public static var readOnly: Self { .init(.readOnly) }
        /// `node.key` is missing, truncated, or fails its self-check.
        public static var corruptKey: Self { .init(.corruptKey) }
        /// A key file (`node.key`, an officer's key) that group or others may read: refused
        /// until its mode is fixed (`chmod 600 FILE`), as ssh refuses such a private key.
        public static var insecureKey: Self { .init(.insecureKey) }
        /// `config.json` does not parse or misses a field.
        public static var badConfig: Self { .init(.badConfig) }
        /// `saraban.db` is not a Saraban database.
        public static var foreignDatabase: Self { .init(.foreignDatabase) }
        /// `saraban.db` was written by a newer saraban.
        public static var newerSchema: Self { .init(.newerSchema) }
        /// Any other database failure (damage, wrong replica).
        public static var storage: Self { .init(.storage) }
        /// The database is locked by another process.
        public static var busy: Self { .init(.busy) }
        /// No document has this id or prefix.
        public static var unknownDocument: Self { .init(.unknownDocument) }
        /// A prefix matches several documents.
        public static var ambiguousDocument: Self { .init(.ambiguousDocument) }
        /// The document has no such field (or the field has another type).
        public static var unknownField: Self { .init(.unknownField) }
        /// A malformed argument (FIELD=VALUE, position, empty name...).
        public static var invalidArgument: Self { .init(.invalidArgument) }
        /// A change file that is not one, or is damaged.
        public static var invalidFile: Self { .init(.invalidFile) }
        /// The core refused a local edit (deleted document, field of another type, position out of range).
        public static var refused: Self { .init(.refused) }
        /// Other file-system failures.
        public static var io: Self { .init(.io) }
        /// A peer could not be reached or the sync with it did not finish (`saraban sync`).
        public static var unreachable: Self { .init(.unreachable) }
        /// The passphrase does not open the officer's key (or the key file was modified): nothing signed.
        public static var wrongPassphrase: Self { .init(.wrongPassphrase) }

        public var description: String { value.rawValue }

        /// The process exit status the CLI uses for this code (documented in Docs/CLI.md).
        public var exitCode: Int32 {
            switch value {
            case .invalidArgument: return 64
            case .invalidFile: return 65
            case .refused: return 68
            case .notInitialized: return 66
            case .unknownDocument, .ambiguousDocument, .unknownField: return 67
            case .unreachable: return 69
            case .alreadyInitialized: return 73
            case .io, .storage: return 74
            case .busy: return 75
            case .readOnly, .wrongPassphrase: return 77
            case .corruptKey, .insecureKey, .badConfig: return 78
            case .foreignDatabase, .newerSchema: return 79
            }
        }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// Wraps a storage error, keeping its message.
    public init(_ error: StorageError) {
        switch error.code {
        case .foreignDatabase, .notSQLite: self.init(.foreignDatabase, error.message)
        case .newerSchema: self.init(.newerSchema, error.message)
        case .readOnly: self.init(.readOnly, error.message)
        case .busy: self.init(.busy, error.message)
        case .notFound: self.init(.notInitialized, error.message)
        case .notAllowed: self.init(.refused, error.message)
        default: self.init(.storage, error.description)
        }
    }
}
