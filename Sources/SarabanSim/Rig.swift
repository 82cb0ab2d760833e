import SarabanCore
import SarabanCrypto
import SarabanSync

/// Hooks for the bad-input catalogue: a clean network of members and a relay, where a test feeds
/// hostile bytes to one node and then checks that a good change still syncs everywhere.
extension Simulation {
    /// A network without faults: `members` offices fully linked, plus the relay.
    public static func clean(members: Int = 2, seed: UInt64 = 7) -> Simulation {
        var f = FaultModel.none
        f.commitBeforeAck = 100
        let sim = Simulation(SimConfig(seed: seed, members: members, steps: 0, spaces: 1, directLinkPercent: 100, faults: f))
        sim.healing = true
        return sim
    }

    public var space: SpaceID { spaceIDs[0] }
    public func spaceKey(_ id: SpaceID) -> SymmetricKey { spaceKeys[id]! }

    /// A client write on member `node`: returns the changes acknowledged (sealed, committed, announced).
    @discardableResult
    public func write(at node: Int, changes count: Int = 1) -> [Change] {
        let n = nodes[node]
        var r = n.spaces[space]!.replica!
        n.spaces[space]!.replica = nil
        var made: [Change] = []
        for _ in 0..<count {
            made.append(
                try! r.edit(time: Int64(now)) { tx, st in
                    let d = try tx.createDocument(kind: "หนังสือรับ", in: &st)
                    try tx.set(d, field: "เรื่อง", value: .string("\(Workload.marker) ตรวจสอบ \(now)"), in: &st)
                }!)
        }
        n.spaces[space]!.replica = r
        let e = n.seal(space, made)
        n.commit()
        for c in made { acked.append(AckedWrite(space: space, change: c.id, author: n.author)) }
        announce(node, space, [e])
        return made
    }

    /// Connects every link, runs to quiescence and checks every invariant; returns the failures.
    public func settle() -> [String] {
        failures = []
        stats.healSteps = 0
        heal()
        checkFinal()
        return failures
    }

    /// Whether `change` is applied on every member.
    public func everywhere(_ change: Change) -> Bool {
        nodes.filter(\.isMember).allSatisfy { $0.spaces[space]?.replica?.clock.includes(change.id) ?? false }
    }

    /// Hands envelopes to node `node` as a session's delivery would; returns the refusal codes they caused.
    public func deliver(_ envelopes: [Envelope], to node: Int, space: SpaceID? = nil) -> [CryptoError.Code] {
        let n = nodes[node]
        let before = n.refused
        let replays = n.replays
        let accepted = n.ingest(space ?? self.space, envelopes, dropEvery: nil)
        n.commit()
        announce(node, space ?? self.space, accepted)
        var out: [CryptoError.Code] = []
        for (code, count) in n.refused.sorted(by: { $0.key.rawValue < $1.key.rawValue }) where count > before[code] ?? 0 {
            out.append(code)
        }
        if n.replays > replays { out.append(.feedReplay) }
        // Refusals here are the point of the test, not an invariant failure.
        n.refused = before
        n.replays = replays
        return out
    }

    /// The node's signing identity (to forge or fork with in tests) and its envelopes.
    public func identity(_ node: Int) -> SigningKeyPair { nodes[node].keys }
    public func envelopes(at node: Int) -> [Envelope] { nodes[node].spaces[space]?.log ?? [] }
    public func replica(at node: Int) -> Replica? { nodes[node].spaces[space]?.replica }
    public func nodeCount() -> Int { nodes.count }

    /// Opens a session on node `node` with a hostile peer (identity of `peer`), feeds it `chunks`
    /// as the peer's byte stream and returns why the node's session closed (nil if still open).
    public func hostile(to node: Int, from peer: Int, _ chunks: [[UInt8]], helloFirst: Bool = true) -> CloseReason? {
        var s = SyncSession(
            configuration: SyncConfiguration(role: nodes[node].role, spaces: nodes[node].sessionSpaces, limits: nodeLimits[node]),
            peer: nodes[peer].author)
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
