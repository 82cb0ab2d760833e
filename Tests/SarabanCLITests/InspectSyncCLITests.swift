import Foundation
import Testing

@testable import saraban

/// `saraban inspect-sync PEER` against a real `saraban serve` process: both nodes write while
/// apart, the inspection reports exactly what the following `saraban sync` moves, changes
/// nothing on either node, and its JSON keeps the documented shape.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(3)))
struct InspectSyncCLITests {
    func changes(_ n: TestNode) throws -> Int {
        (try n.jsonOut(["status"]) as? [String: Any])?["changes"] as? Int ?? -1
    }

    /// Node A (กระทรวงมหาดไทย) and node B (สำนักงานจังหวัดเชียงใหม่) in `dir`.
    @Test func dryRunMatchesTheSyncThatFollows() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        let space = try a.line(["space", "create", "สารบรรณ"])
        let invite = try a.line(["space", "invite", space, b.nodeID, "--office", "สำนักงานจังหวัดเชียงใหม่"])
        try b.sar(["space", "join", invite])
        // A serves (dialling nobody: it has no peers); B syncs with it on demand.
        let server = try ServeProcess(data: a.data)
        defer { server.stop() }
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:\(server.port)", "--name", "มหาดไทย"])
        try b.sar(["sync", "มหาดไทย"])

        // Apart: 3 letters on A, 2 on B, one change (one envelope) each.
        for i in 0..<3 { try a.sar(["doc", "new", "--space", space, "--set", "subject=ก \(i)"]) }
        for i in 0..<2 { try b.sar(["doc", "new", "--space", space, "--set", "subject=ข \(i)"]) }

        let before = Snapshot(b.data)
        let aChanges = try changes(a)
        let j = try #require(try b.jsonOut(["inspect-sync", "มหาดไทย"]) as? [String: Any])
        #expect(Snapshot(b.data).files == before.files, "inspect-sync changed B's data directory")
        #expect(try changes(a) == aChanges)

        // The shape (Docs/CLI.md): every key present, null when unknown.
        #expect(
            Set(j.keys) == [
                "peer", "nodeID", "address", "source", "peerRole", "recordedAt", "seconds", "spaces", "notShared",
                "peerOnlySpaces", "toPeer", "fromPeer", "withheld",
            ])
        #expect(j["peer"] as? String == "มหาดไทย" && j["nodeID"] as? String == a.nodeID)
        #expect(j["source"] as? String == "live" && j["peerRole"] as? String == "member")
        #expect(j["recordedAt"] is NSNull && j["seconds"] is Double)
        let to = try #require(j["toPeer"] as? [String: Any])
        let from = try #require(j["fromPeer"] as? [String: Any])
        #expect(to["changes"] as? Int == 2 && to["envelopes"] as? Int == 2)
        #expect(from["changes"] as? Int == 3 && from["envelopes"] is NSNull)
        let spaces = try #require(j["spaces"] as? [[String: Any]])
        let s = try #require(spaces.first { $0["name"] as? String == "สารบรรณ" })
        #expect(Set(s.keys) == ["space", "name", "toPeer", "fromPeer", "authors", "claimedAhead"])
        #expect((s["claimedAhead"] as? [Any])?.isEmpty == true && (j["withheld"] as? [Any])?.isEmpty == true)
        #expect((s["toPeer"] as? [String: Any])?["changes"] as? Int == 2)
        let authors = try #require(s["authors"] as? [[String: Any]])
        #expect(authors.count == 2)
        for au in authors {
            #expect(Set(au.keys) == ["nodeID", "office", "here", "peer", "toPeer", "fromPeer"])
        }
        let ofB = try #require(authors.first { $0["nodeID"] as? String == b.nodeID })
        #expect(ofB["office"] as? String == "สำนักงานจังหวัดเชียงใหม่" && ofB["fromPeer"] is NSNull)
        let range = try #require(ofB["toPeer"] as? [String: Any])
        #expect(Set(range.keys) == ["first", "last", "changes", "envelopes"])
        #expect(range["changes"] as? Int == 2 && range["envelopes"] as? Int == 2)
        #expect((range["last"] as? Int ?? 0) - (range["first"] as? Int ?? 0) == 1)
        #expect(range["last"] as? Int == ofB["here"] as? Int)
        let ofA = try #require(authors.first { $0["nodeID"] as? String == a.nodeID })
        #expect(ofA["office"] as? String == "กระทรวงมหาดไทย" && ofA["toPeer"] is NSNull)
        #expect((ofA["fromPeer"] as? [String: Any])?["changes"] as? Int == 3)

        // The text form: one table per space, columns aligned by display width (Thai office names).
        let text = try b.out(["inspect-sync", "มหาดไทย"])
        #expect(Snapshot(b.data).files == before.files)
        #expect(text.contains("space สารบรรณ ("))
        #expect(text.contains("send 2 changes in 2 envelopes, receive 3 changes"))
        #expect(text.hasSuffix("nothing was sent or stored\n"))
        let table = text.components(separatedBy: "\n").filter { $0.hasPrefix("  ") }
        let header = try #require(table.first { $0.contains("OFFICE") })
        let nodeColumn = DisplayWidth.of(String(header[..<header.range(of: "NODE")!.lowerBound]))
        for row in table where row.contains("…") {
            let start = DisplayWidth.of(String(row[..<row.range(of: "sb")!.lowerBound]))
            #expect(start == nodeColumn, "misaligned row: \(row)")
        }

        // The real sync moves exactly that.
        let synced = try #require(try b.jsonOut(["sync", "มหาดไทย"]) as? [[String: Any]])
        #expect(synced.first?["changes_sent"] as? Int == 2)
        #expect(synced.first?["envelopes_sent"] as? Int == 2)
        #expect(synced.first?["changes_received"] as? Int == 3)
        #expect(try changes(a) == aChanges + 2)

        // Afterwards, level both ways: live and from the summary recorded by that sync.
        let live = try #require(try b.jsonOut(["inspect-sync", "มหาดไทย"]) as? [String: Any])
        #expect((live["toPeer"] as? [String: Any])?["changes"] as? Int == 0)
        #expect((live["fromPeer"] as? [String: Any])?["changes"] as? Int == 0)
        try b.sar(["doc", "new", "--space", space, "--set", "subject=หลังซิงก์"])
        let offline = try #require(try b.jsonOut(["inspect-sync", "มหาดไทย", "--offline"]) as? [String: Any])
        #expect(offline["source"] as? String == "recorded" && offline["recordedAt"] is String)
        #expect((offline["toPeer"] as? [String: Any])?["changes"] as? Int == 1)
        #expect((offline["fromPeer"] as? [String: Any])?["changes"] as? Int == 0)
        // status counts the new write as lag without dialling.
        let peers = (try b.jsonOut(["status"]) as? [String: Any])?["peers"] as? [[String: Any]]
        #expect(peers?.first?["changesPeerLacks"] as? Int == 1, "\(String(describing: peers))")
    }

    @Test func unknownAndUnreachablePeersSayWhatToDo() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)

        let unknown = try b.sar(["inspect-sync", "ไม่มี"], expect: 64)
        #expect(unknown.stderr.contains("saraban peer list") && unknown.stderr.contains("saraban peer add"), "\(unknown.stderr)")
        #expect(unknown.stdout.isEmpty)

        // A served once on a port, then stopped: nobody listens there now.
        let port = try ServeProcess.freedPort(a.data)
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:\(port)", "--name", "มหาดไทย"])
        let down = try b.sar(["inspect-sync", "มหาดไทย", "--timeout", "5"], expect: 69)
        #expect(down.stderr.contains("cannot connect to มหาดไทย") && down.stderr.contains("nothing listens"), "\(down.stderr)")
        #expect(down.stderr.contains("saraban serve") && down.stderr.contains("--offline"), "\(down.stderr)")
        // Offline, with nothing recorded yet.
        let never = try b.sar(["inspect-sync", "มหาดไทย", "--offline"], expect: 69)
        #expect(never.stderr.contains("saraban sync มหาดไทย"), "\(never.stderr)")
        try b.sar(["inspect-sync", "มหาดไทย", "--timeout", "0"], expect: 64)
    }
}
