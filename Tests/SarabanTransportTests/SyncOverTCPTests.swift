import NIOCore
import SarabanCrypto
import SarabanSync
import Testing

@_spi(Testing) @testable import SarabanTransport

@Suite("Secure channel and sync over TCP", .timeLimit(.minutes(1)))
struct SyncOverTCPTests {
    @Test("two endpoints handshake and converge over real sockets, large envelopes chunked across Noise messages")
    func handshakeAndConverge() async throws {
        let space = testSpace(1)
        let other = testSpace(2)
        let server = MemoryStore(keys: keys(1), spaces: [space, other])
        let client = MemoryStore(keys: keys(2), spaces: [space, other])
        server.write(space, count: 300)
        server.write(other, count: 40, payload: 3000)
        client.write(space, count: 200)
        // Envelopes far larger than one Noise message (65,535 bytes): frames are chunked and reassembled.
        client.write(other, count: 3, payload: 200_000)

        let report = try await withServer(store: server, limits: fastLimits(batch: 50)) { listener, _ in
            try await syncOnce(
                client, port: listener.port, expecting: server.keys.publicKey.nodeID, limits: fastLimits(batch: 50))
        }
        #expect(report.peer == server.keys.publicKey.nodeID)
        #expect(report.wasSynced)
        #expect(report.reason == .closedLocally)
        #expect(report.transportError == nil)
        #expect(server.ids(space) == client.ids(space))
        #expect(server.ids(other) == client.ids(other))
        #expect(server.count(space) == 500)
        #expect(server.count(other) == 43)
        #expect(server.redelivered == 0 && client.redelivered == 0)
        #expect(report.stats.envelopesSent == 203)
        #expect(report.stats.envelopesReceived == 340)
        // Noise adds 18 bytes per message of up to 65,519 bytes: the wire carries barely more than the frames.
        #expect(report.wire.bytesSent > report.stats.bytesSent)
        #expect(Double(report.wire.bytesSent) < Double(report.stats.bytesSent) * 1.01 + 2048)
        #expect(report.wire.messagesSent >= 9)  // 3 × 200 KB needs at least 9 Noise messages
    }

    @Test("new local writes are pushed at once to a connected peer, and relayed on to a third node")
    func pushAndForward() async throws {
        let space = testSpace(3)
        let hub = MemoryStore(keys: keys(10), spaces: [space])
        let a = MemoryStore(keys: keys(11), spaces: [space])
        let c = MemoryStore(keys: keys(12), spaces: [space])
        try await withServer(store: hub) { listener, _ in
            try await withThrowingTaskGroup(of: PeerReport.self) { group in
                for store in [a, c] {
                    group.addTask { try await syncOnce(store, port: listener.port, closeWhenSynced: false) }
                }
                try await eventually("both peers connected") {
                    hub.subscriberCount == 2 && a.subscriberCount == 1 && c.subscriberCount == 1
                }
                a.write(space, count: 5)
                try await eventually("A's writes reach C through the hub", timeout: .seconds(5)) { c.count(space) == 5 }
                c.write(space, count: 7)
                try await eventually("C's writes reach A through the hub", timeout: .seconds(5)) {
                    a.count(space) == 12
                }
                group.cancelAll()
                for try await report in group { #expect(report.transportError == nil) }
            }
        }
        #expect(hub.ids(space) == a.ids(space))
        #expect(a.ids(space) == c.ids(space))
    }
}
