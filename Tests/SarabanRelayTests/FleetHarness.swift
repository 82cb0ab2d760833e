import Foundation
import SarabanCore
import SarabanCrypto
import SarabanFleet
import SarabanRelayPostgres
import SarabanSync
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A small fleet for fault tests: simulated offices holding sessions with real `saraban serve
/// --relay` processes on one store, a writer at a steady rate, and the invariant check.
final class FleetHarness: @unchecked Sendable {
    let dir = TempDir()
    let seed: UInt64
    let topology: FleetTopology
    let ledger = FleetLedger()
    let offices: [FleetOffice]
    let relays: FleetRelays
    let counts = FleetSessionCounts()
    let location: PostgresLocation?
    private var sessions: [Task<Void, Never>] = []
    private var rng: SplitMix64

    /// `location`: a PostgreSQL database (nil: the relays share their SQLite database).
    init(offices n: Int, relays r: Int, location: PostgresLocation?, metrics: Bool = false) throws {
        seed = ProcessInfo.processInfo.environment["SARABAN_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64(UInt32.max))
        print("fleet seed \(seed) (replay with SARABAN_SEED=\(seed))")
        rng = SplitMix64(seed: seed)
        topology = try FleetTopology(offices: n, spaceSize: 2, seed: seed)
        // Kept after acknowledgement, as real offices keep them: a relay process catching up
        // after an outage may ask for envelopes another process acknowledged.
        offices = topology.makeOffices(ledger: ledger, bodyBytes: 400, keepsAcknowledged: true)
        self.location = location
        relays = try FleetRelays(
            saraban: sarabanBinary, data: dir.path + "/relay", store: location?.description,
            spaces: topology.spacesWithMembers, offices: offices.map(\.nodeID), relays: r)
        if metrics { relays.serveArguments = ["--metrics", "127.0.0.1:0"] }
        for i in 0..<r { try relays.start(i) }
    }

    /// Connects every office (office i to relay i mod R first) and waits until all are open.
    func connect() async throws {
        let dialler = FleetDialler(relayID: relays.relayID, counts: counts)
        let addresses = relays.addresses
        for (i, o) in offices.enumerated() {
            let endpoint = dialler.endpoint(for: o)
            sessions.append(Task { await dialler.stayConnected(o, endpoint: endpoint, relays: addresses, first: i % addresses.count) })
        }
        try await eventually("seed \(seed): all \(offices.count) sessions open", timeout: .seconds(60), every: .milliseconds(20)) {
            guard self.counts.open >= self.offices.count else { throw TestFailure("\(self.counts.open) open") }
            return true
        }
    }

    /// Writes `rate` letters a second for `seconds`, each by a random office in one of its spaces.
    func write(rate: Double, seconds: Double) async throws {
        let start = Date()
        var done = 0
        // Every letter the rate asks for is written, late if need be: on a loaded machine one
        // sleep of 10 ms took longer than the whole run, and the run wrote none.
        while true {
            let elapsed = min(Date().timeIntervalSince(start), seconds)
            while done < Int(rate * elapsed) {
                let o = offices[Int(rng.next() % UInt64(offices.count))]
                let spaces = o.spaceIDs
                try o.write(in: spaces[Int(rng.next() % UInt64(spaces.count))])
                done += 1
            }
            if elapsed >= seconds { break }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Waits (up to `seconds`) until every letter reached every member; returns what is still wrong.
    func drain(_ seconds: Double = 60) async throws -> [String] {
        var problems = topology.check(offices, ledger: ledger)
        let deadline = Date().addingTimeInterval(seconds)
        while !problems.isEmpty && Date() < deadline {
            try await Task.sleep(for: .milliseconds(200))
            problems = topology.check(offices, ledger: ledger)
        }
        return problems
    }

    /// `GET path` on relay `i`'s metrics endpoint: status and body.
    func http(_ i: Int, _ path: String) -> (status: Int, body: String)? {
        guard let m = relays.process(i)?.metrics else { return nil }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        // Never wait more than 5 s for an answer.
        var limit = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(m.port).bigEndian)
        addr.sin_addr.s_addr = inet_addr(m.host)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return nil }
        let request = "GET \(path) HTTP/1.1\r\nHost: \(m.host)\r\nConnection: close\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        var data = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            data += buf[0..<n]
        }
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(separator: "\r\n").first, let code = Int(line.split(separator: " ").dropFirst().first ?? "") else {
            return nil
        }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (code, body)
    }

    func stop() {
        for t in sessions { t.cancel() }
        relays.stopAll()
    }

    /// Stops everything and removes the directory (kept, with the relays' logs, when
    /// `SARABAN_TEST_KEEP` is set).
    func cleanup() {
        stop()
        if ProcessInfo.processInfo.environment["SARABAN_TEST_KEEP"] == nil { dir.cleanup() } else { print("kept \(dir.path)") }
    }
}
