import Foundation
import SarabanCore
import SarabanSim
import Testing

/// `SARABAN_SEED` replays one seed (any test here that takes seeds runs only that one).
func seedOverride() -> UInt64? {
    guard let s = ProcessInfo.processInfo.environment["SARABAN_SEED"] else { return nil }
    return UInt64(s)
}

func describe(_ r: SimResult) -> String {
    "seed \(r.seed) failed: \(r.failures.prefix(3).joined(separator: " | "))\n  replay: SARABAN_SEED=\(r.seed) swift test --filter SarabanSimTests, or \(Simulation.reproduction(r))"
}

/// The CI run: 1,000 small seeds (in 20 chunks, which Swift Testing runs in parallel) and a few large ones.
@Suite struct SimulationTests {
    static let chunkSize = 50
    static let chunks = 20
    /// Steps of the faulty phase for the 1,000 CI seeds (the CLI's default draws 150–249).
    static let ciSteps = 120

    @Test(arguments: 0..<chunks)
    func thousandSeeds(chunk: Int) {
        if let s = seedOverride() {
            guard chunk == 0 else { return }
            let r = Simulation.run(seed: s)
            #expect(r.passed, "\(describe(r))")
            return
        }
        let start = UInt64(1 + chunk * Self.chunkSize)
        let failed = SeedRunner(start: start, count: Self.chunkSize, steps: Self.ciSteps).run()
        for r in failed { Issue.record("\(describe(r)) --steps \(Self.ciSteps)") }
    }

    /// A handful of larger networks: 6–10 offices, longer runs.
    @Test(arguments: [(UInt64(900_001), 6), (900_002, 8), (900_003, 10), (900_004, 10)])
    func largeNetworks(seed: UInt64, members: Int) {
        guard seedOverride() == nil else { return }
        let r = Simulation.run(seed: seed, members: members, steps: 500)
        #expect(r.passed, "\(describe(r)) --steps 500")
        #expect(r.stats.changesAcknowledged > 20)
    }

    /// A seed names a run: replaying it gives the same event sequence and statistics.
    @Test func replayIsDeterministic() {
        for seed: UInt64 in [3, 4, 8, 42] {
            let a = Simulation.run(seed: seed)
            let b = Simulation.run(seed: seed)
            #expect(a.traceDigest == b.traceDigest, "seed \(seed): trace digests differ")
            #expect(a.stats == b.stats, "seed \(seed): statistics differ")
            #expect(a.failures == b.failures)
        }
        #expect(Simulation.run(seed: 3).traceDigest != Simulation.run(seed: 4).traceDigest)
    }

    /// The runs really exercise the faults they claim to (otherwise passing means little).
    @Test func faultsAreExercised() {
        var total = SimStats()
        for r in SeedRunner(start: 1, count: 60).runAll() {
            total.crashes += r.stats.crashes
            total.partitions += r.stats.partitions
            total.clogs += r.stats.clogs
            total.framesDropped += r.stats.framesDropped
            total.framesDuplicated += r.stats.framesDuplicated
            total.framesCorrupted += r.stats.framesCorrupted
            total.framesReordered += r.stats.framesReordered
            total.timeouts += r.stats.timeouts
            total.violations += r.stats.violations
            total.changesAcknowledged += r.stats.changesAcknowledged
        }
        #expect(total.crashes > 20)
        #expect(total.partitions > 20)
        #expect(total.clogs > 20)
        #expect(total.framesDropped > 0 && total.framesDuplicated > 0 && total.framesCorrupted > 0 && total.framesReordered > 0)
        #expect(total.timeouts > 0)
        #expect(total.violations > 0, "corrupted streams must be refused by the sessions")
        #expect(total.changesAcknowledged > 1_000)
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
@Suite struct MutationTests {
    @Test func silentlyDroppingEvery7thDeliveryIsCaught() {
        let failed = SeedRunner(start: 1, count: 10, steps: 150, plantedBug: .headWithoutChanges).run()
        #expect(!failed.isEmpty, "a node dropping every 7th envelope went unnoticed on 10 seeds")
        let messages = failed.flatMap(\.failures).joined(separator: "\n")
        #expect(messages.contains("missing") || messages.contains("differ") || messages.contains("clock"))
    }

    @Test func acknowledgingBeforeCommitIsCaught() {
        let failed = SeedRunner(start: 1, count: 30, plantedBug: .ackBeforeCommit).run()
        #expect(!failed.isEmpty, "acknowledging writes before committing them went unnoticed on 30 seeds")
        let messages = failed.flatMap(\.failures).joined(separator: "\n")
        #expect(messages.contains("lost by its author") || messages.contains("fork"))
    }

    /// The same seeds pass without the planted bug, so it is the bug that the checker caught.
    @Test func theSameSeedsPassWithoutTheBug() {
        #expect(SeedRunner(start: 1, count: 10, steps: 150).run().isEmpty)
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
                && replayed.directLinkPercent == drawn.directLinkPercent, "seed \(seed)")
            let a = Simulation.run(seed: seed)
            let b = Simulation.run(seed: seed, members: a.members)
            #expect(a.traceDigest == b.traceDigest, "seed \(seed): the replay line does not replay")
        }
        let r = SimResult(seed: 77, members: 4, failures: ["x"], traceDigest: 0, stats: SimStats())
        #expect(Simulation.reproduction(r) == "saraban-sim --seeds 1 --start 77 --nodes 4")
    }
}
