import Foundation
import Logging
import SarabanCrypto
import SarabanFeed
import SarabanSync
import SarabanTransport

/// A relay's head claims kept in its store for every relay process (PostgreSQL's
/// ``RelayClaimStore``; Docs/RELAY.md, "Head claims"). A claim is kept when it verifies, is of the
/// space it came in and `isMember` (the roster the relay's driver folded) has its claimant; a
/// claimant not a member yet waits until the session settles. Kept claims go to this process's
/// sessions at once; other processes hear of them by the store's notification
/// (``RelayStoreChange/claims(_:)``, passed to ``publish(of:)``).
///
/// Each space's claims are read once and remembered, kept current by the claims kept here and
/// those announced, and forgotten when a notification may have been missed (``forgetAll()``), so a
/// session's hello costs no query.
final class RelayClaimKeeper: @unchecked Sendable {
    let store: any RelayClaimStore
    let isMember: @Sendable (SpaceID, SigningPublicKey) -> Bool
    let now: @Sendable () -> Int64
    let metrics: RelayMetrics
    let logger: Logger
    private let broadcast = Broadcast<StoredClaims>()
    private let lock = NSLock()
    private var pending = PendingClaims()
    /// Per space read once, the claims the store holds (empty: none).
    private var cache: [SpaceID: [HeadClaim]] = [:]
    /// Bumped by every change to ``cache``: a read begun before one does not fill it.
    private var generation = 0

    init(
        store: any RelayClaimStore, isMember: @escaping @Sendable (SpaceID, SigningPublicKey) -> Bool,
        now: @escaping @Sendable () -> Int64, metrics: RelayMetrics, logger: Logger
    ) {
        self.store = store
        self.isMember = isMember
        self.now = now
        self.metrics = metrics
        self.logger = logger
    }

    /// The claims held of `spaces` (those with any), from memory after the first read of each.
    func claims(of spaces: some Collection<SpaceID>) async throws -> [SpaceID: [HeadClaim]] {
        guard !spaces.isEmpty else { return [:] }
        let (missing, seen) = lock.withLock { (spaces.filter { cache[$0] == nil }, generation) }
        var read: [SpaceID: [HeadClaim]] = [:]
        if !missing.isEmpty {
            read = try await metrics.timed("claims") { try await store.claims(of: missing) }
            lock.withLock {
                guard generation == seen else { return }
                for s in missing { cache[s] = read[s] ?? [] }
            }
        }
        return lock.withLock {
            var out: [SpaceID: [HeadClaim]] = [:]
            for s in spaces {
                if let held = cache[s] ?? read[s], !held.isEmpty { out[s] = held }
            }
            return out
        }
    }

    /// Keeps the claims of `space` that verify and whose claimant is a member; passes those kept
    /// on to this process's sessions. Claimants not members yet wait; other refusals are logged.
    func keep(space: SpaceID, _ received: [HeadClaim], from peer: NodeID?) async {
        guard !received.isEmpty else { return }
        var valid: [HeadClaim] = []
        var waiting: [HeadClaim] = []
        for c in received {
            if let why = c.refusal(in: space) {
                logger.warning(
                    "head claim refused: \(c.claimant.nodeID): \(why)",
                    metadata: ["peer": "\(peer.map(\.text) ?? "-")", "space": "\(space.hex)"])
            } else if isMember(space, c.claimant) {
                valid.append(c)
            } else {
                waiting.append(c)
            }
        }
        lock.withLock { pending.update(space, kept: valid, waiting: waiting) }
        guard !valid.isEmpty else { return }
        do {
            let kept = try await metrics.timed("claims") { try await store.keepClaims(space: space, valid, receivedAt: now()) }
            if !kept.isEmpty {
                remember(space: space, kept)
                broadcast.publish(StoredClaims(space: space, claims: kept, from: peer))
            }
        } catch {
            logger.warning("cannot keep head claims: \(error)", metadata: ["peer": "\(peer.map(\.text) ?? "-")"])
        }
    }

    /// Tries again the claims of `spaces` that waited for their claimant's membership (a session
    /// that settled has delivered it, if ever).
    func retryPending(_ spaces: [SpaceID]) async {
        for s in spaces {
            guard let waiting = lock.withLock({ pending.take(s) }) else { continue }
            await keep(space: s, waiting, from: nil)
        }
    }

    /// Passes on to this process's sessions the claims of `spaces` another process kept.
    func publish(of spaces: Set<SpaceID>) async {
        do {
            for (space, held) in try await store.claims(of: Array(spaces)) {
                remember(space: space, held)
                broadcast.publish(StoredClaims(space: space, claims: held, from: nil))
            }
        } catch {
            // Read afresh when next asked for.
            lock.withLock {
                for s in spaces { cache[s] = nil }
                generation += 1
            }
            logger.warning("cannot read head claims kept by another relay process: \(error)")
        }
    }

    /// Forgets every space's claims (a notification may have been missed): read afresh.
    func forgetAll() {
        lock.withLock {
            cache = [:]
            generation += 1
        }
    }

    func subscribe() -> AsyncStream<StoredClaims> { broadcast.subscribe() }

    func subscribe(_ deliver: @escaping @Sendable (StoredClaims) -> Void) -> @Sendable () -> Void {
        broadcast.subscribe(deliver)
    }

    func finish() { broadcast.finishAll() }

    /// Puts `claims` (newer ones, of `space`) into the cache when the space is cached.
    private func remember(space: SpaceID, _ claims: [HeadClaim]) {
        lock.withLock {
            generation += 1
            guard var held = cache[space] else { return }
            for c in claims {
                if let i = held.firstIndex(where: { $0.claimant == c.claimant }) {
                    if c.time > held[i].time { held[i] = c }
                } else {
                    held.append(c)
                }
            }
            cache[space] = held.sorted { SigningPublicKey.precedes($0.claimant, $1.claimant) }
        }
    }
}
