import SarabanCore
import SarabanCrypto
import SarabanSync

// A deterministic network of AttachmentSessions over in-memory chunk stores, for the randomised
// attachment tests (AttachmentSimulationTests). Self-contained on purpose, so the main simulator
// can take it over: a simulated node keeps an `AttachmentChunkStore` (what a crash leaves is
// what was written and flushed), runs one `AttachmentSession` beside each of its SyncSessions,
// passes it the session's `.attachment(m)` actions and sends its `.send(m)` with
// `SyncSession.sendAttachment(m)`, and performs every other action with `perform(_:)` below.
// Here the SyncSession is left out: a connection is two ordered message queues (the transport's
// guarantee), and losing messages means breaking the connection and opening a new one.

/// One attachment as its author sealed it: what every copy must be byte-identical to.
struct SimAttachment {
    var space: SpaceID
    var manifest: AttachmentManifest
    var root: [UInt8] { manifest.root }
    /// The stored chunks: nonce ‖ XChaCha20-Poly1305 ciphertext.
    var sealed: [[UInt8]]
    var plaintext: [[UInt8]]
    /// The author's own bug: the chunks were sealed under the wrong associated data, so the root
    /// commits to them (a relay keeps them) but no member can open them.
    var badlySealed: Bool

    /// What a member checks each chunk with: the letter's hash of the file, and the chunk count.
    static func associatedData(fileHash: [UInt8], index: Int, count: Int) -> [UInt8] {
        Array("SIM-ATTACHMENT".utf8) + fileHash + [UInt8(index & 0xff), UInt8(index >> 8 & 0xff), UInt8(count & 0xff)]
    }

    var fileHash: [UInt8] { try! BLAKE2b.hash(plaintext.flatMap { $0 }, outputLength: 32) }

    init(space: SpaceID, chunks: Int, key: SymmetricKey, badlySealed: Bool, rng: inout SplitMix64) {
        self.space = space
        self.badlySealed = badlySealed
        plaintext = (0..<chunks).map { _ in (0..<(1 + Int(rng.next() % 48))).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        let hash = try! BLAKE2b.hash(plaintext.flatMap { $0 }, outputLength: 32)
        sealed = plaintext.enumerated().map { i, p in
            let nonce = (0..<XChaCha20Poly1305.nonceByteCount).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let ad = Self.associatedData(fileHash: hash, index: badlySealed ? i + 1 : i, count: chunks)
            return nonce + (try! XChaCha20Poly1305.seal(p, key: key, nonce: nonce, associatedData: ad))
        }
        manifest = AttachmentManifest(space: space, hashes: sealed.map { try! BLAKE2b.hash($0, outputLength: 32) })
    }
}

/// A node's chunk files in memory. Writes are whole-file (the node writes a temporary file and
/// renames it), but a power loss may lose the writes since the last flush.
struct AttachmentChunkStore {
    var manifests: [[UInt8]: AttachmentManifest] = [:]
    var chunks: [[UInt8]: [Int: [UInt8]]] = [:]
    /// Writes since the last flush, oldest first: (root, chunk index or nil for the manifest).
    var unflushed: [([UInt8], Int?)] = []

    func held(_ root: [UInt8]) -> [Int] {
        guard let m = manifests[root] else { return [] }
        return (chunks[root]?.keys.sorted() ?? []).filter { m.hashes.indices.contains($0) }
    }

    func isComplete(_ root: [UInt8]) -> Bool {
        manifests[root].map { held(root).count == $0.hashes.count } ?? false
    }

    /// Loses each write not yet flushed with probability 1/2 (a power cut), or none.
    mutating func loseUnflushed(_ rng: inout SplitMix64) {
        for (root, index) in unflushed.reversed() where rng.next() % 2 == 0 {
            if let index { chunks[root]?[index] = nil } else { manifests[root] = nil }
        }
        unflushed = []
    }
}

/// A simulated node: its role, its chunk store, and (a member) the space key and the letters it
/// knows, which tell it how to open each attachment's chunks.
final class AttachmentSimNode {
    let name: String
    let role: NodeRole
    var store = AttachmentChunkStore()
    let key: SymmetricKey?
    /// Attachments a member may fetch: root → (file hash, chunk count) as its letter lists them.
    var letters: [[UInt8]: (fileHash: [UInt8], count: Int)] = [:]
    /// Bugs caught: a chunk stored that does not match the manifest committed by its root.
    var violations: [String] = []

    init(_ name: String, role: NodeRole, key: SymmetricKey?) {
        self.name = name
        self.role = role
        self.key = key
    }

    /// Performs one I/O action of a session on this node's store; returns the session's input
    /// answering it (nil for actions that have none).
    func perform(_ action: AttachmentAction) -> ((inout AttachmentSession) -> [AttachmentAction])? {
        switch action {
        case .send, .refused, .settled:
            return nil
        case .loadManifest(_, let root):
            let m = store.manifests[root]
            return { $0.manifestLoaded(root: root, manifest: m) }
        case .readChunk(_, let root, let index):
            let bytes = store.manifests[root] == nil ? nil : store.chunks[root]?[index]
            return { $0.chunkRead(root: root, index: index, bytes: bytes) }
        case .loadHoldings(_, let roots):
            let h = roots.map { AttachmentHoldings(root: $0, manifest: store.manifests[$0], held: store.held($0)) }
            return { $0.holdingsLoaded(h) }
        case .storeManifest(let m):
            let root = m.root
            if store.manifests[root] == nil {
                store.manifests[root] = m
                store.unflushed.append((root, nil))
            }
            let held = store.held(root)
            return { $0.manifestStored(root: root, held: held) }
        case .storeChunk(_, let root, let index, let bytes):
            // The invariant: nothing reaches the store that the manifest committed by the root does not name.
            guard let m = store.manifests[root], m.root == root, m.matches(bytes, at: index) else {
                violations.append("\(name) was asked to store chunk \(index) of \(Hex.encode(root).prefix(12)) unchecked")
                return { $0.chunkRefused(root: root, index: index, reason: "unchecked") }
            }
            // A member opens the chunk with the space key first (the node's AttachmentExchange does too).
            if role == .member, let key, let letter = letters[root] {
                let n = XChaCha20Poly1305.nonceByteCount
                let ad = SimAttachment.associatedData(fileHash: letter.fileHash, index: index, count: letter.count)
                guard bytes.count > n,
                    (try? XChaCha20Poly1305.open(Array(bytes[n...]), key: key, nonce: Array(bytes[..<n]), associatedData: ad)) != nil
                else { return { $0.chunkRefused(root: root, index: index, reason: "does not open with the space key") } }
            }
            if store.chunks[root]?[index] == nil {
                store.chunks[root, default: [:]][index] = bytes
                store.unflushed.append((root, index))
            }
            return { $0.chunkStored(root: root, index: index) }
        case .findComplete(let spaces, let excluding):
            var found: [SpaceID: [[UInt8]]] = [:]
            for root in store.manifests.keys.sorted(by: { $0.lexicographicallyPrecedes($1) })
            where !excluding.contains(root) && store.isComplete(root) {
                if let s = store.manifests[root]?.space, spaces.contains(s) { found[s, default: []].append(root) }
            }
            return { $0.completeFound(found) }
        }
    }
}

/// One connection: an AttachmentSession at each end and the messages in flight each way, in order.
final class AttachmentLink {
    let ends: (Int, Int)
    var sessions: [AttachmentSession]
    /// Messages from end i to the other end, oldest first.
    var queues: [[AttachmentMessage]] = [[], []]
    /// I/O actions of end i not yet performed (answered in any order, like a store task).
    var pending: [[AttachmentAction]] = [[], []]
    var isDead = false
    var settlements: [AttachmentSettlement?] = [nil, nil]

    init(_ a: Int, _ b: Int, sessions: [AttachmentSession]) {
        ends = (a, b)
        self.sessions = sessions
    }

    func node(_ end: Int) -> Int { end == 0 ? ends.0 : ends.1 }
    var isIdle: Bool { queues.allSatisfy(\.isEmpty) && pending.allSatisfy(\.isEmpty) }
}

/// The nodes, their links, a virtual clock and every fault, driven from one seed.
final class AttachmentNet {
    var nodes: [AttachmentSimNode]
    var links: [AttachmentLink] = []
    var now = SyncInstant.seconds(1)
    var rng: SplitMix64
    /// Each session's mode when a link opens: (node index, peer index) → mode.
    var mode: (Int, Int) -> AttachmentSession.Mode
    var window: Int
    var backlogLimit: Int
    /// Most chunks in flight seen in one session, and the window it ran with.
    var peakInFlight = 0
    var refusals: [AttachmentRefusal] = []
    var log: [String] = []

    init(
        nodes: [AttachmentSimNode], seed: UInt64, window: Int, backlogLimit: Int,
        mode: @escaping (Int, Int) -> AttachmentSession.Mode
    ) {
        self.nodes = nodes
        rng = SplitMix64(seed: seed)
        self.window = window
        self.backlogLimit = backlogLimit
        self.mode = mode
    }

    var live: [AttachmentLink] { links.filter { !$0.isDead } }

    func isLinked(_ a: Int, _ b: Int) -> Bool { live.contains { Set([$0.ends.0, $0.ends.1]) == Set([a, b]) } }

    @discardableResult
    func connect(_ a: Int, _ b: Int) -> AttachmentLink {
        let make = { (me: Int, peer: Int) in
            AttachmentSession(
                configuration: .init(role: self.nodes[me].role, mode: self.mode(me, peer), window: self.window, backlogLimit: self.backlogLimit))
        }
        let link = AttachmentLink(a, b, sessions: [make(a, b), make(b, a)])
        links.append(link)
        log.append("connect \(nodes[a].name)-\(nodes[b].name)")
        for end in 0..<2 {
            let peerRole = nodes[link.node(1 - end)].role
            apply(link, end) { [now] in $0.open(peerRole: peerRole, sharedSpaces: [attachmentSimSpace], now: now) }
        }
        return link
    }

    /// Feeds one input to one end and routes its actions.
    func apply(_ link: AttachmentLink, _ end: Int, _ input: (inout AttachmentSession) -> [AttachmentAction]) {
        let actions = input(&link.sessions[end])
        peakInFlight = max(peakInFlight, link.sessions[end].chunksInFlight)
        for action in actions {
            switch action {
            case .send(let m):
                if !link.isDead { link.queues[end].append(m) }
            case .refused(let r):
                refusals.append(r)
            case .settled(let s):
                link.settlements[end] = s
                // A one-shot push or a fetch hangs up once settled.
                if s != .closed { close(link, "\(nodes[link.node(end)].name) settled: \(s)") }
            default:
                link.pending[end].append(action)
            }
        }
    }

    /// Breaks a link: messages in flight are lost; I/O already asked still lands (answers go to
    /// the closed sessions, which only count them).
    func close(_ link: AttachmentLink, _ why: String) {
        guard !link.isDead else { return }
        link.isDead = true
        link.queues = [[], []]
        log.append("close \(nodes[link.ends.0].name)-\(nodes[link.ends.1].name): \(why)")
        for end in 0..<2 { apply(link, end) { $0.close() } }
    }

    /// A node's process dies: its links break and the I/O it had not done is lost; a power cut
    /// also loses writes not yet flushed.
    func crash(_ n: Int, powerLoss: Bool) {
        log.append("crash \(nodes[n].name)\(powerLoss ? " (power)" : "")")
        for link in links where link.ends.0 == n || link.ends.1 == n {
            if link.ends.0 == n { link.pending[0] = [] }
            if link.ends.1 == n { link.pending[1] = [] }
            close(link, "crash")
        }
        if powerLoss { nodes[n].store.loseUnflushed(&rng) } else { nodes[n].store.unflushed = [] }
    }

    /// Delivers the oldest message of one direction (`duplicate`: twice, as a peer repeating itself would).
    func deliver(_ link: AttachmentLink, from end: Int, duplicate: Bool = false, corrupt: Bool = false) {
        guard !link.queues[end].isEmpty else { return }
        var m = link.queues[end].removeFirst()
        let sentNow = m
        apply(link, end) { [now] in $0.sent(sentNow, now: now) }
        if corrupt {
            // A peer sending garbage (the transport itself never alters a byte).
            let flip = UInt8(1 + rng.next() % 255)
            switch m {
            case .chunk(let s, let r, let i, var b):
                b[Int(rng.next() % UInt64(b.count))] ^= flip
                m = .chunk(space: s, root: r, index: i, bytes: b)
            case .manifest(let s, let r, var h):
                h[Int(rng.next() % UInt64(h.count))][Int(rng.next() % 32)] ^= flip
                m = .manifest(space: s, root: r, hashes: h)
            default:
                break
            }
            log.append("corrupt \(m.name)")
        }
        for _ in 0..<(duplicate ? 2 : 1) where !link.isDead {
            let msg = m
            apply(link, 1 - end) { [now] in $0.receive(msg, now: now) }
        }
    }

    /// Performs one pending I/O action of one end (`index`: which one, any order).
    func performIO(_ link: AttachmentLink, _ end: Int, index: Int) {
        let action = link.pending[end].remove(at: index)
        if let answer = nodes[link.node(end)].perform(action) { apply(link, end, answer) }
    }

    func tick(by d: Duration) {
        now = now + d
        for n in nodes.indices { nodes[n].store.unflushed = [] }  // flushed by now
        for link in live {
            for end in 0..<2 { apply(link, end) { [now] in $0.tick(now: now) } }
        }
    }

    /// One random event without faults: deliver a message, perform an I/O, or (rarely) let time pass.
    /// Returns false when nothing was in flight.
    @discardableResult
    func step() -> Bool {
        var choices: [(AttachmentLink, Int, Bool)] = []  // (link, end, isIO)
        for link in links {
            for end in 0..<2 {
                if !link.queues[end].isEmpty && !link.isDead { choices.append((link, end, false)) }
                if !link.pending[end].isEmpty { choices.append((link, end, true)) }
            }
        }
        guard !choices.isEmpty else { return false }
        let (link, end, io) = choices[Int(rng.next() % UInt64(choices.count))]
        if io {
            performIO(link, end, index: Int(rng.next() % UInt64(link.pending[end].count)))
        } else {
            deliver(link, from: end)
        }
        return true
    }

    /// Runs until nothing is in flight.
    func settle(maxSteps: Int = 200_000) {
        var n = 0
        while n < maxSteps && step() { n += 1 }
    }
}

let attachmentSimSpace = space(7)
