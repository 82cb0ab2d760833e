import SarabanCore
import SarabanSim
import Testing

/// e-Saraban numbering in the simulator: offices allocate from their own books while partitioned,
/// crashed and restarted; after convergence every book is 1…n with no collision and no gap, the
/// same on every member, with every acknowledged number in place (`Simulation.checkRegisters`).
@Suite struct RegisterSimulationTests {
    /// The seeded runs allocate, also offline, and pass the register invariant (run in every seed
    /// of `thousandSeeds` and `saraban-sim --seeds N` too; here the counts are checked).
    @Test func offlineNumberingNeverCollidesOrGaps() {
        var events = 0
        var offline = 0
        var acked = 0
        let runs = SeedRunner(start: seedOverride() ?? 1, count: seedOverride() == nil ? 40 : 1).runAll()
        for r in runs {
            #expect(r.passed, "\(describe(r))")
            events += r.stats.registerEvents
            offline += r.stats.offlineRegisterEvents
        }
        for seed: UInt64 in [7, 21] {
            let sim = Simulation(SimConfig.derived(seed: seed, members: 4, steps: 300))
            let r = sim.run()
            #expect(r.passed, "\(describe(r))")
            acked += sim.ackedAllocations.count
        }
        #expect(events > 200, "the runs barely numbered anything (\(events) register events)")
        #expect(offline > 20, "too few allocations made while an office was cut off (\(offline))")
        #expect(acked > 10)
    }

    /// Mutation check: an office numbering from a stale view of its own register is caught.
    @Test func numberingFromAStaleRegisterIsCaught() {
        let failed = SeedRunner(start: 1, count: 20, plantedBug: .staleRegisterRead).run()
        #expect(!failed.isEmpty, "stale register reads went unnoticed on 20 seeds")
        let messages = failed.flatMap(\.failures).joined(separator: "\n")
        #expect(messages.contains("registers:") && messages.contains("out of sequence"))
        // The same seeds pass without the bug.
        #expect(SeedRunner(start: 1, count: 20).run().isEmpty)
    }
}
