import Foundation
import Logging
import SarabanCrypto
import SarabanSync
import SarabanTransport

/// How a one-shot sync with one peer went (`saraban sync`).
public struct OneShotResult: Sendable, Codable {
    public var peer: String
    public var nodeID: String
    public var address: String
    /// Every shared space caught up both ways before the session closed.
    public var synced: Bool
    /// Why it failed (unreachable, refused, timed out), when it did.
    public var error: String?
    public var envelopesSent = 0
    public var envelopesReceived = 0
    public var changesSent: UInt64 = 0
    public var changesReceived: UInt64 = 0
    public var bytesSent = 0
    public var bytesReceived = 0
    public var seconds = 0.0
    public var sharedSpaces = 0
    /// Attachments (roots held completely here) offered to the peer, a relay; 0 with a member.
    public var attachmentsOffered = 0
    /// Of those, the ones the relay said it now holds completely before the session closed.
    public var attachmentsConfirmed = 0
    /// Attachment chunks sent to the peer (pulled by a relay).
    public var attachmentChunksSent = 0
    /// Changes the peer (a relay after retention) no longer holds and this node lacks.
    public var gaps: [HorizonGap] = []

    enum CodingKeys: String, CodingKey {
        case peer, address, synced, error, seconds, gaps
        case nodeID = "node_id"
        case envelopesSent = "envelopes_sent"
        case envelopesReceived = "envelopes_received"
        case changesSent = "changes_sent"
        case changesReceived = "changes_received"
        case bytesSent = "bytes_sent"
        case bytesReceived = "bytes_received"
        case sharedSpaces = "shared_spaces"
        case attachmentsOffered = "attachments_offered"
        case attachmentsConfirmed = "attachments_confirmed"
        case attachmentChunksSent = "attachment_chunks_sent"
    }
}

/// A progress line's worth of a running one-shot sync.
public struct OneShotProgress: Sendable {
    public var peer: String
    public var changesPeerLacks: UInt64
    public var changesWeLack: UInt64
}

/// Counts the changes inside envelopes read for sending and accepted from the peer, and runs
/// the session's attachment exchange, if any.
final class CountingDriver: SyncStoreDriver, @unchecked Sendable {
    let inner: NodeSyncDriver
    let attachments: AttachmentExchange?
    private let lock = NSLock()
    private(set) var changesFetched: UInt64 = 0
    private(set) var changesAccepted: UInt64 = 0

    init(_ inner: NodeSyncDriver, attachments: AttachmentExchange? = nil) {
        self.inner = inner
        self.attachments = attachments
    }

    func attachmentHandler(for peer: NodeID) -> (any AttachmentHandler)? { attachments }

    private var vectors: [SpaceID: FeedVector] = [:]

    func carriedSpaces(for peer: NodeID) async throws -> [SpaceID: FeedVector] {
        let spaces = try await inner.carriedSpaces(for: peer)
        lock.withLock { vectors = spaces }
        return spaces
    }

    func fetch(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (
        envelopes: [Envelope], complete: Bool
    ) {
        let r = try await inner.fetch(space: space, after: after, limit: limit)
        let n = r.envelopes.reduce(UInt64(0)) { $0 + $1.header.changeCount }
        lock.withLock { changesFetched += n }
        return r
    }

    func deliver(space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey) async throws -> FeedVector {
        let after = try await inner.deliver(space: space, envelopes: envelopes, from: peer)
        lock.withLock {
            changesAccepted += after.changesMissing(from: vectors[space] ?? FeedVector())
            vectors[space, default: FeedVector()].merge(after)
        }
        return after
    }

    func localChanges() -> AsyncStream<StoredEnvelopes> { inner.localChanges() }

    func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        try await inner.feedHeads(spaces)
    }

    func peerHeads(_ summary: SpaceVector, from peer: NodeID) async { await inner.peerHeads(summary, from: peer) }

    func headClaims(
        for peer: NodeID, spaces: [SpaceID: FeedVector], heads: [SpaceID: [SigningPublicKey: FeedHead]]
    ) async throws -> [SpaceID: [HeadClaim]] {
        try await inner.headClaims(for: peer, spaces: spaces, heads: heads)
    }

    func receiveClaims(space: SpaceID, claims: [HeadClaim], from peer: NodeID) async {
        await inner.receiveClaims(space: space, claims: claims, from: peer)
    }

    func settled(with peer: NodeID, role: NodeRole, spaces: [SpaceSyncStatus]) async {
        await inner.settled(with: peer, role: role, spaces: spaces)
    }

    func localClaims() -> AsyncStream<StoredClaims> { inner.localClaims() }

    func localClaims(deliver: @escaping @Sendable (StoredClaims) -> Void) -> @Sendable () -> Void {
        inner.localClaims(deliver: deliver)
    }

    func unreachable(space: SpaceID, gaps: [SigningPublicKey: ClosedRange<UInt64>], from peer: NodeID) async {
        await inner.unreachable(space: space, gaps: gaps, from: peer)
    }

    var counts: (fetched: UInt64, accepted: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        return (changesFetched, changesAccepted)
    }
}

extension Node {
    /// Dials `peers` (all configured peers when `nil`) at once, syncs every shared space both ways
    /// and closes each session when it is caught up (`saraban sync`). A member also offers a
    /// relay the attachments it holds completely and closes only once the relay has answered
    /// every offer (it holds the root, or gave up), or nothing moved for `attachmentStallTimeout`.
    public func syncOnce(
        storage: any EnvelopeStorage, peers only: [ConfiguredPeer]? = nil,
        options: ServeOptions = ServeOptions(), attachmentStallTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "saraban.sync"),
        progress: @escaping @Sendable (OneShotProgress) -> Void = { _ in }
    ) async throws -> [OneShotResult] {
        let settings = try syncSettings()
        let peers = only ?? settings.peers
        let transport = dialTransport(
            settings: settings, dialling: peers, members: try storage.memberNodeIDs(), configuration: options.transport,
            logger: logger)
        let status = PeerStatusBook(store: peerStatusStore, forks: dataDirectory)
        let driver = NodeSyncDriver(
            storage: storage, logger: logger, onFork: { status.recordFork($0) },
            onWithholding: { status.recordWithholding($0, spaces: $1, $2) }, now: now)
        let results = await withTaskGroup(of: OneShotResult.self) { group in
            for peer in peers {
                group.addTask {
                    let label = peer.label
                    let lags = LagBox()
                    let hangUp = HangUp()
                    let gate = HangUpGate(hangUp)
                    let exchange = AttachmentExchange(
                        node: self, pushingWithin: attachmentStallTimeout, logger: logger, onDone: { gate.settled() })
                    let counting = CountingDriver(driver, attachments: exchange)
                    let connection = PeerConnection(
                        store: counting,
                        configuration: .init(role: storage.role, limits: options.limits, closeWhenSynced: true),
                        logger: logger
                    ) { event in
                        status.record(event)
                        if case .synced = event { gate.synced() }
                        if case .progress(_, let s) = event {
                            let (p, w) = lags.set(s.space, s.changesPeerLacks, s.changesWeLack)
                            progress(OneShotProgress(peer: label, changesPeerLacks: p, changesWeLack: w))
                        }
                    }
                    var result = OneShotResult(
                        peer: label, nodeID: peer.nodeID.text, address: peer.address.description, synced: false)
                    let start = Date()
                    do {
                        let report = try await transport.run(connection, with: peer, hangUp: hangUp)
                        result.synced = report.wasSynced
                        result.envelopesSent = report.stats.envelopesSent
                        result.envelopesReceived = report.stats.envelopesReceived
                        result.bytesSent = report.wire.bytesSent
                        result.bytesReceived = report.wire.bytesReceived
                        result.sharedSpaces = report.spaces.count
                        let c = counting.counts
                        result.changesSent = report.stats.envelopesSent == 0 ? 0 : c.fetched
                        result.changesReceived = c.accepted
                        if !report.wasSynced {
                            result.error = NetworkFailure.describe(
                                report, peer: label, address: peer.address, me: self.nodeID, configuration: options.transport)
                            if NetworkFailure.isRefusal(report) { status.recordFailure(peer.nodeID, result.error!) }
                        }
                    } catch {
                        result.error = NetworkFailure.describe(
                            error, peer: label, address: peer.address, configuration: options.transport)
                        status.recordFailure(peer.nodeID, result.error!)
                    }
                    (result.attachmentsOffered, result.attachmentsConfirmed, result.attachmentChunksSent) =
                        exchange.pushCounts
                    result.gaps = driver.gaps(from: peer.nodeID)
                    result.seconds = Date().timeIntervalSince(start)
                    return result
                }
            }
            var out: [OneShotResult] = []
            for await r in group { out.append(r) }
            return out
        }
        await status.flush()
        let order = Dictionary(uniqueKeysWithValues: peers.enumerated().map { ($1.nodeID.text, $0) })
        return results.sorted { (order[$0.nodeID] ?? 0) < (order[$1.nodeID] ?? 0) }
    }
}

extension Node {
    /// The transport a dial from this node uses: it accepts the configured peers, those dialled
    /// and every member of a space carried here (`saraban sync`, `letter fetch`, `inspect-sync`).
    func dialTransport(
        settings: SyncSettings, dialling peers: [ConfiguredPeer], members: Set<NodeID>,
        configuration: TransportConfiguration, logger: Logger
    ) -> SecureTransport {
        let trusted = Set(settings.peers.map(\.nodeID)).union(peers.map(\.nodeID)).union(members)
        return SecureTransport(
            identity: identity, configuration: configuration, logger: logger, trust: { trusted.contains($0) })
    }
}

extension SecureTransport {
    /// Dials `peer` and runs `connection` over the channel, arming `hangUp` with it.
    func run(_ connection: PeerConnection, with peer: ConfiguredPeer, hangUp: HangUp) async throws -> PeerReport {
        try await connect(host: peer.address.host, port: peer.address.port, expecting: peer.nodeID) { channel in
            hangUp.arm(channel)
            return try await connection.run(over: &channel)
        }
    }
}

extension PeerReport {
    /// Why the session ended short of its goal: the transport or store failure, else the close reason.
    var failure: String { transportError.map { "\($0)" } ?? storeError ?? "session ended: \(reason)" }
}

/// Per-space lag of one session, summed for the progress line.
final class LagBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lags: [SpaceID: (UInt64, UInt64)] = [:]

    func set(_ space: SpaceID, _ peer: UInt64, _ we: UInt64) -> (UInt64, UInt64) {
        lock.lock()
        defer { lock.unlock() }
        lags[space] = (peer, we)
        return lags.values.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
    }
}

/// Fires `hangUp` once a one-shot session is synced and its attachment exchange settled.
final class HangUpGate: @unchecked Sendable {
    let hangUp: HangUp
    private let lock = NSLock()
    private var isSynced = false
    private var isSettled = false

    init(_ hangUp: HangUp) { self.hangUp = hangUp }

    func synced() {
        if lock.withLock({ isSynced = true; return isSettled }) { hangUp.fire() }
    }

    func settled() {
        if lock.withLock({ isSettled = true; return isSynced }) { hangUp.fire() }
    }
}

/// Closes a one-shot session's connection shortly after it is synced.
///
/// `PeerConnection` with `closeWhenSynced` sends bye but then waits for the peer to close the TCP
/// connection, and the peer's session, having received bye, waits for us: both sit until the
/// idle timeout (90 s). Closing our side once the bye is written ends both at once.
final class HangUp: @unchecked Sendable {
    /// How long a bye written just before is given to leave before the connection is closed.
    static let byeGrace: Duration = .milliseconds(100)

    private let lock = NSLock()
    private var channel: SecureChannel?
    private var fired = false

    func arm(_ channel: SecureChannel) {
        lock.withLock { self.channel = channel }
    }

    func fire() {
        let channel: SecureChannel? = lock.withLock {
            guard !fired else { return nil }
            fired = true
            return self.channel
        }
        guard let channel else { return }
        Task {
            // Let the bye frame, written right after the synced event, leave first.
            try? await Task.sleep(for: HangUp.byeGrace)
            channel.close()
        }
    }
}
