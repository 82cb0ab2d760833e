import Foundation
import GRDB
import Logging
import SarabanCore
import SarabanFleet
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Crash tests with real processes (issue 6): `saraban serve` daemons and `saraban` CLI writers
// killed with SIGKILL at seeded random points, then `PRAGMA integrity_check`, the acknowledged
// set (Jepsen set-full style) and convergence. Every child is spawned with posix_spawn, so the
// test alone reaps it: a pid is signalled only while its child is unreaped (a zombie at worst),
// never after it could have been reused.
//
//   SARABAN_SEED=N          replay a seed (the schedule of kills and writes; timing is real)
//   SARABAN_CRASH_KILLS=N   daemon kills in `killNineDuringSync` (default 100)

// MARK: - Seeded randomness

/// SplitMix64: the seed names the schedule (which node, when, how long it stays down, which writes).
struct CrashRNG: RandomNumberGenerator {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func seconds(_ lo: Double, _ hi: Double) -> Double { Double.random(in: lo...hi, using: &self) }
    mutating func chance(_ percent: Int) -> Bool { int(0...99) < percent }
}

/// `$SARABAN_SEED` or a fresh random seed (printed by the caller).
func crashSeed() -> UInt64 {
    if let s = ProcessInfo.processInfo.environment["SARABAN_SEED"], let v = UInt64(s) { return v }
    return UInt64.random(in: 1...999_999_999)
}

// MARK: - Child processes

/// How a child ended.
enum ChildEnd: Equatable, Sendable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)

    init(waitStatus s: Int32) {
        if s & 0x7F == 0 { self = .exited((s >> 8) & 0xFF) } else { self = .signaled(s & 0x7F) }
    }

    var description: String {
        switch self {
        case .exited(let c): "exit \(c)"
        case .signaled(let s): s == SIGKILL ? "SIGKILL" : "signal \(s)"
        }
    }
}

/// A `saraban` child started by ``ChildProcess`` (posix_spawn): stdin /dev/null, stdout (and stderr unless it goes
/// to a file) on close-on-exec pipes, every other descriptor closed in the child.
final class Child: @unchecked Sendable {
    let pid: pid_t
    let args: [String]
    private(set) var out: Int32
    private(set) var err: Int32
    private(set) var end: ChildEnd?

    private init(pid: pid_t, args: [String], out: Int32, err: Int32) {
        self.pid = pid
        self.args = args
        self.out = out
        self.err = err
    }

    static func spawn(_ args: [String], stderrFile: String? = nil, environment extra: [String: String] = [:]) throws -> Child {
        var env = ProcessInfo.processInfo.environment
        env["SARABAN_HOME"] = nil
        for (k, v) in extra { env[k] = v }
        let p = try ChildProcess(
            [sarabanBinary] + args, environment: env, stdout: .pipe, stderr: stderrFile.map { .append($0) } ?? .pipe)
        // This type polls, reads and closes the raw descriptors and reaps the child itself: it
        // takes copies (close-on-exec) and leaves ChildProcess's handles to close theirs.
        func own(_ h: FileHandle?) -> Int32 { h.map { fcntl($0.fileDescriptor, F_DUPFD_CLOEXEC, 0) } ?? -1 }
        return Child(pid: p.pid, args: args, out: own(p.output), err: own(p.errorOutput))
    }

    /// Reads stdout and stderr until both end, asking `shouldKill` every `tick` ms whether to send
    /// SIGKILL now (the child is not reaped yet, so its pid is still its own); kills it at
    /// `deadline` too. Then reaps it.
    func collect(
        deadline: Double = 60, tick: Int32 = 50, shouldKill: () -> Bool = { false }
    ) -> (end: ChildEnd, out: String, err: String, killed: Bool, timedOut: Bool) {
        let start = Date()
        var outData = Data()
        var errData = Data()
        var killed = false
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while out >= 0 || err >= 0 {
            if !killed {
                if Date().timeIntervalSince(start) > deadline {
                    timedOut = true
                    killed = true
                    kill(pid, SIGKILL)
                } else if shouldKill() {
                    killed = true
                    kill(pid, SIGKILL)
                }
            }
            var fds = [out, err].filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), killed ? 100 : tick)
            if n < 0 && errno != EINTR { break }
            for p in fds where p.revents != 0 {
                let r = read(p.fd, &buffer, buffer.count)
                if r > 0 {
                    if p.fd == out { outData.append(contentsOf: buffer[0..<r]) } else { errData.append(contentsOf: buffer[0..<r]) }
                } else if r == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(p.fd)
                    if p.fd == out { out = -1 } else { err = -1 }
                }
            }
        }
        let end = reap()
        return (end, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self), killed, timedOut)
    }

    /// Reads stdout up to the first newline (or `timeout`); nil on end of stream or timeout.
    func readLine(timeout: Double) -> String? {
        let start = Date()
        var line = [UInt8]()
        var byte: UInt8 = 0
        while out >= 0, Date().timeIntervalSince(start) < timeout {
            var p = pollfd(fd: out, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let r = read(out, &byte, 1)
            if r == 1 {
                if byte == 0x0A { return String(decoding: line, as: UTF8.self) }
                line.append(byte)
            } else if r == 0 || errno != EINTR {
                return nil
            }
        }
        return nil
    }

    /// SIGKILL (unless it already ended) and reap.
    @discardableResult
    func killNow(_ signal: Int32 = SIGKILL, timeout: Double = 20) -> ChildEnd? {
        if end == nil { kill(pid, signal) }
        return reap(timeout: timeout)
    }

    /// Waits for the child (up to `timeout`, then SIGKILL) and closes the pipes.
    @discardableResult
    func reap(timeout: Double = 3600) -> ChildEnd {
        if let end { return end }
        let start = Date()
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { status = 0x7F00; break }
            if Date().timeIntervalSince(start) > timeout { kill(pid, SIGKILL) }
            usleep(2000)
        }
        for fd in [out, err] where fd >= 0 { close(fd) }
        out = -1
        err = -1
        let e = ChildEnd(waitStatus: status)
        end = e
        return e
    }
}

/// Runs `saraban ARGS` to completion (bounded); throws unless it exits 0.
@discardableResult
func crashCLI(_ args: [String], seed: UInt64, deadline: Double = 60) throws -> String {
    let r = try Child.spawn(args).collect(deadline: deadline)
    guard r.end == .exited(0) else {
        throw TestFailure(
            "seed \(seed): saraban \(args.joined(separator: " ")) ended with \(r.end)\(r.timedOut ? " (timed out)" : ""): \(r.err)")
    }
    return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Runs `body` on a thread of its own (it blocks on children; the cooperative pool has 2 threads here).
func onThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let t = Thread { c.resume(with: Result { try body() }) }
        t.name = name
        t.stackSize = 8 << 20
        t.start()
    }
}

// MARK: - SQLite checks

/// `PRAGMA integrity_check` through GRDB (its rows joined; "ok" when intact).
func integrityCheck(_ path: String) throws -> String {
    var config = Configuration()
    config.busyMode = .timeout(10)
    _ = Store.processWideSettings  // before this process's first SQLite connection, as Store does
    let db = try DatabaseQueue(path: path, configuration: config)
    defer { try? db.close() }
    return try db.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") }.joined(separator: "; ")
}

/// Whether another connection holds the database's write lock now (`BEGIN IMMEDIATE` is busy).
/// When it is free, the probe takes it for a moment and rolls back.
final class WriteLockProbe {
    let queue: DatabaseQueue

    init(_ path: String) throws {
        var config = Configuration()
        config.busyMode = .immediateError
        _ = Store.processWideSettings  // before this process's first SQLite connection, as Store does
        queue = try DatabaseQueue(path: path, configuration: config)
    }

    func isLocked() -> Bool {
        do {
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                try db.execute(sql: "ROLLBACK")
            }
            return false
        } catch let e as DatabaseError where e.resultCode == .SQLITE_BUSY || e.resultCode == .SQLITE_LOCKED {
            return true
        } catch {
            return false
        }
    }

    func close() { try? queue.close() }
}

// MARK: - Daemons

/// A `saraban serve` child on 127.0.0.1: port 0 the first time, the same port after each restart
/// (so peers' configs stay right); if that port was taken meanwhile, a new one (the caller
/// updates the peers).
final class CrashDaemon: @unchecked Sendable {
    let name: String
    let data: String
    let nodeID: String
    var port = 0
    var child: Child?
    /// Added to the daemon's environment at each start (PowerLossTests preload a library).
    var environment: [String: String] = [:]
    var starts = 0
    var portChanges = 0
    /// Where this run's log starts in the (appended) log file.
    var logOffset: UInt64 = 0
    var log: String { data + ".serve.log" }
    var database: String { data + "/saraban.db" }

    init(name: String, data: String, nodeID: String) {
        self.name = name
        self.data = data
        self.nodeID = nodeID
    }

    /// Starts it; returns whether the port changed.
    @discardableResult
    func start(seed: UInt64) throws -> Bool {
        guard child == nil else { throw testFailure("\(name) is already running") }
        let old = port
        logOffset = (try? FileManager.default.attributesOfItem(atPath: log)[.size] as? UInt64) ?? 0
        for attempt in 0..<3 {
            let listen = attempt < 2 ? port : 0
            let c = try Child.spawn(
                ["serve", "--data", data, "--listen", "127.0.0.1:\(listen)", "--max-backoff", "0.5"],
                stderrFile: log, environment: environment.merging(["SARABAN_LOG_LEVEL": "info"]) { a, _ in a })
            // The ready line: `serving NODE_ID on HOST:PORT (role)`.
            if let line = c.readLine(timeout: 30),
                let r = line.range(of: #":(\d+) \("#, options: .regularExpression),
                let p = Int(line[r].dropFirst().dropLast(2))
            {
                child = c
                port = p
                starts += 1
                if old != 0 && p != old { portChanges += 1 }
                return old != 0 && p != old
            }
            let end = c.killNow()
            if attempt == 2 {
                throw TestFailure("seed \(seed): \(name)'s `saraban serve` printed no ready line (\(end)); log:\n\(logTail())")
            }
            usleep(200_000)
        }
        return false
    }

    /// kill -9 and reap; the child must die of SIGKILL (not have exited before). Returns whether
    /// it had opened a sync session since it started.
    @discardableResult
    func kill9(seed: UInt64) throws -> Bool {
        guard let c = child else { return false }
        child = nil
        let end = c.killNow(SIGKILL)
        guard end == .signaled(SIGKILL) else {
            throw TestFailure("seed \(seed): \(name)'s daemon had already ended (\(end ?? .exited(-1))) before kill -9; log:\n\(logTail())")
        }
        guard let h = FileHandle(forReadingAtPath: log) else { return false }
        defer { try? h.close() }
        try? h.seek(toOffset: logOffset)
        return String(decoding: (try? h.readToEnd()) ?? Data(), as: UTF8.self).contains("session open")
    }

    /// SIGTERM, bounded wait, SIGKILL if it hangs.
    func terminate() -> ChildEnd? {
        guard let c = child else { return nil }
        child = nil
        kill(c.pid, SIGTERM)
        return c.reap(timeout: 15)
    }

    func logTail(_ n: Int = 30) -> String {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(n).joined(separator: "\n")
    }
}

/// Stops every running daemon (kill -9) when a test fails half-way.
final class DaemonReaper: @unchecked Sendable {
    let daemons: Locked<[CrashDaemon]> = Locked([])
    func add(_ d: CrashDaemon) { daemons.withLock { $0.append(d) } }
    func killAll() {
        for d in daemons.current { d.child?.killNow(SIGKILL); d.child = nil }
    }
}

/// Runs `body` on a thread of its own with a temporary directory and a reaper; afterwards every
/// daemon it started is killed, and the directory is removed, or kept (its path printed after
/// `failure`) when `body` throws.
func withRealProcesses(
    _ label: String, failure: String, _ body: @escaping @Sendable (URL, DaemonReaper) throws -> Void
) async throws {
    let reaper = DaemonReaper()
    let root = temporaryDirectory(label)
    do {
        try await onThread(label) { try body(root, reaper) }
    } catch {
        reaper.killAll()
        print("\(failure) FAILED; data kept in \(root.path)")
        throw error
    }
    reaper.killAll()
    try? FileManager.default.removeItem(at: root)
}

// MARK: - Writes

struct AckedWrite: Sendable {
    var node: Int
    var doc: String
    var value: String
    var pad: String
}

struct KilledWrite: Sendable {
    var node: Int
    var value: String
    var pad: String
    var end: ChildEnd
}

/// A small write's padding: 8–600 scalars of ASCII and Thai, from the writer's generator.
func crashPad(_ rng: inout CrashRNG) -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789 กขคงจฉชซญดตถทนบปผพฟมยรลวสหอฮะาำิีึืุู่้๊๋")
    return String((0..<rng.int(8...600)).map { _ in alphabet[rng.int(0...(alphabet.count - 1))] })
}

/// FNV-1a 64, for printing a digest that is the same from one run to the next.
func fnv1a(_ s: String) -> String {
    var h: UInt64 = 0xCBF2_9CE4_8422_2325
    for b in s.utf8 {
        h ^= UInt64(b)
        h = h &* 0x100_0000_01B3
    }
    return String(h, radix: 16)
}

/// `doc list --json` reduced to the documents of `kind`, re-encoded with sorted keys.
func crashDocList(_ data: String, kind: String, seed: UInt64) throws -> (ids: Set<String>, canonical: String) {
    let out = try crashCLI(["doc", "list", "--data", data, "--all", "--json"], seed: seed)
    guard let rows = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [[String: Any]] else {
        throw TestFailure("seed \(seed): `doc list --json` on \(data) is not an array of objects: \(out.prefix(200))")
    }
    let mine = rows.filter { $0["kind"] as? String == kind }
    let ids = Set(mine.compactMap { $0["id"] as? String })
    let canonical = String(
        decoding: try JSONSerialization.data(withJSONObject: mine, options: [.sortedKeys]), as: UTF8.self)
    return (ids, canonical)
}

// MARK: - The tests

@Suite(.serialized, .timeLimit(.minutes(8)))
struct CrashTests {
    /// Three nodes share a space; two CLI writers write small documents into random nodes
    /// (acknowledged = exit 0; a few writers are themselves killed mid-write) while one daemon at
    /// a time is killed with SIGKILL at a random point and restarted, 100 times. Each killed
    /// database passes `PRAGMA integrity_check` before its restart. Then the daemons heal, and
    /// every node must hold every acknowledged write, identical documents and feed vectors, every
    /// killed write wholly or not at all, and intact databases.
    @Test func killNineDuringSync() async throws {
        let seed = crashSeed()
        let kills = Int(ProcessInfo.processInfo.environment["SARABAN_CRASH_KILLS"] ?? "") ?? 100
        print("CrashTests.killNineDuringSync: seed \(seed), \(kills) kills (replay: SARABAN_SEED=\(seed))")
        try await withRealProcesses("crash-\(seed)", failure: "CrashTests: seed \(seed)") { root, reaper in
            try runKillNine(seed: seed, kills: kills, root: root, reaper: reaper)
        }
    }

    /// A large `doc new` (many `--set`s in one change) is killed with SIGKILL while its write
    /// transaction holds the database's write lock, at random moments, several times; each time
    /// the database is intact and the document is wholly present or wholly absent, and afterwards
    /// the node still writes and syncs (no sequence number reused, no fork).
    @Test func killNineCLIWriterMidTransaction() async throws {
        let seed = crashSeed()
        print("CrashTests.killNineCLIWriterMidTransaction: seed \(seed) (replay: SARABAN_SEED=\(seed))")
        try await withRealProcesses("crash-cli-\(seed)", failure: "CrashTests: seed \(seed)") { root, reaper in
            try runCLIKill(seed: seed, root: root, reaper: reaper)
        }
    }
}

/// Three member nodes (`init`, `space create`, `space invite`/`join`, `peer add` both ways), each
/// with a `saraban serve`; returns the daemons (running) and the space id.
func crashNetwork(_ count: Int, root: URL, seed: UInt64, reaper: DaemonReaper) throws -> ([CrashDaemon], String) {
    let offices = ["สำนักงาน ก", "สำนักงาน ข", "สำนักงาน ค", "สำนักงาน ง"]
    var daemons: [CrashDaemon] = []
    for i in 0..<count {
        let data = root.appendingPathComponent("n\(i)").path
        let id = try crashCLI(["init", "--data", data, "--office", offices[i]], seed: seed)
        daemons.append(CrashDaemon(name: "n\(i)", data: data, nodeID: id))
    }
    let space = try crashCLI(["space", "create", "--data", daemons[0].data, "crash"], seed: seed)
    for d in daemons.dropFirst() {
        let invite = try crashCLI(["space", "invite", "--data", daemons[0].data, space, d.nodeID], seed: seed)
        try crashCLI(["space", "join", "--data", d.data, invite], seed: seed)
    }
    for d in daemons {
        reaper.add(d)
        try d.start(seed: seed)
    }
    for a in daemons {
        for b in daemons where b !== a {
            try crashCLI(["peer", "add", "--data", a.data, b.nodeID, "127.0.0.1:\(b.port)", "--name", b.name], seed: seed)
        }
    }
    return (daemons, space)
}

/// Polls until `condition` holds, at most `timeout` seconds; the failure names the seed.
func crashEventually(_ what: String, seed: UInt64, timeout: Double, _ condition: () throws -> Bool) throws {
    let start = Date()
    var last: (any Error)?
    while Date().timeIntervalSince(start) < timeout {
        do {
            if try condition() { return }
        } catch { last = error }
        usleep(300_000)
    }
    throw TestFailure(
        "seed \(seed): timed out after \(Int(timeout)) s waiting for \(what)\(last.map { " (last error: \($0))" } ?? "")")
}

func runKillNine(seed: UInt64, kills: Int, root: URL, reaper: DaemonReaper) throws {
    let began = Date()
    var rng = CrashRNG(seed)
    let (daemons, space) = try crashNetwork(3, root: root, seed: seed, reaper: reaper)
    let n = daemons.count

    // Warm-up: one write per node, on every node (membership of all three has spread).
    var warm: [String] = []
    for d in daemons {
        warm.append(
            try crashCLI(["doc", "new", "--data", d.data, "--space", space, "--kind", "crash", "--set", "w=warm-\(d.name)"], seed: seed))
    }
    try crashEventually("the warm-up writes on every node", seed: seed, timeout: 60) {
        try daemons.allSatisfy { try crashDocList($0.data, kind: "crash", seed: seed).ids.isSuperset(of: warm) }
    }
    let warmed = Date()

    // Writers: each its own generator (derived from the seed), its own CLI children.
    let stop = Locked(false)
    let acked = Locked<[AckedWrite]>([])
    let killedWrites = Locked<[KilledWrite]>([])
    let failures = Locked<[String]>([])
    let writersDone = DispatchGroup()
    let writerCount = 2
    for w in 0..<writerCount {
        writersDone.enter()
        let t = Thread {
            defer { writersDone.leave() }
            crashWriter(
                w, seed: seed, daemons: daemons, space: space, stop: stop, acked: acked, killed: killedWrites,
                failures: failures)
        }
        t.name = "crash-writer-\(w)"
        t.start()
    }
    defer {
        stop.withLock { $0 = true }
        writersDone.wait()
    }

    // The killer: one daemon at a time, at a random point, down for a random while.
    var perNode = [Int](repeating: 0, count: n)
    var inSession = 0
    for k in 1...kills {
        usleep(UInt32(rng.int(50_000...700_000)))
        let i = rng.int(0...(n - 1))
        let d = daemons[i]
        if try d.kill9(seed: seed) { inSession += 1 }
        perNode[i] += 1
        let check = try integrityCheck(d.database)
        guard check == "ok" else {
            throw TestFailure("seed \(seed): after kill \(k) of \(d.name), PRAGMA integrity_check: \(check)")
        }
        usleep(UInt32(rng.int(0...300_000)))
        if try d.start(seed: seed) {
            for o in daemons where o !== d {
                try crashCLI(["peer", "add", "--data", o.data, d.nodeID, "127.0.0.1:\(d.port)", "--name", d.name], seed: seed)
            }
        }
        if let f = failures.current.first { throw TestFailure("seed \(seed): during kill \(k): \(f)") }
    }
    let killed = Date()
    stop.withLock { $0 = true }
    writersDone.wait()
    if let f = failures.current.first { throw TestFailure("seed \(seed): \(f)") }
    let acks = acked.current
    let cut = killedWrites.current

    // Heal: every daemon runs; wait until every node lists the same documents, acknowledged ones included.
    let want = Set(acks.map(\.doc)).union(warm)
    var lists: [(ids: Set<String>, canonical: String)] = []
    do {
        try crashEventually("convergence after the kills", seed: seed, timeout: 90) {
            lists = try daemons.map { try crashDocList($0.data, kind: "crash", seed: seed) }
            return lists.allSatisfy { $0.ids.isSuperset(of: want) && $0.canonical == lists[0].canonical }
        }
    } catch {
        var detail = "\(error)"
        for (d, l) in zip(daemons, lists) {
            detail += "\n  \(d.name): \(l.ids.count) documents, \(want.subtracting(l.ids).count) acknowledged missing"
        }
        throw TestFailure(detail)
    }
    let healed = Date()

    // Graceful stop: each daemon must exit 0 on SIGTERM after all this.
    for d in daemons {
        let end = d.terminate()
        guard end == .exited(0) else {
            throw TestFailure("seed \(seed): \(d.name)'s daemon ended with \(end.map { "\($0)" } ?? "?") on SIGTERM; log:\n\(d.logTail())")
        }
    }

    // Every database intact; every node's feed vector and documents identical; the acknowledged
    // set complete; killed writes all-or-nothing.
    var views: [[DocumentView]] = []
    var vectors: [FeedVector] = []
    for d in daemons {
        let check = try integrityCheck(d.database)
        guard check == "ok" else { throw TestFailure("seed \(seed): \(d.name): PRAGMA integrity_check: \(check)") }
        let node = try Node.open(dataDir: DataDirectory(path: d.data), logger: testLogger("saraban.crash"))
        defer { node.close() }
        let sid = try node.resolveSpace(space).id
        vectors.append(try node.feedVector(space: sid))
        let docs = try node.documents().filter { try node.space(ofDocument: $0.id) == sid }.map(\.view)
        views.append(docs)
        let byID = Dictionary(docs.map { ($0.id.description, $0) }, uniquingKeysWith: { a, _ in a })
        for a in acks {
            guard let v = byID[a.doc] else {
                throw TestFailure("seed \(seed): acknowledged write \(a.value) (\(a.doc), written on n\(a.node)) missing on \(d.name)")
            }
            guard v.registers["w"]?.contains(where: { $0.value == .string(a.value) }) == true,
                v.registers["pad"]?.contains(where: { $0.value == .string(a.pad) }) == true
            else {
                throw TestFailure("seed \(seed): acknowledged write \(a.value) (\(a.doc)) on \(d.name) holds \(v.registers)")
            }
        }
        for c in cut {
            let hits = docs.filter { $0.registers["w"]?.contains(where: { $0.value == .string(c.value) }) == true }
            guard hits.isEmpty || (hits.count == 1 && hits[0].registers["pad"]?.map(\.value) == [.string(c.pad)]) else {
                throw TestFailure("seed \(seed): killed write \(c.value) is partly present on \(d.name): \(hits)")
            }
        }
        // The node's status and peer list still read (peers.json survived the kills).
        try crashCLI(["status", "--data", d.data, "--json"], seed: seed)
        try crashCLI(["peer", "list", "--data", d.data, "--json"], seed: seed)
    }
    for i in 1..<n {
        guard vectors[i] == vectors[0] else { throw TestFailure("seed \(seed): feed vectors differ between n0 and n\(i)") }
        guard views[i] == views[0] else { throw TestFailure("seed \(seed): documents differ between n0 and n\(i)") }
    }
    let present = cut.filter { c in
        views[0].contains { $0.registers["w"]?.contains(where: { $0.value == .string(c.value) }) == true }
    }.count
    let sessions = daemons.map { d in
        ((try? String(contentsOfFile: d.log, encoding: .utf8)) ?? "").components(separatedBy: "session open").count - 1
    }
    let f = { (d: Double) in String(format: "%.1f", d) }
    print(
        """
        CrashTests.killNineDuringSync: seed \(seed): \(kills) daemon kills (per node \(perNode); \(inSession) after \
        the daemon had opened a sync session), \
        \(daemons.map(\.starts).reduce(0, +)) daemon starts, \(daemons.map(\.portChanges).reduce(0, +)) port changes; \
        \(acks.count) acknowledged writes, all on all \(n) nodes; \(cut.count) CLI writers killed \
        (\(present) wholly present, \(cut.count - present) absent); \(views[0].count) documents, \
        digest \(fnv1a(lists[0].canonical)) identical on every node; sessions opened \(sessions); \
        integrity_check ok \(kills + n) times; setup \(f(warmed.timeIntervalSince(began))) s, \
        kills \(f(killed.timeIntervalSince(warmed))) s, heal \(f(healed.timeIntervalSince(killed))) s, \
        total \(f(Date().timeIntervalSince(began))) s
        """)
}

func runCLIKill(seed: UInt64, root: URL, reaper: DaemonReaper) throws {
    var rng = CrashRNG(seed)
    let (daemons, space) = try crashNetwork(2, root: root, seed: seed, reaper: reaper)
    let a = daemons[0]
    let b = daemons[1]
    // A writes alone (its daemon stopped), B serves; A syncs with `saraban sync` at the end.
    _ = a.terminate()

    let fields = 600
    var absent = 0
    var present = 0
    var insideLock = 0
    var deep = 0
    var calibration = 0
    var outcomes: [String] = []
    // Trial 0 is not killed: it counts how often a whole write shows the lock held (S). Then at
    // least 10 trials, each killed at a random sighting in 1…S+5 (past the end: not killed), and
    // more (up to 30) until one was killed past the open-time transaction with its write absent.
    var t = -1
    while t < 10 || (deep == 0 && t < 30) {
        t += 1
        let marker = "bulk-\(t)"
        var args = ["doc", "new", "--data", a.data, "--space", space, "--kind", "bulk", "--set", "marker=\(marker)"]
        for f in 0..<fields {
            args += ["--set", "f\(f)=\(marker) ช่อง \(f) " + String(repeating: "ข้อมูล", count: 30)]
        }
        // Kill at the m-th time the write lock is seen held (the lock is first taken to check the
        // replica id at open, then for the long write transaction).
        let target = t == 0 ? Int.max : rng.int(1...(calibration + 5))
        let probe = try WriteLockProbe(a.database)
        var seen = 0
        var lockedAtKill = false
        let child = try Child.spawn(args)
        let r = child.collect(deadline: 60, tick: 1) {
            if probe.isLocked() {
                seen += 1
                if seen >= target {
                    lockedAtKill = true
                    return true
                }
            }
            return false
        }
        probe.close()
        guard !r.timedOut else { throw TestFailure("seed \(seed): trial \(t): the bulk write hung: \(r.err)") }
        let check = try integrityCheck(a.database)
        guard check == "ok" else { throw TestFailure("seed \(seed): trial \(t): PRAGMA integrity_check: \(check)") }

        let node = try Node.open(dataDir: DataDirectory(path: a.data), logger: testLogger("saraban.crash"))
        let hits = try node.documents().filter { $0.view.registers["marker"]?.first?.value == .string(marker) }
        node.close()
        let outcome: String
        if hits.isEmpty {
            guard r.end != .exited(0) else { throw TestFailure("seed \(seed): trial \(t): acknowledged bulk write missing") }
            absent += 1
            outcome = "absent"
        } else {
            guard hits.count == 1, hits[0].view.registers.count == fields + 1 else {
                throw TestFailure(
                    "seed \(seed): trial \(t): bulk write partly present: \(hits.count) documents, "
                        + "\(hits.first?.view.registers.count ?? 0) of \(fields + 1) fields")
            }
            present += 1
            outcome = "present"
        }
        if t == 0 {
            guard r.end == .exited(0) else { throw TestFailure("seed \(seed): the calibration write ended with \(r.end): \(r.err)") }
            calibration = max(seen, 3)
        }
        if lockedAtKill { insideLock += 1 }
        if lockedAtKill && outcome == "absent" && seen >= 3 { deep += 1 }
        outcomes.append(
            "\(t): \(r.end)\(lockedAtKill ? " at lock sighting \(seen)" : " after \(seen) lock sightings") → \(outcome)")
    }
    guard deep > 0 else {
        throw TestFailure(
            "seed \(seed): in \(t) trials no kill landed inside the write transaction (\(insideLock) with the lock held, "
                + "\(absent) absent): \(outcomes)")
    }

    // A still writes, and its feed reaches B without a gap or a fork.
    let last = try crashCLI(["doc", "new", "--data", a.data, "--space", space, "--kind", "bulk", "--set", "marker=after"], seed: seed)
    try crashCLI(["sync", "--data", a.data, b.name], seed: seed)
    _ = b.terminate()
    var views: [[DocumentView]] = []
    var vectors: [FeedVector] = []
    for d in daemons {
        let check = try integrityCheck(d.database)
        guard check == "ok" else { throw TestFailure("seed \(seed): \(d.name): PRAGMA integrity_check: \(check)") }
        let node = try Node.open(dataDir: DataDirectory(path: d.data), logger: testLogger("saraban.crash"))
        defer { node.close() }
        let sid = try node.resolveSpace(space).id
        vectors.append(try node.feedVector(space: sid))
        views.append(try node.documents().filter { try node.space(ofDocument: $0.id) == sid }.map(\.view))
    }
    guard vectors[0] == vectors[1], views[0] == views[1] else {
        throw TestFailure("seed \(seed): after `saraban sync`, A and B differ")
    }
    guard views[1].contains(where: { $0.id.description == last }) else {
        throw TestFailure("seed \(seed): B lacks A's last write \(last)")
    }
    print(
        "CrashTests.killNineCLIWriterMidTransaction: seed \(seed): \(t) bulk writes (\(fields + 1) fields) after a "
            + "calibration write with \(calibration) lock sightings; \(insideLock) killed with the write lock held, "
            + "\(deep) of them past sighting 2 with the write absent; \(absent) wholly absent, \(present) wholly present; "
            + "integrity_check ok; A then wrote and synced to B (identical). \(outcomes.joined(separator: "; "))")
}

/// One writer: small `doc new`s into random nodes until `stop`; about 1 in 12 is killed with
/// SIGKILL 0–250 ms after it started (not acknowledged; it must end up wholly present or absent).
func crashWriter(
    _ w: Int, seed: UInt64, daemons: [CrashDaemon], space: String, stop: Locked<Bool>, acked: Locked<[AckedWrite]>,
    killed: Locked<[KilledWrite]>, failures: Locked<[String]>
) {
    var rng = CrashRNG(seed &+ UInt64(w + 1) &* 0x1000_0001)
    let data = daemons.map(\.data)
    var i = 0
    while !stop.current {
        i += 1
        let node = rng.int(0...(data.count - 1))
        let value = "w\(w)-\(i)"
        let pad = crashPad(&rng)
        let killAfter: Double? = rng.chance(8) ? rng.seconds(0, 0.25) : nil
        let args = [
            "doc", "new", "--data", data[node], "--space", space, "--kind", "crash", "--set", "w=\(value)", "--set", "pad=\(pad)",
        ]
        do {
            let child = try Child.spawn(args)
            let started = Date()
            let r = child.collect(deadline: 60, tick: 10) {
                killAfter.map { Date().timeIntervalSince(started) >= $0 } ?? false
            }
            if r.end == .exited(0) {
                let doc = r.out.trimmingCharacters(in: .whitespacesAndNewlines)
                acked.withLock { $0.append(AckedWrite(node: node, doc: doc, value: value, pad: pad)) }
            } else if r.killed && !r.timedOut {
                killed.withLock { $0.append(KilledWrite(node: node, value: value, pad: pad, end: r.end)) }
            } else {
                failures.withLock {
                    $0.append("write \(value) on n\(node) ended with \(r.end)\(r.timedOut ? " (timed out)" : ""): \(r.err)")
                }
            }
        } catch {
            failures.withLock { $0.append("write \(value): \(error)") }
        }
        if rng.chance(30) { usleep(UInt32(rng.int(0...60_000))) }
    }
}
