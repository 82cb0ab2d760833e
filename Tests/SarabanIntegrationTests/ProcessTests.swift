import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `saraban ARGS` to completion; returns status and stdout (stderr is kept for failures).
@discardableResult
func saraban(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: sarabanBinary)
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    env["SARABAN_HOME"] = nil
    p.environment = env
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

func sarabanOK(_ args: [String]) throws -> String {
    let r = try saraban(args)
    guard r.status == 0 else { throw TestFailure("saraban \(args.joined(separator: " ")) exited \(r.status): \(r.err)") }
    return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// A running `saraban serve`: started, its ready line read (which names the real port).
final class ServeProcess: @unchecked Sendable {
    let process = Process()
    let port: Int
    let stderrPath: String

    /// - Parameter fileLimit: the process's file-descriptor limit (`ulimit -n`), as a service
    ///   started with a common default (1,024) would have; the test runner's own by default.
    init(data: String, extra: [String] = [], fileLimit: Int? = nil) throws {
        let arguments = ["serve", "--data", data, "--listen", "127.0.0.1:0", "--max-backoff", "1"] + extra
        if let fileLimit {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -n \(fileLimit) && exec \"$0\" \"$@\"", sarabanBinary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: sarabanBinary)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env["SARABAN_LOG_LEVEL"] = "info"
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        stderrPath = data + ".serve.log"
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // The ready line: `serving NODE_ID on HOST:PORT (role)`.
        var line = Data()
        let handle = out.fileHandleForReading
        while !line.contains(0x0A) {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let r = text.range(of: #":(\d+) \("#, options: .regularExpression),
            let port = Int(text[r].dropFirst().dropLast(2))
        else {
            process.terminate()
            throw TestFailure("serve printed no ready line: \(text.debugDescription)")
        }
        self.port = port
    }

    /// Sends SIGTERM and waits; returns the exit status.
    func terminate() -> Int32 {
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        return process.terminationStatus
    }

    var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// Two `saraban serve` processes on 127.0.0.1; a CLI write into one reaches the other within seconds.
@Suite(.serialized, .timeLimit(.minutes(2)))
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

        let serveA = try ServeProcess(data: a)
        let serveB = try ServeProcess(data: b)
        var stopped = false
        defer {
            if !stopped {
                _ = serveA.terminate()
                _ = serveB.terminate()
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
        let elapsed = clock.now - start
        #expect(elapsed < .seconds(10), "took \(elapsed)")

        let list = try sarabanOK(["peer", "list", "--data", a, "--json"])
        #expect(list.contains(idB))

        let statusA = serveA.terminate()
        let statusB = serveB.terminate()
        stopped = true
        #expect(statusA == 0, "serve A: \(serveA.log)")
        #expect(statusB == 0, "serve B: \(serveB.log)")
    }
}
