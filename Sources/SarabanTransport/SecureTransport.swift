import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SarabanCrypto

/// A node's endpoint for secure channels: listens for peers and dials them over TCP, runs the
/// Noise XX handshake with the node's identity, and refuses node ids the trust policy rejects.
///
/// ```swift
/// let transport = SecureTransport(identity: node.keys, trust: { members.contains($0) })
/// let listener = try await transport.listen(host: "0.0.0.0", port: 7700)
/// try await listener.run { channel in _ = try await peerConnection.run(over: &channel) }   // until cancelled
///
/// try await transport.connect(host: "10.0.0.2", port: 7700, expecting: peerID) { channel in
///     try await peerConnection.run(over: &channel)
/// }
/// ```
public final class SecureTransport: Sendable {
    /// This node's identity.
    public let identity: SigningKeyPair
    public var nodeID: NodeID { identity.publicKey.nodeID }
    public let configuration: TransportConfiguration
    let trust: @Sendable (NodeID) -> Bool
    let group: any EventLoopGroup
    let logger: Logger
    let limiters: RateLimiterRegistry
    let channels = OpenChannels()

    /// - Parameters:
    ///   - trust: whether a peer that proved its node id may connect (both directions).
    ///   - eventLoopGroup: NIO's event loops (the process-wide singleton by default).
    public init(
        identity: SigningKeyPair, configuration: TransportConfiguration = TransportConfiguration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "saraban.transport"), trust: @escaping @Sendable (NodeID) -> Bool
    ) {
        self.identity = identity
        self.configuration = configuration
        self.trust = trust
        self.group = eventLoopGroup
        self.logger = logger
        self.limiters = RateLimiterRegistry(limit: configuration.rateLimit)
    }

    /// How often reads from `peer` waited for its rate limit, and for how long in total.
    public func throttling(of peer: NodeID) -> (count: Int, total: Duration) { limiters.throttling(of: peer) }

    /// Closes every open channel (either direction) whose peer the trust policy now refuses, for
    /// example after a peer was removed from the configuration or from a space: its sessions end
    /// with ``TransportError/Code/peerUntrusted`` and its next handshake is refused. Call it after
    /// every change to what the trust closure accepts. Returns the node ids whose channels were closed.
    @discardableResult
    public func closeUntrusted() -> [NodeID] {
        channels.close { !trust($0) }
    }

    /// The node ids with a channel open now (either direction), one entry per channel.
    public var openChannelPeers: [NodeID] { channels.peers }

    /// Reads from an accepted connection each time it is readable (NIO's default is 4). NIO keeps
    /// that many receive buffers per connection, each as large as its reads have grown (up to
    /// 64 KB): with one, two relays holding 2,000 sessions at 5,000 letters a second kept 150 MB
    /// per 1,000 sessions (157 MB with a 16 KB ceiling on the read size as well) instead of 167 and
    /// 169 MB (Docs/RELAY.md, tenth session).
    static let readsPerWakeUp: UInt = 1

    /// Binds a listening socket (port 0 picks a free port: read ``SecureListener/port``).
    ///
    /// - Throws: ``TransportError`` `.addressInUse` when another socket holds the address, else `.cannotListen`.
    public func listen(host: String = "127.0.0.1", port: Int = 0) async throws -> SecureListener {
        let pending = PendingHandshakes(configuration: configuration, logger: logger)
        let server: NIOAsyncChannel<AcceptedConnection, Never>
        do {
            server = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.maxMessagesPerRead, value: Self.readsPerWakeUp)
                .bind(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // Counted from the moment it is accepted, before anything is read from it.
                        let ticket = pending.admit(channel)
                        return AcceptedConnection(raw: try RawChannel(wrappingChannelSynchronously: channel), pending: ticket)
                    }
                }
        } catch {
            throw TransportError(listening: error, host: host, port: port)
        }
        guard let address = server.channel.localAddress else {
            throw TransportError(.connectFailed, "the listening socket has no address")
        }
        logger.info("listening", metadata: ["address": "\(address)", "node": "\(nodeID)"])
        return SecureListener(transport: self, server: server, localAddress: address, pending: pending)
    }

    /// Dials `host:port`, runs the handshake as initiator and calls `body` with the channel; the
    /// connection is closed when `body` returns.
    ///
    /// - Parameter expecting: the node id that must answer (``TransportError/Code/unexpectedPeer`` otherwise).
    /// - Throws: ``TransportError`` (`.connectionRefused`, `.hostUnreachable`, `.connectTimeout`,
    ///   `.hostNotFound`, `.connectFailed`, `.handshakeFailed`, `.handshakeTimeout`,
    ///   `.peerUntrusted`, `.unexpectedPeer`) or what `body` throws.
    public func connect<Result>(
        host: String, port: Int, expecting: NodeID? = nil,
        _ body: (inout SecureChannel) async throws -> Result
    ) async throws -> Result {
        let raw: RawChannel
        do {
            raw = try await ClientBootstrap(group: group)
                .connectTimeout(.nanoseconds(Int64(clamping: configuration.connectTimeout.nanosecondCount)))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture { try RawChannel(wrappingChannelSynchronously: channel) }
                }
        } catch {
            throw TransportError(connecting: error, host: host, port: port)
        }
        return try await raw.executeThenClose { inbound, outbound in
            var channel: SecureChannel
            do throws(TransportError) {
                channel = try await SecureChannel.establish(
                    role: .initiator, identity: identity, trust: trust, expecting: expecting, raw: raw,
                    iterator: inbound.makeAsyncIterator(), outbound: outbound, configuration: configuration,
                    limiters: limiters)
            } catch {
                log(handshake: error, remote: "\(host):\(port)")
                throw error
            }
            try admit(channel, remote: "\(host):\(port)")
            logger.debug("secure channel open", metadata: ["peer": "\(channel.peer)", "remote": "\(host):\(port)"])
            return try await body(&channel)
        }
    }

    /// Registers an established channel so ``closeUntrusted()`` can reach it, then checks trust
    /// once more: trust revoked while the handshake ran (after its check) refuses the channel here.
    func admit(_ channel: SecureChannel, remote: String) throws(TransportError) {
        channels.register(channel)
        guard trust(channel.peer) else {
            let error = TransportError(
                .peerUntrusted, "node \(channel.peer) proved its identity but is no longer trusted here", peer: channel.peer)
            channel.monitor.fail(error)
            channel.close()
            log(handshake: error, remote: remote)
            throw error
        }
    }

    func log(handshake error: TransportError, remote: String) {
        var metadata: Logger.Metadata = ["remote": "\(remote)", "code": "\(error.code)"]
        if let peer = error.peer { metadata["peer"] = "\(peer)" }
        if error.code == .peerUntrusted || error.code == .unexpectedPeer {
            logger.warning("refused node at handshake: \(error.message)", metadata: metadata)
        } else {
            logger.notice("handshake failed: \(error.message)", metadata: metadata)
        }
    }
}

/// What a listener has seen so far.
public struct ListenerStatistics: Hashable, Sendable {
    /// TCP connections accepted.
    public var accepted = 0
    /// Handshakes completed (peer trusted).
    public var established = 0
    /// Handshakes refused because the peer's node id is not trusted.
    public var refusedUntrusted = 0
    /// Handshakes that timed out.
    public var handshakeTimeouts = 0
    /// Other handshake failures (garbage, wrong protocol, broken connection).
    public var handshakeFailures = 0
    /// Established connections whose handler ended with an error.
    public var failedSessions = 0
    /// Connections being handled now.
    public var active = 0
    /// Accepted connections whose handshake has not finished, now.
    public var pendingHandshakes = 0
    /// Connections closed before their handshake finished because newer ones came beyond
    /// ``TransportConfiguration/maximumPendingHandshakes`` or its per-address cap.
    public var closedOverPendingCap = 0
}

/// A connection as the listener accepted it, with its place among the pending handshakes.
///
/// NIO hands an accepted connection to the listener's inbound stream just before its channel
/// turns active. One that is never taken from it (it arrived as the listening socket closed, and
/// the stream dropped it) must still be closed through `executeThenClose`: an `NIOAsyncChannel`
/// whose channel went active traps when its writer is released unfinished ("Deinited
/// NIOAsyncWriter without calling finish()"), which stopped a daemon in CI. So an untaken one
/// closes itself.
final class AcceptedConnection: Sendable {
    private let raw: RawChannel
    let pending: PendingHandshake
    private let taken = NIOLockedValueBox(false)

    init(raw: RawChannel, pending: PendingHandshake) {
        self.raw = raw
        self.pending = pending
    }

    /// The connection, for the one handler that runs it (and closes it).
    func take() -> RawChannel {
        taken.withLockedValue { $0 = true }
        return raw
    }

    deinit {
        guard !taken.withLockedValue({ $0 }) else { return }
        pending.release()
        let raw = self.raw
        Task { try? await raw.executeThenClose { _, _ in } }
    }
}

/// A bound listening socket of a ``SecureTransport``.
public struct SecureListener: Sendable {
    let transport: SecureTransport
    let server: NIOAsyncChannel<AcceptedConnection, Never>
    /// The bound address.
    public let localAddress: SocketAddress
    private let stats = NIOLockedValueBox(ListenerStatistics())
    let pending: PendingHandshakes

    init(
        transport: SecureTransport, server: NIOAsyncChannel<AcceptedConnection, Never>, localAddress: SocketAddress,
        pending: PendingHandshakes
    ) {
        self.transport = transport
        self.server = server
        self.localAddress = localAddress
        self.pending = pending
    }

    /// The bound port.
    public var port: Int { localAddress.port ?? 0 }

    public var statistics: ListenerStatistics {
        var s = stats.withLockedValue { $0 }
        (s.pendingHandshakes, s.closedOverPendingCap) = pending.counts
        return s
    }

    /// Accepts connections until the listening socket closes or the calling task is cancelled.
    /// Each connection runs in its own child task (a discarding task group): its handshake, then
    /// `handler`. A failing connection is logged and closed; it never stops the listener.
    ///
    /// Cancelling the calling task closes the listening socket, then cancels the connections.
    public func run(_ handler: @escaping @Sendable (inout SecureChannel) async throws -> Void) async throws {
        // The accept loop runs in a task of its own that cancellation does not reach: a cancelled
        // iterator would drop connections already accepted and buffered. Cancellation closes the
        // listening socket instead, which ends the loop once every accepted connection has been
        // handed over. (One dropped anyway closes itself: ``AcceptedConnection``.)
        let server = self.server
        let accept = Task {
            try await withThrowingDiscardingTaskGroup { group in
                defer { group.cancelAll() }
                try await server.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await handle(connection, handler) }
                    }
                }
            }
        }
        try await withTaskCancellationHandler {
            try await accept.value
        } onCancel: {
            server.channel.close(promise: nil)
        }
    }

    /// Closes the listening socket: ``run(_:)`` then returns once its connections have ended.
    public func close() { server.channel.close(promise: nil) }

    private func handle(
        _ accepted: AcceptedConnection, _ handler: @Sendable (inout SecureChannel) async throws -> Void
    ) async {
        let raw = accepted.take()
        stats.withLockedValue {
            $0.accepted += 1
            $0.active += 1
        }
        defer { stats.withLockedValue { $0.active -= 1 } }
        let remote = raw.channel.remoteAddress.map { "\($0)" } ?? "?"
        let logger = transport.logger
        do {
            try await raw.executeThenClose { inbound, outbound in
                var channel: SecureChannel
                do throws(TransportError) {
                    channel = try await SecureChannel.establish(
                        role: .responder, identity: transport.identity, trust: transport.trust, expecting: nil,
                        raw: raw,
                        iterator: inbound.makeAsyncIterator(), outbound: outbound,
                        configuration: transport.configuration, limiters: transport.limiters)
                    accepted.pending.release()
                } catch {
                    accepted.pending.release()
                    // Closed to make room under the pending-handshake caps: counted there, logged once.
                    if accepted.pending.wasEvicted { return }
                    stats.withLockedValue {
                        switch error.code {
                        case .peerUntrusted, .unexpectedPeer: $0.refusedUntrusted += 1
                        case .handshakeTimeout: $0.handshakeTimeouts += 1
                        default: $0.handshakeFailures += 1
                        }
                    }
                    transport.log(handshake: error, remote: remote)
                    return
                }
                do throws(TransportError) {
                    try transport.admit(channel, remote: remote)
                } catch {
                    stats.withLockedValue { $0.refusedUntrusted += 1 }
                    return
                }
                stats.withLockedValue { $0.established += 1 }
                logger.debug("secure channel open", metadata: ["peer": "\(channel.peer)", "remote": "\(remote)"])
                do {
                    try await handler(&channel)
                } catch {
                    stats.withLockedValue { $0.failedSessions += 1 }
                    logger.notice(
                        "connection ended with an error: \(error)",
                        metadata: ["peer": "\(channel.peer)", "remote": "\(remote)"])
                }
            }
        } catch {
            logger.debug("connection closed with an error: \(error)", metadata: ["remote": "\(remote)"])
        }
    }
}

/// The established channels of one ``SecureTransport``, so that revoking trust can close them.
/// A channel leaves when it closes.
final class OpenChannels: Sendable {
    private struct Entry {
        let peer: NodeID
        let channel: any Channel
        let monitor: ConnectionMonitor
    }
    private let entries = NIOLockedValueBox<[ObjectIdentifier: Entry]>([:])

    func register(_ channel: SecureChannel) {
        let key = ObjectIdentifier(channel.channel)
        entries.withLockedValue {
            $0[key] = Entry(peer: channel.peer, channel: channel.channel, monitor: channel.monitor)
        }
        channel.channel.closeFuture.whenComplete { [entries] _ in
            _ = entries.withLockedValue { $0.removeValue(forKey: key) }
        }
    }

    var peers: [NodeID] { entries.withLockedValue { $0.values.map(\.peer) } }

    /// Closes the channels whose peer `refused` selects; returns those peers (once each).
    func close(where refused: (NodeID) -> Bool) -> [NodeID] {
        let all = entries.withLockedValue { Array($0.values) }
        var closed: [NodeID] = []
        for e in all where refused(e.peer) {
            e.monitor.fail(
                TransportError(.peerUntrusted, "node \(e.peer) is no longer trusted here: its session was closed", peer: e.peer))
            e.channel.close(promise: nil)
            if !closed.contains(e.peer) { closed.append(e.peer) }
        }
        return closed
    }
}
