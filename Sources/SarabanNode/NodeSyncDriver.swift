import Dispatch
import Foundation
import Logging
import SarabanCrypto
import SarabanStorage
import SarabanSync
import SarabanTransport

/// What sync needs from a node's envelope storage (the node's SQLite store implements it, see
/// `Node+EnvelopeStorage.swift`). Every call is one SQLite transaction and may block.
public protocol EnvelopeStorage: Sendable {
    /// Member (opens and applies) or relay (stores and forwards only).
    var role: NodeRole { get }
    /// The spaces this node carries and what it holds of each.
    func carriedSpaces() throws -> [SpaceID: FeedVector]
    /// Per author, the envelopes of `space` whose last sequence is above `after[author]`, in store
    /// order, at most `limit.envelopes` and about `limit.bytes` (at least one); `complete` when none are left.
    func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) throws -> (envelopes: [Envelope], complete: Bool)
    /// Verifies, stores and (on a member) opens and applies `envelopes` in one transaction;
    /// returns those accepted (new and valid), what the node holds of `space` afterwards, and the
    /// forks among those refused (per envelope: the position, the envelope held there and the
    /// conflicting one's id).
    func receive(space: SpaceID, envelopes: [Envelope]) throws -> (
        accepted: [Envelope], vector: FeedVector,
        forks: [(author: SigningPublicKey, sequence: UInt64, held: EnvelopeID, conflicting: EnvelopeID)]
    )
    /// This node's id (to tell a fork of its own feed in reports).
    var nodeID: NodeID { get }
    /// Per space, per author, the stored envelope ending at the author's entry of `spaces`.
    func feedHeads(_ spaces: [SpaceID: FeedVector]) throws -> [SpaceID: [SigningPublicKey: FeedHead]]
    /// The stored envelope of `author` in `space` covering `seq`, or nil when less is held.
    func storedEnvelope(space: SpaceID, author: SigningPublicKey, covering seq: UInt64) throws
        -> (seqEnd: UInt64, id: EnvelopeID)?
    /// Makes everything stored so far (by any process) survive a power cut (fsyncs the WAL).
    func makeDurable() throws
    /// A number that changes whenever anything was written to the envelope store, by any process
    /// (cheap enough to call every few hundred milliseconds).
    func changeProbe() throws -> Int64
    /// A value that changes when the carried spaces change (a space created, joined or left by
    /// any process), which stores no envelope and so leaves ``changeProbe()`` as it was. Default:
    /// "" (a storage whose spaces change only with its envelopes).
    func spacesProbe() throws -> String
    /// Node ids that may connect besides configured peers: the members of the carried spaces.
    func memberNodeIDs() throws -> Set<NodeID>
    /// The carried spaces to sync with `peer` (a cleared space only with its members and
    /// designated relays, see Node+Clearance.swift); all carried spaces by default.
    func carriedSpaces(for peer: NodeID) throws -> [SpaceID: FeedVector]
    /// Makes this node's head claims of `spaces` where what it holds (`heads`) changed, and
    /// returns the claims held of them (the latest per claimant). Default: none.
    func headClaims(spaces: Set<SpaceID>, heads: [SpaceID: [SigningPublicKey: FeedHead]]) throws -> [SpaceID: [HeadClaim]]
    /// ``headClaims(spaces:heads:)`` for the daemon's periodic refresher, which runs at the
    /// operator's own interval: no minimum time since the last claim. Default: the same as
    /// ``headClaims(spaces:heads:)``.
    func refreshedClaims(spaces: Set<SpaceID>, heads: [SpaceID: [SigningPublicKey: FeedHead]]) throws -> [SpaceID: [HeadClaim]]
    /// The claims held of `spaces`. Default: none.
    func heldClaims(_ spaces: [SpaceID]) throws -> [SpaceID: [HeadClaim]]
    /// Verifies and keeps received claims (an older claim never replaces a newer one).
    func keepClaims(space: SpaceID, _ claims: [HeadClaim]) throws -> ClaimReceipt
}

extension EnvelopeStorage {
    public func spacesProbe() throws -> String { "" }
    public func carriedSpaces(for peer: NodeID) throws -> [SpaceID: FeedVector] { try carriedSpaces() }
    public func headClaims(spaces: Set<SpaceID>, heads: [SpaceID: [SigningPublicKey: FeedHead]]) throws -> [SpaceID: [HeadClaim]] {
        [:]
    }
    public func refreshedClaims(spaces: Set<SpaceID>, heads: [SpaceID: [SigningPublicKey: FeedHead]]) throws
        -> [SpaceID: [HeadClaim]]
    {
        try headClaims(spaces: spaces, heads: heads)
    }
    public func heldClaims(_ spaces: [SpaceID]) throws -> [SpaceID: [HeadClaim]] { [:] }
    public func keepClaims(space: SpaceID, _ claims: [HeadClaim]) throws -> ClaimReceipt { ClaimReceipt() }
}

/// Hands each subscriber every item (``StoredEnvelopes``, ``StoredClaims``) published after it subscribed.
final class Broadcast<Item: Sendable>: @unchecked Sendable {
    private struct Subscriber {
        var deliver: @Sendable (Item) -> Void
        var finish: (@Sendable () -> Void)?
    }
    private let lock = NSLock()
    private var subscribers: [Int: Subscriber] = [:]
    private var next = 0

    func subscribe() -> AsyncStream<Item> {
        let (stream, continuation) = AsyncStream.makeStream(of: Item.self)
        let id = add(Subscriber(deliver: { continuation.yield($0) }, finish: { continuation.finish() }))
        continuation.onTermination = { [weak self] _ in self?.remove(id) }
        return stream
    }

    /// `deliver` is called with every update published from now on, on the publisher's thread,
    /// until the returned closure is called.
    func subscribe(_ deliver: @escaping @Sendable (Item) -> Void) -> @Sendable () -> Void {
        let id = add(Subscriber(deliver: deliver, finish: nil))
        return { [weak self] in self?.remove(id) }
    }

    private func add(_ subscriber: Subscriber) -> Int {
        lock.lock()
        defer { lock.unlock() }
        let id = next
        next += 1
        subscribers[id] = subscriber
        return id
    }

    private func remove(_ id: Int) {
        lock.lock()
        subscribers[id] = nil
        lock.unlock()
    }

    func publish(_ update: Item) {
        lock.lock()
        let all = Array(subscribers.values)
        lock.unlock()
        for s in all { s.deliver(update) }
    }

    var subscriberCount: Int {
        lock.lock()
        defer { lock.unlock() }
        return subscribers.count
    }

    func finishAll() {
        lock.lock()
        let all = Array(subscribers.values)
        subscribers = [:]
        lock.unlock()
        for s in all { s.finish?() }
    }
}

/// Runs blocking store work off the cooperative thread pool.
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

/// The node's side of every sync session: reads and stores envelopes through an
/// ``EnvelopeStorage`` and announces what it stored (envelopes accepted from any peer, and
/// envelopes written by this or another process, noticed by ``poll()``) to every open session.
public final class NodeSyncDriver: SyncStoreDriver, @unchecked Sendable {
    public let storage: any EnvelopeStorage
    let logger: Logger
    let broadcast = Broadcast<StoredEnvelopes>()
    /// Head claims made or kept, for the open sessions to pass on.
    let claimBroadcast = Broadcast<StoredClaims>()
    let lock = NSLock()
    /// Per space, claims refused because their claimant was not known as a member (the newest
    /// per claimant): tried again when envelopes of the space are accepted and when a session settles.
    var pendingClaims = PendingClaims()
    /// Per peer, the withholding findings already logged (each is logged once).
    var reported: [NodeID: Set<[String]>] = [:]
    /// Per peer, per space, what it holds only from later than this node can chain on.
    private var horizonGaps: [NodeID: [SpaceID: [HorizonGap]]] = [:]
    /// How old a claim must be to count when a session settles (ms): what was written just
    /// before may still be on its way to the peer.
    let withholdingGrace: Int64
    /// Called after each settled session with the peer, the shared spaces and what the peer did
    /// not deliver in them (the peer status book records it).
    let onWithholding: (@Sendable (NodeID, Set<SpaceID>, [WithheldFeed]) -> Void)?
    /// What was last announced (or known) per space: the poller announces what lies beyond.
    private var announced: [SpaceID: FeedVector] = [:]
    private var lastProbe: Int64?
    private var lastSpacesProbe: String?
    /// The store position (``EnvelopeStorage/changeProbe()``) up to which everything is known to
    /// be on disk: ``ensureDurable()`` syncs only when the store has moved past it.
    private var durableProbe: Int64 = -1
    /// The largest number of envelopes the poller announces per space in one message.
    let announceChunk = 2048

    /// Makes each session's attachment-chunk exchange (the daemon's, see Node+Attachments.swift);
    /// nil: the peer's attachment messages are ignored.
    let attachments: (@Sendable (NodeID) -> (any AttachmentHandler)?)?
    /// Told by ``poll()`` when the set of carried spaces changed since the baseline or the last
    /// change (a space joined, created, carried or left, by this process or another): spaces
    /// added, spaces removed. Open sessions carry the spaces of their hello only.
    let carriedSpacesChanged: (@Sendable (_ added: Set<SpaceID>, _ removed: Set<SpaceID>) -> Void)?
    /// Told by ``poll()`` when the spaces or their memberships changed and some peers would now
    /// be served other spaces than their open sessions were (``carriedSpaces(for:)``: a member
    /// removed from a cleared space, a relay no longer designated): those peers' sessions must
    /// reopen, or they keep receiving the space's new envelopes.
    let servedSpacesChanged: (@Sendable (_ peers: Set<NodeID>) -> Void)?
    /// Per peer, the spaces its latest session was opened with.
    private var served: [NodeID: Set<SpaceID>] = [:]
    /// Raised by ``poll()`` each time it sees a write, before it compares ``served``: a session's
    /// served spaces computed across a raise may predate that write, and are computed again.
    private var servedGeneration: UInt64 = 0
    /// The carried spaces as last seen by ``primeBaseline()`` or ``poll()``.
    private var knownSpaces: Set<SpaceID>?
    /// Called with each fork found, after it is logged (the peer status book records it).
    let onFork: (@Sendable (FeedFork) -> Void)?
    /// Milliseconds since 1970, for the time a fork was found.
    let now: @Sendable () -> Int64

    public init(
        storage: any EnvelopeStorage, logger: Logger = Logger(label: "saraban.sync"),
        attachments: (@Sendable (NodeID) -> (any AttachmentHandler)?)? = nil,
        carriedSpacesChanged: (@Sendable (_ added: Set<SpaceID>, _ removed: Set<SpaceID>) -> Void)? = nil,
        servedSpacesChanged: (@Sendable (_ peers: Set<NodeID>) -> Void)? = nil,
        onFork: (@Sendable (FeedFork) -> Void)? = nil,
        onWithholding: (@Sendable (NodeID, Set<SpaceID>, [WithheldFeed]) -> Void)? = nil,
        withholdingGrace: Int64 = NodeSyncDriver.defaultWithholdingGrace,
        now: @escaping @Sendable () -> Int64 = Node.systemClock
    ) {
        self.onWithholding = onWithholding
        self.withholdingGrace = withholdingGrace
        self.storage = storage
        self.logger = logger
        self.attachments = attachments
        self.carriedSpacesChanged = carriedSpacesChanged
        self.servedSpacesChanged = servedSpacesChanged
        self.onFork = onFork
        self.now = now
    }

    /// The default of ``withholdingGrace``: two minutes.
    public static let defaultWithholdingGrace: Int64 = 120_000

    public func attachmentHandler(for peer: NodeID) -> (any AttachmentHandler)? { attachments?(peer) }

    /// Takes the store's current vectors as the baseline (nothing before them is announced).
    public func primeBaseline() throws {
        let probe = try storage.changeProbe()
        let spacesProbe = try storage.spacesProbe()
        let spaces = try storage.carriedSpaces()
        lock.lock()
        announced = spaces
        lastProbe = probe
        lastSpacesProbe = spacesProbe
        knownSpaces = Set(spaces.keys)
        lock.unlock()
    }

    // MARK: SyncStoreDriver

    public func carriedSpaces(for peer: NodeID) async throws -> [SpaceID: FeedVector] {
        let storage = self.storage
        while true {
            let generation = lock.withLock { servedGeneration }
            let spaces = try await blocking { try storage.carriedSpaces(for: peer) }
            // A poll that saw a write (a clearance, a removal) since this read began compared
            // `served` without this session, or with its previous one: record only spaces read
            // after that write, or the session would be opened with a space no longer served to
            // the peer and the poll would push the space's next envelopes to it.
            let current = lock.withLock {
                guard servedGeneration == generation else { return false }
                served[peer] = Set(spaces.keys)
                return true
            }
            if current { return spaces }
        }
    }

    /// The peers whose served spaces (``EnvelopeStorage/carriedSpaces(for:)``) are no longer those
    /// their sessions were opened with; each is recorded anew, so it is reported once per change.
    func peersServedDifferently() throws -> Set<NodeID> {
        let before = lock.withLock { served }
        var changed: Set<NodeID> = []
        for (peer, spaces) in before {
            let now = Set(try storage.carriedSpaces(for: peer).keys)
            if now != spaces { changed.insert(peer) }
        }
        lock.withLock { for p in changed { served[p] = nil } }
        return changed
    }

    public func fetch(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (
        envelopes: [Envelope], complete: Bool
    ) {
        let storage = self.storage
        let r = try await blocking { [self] in
            let r = try storage.envelopes(space: space, after: after, limit: limit)
            let me = storage.nodeID.publicKey
            if r.envelopes.contains(where: { $0.header.author == me }) { try ensureDurable() }
            return r
        }
        return (r.envelopes, r.complete)
    }

    /// Before this node's own envelopes leave (pushed or served): fsyncs the WAL, unless nothing
    /// was stored since the last time. A local write through `Node` is already on disk (its
    /// commit synced); a bulk write made with `Store.write(durable: false)` is made so here.
    func ensureDurable() throws {
        let probe = try storage.changeProbe()
        if lock.withLock({ probe <= durableProbe }) { return }
        try storage.makeDurable()
        lock.withLock { durableProbe = max(durableProbe, probe) }
    }

    public func deliver(space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey) async throws -> FeedVector {
        let storage = self.storage
        let r = try await blocking { try storage.receive(space: space, envelopes: envelopes) }
        if !r.forks.isEmpty {
            report(
                r.forks.map {
                    fork(
                        space: space, author: $0.author, sequence: $0.sequence, held: $0.held, peerHolds: $0.conflicting.hex,
                        peer: peer.nodeID, via: "envelope")
                })
        }
        if !r.accepted.isEmpty {
            lock.withLock {
                for e in r.accepted { _ = announced[space, default: FeedVector()].add(e.header) }
            }
            broadcast.publish(StoredEnvelopes(space: space, envelopes: r.accepted))
            await retryPendingClaims(space)
        }
        return r.vector
    }

    public func localChanges() -> AsyncStream<StoredEnvelopes> { broadcast.subscribe() }

    /// The peer (a relay after retention) holds some feeds only from later than this node can
    /// chain on: logged, and kept for the one-shot sync's report (``gaps(from:)``).
    public func unreachable(space: SpaceID, gaps: [SigningPublicKey: ClosedRange<UInt64>], from peer: NodeID) async {
        let found = gaps.map { HorizonGap(space: space, author: $0.key, missing: $0.value) }.sorted { $0.author < $1.author }
        let text = "no longer holds these changes (relay retention), and this node lacks them: sync with a member of the space, "
            + "or merge the relay operator's archive (`saraban doc merge FILE`) (รีเลย์ไม่เก็บข้อมูลช่วงนี้แล้ว: ซิงก์กับสมาชิกอื่นหรือนำเข้าไฟล์เก็บถาวร)"
        lock.withLock { horizonGaps[peer, default: [:]][space] = found }
        for g in found {
            logger.warning(
                "\(peer): changes \(g.from)…\(g.to) of \(g.author) in space \(g.space): \(text)",
                metadata: ["peer": "\(peer)", "space": "\(g.space)"])
        }
    }

    /// What sessions with `peer` reported this node cannot get from it (below its horizons).
    public func gaps(from peer: NodeID) -> [HorizonGap] {
        lock.withLock { (horizonGaps[peer] ?? [:]).sorted { $0.key < $1.key }.flatMap(\.value) }
    }

    public func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        let storage = self.storage
        return try await blocking { try storage.feedHeads(spaces) }
    }

    /// Compares the peer's head tags with the envelopes held at the same positions; reports forks.
    public func peerHeads(_ summary: SpaceVector, from peer: NodeID) async {
        let storage = self.storage
        do {
            let found = try await blocking {
                try summary.mismatches { try storage.storedEnvelope(space: summary.space, author: $0, covering: $1) }
            }
            report(
                found.map {
                    fork(
                        space: summary.space, author: $0.author, sequence: $0.sequence, held: $0.held,
                        peerHolds: $0.peerTag.description, peer: peer, via: "summary")
                })
        } catch {
            logger.warning("cannot compare the peer's head tags with this node's envelopes: \(error)", metadata: ["peer": "\(peer)"])
        }
    }

    // MARK: Local writes (this process or another)

    /// Announces to every session the envelopes stored since the last call that were not already
    /// announced (a CLI write in another process, a local write in this one). Returns how many.
    @discardableResult
    public func poll(force: Bool = false) throws -> Int {
        let probe = try storage.changeProbe()
        // A space joined stores no envelope: without this, a daemon never noticed a join made
        // after its sessions opened until it wrote in some space itself (DaemonCLITests.why7).
        let spacesProbe = try storage.spacesProbe()
        lock.lock()
        let spacesChanged = spacesProbe != lastSpacesProbe
        let envelopesChanged = probe != lastProbe
        let unchanged = !envelopesChanged && !spacesChanged
        if !unchanged { servedGeneration &+= 1 }
        lock.unlock()
        if unchanged && !force { return 0 }
        let spaces = try storage.carriedSpaces()
        let now = Set(spaces.keys)
        let change: (Set<SpaceID>, Set<SpaceID>)? = lock.withLock {
            defer { knownSpaces = now }
            guard let known = knownSpaces, known != now else { return nil }
            return (now.subtracting(known), known.subtracting(now))
        }
        if let change {
            carriedSpacesChanged?(change.0, change.1)
        } else if spacesChanged || envelopesChanged, let servedSpacesChanged {
            // Before anything new is announced: a peer that may no longer have a space must not
            // get its new envelopes (a removal's own envelope included) over its open session.
            // Not only when the spaces table changed: a space's clearance and its designated
            // relays are changes of the space itself (its document, its membership log), which
            // only the envelope log shows. (A member's daemon only: a few reads per open session.)
            let peers = try peersServedDifferently()
            if !peers.isEmpty { servedSpacesChanged(peers) }
        }
        var count = 0
        for (space, vector) in spaces.sorted(by: { $0.key < $1.key }) {
            lock.lock()
            var from = announced[space] ?? FeedVector()
            lock.unlock()
            guard !from.dominates(vector) else { continue }
            while true {
                let (batch, complete) = try storage.envelopes(
                    space: space, after: from, limit: FetchLimit(envelopes: announceChunk, bytes: 4 << 20))
                if batch.isEmpty { break }
                // Only this node's own envelopes wait for the disk: received ones passed on can
                // be fetched again from their author.
                let me = storage.nodeID.publicKey
                if batch.contains(where: { $0.header.author == me }) { try ensureDurable() }
                for e in batch { _ = from.add(e.header) }
                lock.lock()
                announced[space, default: FeedVector()].merge(from)
                lock.unlock()
                broadcast.publish(StoredEnvelopes(space: space, envelopes: batch))
                count += batch.count
                if complete { break }
            }
        }
        lock.lock()
        lastProbe = probe
        lastSpacesProbe = spacesProbe
        lock.unlock()
        if count > 0 { logger.debug("announced local envelopes", metadata: ["count": "\(count)"]) }
        return count
    }

    /// Polls every `interval` until cancelled (a CLI write reaches peers within about that long).
    public func runPoller(interval: Duration = .milliseconds(250)) async {
        while !Task.isCancelled {
            do { try await blockingPoll() } catch {
                logger.warning("polling the store for local writes failed: \(error)")
            }
            try? await Task.sleep(for: interval)
        }
    }

    func blockingPoll() async throws {
        try await blocking { [self] in _ = try self.poll() }
    }

    /// Ends every open session's subscription.
    public func finish() {
        broadcast.finishAll()
        claimBroadcast.finishAll()
    }
}

/// Changes of a feed a peer (a relay after retention) no longer holds and this node lacks: they
/// come from another member, or from the relay operator's archive (`saraban doc merge`).
public struct HorizonGap: Sendable, Codable, Hashable {
    /// The space (32 hex digits).
    public var space: String
    /// The author's node id (as `saraban id` prints it).
    public var author: String
    /// The first and last sequence numbers missing.
    public var from: UInt64
    public var to: UInt64

    public init(space: SpaceID, author: SigningPublicKey, missing: ClosedRange<UInt64>) {
        self.space = space.hex
        self.author = author.nodeID.text
        self.from = missing.lowerBound
        self.to = missing.upperBound
    }
}
