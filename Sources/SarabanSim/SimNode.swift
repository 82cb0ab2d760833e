import SarabanCore
import SarabanCrypto
import SarabanSync

/// Deterministic key material from a seed (the simulator never draws from the system's entropy
/// for keys, so a seed names the whole run).
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

/// One space as a node holds it: the state that a real node keeps in SQLite.
public struct SimSpace: Sendable {
    /// Every envelope accepted, in the order accepted (each author's in chain order).
    public var log: [Envelope] = []
    public var vector = FeedVector()
    public var verifier: FeedVerifier
    /// The space key of epoch 1; nil on a relay, which never holds one.
    public var key: SymmetricKey?
    /// The CRDT replica (members only).
    public var replica: Replica?
    /// The id of this node's own last envelope (its chain head).
    public var lastOwnID = EnvelopeID.zero

    init(space: SpaceID, key: SymmetricKey?, replicaID: ReplicaID?) {
        verifier = FeedVerifier(spaceID: space.bytes, knownEpochs: [1])
        self.key = key
        replica = replicaID.map { Replica(id: $0) }
    }
}

/// A node: a member office or the relay. Its durable state is `committed`: what the last
/// commit (an SQLite transaction in the real node) left on disk. A crash throws away everything else.
public final class SimNode {
    public let index: Int
    public let name: String
    public let keys: SigningKeyPair
    public let role: NodeRole
    /// The live state (memory).
    public var spaces: [SpaceID: SimSpace] = [:]
    /// The state at the last commit (disk).
    public private(set) var committed: [SpaceID: SimSpace] = [:]
    public var isUp = true
    /// Envelopes refused, by error code (replays counted apart: they are legitimate).
    public var refused: [CryptoError.Code: Int] = [:]
    public var replays = 0
    /// Changes opened that failed to decode or apply (must stay 0).
    public var applyFailures: [String] = []
    /// How many envelopes this node has been delivered in total (for planted bugs).
    var deliveredCount = 0
    /// Envelopes silently lost by a planted bug.
    public var plantedLosses = 0
    public var commits = 0

    init(index: Int, name: String, keys: SigningKeyPair, role: NodeRole) {
        self.index = index
        self.name = name
        self.keys = keys
        self.role = role
    }

    public var author: SigningPublicKey { keys.publicKey }
    public var replicaID: ReplicaID { ReplicaID(bytes: keys.publicKey.rawRepresentation) }
    public var isMember: Bool { role == .member }

    func join(_ id: SpaceID, key: SymmetricKey) {
        spaces[id] = SimSpace(space: id, key: isMember ? key : nil, replicaID: isMember ? replicaID : nil)
        commit()
    }

    /// Makes the live state durable (value types: the copy is the snapshot).
    func commit() {
        committed = spaces
        commits += 1
    }

    /// Loses memory: only what was committed survives.
    func crash() {
        isUp = false
        spaces = committed
    }

    func restart() { isUp = true }

    var sortedSpaces: [SpaceID] { spaces.keys.sorted() }

    /// The configuration a new session starts from.
    var sessionSpaces: [SpaceID: FeedVector] { spaces.mapValues(\.vector) }

    /// Seals `changes` (consecutive, just made by this node's replica) into one envelope and stores it.
    func seal(_ id: SpaceID, _ changes: [Change]) -> Envelope {
        var s = spaces[id]!
        let plain = EnvelopePayload.encode(changes: changes)
        let header = EnvelopeHeader(
            spaceID: id.bytes, author: author, seqStart: changes.first!.seq, seqEnd: changes.last!.seq, epoch: 1,
            previousHash: s.lastOwnID)
        let e = try! Envelope.seal(plaintext: plain, header: header, key: s.key!, signer: keys)
        do { try s.verifier.accept(e) } catch { applyFailures.append("own envelope refused: \(error)") }
        s.lastOwnID = e.id
        s.log.append(e)
        s.vector.add(e.header)
        spaces[id] = s
        return e
    }

    /// Verifies, stores and (on a member) opens and applies; returns the envelopes accepted.
    /// `dropEvery` is the planted bug of the mutation check: every n-th delivered envelope is lost
    /// silently while the node still claims to hold it.
    func ingest(_ id: SpaceID, _ envelopes: [Envelope], dropEvery: Int?) -> [Envelope] {
        guard var s = spaces[id] else { return [] }
        var accepted: [Envelope] = []
        for e in envelopes {
            deliveredCount += 1
            if let n = dropEvery, deliveredCount % n == 0 {
                plantedLosses += 1
                s.vector.add(e.header)  // the lie: claims to hold it
                continue
            }
            do {
                try s.verifier.accept(e)
            } catch {
                if error.code == .feedReplay { replays += 1 } else { refused[error.code, default: 0] += 1 }
                continue
            }
            s.log.append(e)
            s.vector.add(e.header)
            accepted.append(e)
            if let key = s.key {
                do {
                    // The changes must be exactly the header's: its author, seqStart…seqEnd in order.
                    for c in try EnvelopePayload.open(e, key: key).changes { try s.replica!.receive(c) }
                } catch {
                    applyFailures.append("\(name): envelope \(e.id) from a verified author did not open/apply: \(error)")
                }
            }
        }
        spaces[id] = s
        return accepted
    }

    /// The store read behind a session's `.fetch`.
    func read(_ id: SpaceID, after: FeedVector, limit: FetchLimit) -> (envelopes: [Envelope], complete: Bool) {
        guard let s = spaces[id] else { return ([], true) }
        var out: [Envelope] = []
        var bytes = 0
        for e in s.log where e.header.seqEnd > after[e.header.author] {
            if out.count >= limit.envelopes || (!out.isEmpty && bytes + e.bytes.count > limit.bytes) { return (out, false) }
            out.append(e)
            bytes += e.bytes.count
        }
        return (out, true)
    }
}

/// The plaintext inside an envelope: each change as `length (u32 BE) ‖ Change.encoded()`.
