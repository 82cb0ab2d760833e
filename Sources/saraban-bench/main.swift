// saraban-bench: release-build benchmarks. Run `swift run -c release saraban-bench SUITE [--json] [--runs N]`.
// Each suite lives in its own file and reports medians of several runs.

import Foundation
#if canImport(Glibc)
import Glibc
#endif

let args = Array(CommandLine.arguments.dropFirst())
let usage = """
    usage: saraban-bench SUITE [options]
      trace FILE [--json] [--runs N] [--peers]
                                       replay an editing trace (.json or .json.gz): sequential
                                       ({endContent, txns:[{patches}]}) or concurrent (kind "concurrent",
                                       txns with parents and agent); --peers adds Loro/Yrs from the same run
      crdt [--json] [--runs N]         register writes in memory and persisted; concurrent merges
      crypto [--json] [--runs N]       seal+sign and verify+open of 1 KiB changes in batches; Noise handshake
      sync [PART…] [--json] [--runs N] two nodes on loopback: 100k changes end to end, wire overhead, catch-up,
                                       memory; PART is e2e, transfer, ten or week (all when none)
      write [--json] [--runs N]        a local write's latency (fsynced before it returns): p50/p99 of doc set
                                       and of letter send
      sessions [--offices N] [--store URL] [--rounds N] [--concurrency N] [--json]
                                       one relay process, N simulated offices: idle sessions per second
                                       (wall and per relay CPU second) once everyone is up to date
      fleet [--offices N] [--relays R] [--store URL] [--rate N] [--seconds S] [--warmup S] [--space-size K]
            [--body BYTES] [--seed N] [--json]
                                       N simulated offices against R relay processes (SQLite, or PostgreSQL at
                                       URL): envelopes stored/s, delivery p50/p99, sessions, relay RSS, DB bytes
                                       and CPU per envelope; checks every letter reached every member once
      correspondence [--json] [--runs N]
                                       letter send to 100 offices; 1,000 dispatches received in one sync and
                                       registered
      search [--json] [--runs N]       search over 10,000 letters: FTS5 trigram index p50/p99 beside a LIKE scan
      web-seed DIR                     a node at DIR with 10,000 letters and 20,000 register lines, for
                                       Scripts/web-bench.sh (wrk against the web app)
    """

guard let suite = args.first else {
    FileHandle.standardError.write(usage + "\n")
    exit(2)
}
let rest = Array(args.dropFirst())
do {
    let code: Int32
    switch suite {
    case "trace": code = try traceBench(rest)
    case "crdt": code = try crdtBench(rest)
    case "crypto": code = try cryptoBench(rest)
    case "sync": code = try await syncBench(rest)
    case "correspondence": code = try correspondenceBench(rest)
    case "sync-rss": code = try await syncRSS(rest)
    case "write": code = try writeBench(rest)
    case "sessions": code = try await sessionsBench(rest)
    case "fleet": code = try await fleetBench(rest)
    case "search": code = try searchBench(rest)
    case "web-seed": code = try webSeed(rest)
    case "-h", "--help", "help":
        print(usage)
        code = 0
    default:
        FileHandle.standardError.write("saraban-bench: unknown suite '\(suite)'\n" + usage + "\n")
        code = 2
    }
    exit(code)
} catch {
    FileHandle.standardError.write("saraban-bench: \(error)\n")
    exit(1)
}
