import Foundation
import Logging
import Synchronization
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanStorage
#if canImport(Glibc)
import Glibc
#endif

/// A Saraban node: its data directory, identity, configuration and database, and the
/// high-level operations the CLI (and later the daemon and sync engine) perform on it.
///
/// `Node` is immutable and `Sendable`; all mutable state lives in the database, whose writes
/// are serialised by SQLite (several `saraban` processes may use one data directory).
public final class Node: Sendable {
    public let dataDirectory: DataDirectory
    public let config: NodeConfig
    /// The node's signing identity (Ed25519). Never logged or printed.
    public let identity: SigningKeyPair
    public let nodeID: NodeID
    /// The CRDT core's replica id: the first 16 bytes of the public key.
    public let replica: ReplicaID
    public let store: Store
    /// Member (holds space keys, opens and applies envelopes) or relay (stores and forwards the
    /// spaces it carries, never holds a key). Fixed at `saraban init` (`--relay`), so read once
    /// here: a relay asked for it on every session (about 7 % of its CPU per idle session).
    public let role: NodeRole
    /// The last `config.json` bytes ``syncSettings()`` decoded, and what they gave.
    let settingsCache = Mutex<(bytes: Data, settings: SyncSettings)?>(nil)
    /// What the web app reads on every request, kept per version of the store (ReadCache.swift).
    public let readCache = ReadCache()
    let logger: Logger
    /// Wall-clock milliseconds since 1970 (injectable for tests and simulators).
    let now: @Sendable () -> Int64
    /// `count` random bytes for the keys and salts the node makes (the identity, space ids, epoch
    /// keys): libsodium's generator, or a seeded one in a simulator so a seed names the whole run.
    let random: @Sendable (Int) -> [UInt8]

    public static let systemClock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    public static let systemRandom: @Sendable (Int) -> [UInt8] = { Sodium.randomBytes($0) }

    init(
        dataDirectory: DataDirectory, config: NodeConfig, identity: SigningKeyPair, store: Store, logger: Logger,
        now: @escaping @Sendable () -> Int64, random: @escaping @Sendable (Int) -> [UInt8]
    ) {
        self.dataDirectory = dataDirectory
        self.config = config
        self.identity = identity
        self.nodeID = identity.publicKey.nodeID
        self.replica = ReplicaID(bytes: identity.publicKey.nodeID.replicaBytes)
        self.store = store
        self.role = ((try? store.setting("role")) ?? nil) == "relay" ? .relay : .member
        self.logger = logger
        self.now = now
        self.random = random
    }

    /// A new epoch key from ``random``.
    func newSymmetricKey() throws(NodeError) -> SymmetricKey { try Self.symmetricKey(random) }

    /// A space or epoch key of 32 bytes from `random`.
    ///
    /// - Throws: ``NodeError/Code/io`` when `random` gives another number of bytes (a faulty
    ///   injected generator): the caller writes nothing, and the message never holds the bytes.
    static func symmetricKey(_ random: (Int) -> [UInt8]) throws(NodeError) -> SymmetricKey {
        var bytes = random(SymmetricKey.byteCount)
        defer { for i in bytes.indices { bytes[i] = 0 } }
        do {
            return try SymmetricKey(SecureBytes(bytes))
        } catch {
            throw NodeError(
                .io,
                "the random generator gave \(bytes.count) bytes for a new space key, not \(SymmetricKey.byteCount); "
                    + "nothing was written: the generator is faulty, report it")
        }
    }

    // MARK: - Initialise and open

    /// Creates a node in `dataDir`: the directory (mode 0700), `node.key` (0600), `saraban.db`
    /// (0600: it holds space keys) and `config.json`. A member starts with its default space
    /// "office"; a `relay` holds no space and no key. Refuses a directory that already holds a
    /// node, changing nothing; if any step fails, what this call created is removed again.
    public static func initialize(
        dataDir: DataDirectory,
        office: String,
        letterCode: String? = nil,
        relay: Bool = false,
        logger: Logger = Logger(label: "saraban.node"),
        now: @escaping @Sendable () -> Int64 = Node.systemClock,
        random: @escaping @Sendable (Int) -> [UInt8] = Node.systemRandom
    ) throws(NodeError) -> Node {
        let office = office.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !office.isEmpty else { throw NodeError(.invalidArgument, "the office name is empty; pass --office NAME") }
        if let letterCode, letterCode.trimmingCharacters(in: .whitespaces).isEmpty {
            throw NodeError(.invalidArgument, "the letter code is empty; pass --code LETTERCODE (for example มท) or omit it")
        }
        let fm = FileManager.default
        let dir = dataDir.path
        var isDir: ObjCBool = false
        let existed = fm.fileExists(atPath: dir, isDirectory: &isDir)
        var originalMode: mode_t?
        if existed && !isDir.boolValue {
            throw NodeError(.invalidArgument, "\(dir) exists and is not a directory; choose another --data directory")
        }
        if existed {
            let ours = [dataDir.configPath, dataDir.keyPath, dataDir.databasePath].filter { fm.fileExists(atPath: $0) }
            if !ours.isEmpty {
                let id = (try? NodeConfig.decode(
                    fm.contents(atPath: dataDir.configPath) ?? Data(), path: dataDir.configPath))?.nodeID
                throw NodeError(
                    .alreadyInitialized,
                    "\(dir) already holds a Saraban node\(id.map { " (node id \($0))" } ?? ""); nothing was changed. "
                        + "Use it as is, or pass another --data directory to create a new node")
            }
            if isReadOnly(dir) {
                throw NodeError(.readOnly, "the data directory \(dir) is read-only; make it writable (chmod u+w) or choose another")
            }
            // The directory will hold the node key and the database: owner-only, as if init made it
            // (its old mode comes back if init fails).
            var st = stat()
            if stat(dir, &st) == 0 { originalMode = st.st_mode & 0o7777 }
            guard chmod(dir, 0o700) == 0 else {
                let e = errno
                throw NodeError(
                    e == EPERM || e == EROFS ? .readOnly : .io,
                    "cannot make \(dir) owner-only (chmod 700): \(String(cString: strerror(e))); use a directory you own")
            }
        } else {
            let parent = (dir as NSString).deletingLastPathComponent
            do {
                try fm.createDirectory(atPath: parent, withIntermediateDirectories: true)
            } catch {
                throw NodeError(.readOnly, "cannot create \(parent): \(error.localizedDescription)")
            }
            if isReadOnly(parent) {
                throw NodeError(.readOnly, "cannot create \(dir): its parent directory \(parent) is read-only")
            }
            guard mkdir(dir, 0o700) == 0 else {
                let e = errno
                throw NodeError(
                    e == EACCES || e == EROFS ? .readOnly : .io, "cannot create \(dir): \(String(cString: strerror(e)))")
            }
        }

        var created: [String] = []
        func rollback() {
            for p in created.reversed() { try? fm.removeItem(atPath: p) }
            for suffix in ["-wal", "-shm"] { try? fm.removeItem(atPath: dataDir.databasePath + suffix) }
            if !existed { rmdir(dir) }
            if let originalMode { chmod(dir, originalMode) }
        }
        do {
            var seed = random(32)
            defer { for i in seed.indices { seed[i] = 0 } }
            let identity = try SigningKeyPair(seed: SecureBytes(seed))
            try KeyFile.write(identity, to: dataDir.keyPath)
            created.append(dataDir.keyPath)
            let replica = ReplicaID(bytes: identity.publicKey.nodeID.replicaBytes)
            created.append(dataDir.databasePath)
            let store: Store
            do {
                store = try Store.open(path: dataDir.databasePath, replica: replica, create: true, logger: logger)
            } catch {
                throw NodeError(error)
            }
            try setUpSpaces(
                store: store, identity: identity, office: office, relay: relay, path: dataDir.databasePath, now: now(),
                random: random)
            let config = NodeConfig(office: office, letterCode: letterCode, nodeID: identity.publicKey.nodeID.text)
            try writeNew(config.encoded(), to: dataDir.configPath, mode: 0o644)
            created.append(dataDir.configPath)
            logger.info(
                "initialised node", metadata: ["node": "\(config.nodeID)", "dir": "\(dir)", "office": "\(office)"])
            return Node(
                dataDirectory: dataDir, config: config, identity: identity, store: store, logger: logger, now: now, random: random)
        } catch let error as NodeError {
            rollback()
            throw error
        } catch {
            rollback()
            throw NodeError(.io, "\(error)")
        }
    }

    /// Opens an initialised node, checking each file and refusing with a typed, actionable
    /// error: missing or uninitialised directory, read-only directory, broken config,
    /// corrupted key, foreign or newer database.
    public static func open(
        dataDir: DataDirectory,
        logger: Logger = Logger(label: "saraban.node"),
        now: @escaping @Sendable () -> Int64 = Node.systemClock,
        random: @escaping @Sendable (Int) -> [UInt8] = Node.systemRandom
    ) throws(NodeError) -> Node {
        let fm = FileManager.default
        let dir = dataDir.path
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir, isDirectory: &isDir) else {
            throw NodeError(
                .notInitialized,
                "no Saraban data directory at \(dir): run `saraban init --office NAME` first "
                    + "(or pass --data DIR, or set \(DataDirectory.environmentVariable))")
        }
        guard isDir.boolValue else {
            throw NodeError(.notInitialized, "\(dir) is not a directory; pass --data DIR naming a Saraban data directory")
        }
        guard fm.fileExists(atPath: dataDir.configPath) else {
            let partial = fm.fileExists(atPath: dataDir.keyPath) || fm.fileExists(atPath: dataDir.databasePath)
            throw NodeError(
                .notInitialized,
                partial
                    ? "\(dir) holds an incomplete Saraban node (config.json is missing); restore config.json from a "
                        + "backup, or move the directory aside and run `saraban init --office NAME`"
                    : "\(dir) is not an initialised Saraban data directory: run `saraban init --office NAME` first")
        }
        if isReadOnly(dir) || (fm.fileExists(atPath: dataDir.databasePath) && isReadOnly(dataDir.databasePath)) {
            throw NodeError(
                .readOnly,
                "the data directory \(dir) is read-only; saraban writes its database and journal there: make it "
                    + "writable by this user (chmod u+w \(dir)) or work on a copy")
        }
        guard let configData = fm.contents(atPath: dataDir.configPath) else {
            throw NodeError(.readOnly, "cannot read \(dataDir.configPath): check its owner and permissions")
        }
        let config = try NodeConfig.decode(configData, path: dataDir.configPath)
        let identity = try KeyFile.load(from: dataDir.keyPath)
        guard identity.publicKey.nodeID.text == config.nodeID else {
            throw NodeError(
                .badConfig,
                "\(dataDir.configPath) names node \(config.nodeID) but node.key holds \(identity.publicKey.nodeID.text); "
                    + "the two files come from different nodes: restore the matching pair")
        }
        guard fm.fileExists(atPath: dataDir.databasePath) else {
            throw NodeError(
                .storage,
                "the database \(dataDir.databasePath) is missing; restore it from a backup (a node with its key and "
                    + "config but no database can be re-synced from a peer once sync exists)")
        }
        let replica = ReplicaID(bytes: identity.publicKey.nodeID.replicaBytes)
        let store: Store
        do {
            store = try Store.open(path: dataDir.databasePath, replica: replica, create: false, logger: logger)
        } catch {
            throw NodeError(error)
        }
        logger.debug("opened node", metadata: ["node": "\(config.nodeID)", "dir": "\(dir)"])
        let node = Node(
            dataDirectory: dataDir, config: config, identity: identity, store: store, logger: logger, now: now, random: random)
        // A space made before the membership log gets one from its creator (a no-op otherwise).
        node.upgradeSpaces()
        // Letters of the shared-letter model get this office's records, once (Correspondence+Migration.swift).
        do { try node.correspondence.migrateSharedLetters() } catch {
            logger.warning("could not give the letters of the shared-letter model their records", metadata: ["error": "\(error)"])
        }
        return node
    }

    /// Closes the database.
    public func close() {
        try? store.close()
    }

    // MARK: - Files

    /// Whether `path` must be treated as read-only: not writable for this user, no owner write
    /// bit (honoured even for root, which bypasses permission checks), or on a read-only mount.
    static func isReadOnly(_ path: String) -> Bool {
        if access(path, W_OK) != 0 { return true }
        var st = stat()
        if stat(path, &st) == 0 && st.st_mode & S_IWUSR == 0 { return true }
        var vfs = statvfs()
        if statvfs(path, &vfs) == 0 && vfs.f_flag & UInt(ST_RDONLY) != 0 { return true }
        return false
    }

    /// Creates `path` exclusively (never overwrites) and writes `data` to it.
    static func writeNew(_ data: Data, to path: String, mode: mode_t) throws(NodeError) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = errno
            if e == EEXIST { throw NodeError(.alreadyInitialized, "\(path) already exists; it was left unchanged") }
            throw NodeError(
                e == EACCES || e == EROFS ? .readOnly : .io, "cannot create \(path): \(String(cString: strerror(e)))")
        }
        defer { Glibc.close(fd) }
        let bytes = [UInt8](data)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw NodeError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw NodeError(.io, "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }
}
