import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn: the fleet's relay processes, the `saraban` commands
/// the fleet and the tests run, and the tests' daemons.
///
/// Not Foundation's `Process`: its `run()` crashed the child-process tests in CI-style runs
/// (SIGSEGV in memcpy inside `run()` while other threads started children), in the fleet's relay
/// start as in the tests' own runner.
///
/// ```swift
/// let child = try ChildProcess(["/usr/bin/env", "true"], stdout: .file("/tmp/out"))
/// let status = child.wait()   // 0
/// ```
public final class ChildProcess: @unchecked Sendable {
    /// Where the child's standard input, output or error goes.
    public enum Stream: Sendable {
        /// /dev/null.
        case null
        /// A file, created or truncated.
        case file(String)
        /// A file, appended to.
        case append(String)
        /// A pipe whose read end is ``output`` (standard output) or ``errorOutput`` (standard error).
        case pipe
    }

    public let pid: pid_t
    /// The read end of standard output's pipe (``Stream/pipe``), else nil.
    public let output: FileHandle?
    /// The read end of standard error's pipe (``Stream/pipe``), else nil.
    public let errorOutput: FileHandle?

    private let lock = NSLock()
    private var exit: Int32?

    /// Starts `arguments[0]` (a path) with `arguments`, the environment `environment` (this
    /// process's when nil), and `stdin`, `stdout` and `stderr` as given; signals are unblocked and
    /// at their defaults in the child.
    public init(
        _ arguments: [String], environment: [String: String]? = nil, stdin: Stream = .null, stdout: Stream = .null,
        stderr: Stream = .null
    ) throws {
        guard let path = arguments.first else { throw FleetError("no program to start") }
        let env = environment ?? ProcessInfo.processInfo.environment
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        for (fd, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
            switch stream {
            case .null: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
            case .file(let f):
                posix_spawn_file_actions_addopen(&actions, fd, f, fd == 0 ? O_RDONLY : O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            case .append(let f): posix_spawn_file_actions_addopen(&actions, fd, f, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            case .pipe: guard fd != 0 else { throw FleetError("standard input cannot be a pipe") }
            }
        }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for a in argv { free(a) }
            for e in envp { free(e) }
        }
        var pid: pid_t = 0
        let pipes = [(Int32(1), stdout), (2, stderr)].compactMap { fd, stream -> Int32? in
            if case .pipe = stream { fd } else { nil }
        }
        let (rc, readEnds): (Int32, [Int32: Int32]) = Self.spawnLock.withLock {
            // The pipes are made close-on-exec under the lock, so no child started meanwhile
            // holds a write end (the output would then never end).
            var readEnds: [Int32: Int32] = [:]
            var writeEnds: [Int32] = []
            for target in pipes {
                var fds: [Int32] = [-1, -1]
                guard pipe(&fds) == 0 else {
                    let e = errno
                    for fd in Array(readEnds.values) + writeEnds { close(fd) }
                    return (e, [:])
                }
                _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
                _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
                posix_spawn_file_actions_adddup2(&actions, fds[1], target)
                readEnds[target] = fds[0]
                writeEnds.append(fds[1])
            }
            // Last: nothing else this process holds open reaches the child (a file being written
            // here, inherited by a child, cannot be executed, ETXTBSY, until that child exits).
            if let addCloseFrom = Self.addCloseFrom { _ = addCloseFrom(&actions, 3) }
            let rc = posix_spawn(&pid, path, &actions, &attr, argv, envp)
            for fd in writeEnds { close(fd) }
            if rc != 0 { for fd in readEnds.values { close(fd) } }
            return (rc, readEnds)
        }
        guard rc == 0 else { throw FleetError("cannot start \(path): \(String(cString: strerror(rc)))") }
        self.pid = pid
        output = readEnds[1].map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) }
        errorOutput = readEnds[2].map { FileHandle(fileDescriptor: $0, closeOnDealloc: true) }
    }

    private static let spawnLock = NSLock()

    // glibc's posix_spawn_file_actions_addclosefrom_np (2.34) is behind _GNU_SOURCE, which the
    // Glibc module does not define: looked up at run time (nil on an older glibc).
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? =
        dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np").map {
            unsafeBitCast($0, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
        }

    /// The exit code, or 128 + the signal for a child killed by one (as a shell says).
    static func code(_ status: Int32) -> Int32 { (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f) }

    /// Whether it still runs (it is reaped once it has ended).
    public var isRunning: Bool {
        lock.withLock {
            if exit != nil { return false }
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return true }
            exit = Self.code(status)
            return false
        }
    }

    /// Waits for the end; returns the exit code (128 + the signal when killed by one).
    @discardableResult
    public func wait() -> Int32 {
        lock.withLock {
            if let exit { return exit }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            exit = Self.code(status)
            return exit!
        }
    }

    /// Sends `signal` unless it has ended.
    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }
}
