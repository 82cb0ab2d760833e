import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage
import SarabanSync

/// Hooks for the bad-input catalogue: a clean network of real nodes and a relay, where a test
/// feeds hostile bytes to one node and then checks that a good change still syncs everywhere.
extension Simulation {
    /// A network without faults: `members` offices, all in one space, fully linked, plus the relay.
    public static func clean(members: Int = 2, seed: UInt64 = 7) -> Simulation {
        var c = SimConfig(seed: seed, members: members, steps: 0, spaces: 1, directLinkPercent: 100, faults: .none)
        c.everyoneJoins = true
        let sim = Simulation(c)
        sim.healing = true
        return sim
    }

    public var space: SpaceID { spaceIDs[0] }

    /// The epoch and key node `node` seals new envelopes of the space with.
    public func sealing(at node: Int) -> (epoch: UInt32, key: SymmetricKey) {
        let k = try! nodes[node].live.store.sealingKey(space)!
        return (k.epoch, k.key)
    }

    /// A client write on member `node`: returns the changes acknowledged (committed, sealed, announced).
    @discardableResult
    public func write(at node: Int, changes count: Int = 1) -> [Change] {
        let n = nodes[node]
        let time = clock.wallMillis
        var created: [DocID] = []
        let made = try! n.live.store.write(space: space, signer: n.keys) { w in
            for _ in 0..<count {
                _ = try w.change(time: time) { tx, st in
                    let d = try tx.createDocument(kind: "หนังสือรับ", in: &st)
                    try tx.set(d, field: "เรื่อง", value: .string("\(Workload.marker) ตรวจสอบ \(now)"), in: &st)
                    created.append(d)
                }
            }
        }.changes
        workloadDocs[space, default: []] += created
        acknowledge(made, in: space, by: n)
        announce(node)
        return made
    }

    /// A client on member `node` sets a field of `document` (which it must hold): returns the change.
    @discardableResult
    public func edit(at node: Int, document: DocID) -> Change {
        let n = nodes[node]
        let change = try! n.live.store.change(space: space, signer: n.keys, time: clock.wallMillis) { tx, st in
            try tx.set(document, field: "เรียน", value: .string("\(Workload.marker) ผู้ว่าราชการจังหวัด"), in: &st)
        }.change!
        acknowledge([change], in: space, by: n)
        announce(node)
        return change
    }

    /// Connects every link, runs to quiescence and checks every invariant; returns the failures.
    public func settle() -> [String] {
        failures = []
        stats.healSteps = 0
        for n in nodes { n.refused = n.refused.filter { !isBad($0.key) } }
        heal()
        if failures.isEmpty { checkFinal() }
        return failures
    }

    /// Whether `change` is applied on every member.
    public func everywhere(_ change: Change) -> Bool {
        nodes.filter(\.isMember).allSatisfy { n in (try? n.live.store.clock(space: space).includes(change.id)) ?? false }
    }

    /// Hands envelopes to node `node` as a session's delivery would (the real receive path);
    /// returns what became of them: refusal codes, `held`, `duplicate`, or `accepted`.
    public func deliver(_ envelopes: [Envelope], to node: Int, space: SpaceID? = nil) -> [String] {
        let n = nodes[node]
        guard let report = try? n.live.receiveEnvelopes(space: space ?? self.space, envelopes) else { return ["failed"] }
        announce(node)
        var out = report.refused.map { "EnvelopeError.\($0.error.code.rawValue)" }
        if !report.held.isEmpty { out.append("held") }
        if !report.duplicates.isEmpty { out.append("duplicate") }
        if !report.accepted.isEmpty { out.append("accepted") }
        return out
    }

    /// The node's signing identity (to forge or fork with in tests) and its envelopes.
    public func identity(_ node: Int) -> SigningKeyPair { nodes[node].keys }
    public func envelopes(at node: Int) -> [Envelope] {
        (try? nodes[node].live.envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: .max, bytes: .max)).envelopes) ?? []
    }
    public func nodeCount() -> Int { nodes.count }

    /// A core replica rebuilt from node `node`'s change log of the space (for the catalogue's
    /// entries about the core: decoding, causal readiness, local edits).
    public func replica(at node: Int) -> Replica? {
        guard let changes = try? nodes[node].live.store.changes(space: space) else { return nil }
        var r = Replica(id: nodes[node].replica)
        for c in changes { _ = try? r.receive(c) }
        return r
    }

    /// Opens a session on node `node` with a hostile peer (identity of `peer`), feeds it `chunks`
    /// as the peer's byte stream and returns why the node's session closed (nil if still open).
    public func hostile(to node: Int, from peer: Int, _ chunks: [[UInt8]], helloFirst: Bool = true) -> CloseReason? {
        guard let spaces = sessionSpaces(node, with: peer) else { return nil }
        var s = SyncSession(
            configuration: SyncConfiguration(role: nodes[node].role, spaces: spaces, limits: nodeLimits[node]),
            peer: nodes[peer].publicKey)
        _ = s.start(now: instant)
        if helloFirst {
            _ = s.receive(SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [space])).framed(), now: instant)
        }
        for c in chunks {
            for a in s.receive(c, now: instant) {
                if case .deliver(let sp, let envs, _) = a { _ = deliver(envs, to: node, space: sp) }
            }
            if s.isClosed { break }
        }
        return s.closeReason
    }
}
