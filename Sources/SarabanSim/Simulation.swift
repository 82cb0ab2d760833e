import Foundation
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanStorage
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
    /// Per side and shared space, how many control changes its node had accepted when the session opened.
    var rosters: [[SpaceID: Int]]

    init(id: Int, nodes: [Int], sessions: [SyncSession], rosters: [[SpaceID: Int]]) {
        self.id = id
        self.nodes = nodes
        self.sessions = sessions
        self.rosters = rosters
    }

    var link: LinkKey { LinkKey(nodes[0], nodes[1]) }
    var isDead: Bool { closed[0] && closed[1] }
    func side(of node: Int) -> Int? { nodes[0] == node ? 0 : nodes[1] == node ? 1 : nil }
}

/// A change acknowledged to a node's client: it must be present everywhere at the end.
public struct AckedWrite: Hashable, Sendable {
    public var space: SpaceID
    public var change: ChangeID
    public var author: Int
}

/// A list append acknowledged to a client: its value must be in the list on every member.
public struct AckedAppend: Hashable, Sendable {
    public var space: SpaceID
    public var author: Int
    public var doc: DocID
    public var field: String
    public var value: String
}

/// The deterministic simulator: real nodes (each a ``SarabanNode/Node`` on its own SQLite
/// database) and a relay in one process, driven by real `SyncSession`s over a simulated
/// network, with one seeded generator, a virtual clock, crashes, power loss and membership
/// churn. See Docs/TESTING.md.
public final class Simulation {
    public let config: SimConfig
    public private(set) var nodes: [SimNode] = []
    public let relayIndex: Int
    public private(set) var spaceIDs: [SpaceID] = []
    let clock = SimClock()
    var rng: SplitMix64
    /// Virtual time in milliseconds.
    public var now: UInt64 { clock.now }
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
    /// The documents the clients created, per space (a client edits the documents it knows of).
    var workloadDocs: [SpaceID: [DocID]] = [:]
    /// Each office's register document per space, book and year, once its creation committed.
    var registerDocs: [RegisterKey: DocID] = [:]
    /// Per space, every node that was ever a member (the removed-member checks).
    var everMembers: [SpaceID: Set<Int>] = [:]
    /// Per space, the current members once the run has converged (the final roster's).
    var finalMembers: [SpaceID: [SimNode]] = [:]
    /// Nodes that lost power at least once (the durability invariants name them).
    var lostPower = Set<Int>()
    /// The intruder's feeds, per space (Membership.swift).
    var intruders: [SpaceID: Intruder] = [:]
    /// The dispatches the offices published, and the (dispatch, office) pairs received and
    /// returned (Letters.swift).
    var simDispatches: [SimDispatch] = []
    var simReceived = Set<Pair>()
    var simReturned = Set<Pair>()
    var clerksRoundDone = false
    /// The store hooks of every node: a planted bug, and the rogue's skipped checks.
    let hooks: StoreTestHooks
    /// Membership changes rogue members signed (Membership.swift).
    var rogueChanges: [RogueChange] = []
    var rogueRoundDone = false
    /// Per space, the nodes admins made admins (the creator included) and those they removed.
    var everAdmins: [SpaceID: Set<Int>] = [:]
    var removedByAdmins: [SpaceID: Set<Int>] = [:]
    let plantCounter = PlantCounter()
    /// Decisions of the real receive path the planted bug changed so far.
    public var plantedBugFired: Int { plantCounter.fired }

    /// Envelopes a member may still hold back at the end beyond the intruder's (the bad-input
    /// catalogue's forgeries).
    public var toleratedHeld = 0

    /// Extra invariants checked at the end (e-Saraban: register numbers never collide).
    public var extraInvariants: [(name: String, check: (Simulation) -> [String])] = []

    public init(_ config: SimConfig) {
        self.config = config
        self.faults = config.faults
        rng = SplitMix64(seed: config.seed)
        hooks = Self.plant(config.plantedBug, plantCounter)
        relayIndex = config.members
        do {
            try setUp()
        } catch {
            fail("setting up the nodes failed: \(error)")
        }
        extraInvariants.append((name: "registers", check: Simulation.checkRegisters))
        extraInvariants.append((name: "correspondence", check: Simulation.checkCorrespondence))
    }

    deinit {
        for n in nodes { n.dispose() }
    }

    /// Counts the times a planted bug changed a decision of the real receive path.
    final class PlantCounter: @unchecked Sendable {
        var fired = 0
    }

    /// The hooks that plant `bug` in the real receive path (none set without one); `counter` counts the
    /// decisions they changed.
    static func plant(_ bug: PlantedBug?, _ counter: PlantCounter) -> StoreTestHooks {
        let h = StoreTestHooks()
        switch bug {
        case .applyBeforeDependencies:
            h.applyBeforeDependencies = { _ in
                counter.fired += 1
                return true
            }
        case .headWithoutChanges:
            var stored = 0
            h.appliesChanges = { _ in
                stored += 1
                if stored % 7 == 0 { counter.fired += 1 }
                return stored % 7 != 0
            }
        case .admitAnyone:
            h.admission = { _, verdict in
                if verdict != nil { counter.fired += 1 }
                return nil
            }
        case .receiveTwice:
            h.forgetsReceivedRecords = true
        case .ackBeforeCommit, .staleRegisterRead, nil:
            break
        }
        return h
    }

    /// Makes the nodes and the spaces: each space's creator creates it and invites the members
    /// that join it (some as admins), the relay carries every space. This setup is durable.
    func setUp() throws {
        for i in 0...config.members {
            let relay = i == config.members
            nodes.append(
                try SimNode(
                    index: i, name: relay ? "relay" : "office\(i)", relay: relay, seed: config.seed &* 31 &+ UInt64(i) &+ 1,
                    clock: clock, powerLoss: config.powerLoss, hooks: hooks))
        }
        // Memberships: every space has at least one member; every member is in at least one space.
        var joins: [[Int]] = Array(repeating: [], count: config.spaces)
        for i in 0..<config.members {
            var joined = false
            for k in 0..<config.spaces where i == k % config.members || rng.next() % 3 != 0 || config.everyoneJoins {
                joins[k].append(i)
                joined = true
            }
            if !joined { joins[0].append(i) }
        }
        for k in 0..<config.spaces {
            let creator = nodes[k % config.members]
            let info = try creator.live.createSpace(name: "space\(k)")
            spaceIDs.append(info.id)
            everMembers[info.id] = [creator.index]
            everAdmins[info.id] = [creator.index]
            var admins = 1
            for i in joins[k] where i != creator.index {
                let admin = admins < config.admins
                if admin { admins += 1 }
                let invitation = try creator.live.invite(
                    space: info.id, invitee: nodes[i].nodeID, office: nodes[i].name, admin: admin)
                try nodes[i].live.join(invitation)
                everMembers[info.id]!.insert(i)
                if admin { everAdmins[info.id]!.insert(i) }
            }
            try nodes[relayIndex].live.carry(space: info.id, name: "space\(k)")
        }
        for n in nodes {
            n.logPosition = try n.live.changeProbe()
            SimDisk.markDurable(n.directory)
        }
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
    }

    // MARK: Running

    /// Runs the faulty phase, heals, quiesces and checks every invariant.
    public func run() -> SimResult {
        if failures.isEmpty {
            for l in links where rng.next() % 2 == 0 { connect(l) }
            while stats.steps < config.steps && failures.isEmpty {
                step()
                stats.steps += 1
                if stats.steps % 16 == 0 { checkDuring() }
            }
        }
        if failures.isEmpty {
            heal()
            if failures.isEmpty { checkFinal() }
        }
        stats.virtualMilliseconds = now
        stats.plantedBugFired = plantCounter.fired
        return SimResult(seed: config.seed, members: config.members, failures: failures, traceDigest: digest, stats: stats)
    }

    func note(_ kind: UInt64, _ a: Int = 0, _ b: Int = 0) {
        for x in [now, kind, UInt64(bitPattern: Int64(a)), UInt64(bitPattern: Int64(b))] {
            digest = (digest ^ x) &* 0x0000_0100_0000_01B3
        }
    }

    func fail(_ message: String) {
        trace("FAIL \(message)")
        if failures.count < 20 { failures.append(message) }
    }

    /// With ``SimConfig/trace``, one line per event that changes a node (stderr).
    func trace(_ line: @autoclosure () -> String) {
        guard config.trace else { return }
        FileHandle.standardError.write(Data("[\(now)] \(line())\n".utf8))
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
        } else if slot(faults.add) {
            addMember()
        } else if slot(faults.remove) {
            removeMember()
        } else if slot(faults.role) {
            changeRole()
        } else if slot(faults.intruder) {
            intrude()
        } else if slot(faults.rogue) {
            rogueMembership()
        } else if slot(12) {
            clientWrite()
        } else if slot(5) {
            clientAllocate()
        } else if slot(4) {
            clientCorrespond()
        } else if slot(6) {
            reconnectSomething()
        } else {
            _ = runOneEvent()
        }
    }

    /// Moves the clock, ticking every live session each virtual second.
    func advance(by ms: UInt64) {
        clock.now += ms
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

    /// The spaces `n` syncs with `peer` in a session opening now (the daemon asks the same).
    func sessionSpaces(_ n: Int, with peer: Int) -> [SpaceID: FeedVector]? {
        do { return try nodes[n].live.carriedSpaces(for: nodes[peer].nodeID) } catch {
            fail("\(nodes[n].name): cannot read its spaces: \(error)")
            return nil
        }
    }

    /// Per space, per author, the envelope `n` holds ending at its vector's entry (the head tags).
    func feedHeads(_ n: Int, _ spaces: [SpaceID: FeedVector]) -> [SpaceID: [SigningPublicKey: FeedHead]] {
        do { return try nodes[n].live.store.feedHeads(spaces) } catch {
            fail("\(nodes[n].name): cannot read its feed heads: \(error)")
            return [:]
        }
    }

    /// The peer's head tags against what node `n` holds at the same positions: honest nodes never
    /// fork a feed, power losses included (the durability rule), so any mismatch is a failure.
    func checkHeads(_ item: SpaceVector, _ n: Int, peer: Int) {
        guard let node = nodes[n].node else { return }
        stats.headChecks += 1
        do {
            let found = try item.mismatches { try node.store.storedEnvelope(space: item.space, author: $0, covering: $1) }
            for m in found {
                fail("\(nodes[n].name): the head tags of \(nodes[peer].name) show a fork of \(m) in space \(item.space.hex.prefix(6))")
            }
        } catch {
            fail("\(nodes[n].name): cannot compare head tags: \(error)")
        }
    }

    func connect(_ l: LinkKey) {
        guard canConnect(l) else { return }
        let (x, y) = below(2) == 0 ? (l.a, l.b) : (l.b, l.a)
        guard let spacesX = sessionSpaces(x, with: y), let spacesY = sessionSpaces(y, with: x) else { return }
        // With the feed heads the daemon gives its sessions, so the head-tag digests and the
        // fork check at equal vectors run here too (see `checkHeads`).
        let sx = SyncSession(
            configuration: SyncConfiguration(role: nodes[x].role, spaces: spacesX, heads: feedHeads(x, spacesX), limits: nodeLimits[x]),
            peer: nodes[y].publicKey)
        let sy = SyncSession(
            configuration: SyncConfiguration(role: nodes[y].role, spaces: spacesY, heads: feedHeads(y, spacesY), limits: nodeLimits[y]),
            peer: nodes[x].publicKey)
        connections.removeAll { $0.isDead && $0.toward[0].isEmpty && $0.toward[1].isEmpty }
        let shared = Set(spacesX.keys).intersection(spacesY.keys)
        let c = SimConnection(
            id: stats.connections, nodes: [x, y], sessions: [sx, sy], rosters: [x, y].map { n in rosterSizes(n, shared) })
        trace("connect \(nodes[x].name)-\(nodes[y].name) #\(c.id): \(spacesX.keys.map { $0.hex.prefix(6) }.sorted()) / \(spacesY.keys.map { $0.hex.prefix(6) }.sorted())")
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
                if from != nodes[c.nodes[1 - side]].publicKey {
                    fail("\(nodes[n].name): a session delivered envelopes attributed to \(from), not its peer")
                }
                c.work[side].append(.deliver(space, envelopes))
            case .peerHeads(let item):
                checkHeads(item, n, peer: c.nodes[1 - side])
            case .peerProgress, .attachment, .claims, .unreachable:
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

    /// Every event that could happen now: due packets (the first of each direction), end-of-stream
    /// notices, and node work.
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
                do {
                    var r: (envelopes: [Envelope], complete: Bool)
                    if !healing && percent(faults.shuffle) {
                        r = reordered(try n.live.envelopes(space: space, after: after, limit: limit.scaled(4)), limit)
                    } else {
                        r = try n.live.envelopes(space: space, after: after, limit: limit)
                    }
                    perform(c.sessions[side].fetched(space: space, envelopes: r.envelopes, complete: r.complete), c, side)
                } catch {
                    fail("\(n.name): serving a fetch failed: \(error)")
                }
            case .deliver(let space, let envs):
                note(7, c.id, envs.count)
                deliver(envs, space: space, to: n, c, side)
            }
        }
    }

    /// Another answer to a fetch the protocol allows (a peer need not send in its store order):
    /// from a larger read, the authors interleaved at random, each author's envelopes still in
    /// chain order, cut to `limit`. A change may then come before another author's change it
    /// depends on.
    func reordered(_ read: (envelopes: [Envelope], complete: Bool), _ limit: FetchLimit) -> (envelopes: [Envelope], complete: Bool) {
        var out: [Envelope] = []
        var bytes = 0
        for e in interleave(read.envelopes) {
            if !out.isEmpty && (out.count >= limit.envelopes || bytes + e.bytes.count > limit.bytes) { return (out, false) }
            out.append(e)
            bytes += e.bytes.count
        }
        return (out, read.complete)
    }

    func interleave(_ envelopes: [Envelope]) -> [Envelope] {
        var queues: [SigningPublicKey: ArraySlice<Envelope>] = [:]
        var authors: [SigningPublicKey] = []
        for e in envelopes {
            if queues[e.header.author] == nil { authors.append(e.header.author) }
            queues[e.header.author, default: []].append(e)
        }
        var out: [Envelope] = []
        while !authors.isEmpty {
            let i = below(authors.count)
            let a = authors[i]
            out.append(queues[a]!.removeFirst())
            if queues[a]!.isEmpty { authors.remove(at: i) }
        }
        return out
    }

    /// A session's delivery: the node verifies, stores and applies the batch in one transaction
    /// (`Node.receiveEnvelopes`, as the daemon's driver calls it), then the session acks.
    /// Sometimes a crash is armed inside that transaction (``FaultModel/midTransactionCrash``).
    func deliver(_ envs: [Envelope], space: SpaceID, to n: SimNode, _ c: SimConnection, _ side: Int) {
        let armed = !healing && percent(faults.midTransactionCrash)
        if armed { SimDisk.armCrash(n.directory, afterWrites: below(24)) }
        let report: ReceiveReport
        do {
            report = try n.live.receiveEnvelopes(space: space, envs)
        } catch {
            if SimDisk.isFrozen(n.directory) {
                stats.midTransactionCrashes += 1
                crash(n.index)
            } else {
                fail("\(n.name): receiving \(envs.count) envelopes failed: \(error)")
            }
            return
        }
        record(report, at: n)
        trace(
            "\(n.name) <- \(nodes[c.nodes[1 - side]].name) \(space.hex.prefix(6)): \(envs.map { "\(nodeName($0.header.author))/\($0.header.seqStart)-\($0.header.seqEnd)@\($0.header.epoch == ControlEntry.publicEpoch ? "c" : String($0.header.epoch))" }) accepted \(report.accepted.count) held \(report.held.map(\.reason)) refused \(report.refused.map { "\($0.envelope.header.seqStart):\($0.error.code)" }) released \(report.released) refusedChanges \(report.refusedChanges.map(\.reason))")
        if armed {
            SimDisk.armCrash(n.directory, afterWrites: -1)
            // Committed, not yet acknowledged: sometimes the node dies right there.
            if below(3) == 0 {
                crash(n.index)
                return
            }
        }
        stats.envelopesAccepted += report.accepted.count
        n.acknowledged[space, default: FeedVector()].merge(report.holds)
        perform(c.sessions[side].stored(space: space, vector: report.holds), c, side)
        announce(n.index)
    }

    /// Counts a receive's refusals; a fork is always a failure.
    func record(_ report: ReceiveReport, at n: SimNode) {
        n.duplicates += report.duplicates.count
        stats.held += report.held.count
        for (e, error) in report.refused {
            n.refused[error.code, default: 0] += 1
            if error.code == .fork {
                fail("\(n.name): saw a feed fork by \(nodeName(e.header.author)) at seq \(e.header.seqStart): \(error.message)")
            }
        }
    }

    func nodeName(_ key: SigningPublicKey) -> String {
        nodes.first { $0.publicKey == key }?.name ?? (intruders.values.contains { $0.keys.publicKey == key } ? "intruder" : "\(key)")
    }

    /// Tells every live session of node `n` about the envelopes it stored since the last time
    /// (its own writes, what it received, what an admin's heal wrote), as the daemon's poller does.
    func announce(_ n: Int) {
        guard let node = nodes[n].node else { return }
        while true {
            let batch: (envelopes: [(space: SpaceID, envelope: Envelope)], position: Int64)
            do { batch = try node.newEnvelopes(after: nodes[n].logPosition) } catch {
                fail("\(nodes[n].name): reading its new envelopes failed: \(error)")
                return
            }
            guard !batch.envelopes.isEmpty else { return }
            nodes[n].logPosition = batch.position
            var stored = batch.envelopes
            if !healing && percent(faults.shuffle) {
                // Pushed in another order the protocol allows (each author's in chain order).
                let order = interleave(stored.map(\.envelope))
                stored = order.map { e in (stored.first { $0.envelope.id == e.id }!.space, e) }
            }
            var bySpace: [SpaceID: [Envelope]] = [:]
            var order: [SpaceID] = []
            for (s, e) in stored {
                if bySpace[s] == nil { order.append(s) }
                bySpace[s, default: []].append(e)
            }
            for c in connections where !c.isDead {
                guard let side = c.side(of: n), !c.closed[side] else { continue }
                for s in order { perform(c.sessions[side].localEnvelopes(space: s, bySpace[s]!), c, side) }
            }
        }
    }

    // MARK: Clients

    /// The simulated spaces `n` carries as a member (it may have been removed from some: its
    /// writes there are refused, and not acknowledged).
    func memberSpaces(_ n: SimNode) -> [SpaceID] {
        guard n.isMember, let node = n.node, let carried = try? node.carriedSpaces() else { return [] }
        return spaceIDs.filter { carried[$0] != nil }
    }

    func clientWrite() {
        let ups = (0..<config.members).filter { nodes[$0].isUp }
        guard !ups.isEmpty else { return }
        let n = nodes[ups[below(ups.count)]]
        let carried = memberSpaces(n)
        guard !carried.isEmpty else { return }
        let space = carried[below(carried.count)]
        let grouped = below(2) == 0
        let count = 1 + below(3)
        let docs = workloadDocs[space] ?? []
        // What the client was told: the changes committed (and what they made).
        var changes: [Change] = []
        var committed = Workload.Made()
        // The write under way.
        var attempted: [Change] = []
        var made = Workload.Made()
        writeCounter += 1
        let tag = "\(config.seed)-\(writeCounter)"
        let time = clock.wallMillis
        let crashes = armWriteCrash(n)
        func edit(_ tx: inout Transaction, _ st: inout DocumentsInTransaction) throws {
            try Workload.randomEdit(&tx, &st, docs: docs, rng: &rng, tag: tag, made: &made)
        }
        func told() {
            changes += attempted
            committed.documents += made.documents
            committed.appends += made.appends
            attempted = []
            made = Workload.Made()
        }
        do {
            if grouped {
                // One transaction, sealed as one envelope.
                _ = try n.live.store.write(space: space, signer: n.keys) { w in
                    for _ in 0..<count {
                        if let c = try w.change(time: time, edit).change { attempted.append(c) }
                    }
                }
                told()
            } else {
                // One transaction (and envelope) per change, each acknowledged as it commits.
                for _ in 0..<count {
                    if let c = try n.live.store.change(space: space, signer: n.keys, time: time, edit).change {
                        attempted = [c]
                    }
                    told()
                }
            }
        } catch {
            // With the planted bug the client was told before the commit that never came.
            if writeFailed(n, error, crashes: crashes) { told() }
        }
        disarm(n)
        guard !changes.isEmpty else { return }
        stats.writes += 1
        trace("\(n.name) writes \(changes.map(\.id)) in \(space.hex.prefix(6))")
        note(8, n.index, changes.count)
        acknowledge(changes, in: space, by: n)
        workloadDocs[space, default: []] += committed.documents
        for a in committed.appends { ackedAppends.append(AckedAppend(space: space, author: n.index, doc: a.doc, field: a.field, value: a.value)) }
        if n.isUp { announce(n.index) }
    }

    /// Acknowledges committed changes to the client: from here on they must never be lost.
    func acknowledge(_ changes: [Change], in space: SpaceID, by n: SimNode) {
        for c in changes { acked.append(AckedWrite(space: space, change: c.id, author: n.index)) }
        stats.changesAcknowledged += changes.count
    }

    /// Arms a crash inside a local write's transaction (chaos), or (the planted bug
    /// `ackBeforeCommit`) acknowledges first and lets the write die. Returns whether armed.
    func armWriteCrash(_ n: SimNode) -> Bool {
        if config.plantedBug == .ackBeforeCommit && below(4) == 0 {
            SimDisk.armCrash(n.directory, afterWrites: 0)
            return true
        }
        guard !healing && percent(faults.midTransactionCrash) else { return false }
        SimDisk.armCrash(n.directory, afterWrites: below(16))
        return true
    }

    func disarm(_ n: SimNode) {
        if n.isUp { SimDisk.armCrash(n.directory, afterWrites: -1) }
    }

    /// A local write threw: a crash armed in it (the node is down now; with the planted bug the
    /// client was told anyway), a refusal (the client sees an error, nothing is acknowledged), or
    /// a failure. Returns whether the caller should go on as if the write had been acknowledged.
    func writeFailed(_ n: SimNode, _ error: any Error, crashes: Bool) -> Bool {
        if crashes && SimDisk.isFrozen(n.directory) {
            stats.midTransactionCrashes += 1
            crash(n.index)
            return config.plantedBug == .ackBeforeCommit
        }
        disarm(n)
        if let e = error as? StorageError, e.code == .notAMember || e.code == .notAllowed || e.code == .notFound { return false }
        if error is EditError { return false }
        fail("\(n.name): a local write failed: \(error)")
        return false
    }

    // MARK: Faults

    func crashRandomNode() {
        let up = nodes.indices.filter { nodes[$0].isUp }
        guard up.count > 1 else { return }
        let n = up[below(up.count)]
        if config.powerLoss && percent(faults.powerLoss) {
            losePower(n)
        } else {
            crash(n)
        }
    }

    /// Node `n` dies: its files freeze with whatever SQLite committed, its connections drop.
    func crash(_ n: Int) {
        trace("\(nodes[n].name) crashes")
        stats.crashes += 1
        note(9, n)
        if !nodes[n].crash() { fail("\(nodes[n].name): database files still open after closing it (a crash would not be one)") }
        dropConnections(of: n)
    }

    /// Node `n` loses power: a crash, and its database files rewind to their last fsync.
    func losePower(_ n: Int) {
        trace("\(nodes[n].name) loses power")
        stats.crashes += 1
        stats.powerLosses += 1
        note(16, n)
        lostPower.insert(n)
        if !nodes[n].losePower() { fail("\(nodes[n].name): its files could not be rewound to their last fsync") }
        // What it had acknowledged to peers may be gone (received data can be fetched again).
        nodes[n].acknowledged = [:]
        dropConnections(of: n)
    }

    func dropConnections(of n: Int) {
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
        trace("\(nodes[n].name) restarts")
        note(10, n)
        do {
            if let problem = try nodes[n].restart() {
                fail("\(nodes[n].name): PRAGMA integrity_check after a crash: \(problem)")
            }
            stats.integrityChecks += 1
        } catch {
            fail("\(nodes[n].name): does not reopen after a crash: \(error)")
            return
        }
        checkAfterRestart(nodes[n])
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

    /// How many control changes node `n` has accepted in each of `spaces`.
    func rosterSizes(_ n: Int, _ spaces: Set<SpaceID>) -> [SpaceID: Int] {
        var out: [SpaceID: Int] = [:]
        for s in spaces { out[s] = (try? nodes[n].node?.store.roster(s).accepted.count) ?? 0 }
        return out
    }

    /// Closes (politely) the live sessions of node `only` (of every node when nil) that are
    /// stale, so they reopen (``SimConfig/renewSessions``): a session whose node now carries
    /// other spaces for that peer, or (`behind`) a settled session whose node lacks envelopes the
    /// peer holds and has accepted control changes since it opened (what it refused then, an
    /// author not admitted yet or a key not received, it may take now, but the peer sends
    /// nothing twice in one session). Returns whether it closed any.
    @discardableResult
    func renewSessions(of only: Int? = nil, behind: Bool = false) -> Bool {
        guard config.renewSessions else { return false }
        var renewed = false
        for c in connections where !c.isDead && !c.closed[0] && !c.closed[1] {
            if let only, c.side(of: only) == nil { continue }
            var stale = false
            for side in 0..<2 {
                let n = c.nodes[side]
                guard nodes[n].isUp, let want = sessionSpaces(n, with: c.nodes[1 - side]) else { continue }
                if Set(want.keys) != Set(c.sessions[side].configuration.spaces.keys) { stale = true }
                guard behind, c.sessions[side].isSettled else { continue }
                let now = rosterSizes(n, Set(c.rosters[side].keys))
                for (s, before) in c.rosters[side] where (now[s] ?? 0) > before {
                    if let st = c.sessions[side].status(of: s), st.changesWeLack > 0 { stale = true }
                }
            }
            guard stale else { continue }
            stats.renewals += 1
            note(17, c.id)
            for side in 0..<2 where !c.closed[side] { perform(c.sessions[side].close(), c, side) }
            renewed = true
        }
        return renewed
    }

    // MARK: Healing

    /// Lifts every fault, restarts every node and runs until nothing is pending and every link is settled.
    func heal() {
        healing = true
        partitioned = []
        clogged = []
        swizzle = []
        for n in nodes.indices where !nodes[n].isUp { restart(n) }
        guard failures.isEmpty else { return }
        if rawFaultsHappened {
            // Sessions that saw a broken stream may wait forever on a lost frame: start afresh
            // (under Noise, the corrupted frame would have failed authentication and closed them).
            for c in connections where !c.isDead {
                c.toward = [[], []]
                for side in 0..<2 where !c.closed[side] { perform(c.sessions[side].connectionLost(), c, side) }
            }
        }
        let deadline = now + config.maxHealMilliseconds
        while stats.healSteps < config.maxHealSteps && now < deadline && failures.isEmpty {
            stats.healSteps += 1
            for l in links where canConnect(l) { connect(l) }
            if runOneEvent() { continue }
            if quiescent() {
                if renewSessions(behind: true) { continue }
                // Once converged (every member holds the membership log), rogue members try
                // again, and the network heals once more.
                if faults.rogue > 0 && !rogueRoundDone {
                    rogueRoundDone = true
                    for _ in 0...below(3) { rogueMembership() }
                    continue
                }
                // Then the clerks answer their inboxes (Letters.swift), and it heals once more.
                if !clerksRoundDone {
                    clerksRoundDone = true
                    clerksRound()
                    continue
                }
                return
            }
            // Nothing due: jump to the next due packet (or a second, for ticks and timeouts).
            let next = connections.flatMap { $0.toward.flatMap { $0.map(\.at) } }.min()
            advance(by: max(1, min(next.map { $0 > now ? $0 - now : 1 } ?? 1_000, 1_000)))
        }
        guard failures.isEmpty else { return }
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

extension FetchLimit {
    func scaled(_ k: Int) -> FetchLimit {
        FetchLimit(envelopes: envelopes.multipliedReportingOverflow(by: k).overflow ? .max : envelopes * k, bytes: bytes.multipliedReportingOverflow(by: k).overflow ? .max : bytes * k)
    }
}

extension Simulation {
    /// Runs one seed with the derived configuration.
    public static func run(
        seed: UInt64, members: Int? = nil, steps: Int? = nil, plantedBug: PlantedBug? = nil, chaos: Bool = false,
        powerLoss: Bool = true
    ) -> SimResult {
        var config = SimConfig.derived(seed: seed, members: members, steps: steps, chaos: chaos, powerLoss: powerLoss)
        config.plantedBug = plantedBug
        return Simulation(config).run()
    }

    /// The one-line command that replays a seed.
    public static func reproduction(_ r: SimResult, steps: Int? = nil) -> String {
        "saraban-sim --seeds 1 --start \(r.seed) --nodes \(r.members)" + (steps.map { " --steps \($0)" } ?? "")
    }
}
