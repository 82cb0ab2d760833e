import Foundation
import SarabanFleet
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Child processes for the suites that run the built `saraban`: one-shot commands and
// `saraban serve` daemons, written once for the CLI, integration, relay and web suites.

/// What a finished child printed, and how it ended.
public struct ProcessRun: Sendable {
    public var status: Int32
    /// Standard output as bytes (for binary output, such as a CSV with a byte-order mark).
    public var outBytes: Data
    public var err: String
    /// Standard output as text.
    public var out: String { String(decoding: outBytes, as: UTF8.self) }
}

/// Runs `executable ARGUMENTS` to completion. The environment is the test's without
/// `SARABAN_HOME` and with `$SARABAN` naming the built `saraban`, then `env` on top; standard
/// input is `stdin` (else /dev/null), and standard output and error are collected through
/// temporary files, so a child that prints much to both never stalls on a full pipe. Started with
/// posix_spawn (``ChildProcess``), not Foundation's `Process`, whose `run()` crashed in CI-style runs.
public func runProcess(
    _ executable: String, _ arguments: [String], stdin: String? = nil, env extra: [String: String] = [:],
    cwd: String? = nil
) throws -> ProcessRun {
    var env = ProcessInfo.processInfo.environment
    env["SARABAN_HOME"] = nil
    env["SARABAN"] = sarabanBinary
    for (k, v) in extra { env[k] = v }
    let tmp = FileManager.default.temporaryDirectory.path + "/saraban-run-\(UUID().uuidString)"
    let paths = (in: tmp + ".in", out: tmp + ".out", err: tmp + ".err")
    defer { for path in [paths.in, paths.out, paths.err] { try? FileManager.default.removeItem(atPath: path) } }
    _ = FileManager.default.createFile(atPath: paths.in, contents: Data((stdin ?? "").utf8))
    let words = [executable] + arguments
    // Through /bin/sh when a working directory is asked for (posix_spawn has no chdir here).
    let argv = cwd.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + words } ?? words
    let child = try ChildProcess(
        argv, environment: env, stdin: stdin == nil ? .null : .file(paths.in), stdout: .file(paths.out),
        stderr: .file(paths.err))
    let code = child.wait()
    let o = FileManager.default.contents(atPath: paths.out) ?? Data()
    let e = FileManager.default.contents(atPath: paths.err) ?? Data()
    return ProcessRun(status: code, outBytes: o, err: String(decoding: e, as: UTF8.self))
}

/// Runs `saraban ARGS` to completion (``runProcess(_:_:stdin:env:cwd:)``).
@discardableResult
public func saraban(
    _ args: [String], stdin: String? = nil, env: [String: String] = [:], cwd: String? = nil
) throws -> ProcessRun {
    try runProcess(sarabanBinary, args, stdin: stdin, env: env, cwd: cwd)
}

/// `saraban ARGS`' standard output, trimmed; throws (and records an issue) unless it exits 0.
@discardableResult
public func sarabanOK(
    _ args: [String], stdin: String? = nil, env: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation
) throws -> String {
    let r = try saraban(args, stdin: stdin, env: env)
    guard r.status == 0 else {
        throw testFailure("saraban \(args.joined(separator: " ")) exited \(r.status): \(r.err)", sourceLocation: sourceLocation)
    }
    return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Runs blocking work (a socket, a child process) on a thread of its own, so a test waiting for it
/// never holds one of the few cooperative threads the servers and the other tests need.
public func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in Thread { c.resume(with: Result { try body() }) }.start() }
}

/// A running `saraban serve --data DATA --listen LISTEN EXTRA…`, started and its ready line
/// (`serving NODE on HOST:PORT (role)`) read, which names the real sync port. Its standard error
/// goes to `logPath`; later standard output lines (the web app's address) are read on demand.
/// Started with posix_spawn, as ``runProcess(_:_:stdin:env:cwd:)`` is (Foundation's `Process.run()`
/// crashed in CI-style runs).
public final class ServeProcess: @unchecked Sendable {
    /// The daemon.
    public let child: ChildProcess
    /// The daemon's process id.
    public var pid: pid_t { child.pid }
    /// The sync port from the ready line.
    public let port: Int
    /// Where standard error goes (created empty at each start).
    public let logPath: String
    private let stdout: FileHandle
    // Guards `lines` and `partial` (``line(containing:)`` may be called from any thread).
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()

    /// - Parameters:
    ///   - log: the standard error file (default: `DATA.serve.log`, beside the data directory).
    ///   - logLevel: `SARABAN_LOG_LEVEL` for the daemon (nil: its default).
    ///   - env: added to the environment (after `SARABAN_HOME` is removed).
    ///   - fileLimit: the process's file-descriptor limit (`ulimit -n`), as a service started
    ///     with a common default (1,024) would have; the test runner's own by default.
    public init(
        data: String, listen: String = "127.0.0.1:0", extra: [String] = [], log: String? = nil, logLevel: String? = nil,
        env extraEnv: [String: String] = [:], fileLimit: Int? = nil
    ) throws {
        let arguments = ["serve", "--data", data, "--listen", listen] + extra
        let words =
            fileLimit.map { ["/bin/sh", "-c", "ulimit -n \($0) && exec \"$0\" \"$@\"", sarabanBinary] + arguments }
            ?? [sarabanBinary] + arguments
        var env = ProcessInfo.processInfo.environment
        env["SARABAN_HOME"] = nil
        if let logLevel { env["SARABAN_LOG_LEVEL"] = logLevel }
        for (k, v) in extraEnv { env[k] = v }
        let logFile = log ?? data + ".serve.log"
        logPath = logFile
        let child = try ChildProcess(words, environment: env, stdout: .pipe, stderr: .file(logFile))
        self.child = child
        stdout = child.output!
        var read: [String] = []
        var rest = Data()
        let ready = Self.readLine(stdout, lines: &read, partial: &rest) { $0.contains("serving ") }
        guard let ready, let r = ready.range(of: #":(\d+) \("#, options: .regularExpression),
            let port = Int(ready[r].dropFirst().dropLast(2))
        else {
            child.signal(SIGKILL)
            let status = child.wait()
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw testFailure(
                "serve printed no ready line (exit \(status)); "
                    + "stdout: \(read.joined(separator: "\n").debugDescription); stderr: \(log)")
        }
        self.port = port
        lines = read
        partial = rest
    }

    /// Whether the daemon still runs.
    public var isRunning: Bool { child.isRunning }

    /// A port where `data`'s node served and then stopped: nothing listens there now.
    public static func freedPort(_ data: String) throws -> Int {
        let server = try ServeProcess(data: data)
        server.stop()
        return server.port
    }

    /// The first standard output line containing `text`, of those read so far or the next ones;
    /// nil when standard output ends first. Blocks until then.
    public func line(containing text: String) -> String? {
        lock.lock()
        defer { lock.unlock() }
        return Self.readLine(stdout, lines: &lines, partial: &partial) { $0.contains(text) }
    }

    /// The web app's port, from `web app at http://HOST:PORT/` (nil: serve printed none).
    public func webPort() -> Int? {
        guard let l = line(containing: "web app at http://") else { return nil }
        return Int(l.split(separator: ":").last?.filter(\.isNumber) ?? "")
    }

    /// The standard error written so far.
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Sends `signal` (unless it already ended) and waits; returns the exit status.
    @discardableResult
    public func stop(signal: Int32 = SIGTERM) -> Int32 {
        child.signal(signal)
        return child.wait()
    }

    /// The first of `lines` (then of the lines read next from `handle`) that `matches`.
    private static func readLine(
        _ handle: FileHandle, lines: inout [String], partial: inout Data, _ matches: (String) -> Bool
    ) -> String? {
        if let l = lines.first(where: matches) { return l }
        while true {
            while let nl = partial.firstIndex(of: 0x0A) {
                let line = String(decoding: partial[partial.startIndex..<nl], as: UTF8.self)
                partial = Data(partial[partial.index(after: nl)...])
                lines.append(line)
                if matches(line) { return line }
            }
            let chunk = handle.availableData
            if chunk.isEmpty { return nil }
            partial.append(chunk)
        }
    }
}
