import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 14, Why 7, with real daemons: a space joined while `serve` runs is synced without a
/// restart. (`DaemonSpacesTests` shows it in process; this one runs against any `saraban` binary,
/// so it can be checked against the release before: there it times out.) With SARABAN_TEST_LOGS=DIR
/// the daemons' stderr goes to DIR/a.log and DIR/b.log.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(3)))
struct DaemonCLITests {
    @Test func why7_aSpaceJoinedWhileTheDaemonsRunIsSynced() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        let sa = try ServeProcess(data: a.data, log: ProcessInfo.processInfo.environment["SARABAN_TEST_LOGS"].map { $0 + "/a.log" })
        let sb = try ServeProcess(data: b.data, log: ProcessInfo.processInfo.environment["SARABAN_TEST_LOGS"].map { $0 + "/b.log" })
        defer {
            sa.stop()
            sb.stop()
        }
        try a.sar(["peer", "add", b.nodeID, "127.0.0.1:\(sb.port)", "--name", "เชียงใหม่"])
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:\(sa.port)", "--name", "มหาดไทย"])
        func met(_ n: TestNode, _ other: TestNode) throws -> Bool {
            let peers = try n.jsonOut(["peer", "list"]) as? [[String: Any]] ?? []
            return peers.contains { $0["node_id"] as? String == other.nodeID && $0["last_contact"] as? String != nil }
        }
        // The daemons have met (a session open) before the space exists.
        try eventuallyBlocking("both daemons met", timeout: .seconds(30)) { try met(a, b) && met(b, a) }

        let space = try a.line(["space", "create", "สารบรรณ"])
        let invite = try a.line(["space", "invite", space, b.nodeID, "--office", b.office])
        try b.sar(["space", "join", invite])
        let doc = try a.line(["doc", "new", "--space", space, "--kind", "memo", "--set", "subject=หลังเข้าร่วม"])
        var got = false
        try eventuallyBlocking("B's daemon syncs the space joined while it ran", timeout: .seconds(40)) {
            got = (try b.sar(["doc", "get", doc, "subject"], expect: nil)).stdout == "หลังเข้าร่วม\n"
            return got
        }
        #expect(got)
    }
}
