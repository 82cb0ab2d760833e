import SarabanCrypto
import SarabanFleet
import SarabanSync
import Testing

/// The load generator's simulated office: what it can send again after a relay acknowledged it.
@Suite struct FleetOfficeTests {
    /// A relay process whose summary lags the store (its watcher still catching up after an
    /// outage) asks for envelopes another process acknowledged. An office keeping them (the
    /// fault tests' offices, like a real office's database) sends them; one that dropped them
    /// has nothing to chain on, and its session with that relay waited until it timed out (45 s
    /// in `postgresStoppedAndRestartedLosesNothing`, 2 runs of 3 before the offices kept them).
    @Test(arguments: [false, true])
    func acknowledgedEnvelopesCanBeSentAgainOnlyWhenKept(keeps: Bool) async throws {
        let topology = try FleetTopology(offices: 2, spaceSize: 2, seed: 11)
        let office = topology.makeOffices(ledger: FleetLedger(), bodyBytes: 100, keepsAcknowledged: keeps)[0]
        let space = topology.space(0)
        for _ in 0..<5 { try office.write(in: space) }
        let me = office.identity.publicKey
        var held = FeedVector()
        _ = held.raise(me, to: 5)
        office.relayHolds(space: space, vector: held)  // relay A acknowledged all five
        #expect(office.unacknowledged == 0)
        var lagging = FeedVector()
        _ = lagging.raise(me, to: 2)  // relay B has seen only two of them so far
        let (envelopes, complete) = try await office.fetch(space: space, after: lagging, limit: FetchLimit(envelopes: 100, bytes: 1 << 20))
        #expect(envelopes.map(\.header.seqStart) == (keeps ? [3, 4, 5] : []))
        #expect(complete)
        // A lower acknowledgement (relay B's) does not make them unacknowledged again.
        office.relayHolds(space: space, vector: lagging)
        #expect(office.unacknowledged == 0)
    }
}
