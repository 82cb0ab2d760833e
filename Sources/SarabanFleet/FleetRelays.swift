import Foundation
import SarabanCrypto
import SarabanSync

#if canImport(Glibc)
import Glibc
#endif

/// A relay deployment for a fleet: one relay data directory (its key is shared by every relay
/// process, so offices expect one node id whichever process answers), the fleet's spaces carried,
/// every office a configured peer; and the `saraban serve --relay` processes started on it.
public final class FleetRelays: @unchecked Sendable {
    public let saraban: String
    public let data: String
    public let store: String?
    public let relayID: NodeID
    private let lock = NSLock()
    public private(set) var processes: [FleetRelayProcess?]
    /// Extra arguments for every `saraban serve` (for example `--metrics 127.0.0.1:0`).
    public var serveArguments: [String] = []

    /// Creates the relay in `data` (`saraban init --relay`), carries `spaces` (each served only to
    /// its members, `space carry --from`; with `named` false, to every peer), and lists `offices`
    /// as peers in its config.json (address unused: relays started here never dial).
    public init(
        saraban: String, data: String, store: String?, spaces: [(space: SpaceID, members: [NodeID])], named: Bool = true,
        offices: [NodeID], relays: Int
    ) throws {
        self.saraban = saraban
        self.data = data
        self.store = store
        processes = Array(repeating: nil, count: relays)
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        _ = try Self.run(saraban, ["init", "--relay", "--office", "fleet relay", "--data", data])
        let id = try Self.run(saraban, ["id", "--data", data]).trimmingCharacters(in: .whitespacesAndNewlines)
        relayID = try NodeID(parsing: id)
        let list = spaces.map { s in ([s.space.hex] + (named ? s.members.map(\.text) : [])).joined(separator: " ") }
        let file = data + "/fleet-spaces.txt"
        try (list.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        _ = try Self.run(saraban, ["space", "carry", "--from", file, "--data", data] + (store.map { ["--store", $0] } ?? []))
        try Self.setPeers(data: data, offices: offices)
    }

    /// Writes the offices into config.json's `peers` (one rewrite, not one `peer add` each) and
    /// raises the caps on pending handshakes to the number of offices.
    public static func setPeers(data: String, offices: [NodeID]) throws {
        let path = data + "/config.json"
        guard let bytes = FileManager.default.contents(atPath: path),
            var config = try JSONSerialization.jsonObject(with: bytes) as? [String: Any]
        else { throw FleetError("cannot read \(path)") }
        config["peers"] = offices.enumerated().map { i, id in
            ["node_id": id.text, "address": "127.0.0.1:1", "name": "office-\(i)"] as [String: Any]
        }
        // Every simulated office connects from this machine's one address: without these, the
        // per-address cap on pending handshakes (16 by default, Docs/TRANSPORT.md) closes all but
        // 16 of the offices connecting at once. A relay behind a NAT or a TCP load balancer needs
        // the same.
        config["max_pending_handshakes"] = max(256, offices.count)
        config["max_pending_handshakes_per_address"] = max(256, offices.count)
        let out = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try out.write(to: URL(fileURLWithPath: path))
    }

    /// Runs `saraban ARGS` to completion; returns its standard output or throws with its error.
    @discardableResult
    public static func run(_ saraban: String, _ args: [String], environment: [String: String]? = nil) throws -> String {
        // Output through files, so a child that prints much to both never stalls on a full pipe.
        let tmp = FileManager.default.temporaryDirectory.path + "/saraban-fleet-\(UUID().uuidString)"
        defer { for f in [tmp + ".out", tmp + ".err"] { try? FileManager.default.removeItem(atPath: f) } }
        let status = try ChildProcess(
            [saraban] + args, environment: environment, stdout: .file(tmp + ".out"), stderr: .file(tmp + ".err")
        ).wait()
        let o = FileManager.default.contents(atPath: tmp + ".out") ?? Data()
        let e = FileManager.default.contents(atPath: tmp + ".err") ?? Data()
        guard status == 0 else {
            throw FleetError(
                "saraban \(args.prefix(3).joined(separator: " ")) exited \(status): "
                    + String(decoding: e, as: UTF8.self))
        }
        return String(decoding: o, as: UTF8.self)
    }

    /// Starts relay process `i` (again, after a kill) and waits until it listens.
    @discardableResult
    public func start(_ i: Int, log: String? = nil) throws -> FleetRelayProcess {
        // No web app: a relay process of the fleet serves only sync (and /metrics with --metrics).
        var args = ["serve", "--relay", "--no-dial", "--no-http", "--listen", "127.0.0.1:0", "--data", data]
        if let store { args += ["--store", store] }
        args += serveArguments
        let p = try FleetRelayProcess.start(index: i, saraban: saraban, arguments: args, log: log ?? "\(data)/relay-\(i).log")
        lock.withLock { processes[i] = p }
        return p
    }

    public var addresses: [FleetAddress] { lock.withLock { processes.compactMap { $0?.address } } }

    public func process(_ i: Int) -> FleetRelayProcess? { lock.withLock { processes[i] } }

    /// Stops every relay process (SIGTERM, then SIGKILL after 5 s).
    public func stopAll() {
        for p in lock.withLock({ processes }) { p?.terminate() }
    }
}

/// One `saraban serve --relay` process.
public final class FleetRelayProcess: @unchecked Sendable {
    public let index: Int
    public let process: ChildProcess
    public let address: FleetAddress
    /// The `/metrics` address, when started with `--metrics`.
    public let metrics: FleetAddress?
    public var pid: Int32 { process.pid }

    init(index: Int, process: ChildProcess, address: FleetAddress, metrics: FleetAddress?) {
        self.index = index
        self.process = process
        self.address = address
        self.metrics = metrics
    }

    /// Starts `saraban ARGS` and waits (up to 60 s) for its `serving … on HOST:PORT` line.
    static func start(index: Int, saraban: String, arguments: [String], log: String) throws -> FleetRelayProcess {
        var env = ProcessInfo.processInfo.environment
        env["SARABAN_LOG_LEVEL"] = env["SARABAN_LOG_LEVEL"] ?? "warning"
        let p = try ChildProcess([saraban] + arguments, environment: env, stdout: .pipe, stderr: .file(log))
        let handle = p.output!
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        var address: FleetAddress?
        var metrics: FleetAddress?
        while address == nil && Date() < deadline {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            for line in text.split(separator: "\n") {
                if line.hasPrefix("metrics on "), let a = Self.address(in: String(line.dropFirst("metrics on ".count))) {
                    metrics = a
                }
                if line.hasPrefix("serving "), let on = line.range(of: " on "),
                    let a = Self.address(in: String(line[on.upperBound...]).split(separator: " ").first.map(String.init) ?? "")
                {
                    address = a
                }
            }
        }
        guard let address else {
            p.signal(SIGTERM)
            p.wait()
            let err = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw FleetError("relay \(index) did not start: \(text) \(err.suffix(2000))")
        }
        // Keep draining stdout so the relay never blocks on a full pipe.
        Thread.detachNewThread {
            while !handle.availableData.isEmpty {}
        }
        return FleetRelayProcess(index: index, process: p, address: address, metrics: metrics)
    }

    static func address(in text: String) -> FleetAddress? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
        return FleetAddress(host: String(text[..<colon]), port: port)
    }

    /// SIGKILL (no shutdown at all), then reaps the process.
    public func kill9() {
        process.signal(SIGKILL)
        process.wait()
    }

    /// SIGTERM, SIGKILL after 5 s; waits for the exit.
    public func terminate() {
        guard process.isRunning else { return }
        process.signal(SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill9() }
        process.wait()
    }

    /// User + system CPU seconds used so far (from /proc).
    public func cpuSeconds() -> Double { Self.cpuSeconds(pid: pid) }

    /// Resident memory in MB (VmRSS).
    public func residentMB() -> Double { Self.residentMB(pid: pid) }

    public static func cpuSeconds(pid: Int32) -> Double {
        // utime and stime: fields 14 and 15 (1-based in proc(5)).
        guard let f = statFields(pid: pid), f.count > 13, let u = Double(f[11]), let s = Double(f[12]) else { return .nan }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// User + system CPU seconds of the children `pid` has waited for (cutime and cstime, fields
    /// 16 and 17), or nil when the process is gone.
    public static func reapedChildrenCPUSeconds(pid: Int32) -> Double? {
        guard let f = statFields(pid: pid), f.count > 14, let u = Double(f[13]), let s = Double(f[14]) else { return nil }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The fields of /proc/PID/stat after the command (index 0 is field 3, the state), or nil
    /// when the process is gone.
    public static func statFields(pid: Int32) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else {
            return nil
        }
        return stat[stat.index(after: close)...].split(separator: " ")
    }

    public static func residentMB(pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return .nan }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (line.split(separator: " ").compactMap { Double($0) }.first ?? .nan) / 1024
        }
        return .nan
    }
}
