import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage
import SarabanSync

/// Deterministic key material from a seed (for the bad-input catalogue's forgeries and the fuzz
/// corpus; the simulated nodes draw their own keys from a ``SimEntropy``).
public enum SimKeys {
    public static func bytes(_ seed: UInt64, _ count: Int) -> [UInt8] {
        var rng = SplitMix64(seed: seed)
        var out: [UInt8] = []
        while out.count < count {
            let x = rng.next()
            for i in 0..<8 where out.count < count { out.append(UInt8(truncatingIfNeeded: x >> (8 * UInt64(i)))) }
        }
        return out
    }

    public static func signing(_ seed: UInt64) -> SigningKeyPair {
        try! SigningKeyPair(seed: SecureBytes(bytes(seed, 32)))
    }

    public static func space(_ seed: UInt64) -> SymmetricKey {
        try! SymmetricKey(SecureBytes(bytes(seed ^ 0x5ACE_0000_0000_0001, 32)))
    }
}

/// The virtual clock every simulated node reads (`Node`'s `now`). One simulation, one thread.
final class SimClock: @unchecked Sendable {
    /// Virtual milliseconds since the run began.
    var now: UInt64 = 1_000
    /// What the nodes see: a June 2025 morning (Thai time) plus the virtual time.
    static let epoch: Int64 = 1_749_780_000_000
    var wallMillis: Int64 { Self.epoch + Int64(now) }
}

/// A node's seeded randomness (`Node`'s `random`): its identity, the salts of the spaces it
/// creates and the epoch keys it makes, drawn in the order the node asks, across restarts.
/// The correspondence path draws here too (dispatch keys, nonces, the boxes of dispatches and
/// receipts); envelope nonces and the membership code's sealed boxes stay libsodium's: no
/// decision depends on their bytes.
final class SimEntropy: @unchecked Sendable {
    private var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count + 8)
        while out.count < count {
            let x = rng.next()
            for i in 0..<8 where out.count < count { out.append(UInt8(truncatingIfNeeded: x >> (8 * UInt64(i)))) }
        }
        return out
    }
}

/// One simulated node: a real ``Node`` (its `Store` on its own SQLite database) in a data
/// directory of its own, opened, crashed (files frozen mid-flight, connections closed without
/// committing), powered off (files rewound to their last fsync) and reopened by the simulation.
public final class SimNode {
    public let index: Int
    public let name: String
    public let role: NodeRole
    /// The data directory (config.json, node.key, saraban.db).
    public let directory: String
    let dataDirectory: DataDirectory
    let clock: SimClock
    let entropy: SimEntropy
    /// The store's hooks (a planted bug, the rogue's skipped checks; with none set, the real path).
    let hooks: StoreTestHooks?
    /// The running node; nil while crashed.
    public private(set) var node: Node?
    public let keys: SigningKeyPair
    /// The envelope log position up to which this node's stored envelopes were announced to
    /// its sessions (the daemon's poller does the same with `newEnvelopes(after:)`).
    var logPosition: Int64 = 0
    /// Envelopes refused, by code; forks seen (each a failure); duplicates.
    public internal(set) var refused: [EnvelopeError.Code: Int] = [:]
    var forks: [String] = []
    public internal(set) var duplicates = 0
    /// Per space, the feed vector this node acknowledged to a peer since it last lost power:
    /// a crash must not lose any of it.
    var acknowledged: [SpaceID: FeedVector] = [:]

    static let quiet = Logger(label: "saraban.sim", factory: { _ in SwiftLogNoOpLogHandler() })

    init(index: Int, name: String, relay: Bool, seed: UInt64, clock: SimClock, powerLoss: Bool, hooks: StoreTestHooks?)
        throws(NodeError)
    {
        self.index = index
        self.name = name
        self.role = relay ? .relay : .member
        self.clock = clock
        self.hooks = hooks
        entropy = SimEntropy(seed: seed)
        directory = SimDisk.makeDirectory(name, powerLoss: powerLoss)
        dataDirectory = DataDirectory(path: directory)
        let entropy = self.entropy
        let node = try Node.initialize(
            dataDir: dataDirectory, office: name, letterCode: relay ? nil : "สม \(index)", relay: relay, logger: Self.quiet, now: { clock.wallMillis },
            random: { entropy.bytes($0) })
        node.store.testHooks = hooks
        keys = node.identity
        self.node = node
    }

    public var isUp: Bool { node != nil }
    public var isMember: Bool { role == .member }
    public var publicKey: SigningPublicKey { keys.publicKey }
    public var nodeID: NodeID { keys.publicKey.nodeID }
    public var replica: ReplicaID { ReplicaID(bytes: keys.publicKey.rawRepresentation) }

    /// The running node (callers check ``isUp`` first).
    var live: Node { node! }

    /// A crash: the files freeze at once (the transaction in flight, if any, never commits and
    /// nothing written while closing reaches them), then the connections close. Returns whether
    /// every file was closed (a file left open would make the restart no restart).
    @discardableResult
    func crash() -> Bool {
        SimDisk.freeze(directory)
        node?.close()
        node = nil
        return SimDisk.openFiles(directory) == 0
    }

    /// Power loss: a crash, then every database file rewinds to its last fsync.
    func losePower() -> Bool {
        crash() && SimDisk.powerLoss(directory)
    }

    /// Reopens the node on what its files hold. Returns `PRAGMA integrity_check`'s complaint, if any.
    func restart() throws(NodeError) -> String? {
        guard SimDisk.thaw(directory) else {
            throw NodeError(.io, "\(name): its database files are still open after the crash")
        }
        let entropy = self.entropy
        let clock = self.clock
        let node = try Node.open(dataDir: dataDirectory, logger: Self.quiet, now: { clock.wallMillis }, random: { entropy.bytes($0) })
        node.store.testHooks = hooks
        self.node = node
        logPosition = try node.changeProbe()
        return SimDisk.integrityProblem(dataDirectory.databasePath)
    }

    /// Closes the node cleanly and deletes its directory (the end of a run).
    func dispose() {
        node?.close()
        node = nil
        SimDisk.remove(directory)
    }
}
