import Foundation
import SarabanTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The web app as `saraban serve` runs it: one more service of the daemon, sharing the node's
/// store; users and tokens managed with the CLI while it runs.
@Suite(.timeLimit(.minutes(3))) struct ServeWebTests {
    static func saraban(_ args: [String], stdin: String? = nil) async throws -> ProcessRun {
        try await offThread { try SarabanTestSupport.saraban(args, stdin: stdin) }
    }

    static func ok(_ args: [String], stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> String
    {
        let r = try await saraban(args, stdin: stdin)
        #expect(r.status == 0, "saraban \(args.joined(separator: " ")): \(r.err)", sourceLocation: sourceLocation)
        return r.out
    }

    /// `saraban serve` on `data` with a kernel-chosen sync port, standard error in `log`.
    static func serve(_ data: String, _ extra: [String], log: String) async throws -> ServeProcess {
        try await offThread { try ServeProcess(data: data, extra: extra, log: log) }
    }

    @Test func serveRunsTheWebAppBesideSyncAndSeesUsersAndTokensMadeWhileItRuns() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dir = tmp.path
        let data = dir + "/a"
        _ = try await Self.ok(["init", "--data", data, "--office", "สำนักงานจังหวัดน่าน"])
        let serve = try await Self.serve(data, ["--http", "127.0.0.1:0"], log: dir + "/serve.log")
        let port = try #require(try await offThread { serve.webPort() })
        #expect(serve.log.contains("no users yet"))
        #expect(try await HTTP.request(port, "GET", "/healthz").status == 200)
        #expect(try await HTTP.request(port, "GET", "/readyz").text == "ready\n")

        // A user and a token made with the CLI while the daemon runs work at once.
        _ = try await Self.ok(["user", "add", "--data", data, "somsri", "--role", "clerk", "--password-file", "-"], stdin: "รหัสผ่านยาวพอ\n")
        let created = try await Self.ok(["token", "create", "--data", data, "--name", "vendor-x", "--scope", "read", "--json"])
        let token = try #require((try JSONSerialization.jsonObject(with: Data(created.utf8)) as? [String: Any])?["token"] as? String)
        let me = try await HTTP.request(port, "GET", "/api/v1/node", headers: [("Authorization", "Bearer \(token)")])
        #expect(me.status == 200 && me.json?["office"] as? String == "สำนักงานจังหวัดน่าน")
        _ = try await Self.ok(["token", "revoke", "--data", data, "vendor-x"])
        #expect(try await HTTP.request(port, "GET", "/api/v1/node", headers: [("Authorization", "Bearer \(token)")]).status == 401)

        let page = try await HTTP.request(port, "GET", "/login")
        let csrf = try #require(page.setCookies["saraban_login"])
        let login = try await HTTP.request(
            port, "POST", "/login",
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", "saraban_login=\(csrf)")],
            body: Array("_csrf=\(csrf)&name=somsri&password=\(WebNode.encode("รหัสผ่านยาวพอ"))".utf8))
        #expect(login.status == 303 && login.setCookies["saraban_session"] != nil)
        _ = try await Self.ok(["user", "disable", "--data", data, "somsri"])
        let after = try await HTTP.request(
            port, "GET", "/api/v1/me", headers: [("Cookie", "saraban_session=\(login.setCookies["saraban_session"]!)")])
        #expect(after.status == 401)
        #expect(try await offThread { serve.stop() } == 0)
        // Secrets never reach the log.
        #expect(!serve.log.contains("รหัสผ่านยาวพอ") && !serve.log.contains(token))
    }

    @Test func aTakenPortTheOperatorChoseStopsServeWith69() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dir = tmp.path
        let data = dir + "/a"
        _ = try await Self.ok(["init", "--data", data, "--office", "สำนักงานจังหวัดน่าน"])
        let (fd, port) = try Self.listen(0)
        defer { close(fd) }
        let serve = try await Self.saraban(["serve", "--data", data, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:\(port)"])
        #expect(serve.status == 69)
        #expect(serve.err.contains("cannot serve the web app on 127.0.0.1:\(port)") && serve.err.contains("in use"))
        #expect(serve.err.contains("เปิดเว็บ"))
    }

    @Test func theDefaultPortTakenOnlyCostsAWarning() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dir = tmp.path
        let data = dir + "/a"
        _ = try await Self.ok(["init", "--data", data, "--office", "สำนักงานจังหวัดน่าน"])
        // Hold 7480 (or find it held already, by another node on this machine).
        let held = try? Self.listen(7480)
        defer { if let held { close(held.0) } }
        let serve = try await Self.serve(data, [], log: dir + "/serve.log")
        try await Task.sleep(for: .seconds(1))
        #expect(serve.isRunning)
        #expect(serve.log.contains("the web app is not served"), "\(serve.log)")
        #expect(try await offThread { serve.stop() } == 0)
    }

    @Test func aRelayServesOnlyHealthAndMetrics() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dir = tmp.path
        let data = dir + "/relay"
        _ = try await Self.ok(["init", "--data", data, "--office", "relay", "--relay"])
        let serve = try await Self.serve(data, ["--relay", "--http", "127.0.0.1:0"], log: dir + "/serve.log")
        let port = try #require(try await offThread { serve.webPort() })
        #expect(try await HTTP.request(port, "GET", "/healthz").status == 200)
        let login = try await HTTP.request(port, "GET", "/login")
        #expect(login.status == 404)
        let created = try await Self.ok(["token", "create", "--data", data, "--name", "prometheus", "--scope", "read"])
        let token = created.trimmingCharacters(in: .whitespacesAndNewlines)
        let m = try await HTTP.request(port, "GET", "/metrics", headers: [("Authorization", "Bearer \(token)")])
        #expect(m.status == 200 && m.text.contains("saraban_store_bytes"))
        #expect(try await offThread { serve.stop() } == 0)
    }

    @Test func syncSessionsAndPeerLagAreMetrics() async throws {
        let tmp = TempDir()
        defer { tmp.cleanup() }
        let dir = tmp.path
        let a = dir + "/a"
        let b = dir + "/b"
        let idA = try await Self.ok(["init", "--data", a, "--office", "สำนักงานจังหวัดน่าน"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let idB = try await Self.ok(["init", "--data", b, "--office", "อำเภอเมืองน่าน"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let serve = try await Self.serve(a, ["--http", "127.0.0.1:0"], log: dir + "/a.log")
        let syncPort = serve.port
        let port = try #require(try await offThread { serve.webPort() })
        _ = try await Self.ok(["peer", "add", "--data", a, idB, "127.0.0.1:1", "--name", "อำเภอเมืองน่าน"])
        _ = try await Self.ok(["peer", "add", "--data", b, idA, "127.0.0.1:\(syncPort)", "--name", "จังหวัด"])
        // A re-reads its peers every 2 s; B's sync is accepted once A trusts it.
        var synced = false
        for _ in 0..<20 where !synced {
            try await Task.sleep(for: .milliseconds(500))
            synced = try await Self.saraban(["sync", "--data", b]).status == 0
        }
        #expect(synced)
        let token = try await Self.ok(["token", "create", "--data", a, "--name", "prometheus", "--scope", "read"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let m = try await HTTP.request(port, "GET", "/metrics", headers: [("Authorization", "Bearer \(token)")])
        #expect(m.text.contains("saraban_sync_sessions_total 1") || m.text.contains("saraban_sync_sessions_total 2"), "\(m.text)")
        #expect(m.text.contains("saraban_sync_envelopes_received_total ") && m.text.contains("saraban_sync_envelopes_sent_total "))
        #expect(m.text.contains(#"saraban_peer_lag_changes{peer="อำเภอเมืองน่าน",direction="we_lack"}"#))
        #expect(try await offThread { serve.stop() } == 0)
    }

    /// A listening socket on 127.0.0.1:`port` (0: any) and its port.
    static func listen(_ port: Int) throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let rc = HTTP.loopback(port) { bind(fd, $0, $1) }
        guard rc == 0, Glibc.listen(fd, 1) == 0 else {
            close(fd)
            throw HTTP.Failure(description: "bind \(port): errno \(errno)")
        }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: bound.sin_port)))
    }
}
