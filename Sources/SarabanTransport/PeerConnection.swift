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
/// Calls for one connection never overlap for `fetch`, nor for `deliver` (each runs its own
/// queue, in the session's order); calls from different connections may run concurrently.
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
    /// the session). Called once per connection. Default: none.
    func localClaims() -> AsyncStream<StoredClaims>

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
        /// A fetch or delivery failed; `refusal`: the failure is one to tell the peer (``RefusingStoreError``).
        case storeFailed(String, refusal: String?)
        case attachmentOut(AttachmentMessage)
        /// The attachment handler's ``AttachmentHandler/settled()`` returned.
        case attachmentsSettled
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
        let updates = store.localChanges(for: peer)
        let claimUpdates = store.localClaims()
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
        let session = SyncSession(
            configuration: SyncConfiguration(
                role: configuration.role, spaces: spaces, heads: heads, claims: claims, floors: floors,
                limits: configuration.limits),
            peer: peer.publicKey)
        let (events, sink) = AsyncStream.makeStream(of: Event.self)
        let (fetchJobs, fetchSink) = AsyncStream.makeStream(of: FetchJob.self)
        let (deliverJobs, deliverSink) = AsyncStream.makeStream(of: DeliverJob.self)
        let (headJobs, headSink) = AsyncStream.makeStream(of: SpaceVector.self)
        let attachments = store.attachmentHandler(for: peer)
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
                    session, events: events, writer: writer, fetches: fetchSink, deliveries: deliverSink, heads: headSink,
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
                group.addTask {
                    for await m in attachments.outgoing { sink.yield(.attachmentOut(m)) }
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
            group.addTask {
                for await update in updates { sink.yield(.local(update)) }
                return nil
            }
            group.addTask {
                for await update in claimUpdates where update.from != peer { sink.yield(.localClaims(update)) }
                return nil
            }
            group.addTask {
                for await job in fetchJobs {
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
                }
                return nil
            }
            group.addTask {
                for await summary in headJobs { await store.peerHeads(summary, from: peer) }
                return nil
            }
            group.addTask {
                for await job in deliverJobs {
                    do {
                        let vector = try await store.deliver(space: job.space, envelopes: job.envelopes, from: job.from)
                        sink.yield(.stored(job.space, vector))
                    } catch {
                        sink.yield(
                            .storeFailed(
                                "storing \(job.envelopes.count) envelopes in space \(job.space) failed: \(error)",
                                refusal: (error as? any RefusingStoreError).map { "\($0)" }))
                    }
                }
                return nil
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
    private func drive(
        _ session: SyncSession, events: AsyncStream<Event>, writer: SecureWriter,
        fetches: AsyncStream<FetchJob>.Continuation, deliveries: AsyncStream<DeliverJob>.Continuation,
        heads: AsyncStream<SpaceVector>.Continuation, closer: ChannelCloser, budget: ReceiveBudget,
        attachments: (any AttachmentHandler, AsyncStream<AttachmentJob>.Continuation)?
    ) async -> PeerReport {
        var session = session
        var writer = writer
        var transportError: TransportError?
        var storeError: String?
        var wasOpen = false
        var wasSynced = false
        // With closeWhenSynced, bye waits for the attachment handler too (a one-shot push).
        var attachmentsSettled = attachments == nil
        let peer = session.peer.nodeID
        let metadata: Logger.Metadata = ["peer": "\(peer)"]

        /// Carries out `actions`; returns whether the session closed.
        func perform(_ actions: [SyncAction]) async -> Bool {
            var actions = actions
            var index = 0
            var out: [UInt8] = []
            var closed = false
            while index < actions.count {
                let action = actions[index]
                index += 1
                switch action {
                case .send(let bytes):
                    out.append(contentsOf: bytes)
                case .fetch(let space, let after, let limit):
                    fetches.yield(FetchJob(space: space, after: after, limit: limit))
                case .deliver(let space, let envelopes, let from):
                    deliveries.yield(DeliverJob(space: space, envelopes: envelopes, from: from))
                case .peerProgress(let space, _):
                    if let status = session.status(of: space) { onEvent(.progress(peer: peer, status: status)) }
                case .peerHeads(let summary):
                    heads.yield(summary)
                case .unreachable(let space, let gaps, _):
                    await store.unreachable(space: space, gaps: gaps, from: peer)
                case .claims(let space, let claims, _):
                    // Inline (claims come rarely, and a one-shot sync must have kept them before it says bye).
                    await store.receiveClaims(space: space, claims: claims, from: peer)
                    if session.isSettled && !actions[index...].contains(where: { if case .synced = $0 { true } else { false } }) {
                        // Pushed to a settled session: compare again with what is held.
                        await store.settled(
                            with: peer, role: session.peerHello?.role ?? .member,
                            spaces: session.sharedSpaces.compactMap { session.status(of: $0) })
                    }
                case .synced:
                    wasSynced = true
                    await store.settled(
                        with: peer, role: session.peerHello?.role ?? .member,
                        spaces: session.sharedSpaces.compactMap { session.status(of: $0) })
                    onEvent(.synced(peer: peer, stats: session.stats))
                    if configuration.closeWhenSynced && attachmentsSettled { actions += session.close() }
                case .attachment(let m):
                    attachments?.1.yield(.received(m))
                case .close:
                    closed = true
                }
            }
            if !wasOpen && session.isOpen {
                wasOpen = true
                attachments?.1.yield(.opened(session.peerHello?.role ?? .member, session.sharedSpaces))
                onEvent(
                    .opened(peer: peer, role: session.peerHello?.role ?? .member, sharedSpaces: session.sharedSpaces))
            }
            if !out.isEmpty && transportError == nil {
                do throws(TransportError) {
                    try await writer.write(out)
                } catch {
                    // A write failing because the node is shutting down is not the peer's fault.
                    if !Task.isCancelled { transportError = error }
                    if !closed {
                        _ = session.connectionLost()
                        closed = true
                    }
                }
            }
            return closed
        }

        var closed = await perform(session.start(now: SyncInstant(nanoseconds: NIODeadline.now().uptimeNanoseconds)))
        for await event in events {
            // A closed session must stop reading at once: filtering with `where` kept waiting for
            // further events, so a one-shot sync sat until the idle timeout.
            if closed { break }
            let now = SyncInstant(nanoseconds: NIODeadline.now().uptimeNanoseconds)
            let actions: [SyncAction]
            var taken = 0
            switch event {
            case .bytes(let bytes):
                actions = session.receive(bytes, now: now)
                taken = bytes.count
            case .tick: actions = session.tick(now: now)
            case .local(let update):
                actions = session.localEnvelopes(space: update.space, update.envelopes)
                // Envelopes stored through another session (or written here) may be what this peer
                // was ahead by: the lag recorded for it must not stay at its last summary's figure
                // (the demo's relay showed "we lack 6" for good once both offices sent the same 6).
                if let status = session.status(of: update.space) { onEvent(.progress(peer: peer, status: status)) }
            case .localClaims(let update): actions = session.localClaims(space: update.space, update.claims)
            case .fetched(let space, let envelopes, let complete):
                actions = session.fetched(space: space, envelopes: envelopes, complete: complete)
            case .stored(let space, let vector):
                actions = session.stored(space: space, vector: vector)
                if let status = session.status(of: space) { onEvent(.progress(peer: peer, status: status)) }
            case .attachmentOut(let m):
                actions = session.sendAttachment(m)
                attachments?.0.sent(m)
            case .attachmentsSettled:
                attachmentsSettled = true
                actions = configuration.closeWhenSynced && wasSynced ? session.close() : []
            case .storeFailed(let message, let refusal):
                storeError = message
                logger.error("store failure, closing the session: \(message)", metadata: metadata)
                // A refusal is told to the peer (error `refused`, which it shows and retries later);
                // any other store failure ends the session with a plain bye, as before.
                actions = refusal.map { session.abort(SyncError(.refused, $0)) } ?? session.close()
            case .inboundEnded(let error):
                transportError = transportError ?? error ?? closer.fault
                actions = session.connectionLost()
            }
            closed = await perform(actions)
            // Taken only now, once the actions (writes included) are done: see ReceiveBudget.
            if taken > 0 { budget.release(taken) }
            if closed { break }
        }
        budget.close()
        if !session.isClosed {
            // Cancelled (the node is shutting down): say bye, best effort.
            _ = await perform(session.close())
        }
        closer.close()
        fetches.finish()
        deliveries.finish()
        heads.finish()
        let reason = session.closeReason ?? .connectionLost
        if let transportError {
            logger.notice("session closed: \(reason); \(transportError)", metadata: metadata)
        } else {
            logger.debug("session closed: \(reason)", metadata: metadata)
        }
        return PeerReport(
            peer: peer, reason: reason, stats: session.stats, wire: closer.wireStatistics,
            spaces: session.sharedSpaces.compactMap { session.status(of: $0) }, transportError: transportError,
            storeError: storeError, wasSynced: wasSynced)
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
