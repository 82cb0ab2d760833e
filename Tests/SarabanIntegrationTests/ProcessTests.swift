import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `saraban serve` on `data` as these tests run it: info logs (in `DATA.serve.log`), a lost peer
/// redialled within a second.
func serveForTest(_ data: String, fileLimit: Int? = nil) throws -> ServeProcess {
    try ServeProcess(data: data, extra: ["--max-backoff", "1"], logLevel: "info", fileLimit: fileLimit)
}

/// Two `saraban serve` processes on 127.0.0.1; a CLI write into one reaches the other within seconds.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(2)))
struct ProcessTests {
    @Test func cliWriteReachesThePeerAndSigtermIsGraceful() async throws {
        let root = temporaryDirectory("proc")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = root.appendingPathComponent("a").path
        let b = root.appendingPathComponent("b").path
        let idA = try sarabanOK(["init", "--data", a, "--office", "อบต.บ้านใหม่"])
        let idB = try sarabanOK(["init", "--data", b, "--office", "อบต.หนองบัว"])
        let space = try sarabanOK(["space", "create", "--data", a, "สารบรรณ"])
        let invite = try sarabanOK(["space", "invite", "--data", a, space, idB])
        _ = try sarabanOK(["space", "join", "--data", b, invite])

        let serveA = try serveForTest(a)
        let serveB = try serveForTest(b)
        var stopped = false
        defer {
            if !stopped {
                _ = serveA.stop()
                _ = serveB.stop()
            }
        }
        _ = try sarabanOK(["peer", "add", "--data", a, idB, "127.0.0.1:\(serveB.port)", "--name", "หนองบัว"])
        _ = try sarabanOK(["peer", "add", "--data", b, idA, "127.0.0.1:\(serveA.port)", "--name", "บ้านใหม่"])

        // A CLI write while A's daemon runs on the same data directory.
        let doc = try sarabanOK(["doc", "new", "--data", a, "--space", space, "--kind", "letter", "--set", "subject=ทดสอบ"])
        let clock = ContinuousClock()
        let start = clock.now
        try await eventually("B has A's letter", timeout: .seconds(20)) {
            let r = try saraban(["doc", "get", "--data", b, doc, "subject"])
            return r.status == 0 && r.out.contains("ทดสอบ")
        }
        // How fast is a benchmark's question (saraban-bench sync), not this test's: a loaded CI
        // machine took 15.8 s once. Shown for the log.
        print("a CLI write reached the peer after \(clock.now - start)")

        let list = try sarabanOK(["peer", "list", "--data", a, "--json"])
        #expect(list.contains(idB))

        let statusA = serveA.stop()
        let statusB = serveB.stop()
        stopped = true
        #expect(statusA == 0, "serve A: \(serveA.log)")
        #expect(statusB == 0, "serve B: \(serveB.log)")
    }
}
