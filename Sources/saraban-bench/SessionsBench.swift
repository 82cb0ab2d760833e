import Foundation
import SarabanCrypto
import SarabanFleet
import SarabanRelayPostgres
import SarabanSync
#if canImport(Glibc)
import Glibc
#endif

/// Options shared by `sessions` and `fleet`: how many offices, relays, which store.
struct FleetOptions {
    var offices = 2_000
    var relays = 1
    var store: String?
    var spaceSize = 2
    var seed: UInt64 = 0x5EED
    var concurrency = 100
    var rounds = 3
    var rate = 100.0
    var seconds = 30.0
    var warmup = 5.0
    var bodyBytes = 1_200
    var keep = false
    /// Carry each space for its members only (`space carry --for`), so a session's hello lists the
    /// office's own spaces; `--open` carries every space for every peer.
    var named = true
    var json = false

    init(_ args: [String]) throws {
        var i = 0
        func value() throws -> String {
            i += 1
            guard i < args.count else { throw BenchError("\(args[i - 1]) needs a value") }
            return args[i]
        }
        func number(_ name: String) throws -> Double {
            guard let n = Double(try value()), n >= 0 else { throw BenchError("\(name) needs a non-negative number") }
            return n
        }
        while i < args.count {
            switch args[i] {
            case "--offices": offices = Int(try number("--offices"))
            case "--relays": relays = max(1, Int(try number("--relays")))
            case "--store": store = try value()
            case "--space-size": spaceSize = Int(try number("--space-size"))
            case "--seed": seed = UInt64(try number("--seed"))
            case "--concurrency": concurrency = max(1, Int(try number("--concurrency")))
            case "--rounds": rounds = max(1, Int(try number("--rounds")))
            case "--rate": rate = try number("--rate")
            case "--seconds": seconds = try number("--seconds")
            case "--warmup": warmup = try number("--warmup")
            case "--body": bodyBytes = Int(try number("--body"))
            case "--keep": keep = true
            case "--open": named = false
            case "--json": json = true
            default: throw BenchError("unknown option \(args[i])")
            }
            i += 1
        }
        if store == "sqlite" { store = nil }
        if let seedText = ProcessInfo.processInfo.environment["SARABAN_SEED"], let s = UInt64(seedText) { seed = s }
    }

    var storeName: String { store == nil ? "sqlite" : "postgresql" }
}

/// Runs `body` with a fresh database on the server of `--store` (dropped after, unless `--keep`),
/// or with nil for the SQLite store.
func withFreshDatabase<T>(_ opts: FleetOptions, _ body: (PostgresLocation?) async throws -> T) async throws -> T {
    guard let url = opts.store else { return try await body(nil) }
    let server = try PostgresLocation(parsing: url)
    // The relay processes get the URL without its password, and the password this way.
    if let password = server.password { setenv("PGPASSWORD", password, 1) }
    var fresh = server
    fresh.database = "saraban_bench_\(getpid())"
    try await PostgresAdmin.dropDatabase(fresh.database, on: server)
    try await PostgresAdmin.createDatabase(fresh.database, on: server)
    do {
        let r = try await body(fresh)
        if !opts.keep { try? await PostgresAdmin.dropDatabase(fresh.database, on: server) }
        return r
    } catch {
        if !opts.keep { try? await PostgresAdmin.dropDatabase(fresh.database, on: server) }
        throw error
    }
}

/// The `saraban` executable next to this `saraban-bench`.
func sarabanExecutable() throws -> String {
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let path = (me as NSString).deletingLastPathComponent + "/saraban"
    guard FileManager.default.isExecutableFile(atPath: path) else {
        throw BenchError("no saraban executable at \(path): build it with the same configuration (swift build -c release)")
    }
    return path
}

/// Runs `body` for each of `items` with at most `width` running at once.
func forEachConcurrently<T: Sendable>(_ items: [T], width: Int, _ body: @escaping @Sendable (T) async -> Void) async {
    await withTaskGroup(of: Void.self) { group in
        var next = 0
        while next < min(width, items.count) {
            let item = items[next]
            group.addTask { await body(item) }
            next += 1
        }
        while await group.next() != nil {
            if next < items.count {
                let item = items[next]
                group.addTask { await body(item) }
                next += 1
            }
        }
    }
}

/// `saraban-bench sessions`: how many sessions with nothing to move a relay process serves.
///
/// N simulated offices (ring of pair spaces) and one `saraban serve --relay --no-dial` process.
/// Two data rounds bring every office and the relay up to date (each office pushes one letter in
/// each of its spaces, then receives its neighbours'); then `--rounds` rounds in which every
/// office runs one one-shot session (hello, summary, synced, bye) with nothing to move, at most
/// `--concurrency` at once. Reported: sessions per second of wall time and per relay CPU second
/// (the relay's user + system time over the round, from /proc), and the relay's resident memory.
func sessionsBench(_ args: [String]) async throws -> Int32 {
    let opts = try FleetOptions(args)
    return try await withFreshDatabase(opts) { location in try await sessionsRun(opts, location: location) }
}

func sessionsRun(_ opts: FleetOptions, location: PostgresLocation?) async throws -> Int32 {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("saraban-bench-sessions-\(getpid())").path
    try? FileManager.default.removeItem(atPath: root)
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { if !opts.keep { try? FileManager.default.removeItem(atPath: root) } }

    let topology = try FleetTopology(offices: opts.offices, spaceSize: opts.spaceSize, seed: opts.seed)
    let ledger = FleetLedger()
    let offices = topology.makeOffices(ledger: ledger, bodyBytes: opts.bodyBytes)
    let relays = try FleetRelays(
        saraban: try sarabanExecutable(), data: root + "/relay", store: location?.description,
        spaces: topology.spacesWithMembers, named: opts.named, offices: offices.map(\.nodeID), relays: 1)
    let relay = try relays.start(0)
    defer { relays.stopAll() }
    let counts = FleetSessionCounts()
    let dialler = FleetDialler(relayID: relays.relayID, counts: counts)
    let endpoints = offices.map { dialler.endpoint(for: $0) }
    for o in offices { for s in o.spaceIDs { try o.write(in: s) } }

    func round() async -> (seconds: Double, relayCPU: Double, synced: Int) {
        let before = counts.synced
        let cpu0 = relay.cpuSeconds()
        let t0 = now()
        await forEachConcurrently(Array(offices.indices), width: opts.concurrency) { i in
            await dialler.syncOnce(offices[i], endpoint: endpoints[i], relay: relay.address)
        }
        return (now() - t0, relay.cpuSeconds() - cpu0, counts.synced - before)
    }
    // Data rounds until everyone holds everything (a session that fails is retried next round).
    var problems = ["not synced yet"]
    var dataRounds = 0
    while !problems.isEmpty && dataRounds < 8 {
        _ = await round()
        dataRounds += 1
        problems = topology.check(offices, ledger: ledger)
    }
    guard problems.isEmpty else { throw BenchError("\(dataRounds) data rounds did not converge: \(problems.prefix(3))") }

    var perWall: [Double] = []
    var perCPU: [Double] = []
    var cpuPerSession: [Double] = []
    var failures: [Double] = []
    for _ in 0..<opts.rounds {
        let failedBefore = counts.failed
        let r = await round()
        failures.append(Double(counts.failed - failedBefore))
        perWall.append(Double(r.synced) / r.seconds)
        perCPU.append(Double(r.synced) / r.relayCPU)
        cpuPerSession.append(r.relayCPU / Double(r.synced) * 1000)
    }
    var report = BenchReport(suite: "sessions")
    report.facts["offices"] = "\(opts.offices) (each in \(opts.spaceSize) spaces of \(opts.spaceSize); \(topology.spaceCount) spaces carried)"
    report.facts["store"] = opts.storeName
    report.facts["spaces"] = opts.named ? "each carried for its members (`space carry --for`)" : "carried for every peer (`--open`)"
    report.facts["concurrency"] = "\(opts.concurrency) sessions at once"
    report.facts["data rounds"] = "\(dataRounds) until every office held every letter"
    report.facts["cores"] = "\(ProcessInfo.processInfo.activeProcessorCount) (shared by the relay and the offices)"
    report.add("idle sessions per second (wall)", perWall, unit: "sessions/s")
    report.add("idle sessions per relay CPU second", perCPU, unit: "sessions/s", note: "target ≥ 1,000 per relay core")
    report.add("relay CPU per idle session", cpuPerSession, unit: "ms")
    report.add("idle sessions that failed (handshake or session timeout)", failures, unit: "sessions")
    report.add("relay resident memory after the rounds", [relay.residentMB()], unit: "MB")
    report.print(json: opts.json)
    return 0
}
