import Foundation
import Logging
import SarabanCrypto
import SarabanFeed
import SarabanStorage
import SarabanSync
import SarabanTransport

/// The relay's side of every sync session, over a ``RelayStore``.
///
/// It keeps, per carried space, what it knows the store holds (``known``: loaded at start, raised
/// by every batch it stores and by what other processes store, which the store's
/// ``RelayStore/changes()`` wakes it for). A session's hello lists only the spaces the store and
/// the ``RelayPolicy`` serve to that peer, its vectors come from ``known`` (no database read per
/// session), and stored envelopes are pushed only to the sessions that share their space.
///
/// **Membership.** When the store does not judge membership itself (PostgreSQL: see
/// ``RelayStore/judgesMembership``), the driver keeps one ``RelayRoster`` per space beside its
/// vector, folded from the space's control envelopes (loaded with the vector, then from every
/// control envelope stored here or by another process): a peer is served the space only while
/// the roster serves it, and only envelopes the roster admits are stored. When a roster stops
/// serving a peer, that peer's sessions stop hearing of the space and ``servedSpacesChanged`` is
/// told, so the daemon can reopen them.
///
/// What other processes store is read, after each burst of wake-ups, by store position when the
/// store keeps one (PostgreSQL: one query over every space, ``RelayStore/stored(after:limit:)``),
/// else space by space (SQLite).
public final class RelaySyncDriver: SyncStoreDriver, @unchecked Sendable {
    public let store: any RelayStore
    public let policy: any RelayPolicy
    let logger: Logger
    let attachments: (@Sendable (NodeID) -> (any AttachmentHandler)?)?
    let metrics: RelayMetrics
    /// Head claims (Docs/SECURITY.md, "Withholding"): kept and passed on through the node's own
    /// database by a relay on SQLite, as a member's driver does; nil on PostgreSQL, where
    /// ``claimStore`` keeps them.
    let claims: NodeSyncDriver?
    /// Head claims kept by the store for every relay process (PostgreSQL), checked against the
    /// rosters this driver folds; nil on SQLite (``claims``) or when the store keeps none.
    /// (Set once, at the end of `init`: its roster lookup refers to this driver.)
    private(set) var claimKeeper: RelayClaimKeeper?
    private let lock = NSLock()
    /// Per space, what the store is known to hold (never more than it holds).
    private var known: [SpaceID: FeedVector] = [:]
    /// Per space, per author, the last envelope known stored (as ``known``): the head tags of the
    /// sessions' summaries, without a database read per session.
    private var heads: [SpaceID: [SigningPublicKey: FeedHead]] = [:]
    /// Per space, its membership as folded from its control envelopes (only when
    /// ``foldsRosters``): loaded with ``known`` and kept beside it.
    private var rosters: [SpaceID: RelayRoster] = [:]
    /// Per space, per author, the first sequence the store holds of feeds it no longer holds from
    /// their start (``RelayStore/feedFloors()``: retention), read at start and when another
    /// process retires months: the horizons the sessions announce.
    private var floors: [SpaceID: FeedVector] = [:]
    /// Whether this driver applies the spaces' rosters (the store does not).
    public let foldsRosters: Bool
    /// Told the peers whose served spaces a roster change narrowed (their sessions should reopen).
    let servedSpacesChanged: (@Sendable ([NodeID]) -> Void)?
    private var subscribers: [Int: Subscriber] = [:]
    /// Subscribers per space, and those whose spaces are not known yet (they get everything).
    private var bySpace: [SpaceID: Set<Int>] = [:]
    private var unfiltered: Set<Int> = []
    private var nextSubscriber = 0
    private var healthState = RelayHealth.ready
    /// Wake-ups from the store not yet caught up with (``runWatcher(healthInterval:)``).
    private var pendingChange: RelayStoreChange?
    /// How many envelopes the watcher reads per query when catching up with another process.
    let catchUpChunk = 2048
    /// How long the watcher lets wake-ups gather before it catches up (adds at most this to the
    /// delivery of envelopes stored by another process).
    let catchUpGathering: Duration = .milliseconds(25)
    /// How many spaces the watcher catches up with at once (space by space).
    let catchUpParallelism = 8
    /// Where this process is in the store's position stream (nil: the store keeps none, or
    /// `SARABAN_RELAY_CATCHUP=spaces` asked for the space-by-space catch-up, for comparison).
    private var position: StorePosition?
    let byPosition: Bool

    struct Subscriber {
        var peer: NodeID?
        var spaces: Set<SpaceID>?
        var deliver: @Sendable (StoredEnvelopes) -> Void
        /// Ends a stream's iteration (nil for a connection's callback).
        var finish: (@Sendable () -> Void)? = nil
    }

    public init(
        store: any RelayStore, policy: any RelayPolicy = OpenRelayPolicy(), logger: Logger = Logger(label: "saraban.relay"),
        metrics: RelayMetrics = RelayMetrics(store: "sqlite"),
        attachments: (@Sendable (NodeID) -> (any AttachmentHandler)?)? = nil, claims: NodeSyncDriver? = nil,
        servedSpacesChanged: (@Sendable ([NodeID]) -> Void)? = nil,
        now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.foldsRosters = !store.judgesMembership
        self.servedSpacesChanged = servedSpacesChanged
        self.claims = claims
        self.store = store
        self.policy = policy
        self.logger = logger
        self.metrics = metrics
        self.attachments = attachments
        byPosition = ProcessInfo.processInfo.environment["SARABAN_RELAY_CATCHUP"] != "spaces"
        // Only where rosters are folded here: the claimant must be a member the driver knows of.
        if claims == nil, foldsRosters, let claimStore = store.claimStore {
            claimKeeper = RelayClaimKeeper(
                store: claimStore,
                isMember: { [unowned self] space, key in
                    self.lock.withLock { self.rosters[space]?.roster.current.isMember(key) == true }
                }, now: now, metrics: metrics, logger: logger)
        }
    }

    /// Loads what the store holds of every carried space (call once before serving).
    public func prime() async throws {
        // The position first: whatever the vectors below miss is stored after it.
        var start: StorePosition?
        if byPosition { start = try await metrics.timed("position") { try await store.currentPosition() } }
        let all = try await metrics.timed("carried") { try await store.carriedSpaces() }
        try await adopt(all) { position = start }
        try await reloadFloors()
    }

    /// Reads the horizons afresh (at start, and when the store says months were retired).
    func reloadFloors() async throws {
        let read = try await metrics.timed("floors") { try await store.feedFloors() }
        lock.withLock { floors = read }
    }

    /// From memory (``floors``): the horizons of the spaces a session shares.
    public func feedFloors(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: FeedVector] {
        lock.withLock {
            guard !floors.isEmpty else { return [:] }
            var out: [SpaceID: FeedVector] = [:]
            for s in spaces.keys { if let f = floors[s] { out[s] = f } }
            return out
        }
    }

    /// Loads what goes with freshly read `vectors` (their feed heads; their control envelopes when
    /// this driver folds rosters, read after the vectors: one the vectors miss is also in the
    /// position stream, and reading it twice changes nothing), then records all of it, and runs
    /// `alsoLocked`, under the lock.
    private func adopt(_ vectors: [SpaceID: FeedVector], alsoLocked: () -> Void = {}) async throws {
        let heads = try await metrics.timed("heads") { try await store.feedHeads(vectors) }
        var controls: [SpaceID: [Envelope]] = [:]
        if foldsRosters && !vectors.isEmpty {
            controls = try await metrics.timed("controls") { try await store.controlEnvelopes(of: Array(vectors.keys)) }
        }
        lock.withLock {
            for (s, v) in vectors { known[s, default: FeedVector()].merge(v) }
            for (s, h) in heads { for (author, head) in h { raiseHead(s, author, head) } }
            if foldsRosters {
                for s in vectors.keys where rosters[s] == nil {
                    var r = RelayRoster(space: s)
                    for e in controls[s] ?? [] { r.queue(e) }
                    r.judgeReady(held: known[s] ?? FeedVector())
                    rosters[s] = r
                }
            }
            alsoLocked()
        }
    }

    /// Reads `stored` (envelopes of `space` now in the store, already in ``known``) into the
    /// space's roster; returns the peers whose sessions may no longer hear of the space. Call with
    /// the lock held.
    private func fold(_ space: SpaceID, _ stored: [Envelope]) -> [NodeID] {
        guard foldsRosters, rosters[space] != nil else { return [] }
        let held = known[space] ?? FeedVector()
        // Every control envelope first, then the judging: a change may follow one of its past in
        // the same batch. Changes waiting for envelopes of their past that have now arrived too.
        // (In place: the roster is not copied.)
        for e in stored where e.header.epoch == ControlEntry.publicEpoch { rosters[space]!.queue(e) }
        guard rosters[space]!.judgeReady(held: held), let r = rosters[space] else { return [] }
        // Sessions of peers the space is no longer served to stop hearing of it now.
        var dropped: Set<NodeID> = []
        for id in bySpace[space] ?? [] {
            guard let peer = subscribers[id]?.peer, !r.serves(peer.publicKey) else { continue }
            bySpace[space]?.remove(id)
            subscribers[id]?.spaces?.remove(space)
            dropped.insert(peer)
        }
        if !dropped.isEmpty {
            logger.notice(
                "a membership change stopped serving a space to some peers",
                metadata: ["space": "\(space.hex)", "peers": "\(dropped.count)"])
        }
        return Array(dropped)
    }

    /// Tells the daemon about peers whose served spaces narrowed.
    private func narrowed(_ peers: [NodeID]) {
        if !peers.isEmpty { servedSpacesChanged?(peers) }
    }

    /// The roster of `space` as this driver folded it (nil: not loaded, or the store judges).
    public func roster(_ space: SpaceID) -> RelayRoster? { lock.withLock { rosters[space] } }

    /// Records `head` for `author` in `space` when it is beyond the one known. Call with the lock held.
    private func raiseHead(_ space: SpaceID, _ author: SigningPublicKey, _ head: FeedHead) {
        if let h = heads[space]?[author], h.lastSequence >= head.lastSequence { return }
        heads[space, default: [:]][author] = head
    }

    /// ``raiseHead(_:_:_:)`` for a stored envelope. Call with the lock held.
    private func raiseHead(_ space: SpaceID, _ e: Envelope) {
        raiseHead(space, e.header.author, FeedHead(lastSequence: e.header.seqEnd, lastID: e.id))
    }

    /// The store's health as last checked by ``runWatcher(pollInterval:)``.
    public var health: RelayHealth { lock.withLock { healthState } }

    /// What this process knows the store holds of `space`.
    public func knownVector(_ space: SpaceID) -> FeedVector? { lock.withLock { known[space] } }

    // MARK: SyncStoreDriver

    public func attachmentHandler(for peer: NodeID) -> (any AttachmentHandler)? { attachments?(peer) }

    public func headClaims(
        for peer: NodeID, spaces: [SpaceID: FeedVector], heads: [SpaceID: [SigningPublicKey: FeedHead]]
    ) async throws -> [SpaceID: [HeadClaim]] {
        if let claims { return try await claims.headClaims(for: peer, spaces: spaces, heads: heads) }
        return try await claimKeeper?.claims(of: spaces.keys) ?? [:]
    }

    public func receiveClaims(space: SpaceID, claims received: [HeadClaim], from peer: NodeID) async {
        if let claims { return await claims.receiveClaims(space: space, claims: received, from: peer) }
        await claimKeeper?.keep(space: space, received, from: peer)
    }

    public func settled(with peer: NodeID, role: NodeRole, spaces: [SpaceSyncStatus]) async {
        if let claims { return await claims.settled(with: peer, role: role, spaces: spaces) }
        await claimKeeper?.retryPending(spaces.map(\.space))
    }

    public func localClaims() -> AsyncStream<StoredClaims> {
        claims?.localClaims() ?? claimKeeper?.subscribe() ?? AsyncStream { $0.finish() }
    }

    public func localClaims(deliver: @escaping @Sendable (StoredClaims) -> Void) -> @Sendable () -> Void {
        claims?.localClaims(deliver: deliver) ?? claimKeeper?.subscribe(deliver) ?? {}
    }

    public func localChanges() -> AsyncStream<StoredEnvelopes> { subscribe(peer: nil) }

    public func localChanges(for peer: NodeID) -> AsyncStream<StoredEnvelopes> { subscribe(peer: peer) }

    public func localChanges(for peer: NodeID, deliver: @escaping @Sendable (StoredEnvelopes) -> Void) -> @Sendable () -> Void {
        let id = subscribe(peer: peer, deliver: deliver)
        return { [weak self] in self?.unsubscribe(id) }
    }

    private func subscribe(peer: NodeID?) -> AsyncStream<StoredEnvelopes> {
        let (stream, continuation) = AsyncStream.makeStream(of: StoredEnvelopes.self)
        let id = subscribe(peer: peer, deliver: { continuation.yield($0) }, finish: { continuation.finish() })
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return stream
    }

    private func subscribe(
        peer: NodeID?, deliver: @escaping @Sendable (StoredEnvelopes) -> Void, finish: (@Sendable () -> Void)? = nil
    ) -> Int {
        lock.withLock {
            nextSubscriber += 1
            subscribers[nextSubscriber] = Subscriber(peer: peer, spaces: nil, deliver: deliver, finish: finish)
            unfiltered.insert(nextSubscriber)
            return nextSubscriber
        }
    }

    private func unsubscribe(_ id: Int) {
        lock.withLock {
            guard let s = subscribers.removeValue(forKey: id) else { return }
            unfiltered.remove(id)
            for space in s.spaces ?? [] {
                bySpace[space]?.remove(id)
                if bySpace[space]?.isEmpty == true { bySpace[space] = nil }
            }
        }
    }

    public func carriedSpaces(for peer: NodeID) async throws -> [SpaceID: FeedVector] {
        let served = try await metrics.timed("served_spaces") { try await store.servedSpaces(to: peer) }
            .filter { policy.mayServe(space: $0, peer: peer) }
        let missing = lock.withLock { served.filter { known[$0] == nil } }
        if !missing.isEmpty {
            // Carried since this process started (another process ran `space carry`).
            try await adopt(try await metrics.timed("vectors") { try await store.vectors(of: missing) })
        }
        return lock.withLock {
            var out: [SpaceID: FeedVector] = [:]
            for s in served {
                guard let v = known[s] else { continue }
                // A space with a membership log: only to its members and designated relays.
                if let r = rosters[s], !r.serves(peer.publicKey) { continue }
                out[s] = v
            }
            // This peer's subscriptions now listen to exactly these spaces.
            let spaces = Set(out.keys)
            for (id, sub) in subscribers where sub.peer == peer && sub.spaces == nil {
                subscribers[id]?.spaces = spaces
                unfiltered.remove(id)
                for s in spaces { bySpace[s, default: []].insert(id) }
            }
            return out
        }
    }

    /// From memory (loaded with the vectors, raised by every envelope stored or caught up with):
    /// an entry whose envelope is not known here gets no tag, which costs only the tags' exchange.
    public func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        lock.withLock {
            var out: [SpaceID: [SigningPublicKey: FeedHead]] = [:]
            for (space, vector) in spaces {
                guard let known = heads[space] else { continue }
                for (author, seq) in vector.entries {
                    if let h = known[author], h.lastSequence == seq { out[space, default: [:]][author] = h }
                }
            }
            return out
        }
    }

    public func fetch(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (envelopes: [Envelope], complete: Bool) {
        try await metrics.timed("fetch") { try await store.envelopes(space: space, after: after, limit: limit) }
    }

    public func deliver(space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey) async throws -> FeedVector {
        try await withCheckedThrowingContinuation { c in deliverRuns(space: space, envelopes[...]) { c.resume(with: $0) } }
    }

    /// Stored without the connection's delivery task: `done` is called from the store's own
    /// task when the last run is stored (on PostgreSQL, the lane that committed it).
    public var deliversDirectly: Bool { true }

    public func deliver(
        space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey,
        then done: @escaping @Sendable (Result<FeedVector, any Error>) -> Void
    ) {
        deliverRuns(space: space, envelopes[...], then: done)
    }

    /// Stores `rest` in runs, each ending at a control envelope: the roster it changes judges the
    /// envelopes after it (an addition admits its member's envelopes that follow in the batch),
    /// so each run is judged once the one before is stored. `done` gets what the store is known
    /// to hold of `space` after the last run.
    private func deliverRuns(
        space: SpaceID, _ envelopes: ArraySlice<Envelope>, then done: @escaping @Sendable (Result<FeedVector, any Error>) -> Void
    ) {
        var rest = envelopes
        var run: [Envelope] = []
        var refused: [(Envelope, String)] = []
        let roster = lock.withLock { rosters[space] }
        while let e = rest.popFirst() {
            let h = e.header
            if !policy.mayStore(space: space, author: h.author, epoch: h.epoch) {
                refused.append((e, "the relay's policy refuses it"))
            } else if let why = roster?.refusal(h) {
                refused.append((e, why))
            } else {
                run.append(e)
                if h.epoch == ControlEntry.publicEpoch && foldsRosters { break }
            }
        }
        if !refused.isEmpty {
            metrics.refused(EnvelopeError.Code.notAMember.rawValue, count: refused.count)
            logger.warning(
                "refused envelopes of authors the space does not admit",
                metadata: ["space": "\(space.hex)", "refused": "\(refused.count)", "first": "\(refused[0].1)"])
        }
        storeRun(space: space, run) { [self, rest] result in
            if case .success = result, !rest.isEmpty {
                deliverRuns(space: space, rest, then: done)
            } else {
                done(result)
            }
        }
    }

    /// Stores one run of envelopes the policy and roster admit, announces what was accepted and
    /// folds its control envelopes; `done` gets what the store is known to hold of `space`.
    private func storeRun(
        space: SpaceID, _ run: [Envelope], then done: @escaping @Sendable (Result<FeedVector, any Error>) -> Void
    ) {
        let started = ContinuousClock.now
        store.store(space: space, envelopes: run) { [self] result in
            metrics.record("store", since: started)
            switch result {
            case .failure(let error):
                metrics.storeFailed(error)
                done(.failure(error))
            case .success(let report):
                done(.success(stored(space, report)))
            }
        }
    }

    /// Takes what a store call accepted: announces it and folds its control envelopes; returns
    /// what the store is known to hold of `space`.
    private func stored(_ space: SpaceID, _ report: ReceiveReport) -> FeedVector {
        metrics.envelopesIn(report)
        if !report.refused.isEmpty {
            logger.warning(
                "refused envelopes",
                metadata: [
                    "space": "\(space.hex)", "refused": "\(report.refused.count)", "first": "\(report.refused[0].error)",
                ])
        }
        // `known` grows only by what is announced (the accepted envelopes, pushed below); what
        // `holds` adds (stored by another process meanwhile) is left to the watcher to announce.
        // The delivering session's ack may say all of it: it is stored.
        let (vector, dropped) = lock.withLock { () -> (FeedVector, [NodeID]) in
            for e in report.accepted {
                _ = known[space, default: FeedVector()].add(e.header)
                raiseHead(space, e)
            }
            let dropped = fold(space, report.accepted)
            return ((known[space] ?? FeedVector()).merging(report.holds), dropped)
        }
        publish(StoredEnvelopes(space: space, envelopes: report.accepted))
        narrowed(dropped)
        return vector
    }

    private func publish(_ update: StoredEnvelopes) {
        guard !update.envelopes.isEmpty else { return }
        let targets = lock.withLock { () -> [@Sendable (StoredEnvelopes) -> Void] in
            var ids = unfiltered
            if let s = bySpace[update.space] { ids.formUnion(s) }
            return ids.compactMap { subscribers[$0]?.deliver }
        }
        for deliver in targets { deliver(update) }
    }

    /// Sessions subscribed now (one per open connection).
    public var subscriberCount: Int { lock.withLock { subscribers.count } }

    // MARK: Other processes

    /// Follows the store's ``RelayStore/changes()`` (envelopes stored by other relay processes or
    /// a CLI) and pushes what is new to the sessions of its space; checks the store's health every
    /// `pollInterval`. Runs until cancelled.
    public func runWatcher(healthInterval: Duration = .seconds(1)) async {
        await withTaskGroup(of: Void.self) { group in
            // Wake-ups are gathered while a catch-up runs and taken together by the next one (one
            // catch-up per burst of notifications, not one per notification: each is a query).
            let (signals, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            group.addTask { [self] in
                for await change in store.changes() {
                    if case .claims(let spaces) = change {
                        await claimKeeper?.publish(of: spaces)
                        continue
                    }
                    if change == .floors {
                        // Months retired (or the channel reconnected, when a notice may have
                        // been missed): the horizons sessions announce from now on. Not on
                        // every catch-all wake-up (`*`, many spaces at once under load): each
                        // read is the whole table. A failure keeps the old ones (a session then
                        // waits for what the store no longer holds and times out).
                        do { try await reloadFloors() } catch {
                            logger.warning("cannot read the feeds' horizons, keeping those known: \(error)")
                        }
                        continue
                    }
                    // Claims announced meanwhile may have been missed: read them afresh.
                    if change == .anywhere { claimKeeper?.forgetAll() }
                    lock.withLock { pendingChange = pendingChange.map { $0.merged(with: change) } ?? change }
                    signal.yield()
                }
                signal.finish()
            }
            group.addTask { [self] in
                for await _ in signals {
                    // A moment for the wake-ups of a burst to gather (each catch-up is a query
                    // over every partition, ~4 ms of database CPU: at 300 letters a second two
                    // relays made ~540 a second without gathering, ~100 with 10 ms).
                    if catchUpGathering > .zero { try? await Task.sleep(for: catchUpGathering) }
                    guard var pending = lock.withLock({ () -> RelayStoreChange? in
                        defer { pendingChange = nil }
                        return pendingChange
                    }) else { continue }
                    // A wake-up is never dropped: a catch-up that fails (the store is away) is
                    // tried again, over every space, until it succeeds.
                    var failures = 0
                    while !Task.isCancelled {
                        do {
                            if lock.withLock({ position }) != nil {
                                try await catchUpByPosition()
                            } else {
                                try await catchUp(pending)
                            }
                            break
                        } catch {
                            failures += 1
                            if failures == 1 { logger.warning("cannot read envelopes stored by another process, retrying: \(error)") }
                            pending = .anywhere
                            try? await Task.sleep(for: .milliseconds(min(5_000, 250 << min(failures, 5))))
                        }
                    }
                    if Task.isCancelled { break }
                }
            }
            group.addTask { [self] in
                while !Task.isCancelled {
                    let h = await store.health()
                    let was = lock.withLock { () -> RelayHealth in
                        defer { healthState = h }
                        return healthState
                    }
                    if was != h {
                        switch h {
                        case .ready: logger.notice("relay store ready again", metadata: ["store": "\(store.kind)"])
                        case .unready(let why): logger.error("relay store unready: \(why)", metadata: ["store": "\(store.kind)"])
                        }
                        // Back from an outage: envelopes stored meanwhile by other relays may have
                        // been announced while this process could not read them.
                        if h == .ready {
                            lock.withLock { pendingChange = .anywhere }
                            signal.yield()
                        }
                    }
                    metrics.ready(h.isReady)
                    try? await Task.sleep(for: healthInterval)
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// Reads what other processes stored beyond ``known`` in the spaces of `change` and pushes it.
    func catchUp(_ change: RelayStoreChange) async throws {
        let spaces: [SpaceID: FeedVector]
        switch change {
        case .anywhere: spaces = try await store.carriedSpaces()
        case .spaces(let set): spaces = try await store.vectors(of: Array(set))
        case .claims, .floors: return  // not envelopes (``runWatcher(healthInterval:)`` handles them)
        }
        // Spaces are independent: up to `catchUpParallelism` read at once (a burst of
        // notifications names hundreds of spaces, one query each).
        let behind = lock.withLock { spaces.filter { !(known[$0.key] ?? FeedVector()).dominates($0.value) } }.keys.sorted()
        let count = try await withThrowingTaskGroup(of: Int.self) { group in
            var next = 0
            var total = 0
            while next < min(catchUpParallelism, behind.count) {
                let space = behind[next]
                group.addTask { try await self.catchUp(space: space) }
                next += 1
            }
            while let n = try await group.next() {
                total += n
                if next < behind.count {
                    let space = behind[next]
                    group.addTask { try await self.catchUp(space: space) }
                    next += 1
                }
            }
            return total
        }
        if count > 0 { logger.debug("announced envelopes stored elsewhere", metadata: ["count": "\(count)"]) }
    }

    /// Reads what other processes stored after ``position``, across every space, and pushes to
    /// each space's sessions what extends ``known`` (an envelope this process announced already is
    /// skipped). While committed envelopes wait above the store's horizon (an older transaction
    /// is still running), reads again after 5 ms, doubling to 250 ms: they are not announced again.
    func catchUpByPosition() async throws {
        var pause = 5
        while !Task.isCancelled {
            guard let from = lock.withLock({ position }) else { return }
            let page = try await metrics.timed("position") {
                try await store.stored(after: from, limit: FetchLimit(envelopes: catchUpChunk, bytes: 4 << 20))
            }
            let (updates, dropped) = lock.withLock { () -> ([StoredEnvelopes], [NodeID]) in
                position = page.next
                var order: [SpaceID] = []
                var grouped: [SpaceID: [Envelope]] = [:]
                for e in page.envelopes {
                    // A space this process has not loaded yet: its sessions load its vector when
                    // they open, which covers this envelope.
                    guard let space = SpaceID(e.header), var v = known[space], !v.covers(e.header) else { continue }
                    v.add(e.header)
                    known[space] = v
                    raiseHead(space, e)
                    if grouped[space] == nil { order.append(space) }
                    grouped[space, default: []].append(e)
                }
                var dropped: [NodeID] = []
                for space in order { dropped += fold(space, grouped[space] ?? []) }
                return (order.map { StoredEnvelopes(space: $0, envelopes: grouped[$0] ?? []) }, dropped)
            }
            for u in updates { publish(u) }
            narrowed(dropped)
            if page.more { continue }
            guard page.heldBack else { return }
            if !page.envelopes.isEmpty { pause = 5 }
            try await Task.sleep(for: .milliseconds(pause))
            pause = min(250, pause * 2)
        }
    }

    /// Reads and pushes what the store holds of `space` beyond ``known``; returns how many envelopes.
    private func catchUp(space: SpaceID) async throws -> Int {
        var from = lock.withLock { known[space] ?? FeedVector() }
        var count = 0
        while true {
            let (batch, complete) = try await store.envelopes(
                space: space, after: from, limit: FetchLimit(envelopes: catchUpChunk, bytes: 4 << 20))
            if batch.isEmpty { break }
            for e in batch { _ = from.add(e.header) }
            // Only what extends what was known is new here (a batch this process stored
            // meanwhile was announced by deliver already; sessions ignore repeats anyway).
            let dropped = lock.withLock { () -> [NodeID] in
                known[space, default: FeedVector()].merge(from)
                for e in batch { raiseHead(space, e) }
                return fold(space, batch)
            }
            publish(StoredEnvelopes(space: space, envelopes: batch))
            narrowed(dropped)
            count += batch.count
            if complete { break }
        }
        return count
    }

    /// Ends every session's subscription.
    public func finish() {
        let all = lock.withLock { () -> [@Sendable () -> Void] in
            defer {
                subscribers = [:]
                bySpace = [:]
                unfiltered = []
            }
            return subscribers.values.compactMap(\.finish)
        }
        for finish in all { finish() }
        claimKeeper?.finish()
    }
}
