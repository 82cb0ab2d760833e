import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

/// Three nodes exchange attachments through AttachmentSessions over in-memory chunk stores
/// (AttachmentNet): A, a member, attached them; R, a keyless relay, takes what A offers; B, a
/// member, fetches them from R or from A. Random interleavings of messages and store work, with
/// messages duplicated or altered by a peer, connections broken (losing what was in flight),
/// nodes crashing (losing the I/O not yet done, and on a power cut the writes not yet flushed),
/// A's own copy of a chunk rotting on disk and A sealing an attachment wrongly. Then the faults
/// stop, the links are dialled again until nothing moves, and:
/// - no chunk ever reached a store without matching the manifest committed by its root;
/// - every chunk held anywhere is byte-identical to what A sealed, and every attachment complete
///   at B opens to the original bytes;
/// - a member never keeps a chunk that does not open with the space key;
/// - R ends up holding every attachment A holds intact, B every one that also opens;
/// - no session had more than its window of chunks in flight.
///
/// Each seed prints a summary; replay one with
/// `SARABAN_SEED=<seed> swift test --filter SarabanSyncTests.AttachmentSimulationTests`.
@Suite struct AttachmentSimulationTests {
    static let seeds: [UInt64] = {
        if let s = testSeedOverride() { return [s] }
        return Array(1...200)
    }()

    @Test(arguments: seeds)
    func everyCompleteAttachmentIsIdenticalEverywhereAndNoChunkIsStoredUnchecked(seed: UInt64) {
        let run = AttachmentSimulation(seed: seed)
        run.run()
        let failures = run.check()
        print("seed \(seed): \(run.summary)")
        if !failures.isEmpty {
            print("seed \(seed) failed; replay with SARABAN_SEED=\(seed). Last events:\n" + run.net.log.suffix(40).joined(separator: "\n"))
        }
        #expect(failures.isEmpty, "seed \(seed): \(failures)")
    }
}

/// One seeded run of AttachmentNet (see AttachmentSimulationTests).
final class AttachmentSimulation {
    static let (a, r, b) = (0, 1, 2)

    let seed: UInt64
    let net: AttachmentNet
    let attachments: [SimAttachment]
    /// Attachments whose chunk rotted on A's disk (A still believes it holds them).
    let rotted: Set<Int>
    var faults: [String: Int] = [:]
    var rounds = 0

    init(seed: UInt64) {
        self.seed = seed
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15)
        let key = try! SymmetricKey(SecureBytes((0..<SymmetricKey.byteCount).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
        let nodes = [
            AttachmentSimNode("A", role: .member, key: key), AttachmentSimNode("R", role: .relay, key: nil),
            AttachmentSimNode("B", role: .member, key: key),
        ]
        var made: [SimAttachment] = []
        var rot = Set<Int>()
        for i in 0..<(1 + Int(rng.next() % 5)) {
            let bad = rng.next() % 6 == 0
            let att = SimAttachment(
                space: attachmentSimSpace, chunks: 1 + Int(rng.next() % 12), key: key, badlySealed: bad, rng: &rng)
            nodes[Self.a].store.manifests[att.root] = att.manifest
            var chunks = Dictionary(uniqueKeysWithValues: att.sealed.enumerated().map { ($0, $1) })
            if !bad && rng.next() % 6 == 0 {
                let c = Int(rng.next() % UInt64(att.sealed.count))
                chunks[c]![Int(rng.next() % UInt64(chunks[c]!.count))] ^= 0x20
                rot.insert(i)
            }
            nodes[Self.a].store.chunks[att.root] = chunks
            for n in [Self.a, Self.b] { nodes[n].letters[att.root] = (att.fileHash, att.sealed.count) }
            made.append(att)
        }
        attachments = made
        rotted = rot
        let window = 1 + Int(rng.next() % 8)
        let backlog = rng.next() % 3 == 0 ? 0 : Int(rng.next() % 300)
        let modes = ModeChooser(seed: rng.next())
        net = AttachmentNet(nodes: nodes, seed: rng.next(), window: window, backlogLimit: backlog, mode: { _, _ in .serve })
        net.mode = { [unowned net, attachments] me, peer in
            switch (me, peer) {
            case (Self.a, Self.r): modes.push() ? .push(stallTimeout: .seconds(5)) : .serve
            case (Self.b, _):
                // `letter fetch`: the attachments B lacks.
                .fetch(
                    attachments.filter { !net.nodes[Self.b].store.isComplete($0.root) }.map {
                        AttachmentTarget(space: $0.space, root: $0.root, chunks: $0.sealed.count)
                    }, stallTimeout: .seconds(10))
            default: .serve
            }
        }
    }

    private func count(_ fault: String) { faults[fault, default: 0] += 1 }

    /// The fault phase, then healing until nothing moves.
    func run() {
        let pairs = [(Self.a, Self.r), (Self.b, Self.r), (Self.b, Self.a)]
        net.connect(Self.a, Self.r)
        for _ in 0..<(300 + Int(net.rng.next() % 700)) {
            let dice = net.rng.next() % 1000
            let live = net.live.filter { !$0.queues[0].isEmpty || !$0.queues[1].isEmpty }
            if dice < 80, let link = live.randomElement(using: &net.rng) {
                let end = link.queues[0].isEmpty ? 1 : link.queues[1].isEmpty ? 0 : Int(net.rng.next() % 2)
                let corrupt = dice < 25
                count(corrupt ? "altered" : "duplicated")
                net.deliver(link, from: end, duplicate: !corrupt, corrupt: corrupt)
            } else if dice < 160 {
                net.tick(by: .milliseconds(50 + Int(net.rng.next() % 1500)))
            } else if dice < 240 {
                let (x, y) = pairs[Int(net.rng.next() % UInt64(pairs.count))]
                if !net.isLinked(x, y) { net.connect(x, y) }
            } else if dice < 270, let link = net.live.randomElement(using: &net.rng) {
                count("cut")
                net.close(link, "cut")
            } else if dice < 285 {
                let power = net.rng.next() % 2 == 0
                count(power ? "power cut" : "crash")
                net.crash(Int(net.rng.next() % 3), powerLoss: power)
            } else {
                net.step()
            }
        }
        // Heal: no more faults; links are dialled again (as the daemon and `letter fetch` would)
        // until every attachment that can travel has.
        var lastHeld = -1
        var still = 0
        while rounds < 400 && !converged {
            rounds += 1
            for (x, y) in pairs.prefix(2) where !net.isLinked(x, y) { net.connect(x, y) }
            net.settle()
            net.tick(by: .seconds(1))
            net.settle()
            let held = net.nodes.reduce(0) { $0 + $1.store.chunks.values.reduce(0) { $0 + $1.count } }
            still = held == lastHeld ? still + 1 : 0
            lastHeld = held
            if still >= 3 {
                // Nothing moved: hang up and dial again (a failed pull is retried in a new session).
                for link in net.live { net.close(link, "redial") }
                still = 0
            }
        }
    }

    /// Every intact attachment is complete at R, and every one that also opens at B.
    var converged: Bool {
        attachments.indices.allSatisfy { i in
            let root = attachments[i].root
            if rotted.contains(i) { return true }
            return net.nodes[Self.r].store.isComplete(root)
                && (attachments[i].badlySealed || net.nodes[Self.b].store.isComplete(root))
        }
    }

    func check() -> [String] {
        var failures: [String] = []
        for n in net.nodes { failures += n.violations }
        if !converged { failures.append("did not converge after \(rounds) rounds") }
        if net.peakInFlight > net.window { failures.append("\(net.peakInFlight) chunks in flight, window \(net.window)") }
        let byRoot = Dictionary(uniqueKeysWithValues: attachments.map { ($0.root, $0) })
        for n in [Self.r, Self.b] {
            let node = net.nodes[n]
            for (root, m) in node.store.manifests where byRoot[root]?.manifest != m {
                failures.append("\(node.name) holds a manifest for \(Hex.encode(root).prefix(12)) that is not A's")
            }
            for (root, chunks) in node.store.chunks {
                guard let att = byRoot[root] else {
                    failures.append("\(node.name) holds chunks of an unknown root")
                    continue
                }
                for (i, bytes) in chunks where bytes != att.sealed[i] {
                    failures.append("\(node.name) holds chunk \(i) of \(Hex.encode(root).prefix(12)) unlike A's sealed chunk")
                }
                if node.role == .member && att.badlySealed && !chunks.isEmpty {
                    failures.append("\(node.name) kept \(chunks.count) chunk(s) that do not open with the space key")
                }
            }
        }
        // What B holds completely opens to the original bytes.
        let b = net.nodes[Self.b]
        for att in attachments where b.store.isComplete(att.root) {
            let n = XChaCha20Poly1305.nonceByteCount
            let opened = (0..<att.sealed.count).map { i -> [UInt8]? in
                let c = b.store.chunks[att.root]![i]!
                let ad = SimAttachment.associatedData(fileHash: att.fileHash, index: i, count: att.sealed.count)
                return try? XChaCha20Poly1305.open(Array(c[n...]), key: b.key!, nonce: Array(c[..<n]), associatedData: ad)
            }
            if opened.map({ $0 ?? [] }) != att.plaintext { failures.append("B's copy of \(att.manifest.rootHex.prefix(12)) does not open to the original") }
        }
        return failures
    }

    var summary: String {
        let chunks = attachments.reduce(0) { $0 + $1.sealed.count }
        let f = faults.keys.sorted().map { "\($0) \(faults[$0]!)" }.joined(separator: ", ")
        return "\(attachments.count) attachments (\(chunks) chunks, \(rotted.count) rotted at A, "
            + "\(attachments.filter(\.badlySealed).count) badly sealed), window \(net.window), backlog \(net.backlogLimit) B; "
            + "\(net.links.count) connections, faults: \(f.isEmpty ? "none" : f); \(net.refusals.count) refusals; healed in \(rounds) rounds"
    }
}

/// The push-or-serve choice for A's sessions with R, from its own seed.
final class ModeChooser: @unchecked Sendable {
    private var rng: SplitMix64
    init(seed: UInt64) { rng = SplitMix64(seed: seed) }
    func push() -> Bool { rng.next() % 3 == 0 }
}
