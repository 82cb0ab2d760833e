import Foundation
import SarabanCore
import SarabanCrypto
import SarabanSync
import SarabanTransport

#if canImport(Glibc)
import Glibc
#endif

/// Monotonic nanoseconds (the whole fleet runs in one process, so one clock serves every office).
public func fleetNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// What the offices of a fleet report: letters written and delivered, delivery latencies, and
/// anything that breaks "every envelope exactly once in each feed".
public final class FleetLedger: @unchecked Sendable {
    private let lock = NSLock()
    private var latencies: [UInt64] = []
    private var recording = true
    public private(set) var written = 0
    public private(set) var delivered = 0
    /// Envelopes a relay handed an office that it already held (dropped; counted, never applied twice).
    public private(set) var duplicates = 0
    /// Envelopes that did not extend the office's copy of their author's feed (a gap: out of order).
    public private(set) var outOfOrder = 0
    /// Envelopes that did not open with the space key or held no letter.
    public private(set) var unreadable = 0

    public init() {}

    func wrote() { lock.withLock { written += 1 } }

    func delivered(latency: UInt64?) {
        lock.withLock {
            delivered += 1
            if let latency, recording { latencies.append(latency) }
        }
    }

    func duplicate() { lock.withLock { duplicates += 1 } }
    func gap() { lock.withLock { outOfOrder += 1 } }
    func unreadableEnvelope() { lock.withLock { unreadable += 1 } }

    /// Starts a measurement window: latencies recorded before it are dropped.
    public func resetLatencies() { lock.withLock { latencies = [] } }

    /// The `q` quantile (0…1) of the delivery latencies recorded, in seconds (nan when none).
    public func latency(quantile q: Double) -> Double {
        let sorted = lock.withLock { latencies }.sorted()
        guard !sorted.isEmpty else { return .nan }
        let i = min(sorted.count - 1, max(0, Int((Double(sorted.count) * q).rounded(.up)) - 1))
        return Double(sorted[i]) / 1e9
    }

    public var latencyCount: Int { lock.withLock { latencies.count } }
}

/// One simulated office: its own Ed25519 identity and spaces (each with its key), held in memory,
/// speaking the real protocol (``SyncStoreDriver`` under a ``PeerConnection`` over Noise).
///
/// It writes letters as real changes (a `letter` document with subject, body and the monotonic
/// time it was written), seals each into an envelope chained on its feed and signed, and pushes
/// it to its open session. Envelopes delivered from other offices are opened with the space key,
/// their letter read, and the delay since it was written recorded in the ``FleetLedger``. It keeps
/// its own envelopes at least until its relay's acknowledgements show the relay holds them (what
/// an office does when a relay refuses or dies: keep and retry on the next session).
public final class FleetOffice: SyncStoreDriver, @unchecked Sendable {
    struct SpaceState {
        var key: SymmetricKey
        /// What this office holds of the space: its own feed and what it received.
        var vector = FeedVector()
        /// Its own feed's head.
        var head = FeedHead()
        /// Its own envelopes kept, in chain order: those no relay is known to hold yet, and with
        /// ``FleetOffice/keepsAcknowledged`` every one.
        var outbox: [Envelope] = []
        /// The last of its own sequence numbers a relay acknowledged.
        var acknowledged: UInt64 = 0
    }

    public let index: Int
    public let identity: SigningKeyPair
    public var nodeID: NodeID { identity.publicKey.nodeID }
    let ledger: FleetLedger
    let bodyBytes: Int
    /// Every letter's body text (built once: a load generator's own cost is not the relays').
    let body: String
    let replica: ReplicaID
    private let lock = NSLock()
    private var spaces: [SpaceID: SpaceState]
    private var subscribers: [Int: @Sendable (StoredEnvelopes) -> Void] = [:]
    private var nextSubscriber = 0
    private var nextOp: UInt64 = 1
    /// Keeps its own envelopes after a relay acknowledged them, as a real office keeps them in
    /// its database. A relay process whose summary lags the store (its watcher still catching
    /// up, as right after PostgreSQL returns) asks for envelopes another process acknowledged:
    /// an office that dropped them cannot send them, and its session waits until it times out.
    /// The fault tests keep them; the benchmark drops them, bounding the load generator's memory.
    public let keepsAcknowledged: Bool

    /// - Parameters:
    ///   - spaces: the spaces this office is a member of, with their (epoch 0) keys.
    ///   - bodyBytes: the size of each letter's body text (the sealed envelope is about 300 bytes more).
    public init(
        index: Int, identity: SigningKeyPair, spaces: [SpaceID: SymmetricKey], ledger: FleetLedger, bodyBytes: Int = 1200,
        keepsAcknowledged: Bool = false
    ) {
        self.index = index
        self.keepsAcknowledged = keepsAcknowledged
        self.identity = identity
        self.ledger = ledger
        self.bodyBytes = bodyBytes
        body = String(repeating: "ก", count: bodyBytes / 3)
        replica = ReplicaID(bytes: identity.publicKey.rawRepresentation)
        self.spaces = spaces.mapValues { SpaceState(key: $0) }
    }

    public var spaceIDs: [SpaceID] { lock.withLock { spaces.keys.sorted() } }

    /// What this office holds of `space` (nil: not a member).
    public func vector(of space: SpaceID) -> FeedVector? { lock.withLock { spaces[space]?.vector } }

    /// Own envelopes not yet known to be held by a relay.
    public var unacknowledged: Int {
        lock.withLock { spaces.values.reduce(0) { n, s in n + s.outbox.count { $0.header.seqEnd > s.acknowledged } } }
    }

    /// Writes one letter in `space`: a real change sealed into the next envelope of this office's
    /// feed, pushed to the open session at once.
    @discardableResult
    public func write(in space: SpaceID) throws -> Envelope {
        let sent = fleetNanoseconds()
        let e: Envelope = try lock.withLock {
            guard var s = spaces[space] else { throw FleetError("office \(index) is not a member of space \(space)") }
            let seq = s.head.lastSequence + 1
            var tx = Transaction(author: replica, seq: seq, startOp: nextOp, time: 1_780_000_000_000 + Int64(seq), deps: VersionVector())
            var docs = MemoryStore()
            let doc = try tx.createDocument(kind: "letter", in: &docs)
            try tx.set(doc, field: "subject", value: .string("หนังสือที่ \(index)/\(seq)"), in: &docs)
            try tx.set(doc, field: "body", value: .string(body), in: &docs)
            try tx.set(doc, field: Self.sentField, value: .int(Int64(sent)), in: &docs)
            guard let change = tx.finish() else { throw FleetError("an empty letter") }
            nextOp = change.maxOp + 1
            let header = EnvelopeHeader(
                spaceID: space.bytes, author: identity.publicKey, seqStart: seq, seqEnd: seq, epoch: 0,
                previousHash: s.head.lastID)
            let plaintext = EnvelopePayload.encode([change.encoded()], capacity: bodyBytes + 200)
            let e = try Envelope.seal(plaintext: plaintext, header: header, key: s.key, signer: identity)
            s.head = FeedHead(lastSequence: seq, lastID: e.id)
            _ = s.vector.add(e.header)
            s.outbox.append(e)
            spaces[space] = s
            return e
        }
        ledger.wrote()
        publish(StoredEnvelopes(space: space, envelopes: [e]))
        return e
    }

    static let sentField = "sent_ns"

    /// The relay (as its session reports) holds `vector` of `space`: own envelopes it covers are
    /// acknowledged (and leave the outbox, unless ``keepsAcknowledged``).
    public func relayHolds(space: SpaceID, vector: FeedVector) {
        let me = identity.publicKey
        lock.withLock {
            guard var s = spaces[space] else { return }
            let held = vector[me]
            guard held > s.acknowledged else { return }
            s.acknowledged = held
            if !keepsAcknowledged { s.outbox.removeAll { $0.header.seqEnd <= held } }
            spaces[space] = s
        }
    }

    private func publish(_ update: StoredEnvelopes) {
        let all = lock.withLock { Array(subscribers.values) }
        for deliver in all { deliver(update) }
    }

    // MARK: SyncStoreDriver

    public func carriedSpaces(for peer: NodeID) async throws -> [SpaceID: FeedVector] {
        lock.withLock { spaces.mapValues(\.vector) }
    }

    /// Only the office's own envelopes are kept (those no relay acknowledged, or all of them with
    /// ``keepsAcknowledged``): a relay asks an office for nothing else, since everything else it
    /// sent came from a relay.
    public func fetch(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (envelopes: [Envelope], complete: Bool) {
        let me = identity.publicKey
        return lock.withLock {
            guard let s = spaces[space] else { return ([], true) }
            let from = after[me]
            let wanted = s.outbox.filter { $0.header.seqEnd > from }
            let n = max(1, min(limit.envelopes, wanted.count))
            return (Array(wanted.prefix(n)), wanted.count <= n)
        }
    }

    public func deliver(space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey) async throws -> FeedVector {
        store(space: space, envelopes: envelopes)
    }

    /// An office keeps what it receives in memory: stored at once, in the session's own task.
    public var deliversDirectly: Bool { true }

    public func deliver(
        space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey,
        then done: @escaping @Sendable (Result<FeedVector, any Error>) -> Void
    ) {
        done(.success(store(space: space, envelopes: envelopes)))
    }

    private func store(space: SpaceID, envelopes: [Envelope]) -> FeedVector {
        let arrived = fleetNanoseconds()
        guard let key = lock.withLock({ spaces[space]?.key }) else { return FeedVector() }
        var read: [(Envelope, UInt64?)] = []
        for e in envelopes { read.append((e, Self.sentTime(of: e, key: key))) }
        return lock.withLock {
            guard var s = spaces[space] else { return FeedVector() }
            for (e, sent) in read {
                let h = e.header
                if h.seqEnd <= s.vector[h.author] {
                    ledger.duplicate()
                    continue
                }
                guard h.seqStart == s.vector[h.author] + 1 else {
                    ledger.gap()
                    continue
                }
                if sent == nil { ledger.unreadableEnvelope() }
                _ = s.vector.add(h)
                ledger.delivered(latency: sent.map { arrived > $0 ? arrived - $0 : 0 })
            }
            spaces[space] = s
            return s.vector
        }
    }

    /// Opens `e` and reads the time its letter was written (nil: it does not open or holds no letter).
    static func sentTime(of e: Envelope, key: SymmetricKey) -> UInt64? {
        guard let opened = try? EnvelopePayload.open(e, key: key) else { return nil }
        for change in opened.changes {
            for op in change.ops {
                if case .set(_, let field, .int(let t), _) = op, field == sentField { return UInt64(t) }
            }
        }
        return nil
    }

    public func localChanges() -> AsyncStream<StoredEnvelopes> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoredEnvelopes.self)
        let end = subscribe { continuation.yield($0) }
        continuation.onTermination = { _ in end() }
        return stream
    }

    public func localChanges(for peer: NodeID, deliver: @escaping @Sendable (StoredEnvelopes) -> Void) -> @Sendable () -> Void {
        subscribe(deliver)
    }

    private func subscribe(_ deliver: @escaping @Sendable (StoredEnvelopes) -> Void) -> @Sendable () -> Void {
        let id = lock.withLock {
            nextSubscriber += 1
            subscribers[nextSubscriber] = deliver
            return nextSubscriber
        }
        return { [weak self] in
            guard let self else { return }
            self.lock.withLock { _ = self.subscribers.removeValue(forKey: id) }
        }
    }

    public func attachmentHandler(for peer: NodeID) -> (any AttachmentHandler)? { nil }
}

public struct FleetError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
