import Logging
import NIOCore
import SarabanCrypto
import SarabanSync

/// Envelopes the node has just stored in a space: written locally, or received from a peer and
/// accepted. Every ``PeerConnection`` pushes them to its peer at once.
public struct StoredEnvelopes: Sendable {
    public var space: SpaceID
    public var envelopes: [Envelope]

    public init(space: SpaceID, envelopes: [Envelope]) {
        self.space = space
        self.envelopes = envelopes
    }
}

/// Head claims the node has just made or kept (Docs/SECURITY.md, "Withholding"): every open
/// ``PeerConnection`` but the one they came from passes them on at once.
public struct StoredClaims: Sendable {
    public var space: SpaceID
    public var claims: [HeadClaim]
    /// The peer they came from (nil: made by this node).
    public var from: NodeID?

    public init(space: SpaceID, claims: [HeadClaim], from: NodeID?) {
        self.space = space
        self.claims = claims
        self.from = from
    }
}

/// The node's side of sync: what a ``PeerConnection`` asks of the store.
///
/// Calls for one connection never overlap for `fetch` and `peerHeads` (one queue), nor for
/// `deliver` (its own queue), each in the session's order; calls from different connections may
/// run concurrently.
public protocol SyncStoreDriver: Sendable {
    /// The spaces to sync with `peer` and what this node holds of each (a member: the spaces it
    /// belongs to that `peer` may carry; a relay: the spaces it is configured for).
    func carriedSpaces(for peer: NodeID) async throws -> [SpaceID: FeedVector]

    /// The envelopes of `space` after `after` (per author, those whose last sequence is above
    /// the author's entry), each author's in chain order, at most `limit.envelopes` and about
    /// `limit.bytes` (at least one if any exist); `complete` when nothing more was left.
    func fetch(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (
        envelopes: [Envelope], complete: Bool
    )

    /// Verifies (signature, hash chain), stores and, on a member, applies `envelopes` received
    /// from `peer`, refusing those that fail; returns what the node holds of `space` afterwards.
    /// The accepted envelopes must then be announced on every ``localChanges()`` stream (the
    /// delivering connection's included: it skips what its peer already holds).
    func deliver(space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey) async throws -> FeedVector

    /// Whether a connection stores what its peer sends through
    /// ``deliver(space:envelopes:from:then:)`` (true) or through a delivery task of its own that
    /// awaits ``deliver(space:envelopes:from:)`` (false, the default). Read once per connection:
    /// with true the connection has no delivery task at all.
    var deliversDirectly: Bool { get }

    /// ``deliver(space:envelopes:from:)`` without the connection's delivery task (used when
    /// ``deliversDirectly``): the driver calls `done` once with the outcome, on any thread (at
    /// once, for a store kept in memory: a fleet office of `saraban-bench`; from the task that
    /// committed it, for a relay on PostgreSQL). Either way a connection has one delivery
    /// outstanding at a time, so what a peer sends is stored in the order sent. The default
    /// awaits ``deliver(space:envelopes:from:)`` in a task of its own.
    func deliver(
        space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey,
        then done: @escaping @Sendable (Result<FeedVector, any Error>) -> Void
    )

    /// A new subscription to envelopes stored from now on (local writes and deliveries). Called
    /// once per connection, before ``carriedSpaces(for:)``; the connection stops iterating when it ends.
    func localChanges() -> AsyncStream<StoredEnvelopes>

    /// The attachment-chunk exchange for a new connection with `peer`, or `nil` to ignore the
    /// peer's attachment messages (the default, see `AttachmentHandler.swift`).
    func attachmentHandler(for peer: NodeID) -> (any AttachmentHandler)?

    /// Per space, per author, the envelope held that ends at the author's entry of `spaces`: the
    /// head tags of this node's summary (Sync/PROTOCOL.md, "summary with head tags"). Default:
    /// none, and the summary goes without tags.
    func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]]

    /// The peer's summary of a space carried head tags (``SyncAction/peerHeads(_:)``): compare
    /// them with the envelopes held and report any fork. Called off the session's path (a slow
    /// store does not hold the session up). Default: ignored.
    func peerHeads(_ summary: SpaceVector, from peer: NodeID) async

    /// ``localChanges()`` for a connection with `peer`: a driver serving many peers (a relay) may
    /// hand each connection only the spaces it then returns from ``carriedSpaces(for:)`` for that
    /// peer. Called once per connection, before ``carriedSpaces(for:)``.
    func localChanges(for peer: NodeID) -> AsyncStream<StoredEnvelopes>

    /// How a connection hears of local changes: `deliver` is called with each update of
    /// ``localChanges(for:)``; returns what ends the subscription (called once, when the
    /// connection ends). Called once per connection, before ``carriedSpaces(for:)``. The default
    /// forwards the stream from a task of its own; a driver that calls `deliver` itself, on the
    /// thread that stored the envelopes (a relay, a fleet office), spares each envelope pushed
    /// that task's wake-up.
    func localChanges(for peer: NodeID, deliver: @escaping @Sendable (StoredEnvelopes) -> Void) -> @Sendable () -> Void

    /// The head claims to offer `peer` for `spaces` (held: `heads`), per space: the latest
    /// verified claim per claimant, this node's own made afresh first where what it holds
    /// changed (Docs/SECURITY.md, "Withholding"). Called once per session, after
    /// ``feedHeads(_:)``. Default: none.
    func headClaims(for peer: NodeID, spaces: [SpaceID: FeedVector], heads: [SpaceID: [SigningPublicKey: FeedHead]]) async throws
        -> [SpaceID: [HeadClaim]]

    /// The peer sent head claims (``SyncAction/claims(space:claims:from:)``): verify and keep the
    /// latest per claimant. Default: ignored.
    func receiveClaims(space: SpaceID, claims: [HeadClaim], from peer: NodeID) async

    /// The session just settled (``SyncAction/synced``): `spaces` is where each shared space
    /// stands. The node compares what it holds with the claims it knows (the withholding report).
    /// Default: nothing.
    func settled(with peer: NodeID, role: NodeRole, spaces: [SpaceSyncStatus]) async

    /// A new subscription to head claims made or kept from now on (passed on to the peer during
    /// the session). Default: none.
    func localClaims() -> AsyncStream<StoredClaims>

    /// How a connection hears of head claims: `deliver` is called with each update of
    /// ``localClaims()``; returns what ends the subscription (called once, when the connection
    /// ends). Called once per connection. The default forwards the stream from a task of its
    /// own; a driver that calls `deliver` itself spares every connection that task.
    func localClaims(deliver: @escaping @Sendable (StoredClaims) -> Void) -> @Sendable () -> Void

    /// Per space of `spaces`, per author, the first sequence number held, for the feeds not held
    /// from their first envelope (a relay after retention: ``SyncConfiguration/floors``). A
    /// failure fails the session (without them a peer below a horizon would wait in vain).
    /// Default: none (every feed is held from its start).
    func feedFloors(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: FeedVector]

    /// The peer holds some feeds of `space` only from later than this node can chain on
    /// (``SyncAction/unreachable(space:gaps:from:)``): report the gaps. Default: ignored.
    func unreachable(space: SpaceID, gaps: [SigningPublicKey: ClosedRange<UInt64>], from peer: NodeID) async
}

extension SyncStoreDriver {
    public func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        [:]
    }

    public func peerHeads(_ summary: SpaceVector, from peer: NodeID) async {}

    public func localChanges(for peer: NodeID) -> AsyncStream<StoredEnvelopes> { localChanges() }

    public var deliversDirectly: Bool { false }

    public func deliver(
        space: SpaceID, envelopes: [Envelope], from peer: SigningPublicKey,
        then done: @escaping @Sendable (Result<FeedVector, any Error>) -> Void
    ) {
        Task {
            do { done(.success(try await deliver(space: space, envelopes: envelopes, from: peer))) } catch { done(.failure(error)) }
        }
    }

    public func localChanges(for peer: NodeID, deliver: @escaping @Sendable (StoredEnvelopes) -> Void) -> @Sendable () -> Void {
        Self.forward(localChanges(for: peer), to: deliver)
    }

    public func localClaims(deliver: @escaping @Sendable (StoredClaims) -> Void) -> @Sendable () -> Void {
        Self.forward(localClaims(), to: deliver)
    }

    /// The default of ``localChanges(for:deliver:)`` and ``localClaims(deliver:)``: a task that
    /// hands each update of `updates` to `deliver` until the returned closure cancels it (ending
    /// the stream's subscription).
    public static func forward<Update: Sendable>(
        _ updates: AsyncStream<Update>, to deliver: @escaping @Sendable (Update) -> Void
    ) -> @Sendable () -> Void {
        let forwarding = Task { for await update in updates { deliver(update) } }
        return { forwarding.cancel() }
    }

    public func headClaims(
        for peer: NodeID, spaces: [SpaceID: FeedVector], heads: [SpaceID: [SigningPublicKey: FeedHead]]
    ) async throws -> [SpaceID: [HeadClaim]] { [:] }

    public func receiveClaims(space: SpaceID, claims: [HeadClaim], from peer: NodeID) async {}

    public func settled(with peer: NodeID, role: NodeRole, spaces: [SpaceSyncStatus]) async {}

    public func localClaims() -> AsyncStream<StoredClaims> { AsyncStream { $0.finish() } }

    public func feedFloors(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: FeedVector] { [:] }

    public func unreachable(space: SpaceID, gaps: [SigningPublicKey: ClosedRange<UInt64>], from peer: NodeID) async {}
}

/// A store failure that the peer should be told about with an `error` frame (code `refused`)
/// rather than a plain `bye`: a relay whose database is unavailable, full or read-only. The peer
/// keeps what was not acknowledged and retries on a later session.
public protocol RefusingStoreError: Error, CustomStringConvertible {}

/// What a ``PeerConnection`` reports while it runs (for `saraban peer list` and `saraban sync`).
public enum PeerEvent: Sendable {
    /// Hellos exchanged: the spaces both sides carry.
    case opened(peer: NodeID, role: NodeRole, sharedSpaces: [SpaceID])
    /// Where a space stands: lag each way is `status.changesPeerLacks` / `status.changesWeLack`.
    case progress(peer: NodeID, status: SpaceSyncStatus)
    /// Every shared space caught up both ways.
    case synced(peer: NodeID, stats: SyncStats)
    /// The session ended.
    case closed(PeerReport)
}

/// How a session ended.
public struct PeerReport: Sendable, CustomStringConvertible {
    public var peer: NodeID
    public var reason: CloseReason
    public var stats: SyncStats
    public var wire: WireStatistics
    /// The last status of each shared space.
    public var spaces: [SpaceSyncStatus]
    /// The transport failure that ended the session, if one did.
    public var transportError: TransportError?
    /// The store failure that ended the session, if one did.
    public var storeError: String?
    /// Whether the session reached `.synced` at least once.
    public var wasSynced: Bool
    /// The most bytes read from the connection and not yet taken by the session at any one
    /// time: at most ``PeerConnection/receiveBudget(window:maximumFrameByteCount:)`` plus one
    /// Noise message, whatever the peer sends.
    public var peakUnprocessedBytes = 0

    public var description: String {
        var s = "\(peer): \(reason); sent \(stats.envelopesSent) envelopes, received \(stats.envelopesReceived)"
        if let transportError { s += "; transport: \(transportError)" }
        if let storeError { s += "; store: \(storeError)" }
        return s
    }
}

/// Runs one ``SyncSession`` over one ``SecureChannel``: the I/O around the sans-IO state machine.
///
/// Bytes read go to `session.receive`; the actions it returns are carried out in order (`.send`
/// is encrypted and written, `.fetch`/`.deliver` go to the ``SyncStoreDriver``, `.close` closes
/// the connection); the session is ticked every ``TransportConfiguration/tickInterval`` (keep-alives
/// and its timeouts) and the channel's deadlines are enforced; envelopes the node stores are
/// pushed to the peer at once.
///
/// ```swift
/// let peers = PeerConnection(store: node, configuration: .init(role: .member)) { event in status.update(event) }
/// try await listener.run { channel in _ = try await peers.run(over: &channel) }
/// ```
public struct PeerConnection: Sendable {
    public struct Configuration: Sendable {
        /// Member or relay, announced in hello.
        public var role: NodeRole
        /// Batching, window, ping and protocol timeouts of the session.
        public var limits: SyncLimits
        /// Say bye as soon as the session is synced and its attachment handler, if any, settled
        /// (a one-shot `saraban sync`).
        public var closeWhenSynced: Bool

        public init(role: NodeRole, limits: SyncLimits = SyncLimits(), closeWhenSynced: Bool = false) {
            self.role = role
            self.limits = limits
            self.closeWhenSynced = closeWhenSynced
        }
    }

    public let store: any SyncStoreDriver
    public let configuration: Configuration
    let logger: Logger
    let onEvent: @Sendable (PeerEvent) -> Void

    public init(
        store: any SyncStoreDriver, configuration: Configuration, logger: Logger = Logger(label: "saraban.sync"),
        onEvent: @escaping @Sendable (PeerEvent) -> Void = { _ in }
    ) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        self.onEvent = onEvent
    }

    enum Event: Sendable {
        case bytes([UInt8])
        case inboundEnded(TransportError?)
        case tick
        case local(StoredEnvelopes)
        case localClaims(StoredClaims)
        case fetched(SpaceID, [Envelope], complete: Bool)
        case stored(SpaceID, FeedVector)
        /// A delivery the driver stored without the delivery task
        /// (``SyncStoreDriver/deliver(space:envelopes:from:then:)``) ended.
        case delivered(DeliverJob, Result<FeedVector, any Error>)
        /// A fetch or delivery failed; `refusal`: the failure is one to tell the peer (``RefusingStoreError``).
        case storeFailed(String, refusal: String?)
        case attachmentOut(AttachmentMessage)
        /// The attachment handler's ``AttachmentHandler/settled()`` returned.
        case attachmentsSettled

        /// A failed delivery of `job`, as the session hears it.
        static func deliveryFailed(_ job: DeliverJob, _ error: any Error) -> Event {
            .storeFailed(
                "storing \(job.envelopes.count) envelopes in space \(job.space) failed: \(error)",
                refusal: (error as? any RefusingStoreError).map { "\($0)" })
        }
    }

    enum AttachmentJob: Sendable {
        case opened(NodeRole, [SpaceID])
        case received(AttachmentMessage)
    }

    struct FetchJob: Sendable {
        var space: SpaceID
        var after: FeedVector
        var limit: FetchLimit
    }

    /// What the connection's store task does, in order.
    enum StoreJob: Sendable {
        case fetch(FetchJob)
        /// ``SyncStoreDriver/peerHeads(_:from:)``.
        case heads(SpaceVector)
    }

    struct DeliverJob: Sendable {
        var space: SpaceID
        var envelopes: [Envelope]
        var from: SigningPublicKey
    }

    /// The most bytes read from a connection that its session may not have taken yet before the
    /// reader stops reading: the session's receive window times the largest frame. That is all a
    /// peer honouring the window can have sent while this side's driver waits for it to read (so
    /// two nodes syncing both ways never wait on each other), and it bounds what a peer that does
    /// not read, then floods, can make the node hold (Sync/PROTOCOL.md §7).
    public static func receiveBudget(window: Int, maximumFrameByteCount: Int) -> Int {
        window * maximumFrameByteCount
    }

    /// Runs the session until it ends (bye, error, timeout, broken connection, cancellation).
    ///
    /// - Throws: only what ``SyncStoreDriver/carriedSpaces(for:)`` throws; every other ending
    ///   is in the returned report.
    public func run(over channel: inout SecureChannel) async throws -> PeerReport {
        let peer = channel.peer
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        let endUpdates = store.localChanges(for: peer) { sink.yield(.local($0)) }
        defer { endUpdates() }
        let endClaims = store.localClaims { update in
            if update.from != peer { sink.yield(.localClaims(update)) }
        }
        defer { endClaims() }
        let session = try await makeSession(for: peer)
        return await run(session, over: &channel, events: (events, sink))
    }

    /// The session for `peer`, from what the store carries for it. (Apart from ``run(over:)``: an
    /// async function's frame holds what it keeps across awaits for as long as it runs, here
    /// the whole session.)
    private func makeSession(for peer: NodeID) async throws -> SyncSession {
        let spaces = try await store.carriedSpaces(for: peer)
        var heads: [SpaceID: [SigningPublicKey: FeedHead]] = [:]
        do { heads = try await store.feedHeads(spaces) } catch {
            // Only the fork check at equal vectors needs them: sync without.
            logger.warning("cannot read the feed heads, summarising without head tags: \(error)", metadata: ["peer": "\(peer)"])
        }
        var claims: [SpaceID: [HeadClaim]] = [:]
        do { claims = try await store.headClaims(for: peer, spaces: spaces, heads: heads) } catch {
            // Only the withholding report needs them: sync without.
            logger.warning("cannot read or make head claims, syncing without: \(error)", metadata: ["peer": "\(peer)"])
        }
        let floors = try await store.feedFloors(spaces)
        return SyncSession(
            configuration: SyncConfiguration(
                role: configuration.role, spaces: spaces, heads: heads, claims: claims, floors: floors,
                limits: configuration.limits),
            peer: peer.publicKey)
    }

    private func run(
        _ session: SyncSession, over channel: inout SecureChannel,
        events: (stream: AsyncStream<Event>, sink: AsyncStream<Event>.Continuation)
    ) async -> PeerReport {
        let peer = channel.peer
        let (events, sink) = events
        let (storeJobs, storeSink) = AsyncStream.makeStream(of: StoreJob.self)
        let (deliverJobs, deliverSink) = AsyncStream.makeStream(of: DeliverJob.self)
        let deliversDirectly = store.deliversDirectly
        let attachments = store.attachmentHandler(for: peer)
        attachments?.sendOutgoing { sink.yield(.attachmentOut($0)) }
        let (attachmentJobs, attachmentSink) = AsyncStream.makeStream(of: AttachmentJob.self)
        let writer = channel.writer
        let store = self.store
        let tickInterval = channel.configuration.tickInterval
        let closer = ChannelCloser(
            channel: channel.channel, monitor: channel.monitor, configuration: channel.configuration)
        let budget = ReceiveBudget(
            limit: Self.receiveBudget(
                window: configuration.limits.window, maximumFrameByteCount: channel.configuration.maximumFrameByteCount))

        // Deadlines and keep-alives: a tick every interval from the process's shared timer.
        let ticker = SharedTicker.shared(every: tickInterval)
        let ticket = ticker.subscribe {
            if closer.enforceDeadlines() { return false }
            sink.yield(.tick)
            return true
        }
        defer { ticker.unsubscribe(ticket) }
        return await withTaskGroup(of: PeerReport?.self) { group in
            group.addTask {
                let report = await drive(
                    session, events: events, sink: sink, writer: writer, storeJobs: storeSink,
                    deliveries: deliversDirectly ? nil : deliverSink,
                    closer: closer, budget: budget, attachments: attachments.map { ($0, attachmentSink) })
                attachmentSink.finish()
                return report
            }
            if let attachments {
                group.addTask {
                    for await job in attachmentJobs {
                        switch job {
                        case .opened(let role, let spaces): await attachments.opened(role: role, sharedSpaces: spaces)
                        case .received(let m): await attachments.received(m)
                        }
                    }
                    // Closed only once every message received before the connection ended was
                    // handled: closing first dropped the chunks still queued behind a slow store,
                    // so a fetch cut by a reset kept none of the chunks it had received whole.
                    attachments.closed()
                    return nil
                }
                if configuration.closeWhenSynced {
                    group.addTask {
                        await attachments.settled()
                        sink.yield(.attachmentsSettled)
                        return nil
                    }
                }
            }
            // One task for the store's reads (fetches, and the peer's head tags to compare): the
            // tasks of a connection, most of them idle, were most of a relay's memory per session (heaptrack).
            group.addTask {
                for await job in storeJobs {
                    switch job {
                    case .fetch(let job):
                        do {
                            let (envelopes, complete) = try await store.fetch(
                                space: job.space, after: job.after, limit: job.limit)
                            sink.yield(.fetched(job.space, envelopes, complete: complete))
                        } catch {
                            sink.yield(
                                .storeFailed(
                                    "fetch in space \(job.space) failed: \(error)",
                                    refusal: (error as? any RefusingStoreError).map { "\($0)" }))
                        }
                    case .heads(let summary):
                        await store.peerHeads(summary, from: peer)
                    }
                }
                return nil
            }
            if !deliversDirectly {
                group.addTask {
                    for await job in deliverJobs {
                        do {
                            let vector = try await store.deliver(space: job.space, envelopes: job.envelopes, from: job.from)
                            sink.yield(.stored(job.space, vector))
                        } catch {
                            sink.yield(.deliveryFailed(job, error))
                        }
                    }
                    return nil
                }
            } else {
                deliverSink.finish()
            }

            // The reader stays in this task (the inbound iterator must not move between tasks).
            // It reads on only while the session has taken all but `budget.limit` bytes of what it
            // was handed: a driver waiting on a peer that does not read stops the reader too.
            do throws(TransportError) {
                // Once the driver has ended nothing more is taken: stop at once rather than read
                // on until the connection is closed.
                while !budget.isClosed, let chunk = try await channel.reader.next() {
                    budget.add(chunk.count)
                    sink.yield(.bytes(chunk))
                    if budget.isFull {
                        channel.monitor.pauseReading()
                        await budget.waitForRoom()
                        channel.monitor.resumedReading()
                    }
                }
                sink.yield(.inboundEnded(nil))
            } catch {
                sink.yield(.inboundEnded(error))
            }
            sink.finish()

            var report: PeerReport?
            while let result = await group.next() {
                if let result {
                    report = result
                    group.cancelAll()
                }
            }
            var final = report!
            final.wire = closer.wireStatistics
            final.peakUnprocessedBytes = budget.peak
            onEvent(.closed(final))
            return final
        }
    }

    /// Owns the session: applies events in order and carries out the actions.
    ///
    /// The work is done by a ``SessionRun``'s synchronous steps: an async function keeps its
    /// locals in its task's frame for as long as the session lasts, and this loop, written inline
    /// with every event and action case, had an 18 KB frame per session (heaptrack, 600 sessions
    /// on a relay). Only the awaits are here.
    private func drive(
        _ session: SyncSession, events: AsyncStream<Event>, sink: AsyncStream<Event>.Continuation, writer: SecureWriter,
        storeJobs: AsyncStream<StoreJob>.Continuation, deliveries: AsyncStream<DeliverJob>.Continuation?,
        closer: ChannelCloser, budget: ReceiveBudget,
        attachments: (any AttachmentHandler, AsyncStream<AttachmentJob>.Continuation)?
    ) async -> PeerReport {
        let run = SessionRun(
            session, connection: self, writer: writer, events: sink, storeJobs: storeJobs, deliveries: deliveries,
            attachments: attachments)
        var closed = await perform(run.start(), on: run)
        for await event in events {
            // A closed session must stop reading at once: filtering with `where` kept waiting for
            // further events, so a one-shot sync sat until the idle timeout.
            if closed { break }
            let (actions, taken) = run.apply(event, closer: closer)
            closed = await perform(actions, on: run)
            // Taken only now, once the actions (writes included) are done: see ReceiveBudget.
            if taken > 0 { budget.release(taken) }
            if closed { break }
        }
        budget.close()
        if !run.session.isClosed {
            // Cancelled (the node is shutting down): say bye, best effort.
            _ = await perform(run.session.close(), on: run)
        }
        closer.close()
        storeJobs.finish()
        deliveries?.finish()
        return run.report(closer: closer)
    }

    /// Carries out `actions` in order; returns whether the session closed. Every action but three
    /// is done by ``SessionRun/step(_:rest:)``; the store calls it hands back are awaited here, and
    /// the bytes to send are written once at the end.
    private func perform(_ actions: [SyncAction], on run: SessionRun) async -> Bool {
        var actions = actions
        var index = 0
        var closed = false
        while index < actions.count {
            let action = actions[index]
            index += 1
            switch run.step(action, rest: actions[index...]) {
            case nil: break
            case .close: closed = true
            case .unreachable(let space, let gaps):
                await store.unreachable(space: space, gaps: gaps, from: run.peer)
            case .claims(let space, let claims, let settledAfter):
                // Inline (claims come rarely, and a one-shot sync must have kept them before it says bye).
                await store.receiveClaims(space: space, claims: claims, from: run.peer)
                if let (role, spaces) = settledAfter {
                    // Pushed to a settled session: compare again with what is held.
                    await store.settled(with: run.peer, role: role, spaces: spaces)
                }
            case .synced(let role, let spaces):
                await store.settled(with: run.peer, role: role, spaces: spaces)
                actions += run.synced()
            }
        }
        run.noteOpened()
        guard let out = run.takeOutput() else { return closed }
        do throws(TransportError) {
            try await run.writer.write(out)
        } catch {
            run.writeFailed(error)
            if !closed {
                _ = run.session.connectionLost()
                closed = true
            }
        }
        return closed
    }
}

/// What ``SessionRun/step(_:rest:)`` leaves to the async caller.
enum SessionStep {
    case close
    case unreachable(SpaceID, [SigningPublicKey: ClosedRange<UInt64>])
    /// Keep the claims; then, if given, compare again with what is held (the session had settled).
    case claims(SpaceID, [HeadClaim], settledAfter: (NodeRole, [SpaceSyncStatus])?)
    case synced(NodeRole, [SpaceSyncStatus])
}

/// One session's state while ``PeerConnection`` drives it, changed only by synchronous steps
/// (used by the one task that drives the session).
final class SessionRun: @unchecked Sendable {
    var session: SyncSession
    var writer: SecureWriter
    let connection: PeerConnection
    /// The session's own events (a delivery the driver did itself is heard as `delivered`).
    let events: AsyncStream<PeerConnection.Event>.Continuation
    let storeJobs: AsyncStream<PeerConnection.StoreJob>.Continuation
    /// The connection's delivery task; nil: the driver ``SyncStoreDriver/deliversDirectly``.
    let deliveries: AsyncStream<PeerConnection.DeliverJob>.Continuation?
    let attachments: (any AttachmentHandler, AsyncStream<PeerConnection.AttachmentJob>.Continuation)?
    let peer: NodeID
    var transportError: TransportError?
    var storeError: String?
    var wasOpen = false
    var wasSynced = false
    /// With closeWhenSynced, bye waits for the attachment handler too (a one-shot push).
    var attachmentsSettled: Bool
    /// Bytes to send at the end of the current actions.
    private var out: [UInt8] = []
    /// A delivery the driver is storing on its own path (one at a time: see
    /// ``SyncStoreDriver/deliver(space:envelopes:from:then:)``), and those that wait for it.
    private var deliveryOutstanding = false
    private var waitingDeliveries: [PeerConnection.DeliverJob] = []

    init(
        _ session: SyncSession, connection: PeerConnection, writer: SecureWriter,
        events: AsyncStream<PeerConnection.Event>.Continuation,
        storeJobs: AsyncStream<PeerConnection.StoreJob>.Continuation,
        deliveries: AsyncStream<PeerConnection.DeliverJob>.Continuation?,
        attachments: (any AttachmentHandler, AsyncStream<PeerConnection.AttachmentJob>.Continuation)?
    ) {
        self.session = session
        self.connection = connection
        self.writer = writer
        self.events = events
        self.storeJobs = storeJobs
        self.deliveries = deliveries
        self.attachments = attachments
        self.peer = session.peer.nodeID
        attachmentsSettled = attachments == nil
    }

    static func now() -> SyncInstant { SyncInstant(nanoseconds: NIODeadline.now().uptimeNanoseconds) }

    func start() -> [SyncAction] { session.start(now: Self.now()) }

    private var role: NodeRole { session.peerHello?.role ?? .member }
    private var statuses: [SpaceSyncStatus] { session.sharedSpaces.compactMap { session.status(of: $0) } }

    /// Applies one event to the session; returns its actions and the received bytes it took.
    func apply(_ event: PeerConnection.Event, closer: ChannelCloser) -> (actions: [SyncAction], taken: Int) {
        let now = Self.now()
        switch event {
        case .bytes(let bytes):
            return (session.receive(bytes, now: now), bytes.count)
        case .tick:
            return (session.tick(now: now), 0)
        case .local(let update):
            let actions = session.localEnvelopes(space: update.space, update.envelopes)
            // Envelopes stored through another session (or written here) may be what this peer
            // was ahead by: the lag recorded for it must not stay at its last summary's figure
            // (the demo's relay showed "we lack 6" for good once both offices sent the same 6).
            if let status = session.status(of: update.space) { connection.onEvent(.progress(peer: peer, status: status)) }
            return (actions, 0)
        case .localClaims(let update):
            return (session.localClaims(space: update.space, update.claims), 0)
        case .fetched(let space, let envelopes, let complete):
            return (session.fetched(space: space, envelopes: envelopes, complete: complete), 0)
        case .stored(let space, let vector):
            return (stored(space, vector), 0)
        case .delivered(let job, .success(let vector)):
            deliveryOutstanding = false
            if !waitingDeliveries.isEmpty { startDelivery(waitingDeliveries.removeFirst()) }
            return (stored(job.space, vector), 0)
        case .delivered(let job, .failure(let error)):
            deliveryOutstanding = false
            return apply(.deliveryFailed(job, error), closer: closer)
        case .attachmentOut(let m):
            let actions = session.sendAttachment(m)
            attachments?.0.sent(m)
            return (actions, 0)
        case .attachmentsSettled:
            attachmentsSettled = true
            return (connection.configuration.closeWhenSynced && wasSynced ? session.close() : [], 0)
        case .storeFailed(let message, let refusal):
            storeError = message
            connection.logger.error("store failure, closing the session: \(message)", metadata: ["peer": "\(peer)"])
            // A refusal is told to the peer (error `refused`, which it shows and retries later);
            // any other store failure ends the session with a plain bye, as before.
            return (refusal.map { session.abort(SyncError(.refused, $0)) } ?? session.close(), 0)
        case .inboundEnded(let error):
            transportError = transportError ?? error ?? closer.fault
            return (session.connectionLost(), 0)
        }
    }

    /// Carries out one action, or says which store call the caller must await. `rest`: the
    /// actions after it.
    func step(_ action: SyncAction, rest: ArraySlice<SyncAction>) -> SessionStep? {
        switch action {
        case .send(let bytes):
            out.append(contentsOf: bytes)
        case .fetch(let space, let after, let limit):
            storeJobs.yield(.fetch(PeerConnection.FetchJob(space: space, after: after, limit: limit)))
        case .deliver(let space, let envelopes, let from):
            let job = PeerConnection.DeliverJob(space: space, envelopes: envelopes, from: from)
            if deliveryOutstanding { waitingDeliveries.append(job) } else { startDelivery(job) }
        case .peerProgress(let space, _):
            if let status = session.status(of: space) { connection.onEvent(.progress(peer: peer, status: status)) }
        case .peerHeads(let summary):
            storeJobs.yield(.heads(summary))
        case .unreachable(let space, let gaps, _):
            return .unreachable(space, gaps)
        case .claims(let space, let claims, _):
            let again = session.isSettled && !rest.contains(where: { if case .synced = $0 { true } else { false } })
            return .claims(space, claims, settledAfter: again ? (role, statuses) : nil)
        case .synced:
            wasSynced = true
            return .synced(role, statuses)
        case .attachment(let m):
            attachments?.1.yield(.received(m))
        case .close:
            return .close
        }
        return nil
    }

    /// Hands `job` to the connection's delivery task, or else to the driver's own delivery path
    /// (its outcome comes back as `delivered`, on this task's events: no task between).
    private func startDelivery(_ job: PeerConnection.DeliverJob) {
        if let deliveries {
            deliveries.yield(job)
            return
        }
        let events = self.events
        deliveryOutstanding = true
        connection.store.deliver(space: job.space, envelopes: job.envelopes, from: job.from) {
            events.yield(.delivered(job, $0))
        }
    }

    private func stored(_ space: SpaceID, _ vector: FeedVector) -> [SyncAction] {
        let actions = session.stored(space: space, vector: vector)
        if let status = session.status(of: space) { connection.onEvent(.progress(peer: peer, status: status)) }
        return actions
    }

    /// After the store heard the session settled: reports it; returns bye when the session
    /// closes once synced (and its attachments settled).
    func synced() -> [SyncAction] {
        connection.onEvent(.synced(peer: peer, stats: session.stats))
        return connection.configuration.closeWhenSynced && attachmentsSettled ? session.close() : []
    }

    /// Reports the session's opening, once.
    func noteOpened() {
        guard !wasOpen && session.isOpen else { return }
        wasOpen = true
        attachments?.1.yield(.opened(role, session.sharedSpaces))
        connection.onEvent(.opened(peer: peer, role: role, sharedSpaces: session.sharedSpaces))
    }

    /// The bytes to write now (nil: none, or the connection already failed).
    func takeOutput() -> [UInt8]? {
        guard !out.isEmpty else { return nil }
        defer { out = [] }
        return transportError == nil ? out : nil
    }

    func writeFailed(_ error: TransportError) {
        // A write failing because the node is shutting down is not the peer's fault.
        if !Task.isCancelled { transportError = error }
    }

    func report(closer: ChannelCloser) -> PeerReport {
        let reason = session.closeReason ?? .connectionLost
        let metadata: Logger.Metadata = ["peer": "\(peer)"]
        if let transportError {
            connection.logger.notice("session closed: \(reason); \(transportError)", metadata: metadata)
        } else {
            connection.logger.debug("session closed: \(reason)", metadata: metadata)
        }
        return PeerReport(
            peer: peer, reason: reason, stats: session.stats, wire: closer.wireStatistics, spaces: statuses,
            transportError: transportError, storeError: storeError, wasSynced: wasSynced)
    }
}

/// The parts of a ``SecureChannel`` other tasks may use: close it, enforce its deadlines.
struct ChannelCloser: Sendable {
    let channel: any Channel
    let monitor: ConnectionMonitor
    let configuration: TransportConfiguration

    func close() { channel.close(promise: nil) }

    var fault: TransportError? { monitor.fault }

    /// Closes the channel if it missed a deadline; returns whether it did.
    func enforceDeadlines() -> Bool {
        guard let e = monitor.missedDeadline(now: NIODeadline.now().uptimeNanoseconds, configuration) else {
            return false
        }
        monitor.fail(e)
        channel.close(promise: nil)
        return true
    }

    var wireStatistics: WireStatistics {
        monitor.state.withLockedValue {
            WireStatistics(
                bytesSent: $0.bytesSent, bytesReceived: $0.bytesReceived, messagesSent: $0.messagesSent,
                messagesReceived: $0.messagesReceived)
        }
    }
}
