import Foundation
import SarabanCrypto
import SarabanStorage
import SarabanSync
import SarabanTransport

// Withholding is visible (Docs/SECURITY.md, "Withholding"): members sign head claims, every node
// keeps and passes on the latest per claimant, and after a session settles the node compares
// what it holds with the claims made before the session: an author it holds less of than a claim
// says exists was not delivered by that peer. Members whose latest claim is old show as stale.

/// One author's envelopes a peer did not deliver though a claim made before the session says
/// they exist: recorded per peer in `DIR/withheld.json` and shown by `status`, `inspect-sync` and
/// `peer list --json`.
public struct WithheldFeed: Codable, Sendable, Hashable {
    /// The space (32 hex digits).
    public var space: String
    /// The author's node id.
    public var author: String
    /// The sequence number this node holds of the author after the session.
    public var held: UInt64
    /// The sequence number the claim says exists.
    public var claimed: UInt64
    /// Who claimed it (node id) and when (its clock, ms since 1970).
    public var claimant: String
    public var claimTime: Int64
    /// When the session that did not deliver it settled (ms since 1970).
    public var detectedAt: Int64

    /// How far behind: changes of the author that exist and were not delivered (`claimed − held`).
    public var behind: UInt64

    enum CodingKeys: String, CodingKey {
        case space, author, held, claimed, claimant, behind
        case claimTime = "claim_time"
        case detectedAt = "detected_at"
    }

    public init(space: String, author: String, held: UInt64, claimed: UInt64, claimant: String, claimTime: Int64, detectedAt: Int64) {
        self.space = space
        self.author = author
        self.held = held
        self.claimed = claimed
        self.claimant = claimant
        self.claimTime = claimTime
        self.detectedAt = detectedAt
        behind = claimed > held ? claimed - held : 0
    }

    /// Per (space, author), the largest shortfall `claims` show against `held` for claims made
    /// at or before `cutoff` (ms, the claimants' clocks).
    public static func find(
        claims: [HeadClaim], held: FeedVector, cutoff: Int64, detectedAt: Int64
    ) -> [WithheldFeed] {
        var worst: [SigningPublicKey: WithheldFeed] = [:]
        for c in claims where c.time <= cutoff {
            for s in c.shortfall(of: held) where s.claimed > worst[s.author]?.claimed ?? 0 {
                worst[s.author] = WithheldFeed(
                    space: c.space.hex, author: s.author.nodeID.text, held: s.held, claimed: s.claimed,
                    claimant: c.claimant.nodeID.text, claimTime: c.time, detectedAt: detectedAt)
            }
        }
        return worst.values.sorted { $0.author < $1.author }
    }
}

/// A member of a space not heard from: its latest head claim is older than `stale_after`.
public struct StaleMember: Codable, Sendable, Hashable {
    public var space: String
    public var spaceName: String
    public var member: String
    /// Its latest claim's time (ms since 1970, its clock).
    public var lastClaim: Int64

    enum CodingKeys: String, CodingKey {
        case space, member
        case spaceName = "space_name"
        case lastClaim = "last_claim"
    }
}

extension NodeSyncDriver {
    /// Makes this node's claims where what it holds changed and returns the claims held of `spaces`.
    public func headClaims(
        for peer: NodeID, spaces: [SpaceID: FeedVector], heads: [SpaceID: [SigningPublicKey: FeedHead]]
    ) async throws -> [SpaceID: [HeadClaim]] {
        let storage = self.storage
        return try await blocking { try storage.headClaims(spaces: Set(spaces.keys), heads: heads) }
    }

    public func localClaims() -> AsyncStream<StoredClaims> { claimBroadcast.subscribe() }

    public func localClaims(deliver: @escaping @Sendable (StoredClaims) -> Void) -> @Sendable () -> Void {
        claimBroadcast.subscribe(deliver)
    }

    /// Makes this node's claims of its spaces where what it holds changed (or the last grew old)
    /// and passes the new ones to the open sessions: long-running sessions (`serve`) keep other
    /// nodes hearing from this one. Returns how many were made.
    @discardableResult
    public func refreshOwnClaims() throws -> Int {
        let t = now()
        let spaces = try storage.carriedSpaces()
        let made = try storage.refreshedClaims(spaces: Set(spaces.keys), heads: try storage.feedHeads(spaces))
        let me = storage.nodeID.publicKey
        var count = 0
        for (space, claims) in made.sorted(by: { $0.key < $1.key }) {
            let fresh = claims.filter { $0.claimant == me && $0.time >= t }
            guard !fresh.isEmpty else { continue }
            count += fresh.count
            claimBroadcast.publish(StoredClaims(space: space, claims: fresh, from: nil))
        }
        return count
    }

    /// Keeps this node's claims fresh every `interval` until cancelled (see ``refreshOwnClaims()``).
    public func runClaimRefresher(interval: Duration) async {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            do { _ = try await blocking { [self] in try refreshOwnClaims() } } catch {
                logger.warning("making this node's head claims failed: \(error)")
            }
        }
    }

    /// Keeps the claims that verify and passes the new ones on. Those of claimants not known as
    /// members yet wait (``PendingClaims``: at most 1,024 per space, the newest per claimant) and
    /// are tried again whenever envelopes of the space are accepted (the change that admits them
    /// may still be on the way) and when a session settles; other refusals are logged.
    public func receiveClaims(space: SpaceID, claims: [HeadClaim], from peer: NodeID) async {
        await keep(space: space, claims, from: peer)
    }


    func keep(space: SpaceID, _ claims: [HeadClaim], from peer: NodeID?) async {
        let storage = self.storage
        do {
            let r = try await blocking { try storage.keepClaims(space: space, claims) }
            if !r.keptClaims.isEmpty { claimBroadcast.publish(StoredClaims(space: space, claims: r.keptClaims, from: peer)) }
            let waiting = Set(r.notMembers.map { $0.claimant.nodeID.text })
            lock.withLock { pendingClaims.update(space, kept: r.keptClaims, waiting: r.notMembers) }
            for why in r.refused where !waiting.contains(where: { why.hasPrefix($0 + ":") }) {
                logger.warning("head claim refused: \(why)", metadata: ["peer": "\(peer.map(\.text) ?? "-")", "space": "\(space.hex)"])
            }
        } catch {
            logger.warning("cannot keep head claims: \(error)", metadata: ["peer": "\(peer.map(\.text) ?? "-")"])
        }
    }

    /// Tries once more the claims of `space` that waited for their claimants' membership.
    func retryPendingClaims(_ space: SpaceID) async {
        guard let pending = lock.withLock({ pendingClaims.take(space) }) else { return }
        await keep(space: space, pending, from: nil)
    }

    /// Compares what this member holds of each shared space with the claims made at least the
    /// grace before now (in a session that just settled, the peer has given everything it
    /// announced, and pushes what it stores at once); reports what the peer did not deliver.
    public func settled(with peer: NodeID, role: NodeRole, spaces: [SpaceSyncStatus]) async {
        for s in spaces { await retryPendingClaims(s.space) }
        guard storage.role == .member else { return }
        let storage = self.storage
        let t = now()
        let cutoff = t - withholdingGrace
        do {
            let claims = try await blocking { try storage.heldClaims(spaces.map(\.space)) }
            var found: [WithheldFeed] = []
            for s in spaces {
                found += WithheldFeed.find(claims: claims[s.space] ?? [], held: s.local, cutoff: cutoff, detectedAt: t)
            }
            // Logged once per peer and finding (the report stays in withheld.json until it clears).
            let keys = Set(found.map(\.key))
            let seen = lock.withLock {
                let before = reported[peer] ?? []
                reported[peer] = keys.union(before.filter { k in !spaces.contains { $0.space.hex == k[0] } })
                return before
            }
            for w in found where !seen.contains(w.key) {
                logger.warning(
                    "\(role) \(peer) did not deliver \(w.behind) change(s) of \(w.author) in space \(w.space) that \(w.claimant)'s claim says exist (held \(w.held), claimed \(w.claimed))",
                    metadata: ["peer": "\(peer)", "space": "\(w.space)", "author": "\(w.author)"])
            }
            onWithholding?(peer, Set(spaces.map(\.space)), found)
        } catch {
            logger.warning("cannot compare the head claims with what this node holds: \(error)", metadata: ["peer": "\(peer)"])
        }
    }
}

extension PeerStatusBook {
    /// Replaces what `peer` withheld in `spaces` by `found` (the latest settled session's view)
    /// and writes `DIR/withheld.json` when it changed (rare, like forks: never per session), in a
    /// flush begun now, after the peer's status rows (its cursors, which `inspect-sync --offline`
    /// compares the report with). Without a data directory (a relay process on a shared store)
    /// nothing is recorded; relays make no withholding report.
    public func recordWithholding(_ peer: NodeID, spaces: Set<SpaceID>, _ found: [WithheldFeed]) {
        guard forksDirectory != nil else { return }
        lock.withLock { pendingWithholding.append((peer, spaces, found)) }
        Task { await flush() }
    }

    func writeWithholding(_ peer: NodeID, spaces: Set<SpaceID>, _ found: [WithheldFeed]) {
        guard let directory = forksDirectory else { return }
        let hexes = Set(spaces.map(\.hex))
        do {
            try ConfigFileLock.withLock(directory) { () throws(NodeError) in
                var all = Self.withheldFile(directory)
                let before = all[peer.text] ?? []
                let list = before.filter { !hexes.contains($0.space) } + found
                // Kept when only the time it was found again changed.
                guard before.map(\.key) != list.map(\.key) else { return }
                all[peer.text] = list.isEmpty ? nil : list
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                var data = (try? enc.encode(all)) ?? Data("{}".utf8)
                data.append(0x0A)
                try Node.replaceFile(directory.path + "/withheld.json", with: data, mode: 0o644)
            }
        } catch {
            // The driver logged the finding already; the next settled session finds it again.
        }
    }

    /// What `DIR/withheld.json` holds, by peer node id (empty when missing or unreadable); a peer
    /// it lacks keeps what an older saraban recorded in `peers.json`.
    public static func withheld(_ directory: DataDirectory) -> [String: [WithheldFeed]] {
        var out = legacyFile(directory).compactMapValues(\.withheld)
        for (peer, list) in withheldFile(directory) { out[peer] = list }
        return out
    }

    static func withheldFile(_ directory: DataDirectory) -> [String: [WithheldFeed]] {
        guard let data = FileManager.default.contents(atPath: directory.path + "/withheld.json"),
            let all = try? JSONDecoder().decode([String: [WithheldFeed]].self, from: data)
        else { return [:] }
        return all
    }
}

extension WithheldFeed {
    var key: [String] { [space, author, "\(held)", "\(claimed)", claimant, "\(claimTime)"] }
}

extension Node {
    /// The storage behind sync for head claims: this node's claims and those it verified.
    /// `notSoonerThan`: while holdings change, no new claim until this long (ms) after the last.
    func headClaims(
        spaces: Set<SpaceID>, heads: [SpaceID: [SigningPublicKey: FeedHead]], notSoonerThan: Int64
    ) throws -> [SpaceID: [HeadClaim]] {
        var made = try store.refreshClaims(
            heads: heads.filter { spaces.contains($0.key) }, signer: identity, now: now(), refreshAfter: Self.claimRefresh,
            notSoonerThan: notSoonerThan)
        for (space, claims) in try store.headClaims(spaces.subtracting(made.keys)) { made[space] = claims }
        return made
    }

    /// A claim of unchanged holdings is made again after this long (ms), so members that sync
    /// but write nothing do not turn stale.
    public static let claimRefresh: Int64 = 3_600_000

    /// When a session opens, a claim is made again at most this often (ms) while holdings change:
    /// a new claim replaces the last at every member, so making one per session made an
    /// up-to-date sync of 10 spaces send 20 claims each way (9,866 bytes instead of 1,032). The
    /// daemon's refresher (`ServeOptions.claimInterval`, 5 minutes) is not held back by it.
    /// Withholding is then seen at most this much later (Docs/SECURITY.md, "Withholding").
    public static let claimInterval: Int64 = 60_000

    /// Members (this node left out) whose latest head claim is older than `stale_after`, per space.
    public func staleMembers() throws(NodeError) -> [StaleMember] {
        let limit = (try? currentConfig())?.staleAfterMilliseconds ?? config.staleAfterMilliseconds
        let t = now()
        let names = Dictionary(try spaces().map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let times: [ClaimTime]
        do { times = try store.claimTimes(excluding: identity.publicKey) } catch { throw NodeError(error) }
        return times.compactMap { c in
            guard let time = c.time, t - time > limit else { return nil }
            return StaleMember(space: c.space.hex, spaceName: names[c.space] ?? "", member: c.member.nodeID.text, lastClaim: time)
        }
    }

    /// What each peer did not deliver that claims say exists, as `DIR/withheld.json` recorded it.
    public func withheldByPeer() -> [(peer: String, withheld: [WithheldFeed])] {
        PeerStatusBook.withheld(dataDirectory).map { (peer: $0.key, withheld: $0.value) }.sorted { $0.peer < $1.peer }
    }
}

/// Claims refused only because their claimant is not a member yet, as far as the keeper knows
/// (its membership may arrive later in the same session): per space, the newest per claimant, at
/// most ``maximum`` per space. Kept by a member's driver and by a relay's ``RelayClaimKeeper``.
struct PendingClaims {
    static let maximum = 1024
    private var bySpace: [SpaceID: [SigningPublicKey: HeadClaim]] = [:]

    /// Forgets the claimants of `kept` and holds `waiting` (a newer claim replaces an older one).
    mutating func update(_ space: SpaceID, kept: [HeadClaim], waiting: [HeadClaim]) {
        var pending = bySpace[space] ?? [:]
        for c in kept { pending[c.claimant] = nil }
        for c in waiting where c.time > pending[c.claimant]?.time ?? .min {
            if pending[c.claimant] == nil && pending.count >= Self.maximum { continue }
            pending[c.claimant] = c
        }
        bySpace[space] = pending.isEmpty ? nil : pending
    }

    /// The claims of `space` waiting, removed (nil: none), to be tried again.
    mutating func take(_ space: SpaceID) -> [HeadClaim]? { bySpace.removeValue(forKey: space).map { Array($0.values) } }
}
