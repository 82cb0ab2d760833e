import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanFleet
import SarabanNode
import SarabanSync
import Testing

/// Issue 16: a relay on PostgreSQL kept attachment chunks in its own data directory, so relay
/// processes on two hosts could not serve each other's attachments. Now they are rows of the
/// database (schema 4) that every relay process reads.
@Suite(.serialized, .timeLimit(.minutes(3))) struct RelayAttachmentTests {
    static let marker = Array("%PDF-1.7 ผลสแกนหนังสือลับ MARKER-7c2d".utf8)

    /// A letter of `a` in space "สารบรรณ" with a scan of `count` bytes (the marker, then random).
    static func letterWithScan(_ a: Node, _ rig: RosterRig, bytes count: Int) throws -> (DocID, AttachmentRef, [UInt8]) {
        let id = try a.createLetter(kind: .internal, fields: [("เรื่อง", "ผลสแกน")], space: "สารบรรณ")
        var bytes = marker
        var rng = SystemRandomNumberGenerator()
        while bytes.count < count { bytes.append(UInt8.random(in: 0...255, using: &rng)) }
        let file = rig.dir.file("scan.pdf")
        FileManager.default.createFile(atPath: file, contents: Data(bytes))
        return (id, try a.attach(id, file: file), bytes)
    }

    /// A's scan (4 chunks) is pushed through relay 0; B gets the letter and fetches the scan
    /// through relay 1 (PostgreSQL: another process; SQLite: the same relay). The bytes match; on
    /// PostgreSQL nothing of it is in the relay's data directory, and a dump holds no plaintext.
    @Test(arguments: StoreKind.available)
    func anAttachmentPushedThroughOneRelayIsFetchedThroughAnother(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let b = try rig.node("b")
        let space = try a.createSpace(name: "สารบรรณ").id
        try b.join(try Invitation.parse(try a.invite(space: space, invitee: b.nodeID).text))
        let (id, ref, bytes) = try Self.letterWithScan(a, rig, bytes: 3 * 256 * 1024 + 777)
        #expect(ref.chunks == 4)
        try await rig.fixture.store.carry([space], for: [])
        try await rig.startRelay()
        var via = 0
        if kind == .postgresql { via = try await rig.startRelay(try await rig.fixture.second()) }

        _ = try a.addPeer(nodeID: rig.relay.nodeID.text, address: "127.0.0.1:\(rig.ports[0])", name: "relay0")
        let pushed = try await a.syncOnce(
            storage: try a.envelopeStorage(), peers: [try a.syncSettings().peer(matching: "relay0")],
            attachmentStallTimeout: .seconds(60), logger: quietLogger("push"))
        #expect(pushed.count == 1 && pushed[0].attachmentsOffered == 1 && pushed[0].attachmentsConfirmed == 1, "\(pushed)")
        #expect(pushed.first?.attachmentChunksSent == 4)
        let onDisk = FileManager.default.fileExists(atPath: rig.relay.dataDirectory.path + "/attachments/\(ref.root)")
        #expect(onDisk == (kind == .sqlite), "the relay's data directory \(onDisk ? "holds" : "lacks") the attachment")

        // Relay 1 learns of what relay 0 stored from the database (NOTIFY, then its catch-up).
        let written = try a.feedVector(space: space)[a.identity.publicKey]
        try await eventually("relay \(via) knows A's envelopes", timeout: .seconds(20), every: .milliseconds(20)) {
            (rig.daemons[via].relayDriver?.knownVector(space)?[a.identity.publicKey] ?? 0) >= written
        }
        try await rig.sync(b, via: via)
        #expect(try b.attachmentStatus(id).map(\.held) == [0])
        let (results, status) = try await b.fetchAttachments(
            id, storage: try b.envelopeStorage(), peers: [try b.syncSettings().peer(matching: "relay\(via)")],
            stallTimeout: .seconds(20), logger: quietLogger("fetch"))
        #expect(results.count == 1 && results[0].error == nil && results[0].chunksReceived == 4, "\(results)")
        #expect(status.count == 1 && status[0].complete)
        #expect(try b.readAttachment(ref) == bytes)

        // The chunks are in the database (sealed): a dump holds them and not the scan's text.
        if kind == .postgresql, let pgDump, let loc = rig.fixture.location {
            let dumpFile = rig.dir.file("dump.sql")
            let p = try ChildProcess(
                [pgDump, "--no-owner", "-h", loc.socketDirectory ?? loc.host, "-p", "\(loc.port)", "-U", loc.user, loc.database],
                stdout: .file(dumpFile))
            #expect(p.wait() == 0)
            let dump = String(decoding: FileManager.default.contents(atPath: dumpFile) ?? Data(), as: UTF8.self).lowercased()
            func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
            #expect(dump.contains("attachment_chunks") && dump.contains(ref.root.lowercased()))
            #expect(!dump.contains("marker-7c2d"))
            #expect(!dump.contains(hex(Array(Self.marker.suffix(24)))))
            #expect(!dump.contains(hex(Array(bytes[100_000..<100_032]))), "a run of the scan's bytes is in the dump")
        }
        await rig.stop()
    }

    /// A chunk damaged on the sending office's disk (it no longer matches the manifest's hash) is
    /// refused by the relay, whichever store it keeps attachments in: the relay holds the other
    /// chunks and not that one, and the office hears that its offer was not confirmed. (Tested
    /// against a relay on SQLite in `AttachmentSyncTests`; here also on PostgreSQL's rows.)
    @Test(arguments: StoreKind.available)
    func aDamagedChunkIsNotStoredByTheRelay(_ kind: StoreKind) async throws {
        let rig = try await RosterRig(kind)
        let a = try rig.node("a")
        let space = try a.createSpace(name: "สารบรรณ").id
        let (_, ref, _) = try Self.letterWithScan(a, rig, bytes: 2 * 256 * 1024 + 99)
        #expect(ref.chunks == 3)
        let chunk = a.attachmentDirectory(ref) + "/1"
        var sealed = [UInt8](FileManager.default.contents(atPath: chunk) ?? Data())
        sealed[200] ^= 0x40
        try Data(sealed).write(to: URL(fileURLWithPath: chunk))
        try await rig.fixture.store.carry([space], for: [])
        try await rig.startRelay()
        _ = try a.addPeer(nodeID: rig.relay.nodeID.text, address: "127.0.0.1:\(rig.ports[0])", name: "relay0")
        let pushed = try await a.syncOnce(
            storage: try a.envelopeStorage(), peers: [try a.syncSettings().peer(matching: "relay0")],
            attachmentStallTimeout: .seconds(20), logger: quietLogger("push"))
        print("RelayAttachmentTests.damaged (\(kind)): \(pushed.map { "offered \($0.attachmentsOffered), confirmed \($0.attachmentsConfirmed), chunks sent \($0.attachmentChunksSent)" })")
        #expect(pushed.first?.attachmentsConfirmed == 0, "a relay confirmed an attachment with a damaged chunk")
        let store: any AttachmentStore = rig.fixture.store.attachmentStore ?? DirectoryAttachmentStore(node: rig.relay)
        let root = try #require(Hex.decode(ref.root))
        #expect(try await store.heldChunks(root: root, count: 3) == [0, 2])
        #expect(try await store.readChunk(root: root, index: 1) == nil)
        await rig.stop()
    }
}
