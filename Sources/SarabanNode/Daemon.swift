import Foundation
import Logging
import SarabanCrypto
import SarabanSync
import SarabanTransport
import ServiceLifecycle

/// Settings of `saraban serve` (and of nodes run in-process by tests and the bench).
public struct ServeOptions: Sendable {
    /// Where to listen; `nil` takes `listen` from config.json.
    public var listen: PeerAddress?
    /// How often the store is probed for writes made by other processes (the CLI).
    public var pollInterval: Duration = .milliseconds(250)
    /// Redial delay after a failure: doubles per consecutive failure from `minimumBackoff` up to
    /// `maximumBackoff`, each delay drawn uniformly from its upper half (jitter).
    public var minimumBackoff: Duration = .milliseconds(500)
    public var maximumBackoff: Duration = .seconds(30)
    /// How often config.json is re-read for added or removed peers (and, on a member, how often
    /// the peers' status is written: `saraban peers`).
    public var configInterval: Duration = .seconds(2)
    /// How often a relay writes the status of its peers' open sessions (last contact, lag,
    /// cursors; a session's end is written within 100 ms whatever this is). A relay holds
    /// thousands of sessions: every 2 s was about 1,450 row updates a second at 2,000 offices.
    public var relayStatusInterval: Duration = .seconds(10)
    /// Sync session limits (batching, window, keep-alives).
    public var limits = SyncLimits()
    /// Secure channel timeouts and rate limits.
    public var transport = TransportConfiguration()
    /// Handle SIGTERM and SIGINT with a graceful shutdown (off for nodes run inside tests).
    public var handleSignals = true
    /// Dial configured peers (off for a node that only listens).
    public var dial = true
    /// How much older than a session's start a head claim must be to show what the peer did not
    /// deliver (ms; Docs/SECURITY.md, "Withholding").
    public var withholdingGrace: Int64 = NodeSyncDriver.defaultWithholdingGrace
    /// How often a member's daemon makes fresh head claims where what it holds changed (hourly
    /// when nothing did) and passes them to its open sessions.
    public var claimInterval: Duration = .seconds(300)

    public init(listen: PeerAddress? = nil) { self.listen = listen }
}

/// What `saraban serve` says when it is ready.
public struct ServeReady: Sendable {
    public var nodeID: NodeID
    public var role: NodeRole
    public var address: PeerAddress
}

/// Node ids allowed to connect: the configured peers and the members of the carried spaces.
final class TrustList: @unchecked Sendable {
    private let lock = NSLock()
    private var ids: Set<NodeID> = []

    func replace(_ new: Set<NodeID>) {
        lock.lock()
        ids = new
        lock.unlock()
    }

    func contains(_ id: NodeID) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return ids.contains(id)
    }
}

/// Which peers have a session open now (either direction), so the dialler does not open a second one.
final class ConnectedPeers: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [NodeID: Int] = [:]

    func enter(_ id: NodeID) {
        lock.lock()
        counts[id, default: 0] += 1
        lock.unlock()
    }

    func leave(_ id: NodeID) {
        lock.lock()
        counts[id, default: 1] -= 1
        if counts[id] == 0 { counts[id] = nil }
        lock.unlock()
    }

    func isConnected(_ id: NodeID) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return counts[id] != nil
    }

    var all: Set<NodeID> {
        lock.lock()
        defer { lock.unlock() }
        return Set(counts.keys)
    }
}

/// The channels of the open sessions (either direction), so the daemon can end them when what
/// they carry changed: a space joined or left (their hellos are out of date; both sides redial at
/// once and exchange new hellos), or a peer no longer trusted.
final class OpenSessions: @unchecked Sendable {
    private let lock = NSLock()
    private var channels: [Int: SecureChannel] = [:]
    private var next = 0

    func add(_ channel: SecureChannel) -> Int {
        lock.withLock {
            next += 1
            channels[next] = channel
            return next
        }
    }

    func remove(_ token: Int) { lock.withLock { channels[token] = nil } }

    /// Closes the connections of the sessions whose peer matches; returns how many.
    @discardableResult
    func close(where matches: (NodeID) -> Bool) -> Int {
        let doomed = lock.withLock { channels.values.filter { matches($0.peer) } }
        for c in doomed { c.close() }
        return doomed.count
    }
}

/// The running node: a listener, a dialler per configured peer (gossip), and the poller that
/// pushes writes made by other processes (on a relay: the watcher of its store), as services of
/// one `ServiceGroup`.
///
/// ```swift
/// let daemon = try NodeDaemon(node: node, storage: node.envelopeStorage(), options: .init())
/// try await daemon.run { ready in print("listening on \(ready.address)") }   // until SIGTERM/SIGINT or cancellation
/// ```
public final class NodeDaemon: Sendable {
    public let node: Node
    let driver: any DaemonDriver
    public let options: ServeOptions
    public let status: PeerStatusBook
    public let transport: SecureTransport
    /// A relay's metrics (nil on a member).
    public let metrics: RelayMetrics?
    let connection: PeerConnection
    let trust = TrustList()
    let connected = ConnectedPeers()
    let sessions: OpenSessions
    let logger: Logger
    let role: NodeRole

    /// What the sync driver stores or writes from now on (the web app's live updates listen to it).
    public func localChanges() -> AsyncStream<StoredEnvelopes> { driver.localChanges() }

    /// A member over its envelope storage; a relay whose storage is the node's own (`saraban serve
    /// --relay`) runs over ``SQLiteRelayStore`` (see ``init(node:relay:policy:options:logger:onEvent:)``).
    public convenience init(
        node: Node, storage: any EnvelopeStorage, options: ServeOptions = ServeOptions(),
        logger: Logger = Logger(label: "saraban.serve"),
        onEvent: @escaping @Sendable (PeerEvent) -> Void = { _ in }
    ) throws {
        if storage.role == .relay && storage is NodeEnvelopeStorage {
            try self.init(node: node, relay: SQLiteRelayStore(node: node), options: options, logger: logger, onEvent: onEvent)
            return
        }
        try self.init(
            node: node, role: storage.role, statusStore: node.peerStatusStore, metrics: nil, options: options, logger: logger,
            onEvent: onEvent
        ) { sessions, status in
            NodeSyncDriver(
                storage: storage, logger: logger, attachments: { _ in AttachmentExchange(node: node, logger: logger) },
                carriedSpacesChanged: { added, removed in
                    let n = sessions.close { _ in true }
                    logger.notice(
                        "carried spaces changed: reopening the sessions so that their hellos list them",
                        metadata: [
                            "added": "\(added.map(\.description).sorted())", "removed": "\(removed.map(\.description).sorted())",
                            "sessions": "\(n)",
                        ])
                },
                servedSpacesChanged: { peers in
                    let n = sessions.close { peers.contains($0) }
                    logger.notice(
                        "the spaces served to some peers changed (a membership or a designation): reopening their sessions",
                        metadata: ["peers": "\(peers.map(\.description).sorted())", "sessions": "\(n)"])
                },
                onFork: { status.recordFork($0) }, onWithholding: { status.recordWithholding($0, spaces: $1, $2) },
                withholdingGrace: options.withholdingGrace, now: node.now)
        }
    }

    /// A relay over `store` (the node's SQLite database, or PostgreSQL shared by many relay
    /// processes), serving and storing what `policy` allows.
    public convenience init(
        node: Node, relay store: any RelayStore, policy: any RelayPolicy = OpenRelayPolicy(),
        options: ServeOptions = ServeOptions(), logger: Logger = Logger(label: "saraban.serve"),
        onEvent: @escaping @Sendable (PeerEvent) -> Void = { _ in }
    ) throws {
        guard node.role == .relay else {
            throw NodeError(
                .invalidArgument,
                "\(node.dataDirectory.path) holds a member node (it holds space keys), so it cannot run as a relay: create the "
                    + "relay in its own data directory with `saraban init --relay --office NAME`")
        }
        let metrics = RelayMetrics(store: store.kind)
        // A relay on its own database keeps and passes on head claims through the node's storage, as
        // every relay did before the store interface; one on PostgreSQL, through the store (RelayClaimStore).
        let claims = store is SQLiteRelayStore ? NodeSyncDriver(storage: try node.envelopeStorage(relay: true), logger: logger, now: node.now) : nil
        try self.init(
            node: node, role: .relay, statusStore: store, metrics: metrics, options: options, logger: logger, onEvent: onEvent
        ) { sessions, _ in
            RelaySyncDriver(
                store: store, policy: policy, logger: logger, metrics: metrics,
                attachments: { _ in AttachmentExchange(node: node, store: store.attachmentStore, logger: logger) }, claims: claims,
                servedSpacesChanged: { peers in
                    let n = sessions.close { peers.contains($0) }
                    logger.notice(
                        "a membership change narrowed the spaces served to some peers: reopening their sessions",
                        metadata: ["peers": "\(peers.count)", "sessions": "\(n)"])
                }, now: node.now)
        }
    }

    init(
        node: Node, role: NodeRole, statusStore: any PeerStatusStore, metrics: RelayMetrics?, options: ServeOptions,
        logger: Logger, onEvent: @escaping @Sendable (PeerEvent) -> Void,
        makeDriver: (OpenSessions, PeerStatusBook) -> any DaemonDriver
    ) throws {
        self.node = node
        self.options = options
        self.logger = logger
        self.role = role
        self.metrics = metrics
        let sessions = OpenSessions()
        self.sessions = sessions
        let status = PeerStatusBook(store: statusStore, forks: node.dataDirectory)
        self.status = status
        let driver = makeDriver(sessions, status)
        self.driver = driver
        let trust = self.trust
        self.transport = SecureTransport(
            identity: node.identity, configuration: try node.syncSettings().applied(to: options.transport),
            logger: logger, trust: { trust.contains($0) })
        let log = logger
        self.connection = PeerConnection(
            store: driver, configuration: .init(role: role, limits: options.limits), logger: logger
        ) { event in
            status.record(event)
            metrics?.record(event)
            switch event {
            case .opened(let peer, let role, let spaces):
                log.info("session open", metadata: ["peer": "\(peer)", "role": "\(role)", "spaces": "\(spaces.count)"])
            case .synced(let peer, let stats):
                log.debug(
                    "synced", metadata: ["peer": "\(peer)", "sent": "\(stats.envelopesSent)", "received": "\(stats.envelopesReceived)"])
            case .closed(let report):
                log.info("session closed", metadata: ["peer": "\(report.peer)", "reason": "\(report.reason)"])
            case .progress: break
            }
            onEvent(event)
        }
        try refreshTrust()
    }

    /// The relay's side of the sessions (nil on a member).
    public var relayDriver: RelaySyncDriver? { driver as? RelaySyncDriver }

    /// The relay's store health as last checked (always ready on a member).
    public var health: RelayHealth { (driver as? RelaySyncDriver)?.health ?? .ready }

    /// Re-reads the configured peers and the spaces' members into the trust list, and closes the
    /// open sessions of every node no longer in it (its next handshake is refused).
    func refreshTrust() throws {
        var ids = Set(try node.syncSettings().peers.map(\.nodeID))
        ids.formUnion(try driver.memberNodeIDs())
        ids.remove(node.nodeID)
        trust.replace(ids)
        for peer in transport.closeUntrusted() {
            logger.notice(
                "closed the sessions of a node no longer trusted (removed from the peers and spaces)",
                metadata: ["peer": "\(peer)"])
        }
    }

    /// Runs until SIGTERM/SIGINT (with ``ServeOptions/handleSignals``) or until the calling task
    /// is cancelled; `onReady` is called once the listening socket is bound. `services` run in the
    /// same group (the web app), started after the listener is bound and stopped with the node.
    ///
    /// - Throws: `NodeError` `.busy` when another member daemon runs on the same data directory
    ///   (`serve.lock`; relay processes may share one), `.unreachable` when the address cannot be listened on.
    public func run(
        services extra: [any Service] = [], onReady: @escaping @Sendable (ServeReady) -> Void = { _ in }
    ) async throws {
        // One member daemon per data directory. Relay processes may share one (its key, so offices
        // expect one node id whichever answers): each holds no state another needs, and each one's
        // watcher sees what the others store (Docs/RELAY.md).
        let lock = role == .relay ? nil : try ServeLock.acquire(node.dataDirectory)
        defer { lock?.release() }
        try await driver.prepare()
        let address = try options.listen ?? node.syncSettings().listen
        let listener: SecureListener
        do { listener = try await transport.listen(host: address.host, port: address.port) } catch {
            throw NetworkFailure.listening(error, address: address)
        }
        let ready = ServeReady(nodeID: node.nodeID, role: role, address: PeerAddress(host: address.host, port: listener.port))
        logger.notice("ready", metadata: ["node": "\(node.nodeID)", "listen": "\(ready.address)", "role": "\(role)"])
        onReady(ready)
        let services: [any Service] = [
            ListenerService(daemon: self, listener: listener),
            GossipService(daemon: self),
            PollerService(daemon: self),
        ] + extra
        let group = ServiceGroup(
            configuration: .init(
                services: services.map { .init(service: $0) },
                gracefulShutdownSignals: options.handleSignals ? [.sigterm, .sigint] : [],
                logger: logger))
        try await group.run()
        driver.finish()
        await status.flush()
        logger.notice("stopped", metadata: ["node": "\(node.nodeID)"])
    }

    /// Runs one session over an accepted or dialled channel.
    func serve(_ channel: inout SecureChannel) async throws -> PeerReport {
        let peer = channel.peer
        connected.enter(peer)
        let token = sessions.add(channel)
        defer {
            sessions.remove(token)
            connected.leave(peer)
        }
        return try await connection.run(over: &channel)
    }

    /// Dials `peer` until cancelled: keeps a session open while it works, redials with jittered
    /// exponential backoff when it fails, and stays idle while the peer is connected to us.
    func dialLoop(_ peer: ConfiguredPeer) async {
        var failures = 0
        let meta: Logger.Metadata = ["peer": "\(peer.label)", "address": "\(peer.address)"]
        while !Task.isCancelled {
            if connected.isConnected(peer.nodeID) {
                try? await Task.sleep(for: options.minimumBackoff)
                continue
            }
            do {
                let report = try await transport.connect(
                    host: peer.address.host, port: peer.address.port, expecting: peer.nodeID
                ) { channel in try await serve(&channel) }
                // A session this node closed itself (its spaces changed: the hellos are renewed)
                // is no failure of the peer's: counted as one, a few renewals in a row pushed the
                // redial toward the 30 s maximum (DaemonCLITests.why7 timed out under load).
                if report.wasSynced || report.stats.framesReceived > 0 || report.reason == .closedLocally {
                    failures = 0
                } else {
                    failures += 1
                    if NetworkFailure.isRefusal(report) {
                        let message = NetworkFailure.refusal(peer: peer.label, address: peer.address, me: node.nodeID)
                        status.recordFailure(peer.nodeID, message)
                        if failures == 1 { logger.warning("\(message)", metadata: meta) }
                    }
                }
            } catch {
                if Task.isCancelled { break }  // shutting down: not the peer's failure
                failures += 1
                let message = NetworkFailure.describe(
                    error, peer: peer.label, address: peer.address, configuration: options.transport)
                status.recordFailure(peer.nodeID, message)
                if failures == 1 {
                    logger.notice("cannot reach peer: \(message)", metadata: meta)
                } else {
                    logger.debug("cannot reach peer: \(message)", metadata: meta)
                }
            }
            if Task.isCancelled { break }
            try? await Task.sleep(for: backoff(failures))
        }
    }

    func backoff(_ failures: Int) -> Duration {
        let base = options.minimumBackoff
        guard failures > 0 else { return base }
        let factor = Double(1 << min(failures - 1, 20))
        let cap = min(base.seconds * factor, options.maximumBackoff.seconds)
        return .milliseconds(Int(cap * Double.random(in: 0.5...1.0) * 1000))
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

struct ListenerService: Service {
    let daemon: NodeDaemon
    let listener: SecureListener

    func run() async throws {
        let daemon = self.daemon
        try await cancelWhenGracefulShutdown {
            try await listener.run { channel in _ = try await daemon.serve(&channel) }
        }
    }
}

struct GossipService: Service {
    let daemon: NodeDaemon

    func run() async throws {
        guard daemon.options.dial else {
            try await cancelWhenGracefulShutdown { try? await Task.sleep(for: .seconds(1 << 40)) }
            return
        }
        try await cancelWhenGracefulShutdown {
            var loops: [NodeID: (peer: ConfiguredPeer, task: Task<Void, Never>)] = [:]
            defer { for (_, l) in loops { l.task.cancel() } }
            while !Task.isCancelled {
                let peers: [ConfiguredPeer]
                do { peers = try daemon.node.syncSettings().peers } catch {
                    daemon.logger.error("cannot read the peers: \(error)")
                    peers = loops.values.map(\.peer)
                }
                let wanted = Dictionary(peers.map { ($0.nodeID, $0) }, uniquingKeysWith: { a, _ in a })
                for (id, l) in loops where wanted[id] != l.peer {
                    l.task.cancel()
                    loops[id] = nil
                }
                for (id, p) in wanted where loops[id] == nil {
                    loops[id] = (p, Task { await daemon.dialLoop(p) })
                }
                try? await Task.sleep(for: daemon.options.configInterval)
            }
            for (_, l) in loops {
                l.task.cancel()
                await l.task.value
            }
            loops = [:]
        }
    }
}

struct PollerService: Service {
    let daemon: NodeDaemon

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await daemon.driver.runBackground(pollInterval: daemon.options.pollInterval) }
                if daemon.role == .member, let driver = daemon.driver as? NodeSyncDriver {
                    group.addTask { await driver.runClaimRefresher(interval: daemon.options.claimInterval) }
                }
                group.addTask {
                    let clock = ContinuousClock()
                    let statusEvery = daemon.role == .relay ? daemon.options.relayStatusInterval : daemon.options.configInterval
                    var lastFlush = clock.now
                    while !Task.isCancelled {
                        try? await Task.sleep(for: daemon.options.configInterval)
                        do { try daemon.refreshTrust() } catch {
                            daemon.logger.warning("cannot refresh the trusted node ids: \(error)")
                        }
                        if clock.now - lastFlush >= statusEvery - .milliseconds(100) {
                            lastFlush = clock.now
                            await daemon.status.flush()
                        }
                    }
                }
            }
        }
    }
}

/// What the daemon needs of its sync driver besides ``SyncStoreDriver``: a member's
/// ``NodeSyncDriver`` or a relay's ``RelaySyncDriver``.
protocol DaemonDriver: SyncStoreDriver {
    /// Before listening: take the store's current state as the baseline.
    func prepare() async throws
    /// Until cancelled: notice what other processes store and push it to the sessions.
    func runBackground(pollInterval: Duration) async
    /// Ends every session's subscription.
    func finish()
    /// Node ids trusted besides the configured peers.
    func memberNodeIDs() throws -> Set<NodeID>
}

extension NodeSyncDriver: DaemonDriver {
    func prepare() async throws { try primeBaseline() }
    func runBackground(pollInterval: Duration) async { await runPoller(interval: pollInterval) }
    func memberNodeIDs() throws -> Set<NodeID> { try storage.memberNodeIDs() }
}

extension RelaySyncDriver: DaemonDriver {
    func prepare() async throws { try await prime() }
    func runBackground(pollInterval: Duration) async { await runWatcher() }
    /// A relay holds no membership: it trusts exactly its configured peers.
    func memberNodeIDs() throws -> Set<NodeID> { [] }
}
