import Foundation
import SarabanTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The web app as `saraban serve` runs it: one more service of the daemon, sharing the node's
/// store; users and tokens managed with the CLI while it runs.
@Suite(.timeLimit(.minutes(3))) struct ServeWebTests {
    /// The built `saraban` beside this test bundle (or `$SARABAN_BIN`).
    static let binary = sarabanBinary

    struct Run {
        var status: Int32
        var out: String
        var err: String
    }

    static func saraban(_ args: [String], stdin: String? = nil) async throws -> Run {
        try await offThread { try runBlocking(args, stdin: stdin) }
    }

    static func runBlocking(_ args: [String], stdin: String?) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["SARABAN_HOME"] = nil
        p.environment = env
        let out = Pipe()
        let err = Pipe()
        let inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return Run(status: p.terminationStatus, out: String(decoding: o, as: UTF8.self), err: String(decoding: e, as: UTF8.self))
    }

    static func ok(_ args: [String], stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws
        -> String
    {
        let r = try await saraban(args, stdin: stdin)
        #expect(r.status == 0, "saraban \(args.joined(separator: " ")): \(r.err)", sourceLocation: sourceLocation)
        return r.out
    }

    /// A running `saraban serve`; `lines` are its stdout lines read so far.
    final class Serve: @unchecked Sendable {
        let process = Process()
        let errPath: String
        private let handle: FileHandle
        private var buffer = Data()

        init(_ args: [String], log: String) throws {
            process.executableURL = URL(fileURLWithPath: ServeWebTests.binary)
            process.arguments = ["serve"] + args
            var env = ProcessInfo.processInfo.environment
            env["SARABAN_HOME"] = nil
            process.environment = env
            let out = Pipe()
            process.standardOutput = out
            errPath = log
            FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardInput = FileHandle.nullDevice
            handle = out.fileHandleForReading
            try process.run()
        }

        /// The next stdout line that contains `text` (nil when the process ends first).
        func line(containing text: String) async -> String? {
            try? await offThread { self.readLine(containing: text) }
        }

        func readLine(containing text: String) -> String? {
            while true {
                while let nl = buffer.firstIndex(of: 0x0A) {
                    let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                    buffer = Data(buffer[buffer.index(after: nl)...])
                    if line.contains(text) { return line }
                }
                let chunk = handle.availableData
                if chunk.isEmpty { return nil }
                buffer.append(chunk)
            }
        }

        /// The web app's port, from `web app at http://127.0.0.1:PORT/`.
        func webPort() async -> Int? {
            guard let l = await line(containing: "web app at http://") else { return nil }
            return Int(l.split(separator: ":").last?.filter(\.isNumber) ?? "")
        }

        var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

        func stop() async -> Int32 {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            return await exitStatus()
        }

        func exitStatus() async -> Int32 {
            (try? await offThread {
                self.process.waitUntilExit()
                return self.process.terminationStatus
            }) ?? -1
        }
    }

    func tempDir(_ name: String = #function) -> String {
        let p = FileManager.default.temporaryDirectory.path + "/saraban-serveweb-\(name.filter(\.isLetter))-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    @Test func serveRunsTheWebAppBesideSyncAndSeesUsersAndTokensMadeWhileItRuns() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/a"
        _ = try await Self.ok(["init", "--data", data, "--office", "สำนักงานจังหวัดน่าน"])
        let serve = try Serve(["--data", data, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"], log: dir + "/serve.log")
        #expect(await serve.line(containing: "serving ") != nil)
        let port = try #require(await serve.webPort())
        #expect(serve.stderr.contains("no users yet"))
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
        #expect(await serve.stop() == 0)
        // Secrets never reach the log.
        #expect(!serve.stderr.contains("รหัสผ่านยาวพอ") && !serve.stderr.contains(token))
    }

    @Test func aTakenPortTheOperatorChoseStopsServeWith69() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/a"
        _ = try await Self.ok(["init", "--data", data, "--office", "สำนักงานจังหวัดน่าน"])
        let (fd, port) = try Self.listen(0)
        defer { close(fd) }
        let serve = try Serve(["--data", data, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:\(port)"], log: dir + "/serve.log")
        #expect(await serve.line(containing: "never printed") == nil)
        #expect(await serve.exitStatus() == 69)
        #expect(serve.stderr.contains("cannot serve the web app on 127.0.0.1:\(port)") && serve.stderr.contains("in use"))
        #expect(serve.stderr.contains("เปิดเว็บ"))
    }

    @Test func theDefaultPortTakenOnlyCostsAWarning() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/a"
        _ = try await Self.ok(["init", "--data", data, "--office", "สำนักงานจังหวัดน่าน"])
        // Hold 7480 (or find it held already, by another node on this machine).
        let held = try? Self.listen(7480)
        defer { if let held { close(held.0) } }
        let serve = try Serve(["--data", data, "--listen", "127.0.0.1:0"], log: dir + "/serve.log")
        #expect(await serve.line(containing: "serving ") != nil)
        try await Task.sleep(for: .seconds(1))
        #expect(serve.process.isRunning)
        #expect(serve.stderr.contains("the web app is not served"), "\(serve.stderr)")
        #expect(await serve.stop() == 0)
    }

    @Test func aRelayServesOnlyHealthAndMetrics() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = dir + "/relay"
        _ = try await Self.ok(["init", "--data", data, "--office", "relay", "--relay"])
        let serve = try Serve(["--data", data, "--relay", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"], log: dir + "/serve.log")
        let port = try #require(await serve.webPort())
        #expect(try await HTTP.request(port, "GET", "/healthz").status == 200)
        let login = try await HTTP.request(port, "GET", "/login")
        #expect(login.status == 404)
        let created = try await Self.ok(["token", "create", "--data", data, "--name", "prometheus", "--scope", "read"])
        let token = created.trimmingCharacters(in: .whitespacesAndNewlines)
        let m = try await HTTP.request(port, "GET", "/metrics", headers: [("Authorization", "Bearer \(token)")])
        #expect(m.status == 200 && m.text.contains("saraban_store_bytes"))
        #expect(await serve.stop() == 0)
    }

    @Test func syncSessionsAndPeerLagAreMetrics() async throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = dir + "/a"
        let b = dir + "/b"
        let idA = try await Self.ok(["init", "--data", a, "--office", "สำนักงานจังหวัดน่าน"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let idB = try await Self.ok(["init", "--data", b, "--office", "อำเภอเมืองน่าน"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let serve = try Serve(["--data", a, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"], log: dir + "/a.log")
        let ready = try #require(await serve.line(containing: "serving "))
        let syncPort = try #require(ready.split(separator: " ")[3].split(separator: ":").last.map(String.init))
        let port = try #require(await serve.webPort())
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
        #expect(await serve.stop() == 0)
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
