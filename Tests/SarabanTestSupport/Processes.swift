import Foundation
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

/// Starts `p` (Foundation's `Process`, for the daemons tests signal and stop: `ServeProcess` and a
/// few suites), taking turns with ``runProcess(_:_:stdin:env:cwd:)``'s posix_spawn. Taking turns
/// did not stop `Process.run()` from crashing in CI (SIGSEGV in memcpy inside `run()`), which is
/// why `runProcess` no longer uses it; `ServeProcess` still does.
public func spawn(_ p: Process) throws {
    try spawnLock.withLock { try p.run() }
}

private let spawnLock = NSLock()

/// Runs `executable ARGUMENTS` to completion. The environment is the test's without
/// `SARABAN_HOME` and with `$SARABAN` naming the built `saraban`, then `env` on top; standard
/// input is `stdin` (else /dev/null), and standard output and error are collected through
/// temporary files, so a child that prints much to both never stalls on a full pipe.
public func runProcess(
    _ executable: String, _ arguments: [String], stdin: String? = nil, env extra: [String: String] = [:],
    cwd: String? = nil
) throws -> ProcessRun {
    // posix_spawn, not Foundation's Process: Process.run() crashed twice in CI-style runs
    // (SIGSEGV in memcpy inside run(), with spawns already taking turns).
    var env = ProcessInfo.processInfo.environment
    env["SARABAN_HOME"] = nil
    env["SARABAN"] = sarabanBinary
    for (k, v) in extra { env[k] = v }
    let tmp = FileManager.default.temporaryDirectory.path + "/saraban-run-\(UUID().uuidString)"
    let paths = (in: tmp + ".in", out: tmp + ".out", err: tmp + ".err")
    defer { for path in [paths.in, paths.out, paths.err] { try? FileManager.default.removeItem(atPath: path) } }
    _ = FileManager.default.createFile(atPath: paths.in, contents: Data((stdin ?? "").utf8))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, stdin == nil ? "/dev/null" : paths.in, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, paths.out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    posix_spawn_file_actions_addopen(&actions, 2, paths.err, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    let words = [executable] + arguments
    // Through /bin/sh when a working directory is asked for (posix_spawn has no chdir here).
    let argvWords = cwd.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + words } ?? words
    let argv: [UnsafeMutablePointer<CChar>?] = argvWords.map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for a in argv { free(a) }
        for e in envp { free(e) }
    }
    var pid: pid_t = 0
    let rc = spawnLock.withLock { posix_spawn(&pid, argvWords[0], &actions, nil, argv, envp) }
    guard rc == 0 else { throw testFailure("cannot start \(executable): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    // WIFEXITED / WEXITSTATUS, and 128 + the signal for a child killed by one (as a shell says).
    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
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
    /// The daemon's process id.
    public let pid: pid_t
    /// The sync port from the ready line.
    public let port: Int
    /// Where standard error goes (created empty at each start).
    public let logPath: String
    private let stdout: FileHandle
    // Guards `lines` and `partial` (``line(containing:)`` may be called from any thread).
    private let lock = NSLock()
    private var lines: [String] = []
    private var partial = Data()
    // Guards `exit` (apart: ``line(containing:)`` blocks holding `lock`).
    private let exitLock = NSLock()
    private var exit: Int32?

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
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for a in argv { free(a) }
            for e in envp { free(e) }
        }
        var pid: pid_t = 0
        let (rc, readEnd): (Int32, Int32) = spawnLock.withLock {
            // The pipe is made and marked close-on-exec under the lock, so no other child started
            // meanwhile inherits its write end (standard output would then never end).
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { return (errno, -1) }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
            posix_spawn_file_actions_addopen(&actions, 2, logFile, O_WRONLY | O_APPEND, 0)
            let rc = posix_spawn(&pid, words[0], &actions, nil, argv, envp)
            close(fds[1])
            if rc != 0 { close(fds[0]) }
            return (rc, fds[0])
        }
        guard rc == 0 else { throw testFailure("cannot start saraban serve: \(String(cString: strerror(rc)))") }
        self.pid = pid
        stdout = FileHandle(fileDescriptor: readEnd, closeOnDealloc: true)
        var read: [String] = []
        var rest = Data()
        let ready = Self.readLine(stdout, lines: &read, partial: &rest) { $0.contains("serving ") }
        guard let ready, let r = ready.range(of: #":(\d+) \("#, options: .regularExpression),
            let port = Int(ready[r].dropFirst().dropLast(2))
        else {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let log = (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? ""
            throw testFailure(
                "serve printed no ready line (exit \(Self.code(status))); "
                    + "stdout: \(read.joined(separator: "\n").debugDescription); stderr: \(log)")
        }
        self.port = port
        lines = read
        partial = rest
    }

    /// The exit code, or 128 + the signal for a child killed by one (as a shell says).
    private static func code(_ status: Int32) -> Int32 { (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }

    /// Whether the daemon still runs (it is reaped once it has ended).
    public var isRunning: Bool {
        exitLock.withLock {
            if exit != nil { return false }
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return true }
            exit = Self.code(status)
            return false
        }
    }

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
        if isRunning { kill(pid, signal) }
        return exitLock.withLock {
            if let exit { return exit }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            exit = Self.code(status)
            return exit!
        }
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
