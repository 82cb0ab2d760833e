import Foundation
import NIOCore
import NIOPosix
import SarabanCrypto
import SarabanSync
import Testing

@_spi(Testing) @testable import SarabanTransport

/// The process's resident memory in MiB (Linux), for the figures the flood test prints.
func residentMiB() -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8),
        let pages = text.split(separator: " ").dropFirst().first.flatMap({ Double($0) })
    else { return 0 }
    return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
}

@Suite("Backpressure from the session to the reader", .serialized, .timeLimit(.minutes(2)))
struct BackpressureTests {
    @Test("a trusted peer that never reads, then floods 4 MiB frames, cannot make the node hold more than window × frame; the node keeps serving")
    func nonReadingFlooder() async throws {
        let space = testSpace(50)
        let server = MemoryStore(keys: keys(50), spaces: [space])
        let good = MemoryStore(keys: keys(51), spaces: [space])
        let attacker = keys(52)
        server.write(space, count: 30)
        // No rate limit (the flood is as fast as the node reads) and no write deadline within the test.
        let config = {
            var c = fastTransport()
            c.writeTimeout = .seconds(60)
            c.idleTimeout = .seconds(60)
            return c
        }()
        let limits = fastLimits()
        let budget = PeerConnection.receiveBudget(window: limits.window, maximumFrameByteCount: config.maximumFrameByteCount)
        let reports = Reports()
        let rssBefore = residentMiB()

        try await withServer(store: server, configuration: config, limits: limits, reports: reports) { listener, _ in
            // The attacker: a real trusted Noise session over a socket with a tiny receive buffer,
            // whose NIO channel stops reading after one read (it never asks for the data).
            let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(.socketOption(.so_rcvbuf), value: 4096)
                .connect(host: "127.0.0.1", port: listener.port) { ch in
                    ch.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                            wrappingChannelSynchronously: ch,
                            configuration: .init(backPressureStrategy: .init(lowWatermark: 1, highWatermark: 1)))
                    }
                }
            let (pingBytes, floodBytes) = try await raw.executeThenClose { inbound, outbound in
                let channel = try await SecureChannel.establish(
                    role: .initiator, identity: attacker, trust: { _ in true }, expecting: nil, raw: raw,
                    iterator: inbound.makeAsyncIterator(), outbound: outbound, configuration: config,
                    limiters: RateLimiterRegistry(limit: nil))
                var writer = channel.writer
                // 1. Hello, then pings: the node answers each with a pong the attacker never reads.
                //    7.8 MB of pongs is more than the node's socket buffer (at most 4 MiB here), NIO's
                //    and the attacker's hold, so the node's driver ends up waiting on a write.
                try await writer.write(SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [])).framed())
                let pings = (0..<5_000).flatMap { SyncMessage.ping(nonce: UInt64($0)).framed() }
                var pingBytes = 0
                for _ in 0..<200 {
                    try await writer.write(pings)
                    pingBytes += pings.count
                }
                // 2. Maximum-size frames, as fast as the node takes them, until it stops taking them.
                var frame = [UInt8](repeating: 0, count: 4 + Frame.maximumPayloadByteCount)
                frame.replaceSubrange(0..<4, with: withUnsafeBytes(of: UInt32(Frame.maximumPayloadByteCount).bigEndian, Array.init))
                let sent = Locked(0)
                let flood = Task { [writer, frame] in
                    var w = writer
                    while sent.current < 256 << 20 {
                        try await w.write(frame)
                        sent.withLock { $0 += frame.count }
                    }
                }
                // Stalled: nothing more accepted for 2 s (the flood would go on for ever without backpressure).
                let clock = ContinuousClock()
                var last = -1
                var since = clock.now
                while sent.current < 256 << 20 {
                    try await Task.sleep(for: .milliseconds(100))
                    if sent.current != last {
                        last = sent.current
                        since = clock.now
                    } else if clock.now - since > .seconds(2) {
                        break
                    }
                }
                print("flood: \(sent.current >> 20) MiB accepted by the sockets before the node stopped reading")

                // 3. Meanwhile another peer syncs with the node as usual.
                let r = try await syncOnce(good, port: listener.port)
                #expect(r.wasSynced)
                #expect(good.count(space) == 30)

                raw.channel.close(promise: nil)
                _ = await flood.result
                return (pingBytes, sent.current)
            }
            try await eventually("the node closed the flooder's session") {
                reports.closed.current.contains { $0.peer == attacker.publicKey.nodeID }
            }
            let report = reports.closed.current.first { $0.peer == attacker.publicKey.nodeID }!
            print(
                "node: read \(report.wire.bytesReceived >> 20) MiB from the flooder (pings \(pingBytes >> 10) KiB, flood \(floodBytes >> 20) MiB sent), "
                    + "held at most \(report.peakUnprocessedBytes >> 10) KiB not yet taken (budget \(budget >> 10) KiB); "
                    + "test process RSS \(Int(rssBefore)) MiB -> \(Int(residentMiB())) MiB")
            // What the reader held: the budget, overshot by at most the one Noise message that reached it.
            #expect(report.peakUnprocessedBytes <= budget + SecureWriter.maximumChunk)
            // What the node read at all: the pings it answered, the budget, one frame the session
            // buffered before its driver had to wait (a partial frame produces no write), and a
            // Noise message or two. Without backpressure it read all of the flood.
            #expect(report.wire.bytesReceived <= pingBytes + budget + config.maximumFrameByteCount + (256 << 10))
        }
    }
}
