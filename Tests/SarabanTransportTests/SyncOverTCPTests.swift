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

    /// Both ways a store hands local changes to its connections (a stream each connection's
    /// task forwards, or a callback straight into the session's events: a relay, a fleet office)
    /// and stores deliveries (on the connection's delivery task, or on the driver's own path,
    /// heard back by callback: a relay on PostgreSQL, a fleet office). Either way the
    /// subscription ends with the connection.
    @Test(
        "new local writes are pushed at once to a connected peer, and relayed on to a third node",
        arguments: [false, true])
    func pushAndForward(callbacks: Bool) async throws {
        let space = testSpace(3)
        let hub = MemoryStore(keys: keys(10), spaces: [space], callbacks: callbacks)
        let a = MemoryStore(keys: keys(11), spaces: [space], callbacks: callbacks)
        let c = MemoryStore(keys: keys(12), spaces: [space], callbacks: callbacks)
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
        #expect(hub.callbackSubscriptions == (callbacks ? 2 : 0))
        #expect((hub.directDeliveries > 0 && c.directDeliveries > 0) == callbacks)
        #expect(hub.mostOutstanding <= 1)
        try await eventually("every subscription ended with its connection") {
            hub.subscriberCount == 0 && a.subscriberCount == 0 && c.subscriberCount == 0
        }
    }

    /// A driver storing on its own path (done later, on another thread) is handed one delivery
    /// of a connection at a time: the rest wait in the session, so what a peer sends is stored
    /// in the order it was sent (a second batch stored before the first would be a gap, refused).
    @Test("a connection has one direct delivery outstanding at a time, and its envelopes are stored in order")
    func directDeliveriesOneAtATime() async throws {
        let space = testSpace(5)
        let hub = MemoryStore(keys: keys(30), spaces: [space], callbacks: true)
        let a = MemoryStore(keys: keys(31), spaces: [space])
        try await withServer(store: hub) { listener, _ in
            try await withThrowingTaskGroup(of: PeerReport.self) { group in
                group.addTask { try await syncOnce(a, port: listener.port, closeWhenSynced: false) }
                try await eventually("connected") { hub.subscriberCount == 1 && a.subscriberCount == 1 }
                // One push per write, each stored 10 ms after it was handed over: batches arrive
                // while one is being stored. (Written until several deliveries were made: a busy
                // machine may gather the first writes into one batch.)
                var written = 0
                while written < 40 || (hub.directDeliveries < 4 && written < 400) {
                    a.write(space, count: 1)
                    written += 1
                    try await Task.sleep(for: .milliseconds(2))
                }
                let total = written
                try await eventually("A's writes reach the hub", timeout: .seconds(20)) { hub.count(space) == total }
                group.cancelAll()
                for try await report in group { #expect(report.transportError == nil) }
            }
        }
        #expect(hub.ids(space) == a.ids(space))
        #expect(hub.directDeliveries >= 4)
        #expect(hub.mostOutstanding == 1)
        #expect(hub.state.withLock { $0.refused } == 0)
    }

    /// The lag a server records for a peer follows what it stores through other sessions: P
    /// announces 5 envelopes and never sends them, Q sends the same 5; P's recorded lag must fall
    /// to 0 (it stayed at 5 while P's session lasted: the demo's relay showed "we lack 6" for good).
    @Test("a peer's recorded lag clears when what it was ahead by arrives through another session")
    func lagClearsThroughAnotherSession() async throws {
        let space = testSpace(4)
        let hub = MemoryStore(keys: keys(20), spaces: [space])
        let author = MemoryStore(keys: keys(21), spaces: [space])
        let p = MemoryStore(keys: keys(22), spaces: [space])
        let q = MemoryStore(keys: keys(23), spaces: [space])
        let made = author.write(space, count: 5)
        for s in [p, q] { _ = try await s.deliver(space: space, envelopes: made, from: author.keys.publicKey) }
        p.holdsBack.withLock { $0 = true }
        let reports = Reports()
        let pid = p.keys.publicKey.nodeID
        try await withServer(store: hub, reports: reports) { listener, _ in
            try await withThrowingTaskGroup(of: PeerReport.self) { group in
                group.addTask { try await syncOnce(p, port: listener.port, closeWhenSynced: false) }
                try await eventually("the hub sees P ahead by 5") { reports.lag.withLock { $0[pid] } == 5 }
                group.addTask { try await syncOnce(q, port: listener.port) }
                try await eventually("Q's copies reach the hub") { hub.count(space) == 5 }
                try await eventually("P's recorded lag clears") { reports.lag.withLock { $0[pid] } == 0 }
                group.cancelAll()
                while let _ = try? await group.next() {}
            }
        }
    }
}
