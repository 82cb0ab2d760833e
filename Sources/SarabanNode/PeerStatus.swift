import Foundation
import SarabanCrypto
import SarabanStorage
import SarabanSync
import SarabanTransport

/// What this node last knew about one peer (`saraban peer list`, `saraban status`), kept as rows in
/// the node's store (``PeerStatusBook``); an older saraban kept it in `DIR/peers.json`.
public struct PeerStatus: Codable, Sendable, Hashable {
    public var nodeID: String
    /// Last time a session with the peer was open (ms since 1970).
    public var lastContact: Int64?
    /// Last time a session with the peer reached "synced" (ms since 1970).
    public var lastSynced: Int64?
    /// Last dial attempt that failed, and why.
    public var lastFailure: Int64?
    public var lastError: String?
    /// Changes the peer lacks / this node lacks, summed over shared spaces, as of the last progress.
    public var changesPeerLacks: UInt64 = 0
    public var changesWeLack: UInt64 = 0
    /// Envelopes and wire bytes exchanged with the peer over all sessions.
    public var envelopesSent: Int = 0
    public var envelopesReceived: Int = 0
    public var bytesSent: Int = 0
    public var bytesReceived: Int = 0
    public var sessions: Int = 0
    /// Per shared space (hex id), what the peer held as of its last summary or ack: kept so that
    /// `saraban inspect-sync --offline` and `saraban status` can compare without dialling. Absent in
    /// files written before it existed.
    public var summaries: [String: RecordedSummary]?
    /// Forks this peer showed (its envelope differs from this node's at one position of a feed),
    /// oldest first, at most ``PeerStatusBook/maximumForks``. Absent when none was ever found.
    public var forks: [FeedFork]?
    /// What this peer did not deliver in its latest settled session though head claims made
    /// before it say it exists, per space and author. Absent when nothing was.
    public var withheld: [WithheldFeed]?

    public init(nodeID: String) { self.nodeID = nodeID }

    /// The peer's vectors as recorded, keyed by space (entries that do not parse are skipped).
    public var recordedVectors: [SpaceID: (vector: FeedVector, at: Int64)] {
        var out: [SpaceID: (vector: FeedVector, at: Int64)] = [:]
        for (hex, r) in summaries ?? [:] {
            guard let space = SpaceID(hex: hex), let v = r.vector else { continue }
            out[space] = (v, r.at)
        }
        return out
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id"
        case lastContact = "last_contact"
        case lastSynced = "last_synced"
        case lastFailure = "last_failure"
        case lastError = "last_error"
        case changesPeerLacks = "changes_peer_lacks"
        case changesWeLack = "changes_we_lack"
        case envelopesSent = "envelopes_sent"
        case envelopesReceived = "envelopes_received"
        case bytesSent = "bytes_sent"
        case bytesReceived = "bytes_received"
        case sessions, summaries, forks, withheld
    }
}

/// One space's vector as a peer last announced it (its summary, raised by its acks and by what it
/// sent): author node id (`sb…`) → highest sequence number held.
public struct RecordedSummary: Codable, Sendable, Hashable {
    /// When it was recorded (ms since 1970).
    public var at: Int64
    public var holds: [String: UInt64]

    public init(at: Int64, vector: FeedVector) {
        self.at = at
        holds = Dictionary(uniqueKeysWithValues: vector.sortedEntries.map { ($0.author.nodeID.text, $0.seq) })
    }

    /// The vector, or nil when an author id does not parse (a hand-edited file).
    public var vector: FeedVector? {
        var entries: [SigningPublicKey: UInt64] = [:]
        for (text, seq) in holds {
            guard let id = try? NodeID(parsing: text) else { return nil }
            entries[id.publicKey] = seq
        }
        return FeedVector(entries)
    }
}

/// Where per-peer status is kept: the node's SQLite database (``Node/peerStatusStore``) or a
/// relay's store (PostgreSQL). Applying changes touches only the rows they name.
public protocol PeerStatusStore: Sendable {
    func applyPeerStatus(_ changes: [PeerStatusChange]) async throws
    func peerStatuses() async throws -> [StoredPeerStatus]
}

/// The node's own database as a ``PeerStatusStore``.
struct SQLitePeerStatusStore: PeerStatusStore {
    let store: Store

    func applyPeerStatus(_ changes: [PeerStatusChange]) async throws {
        let store = self.store
        try await blocking { try store.applyPeerStatus(changes) }
    }

    func peerStatuses() async throws -> [StoredPeerStatus] {
        let store = self.store
        return try await blocking { try store.peerStatuses() }
    }
}

extension PeerStatus {
    /// The read model of a stored status (cursors as ``summaries``).
    public init(_ s: StoredPeerStatus) {
        self.init(nodeID: s.peer.nodeID.text)
        lastContact = s.lastContact
        lastSynced = s.lastSynced
        lastFailure = s.lastFailure
        lastError = s.lastError
        changesPeerLacks = s.changesPeerLacks
        changesWeLack = s.changesWeLack
        envelopesSent = s.envelopesSent
        envelopesReceived = s.envelopesReceived
        bytesSent = s.bytesSent
        bytesReceived = s.bytesReceived
        sessions = s.sessions
        if !s.cursors.isEmpty {
            summaries = Dictionary(
                uniqueKeysWithValues: s.cursors.map { ($0.key.hex, RecordedSummary(at: $0.value.at, vector: $0.value.vector)) })
        }
    }

    /// Statuses by node id: the stored rows, and for peers without one what an older saraban left
    /// in `DIR/peers.json` (read, never written any more).
    static func merged(_ stored: [StoredPeerStatus], legacy directory: DataDirectory?) -> [String: PeerStatus] {
        var out = directory.map(PeerStatusBook.legacyFile) ?? [:]
        for s in stored { out[s.peer.nodeID.text] = PeerStatus(s) }
        return out
    }
}

extension Node {
    /// This node's peer status store: rows in its SQLite database.
    public var peerStatusStore: any PeerStatusStore { SQLitePeerStatusStore(store: store) }

    /// Every peer's recorded status by node id (the database, and a legacy `peers.json` for peers it lacks),
    /// with the forks of `DIR/forks.json` and the withholding reports of `DIR/withheld.json`.
    public func peerStatuses() throws(NodeError) -> [String: PeerStatus] {
        let stored: [StoredPeerStatus]
        do { stored = try store.peerStatuses() } catch { throw NodeError(error) }
        var out = PeerStatus.merged(stored, legacy: dataDirectory)
        for f in PeerStatusBook.forksFile(dataDirectory) {
            if out[f.peer] == nil { out[f.peer] = PeerStatus(nodeID: f.peer) }
            if !(out[f.peer]!.forks ?? []).contains(where: { $0.isSame(as: f) }) { out[f.peer]!.forks = (out[f.peer]!.forks ?? []) + [f] }
        }
        for (peer, list) in PeerStatusBook.withheld(dataDirectory) {
            out[peer, default: PeerStatus(nodeID: peer)].withheld = list
        }
        return out
    }
}

/// The per-peer status of a node: session events are folded in memory into one
/// ``PeerStatusChange`` per peer and written to a ``PeerStatusStore`` by ``flush()``: one row per
/// peer heard from and one per (peer, space) cursor, never the other peers' (the daemon flushes
/// shortly after each session ends and every few seconds while sessions run).
public final class PeerStatusBook: @unchecked Sendable {
    let store: any PeerStatusStore
    let now: @Sendable () -> Int64
    let lock = NSLock()
    /// Per peer, what changed since the last flush.
    private var pending: [SigningPublicKey: PeerStatusChange] = [:]
    /// Per peer, per space, the lag of the current session (summed into the peer's row).
    private var lags: [SigningPublicKey: [SpaceID: (peer: UInt64, we: UInt64)]] = [:]
    private var flushScheduled = false
    /// The last flush started (each waits for the one before).
    private var lastFlush: Task<Void, Never>?
    /// Withholding reports not yet written (``recordWithholding(_:spaces:_:)``), oldest first:
    /// written by the flush after the peer's rows, so a report never shows before its session's cursors.
    var pendingWithholding: [(peer: NodeID, spaces: Set<SpaceID>, found: [WithheldFeed])] = []

    /// Where forks found in sessions are recorded (``recordFork(_:)``); nil: nowhere.
    let forksDirectory: DataDirectory?

    public init(
        store: any PeerStatusStore, forks directory: DataDirectory? = nil, now: @escaping @Sendable () -> Int64 = Node.systemClock
    ) {
        self.store = store
        self.forksDirectory = directory
        self.now = now
    }

    /// What an older saraban kept in `DIR/peers.json` (empty when missing or unreadable).
    static func legacyFile(_ directory: DataDirectory) -> [String: PeerStatus] {
        guard let data = FileManager.default.contents(atPath: directory.path + "/peers.json"),
            let list = try? JSONDecoder().decode([PeerStatus].self, from: data)
        else { return [:] }
        return Dictionary(list.map { ($0.nodeID, $0) }, uniquingKeysWith: { a, _ in a })
    }

    private func update(_ peer: SigningPublicKey, _ body: (inout PeerStatusChange) -> Void) {
        var c = PeerStatusChange(peer: peer)
        body(&c)
        lock.withLock { pending[peer, default: PeerStatusChange(peer: peer)].merge(c) }
    }

    /// Records a session event.
    public func record(_ event: PeerEvent) {
        let t = now()
        switch event {
        case .opened(let peer, _, _):
            lock.withLock { lags[peer.publicKey] = [:] }
            update(peer.publicKey) {
                $0.lastContact = t
                $0.sessions = 1
            }
        case .progress(let peer, let status):
            let all = lock.withLock { () -> (UInt64, UInt64) in
                lags[peer.publicKey, default: [:]][status.space] = (status.changesPeerLacks, status.changesWeLack)
                return lags[peer.publicKey]!.values.reduce((0, 0)) { ($0.0 + $1.peer, $0.1 + $1.we) }
            }
            update(peer.publicKey) {
                $0.lastContact = t
                $0.changesPeerLacks = all.0
                $0.changesWeLack = all.1
                $0.cursors[status.space] = PeerCursor(at: t, vector: status.peerHolds)
            }
        case .synced(let peer, _):
            update(peer.publicKey) {
                $0.lastContact = t
                $0.lastSynced = t
                $0.lastError = .clear
            }
        case .closed(let report):
            lock.withLock { _ = lags.removeValue(forKey: report.peer.publicKey) }
            update(report.peer.publicKey) {
                $0.envelopesSent = report.stats.envelopesSent
                $0.envelopesReceived = report.stats.envelopesReceived
                $0.bytesSent = report.wire.bytesSent
                $0.bytesReceived = report.wire.bytesReceived
                if !report.spaces.isEmpty {
                    $0.changesPeerLacks = report.spaces.reduce(0) { $0 + $1.changesPeerLacks }
                    $0.changesWeLack = report.spaces.reduce(0) { $0 + $1.changesWeLack }
                }
                if let e = report.transportError, !report.wasSynced {
                    $0.lastError = .set("\(e)")
                } else if let e = report.storeError {
                    $0.lastError = .set(e)
                }
            }
            scheduleFlush()
        }
    }

    /// The most forks kept per peer (the oldest go first).
    public static let maximumForks = 100

    /// Records a fork found in a session with `fork.peer`, once, in `DIR/forks.json` at once (an
    /// alarm, rare: written only when a fork is found, never per session). Without a data
    /// directory (a relay process on a shared store) the fork is only logged by the driver.
    public func recordFork(_ fork: FeedFork) {
        guard let directory = forksDirectory else { return }
        do {
            try ConfigFileLock.withLock(directory) { () throws(NodeError) in
                var list = Self.forksFile(directory)
                guard !list.contains(where: { $0.isSame(as: fork) }) else { return }
                list.append(fork)
                let mine = list.filter { $0.peer == fork.peer }
                if mine.count > Self.maximumForks {
                    let drop = Set(mine.prefix(mine.count - Self.maximumForks).map { "\($0)" })
                    list.removeAll { drop.contains("\($0)") }
                }
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                var data = (try? enc.encode(list)) ?? Data("[]".utf8)
                data.append(0x0A)
                try Node.replaceFile(directory.path + "/forks.json", with: data, mode: 0o644)
            }
        } catch {
            // The driver logged the fork as an error already; the next session finds it again.
        }
    }

    /// What `DIR/forks.json` holds (empty when missing or unreadable).
    static func forksFile(_ directory: DataDirectory) -> [FeedFork] {
        guard let data = FileManager.default.contents(atPath: directory.path + "/forks.json"),
            let list = try? JSONDecoder().decode([FeedFork].self, from: data)
        else { return [] }
        return list
    }

    /// Every fork recorded (`DIR/forks.json`, and those an older saraban kept in `peers.json`), oldest first.
    public static func forks(_ directory: DataDirectory) -> [FeedFork] {
        var all = forksFile(directory)
        for f in legacyFile(directory).values.flatMap({ $0.forks ?? [] }) where !all.contains(where: { $0.isSame(as: f) }) {
            all.append(f)
        }
        return all.sorted {
            ($0.detectedAt, $0.space, $0.author, $0.sequence) < ($1.detectedAt, $1.space, $1.author, $1.sequence)
        }
    }

    /// Records a dial that failed before any session opened.
    public func recordFailure(_ id: NodeID, _ error: String) {
        let t = now()
        update(id.publicKey) {
            $0.lastFailure = t
            $0.lastError = .set(error)
        }
    }

    /// Peers with changes not yet written.
    public var pendingCount: Int { lock.withLock { pending.count } }

    /// Writes what changed since the last flush, in one store call, after any flush already under
    /// way (so what was recorded before the call is written when it returns). Best effort: on
    /// failure the changes are kept (merged under anything recorded meanwhile) for the next flush.
    public func flush() async {
        let task = lock.withLock { () -> Task<Void, Never> in
            let previous = lastFlush
            let t = Task {
                await previous?.value
                await self.flushPending()
            }
            lastFlush = t
            return t
        }
        await task.value
    }

    private func flushPending() async {
        let (changes, withholding) = lock.withLock { () -> ([PeerStatusChange], [(peer: NodeID, spaces: Set<SpaceID>, found: [WithheldFeed])]) in
            defer {
                pending = [:]
                pendingWithholding = []
            }
            return (Array(pending.values), pendingWithholding)
        }
        defer { for w in withholding { writeWithholding(w.peer, spaces: w.spaces, w.found) } }
        guard !changes.isEmpty else { return }
        do { try await store.applyPeerStatus(changes) } catch {
            lock.withLock {
                for var c in changes {
                    if let later = pending[c.peer] { c.merge(later) }
                    pending[c.peer] = c
                }
            }
        }
    }

    /// Flushes about 100 ms from now (sessions ending meanwhile are written together).
    func scheduleFlush() {
        guard lock.withLock({ () -> Bool in
            if flushScheduled { return false }
            flushScheduled = true
            return true
        }) else { return }
        Task {
            try? await Task.sleep(for: .milliseconds(100))
            lock.withLock { flushScheduled = false }
            await flush()
        }
    }
}
