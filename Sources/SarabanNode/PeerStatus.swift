import Foundation
import SarabanCrypto
import SarabanSync
import SarabanTransport

/// What this node last knew about one peer, kept in `DIR/peers.json` for `saraban peer list`.
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
/// sent), in `peers.json`: author node id (`sb…`) → highest sequence number held.
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

/// The per-peer status of a node: updated in memory from ``PeerEvent``s and written to
/// `DIR/peers.json` (atomically, under the data directory's lock, merged with what other
/// processes wrote) when a session ends or every few seconds while sessions run.
public final class PeerStatusBook: @unchecked Sendable {
    let directory: DataDirectory
    let now: @Sendable () -> Int64
    private let lock = NSLock()
    private var entries: [String: PeerStatus] = [:]
    /// Per peer, per space, the lag of the current session (summed when saved).
    private var lags: [String: [SpaceID: (peer: UInt64, we: UInt64)]] = [:]
    /// Per peer, per space, the vector the peer holds as of the latest progress event, not yet
    /// written into `entries` (turned into a ``RecordedSummary`` only when saved).
    private var pendingSummaries: [String: [SpaceID: (vector: FeedVector, at: Int64)]] = [:]
    private var dirty: Set<String> = []

    public init(directory: DataDirectory, now: @escaping @Sendable () -> Int64 = Node.systemClock) {
        self.directory = directory
        self.now = now
    }

    public var path: String { directory.path + "/peers.json" }

    /// Reads `peers.json` (empty when missing or unreadable).
    public static func load(_ directory: DataDirectory) -> [String: PeerStatus] {
        guard let data = FileManager.default.contents(atPath: directory.path + "/peers.json"),
            let list = try? JSONDecoder().decode([PeerStatus].self, from: data)
        else { return [:] }
        return Dictionary(list.map { ($0.nodeID, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func update(_ id: NodeID, _ body: (inout PeerStatus) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        var s = entries[id.text] ?? PeerStatus(nodeID: id.text)
        body(&s)
        entries[id.text] = s
        dirty.insert(id.text)
    }

    /// Records a session event.
    public func record(_ event: PeerEvent) {
        let t = now()
        switch event {
        case .opened(let peer, _, _):
            lock.lock()
            lags[peer.text] = [:]
            lock.unlock()
            update(peer) {
                $0.lastContact = t
                $0.sessions += 1
            }
        case .progress(let peer, let status):
            lock.lock()
            lags[peer.text, default: [:]][status.space] = (status.changesPeerLacks, status.changesWeLack)
            pendingSummaries[peer.text, default: [:]][status.space] = (status.peerHolds, t)
            let all = lags[peer.text]!.values
            lock.unlock()
            update(peer) {
                $0.lastContact = t
                $0.changesPeerLacks = all.reduce(0) { $0 + $1.peer }
                $0.changesWeLack = all.reduce(0) { $0 + $1.we }
            }
        case .synced(let peer, _):
            update(peer) {
                $0.lastContact = t
                $0.lastSynced = t
                $0.lastError = nil
            }
        case .closed(let report):
            update(report.peer) {
                $0.envelopesSent += report.stats.envelopesSent
                $0.envelopesReceived += report.stats.envelopesReceived
                $0.bytesSent += report.wire.bytesSent
                $0.bytesReceived += report.wire.bytesReceived
                if !report.spaces.isEmpty {
                    $0.changesPeerLacks = report.spaces.reduce(0) { $0 + $1.changesPeerLacks }
                    $0.changesWeLack = report.spaces.reduce(0) { $0 + $1.changesWeLack }
                }
                if let e = report.transportError, !report.wasSynced {
                    $0.lastError = "\(e)"
                } else if let e = report.storeError {
                    $0.lastError = e
                }
            }
            save()
        }
    }

    /// The most forks kept per peer (the oldest go first).
    public static let maximumForks = 100

    /// Records a fork found in a session with `fork.peer`, once, and writes `peers.json` at once.
    public func recordFork(_ fork: FeedFork) {
        guard let peer = try? NodeID(parsing: fork.peer) else { return }
        var added = false
        update(peer) {
            var list = $0.forks ?? []
            guard !list.contains(where: { $0.isSame(as: fork) }) else { return }
            list.append(fork)
            if list.count > Self.maximumForks { list.removeFirst(list.count - Self.maximumForks) }
            $0.forks = list
            added = true
        }
        if added { save() }
    }

    /// Every fork recorded in `peers.json`, oldest first.
    public static func forks(_ directory: DataDirectory) -> [FeedFork] {
        load(directory).values.flatMap { $0.forks ?? [] }.sorted {
            ($0.detectedAt, $0.space, $0.author, $0.sequence) < ($1.detectedAt, $1.space, $1.author, $1.sequence)
        }
    }

    /// Records a dial that failed before any session opened.
    public func recordFailure(_ id: NodeID, _ error: String) {
        let t = now()
        update(id) {
            $0.lastFailure = t
            $0.lastError = error
        }
    }

    /// Writes what changed to `peers.json`, merging with entries other processes wrote. Best effort.
    public func save() {
        lock.lock()
        flushSummaries()
        let changed = dirty
        let mine = entries
        dirty = []
        lock.unlock()
        guard !changed.isEmpty else { return }
        do {
            try ConfigFileLock.withLock(directory) { () throws(NodeError) in
                var all = PeerStatusBook.load(directory)
                for id in changed { all[id] = mine[id] }
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                var data = (try? enc.encode(all.values.sorted { $0.nodeID < $1.nodeID })) ?? Data("[]".utf8)
                data.append(0x0A)
                try Node.replaceFile(path, with: data, mode: 0o644)
            }
        } catch {
            lock.lock()
            dirty.formUnion(changed)
            lock.unlock()
        }
    }

    /// Writes the peers' latest vectors into their entries' `summaries` (the lock is held).
    private func flushSummaries() {
        for (peer, spaces) in pendingSummaries {
            var summaries = entries[peer]?.summaries ?? [:]
            for (space, held) in spaces { summaries[space.hex] = RecordedSummary(at: held.at, vector: held.vector) }
            entries[peer, default: PeerStatus(nodeID: peer)].summaries = summaries
        }
        pendingSummaries = [:]
    }

    /// Starts from what the file says (so counters accumulate across runs).
    public func loadFromDisk() {
        let disk = Self.load(directory)
        lock.lock()
        for (k, v) in disk where entries[k] == nil { entries[k] = v }
        lock.unlock()
    }
}
