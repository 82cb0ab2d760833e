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
        let first = seedOverride() ?? 1
        let runs = SeedResults.shared.results(first...(seedOverride() == nil ? 40 : first))
        for r in runs {
            #expect(r.passed, "\(describe(r))")
            events += r.stats.registerEvents
            offline += r.stats.offlineRegisterEvents
        }
        for seed: UInt64 in [7, 21, 33] {
            let sim = Simulation(SimConfig.derived(seed: seed, members: 4, steps: 200))
            let r = sim.run()
            #expect(r.passed, "\(describe(r))")
            acked += sim.ackedAllocations.count
        }
        #expect(events > 100, "the runs barely numbered anything (\(events) register events)")
        #expect(offline > 15, "too few allocations made while an office was cut off (\(offline))")
        #expect(acked > 10)
    }

    /// Mutation check: an office numbering from a stale view of its own register is caught.
    @Test func numberingFromAStaleRegisterIsCaught() {
        let failed = SeedRunner(start: 1, count: 20, plantedBug: .staleRegisterRead).run()
        #expect(!failed.isEmpty, "stale register reads went unnoticed on 20 seeds")
        let messages = failed.flatMap(\.failures).joined(separator: "\n")
        #expect(messages.contains("registers:") && messages.contains("out of sequence"))
        // The same seeds pass without the bug.
        #expect(SeedResults.shared.results(1...20).allSatisfy { $0.passed })
    }
}
