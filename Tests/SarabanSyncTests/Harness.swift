import Foundation
import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

// An in-memory test network: nodes with an envelope store per space, SyncSessions wired back to
// back through byte queues, and a scheduler that runs fetch/deliver work and frame delivery either
// in a fixed order or in a seeded random interleaving.

let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The seed of randomised tests: `SARABAN_SEED` when set, else `fallback`.
func testSeed(_ fallback: UInt64) -> UInt64 {
    if let s = ProcessInfo.processInfo.environment["SARABAN_SEED"], let v = UInt64(s) { return v }
    return fallback
}

func deterministicKeys(_ n: UInt64) -> SigningKeyPair {
    var rng = SplitMix64(seed: 0x5A4A_BA4E_0000 &+ n)
    var seed = [UInt8]()
    for _ in 0..<4 {
        let x = rng.next()
        for i in 0..<8 { seed.append(UInt8(truncatingIfNeeded: x >> (8 * UInt64(i)))) }
    }
    return try! SigningKeyPair(seed: SecureBytes(seed))
}

func space(_ n: UInt64) -> SpaceID { SpaceID(hi: 0x5350_4143_4500_0000 | n, lo: n &* 0x9E37_79B9) }

/// One space as a node holds it.
struct NodeSpace {
    var log: [Envelope] = []
    var vector = FeedVector()
    var verifier: FeedVerifier
    /// The epoch-1 key; nil on a relay, which never holds one.
    var key: SymmetricKey?
    /// The CRDT replica (members only).
    var replica: Replica?
    var refused: [CryptoError.Code] = []
    var replays = 0
    var lastOwnID = EnvelopeID.zero
}

final class TestNode {
    let name: String
    let keys: SigningKeyPair
    let role: NodeRole
    var spaces: [SpaceID: NodeSpace] = [:]
    var writes = 0
    /// Per space, the latest verified head claim per claimant (what a node's claims table holds).
    var claims: [SpaceID: [SigningPublicKey: HeadClaim]] = [:]
    /// Claims refused: bad signature or not a member of `members`.
    var claimsRefused = 0
    /// Who may claim, per space (everyone when absent).
    var members: [SpaceID: Set<SigningPublicKey>] = [:]
    /// Per space, per author, the first sequence held, for feeds no longer held from their start
    /// (``retain(_:_:from:)``, a relay's retention).
    var floors: [SpaceID: FeedVector] = [:]

    /// Drops `author`'s envelopes of `id` that start below `first` (which must start an envelope),
    /// as a relay's retention does; the verifier keeps the head, so the chain goes on.
    func retain(_ id: SpaceID, _ author: SigningPublicKey, from first: UInt64) {
        spaces[id]!.log.removeAll { $0.header.author == author && $0.header.seqStart < first }
        floors[id, default: FeedVector()][author] = first
    }

    init(_ name: String, index: UInt64, role: NodeRole = .member) {
        self.name = name
        self.keys = deterministicKeys(index)
        self.role = role
    }

    var author: SigningPublicKey { keys.publicKey }

    func join(_ id: SpaceID, key: SymmetricKey?) {
        var s = NodeSpace(verifier: FeedVerifier(spaceID: id.bytes, knownEpochs: [1]), key: role == .member ? key : nil)
        if role == .member { s.replica = Replica(id: ReplicaID(bytes: keys.publicKey.rawRepresentation)) }
        spaces[id] = s
    }

    /// Makes `envelopes` envelopes of `changesPerEnvelope` changes each in `space`, stores them, returns them.
    @discardableResult
    func write(_ id: SpaceID, envelopes: Int, changesPerEnvelope: Int = 1) -> [Envelope] {
        var s = spaces[id]!
        guard role == .member, s.key != nil else {
            Issue.record("\(name) cannot write in \(id): it is not a member holding the space key")
            return []
        }
        var made: [Envelope] = []
        for _ in 0..<envelopes {
            var encoded: [[UInt8]] = []
            var first: UInt64 = 0
            var last: UInt64 = 0
            for _ in 0..<changesPerEnvelope {
                writes += 1
                let marker = "PLAINTEXT-MARKER-\(name)-\(writes)"
                let c = try! s.replica!.edit(time: Int64(writes)) { tx, st in
                    let d = try tx.createDocument(kind: "memo", in: &st)
                    try tx.set(d, field: "เรื่อง", value: .string(marker), in: &st)
                }!
                if first == 0 { first = c.seq }
                last = c.seq
                encoded.append(c.encoded())
            }
            let header = EnvelopeHeader(
                spaceID: id.bytes, author: author, seqStart: first, seqEnd: last, epoch: 1, previousHash: s.lastOwnID)
            let e = try! Envelope.seal(
                plaintext: EnvelopePayload.encode(encoded), header: header, key: s.key!, signer: keys)
            try! s.verifier.accept(e)
            s.lastOwnID = e.id
            s.log.append(e)
            s.vector.add(e.header)
            made.append(e)
        }
        spaces[id] = s
        return made
    }

    /// Verifies, stores and (members) applies; returns the envelopes accepted.
    func ingest(_ id: SpaceID, _ envelopes: [Envelope]) -> [Envelope] {
        var s = spaces[id]!
        var accepted: [Envelope] = []
        for e in envelopes {
            do {
                try s.verifier.accept(e)
            } catch {
                if error.code == .feedReplay { s.replays += 1 } else { s.refused.append(error.code) }
                continue
            }
            s.log.append(e)
            s.vector.add(e.header)
            if e.header.author == author { s.lastOwnID = e.id }  // its own, fetched back (a restored node)
            accepted.append(e)
            if let key = s.key {
                for c in try! EnvelopePayload.open(e, key: key).changes { try! s.replica!.receive(c) }
            }
        }
        spaces[id] = s
        return accepted
    }

    /// The store read behind `.fetch`.
    func read(_ id: SpaceID, after: FeedVector, limit: FetchLimit) -> (envelopes: [Envelope], complete: Bool) {
        var out: [Envelope] = []
        var bytes = 0
        for e in spaces[id]!.log where e.header.seqEnd > after[e.header.author] {
            if out.count >= limit.envelopes || (!out.isEmpty && bytes + e.bytes.count > limit.bytes) { return (out, false) }
            out.append(e)
            bytes += e.bytes.count
        }
        return (out, true)
    }

    var configuration: [SpaceID: FeedVector] { spaces.mapValues(\.vector) }

    /// Signs a claim of what this member holds of each space, where it changed since its last (as a node does at a session's start).
    func claim(time: Int64) {
        guard role == .member else { return }
        for (id, h) in heads where !h.isEmpty {
            if let mine = claims[id]?[author], mine.matches(h) { continue }
            claims[id, default: [:]][author] = HeadClaim.make(space: id, signer: keys, time: time, heads: h)
        }
    }

    /// Keeps the verified claims that are newer than those held (the `.claims` action).
    func take(_ id: SpaceID, _ received: [HeadClaim]) {
        for c in received {
            guard c.hasValidSignature, members[id].map({ $0.contains(c.claimant) }) ?? true else {
                claimsRefused += 1
                continue
            }
            if let held = claims[id]?[c.claimant], held.time >= c.time { continue }
            claims[id, default: [:]][c.claimant] = c
        }
    }

    /// Per space, per author, the last envelope held (what a node's store gives its sessions).
    var heads: [SpaceID: [SigningPublicKey: FeedHead]] {
        spaces.mapValues { s in
            var out: [SigningPublicKey: FeedHead] = [:]
            for e in s.log { out[e.header.author] = FeedHead(lastSequence: e.header.seqEnd, lastID: e.id) }
            return out
        }
    }

    /// The envelope of `author` in `id` that covers `seq` (for ``SpaceVector/mismatches(held:)``).
    func held(_ id: SpaceID, _ author: SigningPublicKey, _ seq: UInt64) -> (seqEnd: UInt64, id: EnvelopeID)? {
        spaces[id]!.log.first { $0.header.author == author && $0.header.seqStart <= seq && $0.header.seqEnd >= seq }
            .map { ($0.header.seqEnd, $0.id) }
    }
}

/// Node work waiting for the driver (answers to fetch and deliver).
enum Work {
    case fetch(SpaceID, FeedVector, FetchLimit)
    case deliver(SpaceID, [Envelope])
}

final class Connection {
    let nodes: (Int, Int)
    var sessions: [SyncSession]
    /// Bytes in flight towards side 0 and side 1.
    var wire: [[[UInt8]]] = [[], []]
    var work: [[Work]] = [[], []]
    var closed = [false, false]
    var reasons: [CloseReason?] = [nil, nil]
    var bytesSent = [0, 0]
    var framesDelivered = [0, 0]
    var synced = [0, 0]
    var progress: [[SpaceID: FeedVector]] = [[:], [:]]
    /// The peer's summaries with head tags, as each side's session handed them out.
    var peerHeads: [[SpaceVector]] = [[], []]
    /// What each side's session reported it cannot get from the peer (below the peer's horizon).
    var gaps: [[SpaceID: [SigningPublicKey: ClosedRange<UInt64>]]] = [[:], [:]]

    init(nodes: (Int, Int), sessions: [SyncSession]) {
        self.nodes = nodes
        self.sessions = sessions
    }

    func node(_ side: Int) -> Int { side == 0 ? nodes.0 : nodes.1 }
    var isDead: Bool { closed[0] && closed[1] }
}

struct Scheduler {
    var rng: SplitMix64?
    /// In random mode, split byte chunks at random points.
    var splitChunks = true

    mutating func pick(_ n: Int) -> Int {
        guard var r = rng else { return 0 }
        defer { rng = r }
        return Int(r.next() % UInt64(n))
    }
}

final class Network {
    var nodes: [TestNode]
    var connections: [Connection] = []
    var limits: SyncLimits
    var now = SyncInstant.seconds(1)
    var scheduler = Scheduler()
    /// When false, fetch and deliver are answered at once; when true they queue as `work`.
    var deferWork: Bool
    var violations: [String] = []
    var timeouts = 0
    /// Call `localEnvelopes` on the delivering session too (it must ignore them).
    var notifyOrigin = true

    init(_ nodes: [TestNode], limits: SyncLimits = SyncLimits(), deferWork: Bool = false, seed: UInt64? = nil) {
        self.nodes = nodes
        self.limits = limits
        self.deferWork = deferWork
        if let seed { scheduler.rng = SplitMix64(seed: seed) }
    }

    @discardableResult
    func connect(_ a: Int, _ b: Int) -> Connection {
        func configuration(_ n: Int) -> SyncConfiguration {
            SyncConfiguration(
                role: nodes[n].role, spaces: nodes[n].configuration, heads: nodes[n].heads,
                claims: nodes[n].claims.mapValues { Array($0.values) }, floors: nodes[n].floors, limits: limits)
        }
        let sa = SyncSession(configuration: configuration(a), peer: nodes[b].author)
        let sb = SyncSession(configuration: configuration(b), peer: nodes[a].author)
        let c = Connection(nodes: (a, b), sessions: [sa, sb])
        connections.append(c)
        let ci = connections.count - 1
        perform(c.sessions[0].start(now: now), ci, 0)
        perform(c.sessions[1].start(now: now), ci, 1)
        return c
    }

    /// Breaks the connection: bytes in flight are lost; both sides see the connection drop.
    func cut(_ c: Connection) {
        c.wire = [[], []]
        for side in 0..<2 where !c.closed[side] {
            let actions = c.sessions[side].connectionLost()
            if let ci = connections.firstIndex(where: { $0 === c }) { perform(actions, ci, side) }
        }
    }

    /// A local write on node `n`, announced to every live session of that node.
    @discardableResult
    func write(_ n: Int, _ id: SpaceID, envelopes: Int, changesPerEnvelope: Int = 1) -> [Envelope] {
        let made = nodes[n].write(id, envelopes: envelopes, changesPerEnvelope: changesPerEnvelope)
        announce(n, id, made, except: nil)
        return made
    }

    func announce(_ n: Int, _ id: SpaceID, _ envelopes: [Envelope], except: (Int, Int)?) {
        guard !envelopes.isEmpty else { return }
        for (ci, c) in connections.enumerated() {
            for side in 0..<2 where c.node(side) == n && !c.closed[side] {
                if let e = except, e == (ci, side), !notifyOrigin { continue }
                perform(c.sessions[side].localEnvelopes(space: id, envelopes), ci, side)
            }
        }
    }

    func perform(_ actions: [SyncAction], _ ci: Int, _ side: Int) {
        let c = connections[ci]
        for a in actions {
            switch a {
            case .send(let bytes):
                c.bytesSent[side] += bytes.count
                if !c.closed[1 - side] { c.wire[1 - side].append(bytes) }
            case .fetch(let id, let after, let limit):
                c.work[side].append(.fetch(id, after, limit))
            case .deliver(let id, let envelopes, let from):
                #expect(from == nodes[c.node(1 - side)].author)
                c.work[side].append(.deliver(id, envelopes))
            case .peerProgress(let id, let v):
                c.progress[side][id] = v
            case .synced:
                c.synced[side] += 1
            case .peerHeads(let item):
                c.peerHeads[side].append(item)
            case .unreachable(let id, let gaps, let from):
                #expect(from == nodes[c.node(1 - side)].author)
                c.gaps[side][id] = gaps
            case .attachment:
                break
            case .claims(let id, let received, let from):
                #expect(from == nodes[c.node(1 - side)].author)
                nodes[c.node(side)].take(id, received)
            case .close(let reason):
                c.closed[side] = true
                c.reasons[side] = reason
                switch reason {
                // Timeouts (nothing received, no ack, a frame too slow) are legitimate when the
                // scheduler starves a link while the clock runs.
                case .peerError(let e) where e.code == .timeout: timeouts += 1
                case .violation(let e) where e.code == .timeout: timeouts += 1
                case .violation, .localFault, .peerError: violations.append("\(nodes[c.node(side)].name): \(reason)")
                case .timedOut: timeouts += 1
                default: break
                }
            }
        }
        if !deferWork { while runWork(ci, side) {} }
    }

    /// Runs one work item of `side` on connection `ci`; returns whether there was one.
    @discardableResult
    func runWork(_ ci: Int, _ side: Int) -> Bool {
        let c = connections[ci]
        guard !c.work[side].isEmpty else { return false }
        let w = c.work[side].removeFirst()
        let n = c.node(side)
        switch w {
        case .fetch(let id, let after, let limit):
            let (envelopes, complete) = nodes[n].read(id, after: after, limit: limit)
            perform(c.sessions[side].fetched(space: id, envelopes: envelopes, complete: complete), ci, side)
        case .deliver(let id, let envelopes):
            let accepted = nodes[n].ingest(id, envelopes)
            perform(c.sessions[side].stored(space: id, vector: nodes[n].spaces[id]!.vector), ci, side)
            announce(n, id, accepted, except: (ci, side))
        }
        return true
    }

    /// Delivers the next chunk of bytes towards `side` of connection `ci`; returns whether there was one.
    @discardableResult
    func deliverBytes(_ ci: Int, _ side: Int) -> Bool {
        let c = connections[ci]
        guard !c.wire[side].isEmpty else {
            // The other side closed and everything it sent has arrived: the connection ends here too.
            if c.closed[1 - side] && !c.closed[side] { perform(c.sessions[side].connectionLost(), ci, side) }
            return false
        }
        var chunk = c.wire[side].removeFirst()
        if scheduler.rng != nil && scheduler.splitChunks && chunk.count > 1 && scheduler.pick(4) == 0 {
            let at = 1 + scheduler.pick(chunk.count - 1)
            c.wire[side].insert(Array(chunk[at...]), at: 0)
            chunk = Array(chunk[..<at])
        } else {
            c.framesDelivered[side] += 1
        }
        if c.closed[side] { return true }
        perform(c.sessions[side].receive(chunk, now: now), ci, side)
        return true
    }

    /// Every pending event as (connection, side, isWork).
    var pending: [(Int, Int, Bool)] {
        var out: [(Int, Int, Bool)] = []
        for (ci, c) in connections.enumerated() {
            for side in 0..<2 {
                if !c.wire[side].isEmpty || (c.closed[1 - side] && !c.closed[side]) { out.append((ci, side, false)) }
                if !c.work[side].isEmpty { out.append((ci, side, true)) }
            }
        }
        return out
    }

    /// Runs one event (random in seeded mode, else the first); returns false when nothing is pending.
    @discardableResult
    func step() -> Bool {
        let p = pending
        guard !p.isEmpty else { return false }
        let (ci, side, isWork) = p[scheduler.pick(p.count)]
        if isWork { runWork(ci, side) } else { deliverBytes(ci, side) }
        return true
    }

    /// Runs until nothing is pending (or `maxSteps`).
    @discardableResult
    func run(maxSteps: Int = 1_000_000) -> Int {
        var n = 0
        while n < maxSteps && step() { n += 1 }
        return n
    }

    /// Envelopes sent by node `n` over every connection so far.
    func envelopesSent(by n: Int) -> Int {
        connections.reduce(0) { acc, c in
            acc + (0..<2).filter { c.node($0) == n }.reduce(0) { $0 + c.sessions[$1].stats.envelopesSent }
        }
    }

    var totalBytes: Int { connections.reduce(0) { $0 + $1.bytesSent[0] + $1.bytesSent[1] } }
}

/// Whether every node carrying `id` holds the same vector, and members the same documents.
func converged(_ nodes: [TestNode], _ id: SpaceID) -> Bool {
    let holders = nodes.filter { $0.spaces[id] != nil }
    guard let first = holders.first else { return true }
    let v = first.spaces[id]!.vector
    guard holders.allSatisfy({ $0.spaces[id]!.vector == v }) else { return false }
    let views = holders.compactMap { $0.spaces[id]!.replica?.views }
    return views.allSatisfy { $0 == views[0] }
}
