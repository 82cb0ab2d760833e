import Foundation
import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

/// Random interleavings of frame delivery (split at random byte boundaries), store work, local
/// writes, cuts, reconnections and clock ticks; then every link heals and every node must converge.
///
/// Failures print the seed; rerun one with `SARABAN_SEED=<seed> swift test --filter SarabanSyncTests.RandomizedSyncTests`.
@Suite struct RandomizedSyncTests {
    static let seeds: [UInt64] = {
        if let s = testSeedOverride() { return [s] }
        return Array(1...40)
    }()

    @Test(arguments: seeds)
    func randomInterleavingsConverge(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15)
        let spaces = [space(1), space(2)]
        let keys = spaces.map { _ in SymmetricKey.generate() }
        let nodeCount = 3 + Int(rng.next() % 2)
        var nodes: [TestNode] = []
        for i in 0..<nodeCount {
            let relay = i == nodeCount - 1 && rng.next() % 2 == 0
            let n = TestNode("N\(i)", index: UInt64(i + 1), role: relay ? .relay : .member)
            for (s, k) in zip(spaces, keys) where relay || i == 0 || rng.next() % 4 != 0 { n.join(s, key: k) }
            nodes.append(n)
        }
        let members = nodes.indices.filter { nodes[$0].role == .member }
        let limits = SyncLimits(
            batchEnvelopes: 1 + Int(rng.next() % 6), batchBytes: rng.next() % 3 == 0 ? 1500 : 1 << 20,
            window: 1 + Int(rng.next() % 3), pingInterval: .seconds(5), timeout: .seconds(15))
        let net = Network(nodes, limits: limits, deferWork: true, seed: seed)
        net.notifyOrigin = rng.next() % 2 == 0
        // Some history before anyone connects.
        for m in members {
            for s in spaces where nodes[m].spaces[s] != nil { net.write(m, s, envelopes: Int(rng.next() % 8)) }
        }
        func live(_ a: Int, _ b: Int) -> Bool {
            net.connections.contains { !$0.isDead && Set([$0.nodes.0, $0.nodes.1]) == Set([a, b]) }
        }
        for _ in 0..<600 {
            let r = rng.next() % 100
            switch r {
            case 0..<62:
                net.step()
            case 62..<74:
                let m = members[Int(rng.next() % UInt64(members.count))]
                let carried = spaces.filter { nodes[m].spaces[$0] != nil }
                guard !carried.isEmpty else { continue }
                let s = carried[Int(rng.next() % UInt64(carried.count))]
                net.write(m, s, envelopes: 1 + Int(rng.next() % 3), changesPerEnvelope: 1 + Int(rng.next() % 2))
            case 74..<86:
                let a = Int(rng.next() % UInt64(nodeCount))
                let b = Int(rng.next() % UInt64(nodeCount))
                if a != b && !live(a, b) { net.connect(a, b) }
            case 86..<92:
                let alive = net.connections.filter { !$0.isDead }
                if !alive.isEmpty { net.cut(alive[Int(rng.next() % UInt64(alive.count))]) }
            default:
                net.now = net.now + .milliseconds(Int64(rng.next() % 4000))
                for (ci, c) in net.connections.enumerated() {
                    for side in 0..<2 where !c.closed[side] { net.perform(c.sessions[side].tick(now: net.now), ci, side) }
                }
            }
        }
        // Heal: every pair connected, run to quiescence.
        for a in 0..<nodeCount {
            for b in (a + 1)..<nodeCount where !live(a, b) { net.connect(a, b) }
        }
        let steps = net.run()
        if ProcessInfo.processInfo.environment["SARABAN_VERBOSE"] != nil {
            let sent = nodes.indices.reduce(0) { $0 + net.envelopesSent(by: $1) }
            let held = nodes.reduce(0) { acc, n in acc + n.spaces.values.reduce(0) { $0 + $1.log.count } }
            let dups = net.connections.reduce(0) { $0 + $1.sessions[0].stats.duplicatesIgnored + $1.sessions[1].stats.duplicatesIgnored }
            let replays = nodes.reduce(0) { acc, n in acc + n.spaces.values.reduce(0) { $0 + $1.replays } }
            print("seed \(seed): \(nodeCount) nodes, \(net.connections.count) connections, \(net.timeouts) timeouts, envelopes held \(held), sent \(sent), duplicates ignored \(dups), replays \(replays), final steps \(steps)")
        }
        #expect(steps < 1_000_000, "seed \(seed): did not quiesce")
        #expect(net.violations.isEmpty, "seed \(seed): \(net.violations)")
        for s in spaces {
            #expect(converged(nodes, s), "seed \(seed): space \(s) diverged: \(nodes.compactMap { $0.spaces[s]?.vector })")
        }
        for n in nodes {
            for (s, ns) in n.spaces {
                #expect(ns.refused.isEmpty, "seed \(seed): \(n.name) refused \(ns.refused) in \(s)")
                if let r = ns.replica { #expect(r.buffer.isEmpty, "seed \(seed): \(n.name) has changes waiting for their causal past") }
            }
        }
        for c in net.connections where !c.isDead {
            #expect(c.sessions[0].isSettled && c.sessions[1].isSettled, "seed \(seed): a live session is not settled")
        }
    }
}

func testSeedOverride() -> UInt64? {
    guard let s = ProcessInfo.processInfo.environment["SARABAN_SEED"] else { return nil }
    return UInt64(s)
}
