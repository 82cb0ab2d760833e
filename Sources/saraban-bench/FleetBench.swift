import Foundation
import SarabanCore
import SarabanCrypto
import SarabanFleet
import SarabanRelayPostgres
import SarabanSync
#if canImport(Glibc)
import Glibc
#endif

/// `saraban-bench fleet`: N simulated offices in this process against R real relay processes.
///
/// Each office has its own Ed25519 key and spaces (a ring: space j shared by offices j…j+K−1),
/// holds one session open with relay `i mod R` (moving to the next relay when one fails), and
/// together they write `--rate` letters a second: real changes sealed into envelopes, pushed at
/// once. Relays store them (`--store postgresql://…`: a fresh database on that server, shared by
/// all relays; default: the relay's SQLite database) and push them to the other members' sessions,
/// through whichever relay each is connected to. After `--warmup` seconds the bench measures for
/// `--seconds`, then stops writing and waits for every letter to reach every member.
///
/// Reported: letters stored per second (acknowledged by a relay), office-to-office delivery latency
/// p50/p99 (written → opened by the receiving office), sessions held, relay resident memory per
/// 1,000 sessions, database bytes per envelope, CPU seconds per 1,000 envelopes of the relays, of
/// PostgreSQL and of this load generator; how late this load generator's own jobs start (its own
/// share of the delay); and whether every letter reached every member exactly once.
func fleetBench(_ args: [String]) async throws -> Int32 {
    var opts = try FleetOptions(args)
    if !args.contains("--offices") { opts.offices = 200 }
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("saraban-bench-fleet-\(getpid())").path
    try? FileManager.default.removeItem(atPath: root)
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    defer { if !opts.keep { try? FileManager.default.removeItem(atPath: root) } }

    return try await withFreshDatabase(opts) { location in try await fleetRun(opts, root: root, location: location) }
}

func fleetRun(_ opts: FleetOptions, root: String, location: PostgresLocation?) async throws -> Int32 {
    let topology = try FleetTopology(offices: opts.offices, spaceSize: opts.spaceSize, seed: opts.seed)
    let ledger = FleetLedger()
    let offices = topology.makeOffices(ledger: ledger, bodyBytes: opts.bodyBytes)
    let relays = try FleetRelays(
        saraban: try sarabanExecutable(), data: root + "/relay", store: location?.description,
        spaces: topology.spacesWithMembers, named: opts.named, offices: offices.map(\.nodeID), relays: opts.relays)
    for i in 0..<opts.relays { try relays.start(i) }
    defer { relays.stopAll() }
    let addresses = relays.addresses
    let counts = FleetSessionCounts()
    let dialler = FleetDialler(relayID: relays.relayID, counts: counts)

    // Connect every office (a few hundred at a time, as offices coming online would).
    let t0 = now()
    var sessions: [Task<Void, Never>] = []
    for (i, o) in offices.enumerated() {
        let endpoint = dialler.endpoint(for: o)
        sessions.append(Task { await dialler.stayConnected(o, endpoint: endpoint, relays: addresses, first: i % addresses.count) })
        if i % 200 == 199 { try await Task.sleep(for: .milliseconds(100)) }
    }
    while counts.open < offices.count && now() - t0 < 120 { try await Task.sleep(for: .milliseconds(100)) }
    let connectSeconds = now() - t0
    guard counts.open == offices.count else {
        throw BenchError("only \(counts.open) of \(offices.count) sessions opened in \(Int(connectSeconds)) s (failures: \(counts.failed))")
    }

    // Write at the rate: warm-up, then the measured window.
    var rng = SplitMix64(seed: opts.seed ^ 0x57_52_49_54_45)
    let memberships = offices.map(\.spaceIDs)
    func write(for seconds: Double) async throws {
        let start = now()
        var done = 0
        while true {
            let elapsed = now() - start
            if elapsed >= seconds { break }
            let due = Int(opts.rate * elapsed)
            while done < due {
                let i = Int(rng.next() % UInt64(offices.count))
                let spaces = memberships[i]
                try offices[i].write(in: spaces[Int(rng.next() % UInt64(spaces.count))])
                done += 1
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
    try await write(for: opts.warmup)

    func relayCPU() -> Double { (0..<opts.relays).compactMap { relays.process($0)?.cpuSeconds() }.reduce(0, +) }
    var postmaster: Int32?
    if let location { postmaster = await postmasterPID(location) }
    let load0 = loadAverage()
    let busy0 = machineBusySeconds()
    let pgCPU0 = postgresCPU(postmaster: postmaster)
    let cpu0 = relayCPU()
    let me0 = cpuTime()
    let written0 = ledger.written
    let unacked0 = offices.reduce(0) { $0 + $1.unacknowledged }
    ledger.resetLatencies()
    // How late this process's own jobs start (a 10 ms sleep, measured): the part of a letter's
    // delay spent waiting in the load generator's queue of jobs rather than in the relays.
    let lateness = Lateness()
    let probe = Task {
        while !Task.isCancelled {
            let t = now()
            try? await Task.sleep(for: .milliseconds(10))
            lateness.add(max(0, now() - t - 0.010))
        }
    }
    let w0 = now()
    try await write(for: opts.seconds)
    let window = now() - w0
    probe.cancel()
    let late = lateness.values
    let unacked1 = offices.reduce(0) { $0 + $1.unacknowledged }
    let stored = (ledger.written - written0) - (unacked1 - unacked0)
    let cpu = relayCPU() - cpu0
    let pgCPU = postgresCPU(postmaster: postmaster) - pgCPU0
    let busy = machineBusySeconds() - busy0
    let load1 = loadAverage()
    let mine = cpuTime() - me0
    let held = counts.open
    let rss = (0..<opts.relays).compactMap { relays.process($0)?.residentMB() }.reduce(0, +)

    // Drain: every letter to every member.
    let d0 = now()
    var problems = topology.check(offices, ledger: ledger)
    while !problems.isEmpty && now() - d0 < 60 {
        try await Task.sleep(for: .milliseconds(250))
        problems = topology.check(offices, ledger: ledger)
    }
    let drain = now() - d0
    for t in sessions { t.cancel() }

    var bytesPerEnvelope = Double.nan
    if let location {
        let store = try await PostgresRelayStore.open(location, logger: .init(label: "bench"))
        let f = try await store.envelopeFootprint()
        bytesPerEnvelope = Double(f.bytes) / Double(max(f.rows, 1))
        await store.close()
    } else {
        let db = root + "/relay/saraban.db"
        let size = ["", "-wal"].compactMap { try? FileManager.default.attributesOfItem(atPath: db + $0)[.size] as? Int }.reduce(0, +)
        bytesPerEnvelope = Double(size) / Double(max(ledger.written, 1))
    }

    var report = BenchReport(suite: "fleet")
    report.facts["store"] = opts.storeName + (location.map { " (\($0.redacted))" } ?? "")
    report.facts["fleet"] =
        "\(opts.offices) offices (each in \(opts.spaceSize) spaces of \(opts.spaceSize)), \(opts.relays) relay process(es), "
        + "\(Int(opts.rate)) letters/s offered for \(Int(opts.seconds)) s after \(Int(opts.warmup)) s warm-up, ~\(opts.bodyBytes)-byte bodies"
    report.facts["cores"] = "\(ProcessInfo.processInfo.activeProcessorCount) (shared by the database, the relays and this load generator)"
    report.facts["connect"] = String(format: "%.1f s for all sessions", connectSeconds)
    // Other work on the machine competes for the same cores: say how much there was.
    report.facts["load average"] = "\(load0) at the start of the measured window, \(load1) at its end (1, 5, 15 min)"
    report.facts["invariant"] =
        problems.isEmpty
        ? String(format: "every letter reached every member exactly once (drained in %.1f s; %d duplicate deliveries dropped)", drain, ledger.duplicates)
        : "BROKEN: \(problems.prefix(3).joined(separator: "; "))"
    report.add("envelopes stored per second", [Double(stored) / window], unit: "envelopes/s")
    report.add("office-to-office delivery p50", [ledger.latency(quantile: 0.5) * 1000], unit: "ms")
    report.add("office-to-office delivery p99", [ledger.latency(quantile: 0.99) * 1000], unit: "ms", note: "target ≤ 1,000")
    report.add("load generator's own job delay p50", [percentile(late, 0.5) * 1000], unit: "ms")
    report.add("load generator's own job delay p99", [percentile(late, 0.99) * 1000], unit: "ms")
    report.add("sessions held", [Double(held)], unit: "sessions")
    report.add("relay resident memory per 1,000 sessions", [rss / Double(max(held, 1)) * 1000], unit: "MB", note: "target ≤ 150")
    report.add("database bytes per envelope", [bytesPerEnvelope], unit: "bytes")
    report.add("relay CPU per 1,000 envelopes", [cpu / Double(max(stored, 1)) * 1000], unit: "s")
    if location != nil { report.add("PostgreSQL CPU per 1,000 envelopes", [pgCPU / Double(max(stored, 1)) * 1000], unit: "s") }
    report.add("load generator CPU per 1,000 envelopes", [mine / Double(max(stored, 1)) * 1000], unit: "s")
    report.add("relay CPU (all relays)", [cpu / window], unit: "cores")
    if location != nil { report.add("PostgreSQL CPU", [pgCPU / window], unit: "cores") }
    report.add("load generator CPU", [mine / window], unit: "cores")
    report.add("machine CPU busy (every process)", [busy / window], unit: "cores")
    report.print(json: opts.json)
    return problems.isEmpty ? 0 : 1
}

/// User + system CPU seconds of the server under test: its postmaster and every child of it (its
/// backends and background workers, with those that ended, which the postmaster has reaped), or,
/// without its postmaster's id, of every `postgres` process on this machine (another engineer's
/// cluster would count too). A process that ends while it is read is left out: before, its
/// unreadable figure made the whole sum NaN (one fleet run printed "nan s").
func postgresCPU(postmaster: Int32?) -> Double {
    guard let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return .nan }
    var total = 0.0
    for p in pids {
        guard let pid = Int32(p), let comm = try? String(contentsOfFile: "/proc/\(p)/comm", encoding: .utf8),
            comm.hasPrefix("postgres")
        else { continue }
        if let postmaster, pid != postmaster, parentPID(pid) != postmaster { continue }
        let own = FleetRelayProcess.cpuSeconds(pid: pid)
        if own.isNaN { continue }
        total += own
        if pid == postmaster { total += FleetRelayProcess.reapedChildrenCPUSeconds(pid: pid) ?? 0 }
    }
    return total
}

/// The server's postmaster: the parent of its checkpointer (which lives as long as the server).
func postmasterPID(_ location: PostgresLocation) async -> Int32? {
    guard
        let pid = try? await PostgresAdmin.integer(
            trusted: "SELECT pid::int8 FROM pg_stat_activity WHERE backend_type = 'checkpointer'", on: location),
        let checkpointer = Int32(exactly: pid)
    else { return nil }
    return parentPID(checkpointer)
}

/// Field 4 of /proc/PID/stat.
func parentPID(_ pid: Int32) -> Int32? {
    guard let fields = FleetRelayProcess.statFields(pid: pid), fields.count > 1 else { return nil }
    return Int32(fields[1])
}

/// CPU seconds every core spent busy (not idle or waiting for I/O) since boot (/proc/stat).
func machineBusySeconds() -> Double {
    guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let cpu = stat.split(separator: "\n").first else {
        return .nan
    }
    let ticks = cpu.split(separator: " ").dropFirst().compactMap { Double($0) }
    guard ticks.count >= 5 else { return .nan }
    // user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait.
    return (ticks.reduce(0, +) - ticks[3] - ticks[4]) / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// The measured lateness of the load generator's probe jobs.
private final class Lateness: @unchecked Sendable {
    private let lock = NSLock()
    private var samples: [Double] = []
    func add(_ x: Double) { lock.withLock { samples.append(x) } }
    var values: [Double] { lock.withLock { samples } }
}
