import Foundation
import SarabanFleet
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A TCP port that accepts connections (the kernel completes them) and never answers.
final class SilentListener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0, listen(fd, 16) == 0 else { throw TestFailure("cannot listen: \(errno)") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit { close(fd) }
}

/// Network failures as a clerk meets them (issue 14): each says what failed and what to try, exit 69.
@Suite(.ownThread, .serialized, .timeLimit(.minutes(3)))
struct NetworkCLITests {
    /// Nothing listening, an unknown host name and a peer that never finishes the handshake:
    /// `sync` and `inspect-sync` name the failure in words (no errno, no NIO type) and the next step.
    @Test func unreachablePeersSayWhatFailedAndWhatToTry() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        let port = try ServeProcess.freedPort(a.data)
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:\(port)", "--name", "มหาดไทย"])
        let refused = try b.sar(["sync"], expect: 69)
        #expect(refused.stdout.contains("FAILED"))
        #expect(refused.stderr.contains("cannot connect to มหาดไทย (127.0.0.1:\(port)): nothing listens on that port"), "\(refused.stderr)")
        #expect(refused.stderr.contains("saraban serve") && refused.stderr.contains("saraban peer list"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("errno") && !refused.stderr.contains("SingleConnectionFailure"), "\(refused.stderr)")
        let json = try #require(try json(try b.sar(["sync", "--json"], expect: 69).stdout) as? [[String: Any]])
        #expect((json.first?["error"] as? String)?.contains("nothing listens") == true)

        try b.sar(["peer", "add", a.nodeID, "no-such-host.invalid:7420", "--name", "มหาดไทย"])
        let dns = try b.sar(["sync"], expect: 69)
        #expect(dns.stderr.contains("no-such-host.invalid cannot be resolved") && dns.stderr.contains("IP address"), "\(dns.stderr)")

        let silent = try SilentListener()
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:\(silent.port)", "--name", "มหาดไทย"])
        let slow = try b.sar(["inspect-sync", "มหาดไทย", "--timeout", "2"], expect: 69)
        #expect(slow.stderr.contains("did not finish the secure handshake within 2 s"), "\(slow.stderr)")
        #expect(slow.stderr.contains("not be a saraban node"), "\(slow.stderr)")
    }

    /// B dials A, which does not know B: A closes the connection right after the handshake, and B
    /// is told that A refused it, with B's node id to give A's administrator (was "connection lost").
    @Test func untrustedNodeIsToldThePeerRefusedIt() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        let server = try ServeProcess(data: a.data)
        defer { server.stop() }
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:\(server.port)", "--name", "มหาดไทย"])
        let sync = try b.sar(["sync"], expect: 69)
        #expect(sync.stderr.contains("มหาดไทย (127.0.0.1:\(server.port)) refused this node"), "\(sync.stderr)")
        #expect(sync.stderr.contains("saraban peer add \(b.nodeID)"), "\(sync.stderr)")
        #expect(!sync.stderr.contains("connection lost"), "\(sync.stderr)")
        let inspect = try b.sar(["inspect-sync", "มหาดไทย", "--timeout", "5"], expect: 69)
        #expect(inspect.stderr.contains("refused this node"), "\(inspect.stderr)")
        // peer list keeps the reason.
        #expect(try b.out(["peer", "list"]).contains("refused this node"))
        // Once A trusts B, the same command works.
        try a.sar(["peer", "add", b.nodeID, "127.0.0.1:9", "--name", "เชียงใหม่"])
        try eventuallyBlocking("A trusts B", timeout: .seconds(20)) { try b.sar(["sync"], expect: nil).status == 0 }
    }

    /// A second node asked to listen on a port already taken: exit 69 and what to do (was exit 1
    /// with NIO's bind error).
    @Test func portInUseExits69() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        let server = try ServeProcess(data: a.data)
        defer { server.stop() }
        let second = try run(["serve", "--data", b.data, "--listen", "127.0.0.1:\(server.port)"])
        #expect(second.status == 69, "\(second.stderr)")
        #expect(second.stderr.contains("cannot listen on 127.0.0.1:\(server.port)") && second.stderr.contains("already in use"), "\(second.stderr)")
        #expect(second.stderr.contains("--listen") && !second.stderr.contains("errno"), "\(second.stderr)")
        #expect(second.stdout.isEmpty)
    }

    /// A second `serve` on one data directory is refused (exit 75) naming the running daemon's
    /// pid, on whatever port it was asked to listen; once the first stops, serve starts again.
    @Test func secondServeOnOneDataDirectoryIsRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, _) = try twoOffices(dir)
        let first = try ServeProcess(data: a.data)
        // Before the lock the second one served too: stop it rather than wait for ever.
        let log = dir.file("second.log")
        let second = try ChildProcess(
            [sarabanBinary, "serve", "--data", a.data, "--listen", "127.0.0.1:0"], stdout: .null, stderr: .file(log))
        let deadline = Date().addingTimeInterval(15)
        while second.isRunning && Date() < deadline { usleep(50_000) }
        if second.isRunning {
            Issue.record("a second serve runs on the same data directory")
            second.signal(SIGKILL)
        }
        let secondStatus = second.wait()
        let stderr = try String(contentsOfFile: log, encoding: .utf8)
        #expect(secondStatus == 75, "\(stderr)")
        #expect(stderr.contains("already running on") && stderr.contains("pid \(first.pid)"), "\(stderr)")
        #expect(stderr.contains("--data"), "\(stderr)")
        first.stop()
        let again = try ServeProcess(data: a.data)
        again.stop()
    }

    /// `serve` dialling a peer where nothing listens records the same words for `peer list`.
    @Test func serveRecordsWhyAPeerIsUnreachable() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        let port = try ServeProcess.freedPort(b.data)
        try a.sar(["peer", "add", b.nodeID, "127.0.0.1:\(port)", "--name", "เชียงใหม่"])
        let server = try ServeProcess(data: a.data)
        defer { server.stop() }
        try eventuallyBlocking("peer list shows the reason", timeout: .seconds(40)) {
            try a.out(["peer", "list"]).contains("nothing listens on that port")
        }
    }

    /// Ctrl-C during a one-shot sync (here stuck in a handshake that never ends): the sync
    /// stops at once, says where it stopped per peer and that nothing is lost, exit 130.
    @Test func ctrlCOnSyncSaysWhereItStopped() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        let silent = try SilentListener()
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:\(silent.port)", "--name", "มหาดไทย"])
        let err = dir.file("sync.err")
        let p = try ChildProcess([sarabanBinary, "sync", "--data", b.data], stdout: .null, stderr: .file(err))
        usleep(1_500_000)
        let sent = Date()
        p.signal(SIGINT)
        let status = p.wait()
        #expect(Date().timeIntervalSince(sent) < 5, "the sync went on after Ctrl-C")
        let text = try String(contentsOfFile: err, encoding: .utf8)
        #expect(status == 130, "\(text)")
        #expect(text.contains("sync interrupted by SIGINT") && text.contains("มหาดไทย (127.0.0.1:\(silent.port)): stopped after"), "\(text)")
        #expect(text.contains("nothing is lost") && text.contains("saraban sync"), "\(text)")
    }

    /// SIGTERM (as Ctrl-C) on `serve`: exit 0, and it says where each peer stood and that nothing is lost.
    @Test func sigtermOnServeSaysWhereItStopped() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        try a.sar(["peer", "add", b.nodeID, "127.0.0.1:9", "--name", "เชียงใหม่"])
        let serveB = try ServeProcess(data: b.data)
        defer { serveB.stop() }
        try b.sar(["peer", "add", a.nodeID, "127.0.0.1:9", "--name", "มหาดไทย"])
        try a.sar(["peer", "add", b.nodeID, "127.0.0.1:\(serveB.port)", "--name", "เชียงใหม่"])
        let log = dir.file("a.log")
        let serveA = try ServeProcess(data: a.data, log: log)
        try eventuallyBlocking("A met B", timeout: .seconds(40)) { try a.out(["peer", "list"]).contains("last contact") }
        for (signal, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            let server = signal == SIGINT ? serveA : try ServeProcess(data: a.data, log: log)
            if signal == SIGTERM { try eventuallyBlocking("A met B again", timeout: .seconds(40)) { try a.out(["peer", "list"]).contains("last contact") } }
            #expect(server.stop(signal: signal) == 0, "\(name)")
            let text = try String(contentsOfFile: log, encoding: .utf8)
            #expect(text.contains("serve stopped"), "\(name): \(text)")
            #expect(text.contains("เชียงใหม่ (127.0.0.1:\(serveB.port)): in sync at the last contact"), "\(name): \(text)")
            #expect(text.contains("nothing is lost"), "\(name): \(text)")
        }
    }

    /// `peer remove` by name, by id prefix; an unknown one is exit 64 and changes nothing.
    @Test func peerRemove() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (a, b) = try twoOffices(dir)
        let c = try TestNode(dir.file("c"), office: "อำเภอเมือง", clock: FakeMinutes())
        try a.sar(["peer", "add", b.nodeID, "10.0.0.2:7420", "--name", "เชียงใหม่"])
        try a.sar(["peer", "add", c.nodeID, "10.0.0.3:7420"])
        let config = try String(contentsOfFile: a.data + "/config.json", encoding: .utf8)

        let unknown = try a.sar(["peer", "remove", "ไม่มี"], expect: 64)
        #expect(unknown.stderr.contains("saraban peer list"), "\(unknown.stderr)")
        #expect(try String(contentsOfFile: a.data + "/config.json", encoding: .utf8) == config)

        let byName = try a.sar(["peer", "remove", "เชียงใหม่"])
        #expect(byName.stderr.contains("removed peer เชียงใหม่ (\(b.nodeID)) at 10.0.0.2:7420"), "\(byName.stderr)")
        let list = try a.out(["peer", "list"])
        #expect(!list.contains(b.nodeID) && list.contains(c.nodeID))
        try a.sar(["peer", "remove", String(c.nodeID.prefix(12))])
        #expect(try a.out(["peer", "list"]).contains("no peers"))
        try a.sar(["peer", "remove", "เชียงใหม่"], expect: 64)
    }
}
