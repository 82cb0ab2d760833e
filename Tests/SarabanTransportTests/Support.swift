import Foundation
import Logging
import NIOCore
import NIOPosix
import SarabanCrypto
import SarabanSync
@_exported import SarabanTestSupport
import Testing

@_spi(Testing) @testable import SarabanTransport

// Test support: an in-memory SyncStoreDriver with real sealed, signed envelopes; servers on
// 127.0.0.1 port 0; a log handler that keeps lines (Locked, eventually, FaultProxy: SarabanTestSupport).

func testSpace(_ n: UInt64) -> SpaceID { SpaceID(hi: 0x5452_414E_5350_0000 | n, lo: n &* 0x9E37_79B9) }

/// A deterministic identity.
func keys(_ n: UInt8) -> SigningKeyPair {
    try! SigningKeyPair(seed: SecureBytes([UInt8](repeating: n, count: 31) + [0x5A]))
}

/// The key every member of the test spaces shares.
let spaceKey = try! SymmetricKey(SecureBytes([UInt8](repeating: 7, count: 32)))

/// A node's envelope store: verifies feeds like a real node, counts what it was given.
final class MemoryStore: SyncStoreDriver, @unchecked Sendable {
    struct Space {
        var log: [Envelope] = []
        var vector = FeedVector()
        var verifier: FeedVerifier
        var lastOwn = EnvelopeID.zero
        var ids: Set<EnvelopeID> = []
    }
    struct State {
        var spaces: [SpaceID: Space] = [:]
        var subscribers: [Int: @Sendable (StoredEnvelopes) -> Void] = [:]
        var nextSubscriber = 0
        /// Subscriptions made through the callback form of `localChanges(for:deliver:)`.
        var callbackSubscriptions = 0
        /// Deliveries stored on the driver's own path (`deliver(space:envelopes:from:then:)`).
        var directDeliveries = 0
        /// Direct deliveries started and not yet done, per peer, and the most seen at once.
        var outstanding: [SigningPublicKey: Int] = [:]
        var mostOutstanding = 0
        /// Envelopes accepted from peers.
        var delivered = 0
        /// Envelopes handed to `deliver` that were already held (resent).
        var redelivered = 0
        var refused = 0
        var deliverCalls = 0
    }

    let keys: SigningKeyPair
    let state = Locked(State())
    /// While true, `fetch` offers nothing: the node announces what it holds but never sends it.
    let holdsBack = Locked(false)

    /// Whether connections get local changes by callback (`localChanges(for:deliver:)`, as a
    /// relay and a fleet office do) rather than by stream, and store deliveries on the driver's
    /// own path (`deliver(space:envelopes:from:then:)`, done later on another thread, as a relay
    /// on PostgreSQL does) rather than on the connection's delivery task.
    let callbacks: Bool

    init(keys: SigningKeyPair, spaces: [SpaceID], callbacks: Bool = false) {
        self.keys = keys
        self.callbacks = callbacks
        state.withLock { s in
            for id in spaces { s.spaces[id] = Space(verifier: FeedVerifier(spaceID: id.bytes, knownEpochs: [1])) }
        }
    }

    /// Seals `count` envelopes of `payload` bytes each in `space`, stores and announces them.
    @discardableResult
    func write(_ space: SpaceID, count: Int, payload: Int = 200) -> [Envelope] {
        let made: [Envelope] = state.withLock { s in
            var sp = s.spaces[space]!
            var made: [Envelope] = []
            for _ in 0..<count {
                let seq = sp.vector[keys.publicKey] + 1
                let header = EnvelopeHeader(
                    spaceID: space.bytes, author: keys.publicKey, seqStart: seq, seqEnd: seq, epoch: 1,
                    previousHash: sp.lastOwn)
                let plain = (0..<payload).map { UInt8(truncatingIfNeeded: $0 &+ Int(seq)) }
                let e = try! Envelope.seal(plaintext: plain, header: header, key: spaceKey, signer: keys)
                try! sp.verifier.accept(e)
                sp.lastOwn = e.id
                sp.log.append(e)
                sp.ids.insert(e.id)
                sp.vector.add(header)
                made.append(e)
            }
            s.spaces[space] = sp
            return made
        }
        announce(StoredEnvelopes(space: space, envelopes: made))
        return made
    }

    private func announce(_ update: StoredEnvelopes) {
        let subscribers = state.withLock { Array($0.subscribers.values) }
        for deliver in subscribers { deliver(update) }
    }

    func ids(_ space: SpaceID) -> Set<EnvelopeID> { state.withLock { $0.spaces[space]!.ids } }
    func count(_ space: SpaceID) -> Int { state.withLock { $0.spaces[space]!.log.count } }
    var delivered: Int { state.withLock { $0.delivered } }
    var redelivered: Int { state.withLock { $0.redelivered } }
    var subscriberCount: Int { state.withLock { $0.subscribers.count } }
    var callbackSubscriptions: Int { state.withLock { $0.callbackSubscriptions } }
    var directDeliveries: Int { state.withLock { $0.directDeliveries } }
    var mostOutstanding: Int { state.withLock { $0.mostOutstanding } }

    // MARK: SyncStoreDriver

    func carriedSpaces(for peer: NodeID) async throws -> [SpaceID: FeedVector] {
        state.withLock { $0.spaces.mapValues(\.vector) }
    }

    func fetch(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (
        envelopes: [Envelope], complete: Bool
    ) {
        if holdsBack.withLock({ $0 }) { return ([], true) }
        return state.withLock { s in
            var out: [Envelope] = []
            var bytes = 0
            for e in s.spaces[space]!.log where e.header.seqEnd > after[e.header.author] {
                if out.count >= limit.envelopes || (!out.isEmpty && bytes + e.bytes.count > limit.bytes) {
                    return (out, false)
                }
                out.append(e)
                bytes += e.bytes.count
            }
            return (out, true)
        }
    }

    func deliver(space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey) async throws -> FeedVector {
        store(space: space, envelopes: envelopes)
    }

    var deliversDirectly: Bool { callbacks }

    func deliver(
        space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey,
        then done: @escaping @Sendable (Result<FeedVector, any Error>) -> Void
    ) {
        state.withLock { s in
            s.directDeliveries += 1
            s.outstanding[peer, default: 0] += 1
            s.mostOutstanding = max(s.mostOutstanding, s.outstanding[peer]!)
        }
        // Done later, from another thread: a second delivery started meanwhile would be seen.
        Task.detached {
            try? await Task.sleep(for: .milliseconds(10))
            let vector = self.store(space: space, envelopes: envelopes)
            self.state.withLock { $0.outstanding[peer]! -= 1 }
            done(.success(vector))
        }
    }

    private func store(space: SpaceID, envelopes: [Envelope]) -> FeedVector {
        let (accepted, vector): ([Envelope], FeedVector) = state.withLock { s in
            var sp = s.spaces[space]!
            var accepted: [Envelope] = []
            s.deliverCalls += 1
            for e in envelopes {
                if sp.ids.contains(e.id) {
                    s.redelivered += 1
                    continue
                }
                do { try sp.verifier.accept(e) } catch {
                    s.refused += 1
                    continue
                }
                sp.log.append(e)
                sp.ids.insert(e.id)
                sp.vector.add(e.header)
                accepted.append(e)
            }
            s.delivered += accepted.count
            s.spaces[space] = sp
            return (accepted, sp.vector)
        }
        if !accepted.isEmpty { announce(StoredEnvelopes(space: space, envelopes: accepted)) }
        return vector
    }

    func localChanges() -> AsyncStream<StoredEnvelopes> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoredEnvelopes.self)
        let end = subscribe { continuation.yield($0) }
        continuation.onTermination = { _ in end() }
        return stream
    }

    func localChanges(for peer: NodeID, deliver: @escaping @Sendable (StoredEnvelopes) -> Void) -> @Sendable () -> Void {
        guard callbacks else { return Self.forward(localChanges(for: peer), to: deliver) }
        state.withLock { $0.callbackSubscriptions += 1 }
        return subscribe(deliver)
    }

    private func subscribe(_ deliver: @escaping @Sendable (StoredEnvelopes) -> Void) -> @Sendable () -> Void {
        let id = state.withLock { s in
            let id = s.nextSubscriber
            s.nextSubscriber += 1
            s.subscribers[id] = deliver
            return id
        }
        return { [weak self] in _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) } }
    }
}

/// Short timeouts so tests that wait for one stay fast.
func fastTransport(
    // Handshake and connect limits are generous: a loaded 2-core machine (CI runs suites in
    // parallel) once took over 3 s to finish handshakes; tests of these timeouts pass their own.
    rateLimit: RateLimit? = nil, handshakeTimeout: Duration = .seconds(10), readTimeout: Duration = .seconds(2),
    idleTimeout: Duration = .seconds(5)
) -> TransportConfiguration {
    TransportConfiguration(
        handshakeTimeout: handshakeTimeout, idleTimeout: idleTimeout, readTimeout: readTimeout,
        minimumReceiveRate: 1 << 20, writeTimeout: .seconds(5), connectTimeout: .seconds(10), rateLimit: rateLimit,
        tickInterval: .milliseconds(100))
}

func fastLimits(batch: Int = 64, window: Int = 2) -> SyncLimits {
    SyncLimits(batchEnvelopes: batch, window: window, pingInterval: .milliseconds(500), timeout: .seconds(4))
}

/// Collects what server-side sessions report.
final class Reports: Sendable {
    let closed = Locked<[PeerReport]>([])
    /// Per peer, the last progress reported: the changes the peer holds that the server lacks.
    let lag = Locked<[NodeID: UInt64]>([:])
    func record(_ e: PeerEvent) {
        switch e {
        case .closed(let r): closed.withLock { $0.append(r) }
        case .progress(let peer, let status): lag.withLock { $0[peer] = status.changesWeLack }
        default: break
        }
    }
}

/// Runs a listener that serves `store` with PeerConnections until `body` returns.
func withServer<R: Sendable>(
    store: MemoryStore, trust: @escaping @Sendable (NodeID) -> Bool = { _ in true },
    configuration: TransportConfiguration = fastTransport(), limits: SyncLimits = fastLimits(),
    logger: Logger = Logger(label: "test.server"), reports: Reports = Reports(),
    _ body: @Sendable (SecureListener, SecureTransport) async throws -> R
) async throws -> R {
    let transport = SecureTransport(identity: store.keys, configuration: configuration, logger: logger, trust: trust)
    let listener = try await transport.listen(host: "127.0.0.1", port: 0)
    let peers = PeerConnection(
        store: store, configuration: .init(role: .member, limits: limits), logger: logger,
        onEvent: { reports.record($0) })
    return try await withThrowingTaskGroup(of: R?.self) { group in
        group.addTask {
            try await listener.run { channel in _ = try await peers.run(over: &channel) }
            return nil
        }
        defer {
            listener.close()
            group.cancelAll()
        }
        return try await body(listener, transport)
    }
}

/// Dials `port` and syncs `store` once (bye when synced).
func syncOnce(
    _ store: MemoryStore, port: Int, expecting: NodeID? = nil, configuration: TransportConfiguration = fastTransport(),
    limits: SyncLimits = fastLimits(), trust: @escaping @Sendable (NodeID) -> Bool = { _ in true },
    closeWhenSynced: Bool = true
) async throws -> PeerReport {
    let transport = SecureTransport(identity: store.keys, configuration: configuration, trust: trust)
    let peers = PeerConnection(
        store: store, configuration: .init(role: .member, limits: limits, closeWhenSynced: closeWhenSynced))
    return try await transport.connect(host: "127.0.0.1", port: port, expecting: expecting) { channel in
        try await peers.run(over: &channel)
    }
}

/// ``syncOnce(_:port:expecting:configuration:limits:trust:closeWhenSynced:)`` with its defaults,
/// and how long it took.
func timedSyncOnce(_ store: MemoryStore, port: Int) async throws -> (report: PeerReport, elapsed: Duration) {
    let clock = ContinuousClock()
    let start = clock.now
    let report = try await syncOnce(store, port: port)
    return (report, clock.now - start)
}

/// A plain TCP connection (no Noise) for sending garbage.
func withRawConnection<R: Sendable>(
    port: Int,
    _ body: (NIOAsyncChannelInboundStream<ByteBuffer>, NIOAsyncChannelOutboundWriter<ByteBuffer>) async throws -> R
) async throws -> R {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { ch in
            ch.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in try await body(inbound, outbound) }
}

/// Reads until the peer closes; returns how long that took (or nil if still open after `limit`).
func timeUntilClosed(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, limit: Duration) async -> Duration? {
    let clock = ContinuousClock()
    let start = clock.now
    return await withTaskGroup(of: Duration?.self) { group in
        group.addTask {
            do { for try await _ in inbound {} } catch {}
            return clock.now - start
        }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        let first = await group.next()!
        group.cancelAll()
        return first
    }
}

/// Keeps log lines (for checking that a refusal is logged).
struct CapturingLogHandler: LogHandler {
    let lines: Locked<[(Logger.Level, String, Logger.Metadata)]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
        function: String, line: UInt
    ) {
        lines.withLock { $0.append((level, "\(message)", self.metadata.merging(metadata ?? [:]) { $1 })) }
    }
}
