import Foundation
import Testing

/// `status` and `peer list --json` show what a peer did not deliver
/// (as `serve`/`sync` record it in peers.json); a bad `stale_after` is a broken config.
@Suite(.ownThread, .timeLimit(.minutes(5))) struct WithholdingCLITests {
    @Test func statusAndPeerListShowWhatAPeerDidNotDeliver() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let clock = FakeMinutes()
        let a = try TestNode(dir.file("a"), office: "กระทรวงมหาดไทย", clock: clock)
        let relay = try TestNode(dir.file("r"), office: "คลาวด์", clock: clock)
        let c = try TestNode(dir.file("c"), office: "ศาลากลาง", clock: clock)
        try a.sar(["peer", "add", relay.nodeID, "127.0.0.1:7421", "--name", "cloud"])
        let quiet = try #require(try a.jsonOut(["status"]) as? [String: Any])
        #expect((quiet["withheld"] as? [Any])?.isEmpty == true && (quiet["stale"] as? [Any])?.isEmpty == true)
        #expect(!(try a.out(["status"])).contains("withheld:"))
        let space = String(repeating: "ab", count: 16)
        let book = """
            [{"node_id": "\(relay.nodeID)", "last_contact": 1795621370157, "last_synced": 1795621370157,
              "changes_peer_lacks": 0, "changes_we_lack": 0, "envelopes_sent": 0, "envelopes_received": 3, "bytes_sent": 10, "bytes_received": 30, "sessions": 1,
              "withheld": [{"space": "\(space)", "author": "\(c.nodeID)", "held": 2, "claimed": 7, "behind": 5,
                            "claimant": "\(c.nodeID)", "claim_time": 1795621300000, "detected_at": 1795621370157}]}]
            """
        try Data(book.utf8).write(to: URL(fileURLWithPath: a.data + "/peers.json"))
        let s = try #require(try a.jsonOut(["status"]) as? [String: Any])
        let rows = try #require(s["withheld"] as? [[String: Any]])
        #expect(rows.count == 1)
        #expect(rows.first?["peer"] as? String == relay.nodeID && rows.first?["peerName"] as? String == "cloud")
        #expect(rows.first?["author"] as? String == c.nodeID && rows.first?["behind"] as? Int == 5)
        #expect(rows.first?["claimTime"] as? String == "2026-11-25T15:41:40.000Z")
        let text = try a.out(["status"])
        #expect(text.contains("withheld:   1 peer(s)"))
        let row = try #require(text.split(separator: "\n").first { $0.contains("cloud") && $0.contains("abababab") })
        #expect(row.contains(" 5 "))
        let list = try #require(try a.jsonOut(["peer", "list"]) as? [[String: Any]])
        let entry = try #require((list.first?["withheld"] as? [[String: Any]])?.first)
        #expect(entry["behind"] as? Int == 5 && entry["claimant"] as? String == c.nodeID && entry["claim_time"] as? Int == 1_795_621_300_000)
    }

    @Test func aBadStaleAfterIsABrokenConfig() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try TestNode(dir.file("a"), office: "กระทรวงมหาดไทย", clock: FakeMinutes())
        let path = a.data + "/config.json"
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        config["stale_after"] = "3 วัน"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        let r = try a.sar(["status"], expect: 78)
        #expect(r.stderr.contains("stale_after") && r.stderr.contains("3d"))
        config["stale_after"] = "12h"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        try a.sar(["status"])
    }
}
