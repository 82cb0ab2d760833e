import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SarabanCore

/// A TCP proxy that injects network faults, for transport and integration tests (`tc netem` is not available).
///
/// It listens on 127.0.0.1 (port 0 by default), forwards every connection to `target`, and applies
/// ``Faults`` to each chunk it forwards, in both directions: latency (a delay line that keeps the
/// order), a bandwidth cap, seeded random drops of whole chunks (which corrupts the stream: the
/// Noise layer then closes the connection), resets after a number of bytes, and a partition switch.
///
/// ```swift
/// try await FaultProxy.run(target: try .makeAddressResolvingHost("127.0.0.1", port: serverPort)) { proxy in
///     proxy.faults = FaultProxy.Faults(latency: .milliseconds(20), dropProbability: 0.01, seed: 7)
///     … dial 127.0.0.1:proxy.port …
///     proxy.partition = .stall      // or .refuse; .none heals
///     proxy.resetAll()
/// }
/// ```
public final class FaultProxy: Sendable {
    /// Faults applied to forwarded chunks.
    public struct Faults: Hashable, Sendable {
        /// Added to every chunk, each direction.
        public var latency: Duration
        /// Bytes per second per direction of each connection; `nil` for no cap.
        public var bytesPerSecond: Int?
        /// The probability that a chunk is silently dropped.
        public var dropProbability: Double
        /// Close both sides of a connection once it has forwarded this many bytes (both directions); `nil` for never.
        public var resetAfterBytes: Int?
        /// Seeds the drop decisions (each connection draws from the proxy's one generator).
        public var seed: UInt64

        public init(
            latency: Duration = .zero, bytesPerSecond: Int? = nil, dropProbability: Double = 0,
            resetAfterBytes: Int? = nil, seed: UInt64 = 1
        ) {
            self.latency = latency
            self.bytesPerSecond = bytesPerSecond
            self.dropProbability = dropProbability
            self.resetAfterBytes = resetAfterBytes
            self.seed = seed
        }
    }

    /// The partition switch.
    public enum Partition: Hashable, Sendable {
        /// Forward normally.
        case none
        /// Close every connection and refuse new ones (as a host that is down).
        case refuse
        /// Accept connections but forward nothing, in either direction, until healed (a black hole).
        case stall
    }

    /// What the proxy did.
    public struct Statistics: Hashable, Sendable {
        public var connections = 0
        public var refused = 0
        public var bytesForwarded = 0
        public var chunksForwarded = 0
        public var chunksDropped = 0
        public var resets = 0
    }

    private struct State {
        var faults: Faults
        var rng: SplitMix64
        var partition = Partition.none
        var stats = Statistics()
        var connections: [Int: any Channel & Sendable] = [:]
        var pairs: [Int: Int] = [:]
        var nextID = 0
    }

    /// Where the proxy listens.
    public let localAddress: SocketAddress
    public let target: SocketAddress
    private let state: NIOLockedValueBox<State>
    private let group: any EventLoopGroup

    private init(localAddress: SocketAddress, target: SocketAddress, faults: Faults, group: any EventLoopGroup) {
        self.localAddress = localAddress
        self.target = target
        self.group = group
        state = NIOLockedValueBox(State(faults: faults, rng: SplitMix64(seed: faults.seed)))
    }

    /// The port to dial.
    public var port: Int { localAddress.port ?? 0 }

    /// The faults now applied (changing them reseeds the drop generator when the seed changes).
    public var faults: Faults {
        get { state.withLockedValue { $0.faults } }
        set {
            state.withLockedValue {
                if $0.faults.seed != newValue.seed { $0.rng = SplitMix64(seed: newValue.seed) }
                $0.faults = newValue
            }
        }
    }

    /// The partition switch; `.refuse` also closes every open connection.
    public var partition: Partition {
        get { state.withLockedValue { $0.partition } }
        set {
            let victims = state.withLockedValue { s -> [any Channel] in
                s.partition = newValue
                return newValue == .refuse ? Array(s.connections.values) : []
            }
            for c in victims { c.close(promise: nil) }
        }
    }

    public var statistics: Statistics { state.withLockedValue { $0.stats } }

    /// Connections open now.
    public var openConnections: Int { state.withLockedValue { $0.connections.count / 2 } }

    /// Closes both sides of every open connection now.
    public func resetAll() {
        let victims = state.withLockedValue { s -> [any Channel] in
            s.stats.resets += s.connections.count / 2
            return Array(s.connections.values)
        }
        for c in victims { c.close(promise: nil) }
    }

    /// Starts a proxy to `target`, runs `body` with it, and stops it (closing every connection) when `body` returns.
    public static func run<Result: Sendable>(
        target: SocketAddress, host: String = "127.0.0.1", port: Int = 0, faults: Faults = Faults(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        _ body: @Sendable (FaultProxy) async throws -> Result
    ) async throws -> Result {
        let server = try await ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        let proxy = FaultProxy(
            localAddress: server.channel.localAddress!, target: target, faults: faults, group: eventLoopGroup)
        // The accept loop is never cancelled (that would drop accepted connections unclosed):
        // closing the listening socket ends it, then the connections are cancelled.
        let accept = Task {
            try? await withThrowingDiscardingTaskGroup { connections in
                defer { connections.cancelAll() }
                try await server.executeThenClose { inbound in
                    for try await client in inbound {
                        connections.addTask { await proxy.forward(client) }
                    }
                }
            }
        }
        let stop: @Sendable () -> Void = {
            server.channel.close(promise: nil)
            proxy.resetAll()
        }
        let result: Result
        do {
            result = try await withTaskCancellationHandler {
                try await body(proxy)
            } onCancel: {
                stop()
            }
        } catch {
            stop()
            await accept.value
            throw error
        }
        stop()
        await accept.value
        return result
    }

    private func register(_ a: any Channel, _ b: any Channel) -> (Int, Int) {
        state.withLockedValue { s in
            let ia = s.nextID
            let ib = s.nextID + 1
            s.nextID += 2
            s.connections[ia] = a
            s.connections[ib] = b
            s.pairs[ia] = ib
            s.pairs[ib] = ia
            s.stats.connections += 1
            return (ia, ib)
        }
    }

    private func unregister(_ ids: (Int, Int)) {
        state.withLockedValue { s in
            s.connections[ids.0] = nil
            s.connections[ids.1] = nil
            s.pairs[ids.0] = nil
            s.pairs[ids.1] = nil
        }
    }

    private func forward(_ client: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
        if partition == .refuse {
            state.withLockedValue { $0.stats.refused += 1 }
            try? await client.executeThenClose { _, _ in }
            return
        }
        let upstream: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            upstream = try await ClientBootstrap(group: group)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(to: target) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
        } catch {
            try? await client.executeThenClose { _, _ in }
            return
        }
        let ids = register(client.channel, upstream.channel)
        defer { unregister(ids) }
        let forwarded = NIOLockedValueBox(0)
        try? await client.executeThenClose { clientIn, clientOut in
            try await upstream.executeThenClose { upIn, upOut in
                await withTaskGroup(of: Void.self) { group in
                    group.addTask {
                        await self.pump(from: clientIn, to: upOut, forwarded: forwarded)
                        upstream.channel.close(promise: nil)
                        client.channel.close(promise: nil)
                    }
                    group.addTask {
                        await self.pump(from: upIn, to: clientOut, forwarded: forwarded)
                        upstream.channel.close(promise: nil)
                        client.channel.close(promise: nil)
                    }
                }
            }
        }
        client.channel.close(promise: nil)
        upstream.channel.close(promise: nil)
    }

    /// What to do with a chunk read.
    private enum Decision {
        case forward(Duration, Int?)
        case drop
        case reset
    }

    private func decide(_ count: Int, forwarded: NIOLockedValueBox<Int>) -> Decision {
        state.withLockedValue { s in
            let total = forwarded.withLockedValue { f -> Int in
                f += count
                return f
            }
            if let limit = s.faults.resetAfterBytes, total > limit {
                s.stats.resets += 1
                return .reset
            }
            if s.faults.dropProbability > 0, s.rng.nextDouble() < s.faults.dropProbability {
                s.stats.chunksDropped += 1
                return .drop
            }
            s.stats.chunksForwarded += 1
            s.stats.bytesForwarded += count
            return .forward(s.faults.latency, s.faults.bytesPerSecond)
        }
    }

    /// Copies one direction through a delay line: a reader stamps chunks with their due time and a
    /// writer sends them when due, at most at the bandwidth cap; the reader pauses while more than
    /// 256 KiB wait, so the cap pushes back on the sender.
    private func pump(
        from inbound: NIOAsyncChannelInboundStream<ByteBuffer>, to outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        forwarded: NIOLockedValueBox<Int>
    ) async {
        let (line, sink) = AsyncStream.makeStream(of: (ContinuousClock.Instant, ByteBuffer, Int?).self)
        let queued = NIOLockedValueBox(0)
        let clock = ContinuousClock()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var nextFree = clock.now
                for await (due, chunk, rate) in line {
                    while self.partition == .stall { try? await Task.sleep(for: .milliseconds(10)) }
                    if due > clock.now { try? await Task.sleep(until: due, clock: clock) }
                    if let rate {
                        nextFree = max(nextFree, clock.now) + .seconds(Double(chunk.readableBytes) / Double(rate))
                        try? await Task.sleep(until: nextFree, clock: clock)
                    }
                    queued.withLockedValue { $0 -= chunk.readableBytes }
                    do { try await outbound.write(chunk) } catch { break }
                }
            }
            do {
                for try await chunk in inbound {
                    while self.partition == .stall { try await Task.sleep(for: .milliseconds(10)) }
                    switch decide(chunk.readableBytes, forwarded: forwarded) {
                    case .reset:
                        sink.finish()
                        group.cancelAll()
                        return
                    case .drop:
                        continue
                    case .forward(let latency, let rate):
                        queued.withLockedValue { $0 += chunk.readableBytes }
                        sink.yield((clock.now + latency, chunk, rate))
                        while queued.withLockedValue({ $0 }) > 256 << 10 { try await Task.sleep(for: .milliseconds(2)) }
                    }
                }
            } catch {}
            sink.finish()
        }
    }
}

extension SplitMix64 {
    /// A double in [0, 1) from the top 53 bits, for seeded drop decisions.
    mutating func nextDouble() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
