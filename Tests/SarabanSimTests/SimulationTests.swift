import Foundation
import SarabanCore
import SarabanSim
import Testing

/// `SARABAN_SEED` replays one seed (any test here that takes seeds runs only that one).
func seedOverride() -> UInt64? {
    guard let s = ProcessInfo.processInfo.environment["SARABAN_SEED"] else { return nil }
    return UInt64(s)
}

/// Results of the default seeds (derived configuration, no planted bug), computed once per
/// test process: several suites check the same seeds for different things.
final class SeedResults: @unchecked Sendable {
    static let shared = SeedResults()
    private let lock = NSLock()
    private var results: [UInt64: SimResult] = [:]

    func result(_ seed: UInt64) -> SimResult {
        lock.lock()
        if let r = results[seed] {
            lock.unlock()
            return r
        }
        lock.unlock()
        let r = Simulation.run(seed: seed)
        lock.lock()
        results[seed] = r
        lock.unlock()
        return r
    }

    func results(_ seeds: ClosedRange<UInt64>) -> [SimResult] { seeds.map(result) }
}

func describe(_ r: SimResult) -> String {
    "seed \(r.seed) failed: \(r.failures.prefix(3).joined(separator: " | "))\n  replay: SARABAN_SEED=\(r.seed) swift test --filter SarabanSimTests, or \(Simulation.reproduction(r))"
}

/// The CI run: 1,000 seeds of real nodes (in 20 chunks, which Swift Testing runs in parallel),
/// chaos seeds, and a few large networks.
@Suite struct SimulationTests {
    static let chunkSize = 50
    static let chunks = 20

    @Test(arguments: 0..<chunks)
    func thousandSeeds(chunk: Int) {
        if let s = seedOverride() {
            guard chunk == 0 else { return }
            let r = Simulation.run(seed: s)
            #expect(r.passed, "\(describe(r))")
            return
        }
        let start = UInt64(1 + chunk * Self.chunkSize)
        for r in SeedResults.shared.results(start...(start + UInt64(Self.chunkSize) - 1)) where !r.passed {
            Issue.record("\(describe(r))")
        }
    }

    /// Every fault at once and often: raw stream faults up to 10 %, crashes in the middle of
    /// receive batches and writes (`saraban-sim --chaos`).
    @Test(arguments: 0..<4)
    func chaosSeeds(chunk: Int) {
        guard seedOverride() == nil else { return }
        var runner = SeedRunner(start: 50_001 + UInt64(chunk * 25), count: 25)
        runner.chaos = true
        for r in runner.run() { Issue.record("\(describe(r)) --chaos") }
    }

    /// A handful of larger networks: 6–10 offices, longer runs.
    @Test(arguments: [(UInt64(900_001), 6), (900_002, 8), (900_003, 10)])
    func largeNetworks(seed: UInt64, members: Int) {
        guard seedOverride() == nil else { return }
        let r = Simulation.run(seed: seed, members: members, steps: 200)
        #expect(r.passed, "\(describe(r)) --steps 200")
        // A floor that says the run wrote something worth checking (how much moves with the draws).
        #expect(r.stats.changesAcknowledged > 10)
    }

    /// A seed names a run: replaying it gives the same event sequence and statistics.
    @Test func replayIsDeterministic() {
        for seed: UInt64 in [3, 4, 8, 42] {
            let a = SeedResults.shared.result(seed)
            let b = Simulation.run(seed: seed)
            #expect(a.traceDigest == b.traceDigest, "seed \(seed): trace digests differ")
            #expect(a.stats == b.stats, "seed \(seed): statistics differ")
            #expect(a.failures == b.failures)
        }
        let c = Simulation.run(seed: 9, chaos: true)
        #expect(c.traceDigest == Simulation.run(seed: 9, chaos: true).traceDigest, "a chaos seed does not replay")
        #expect(SeedResults.shared.result(3).traceDigest != SeedResults.shared.result(4).traceDigest)
    }

    /// The runs really exercise the faults and the churn they claim to (otherwise passing means little).
    @Test func faultsAreExercised() {
        var total = SimStats()
        var runs = SeedResults.shared.results(1...60)
        var chaos = SeedRunner(start: 50_001, count: 10)
        chaos.chaos = true
        runs += chaos.runAll()
        for r in runs {
            total.crashes += r.stats.crashes
            total.midTransactionCrashes += r.stats.midTransactionCrashes
            total.integrityChecks += r.stats.integrityChecks
            total.partitions += r.stats.partitions
            total.clogs += r.stats.clogs
            total.framesDropped += r.stats.framesDropped
            total.framesDuplicated += r.stats.framesDuplicated
            total.framesCorrupted += r.stats.framesCorrupted
            total.framesReordered += r.stats.framesReordered
            total.timeouts += r.stats.timeouts
            total.violations += r.stats.violations
            total.changesAcknowledged += r.stats.changesAcknowledged
            total.adds += r.stats.adds
            total.removals += r.stats.removals
            total.roleChanges += r.stats.roleChanges
            total.epochs += r.stats.epochs
            total.intruderEnvelopes += r.stats.intruderEnvelopes
            total.held += r.stats.held
            total.rogueRefusedLocally += r.stats.rogueRefusedLocally
            total.rogueChanges += r.stats.rogueChanges
            total.powerLosses += r.stats.powerLosses
            total.headChecks += r.stats.headChecks
        }
        #expect(total.headChecks > 100, "sessions whose head digests differed compared the tags with the real stores")
        #expect(total.crashes > 20)
        #expect(total.midTransactionCrashes > 10, "crashes inside receive batches and writes")
        #expect(total.integrityChecks >= total.crashes - total.midTransactionCrashes / 2)
        #expect(total.partitions > 20)
        #expect(total.clogs > 20)
        #expect(total.framesDropped > 0 && total.framesDuplicated > 0 && total.framesCorrupted > 0 && total.framesReordered > 0)
        #expect(total.timeouts > 0)
        #expect(total.violations > 0, "corrupted streams must be refused by the sessions")
        #expect(total.changesAcknowledged > 500)
        #expect(total.adds > 3 && total.removals > 10 && total.roleChanges > 10, "churn: \(total)")
        #expect(total.epochs > 10)
        #expect(total.intruderEnvelopes > 5)
        #expect(total.held > 0, "envelopes held until their authors are admitted")
        #expect(total.powerLosses > 5, "power losses: \(total.powerLosses)")
        #expect(total.rogueRefusedLocally > 5 && total.rogueChanges > 5, "rogue members: \(total)")
    }

    /// The relay's plaintext check finds a marker when there is one (and only then).
    @Test func plaintextDetectorBites() {
        #expect(Simulation.containsPlaintext(Array("xx\(Workload.marker)yy".utf8)))
        #expect(Simulation.containsPlaintext(Array("หนังสือ\(Workload.thaiMarker)".utf8)))
        #expect(!Simulation.containsPlaintext(Array("SRBPLAI".utf8)))
        #expect(!Simulation.containsPlaintext([]))
    }
}

/// Mutation check: bugs planted on purpose must make the invariant checker fail on some seed.
/// Three are planted in the real receive path (`StoreTestHooks`), two in the simulated clients.
@Suite struct MutationTests {
    /// The first failing seed from 1, or nil if none of `limit` seeds fails.
    func firstFailure(_ bug: PlantedBug, within limit: Int) -> SimResult? {
        for seed in 1...UInt64(limit) {
            var c = SimConfig.derived(seed: seed)
            c.plantedBug = bug
            let r = Simulation(c).run()
            if !r.passed { return r }
        }
        return nil
    }

    @Test func storingAHeadWithoutItsChangesIsCaught() {
        let failed = SeedRunner(start: 1, count: 10, plantedBug: .headWithoutChanges).run()
        #expect(failed.count >= 8, "a node storing envelopes without applying their changes went unnoticed")
        let messages = failed.flatMap(\.failures).joined(separator: "\n")
        #expect(messages.contains("applied") || messages.contains("differ") || messages.contains("missing"))
    }

    @Test func admittingAnyoneIsCaughtWithin100Seeds() throws {
        let r = try #require(firstFailure(.admitAnyone, within: 100), "a store admitting every author went unnoticed on 100 seeds")
        #expect(r.failures.joined().contains("never admitted"), "\(r.failures)")
    }

    @Test func acknowledgingBeforeCommitIsCaught() {
        let failed = SeedRunner(start: 1, count: 20, plantedBug: .ackBeforeCommit).run()
        #expect(!failed.isEmpty, "acknowledging writes before committing them went unnoticed on 20 seeds")
        let messages = failed.flatMap(\.failures).joined(separator: "\n")
        #expect(messages.contains("lost by its author") || messages.contains("not in the register"))
    }

    /// The peers of the simulation send each session in their store order, which is causal, so
    /// a change almost never arrives before another author's change it depends on: this one is
    /// shown on a clean network, a change delivered before its dependency.
    @Test func applyingBeforeDependenciesIsCaught() {
        for bug in [nil, PlantedBug.applyBeforeDependencies] {
            var c = SimConfig(seed: 7, members: 3, steps: 0, spaces: 1, directLinkPercent: 100, faults: .none)
            c.everyoneJoins = true
            c.plantedBug = bug
            let sim = Simulation(c)
            let made = sim.write(at: 0)
            let fromA = sim.envelopes(at: 0).filter { $0.header.author == sim.identity(0).publicKey }
            _ = sim.deliver(fromA, to: 1)
            let edit = sim.edit(at: 1, document: made[0].documents.first!)
            let fromB = sim.envelopes(at: 1).filter { $0.header.author == sim.identity(1).publicKey && $0.header.seqEnd >= edit.seq }
            _ = sim.deliver(fromB + fromA, to: 2)
            let failures = sim.settle()
            if bug == nil {
                #expect(failures.isEmpty, "\(failures)")
                #expect(sim.everywhere(edit))
            } else {
                #expect(sim.plantedBugFired > 0)
                #expect(failures.contains { $0.contains("differ") }, "\(failures)")
            }
        }
    }

    /// The same seeds pass without the planted bugs, so it is the bugs the checker caught.
    @Test func theSameSeedsPassWithoutTheBug() {
        #expect(SeedResults.shared.results(1...20).allSatisfy { $0.passed })
    }
}

/// The replay line a failure prints must rebuild the same run.
@Suite struct ReproductionTests {
    @Test func replayLineRebuildsTheSameConfiguration() {
        for seed: UInt64 in [1, 2, 3, 99, 12345] {
            let drawn = SimConfig.derived(seed: seed)
            let replayed = SimConfig.derived(seed: seed, members: drawn.members)
            #expect(replayed.steps == drawn.steps && replayed.spaces == drawn.spaces && replayed.faults == drawn.faults
                && replayed.limits == drawn.limits && replayed.perNodeLimits == drawn.perNodeLimits
                && replayed.directLinkPercent == drawn.directLinkPercent && replayed.admins == drawn.admins, "seed \(seed)")
            let a = SeedResults.shared.result(seed)
            let b = Simulation.run(seed: seed, members: a.members)
            #expect(a.traceDigest == b.traceDigest, "seed \(seed): the replay line does not replay")
        }
        let r = SimResult(seed: 77, members: 4, failures: ["x"], traceDigest: 0, stats: SimStats())
        #expect(Simulation.reproduction(r) == "saraban-sim --seeds 1 --start 77 --nodes 4")
    }
}
