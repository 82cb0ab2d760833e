import SarabanCore
import SarabanCrypto
import SarabanSync

/// A link between two nodes, smaller index first.
struct LinkKey: Hashable, Comparable {
    let a: Int
    let b: Int
    init(_ x: Int, _ y: Int) {
        a = min(x, y)
        b = max(x, y)
    }
    static func < (l: LinkKey, r: LinkKey) -> Bool { l.a != r.a ? l.a < r.a : l.b < r.b }
}

/// A frame (or a piece of one) on its way, due at virtual time `at` (milliseconds).
struct Packet {
    var bytes: [UInt8]
    var at: UInt64
}

/// Work a session handed to its node (answered later, in a random interleaving).
enum NodeWork {
    case fetch(SpaceID, FeedVector, FetchLimit)
    case deliver(SpaceID, [Envelope])
}

/// One connection: a session on each side, bytes in flight towards each side.
final class SimConnection {
    let id: Int
    let nodes: [Int]
    var sessions: [SyncSession]
    var toward: [[Packet]] = [[], []]
    var work: [[NodeWork]] = [[], []]
    var closed = [false, false]
    /// A side that crashed: its peer hears nothing (no end of stream) and must time out.
    var silent = [false, false]
    /// The latest due time queued towards each side (the stream stays ordered without reorder faults).
    var lastAt: [UInt64] = [0, 0]

    init(id: Int, nodes: [Int], sessions: [SyncSession]) {
        self.id = id
        self.nodes = nodes
        self.sessions = sessions
    }

    var link: LinkKey { LinkKey(nodes[0], nodes[1]) }
    var isDead: Bool { closed[0] && closed[1] }
    func side(of node: Int) -> Int? { nodes[0] == node ? 0 : nodes[1] == node ? 1 : nil }
}

/// A change acknowledged to a node's client: it must be present everywhere at the end.
public struct AckedWrite: Hashable, Sendable {
    public var space: SpaceID
    public var change: ChangeID
    public var author: SigningPublicKey
}

/// A list append acknowledged to a client: its value must be in the list on every member.
public struct AckedAppend: Hashable, Sendable {
    public var space: SpaceID
    public var doc: DocID
    public var field: String
    public var value: String
}

/// The deterministic simulator: members and a relay in one process, one seeded generator, a
/// virtual clock, a faulty network, crashes and restarts. See Docs/TESTING.md.
public final class Simulation {
    public let config: SimConfig
    public private(set) var nodes: [SimNode] = []
    public let relayIndex: Int
    public private(set) var spaceIDs: [SpaceID] = []
    var spaceKeys: [SpaceID: SymmetricKey] = [:]
    var rng: SplitMix64
    /// Virtual time in milliseconds.
    public private(set) var now: UInt64 = 1_000
    var lastTick: UInt64 = 1_000
    var links: [LinkKey] = []
    var connections: [SimConnection] = []
    var partitioned: Set<LinkKey> = []
    var clogged: Set<LinkKey> = []
    /// Links clogged in this swizzle round, in order (unclogged in random order).
    var swizzle: [LinkKey] = []
    var linkLatency: [LinkKey: UInt64] = [:]
    var faults: FaultModel
    /// Each node's session limits (equal unless the configuration varies them per node).
    var nodeLimits: [SyncLimits] = []
    var healing = false
    public internal(set) var acked: [AckedWrite] = []
    public internal(set) var ackedAppends: [AckedAppend] = []
    /// Register numbers acknowledged to offices' clients (Registers.swift).
    public internal(set) var ackedAllocations: [AckedAllocation] = []
    public internal(set) var failures: [String] = []
    public internal(set) var stats = SimStats()
    var digest: UInt64 = 0xcbf2_9ce4_8422_2325
    var rawFaultsHappened = false
    var writeCounter = 0

    /// Extra invariants checked at the end (e-Saraban: register numbers never collide).
    public var extraInvariants: [(name: String, check: (Simulation) -> [String])] = []

    public init(_ config: SimConfig) {
        self.config = config
        self.faults = config.faults
        rng = SplitMix64(seed: config.seed)
        for s in 0..<config.spaces {
            let id = SpaceID(hi: 0x5350_4143_4500_0000 | UInt64(s + 1), lo: config.seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(s))
            spaceIDs.append(id)
            spaceKeys[id] = SimKeys.space(config.seed &+ UInt64(s) &* 7919)
        }
        for i in 0..<config.members {
            nodes.append(SimNode(index: i, name: "office\(i)", keys: SimKeys.signing(config.seed &* 31 &+ UInt64(i) &+ 1), role: .member))
        }
        relayIndex = nodes.count
        nodes.append(SimNode(index: relayIndex, name: "relay", keys: SimKeys.signing(config.seed &* 31 &+ 999), role: .relay))
        // Memberships: every space has at least one member; every member is in at least one space.
        for i in 0..<config.members {
            var joined = false
            for (k, s) in spaceIDs.enumerated() where i == k % config.members || rng.next() % 3 != 0 {
                nodes[i].join(s, key: spaceKeys[s]!)
                joined = true
            }
            if !joined { nodes[i].join(spaceIDs[0], key: spaceKeys[spaceIDs[0]]!) }
        }
        for s in spaceIDs { nodes[relayIndex].join(s, key: spaceKeys[s]!) }
        // Topology: every member to the relay, and some member pairs directly.
        for i in 0..<config.members {
            links.append(LinkKey(i, relayIndex))
            for j in (i + 1)..<max(i + 1, config.members) where Int(rng.next() % 100) < config.directLinkPercent {
                links.append(LinkKey(i, j))
            }
        }
        links.sort()
        for _ in nodes.indices {
            var l = config.limits
            if config.perNodeLimits {
                l = SyncLimits(
                    batchEnvelopes: 1 + below(8), batchBytes: below(3) == 0 ? 1200 + below(2000) : 1 << 20, window: 1 + below(4),
                    pingInterval: .seconds(Int64(3 + below(5))), timeout: .seconds(Int64(12 + below(10))))
            }
            nodeLimits.append(l)
        }
        for l in links { linkLatency[l] = 1 + rng.next() % max(config.faults.maxLatency, 1) }
        extraInvariants.append((name: "registers", check: Simulation.checkRegisters))
    }

    // MARK: Running

    /// Runs the faulty phase, heals, quiesces and checks every invariant.
    public func run() -> SimResult {
        for l in links where rng.next() % 2 == 0 { connect(l) }
        while stats.steps < config.steps && failures.isEmpty {
            step()
            stats.steps += 1
            if stats.steps % 16 == 0 { checkDuring() }
        }
        if failures.isEmpty {
            heal()
            checkFinal()
        }
        stats.virtualMilliseconds = now
        return SimResult(seed: config.seed, members: config.members, failures: failures, traceDigest: digest, stats: stats)
    }

    func note(_ kind: UInt64, _ a: Int = 0, _ b: Int = 0) {
        for x in [now, kind, UInt64(bitPattern: Int64(a)), UInt64(bitPattern: Int64(b))] {
            digest = (digest ^ x) &* 0x0000_0100_0000_01B3
        }
    }

    func fail(_ message: String) {
        if failures.count < 20 { failures.append(message) }
    }

    func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }

    func percent(_ p: Int) -> Bool { p > 0 && below(100) < p }

    var instant: SyncInstant { SyncInstant(nanoseconds: now * 1_000_000) }

    /// One step of the faulty phase: time passes, then one random thing happens.
    func step() {
        advance(by: UInt64(below(250)))
        let r = below(100)
        var t = 0
        func slot(_ w: Int) -> Bool {
            t += w
            return r < t
        }
        if slot(faults.crash) {
            crashRandomNode()
        } else if slot(faults.restart) {
            restartRandomNode()
        } else if slot(faults.partition) {
            togglePartition()
        } else if slot(faults.clog) {
            swizzleStep()
        } else if slot(faults.reset) {
            resetRandomConnection()
        } else if slot(12) {
            clientWrite()
        } else if slot(5) {
            clientAllocate()
        } else if slot(6) {
            reconnectSomething()
        } else {
            _ = runOneEvent()
        }
    }

    /// Moves the clock, ticking every live session each virtual second.
    func advance(by ms: UInt64) {
        now += ms
        while now - lastTick >= 1_000 {
            lastTick += 1_000
            for c in connections where !c.isDead {
                for side in 0..<2 where !c.closed[side] && nodes[c.nodes[side]].isUp {
                    perform(c.sessions[side].tick(now: instant), c, side)
                }
            }
        }
    }

    // MARK: Connections and frames

    func connected(_ l: LinkKey) -> SimConnection? {
        connections.last { $0.link == l && !$0.closed[0] && !$0.closed[1] }
    }

    func canConnect(_ l: LinkKey) -> Bool {
        nodes[l.a].isUp && nodes[l.b].isUp && !partitioned.contains(l) && connected(l) == nil
    }

    func connect(_ l: LinkKey) {
        guard canConnect(l) else { return }
        let (x, y) = below(2) == 0 ? (l.a, l.b) : (l.b, l.a)
        let sx = SyncSession(
            configuration: SyncConfiguration(role: nodes[x].role, spaces: nodes[x].sessionSpaces, limits: nodeLimits[x]),
            peer: nodes[y].author)
        let sy = SyncSession(
            configuration: SyncConfiguration(role: nodes[y].role, spaces: nodes[y].sessionSpaces, limits: nodeLimits[y]),
            peer: nodes[x].author)
        connections.removeAll { $0.isDead && $0.toward[0].isEmpty && $0.toward[1].isEmpty }
        let c = SimConnection(id: stats.connections, nodes: [x, y], sessions: [sx, sy])
        connections.append(c)
        stats.connections += 1
        note(1, c.id)
        perform(c.sessions[0].start(now: instant), c, 0)
        perform(c.sessions[1].start(now: instant), c, 1)
    }

    /// Queues `bytes` from `side` towards the other side, through the fault model.
    func transmit(_ bytes: [UInt8], _ c: SimConnection, from side: Int) {
        let to = 1 - side
        stats.framesSent += 1
        if c.closed[to] || !nodes[c.nodes[to]].isUp { return }
        var copies = 1
        var data = bytes
        if !healing {
            if percent(faults.drop) {
                stats.framesDropped += 1
                rawFaultsHappened = true
                return
            }
            if percent(faults.duplicate) {
                copies = 2
                stats.framesDuplicated += 1
                rawFaultsHappened = true
            }
            if percent(faults.corrupt) {
                for _ in 0...below(3) {
                    let i = below(data.count)
                    data[i] ^= UInt8(1) << UInt8(below(8))
                }
                stats.framesCorrupted += 1
                rawFaultsHappened = true
            }
        }
        for _ in 0..<copies {
            var delay = linkLatency[c.link] ?? 1
            delay += UInt64(below(Int(max(faults.maxLatency, 1))))
            if !healing && percent(faults.slow) { delay += 1_000 + UInt64(below(4_000)) }
            var at = now + delay
            let reorder = !healing && percent(faults.reorder)
            if reorder {
                stats.framesReordered += 1
                rawFaultsHappened = true
            } else {
                at = max(at, c.lastAt[to])
                c.lastAt[to] = at
            }
            // TCP may cut a frame anywhere: sometimes it arrives in two pieces.
            if !reorder && data.count > 1 && below(5) == 0 {
                let cut = 1 + below(data.count - 1)
                c.toward[to].append(Packet(bytes: Array(data[..<cut]), at: at))
                c.toward[to].append(Packet(bytes: Array(data[cut...]), at: at))
            } else if reorder {
                // Inserted by due time, so it may overtake frames sent before it.
                let i = c.toward[to].firstIndex { $0.at > at } ?? c.toward[to].count
                c.toward[to].insert(Packet(bytes: data, at: at), at: i)
            } else {
                c.toward[to].append(Packet(bytes: data, at: at))
            }
        }
    }

    func perform(_ actions: [SyncAction], _ c: SimConnection, _ side: Int) {
        let n = c.nodes[side]
        for a in actions {
            switch a {
            case .send(let bytes):
                transmit(bytes, c, from: side)
            case .fetch(let space, let after, let limit):
                c.work[side].append(.fetch(space, after, limit))
            case .deliver(let space, let envelopes, let from):
                if from != nodes[c.nodes[1 - side]].author {
                    fail("\(nodes[n].name): a session delivered envelopes attributed to \(from), not its peer")
                }
                c.work[side].append(.deliver(space, envelopes))
            case .peerProgress, .peerHeads, .attachment:
                break
            case .synced:
                note(2, c.id, side)
            case .close(let reason):
                c.closed[side] = true
                c.work[side] = []
                note(3, c.id, side)
                switch reason {
                case .timedOut:
                    stats.timeouts += 1
                case .peerError(let e) where e.code == .timeout:
                    stats.timeouts += 1
                case .violation(let e), .localFault(let e), .peerError(let e):
                    stats.violations += 1
                    if !faults.hasRawFaults && !rawFaultsHappened {
                        fail("\(nodes[n].name): session with \(nodes[c.nodes[1 - side]].name) closed on a clean stream: \(reason) (\(e.code))")
                    }
                default:
                    break
                }
            }
        }
    }

    /// Every event that could happen now: due packets (the first of each direction, or any due one
    /// when reordering), end-of-stream notices, and node work.
    enum Event {
        case packet(SimConnection, Int, Int)
        case eof(SimConnection, Int)
        case work(SimConnection, Int)
    }

    func pendingEvents() -> [Event] {
        var out: [Event] = []
        for c in connections {
            for side in 0..<2 {
                let link = c.link
                let blocked = clogged.contains(link) || partitioned.contains(link)
                if !blocked, let first = c.toward[side].first, first.at <= now {
                    out.append(.packet(c, side, 0))
                }
                if c.toward[side].isEmpty && c.closed[1 - side] && !c.silent[1 - side] && !c.closed[side] && !blocked {
                    out.append(.eof(c, side))
                }
                if !c.work[side].isEmpty && !c.closed[side] { out.append(.work(c, side)) }
            }
        }
        return out
    }

    @discardableResult
    func runOneEvent() -> Bool {
        let events = pendingEvents()
        guard !events.isEmpty else { return false }
        run(events[below(events.count)])
        return true
    }

    func run(_ e: Event) {
        switch e {
        case .packet(let c, let side, let i):
            let p = c.toward[side].remove(at: i)
            stats.framesDelivered += 1
            note(4, c.id, p.bytes.count)
            guard !c.closed[side], nodes[c.nodes[side]].isUp else { return }
            perform(c.sessions[side].receive(p.bytes, now: instant), c, side)
        case .eof(let c, let side):
            note(5, c.id, side)
            perform(c.sessions[side].connectionLost(), c, side)
        case .work(let c, let side):
            let w = c.work[side].removeFirst()
            let n = nodes[c.nodes[side]]
            switch w {
            case .fetch(let space, let after, let limit):
                note(6, c.id, side)
                let (envs, complete) = n.read(space, after: after, limit: limit)
                perform(c.sessions[side].fetched(space: space, envelopes: envs, complete: complete), c, side)
            case .deliver(let space, let envs):
                note(7, c.id, envs.count)
                let drop = config.plantedBug == .dropEvery7thDelivery ? 7 : nil
                let accepted = n.ingest(space, envs, dropEvery: drop)
                stats.envelopesAccepted += accepted.count
                if percent(faults.commitBeforeAck) || healing { n.commit() }
                perform(c.sessions[side].stored(space: space, vector: n.spaces[space]!.vector), c, side)
                announce(n.index, space, accepted)
            }
        }
    }

    /// Tells every live session of node `n` about envelopes it stored.
    func announce(_ n: Int, _ space: SpaceID, _ envelopes: [Envelope]) {
        guard !envelopes.isEmpty else { return }
        for c in connections where !c.isDead {
            guard let side = c.side(of: n), !c.closed[side] else { continue }
            perform(c.sessions[side].localEnvelopes(space: space, envelopes), c, side)
        }
    }

    // MARK: Clients

    func clientWrite() {
        let members = (0..<config.members).filter { nodes[$0].isUp }
        guard !members.isEmpty else { return }
        let n = nodes[members[below(members.count)]]
        let carried = n.sortedSpaces
        let space = carried[below(carried.count)]
        var s = n.spaces[space]!
        var replica = s.replica!
        s.replica = nil  // keep the replica uniquely referenced while it is edited
        n.spaces[space] = s
        var changes: [Change] = []
        var appends: [String] = []
        for _ in 0...below(3) {
            writeCounter += 1
            var a: [String] = []
            if let c = Workload.randomEdit(
                &replica, rng: &rng, time: Int64(now), tag: "\(config.seed)-\(writeCounter)", appended: &a)
            {
                changes.append(c)
                appends += a
            }
        }
        n.spaces[space]!.replica = replica
        guard !changes.isEmpty else { return }
        stats.writes += 1
        // One envelope for the group, or one per change.
        var envelopes: [Envelope] = []
        if below(2) == 0 {
            envelopes.append(n.seal(space, changes))
        } else {
            for c in changes { envelopes.append(n.seal(space, [c])) }
        }
        note(8, n.index, changes.count)
        if config.plantedBug != .ackBeforeCommit { n.commit() }
        // Acknowledged to the client: from here on it must never be lost.
        for c in changes { acked.append(AckedWrite(space: space, change: c.id, author: n.author)) }
        stats.changesAcknowledged += changes.count
        for v in appends {
            if let (doc, field) = findAppend(v, in: n.spaces[space]!.replica!) {
                ackedAppends.append(AckedAppend(space: space, doc: doc, field: field, value: v))
            }
        }
        announce(n.index, space, envelopes)
    }

    func findAppend(_ v: String, in r: Replica) -> (DocID, String)? {
        for (id, d) in r.documents {
            for (f, l) in d.lists where l.entries.contains(where: { $0.value == .string(v) }) { return (id, f) }
        }
        return nil
    }

    // MARK: Faults

    func crashRandomNode() {
        let up = nodes.indices.filter { nodes[$0].isUp }
        guard up.count > 1 else { return }
        let n = up[below(up.count)]
        stats.crashes += 1
        note(9, n)
        nodes[n].crash()
        for c in connections where !c.isDead {
            guard let side = c.side(of: n) else { continue }
            c.closed[side] = true
            c.silent[side] = true
            c.work[side] = []
            c.toward[side] = []
            // The peer sees a reset now, or only silence (and times out).
            if !c.closed[1 - side] && below(2) == 0 {
                perform(c.sessions[1 - side].connectionLost(), c, 1 - side)
            }
        }
    }

    func restartRandomNode() {
        let down = nodes.indices.filter { !nodes[$0].isUp }
        guard !down.isEmpty else { return }
        restart(down[below(down.count)])
    }

    func restart(_ n: Int) {
        note(10, n)
        nodes[n].restart()
        checkAuthorDurability(nodes[n])
    }

    func togglePartition() {
        if !partitioned.isEmpty && below(2) == 0 {
            partitioned = []
            note(11)
            return
        }
        // Split the nodes into two non-empty sides.
        var sideOf: [Int] = nodes.indices.map { _ in below(2) }
        if Set(sideOf).count < 2 { sideOf[below(sideOf.count)] ^= 1 }
        partitioned = Set(links.filter { sideOf[$0.a] != sideOf[$0.b] })
        stats.partitions += 1
        note(12, partitioned.count)
        // Some links reset at once; the others just go silent.
        for c in connections where !c.isDead && partitioned.contains(c.link) && below(3) == 0 {
            c.toward = [[], []]
            for side in 0..<2 where !c.closed[side] { perform(c.sessions[side].connectionLost(), c, side) }
        }
    }

    /// FoundationDB's swizzle-clogging: clog links one by one, then unclog them in random order.
    func swizzleStep() {
        let unclogged = links.filter { !clogged.contains($0) }
        if !unclogged.isEmpty && (swizzle.isEmpty || below(3) != 0) && swizzle.count < links.count {
            let l = unclogged[below(unclogged.count)]
            clogged.insert(l)
            swizzle.append(l)
            stats.clogs += 1
            note(13, l.a, l.b)
        } else if !swizzle.isEmpty {
            let l = swizzle.remove(at: below(swizzle.count))
            clogged.remove(l)
            note(14, l.a, l.b)
        }
    }

    func resetRandomConnection() {
        let live = connections.filter { !$0.isDead }
        guard !live.isEmpty else { return }
        let c = live[below(live.count)]
        note(15, c.id)
        if below(2) == 0 {
            c.toward = [[], []]
            for side in 0..<2 where !c.closed[side] { perform(c.sessions[side].connectionLost(), c, side) }
        } else {
            let side = below(2)
            if !c.closed[side] { perform(c.sessions[side].close(), c, side) }
        }
    }

    func reconnectSomething() {
        let candidates = links.filter { canConnect($0) }
        guard !candidates.isEmpty else { return }
        connect(candidates[below(candidates.count)])
    }

    // MARK: Healing

    /// Lifts every fault, restarts every node and runs until nothing is pending and every link is settled.
    func heal() {
        healing = true
        partitioned = []
        clogged = []
        swizzle = []
        for n in nodes.indices where !nodes[n].isUp { restart(n) }
        if rawFaultsHappened {
            // Sessions that saw a broken stream may wait forever on a lost frame: start afresh
            // (under Noise, the corrupted frame would have failed authentication and closed them).
            for c in connections where !c.isDead {
                c.toward = [[], []]
                for side in 0..<2 where !c.closed[side] { perform(c.sessions[side].connectionLost(), c, side) }
            }
        }
        let deadline = now + config.maxHealMilliseconds
        while stats.healSteps < config.maxHealSteps && now < deadline {
            stats.healSteps += 1
            for l in links where canConnect(l) { connect(l) }
            if runOneEvent() { continue }
            if quiescent() { return }
            // Nothing due: jump to the next due packet (or a second, for ticks and timeouts).
            let next = connections.flatMap { $0.toward.flatMap { $0.map(\.at) } }.min()
            advance(by: max(1, min(next.map { $0 > now ? $0 - now : 1 } ?? 1_000, 1_000)))
        }
        var detail: [String] = []
        for c in connections where !c.isDead {
            let st = (0..<2).map { side -> String in
                let s = c.sessions[side]
                let spaces = s.sharedSpaces.compactMap { s.status(of: $0) }
                    .map { "lacks \($0.changesWeLack)/peer lacks \($0.changesPeerLacks)/inflight \($0.batchesInFlight)" }
                return "\(nodes[c.nodes[side]].name)[open \(s.isOpen) settled \(s.isSettled) \(spaces)]"
            }
            detail.append(st.joined(separator: " <-> "))
        }
        fail("no quiescence after \(stats.healSteps) heal steps and \((now - deadline + config.maxHealMilliseconds) / 1000) virtual seconds (liveness): \(detail.prefix(4))")
    }

    func quiescent() -> Bool {
        for c in connections where !c.isDead {
            if !c.toward[0].isEmpty || !c.toward[1].isEmpty || !c.work[0].isEmpty || !c.work[1].isEmpty { return false }
        }
        for l in links {
            guard let c = connected(l), c.sessions[0].isSettled, c.sessions[1].isSettled else { return false }
        }
        return true
    }

    // MARK: Invariants

    /// Checked during the run: a member never applies a change whose envelope it does not hold,
    /// and no node ever sees a fork or a change that fails to apply.
    func checkDuring() {
        for n in nodes where n.isUp {
            if !n.applyFailures.isEmpty { fail("\(n.name): \(n.applyFailures.prefix(3))") }
            if (n.refused[.feedFork] ?? 0) > 0 { fail("\(n.name): saw a feed fork (an author reused a sequence number)") }
            for (id, s) in n.spaces.sorted(by: { $0.key < $1.key }) {
                guard let r = s.replica else { continue }
                if !s.vector.replicaVector.dominates(r.clock) {
                    fail("\(n.name): replica of \(id) applied \(r.clock) beyond the envelopes it holds \(s.vector.replicaVector)")
                }
            }
        }
    }

    /// After a restart, the node must still hold every change it acknowledged to its own client.
    func checkAuthorDurability(_ n: SimNode) {
        for w in acked where w.author == n.author {
            guard let s = n.spaces[w.space], let r = s.replica, r.clock.includes(w.change) else {
                fail("acknowledged write \(w.change) lost by its author \(n.name) in a crash")
                return
            }
        }
    }

    func checkFinal() {
        checkDuring()
        for s in spaceIDs {
            let holders = nodes.filter { $0.spaces[s] != nil }
            let members = holders.filter(\.isMember)
            // Identical vectors everywhere (relay included).
            let v0 = holders[0].spaces[s]!.vector
            for h in holders where h.spaces[s]!.vector != v0 {
                fail("space \(s): \(h.name) holds \(h.spaces[s]!.vector), \(holders[0].name) holds \(v0)")
            }
            // Identical replicas on every member: clock, views, conflicts, nothing waiting.
            guard let first = members.first else { continue }
            let r0 = first.spaces[s]!.replica!
            let views0 = r0.views
            for m in members {
                let r = m.spaces[s]!.replica!
                if !r.buffer.isEmpty { fail("space \(s): \(m.name) has \(r.buffer.count) changes waiting for their causal past") }
                if r.clock != r0.clock { fail("space \(s): \(m.name) clock \(r.clock) != \(first.name) clock \(r0.clock)") }
                let views = r.views
                if views != views0 {
                    let differing = Set(views.keys).union(views0.keys).filter { views[$0] != views0[$0] }.sorted()
                    fail("space \(s): \(m.name) and \(first.name) differ on documents \(differing.prefix(3))")
                }
                let conflicts = views.mapValues(\.conflicts)
                if conflicts != views0.mapValues(\.conflicts) {
                    fail("space \(s): \(m.name) and \(first.name) show different conflicts")
                }
            }
        }
        // Jepsen set-full: every acknowledged change is on every node carrying its space.
        for w in acked {
            for n in nodes where n.spaces[w.space] != nil {
                let s = n.spaces[w.space]!
                if s.vector[w.author] < w.change.seq {
                    fail("acknowledged write \(w.change) missing on \(n.name) (holds \(s.vector[w.author]) of its author)")
                    break
                }
                if let r = s.replica, !r.clock.includes(w.change) {
                    fail("acknowledged write \(w.change) not applied on \(n.name)")
                    break
                }
            }
        }
        for a in ackedAppends {
            for n in nodes where n.isMember && n.spaces[a.space] != nil {
                let list = n.spaces[a.space]!.replica!.documents[a.doc]?.lists[a.field]?.entries ?? []
                if !list.contains(where: { $0.value == .string(a.value) }) {
                    fail("acknowledged list append '\(a.value)' missing from \(n.name)")
                    break
                }
            }
        }
        // The relay holds no key and no plaintext.
        let relay = nodes[relayIndex]
        for (id, s) in relay.spaces.sorted(by: { $0.key < $1.key }) {
            if s.key != nil || s.replica != nil { fail("relay holds a key or a replica for \(id)") }
            for e in s.log where Simulation.containsPlaintext(e.bytes) {
                fail("relay holds plaintext in envelope \(e.id)")
                break
            }
        }
        for n in nodes {
            let bad = n.refused.filter { $0.key != .feedReplay }
            if !bad.isEmpty && !rawFaultsHappened { fail("\(n.name) refused envelopes on a clean network: \(bad)") }
            stats.refusals += bad.values.reduce(0, +)
        }
        for inv in extraInvariants {
            for f in inv.check(self) { fail("\(inv.name): \(f)") }
        }
    }

    static let markerBytes: [[UInt8]] = [Array(Workload.marker.utf8), Array(Workload.thaiMarker.utf8)]

    /// Whether `bytes` contain one of the plaintext markers written into every document.
    public static func containsPlaintext(_ bytes: [UInt8]) -> Bool {
        for m in markerBytes where bytes.count >= m.count {
            var i = 0
            let last = bytes.count - m.count
            while i <= last {
                if bytes[i] == m[0] {
                    var j = 1
                    while j < m.count && bytes[i + j] == m[j] { j += 1 }
                    if j == m.count { return true }
                }
                i += 1
            }
        }
        return false
    }
}

extension Simulation {
    /// Runs one seed with the derived configuration.
    public static func run(
        seed: UInt64, members: Int? = nil, steps: Int? = nil, plantedBug: PlantedBug? = nil, chaos: Bool = false
    ) -> SimResult {
        var config = SimConfig.derived(seed: seed, members: members, steps: steps, chaos: chaos)
        config.plantedBug = plantedBug
        return Simulation(config).run()
    }

    /// The one-line command that replays a seed.
    public static func reproduction(_ r: SimResult, steps: Int? = nil) -> String {
        "saraban-sim --seeds 1 --start \(r.seed) --nodes \(r.members)" + (steps.map { " --steps \($0)" } ?? "")
    }
}
