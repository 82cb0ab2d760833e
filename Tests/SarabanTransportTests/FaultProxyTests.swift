import NIOCore
import SarabanCrypto
import SarabanSync
import Testing

@_spi(Testing) @testable import SarabanTransport

@Suite("Sync through the fault-injecting proxy", .timeLimit(.minutes(1)))
struct FaultProxyTests {
    @Test("latency, drops and a reset mid-transfer: converges after reconnects without resending what was acknowledged")
    func convergesThroughFaults() async throws {
        let space = testSpace(20)
        let server = MemoryStore(keys: keys(50), spaces: [space])
        let client = MemoryStore(keys: keys(51), spaces: [space])
        let total = 1500
        client.write(space, count: total, payload: 400)
        server.write(space, count: 100, payload: 400)
        let batch = 40
        let window = 2
        let limits = fastLimits(batch: batch, window: window)
        let config = fastTransport(readTimeout: .milliseconds(500), idleTimeout: .seconds(2))
        let serverReports = Reports()

        try await withServer(store: server, configuration: config, limits: limits, reports: serverReports) {
            listener, _ in
            let target = try SocketAddress(ipAddress: "127.0.0.1", port: listener.port)
            let faults = FaultProxy.Faults(latency: .milliseconds(5), dropProbability: 0.01, seed: 20_240_601)
            try await FaultProxy.run(target: target, faults: faults) { proxy in
                // Cut the link once the transfer is well under way.
                let resetter = Task {
                    try? await eventually("a third of the transfer", timeout: .seconds(30)) {
                        server.count(space) > 100 + total / 3
                    }
                    proxy.resetAll()
                }
                var sessions: [PeerReport] = []
                var failures = 0
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(45)
                while clock.now < deadline {
                    do {
                        let r = try await syncOnce(client, port: proxy.port, configuration: config, limits: limits)
                        sessions.append(r)
                        if r.wasSynced && r.reason == .closedLocally { break }
                    } catch {
                        failures += 1
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                resetter.cancel()
                await resetter.value

                #expect(client.ids(space) == server.ids(space))
                #expect(server.count(space) == total + 100)
                #expect(proxy.statistics.resets >= 1)
                #expect(sessions.count + failures >= 2, "the reset must have broken at least one session")
                // Each envelope reached the server's store exactly once…
                #expect(server.delivered == total)
                #expect(server.redelivered == 0)
                #expect(client.delivered == 100)
                // …and a new session resends only what the broken one had not had acknowledged:
                // at most a window of batches per broken session.
                let sent = sessions.reduce(0) { $0 + $1.stats.envelopesSent }
                let broken = sessions.count - 1 + failures
                #expect(sent >= total)
                #expect(sent <= total + broken * window * batch, "sent \(sent) over \(sessions.count) sessions")
                let duplicates = serverReports.closed.current.reduce(0) { $0 + $1.stats.duplicatesIgnored }
                #expect(duplicates <= broken * window * batch)
            }
        }
    }

    @Test("partition: refuse closes and refuses, stall holds traffic, healing lets sync finish")
    func partitionSwitch() async throws {
        let space = testSpace(21)
        let server = MemoryStore(keys: keys(60), spaces: [space])
        let client = MemoryStore(keys: keys(61), spaces: [space])
        server.write(space, count: 50)
        let config = fastTransport(handshakeTimeout: .seconds(5), idleTimeout: .seconds(5))
        try await withServer(store: server, configuration: config) { listener, _ in
            let target = try SocketAddress(ipAddress: "127.0.0.1", port: listener.port)
            try await FaultProxy.run(target: target) { proxy in
                proxy.partition = .refuse
                await #expect(throws: TransportError.self) {
                    _ = try await syncOnce(client, port: proxy.port, configuration: config)
                }
                #expect(proxy.statistics.refused >= 1)

                proxy.partition = .stall
                let attempt = Task { try await syncOnce(client, port: proxy.port, configuration: config) }
                try await Task.sleep(for: .milliseconds(500))
                #expect(client.count(space) == 0, "nothing crosses a stalled link")
                proxy.partition = .none
                let report = try await attempt.value
                #expect(report.wasSynced)
                #expect(client.count(space) == 50)
            }
        }
    }

    @Test("bandwidth cap and latency slow the transfer down")
    func bandwidthAndLatency() async throws {
        let space = testSpace(22)
        let server = MemoryStore(keys: keys(70), spaces: [space])
        let client = MemoryStore(keys: keys(71), spaces: [space])
        server.write(space, count: 40, payload: 10_000)  // about 400 KB
        try await withServer(store: server) { listener, _ in
            let target = try SocketAddress(ipAddress: "127.0.0.1", port: listener.port)
            let faults = FaultProxy.Faults(latency: .milliseconds(50), bytesPerSecond: 400_000)
            try await FaultProxy.run(target: target, faults: faults) { proxy in
                let (report, elapsed) = try await timedSyncOnce(client, port: proxy.port)
                #expect(report.wasSynced)
                #expect(client.count(space) == 40)
                #expect(elapsed >= .milliseconds(800), "400 KB at 400 KB/s plus round trips took \(elapsed)")
            }
        }
    }
}

@Suite("Per-peer rate limit", .timeLimit(.minutes(1)))
struct RateLimitTests {
    @Test("the byte rate limit throttles a fast sender without closing it")
    func bytesPerSecond() async throws {
        let space = testSpace(30)
        let server = MemoryStore(keys: keys(80), spaces: [space])
        let client = MemoryStore(keys: keys(81), spaces: [space])
        client.write(space, count: 64, payload: 8_000)  // about 520 KB
        let limit = RateLimit(bytesPerSecond: 256 << 10, framesPerSecond: 10_000, burstBytes: 64 << 10)
        try await withServer(store: server, configuration: fastTransport(rateLimit: limit)) { listener, transport in
            let clock = ContinuousClock()
            let start = clock.now
            let report = try await syncOnce(client, port: listener.port)
            let elapsed = clock.now - start
            #expect(report.wasSynced)
            #expect(server.count(space) == 64)
            // (520 KB − 64 KB burst) / 256 KB/s ≈ 1.7 s.
            #expect(elapsed >= .milliseconds(1400), "took \(elapsed)")
            #expect(transport.throttling(of: client.keys.publicKey.nodeID).count > 0)
        }
    }

    @Test("the frame rate limit throttles a sender of many small frames")
    func framesPerSecond() async throws {
        let space = testSpace(31)
        let server = MemoryStore(keys: keys(82), spaces: [space])
        let client = MemoryStore(keys: keys(83), spaces: [space])
        client.write(space, count: 12, payload: 10)
        // 5 frames a second: a sender is throttled unless it is slower than one frame per 200 ms,
        // which even a heavily loaded machine is not (at 20 a second, one under a load of 7 was).
        let limit = RateLimit(bytesPerSecond: 1 << 30, framesPerSecond: 5, burstFrames: 2)
        try await withServer(store: server, configuration: fastTransport(rateLimit: limit)) { listener, transport in
            let clock = ContinuousClock()
            let start = clock.now
            // One envelope per batch: 12 batches + hello + summary ≥ 14 frames, 2 of them free: ≥ 2.4 s.
            let report = try await syncOnce(client, port: listener.port, limits: fastLimits(batch: 1, window: 4))
            let elapsed = clock.now - start
            #expect(report.wasSynced)
            #expect(server.count(space) == 12)
            #expect(elapsed >= .milliseconds(2000), "took \(elapsed)")
            #expect(transport.throttling(of: client.keys.publicKey.nodeID).count > 0)
        }
    }
}
