import Foundation
import NIOCore
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanSync
import SarabanTransport
import Testing

/// Three offices and a cloud relay, each a real daemon on 127.0.0.1, in one process.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct NetworkTests {
    /// Offices write while the relay is down; office A and C have no direct link, so A's writes
    /// reach C through B; the relay catches up when it returns; nothing acknowledged is lost.
    @Test func officesAndRelayConverge() async throws {
        let root = temporaryDirectory("net")
        defer { try? FileManager.default.removeItem(at: root) }
        let relay = try TestNode("cloud", relay: true, root: root)
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let b = try TestNode("อบต.หนองบัว", root: root)
        let c = try TestNode("อำเภอเมือง", root: root)
        let offices = [a, b, c]
        let space = try shareSpace("สารบรรณ", creator: a, members: [b, c], relays: [relay])
        try await withNodes([relay, a, b, c]) {
        for n in [relay, a, b, c] { try await n.start() }
        // A — B — C in a line, each office also linked to the relay; the relay dials every office.
        try a.addPeer(b)
        try a.addPeer(relay)
        try b.addPeer(a)
        try b.addPeer(c)
        try b.addPeer(relay)
        try c.addPeer(b)
        try c.addPeer(relay)
        for o in offices { try relay.addPeer(o) }

        var writes: [(DocID, String, String)] = []
        let letter = try a.node.createDocument(kind: "letter", fields: [("subject", "ขออนุมัติเดินทาง")], space: space)
        writes.append((letter, "subject", "ขออนุมัติเดินทาง"))
        try await eventually("the first letter everywhere") { try converged(offices, relays: [relay], space: space) }
        #expect(try holdsAll(c, writes))

        // The relay goes down; every office keeps writing.
        await relay.stop()
        for (i, o) in offices.enumerated() {
            let doc = try o.node.createDocument(kind: "memo", fields: [("from", o.name)], space: space)
            writes.append((doc, "from", o.name))
            try o.node.set(letter, field: "note-\(i)", value: .string("บันทึก \(i)"))
            writes.append((letter, "note-\(i)", "บันทึก \(i)"))
        }
        try await eventually("offices converge without the relay") { try converged(offices, space: space) }
        #expect(try offices.allSatisfy { try holdsAll($0, writes) })

        // B is stopped: A and C are cut off from each other (no direct link, no relay).
        await b.stop()
        try a.node.set(letter, field: "subject", value: .string("ขออนุมัติเดินทาง (แก้ไข)"))
        try c.node.set(letter, field: "subject", value: .string("ขออนุมัติเดินทาง ณ กรุงเทพฯ"))
        writes.removeAll { $0.1 == "subject" }  // superseded by both edits
        writes.append((letter, "subject", "ขออนุมัติเดินทาง (แก้ไข)"))
        writes.append((letter, "subject", "ขออนุมัติเดินทาง ณ กรุงเทพฯ"))
        try await Task.sleep(for: .milliseconds(500))
        #expect(try a.vector(space) != c.vector(space))

        // B returns: A reaches C through B (store and forward), and the concurrent edit is a kept conflict.
        try await b.start()
        try await eventually("A and C converge through B") { try converged(offices, space: space) }
        let subject = try c.node.document(letter).view.registers["subject"] ?? []
        #expect(subject.count == 2)

        // The relay returns and catches up on everything it missed.
        try await relay.start()
        try await eventually("the relay catches up") { try converged(offices, relays: [relay], space: space) }
        for o in offices { #expect(try holdsAll(o, writes)) }
        }
    }

    /// A write made by another process (here: the same data directory opened a second time, as
    /// the CLI does) while the daemon runs is noticed by the poller and pushed within a second or so.
    @Test func writesFromAnotherProcessArePushed() async throws {
        let root = temporaryDirectory("poll")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let b = try TestNode("อบต.หนองบัว", root: root)
        let space = try shareSpace("สารบรรณ", creator: a, members: [b], relays: [])
        try await withNodes([a, b]) {
        try await a.start()
        try await b.start()
        try a.addPeer(b)
        try await eventually("first sync") { try converged([a, b], space: space) }

        let cli = try Node.open(dataDir: DataDirectory(path: a.dir.path))
        let doc = try cli.createDocument(kind: "letter", fields: [("subject", "จากบรรทัดคำสั่ง")], space: space)
        cli.close()
        // Only the poller can carry it: no session of A hears of a write made outside its process.
        // (No wall-clock bound: a loaded CI machine once resumed a 0.2 s timer after 10 s.)
        try await eventually("the CLI write at B", timeout: .seconds(30)) { try holdsAll(b, [(doc, "subject", "จากบรรทัดคำสั่ง")]) }
        }
    }

    /// Sync across a FaultProxy with latency, dropped chunks and a reset mid-transfer converges.
    @Test func convergesThroughAFaultyLink() async throws {
        let root = temporaryDirectory("fault")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let b = try TestNode("อบต.หนองบัว", root: root)
        let space = try shareSpace("สารบรรณ", creator: a, members: [b], relays: [])
        // Enough data for several batches: 40 documents of ~2 KiB fields, in 40 envelopes.
        var writes: [(DocID, String, String)] = []
        for i in 0..<40 {
            let value = String(repeating: "ก", count: 700) + " \(i)"
            let doc = try a.node.createDocument(kind: "memo", fields: [("body", value)], space: space)
            writes.append((doc, "body", value))
        }
        for i in 0..<10 {
            let doc = try b.node.createDocument(kind: "memo", fields: [("title", "จาก B \(i)")], space: space)
            writes.append((doc, "title", "จาก B \(i)"))
        }
        try await withNodes([a, b]) {
        try await b.start()
        let target = try SocketAddress(ipAddress: "127.0.0.1", port: b.port)
        try await FaultProxy.run(
            target: target,
            faults: .init(latency: .milliseconds(15), dropProbability: 0.02, resetAfterBytes: 30_000, seed: 7)
        ) { proxy in
            try a.addPeer(b, via: proxy.port)
            try await a.start()
            // Resets every 30 kB and drops make sessions fail; each new one resumes where the last stopped.
            try await Task.sleep(for: .seconds(2))
            proxy.faults = .init(latency: .milliseconds(15), dropProbability: 0.01, seed: 9)
            try await eventually("A and B converge through the faulty link", timeout: .seconds(60)) {
                try converged([a, b], space: space)
            }
            #expect(proxy.statistics.resets + proxy.statistics.chunksDropped > 0)
        }
        #expect(try holdsAll(a, writes))
        #expect(try holdsAll(b, writes))
        }
    }

    /// A relay stores and forwards without keys: its database and files hold no plaintext.
    @Test func relayHoldsNoPlaintext() async throws {
        let root = temporaryDirectory("relay")
        defer { try? FileManager.default.removeItem(at: root) }
        let relay = try TestNode("cloud", relay: true, root: root)
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let b = try TestNode("อบต.หนองบัว", root: root)
        let space = try shareSpace("ลับ", creator: a, members: [b], relays: [relay])
        let marker = "PLAINTEXT-MARKER-ลับมาก-7f3a9c"
        var writes: [(DocID, String, String)] = []
        for i in 0..<5 {
            let doc = try a.node.createDocument(kind: "letter", fields: [("subject", "\(marker) \(i)")], space: space)
            writes.append((doc, "subject", "\(marker) \(i)"))
        }
        try await withNodes([relay, a, b]) {
        try await relay.start()
        try await a.start()
        try a.addPeer(relay)
        // A relay trusts the offices its operator configured (it knows no members: it holds no keys).
        try relay.addPeer(a)
        try relay.addPeer(b, via: 1)
        try await eventually("the relay holds A's envelopes") { try relay.vector(space) == a.vector(space) }
        await a.stop()
        // B only ever talks to the relay.
        try await b.start()
        try relay.addPeer(b)
        try b.addPeer(relay)
        try await eventually("B gets everything through the relay") { try holdsAll(b, writes) }
        }
        relay.node.close()

        var scanned = 0
        for file in try FileManager.default.contentsOfDirectory(atPath: relay.dir.path) {
            guard let data = FileManager.default.contents(atPath: relay.dir.appendingPathComponent(file).path) else { continue }
            scanned += data.count
            for needle in [marker, "PLAINTEXT-MARKER", "ลับมาก"] {
                #expect(data.range(of: Data(needle.utf8)) == nil, "\(file) holds \(needle)")
            }
        }
        #expect(scanned > 0)
        // The members' own databases do hold it (the check can find it).
        a.node.close()
        let aDB = FileManager.default.contents(atPath: a.dir.appendingPathComponent("saraban.db").path) ?? Data()
        #expect(aDB.range(of: Data(marker.utf8)) != nil)
    }

    /// A node id that is neither a configured peer nor a member is refused at the handshake.
    @Test func unknownNodeIsRefused() async throws {
        let root = temporaryDirectory("refuse")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let stranger = try TestNode("stranger", root: root)
        try await withNodes([a]) {
        try await a.start()
        try stranger.addPeer(a)
        let results = try await stranger.node.syncOnce(
            storage: stranger.node.envelopeStorage(), options: fastOptions(), logger: testLogger("saraban.sync"))
        #expect(results.count == 1)
        #expect(results[0].synced == false)
        }
    }

    /// `peer add` validates, `config.json` errors name the file and field.
    @Test func peerConfig() throws {
        let root = temporaryDirectory("config")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let b = try TestNode("อบต.หนองบัว", root: root)
        #expect(try a.node.addPeer(nodeID: b.id.text, address: "10.0.0.2:7420", name: "หนองบัว"))
        #expect(try !a.node.addPeer(nodeID: b.id.text, address: "10.0.0.3:7420", name: "หนองบัว"))
        let settings = try a.node.syncSettings()
        #expect(settings.peers.count == 1)
        #expect(settings.peers[0].address == PeerAddress(host: "10.0.0.3", port: 7420))
        #expect(throws: NodeError.self) { try a.node.addPeer(nodeID: "sbnotanid", address: "10.0.0.2:7420", name: nil) }
        #expect(throws: NodeError.self) { try a.node.addPeer(nodeID: b.id.text, address: "10.0.0.2", name: nil) }

        let path = a.dir.appendingPathComponent("config.json").path
        var text = try String(contentsOfFile: path, encoding: .utf8)
        text = text.replacingOccurrences(of: "10.0.0.3:7420", with: "10.0.0.3")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try a.node.syncSettings()
            Issue.record("a broken address was accepted")
        } catch {
            #expect(error.code == .badConfig)
            #expect(error.message.contains("config.json"))
            #expect(error.message.contains("peers[0].address"))
        }
    }
}
