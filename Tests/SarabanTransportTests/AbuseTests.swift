import Logging
import NIOCore
import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

@_spi(Testing) @testable import SarabanTransport

@Suite("Handshake refusals and abuse", .timeLimit(.minutes(1)))
struct AbuseTests {
    @Test("an untrusted node id is refused at the handshake, with a distinct error and a log line")
    func untrustedRefused() async throws {
        let space = testSpace(10)
        let server = MemoryStore(keys: keys(20), spaces: [space])
        let friend = MemoryStore(keys: keys(21), spaces: [space])
        let stranger = MemoryStore(keys: keys(22), spaces: [space])
        server.write(space, count: 10)
        stranger.write(space, count: 3)
        let lines = Locked<[(Logger.Level, String, Logger.Metadata)]>([])
        let logger = Logger(label: "test") { _ in CapturingLogHandler(lines: lines) }
        let friendID = friend.keys.publicKey.nodeID
        let strangerID = stranger.keys.publicKey.nodeID

        try await withServer(store: server, trust: { $0 == friendID }, logger: logger) { listener, _ in
            // The server refuses the stranger once it proves its id (message 3): the stranger sees the
            // connection close before any sync, and nothing is exchanged.
            let report = try await syncOnce(stranger, port: listener.port)
            #expect(!report.wasSynced)
            #expect(report.reason == .connectionLost)
            #expect(report.stats.envelopesReceived == 0)
            try await eventually("the refusal is counted") { listener.statistics.refusedUntrusted == 1 }
            #expect(server.count(space) == 10)
            #expect(stranger.count(space) == 3)

            // A trusted node still syncs on the same listener.
            let ok = try await syncOnce(friend, port: listener.port)
            #expect(ok.wasSynced)
            #expect(friend.count(space) == 10)
            #expect(listener.statistics.established == 1)
        }
        let refusal = lines.current.first { $0.0 == .warning && $0.1.contains("refused node at handshake") }
        #expect(refusal != nil)
        #expect(refusal?.2["peer"]?.description == strangerID.description)
        #expect(refusal?.2["code"]?.description == "peerUntrusted")

        // The initiator refuses a server it does not trust (it learns the server's id in message 2),
        // and one that is not the node it dialled.
        try await withServer(store: server) { listener, _ in
            await #expect(throws: TransportError.self) {
                _ = try await syncOnce(friend, port: listener.port, trust: { _ in false })
            }
            do {
                _ = try await syncOnce(friend, port: listener.port, trust: { _ in false })
            } catch let e as TransportError {
                #expect(e.code == .peerUntrusted)
                #expect(e.peer == server.keys.publicKey.nodeID)
            }
            do {
                _ = try await syncOnce(friend, port: listener.port, expecting: strangerID)
                Issue.record("dialling the wrong node id must fail")
            } catch let e as TransportError {
                #expect(e.code == .unexpectedPeer)
            }
        }
    }

    /// Runs `attack` against a server while a healthy peer stays connected; checks that the attack
    /// closes only its own connection and that the healthy session keeps syncing.
    func survives(
        _ name: String, expectedServerError: TransportError.Code?,
        configuration: TransportConfiguration = fastTransport(),
        _ attack: @escaping @Sendable (Int, MemoryStore) async throws -> Void
    ) async throws {
        let space = testSpace(11)
        let server = MemoryStore(keys: keys(30), spaces: [space])
        let good = MemoryStore(keys: keys(31), spaces: [space])
        let attacker = MemoryStore(keys: keys(32), spaces: [space])
        let reports = Reports()
        try await withServer(store: server, configuration: configuration, reports: reports) { listener, _ in
            try await withThrowingTaskGroup(of: PeerReport.self) { group in
                group.addTask { try await syncOnce(good, port: listener.port, closeWhenSynced: false) }
                try await eventually("the healthy peer is connected") {
                    good.subscriberCount == 1 && server.subscriberCount == 1
                }
                good.write(space, count: 5)
                try await eventually("first writes arrive") { server.count(space) == 5 }

                try await attack(listener.port, attacker)

                if let expectedServerError {
                    try await eventually("the attacked session reports \(expectedServerError)") {
                        reports.closed.current.contains { $0.transportError?.code == expectedServerError }
                    }
                }
                // The healthy session is untouched and still pushes at once, both ways.
                good.write(space, count: 5)
                server.write(space, count: 4)
                try await eventually("\(name): the healthy session keeps syncing") {
                    server.count(space) == 14 && good.count(space) == 14
                }
                #expect(reports.closed.current.allSatisfy { $0.peer != good.keys.publicKey.nodeID })
                // And the listener still accepts new peers.
                let fresh = MemoryStore(keys: keys(33), spaces: [space])
                let r = try await syncOnce(fresh, port: listener.port)
                #expect(r.wasSynced)
                #expect(fresh.count(space) == 14)
                group.cancelAll()
                for try await _ in group {}
            }
        }
    }

    @Test("garbage bytes instead of a handshake close only that connection")
    func garbage() async throws {
        // Garbage that never completes a first message is cut by the handshake timeout.
        try await survives("garbage", expectedServerError: nil, configuration: fastTransport(handshakeTimeout: .seconds(3))) {
            port, _ in
            try await withRawConnection(port: port) { inbound, outbound in
                var rng = SplitMix64(seed: 99)
                try await outbound.write(
                    ByteBuffer(bytes: (0..<5000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
                let closedAfter = await timeUntilClosed(inbound, limit: .seconds(5))
                #expect(closedAfter != nil)
            }
            // Garbage that happens to look like a first message: refused when message 3 fails.
            try await withRawConnection(port: port) { inbound, outbound in
                var bytes: [UInt8] = [0, 32] + [UInt8](repeating: 0x42, count: 32)
                bytes += [0, 100] + [UInt8](repeating: 0x17, count: 100)
                try await outbound.write(ByteBuffer(bytes: bytes))
                #expect(await timeUntilClosed(inbound, limit: .seconds(5)) != nil)
            }
        }
    }

    @Test("an oversized frame length closes only that connection")
    func oversizedFrame() async throws {
        try await survives("oversized frame", expectedServerError: .frameTooLarge) { port, attacker in
            let transport = SecureTransport(
                identity: attacker.keys, configuration: fastTransport(), trust: { _ in true })
            try await transport.connect(host: "127.0.0.1", port: port) { channel in
                // A frame announcing 4 MiB + 1 bytes: refused as soon as its length prefix is decrypted.
                try await channel.writer.write([0x00, 0x40, 0x00, 0x01, 0x01, 0x02])
                var ended = false
                do {
                    while try await channel.reader.next() != nil {}
                    ended = true
                } catch { ended = true }
                #expect(ended)
            }
        }
    }

    @Test("a tampered Noise ciphertext closes only that connection")
    func tamperedCiphertext() async throws {
        try await survives("tampered ciphertext", expectedServerError: .decryptionFailed) { port, attacker in
            let transport = SecureTransport(
                identity: attacker.keys, configuration: fastTransport(), trust: { _ in true })
            try await transport.connect(host: "127.0.0.1", port: port) { channel in
                let hello = SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [testSpace(11)])).framed()
                try await channel.writer.writeTampered(hello)
                do { while try await channel.reader.next() != nil {} } catch {}
            }
        }
    }

    @Test("garbage after the handshake closes only that connection")
    func garbageAfterHandshake() async throws {
        try await survives("garbage after handshake", expectedServerError: .decryptionFailed) { port, attacker in
            let transport = SecureTransport(
                identity: attacker.keys, configuration: fastTransport(), trust: { _ in true })
            try await transport.connect(host: "127.0.0.1", port: port) { channel in
                try await channel.writer.writeRaw([0x00, 0x30] + [UInt8](repeating: 0xEE, count: 0x30))
                do { while try await channel.reader.next() != nil {} } catch {}
            }
        }
    }

    @Test("a sender stalling inside a Noise message is cut by the read timeout")
    func slowSender() async throws {
        let config = fastTransport(readTimeout: .milliseconds(400))
        try await survives("slow sender", expectedServerError: .readTimeout, configuration: config) { port, attacker in
            let transport = SecureTransport(
                identity: attacker.keys, configuration: fastTransport(), trust: { _ in true })
            let clock = ContinuousClock()
            let start = clock.now
            try await transport.connect(host: "127.0.0.1", port: port) { channel in
                // Announce a 4,000-byte Noise message, then dribble a byte every 100 ms.
                try await channel.writer.writeRaw([0x0F, 0xA0, 1, 2, 3])
                let dribble = channel.writer
                let done = Locked(false)
                let dribbler = Task {
                    while !done.current {
                        try? await Task.sleep(for: .milliseconds(100))
                        do { try await dribble.writeRaw([0x55]) } catch { break }
                    }
                }
                do { while try await channel.reader.next() != nil {} } catch {}
                done.withLock { $0 = true }
                await dribbler.value
            }
            // The server's error (.readTimeout, checked by `survives`) says why it was cut; the time
            // is printed, not bounded (a loaded CI machine once resumed a 0.2 s timer after 10 s).
            print("the slow sender was cut after \(clock.now - start)")
        }
    }

    @Test("a connection that stalls during the handshake is cut by the handshake timeout")
    func handshakeStall() async throws {
        let space = testSpace(12)
        let server = MemoryStore(keys: keys(40), spaces: [space])
        try await withServer(store: server, configuration: fastTransport(handshakeTimeout: .milliseconds(300))) {
            listener, _ in
            try await withRawConnection(port: listener.port) { inbound, outbound in
                try await outbound.write(ByteBuffer(bytes: [0x00]))  // half a length prefix, then nothing
                let closedAfter = await timeUntilClosed(inbound, limit: .seconds(5))
                #expect(closedAfter != nil)
                if let closedAfter { #expect(closedAfter >= .milliseconds(250)) }
            }
            try await eventually("the timeout is counted") { listener.statistics.handshakeTimeouts == 1 }
        }
    }
}
