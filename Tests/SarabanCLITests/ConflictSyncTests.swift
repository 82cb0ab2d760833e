import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Conflicts made on two nodes that sync over the network (signed envelopes), not change files:
/// remote changes are `verified` in history, authors are named from the space's member table,
/// and a resolution synced back leaves no conflict on either node.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(3)))
struct ConflictSyncTests {
    /// Runs `saraban serve` on both nodes, each configured with the other's address.
    func serveBoth(_ a: TestNode, _ b: TestNode) throws -> [ServeProcess] {
        let sa = try ServeProcess(data: a.data)
        let sb = try ServeProcess(data: b.data)
        try a.sar(["peer", "add", b.nodeID, "127.0.0.1:\(sb.port)", "--name", "เชียงใหม่"])
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:\(sa.port)", "--name", "มหาดไทย"])
        return [sa, sb]
    }

    func conflicts(_ n: TestNode) throws -> [[String: Any]] {
        try n.jsonOut(["conflicts"]) as? [[String: Any]] ?? []
    }

    @Test func resolveOverSyncAndVerifiedHistory() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let clock = FakeMinutes()
        let a = try TestNode(dir.file("a"), office: "กระทรวงมหาดไทย", clock: clock)
        let b = try TestNode(dir.file("b"), office: "สำนักงานจังหวัดเชียงใหม่", clock: clock)
        let space = try a.line(["space", "create", "สารบรรณ"])
        let invite = try a.line(["space", "invite", space, b.nodeID, "--office", "สำนักงานจังหวัดเชียงใหม่"])
        try b.sar(["space", "join", invite])
        let doc = try a.line(["doc", "new", "--space", space, "--kind", "letter", "--set", "subject=ต้นฉบับ"])

        var servers = try serveBoth(a, b)
        try eventuallyBlocking("B has the letter", timeout: .seconds(40)) { (try b.sar(["doc", "get", doc, "subject"], expect: nil)).stdout == "ต้นฉบับ\n" }
        for s in servers { s.stop() }
        // Cut off: both edit the subject.
        try a.sar(["doc", "set", doc, "subject", "ฉบับ ก"])
        try b.sar(["doc", "set", doc, "subject", "ฉบับ ข"])
        servers = try serveBoth(a, b)
        defer { for s in servers { s.stop() } }
        try eventuallyBlocking("both nodes hold both values", timeout: .seconds(40)) {
            try [a, b].allSatisfy { n in
                ((try conflicts(n).first?["values"] as? [[String: Any]])?.count ?? 0) == 2
            }
        }

        for n in [a, b] {
            let list = try #require(try n.jsonOut(["conflicts", "--space", "สารบรรณ"]) as? [[String: Any]])
            #expect(list.count == 1)
            let values = try #require(list.first?["values"] as? [[String: Any]])
            #expect(Set(values.compactMap { $0["value"] as? String }) == ["ฉบับ ก", "ฉบับ ข"])
            // Both offices are named: the other one from the space's member table.
            #expect(Set(values.compactMap { $0["office"] as? String }) == ["กระทรวงมหาดไทย", "สำนักงานจังหวัดเชียงใหม่"])
            #expect(Set(values.compactMap { $0["nodeID"] as? String }) == [a.nodeID, b.nodeID])
            // Every change came in (or was sealed into) a signed envelope.
            let h = try #require(try n.jsonOut(["history", doc]) as? [[String: Any]])
            #expect(h.count == 3)
            #expect(h.allSatisfy { $0["signature"] as? String == "verified" }, "\(h)")
        }
        // The default space holds none of it.
        #expect((try a.jsonOut(["conflicts", "--space", "office"]) as? [Any])?.isEmpty == true)

        let bChange = try #require(
            (try conflicts(a).first?["values"] as? [[String: Any]])?.first { $0["value"] as? String == "ฉบับ ข" }?["change"]
                as? String)
        try a.sar(["resolve", doc, "subject", "--keep", bChange])
        try eventuallyBlocking("no conflict on either node", timeout: .seconds(40)) { try conflicts(a).isEmpty && conflicts(b).isEmpty }
        for n in [a, b] {
            #expect(try n.out(["conflicts"]) == "no conflicts\n")
            #expect(try n.line(["doc", "get", doc, "subject"]) == "ฉบับ ข")
        }
        try eventuallyBlocking("A recorded a contact with B", timeout: .seconds(40)) {
            let peers = (try a.jsonOut(["status"]) as? [String: Any])?["peers"] as? [[String: Any]]
            return peers?.first?["lastContact"] is String
        }
    }
}
