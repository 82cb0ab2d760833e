import SarabanCore
import SarabanSim
import Testing

/// e-Saraban correspondence in the simulator (issue 14): dispatch → inbox → receive or return →
/// receipt between offices under partitions, crashes and membership changes; after healing
/// `Simulation.checkCorrespondence` holds (every seed of `thousandSeeds` checks it too).
@Suite struct CorrespondenceSimulationTests {
    /// The seeded runs send, receive, return, receive again and tamper, and pass; here the counts
    /// are checked so the invariant is not vacuous.
    @Test func dispatchesAreReceivedOnceAndTheirReceiptsReachTheSender() {
        let first = seedOverride() ?? 1
        var s = SimStats()
        for r in SeedResults.shared.results(first...(seedOverride() == nil ? 40 : first)) {
            #expect(r.passed, "\(describe(r))")
            s.dispatches += r.stats.dispatches
            s.receives += r.stats.receives
            s.returns += r.stats.returns
            s.receivesRepeated += r.stats.receivesRepeated
            s.tamperRefused += r.stats.tamperRefused
        }
        guard seedOverride() == nil else { return }
        #expect(s.dispatches > 20, "too few dispatches (\(s.dispatches))")
        #expect(s.receives > 10 && s.returns > 0, "receives \(s.receives), returns \(s.returns)")
        #expect(s.receivesRepeated > 0 && s.tamperRefused > 0, "again \(s.receivesRepeated), tamper \(s.tamperRefused)")
    }

    /// Mutation check: a receive that does not look for the office's record writes a second
    /// record and เลขรับ for a dispatch received again; the checker catches it.
    @Test func receivingTwiceIsCaught() {
        let failed = SeedRunner(start: 1, count: 20, plantedBug: .receiveTwice).run()
        #expect(!failed.isEmpty, "receiving twice went unnoticed on 20 seeds")
        let messages = failed.flatMap(\.failures).joined(separator: "\n")
        #expect(messages.contains("correspondence:") && messages.contains("received 2 times"), "\(messages.prefix(500))")
        #expect(SeedResults.shared.results(1...20).allSatisfy { $0.passed })
    }
}
