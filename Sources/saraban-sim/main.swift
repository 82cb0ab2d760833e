// saraban-sim: runs the deterministic simulator over a range of seeds.
//
//   saraban-sim --seeds N [--start S] [--nodes K] [--steps M] [--verbose] [--plant BUG]
//
// Ends with the line `N passed, F failed`; each failure prints the command that replays it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SarabanSim

// Swift seeds its hash function per process; dictionary order must not differ between a run and
// its replay, so re-run this process once with deterministic hashing.
if getenv("SWIFT_DETERMINISTIC_HASHING") == nil {
    setenv("SWIFT_DETERMINISTIC_HASHING", "1", 1)
    let args = CommandLine.arguments
    var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
    cargs.append(nil)
    execv("/proc/self/exe", &cargs)
    // If exec fails (no /proc), carry on: only cross-process dictionary order is affected.
}

func usage() -> Never {
    print("""
        usage: saraban-sim --seeds N [--start S] [--nodes K] [--steps M] [--verbose] [--chaos] [--no-power-loss] [--no-renew] [--trace] [--plant \(PlantedBug.allCases.map(\.rawValue).joined(separator: "|"))]
          --seeds N    how many seeds to run (default 100)
          --start S    first seed (default 1)
          --nodes K    member offices per run, 3 to 10 (default: drawn from the seed, 3 or 4); a relay comes on top
          --steps M    steps of the faulty phase (default: drawn from the seed, 60 to 99)
          --verbose    one line per seed with its statistics
          --plant BUG  plant a known bug (the checker must catch it)
          --chaos      every fault at once and often (raw stream faults up to 10 %, frequent crashes)
          --no-power-loss  crashes only, no power loss (by default 30 % of crashes rewind the files to their last fsync)
          --no-renew   keep sessions open when a node's spaces or roster change (as the daemon does)
          --trace      one line per event on stderr
        """)
    exit(2)
}

var seeds = 100
var start: UInt64 = 1
var members: Int?
var steps: Int?
var verbose = false
var plant: PlantedBug?
var chaos = false
var powerLoss = true
var trace = false
var renew = true
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    func value() -> String {
        guard let v = args.popFirst() else { usage() }
        return v
    }
    switch a {
    case "--seeds": guard let v = Int(value()), v >= 0 else { usage() }; seeds = v
    case "--start": guard let v = UInt64(value()) else { usage() }; start = v
    case "--nodes": guard let v = Int(value()), (1...10).contains(v) else { usage() }; members = v
    case "--steps": guard let v = Int(value()), v >= 0 else { usage() }; steps = v
    case "--verbose", "-v": verbose = true
    case "--chaos": chaos = true
    case "--no-power-loss": powerLoss = false
    case "--trace": trace = true
    case "--no-renew": renew = false
    case "--plant": guard let v = PlantedBug(rawValue: value()) else { usage() }; plant = v
    case "--help", "-h": usage()
    case "--write-fuzz-corpus":
        // Writes the fuzzers' seed corpora: DIR/TARGET/NN.bin.
        let dir = value()
        for (target, files) in FuzzCorpus.make().sorted(by: { $0.key < $1.key }) {
            mkdir(dir, 0o755)
            mkdir("\(dir)/\(target)", 0o755)
            for (i, bytes) in files.enumerated() {
                let path = "\(dir)/\(target)/seed-\(i < 10 ? "0" : "")\(i).bin"
                guard let f = fopen(path, "wb") else { print("cannot write \(path)"); exit(1) }
                _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, f) }
                fclose(f)
            }
            print("\(target): \(files.count) files")
        }
        exit(0)
    default: print("unknown argument \(a)"); usage()
    }
}

var ts = timespec()
clock_gettime(CLOCK_MONOTONIC, &ts)
let t0 = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
var passed = 0
var failed = 0
var runner = SeedRunner(start: start, count: seeds, members: members, steps: steps, plantedBug: plant)
runner.chaos = chaos
runner.powerLoss = powerLoss
runner.trace = trace
runner.renewSessions = renew
runner.run { r in
    if r.passed {
        passed += 1
    } else {
        failed += 1
        print("FAIL seed \(r.seed): \(r.failures.first ?? "")")
        for f in r.failures.dropFirst().prefix(4) { print("     \(f)") }
        print("  replay: \(Simulation.reproduction(r, steps: steps))\(plant.map { " --plant \($0.rawValue)" } ?? "")\(chaos ? " --chaos" : "")\(powerLoss ? "" : " --no-power-loss")\(renew ? "" : " --no-renew")")
        fflush(nil)
    }
    if verbose {
        let s = r.stats
        print(
            "seed \(r.seed): \(r.passed ? "ok" : "FAILED") members \(r.members) steps \(s.steps)+\(s.healSteps) virtual \(s.virtualMilliseconds / 1000)s "
                + "writes \(s.writes) acked \(s.changesAcknowledged) conns \(s.connections) frames \(s.framesSent)/\(s.framesDelivered) "
                + "drop \(s.framesDropped) dup \(s.framesDuplicated) corrupt \(s.framesCorrupted) reorder \(s.framesReordered) "
                + "registerEvents \(s.registerEvents) (offline \(s.offlineRegisterEvents)) crashes \(s.crashes) (mid-transaction \(s.midTransactionCrashes), power \(s.powerLosses)) integrity \(s.integrityChecks) "
                + "partitions \(s.partitions) clogs \(s.clogs) timeouts \(s.timeouts) headChecks \(s.headChecks) violations \(s.violations) refusals \(s.refusals) held \(s.held) "
                + "adds \(s.adds) removals \(s.removals) roles \(s.roleChanges) epochs \(s.epochs) (concurrent \(s.concurrentRekeys)) intruder \(s.intruderEnvelopes) rogue \(s.rogueRefusedLocally)/\(s.rogueChanges) dispatches \(s.dispatches) receives \(s.receives) (again \(s.receivesRepeated)) returns \(s.returns) tamper refused \(s.tamperRefused) renewals \(s.renewals) planted \(s.plantedBugFired) "
                + "digest \(String(r.traceDigest, radix: 16))"
        )
    }
}
clock_gettime(CLOCK_MONOTONIC, &ts)
let elapsed = Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 - t0
print("seeds \(start)…\(start &+ UInt64(max(seeds, 1) - 1)) in \(Int(elapsed * 1000)) ms")
print("\(passed) passed, \(failed) failed")
exit(failed == 0 ? 0 : 1)
