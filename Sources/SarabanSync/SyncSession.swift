import SarabanCrypto

/// The sans-IO sync state machine for one connection, after the Noise handshake authenticated `peer`.
///
/// Inputs are method calls; each returns the ``SyncAction``s to perform, in order. It holds no
/// socket, reads no clock and draws no random number: time comes in as ``SyncInstant``, bytes
/// in and out as arrays, and the store is reached through `fetch`/`deliver` actions answered by
/// `fetched`/`stored`. It never throws: a misbehaving peer gets an `error` frame and a `.close`.
///
/// ```
/// var s = SyncSession(configuration: config, peer: peerKey)
/// perform(s.start(now: clock.now))
/// on bytes from the connection:   perform(s.receive(bytes, now: clock.now))
/// on a timer (e.g. every second): perform(s.tick(now: clock.now))
/// on .fetch(space, after, limit): perform(s.fetched(space: space, envelopes: store.read(...), complete: ...))
/// on .deliver(space, envs, peer): let accepted = node.verifyStoreApply(envs)
///                                 perform(s.stored(space: space, vector: store.vector(space)))
///                                 for other in node.sessions { perform(other.localEnvelopes(space: space, accepted)) }
/// on a local write:               for s in node.sessions { perform(s.localEnvelopes(space: space, [sealed])) }
/// on .close(reason):              close the connection (after writing the sends before it)
/// ```
///
/// Protocol (Sync/PROTOCOL.md): both sides send `hello`; for each space both carry, both send a
/// `summary` (version vector); each side then sends, per author, the envelopes after the peer's
/// entry, in batches of at most ``SyncLimits/batchEnvelopes`` envelopes and ``SyncLimits/batchBytes``
/// bytes, with at most `window` batches unacknowledged. The receiver acks a batch once the node
/// has stored it, with the vector it now holds, so a broken connection resumes from what was stored.
public struct SyncSession: Sendable {
    enum Phase: Sendable, Equatable {
        case idle
        case awaitingHello
        case open
        case closed(CloseReason)
    }

    struct SpaceState: Sendable {
        /// What this node holds.
        var local: FeedVector
        /// Bumped whenever `local` grows.
        var generation: UInt64 = 0
        var summaryReceived = false
        /// What the peer is known to hold: its summary, its acks, what it sent us.
        var peerHolds = FeedVector()
        /// `peerHolds` ∪ everything sent or queued: the point the next fetch starts from.
        var queued = FeedVector()
        /// Envelopes fetched or pushed, not yet sent.
        var queue: [Envelope] = []
        var queueHead = 0
        /// Frame sizes of the batches sent and not yet acknowledged, oldest first.
        var inFlightSizes: [Int] = []
        var inFlight: Int { inFlightSizes.count }
        var fetchOutstanding = false
        var fetchGeneration: UInt64 = 0
        /// The store had nothing more as of this generation; fetch again only when `local` grows.
        var exhaustedGeneration: UInt64?
        /// Batches delivered to the node, awaiting `stored`.
        var pendingDeliveries = 0
        /// Everything the peer sent in this session.
        var received = FeedVector()
        /// The peer will send head claims of this space: its hello announced them and its
        /// `claimsDigest` has not come yet, or it differed from ours and was not zero, and its
        /// `claims` with the last flag have not come yet.
        var claimsOwed = false
        /// The vector of the peer's summary (for the tags sent back in `heads`).
        var peerSummary = FeedVector()
        /// Per author, the first sequence this node holds, for feeds not held from their start
        /// (the configuration's ``SyncConfiguration/floors``): a peer below it cannot be served.
        var floors = FeedVector()
        /// Per author, the first sequence the peer holds (its `horizons`).
        var peerFloors = FeedVector()

        init(local: FeedVector, floors: FeedVector = FeedVector()) {
            self.local = local
            self.floors = floors
        }

        /// This node cannot send `author`'s envelopes to the peer: the peer holds less than the
        /// envelope before this node's first one, so nothing held here chains on what it holds.
        func unservable(_ author: SigningPublicKey) -> Bool {
            let first = floors[author]
            return first > 1 && first > peerHolds[author] &+ 1
        }

        /// The peer cannot send `author`'s envelopes to this node (the mirror of ``unservable(_:)``).
        func unreachable(_ author: SigningPublicKey, have: FeedVector) -> Bool {
            let first = peerFloors[author]
            return first > 1 && first > have[author] &+ 1
        }

        /// What the next fetch starts from: `queued`, with the authors the peer cannot be sent
        /// raised to what this node holds (so the store reads none of theirs).
        var fetchPoint: FeedVector {
            guard !floors.isEmpty else { return queued }
            var after = queued
            for (a, seq) in local.entries where unservable(a) { _ = after.raise(a, to: seq) }
            return after
        }

        /// This node holds envelopes not yet queued for the peer that it can send.
        var hasMoreToSend: Bool {
            guard !floors.isEmpty else { return !queued.dominates(local) }
            return local.entries.contains { a, seq in seq > queued[a] && !unservable(a) }
        }

        var queueIsEmpty: Bool { queueHead >= queue.count }
        /// Envelopes queued and not yet sent.
        var queuedCount: Int { max(queue.count - queueHead, 0) }

        var needsFetch: Bool {
            summaryReceived && queueIsEmpty && !fetchOutstanding && hasMoreToSend
                && exhaustedGeneration.map { generation > $0 } ?? true
        }

        var settled: Bool {
            summaryReceived && queueIsEmpty && inFlight == 0 && !fetchOutstanding && !needsFetch
                && pendingDeliveries == 0 && !peerOwes
        }

        /// The peer announced data it has not sent: its summary (the hello listed the space), or
        /// envelopes beyond what this node holds or was sent in this session (its summary, its acks).
        /// Authors below the peer's horizon (``unreachable(_:have:)``) are not owed.
        var peerOwes: Bool {
            if !summaryReceived || claimsOwed { return true }
            let have = local.merging(received)
            guard !peerFloors.isEmpty else { return !have.dominates(peerHolds) }
            return peerHolds.entries.contains { a, seq in seq > have[a] && !unreachable(a, have: have) }
        }

        /// Changes the peer is known to hold that this node neither holds nor was sent (and the
        /// peer can send).
        var changesOwed: UInt64 {
            let have = local.merging(received)
            return peerHolds.entries.reduce(0 as UInt64) { sum, e in
                e.value > have[e.key] && !unreachable(e.key, have: have) ? sum &+ (e.value - have[e.key]) : sum
            }
        }

        /// Per author, the sequence numbers this node lacks that the peer holds but cannot send
        /// (they are below its horizon).
        var gaps: [SigningPublicKey: ClosedRange<UInt64>] {
            let have = local.merging(received)
            var out: [SigningPublicKey: ClosedRange<UInt64>] = [:]
            for (a, first) in peerFloors.entries where unreachable(a, have: have) {
                out[a] = (have[a] + 1)...(first - 1)
            }
            return out
        }

        mutating func raiseLocal(_ v: FeedVector) {
            let before = local
            local.merge(v)
            if local != before { generation &+= 1 }
        }
    }

    /// This node's settings.
    public let configuration: SyncConfiguration
    /// The peer's identity key, authenticated by the handshake.
    public let peer: SigningPublicKey
    /// The peer's hello, once received.
    public private(set) var peerHello: Hello?
    public private(set) var stats = SyncStats()

    private var phase: Phase = .idle
    private var localVectors: [SpaceID: FeedVector]
    /// Per space, per author, the last envelope this node holds, as far as known (the
    /// configuration's, raised by local envelopes): the head tags of the summary.
    private var localHeads: [SpaceID: [SigningPublicKey: FeedHead]]
    private var spaces: [SpaceID: SpaceState] = [:]
    /// Per space, the head claims this node holds (the configuration's).
    private let claims: [SpaceID: [HeadClaim]]
    /// Per space, the first sequence held of feeds not held from their start (the configuration's).
    private let floors: [SpaceID: FeedVector]
    /// `claimsDigest` messages received: the combined one, then (when the two differed) the per-space one.
    private var claimDigestsReceived = 0
    /// What this node's summaries said, with their head tags (when the peer compares them by digest).
    private var sentSummaries: [SpaceVector] = []
    private var headsDigestReceived = false
    /// The peer compares head tags by digest (both hellos set ``HelloFeatures/headDigest``) and
    /// its `headsDigest`, or its last `heads` after digests that differed, has not come yet: the
    /// session is not settled, and the deadline for announced data runs.
    private var headsOwed = false
    private var claimDigests: [SpaceID: UInt64] { Dictionary(uniqueKeysWithValues: order.map { ($0, HeadClaim.digest(claims[$0] ?? [])) }) }
    /// Shared spaces in canonical order, for round-robin sending.
    private var order: [SpaceID] = []
    private var cursor = 0
    private var sendWindow = 1
    private var inFlightTotal = 0
    private var inFlightBytes = 0
    private var pendingTotal = 0
    private var decoder = FrameDecoder()
    private var lastReceived = SyncInstant(nanoseconds: 0)
    /// The latest time passed in (sends made from `fetched`/`stored` are stamped with it).
    private var latest = SyncInstant(nanoseconds: 0)
    /// When the oldest unacknowledged batch went out, or the last ack arrived while more are in flight.
    private var ackClock: SyncInstant?
    /// Since when the peer has owed us announced data (``SpaceState/peerOwes``) without sending
    /// any, while no delivery of ours is pending; nil otherwise. Restarted by progress: envelopes
    /// new to this session, a summary, an ack, a delivery stored (see `finish`).
    private var owedClock: SyncInstant?
    /// When the first byte of the partial frame now buffered arrived.
    private var frameStarted: SyncInstant?
    private var lastPing: SyncInstant?
    private var pingNonce: UInt64 = 0
    private var wasSettled = false

    private var limits: SyncLimits { configuration.limits }

    public init(configuration: SyncConfiguration, peer: SigningPublicKey) {
        self.configuration = configuration
        self.peer = peer
        self.localVectors = configuration.spaces
        self.localHeads = configuration.heads
        self.claims = configuration.claims
        self.floors = configuration.floors
    }

    /// Whether the peer's hello announced head claims (so it gets a `claimsDigest` and `claims`).
    private var peerExchangesClaims: Bool { peerHello?.features.contains(.headClaims) == true }

    /// Whether the peer's hello announced head digests (so its summaries and ours carry no tag,
    /// and a `headsDigest` follows them).
    private var peerComparesHeadDigests: Bool { peerHello?.features.contains(.headDigest) == true }

    // MARK: Observation

    /// Whether the session has ended (every input now returns no action).
    public var isClosed: Bool { if case .closed = phase { true } else { false } }

    /// Why the session ended, once it has.
    public var closeReason: CloseReason? { if case .closed(let r) = phase { r } else { nil } }

    /// Whether hellos have been exchanged and the session is running.
    public var isOpen: Bool { phase == .open }

    /// Every shared space caught up both ways with nothing in flight (see ``SyncAction/synced``).
    public var isSettled: Bool { phase == .open && !headsOwed && spaces.values.allSatisfy(\.settled) }

    /// The spaces both sides carry (known after the peer's hello), ascending.
    public var sharedSpaces: [SpaceID] { order }

    /// Where a shared space stands.
    public func status(of space: SpaceID) -> SpaceSyncStatus? {
        guard let s = spaces[space] else { return nil }
        return SpaceSyncStatus(
            space: space, local: s.local, peerHolds: s.peerHolds, batchesInFlight: s.inFlight,
            deliveriesPending: s.pendingDeliveries)
    }

    // MARK: Inputs

    /// Sends hello. Call once, when the secure channel is up.
    public mutating func start(now: SyncInstant) -> [SyncAction] {
        guard phase == .idle else { return [] }
        var out: [SyncAction] = []
        lastReceived = now
        latest = max(latest, now)
        phase = .awaitingHello
        let hello = Hello(
            role: configuration.role, receiveWindow: limits.window, spaces: localVectors.keys.sorted(),
            features: [.headTags, .headClaims, .headDigest, .horizons])
        send(.hello(hello), &out)
        return out
    }

    /// Bytes read from the secure channel: any chunking of the frame stream (whole frames or not).
    public mutating func receive(_ bytes: [UInt8], now: SyncInstant) -> [SyncAction] {
        var out: [SyncAction] = []
        if phase == .idle { out = start(now: now) }
        guard !isClosed else { return out }
        lastReceived = now
        latest = max(latest, now)
        stats.bytesReceived += bytes.count
        decoder.append(bytes)
        if frameStarted == nil && !bytes.isEmpty { frameStarted = now }
        while !isClosed {
            let payload: [UInt8]
            do {
                guard let p = try decoder.next() else { break }
                payload = p
            } catch {
                let code: SyncErrorCode = error.code == .oversized ? .frameTooLarge : .malformed
                fail(.violation(SyncError(code, error.description)), &out)
                break
            }
            stats.framesReceived += 1
            frameStarted = decoder.bufferedByteCount > 0 ? now : nil
            let message: SyncMessage
            do {
                message = try SyncMessage.decode(payload)
            } catch {
                let code: SyncErrorCode =
                    switch error.code {
                    case .unsupportedVersion: .unsupportedVersion
                    case .invalidEnvelope: .invalidEnvelope
                    default: .malformed
                    }
                fail(.violation(SyncError(code, error.description)), &out)
                break
            }
            handle(message, &out)
        }
        finish(&out)
        return out
    }

    /// New envelopes stored for `space` (written locally, or received from another peer and
    /// verified): queued when this peer is caught up (sent at once, or with the next ack while the
    /// window is full), otherwise sent by the next fetch.
    /// Envelopes the peer already holds or that do not extend what it holds are skipped, so
    /// calling this on every session of the node, the delivering one included, is safe.
    public mutating func localEnvelopes(space: SpaceID, _ envelopes: [Envelope]) -> [SyncAction] {
        guard !isClosed, localVectors[space] != nil else { return [] }
        var grown = FeedVector()
        for e in envelopes where e.header.spaceID == space.bytes {
            grown.add(e.header)
            if e.header.seqEnd > localHeads[space]?[e.header.author]?.lastSequence ?? 0 {
                localHeads[space, default: [:]][e.header.author] = FeedHead(lastSequence: e.header.seqEnd, lastID: e.id)
            }
        }
        localVectors[space]!.merge(grown)
        guard phase == .open, var s = spaces[space] else { return [] }
        var out: [SyncAction] = []
        // Everything held before these is sent or queued, and no read from the store is pending:
        // these go into the queue, even while the window is full (they then leave together, in
        // one batch, on the next ack, rather than being read back from the store by a fetch).
        // The space's queue holds what the session's window has room for and one batch more;
        // beyond it the next fetch reads them.
        let caughtUp = s.summaryReceived && !s.fetchOutstanding && !s.hasMoreToSend
        s.raiseLocal(grown)
        if caughtUp {
            let room = limits.batchEnvelopes * (max(sendWindow - inFlightTotal, 0) + 1) - s.queuedCount
            var taken = 0
            for e in envelopes where e.header.spaceID == space.bytes && taken < room {
                if enqueue(e, into: &s, &out) { taken += 1 }
                if isClosed { break }
            }
        }
        spaces[space] = s
        pump(&out)
        finish(&out)
        return out
    }

    /// The answer to a `fetch`: the envelopes read (each author's in chain order), and whether
    /// the store held nothing more after them.
    public mutating func fetched(space: SpaceID, envelopes: [Envelope], complete: Bool) -> [SyncAction] {
        guard phase == .open, var s = spaces[space], s.fetchOutstanding else { return [] }
        var out: [SyncAction] = []
        s.fetchOutstanding = false
        var added = 0
        var blocked = Set<SigningPublicKey>()
        for e in envelopes where e.header.spaceID == space.bytes && !blocked.contains(e.header.author) {
            let before = s.queued[e.header.author]
            if enqueue(e, into: &s, &out) {
                added += 1
            } else if e.header.seqStart > before + 1 {
                blocked.insert(e.header.author)  // out of chain order: the rest of this author waits
            }
            if isClosed { return out }
        }
        if complete || added == 0 { s.exhaustedGeneration = s.fetchGeneration }
        spaces[space] = s
        pump(&out)
        finish(&out)
        return out
    }

    /// The node has persisted what it accepted of a delivered batch; `vector` is what it holds
    /// of `space` now. Acknowledges the batch to the peer.
    public mutating func stored(space: SpaceID, vector: FeedVector) -> [SyncAction] {
        guard !isClosed, localVectors[space] != nil else { return [] }
        localVectors[space]!.merge(vector)
        guard phase == .open, var s = spaces[space] else { return [] }
        var out: [SyncAction] = []
        s.raiseLocal(vector)
        if s.pendingDeliveries > 0 {
            s.pendingDeliveries -= 1
            pendingTotal -= 1
            owedClock = nil  // progress: the peer may send again from now
            send(.ack(space: space, holds: s.local), &out)
        }
        spaces[space] = s
        pump(&out)
        finish(&out)
        return out
    }

    /// Keep-alive and timeouts. Call periodically (every second or so) with the current time.
    public mutating func tick(now: SyncInstant) -> [SyncAction] {
        guard phase == .open || phase == .awaitingHello else { return [] }
        var out: [SyncAction] = []
        latest = max(latest, now)
        let quiet = now.duration(since: lastReceived)
        if quiet >= limits.timeout {
            send(.error(code: .timeout, message: "nothing received for \(quiet)"), &out)
            phase = .closed(.timedOut)
            out.append(.close(.timedOut))
        } else if let since = ackClock, inFlightTotal > 0,
            now.duration(since: since) >= limits.timeout + .seconds(Double(inFlightBytes) / Double(limits.minimumReceiveRate))
        {
            send(.error(code: .timeout, message: "no ack for \(now.duration(since: since)) with \(inFlightTotal) batches in flight"), &out)
            phase = .closed(.timedOut)
            out.append(.close(.timedOut))
        } else if let since = owedClock,
            now.duration(since: since)
                >= limits.timeout
                + .seconds(Double(inFlightBytes + (decoder.pendingFrameLength ?? 0)) / Double(limits.minimumReceiveRate))
        {
            // The peer announced data and has sent none of it for the allowance, though nothing
            // of ours holds it up (no delivery pending; our acks had time to get through the
            // batches we sent ahead of them, and a frame arriving now had time to arrive).
            let owing = order.filter { spaces[$0]!.peerOwes }
            let changes = owing.reduce(0 as UInt64) { $0 &+ spaces[$1]!.changesOwed }
            let noSummary = owing.filter { !spaces[$0]!.summaryReceived }.count
            send(
                .error(
                    code: .timeout,
                    message: "announced data not sent for \(now.duration(since: since)): \(changes) changes missing in \(owing.count) space(s)"
                        + (noSummary > 0 ? ", \(noSummary) summary(ies) missing" : "")),
                &out)
            phase = .closed(.timedOut)
            out.append(.close(.timedOut))
        } else if let started = frameStarted,
            now.duration(since: started)
                >= limits.timeout + .seconds(Double(decoder.pendingFrameLength ?? 0) / Double(limits.minimumReceiveRate))
        {
            fail(
                .violation(SyncError(
                    .timeout,
                    "a frame of \(decoder.pendingFrameLength.map(String.init) ?? "unknown") bytes is still incomplete after \(now.duration(since: started)) (\(decoder.bufferedByteCount) bytes so far): the sender is too slow")),
                &out)
        } else if phase == .open, quiet >= limits.pingInterval,
            lastPing.map({ now.duration(since: $0) >= limits.pingInterval }) ?? true
        {
            pingNonce &+= 1
            lastPing = now
            send(.ping(nonce: pingNonce), &out)
        }
        return out
    }

    /// Claims made or received by the node since the session started (its own made afresh, or
    /// another peer's it verified and kept): sent at once to a peer that exchanges claims, after
    /// the claims digest (a long-running session keeps passing them on). Nothing otherwise.
    public mutating func localClaims(space: SpaceID, _ claims: [HeadClaim]) -> [SyncAction] {
        guard phase == .open, peerExchangesClaims, spaces[space] != nil else { return [] }
        let mine = claims.filter { $0.space == space }
        guard !mine.isEmpty else { return [] }
        var out: [SyncAction] = []
        sendClaims(space, mine, &out)
        return out
    }

    /// Sends an attachment message of the node (Sync/PROTOCOL.md, "Attachment chunks"); nothing
    /// before hellos are exchanged, after close, or for a space the peer does not carry.
    public mutating func sendAttachment(_ message: AttachmentMessage) -> [SyncAction] {
        guard phase == .open, spaces[message.space] != nil else { return [] }
        var out: [SyncAction] = []
        send(.attachment(message), &out)
        return out
    }

    /// Orderly close: sends `bye`.
    public mutating func close() -> [SyncAction] {
        guard !isClosed else { return [] }
        var out: [SyncAction] = []
        if phase != .idle { send(.bye, &out) }
        phase = .closed(.closedLocally)
        out.append(.close(.closedLocally))
        return out
    }

    /// Closes because of a local fault the peer should hear about (a relay whose database is
    /// unavailable, full or read-only): sends `error` with `error.code` (usually `refused`) and its
    /// text, then closes with `.localFault`. The peer keeps what it did not get acknowledged and
    /// retries on a later session.
    public mutating func abort(_ error: SyncError) -> [SyncAction] {
        guard !isClosed else { return [] }
        var out: [SyncAction] = []
        fail(.localFault(error), &out)
        return out
    }

    /// The connection broke (reset, EOF, Noise failure). Nothing is sent.
    public mutating func connectionLost() -> [SyncAction] {
        guard !isClosed else { return [] }
        phase = .closed(.connectionLost)
        return [.close(.connectionLost)]
    }

    // MARK: Messages

    private mutating func handle(_ message: SyncMessage, _ out: inout [SyncAction]) {
        switch message {
        case .error(let code, let text):
            phase = .closed(.peerError(SyncError(code, text)))
            out.append(.close(.peerError(SyncError(code, text))))
            return
        case .bye:
            phase = .closed(.peerSaidBye)
            out.append(.close(.peerSaidBye))
            return
        default:
            break
        }
        if phase == .awaitingHello {
            guard case .hello(let h) = message else {
                return fail(.violation(SyncError(.unexpectedMessage, "\(message.name) before hello")), &out)
            }
            peerHello = h
            sendWindow = min(limits.window, h.receiveWindow)
            let theirs = Set(h.spaces)
            order = localVectors.keys.filter { theirs.contains($0) }.sorted()
            for id in order {
                spaces[id] = SpaceState(local: localVectors[id]!, floors: floors[id] ?? FeedVector())
                spaces[id]!.claimsOwed = peerExchangesClaims  // until its digest says otherwise
            }
            phase = .open
            headsOwed = peerComparesHeadDigests && !order.isEmpty
            if h.features.contains(.horizons) {
                // Before the summaries, so the peer knows them when it weighs what we announce.
                let items = order.compactMap { id in
                    floors[id].flatMap { f in f.isEmpty ? nil : SpaceVector(space: id, vector: f) }
                }
                if !items.isEmpty { send(.horizons(items), &out) }
            }
            sendSummaries(&out)
            if peerExchangesClaims {
                send(.claimsDigest(combined: HeadClaim.combinedDigest(claimDigests), spaces: nil), &out)
            }
            return
        }
        switch message {
        case .hello:
            fail(.violation(SyncError(.unexpectedMessage, "a second hello")), &out)
        case .summary(let items):
            for item in items {
                guard var s = spaces[item.space] else {
                    return fail(.violation(SyncError(.spaceNotShared, "summary for space \(item.space), which is not shared")), &out)
                }
                guard !s.summaryReceived else {
                    return fail(.violation(SyncError(.unexpectedMessage, "a second summary for space \(item.space)")), &out)
                }
                s.summaryReceived = true
                s.peerSummary = item.vector
                s.peerHolds.merge(item.vector)
                s.queued.merge(item.vector)
                spaces[item.space] = s
                owedClock = nil  // progress (and the deadline for what it announces starts now)
                out.append(.peerProgress(space: item.space, peerHolds: s.peerHolds))
                if !item.heads.isEmpty { out.append(.peerHeads(item)) }
                let gaps = s.gaps
                if !gaps.isEmpty { out.append(.unreachable(space: item.space, gaps: gaps, from: peer)) }
            }
            pump(&out)
        case .horizons(let items):
            for item in items {
                guard var s = spaces[item.space] else {
                    return fail(.violation(SyncError(.spaceNotShared, "horizons for space \(item.space), which is not shared")), &out)
                }
                guard !s.summaryReceived else {
                    return fail(.violation(SyncError(.unexpectedMessage, "horizons for space \(item.space) after its summary")), &out)
                }
                s.peerFloors.merge(item.vector)
                spaces[item.space] = s
            }
        case .envelopes(let space, let envelopes):
            guard var s = spaces[space] else {
                return fail(.violation(SyncError(.spaceNotShared, "envelopes for space \(space), which is not shared")), &out)
            }
            guard s.summaryReceived else {
                return fail(.violation(SyncError(.unexpectedMessage, "envelopes for space \(space) before its summary")), &out)
            }
            guard pendingTotal < limits.window else {
                return fail(
                    .violation(SyncError(.flowControl, "more than \(limits.window) unacknowledged batches")), &out)
            }
            stats.envelopesReceived += envelopes.count
            var fresh: [Envelope] = []
            fresh.reserveCapacity(envelopes.count)
            for e in envelopes {
                // Progress is envelopes new to this session: a replay does not keep the deadline off.
                if s.received.add(e.header) { owedClock = nil }
                s.peerHolds.add(e.header)
                s.queued.add(e.header)
                if s.local.covers(e.header) {
                    stats.duplicatesIgnored += 1
                } else {
                    fresh.append(e)
                }
            }
            if fresh.isEmpty {
                send(.ack(space: space, holds: s.local), &out)
            } else {
                s.pendingDeliveries += 1
                pendingTotal += 1
                out.append(.deliver(space: space, envelopes: fresh, from: peer))
            }
            spaces[space] = s
        case .ack(let space, let holds):
            guard var s = spaces[space] else {
                return fail(.violation(SyncError(.spaceNotShared, "ack for space \(space), which is not shared")), &out)
            }
            guard s.inFlight > 0 else {
                return fail(.violation(SyncError(.flowControl, "ack for space \(space) with no batch in flight")), &out)
            }
            inFlightBytes -= s.inFlightSizes.removeFirst()
            inFlightTotal -= 1
            ackClock = inFlightTotal > 0 ? latest : nil
            owedClock = nil  // progress: the batches ahead of our acks are draining
            s.peerHolds.merge(holds)
            s.queued.merge(holds)
            spaces[space] = s
            out.append(.peerProgress(space: space, peerHolds: s.peerHolds))
            pump(&out)
        case .attachment(let m):
            guard spaces[m.space] != nil else {
                return fail(.violation(SyncError(.spaceNotShared, "attachment \(m.name) for space \(m.space), which is not shared")), &out)
            }
            out.append(.attachment(m))
        case .claimsDigest(let combined, let digests):
            // Both sides compare the same two combined digests, so both know whether the
            // per-space digests follow.
            let mine = claimDigests
            let expected = claimDigestsReceived == 0 || (claimDigestsReceived == 1 && order.contains { spaces[$0]!.claimsOwed })
            guard peerExchangesClaims, expected, (claimDigestsReceived == 0) == (digests == nil) else {
                return fail(.violation(SyncError(.unexpectedMessage, "a claimsDigest out of turn")), &out)
            }
            claimDigestsReceived += 1
            owedClock = nil
            guard let digests else {
                let differ = combined != HeadClaim.combinedDigest(mine)
                for id in order { spaces[id]!.claimsOwed = differ }
                if differ { send(.claimsDigest(combined: HeadClaim.combinedDigest(mine), spaces: mine), &out) }
                break
            }
            if let stranger = digests.keys.first(where: { spaces[$0] == nil }) {
                return fail(.violation(SyncError(.spaceNotShared, "claims digest for space \(stranger), which is not shared")), &out)
            }
            for id in order {
                let theirs = digests[id] ?? 0
                spaces[id]!.claimsOwed = theirs != 0 && theirs != mine[id]!
                if mine[id]! != theirs && mine[id]! != 0 { sendClaims(id, claims[id] ?? [], &out) }
            }
        case .headsDigest(let digest):
            guard peerComparesHeadDigests, !headsDigestReceived, !order.isEmpty else {
                return fail(.violation(SyncError(.unexpectedMessage, "a headsDigest out of turn")), &out)
            }
            guard order.allSatisfy({ spaces[$0]!.summaryReceived }) else {
                return fail(.violation(SyncError(.unexpectedMessage, "a headsDigest before the summaries")), &out)
            }
            headsDigestReceived = true
            owedClock = nil
            // Both sides compare the same two digests, so both know whether `heads` follow.
            if digest == HeadTag.digest(of: sentSummaries) {
                headsOwed = false
            } else {
                sendHeads(&out)
            }
        case .heads(let items, let last):
            guard headsDigestReceived, headsOwed else {
                return fail(.violation(SyncError(.unexpectedMessage, "heads out of turn")), &out)
            }
            if let stranger = items.first(where: { spaces[$0.space] == nil }) {
                return fail(.violation(SyncError(.spaceNotShared, "heads for space \(stranger.space), which is not shared")), &out)
            }
            owedClock = nil
            for item in items where !item.heads.isEmpty { out.append(.peerHeads(item)) }
            if last { headsOwed = false }
        case .claims(let space, let received, let last):
            guard spaces[space] != nil else {
                return fail(.violation(SyncError(.spaceNotShared, "claims for space \(space), which is not shared")), &out)
            }
            // Owed (the digests differed), or pushed later in the session (``localClaims(space:_:)``).
            guard claimDigestsReceived > 0 else {
                return fail(.violation(SyncError(.unexpectedMessage, "claims for space \(space) before the claims digest")), &out)
            }
            owedClock = nil
            if last { spaces[space]!.claimsOwed = false }
            if !received.isEmpty { out.append(.claims(space: space, claims: received, from: peer)) }
        case .ping(let nonce):
            send(.pong(nonce: nonce), &out)
        case .pong:
            break
        case .error, .bye:
            break  // handled above
        }
    }

    // MARK: Sending

    private mutating func send(_ message: SyncMessage, _ out: inout [SyncAction]) {
        let bytes = message.framed()
        stats.framesSent += 1
        stats.bytesSent += bytes.count
        out.append(.send(bytes))
    }

    private mutating func fail(_ reason: CloseReason, _ out: inout [SyncAction]) {
        guard !isClosed else { return }
        switch reason {
        case .violation(let e), .localFault(let e): send(.error(code: e.code, message: e.message), &out)
        default: break
        }
        phase = .closed(reason)
        out.append(.close(reason))
    }

    /// Summaries of every shared space, split so no frame comes near the limit: with head tags
    /// when the peer reads them, or without and followed by their digest when it compares digests.
    private mutating func sendSummaries(_ out: inout [SyncAction]) {
        let byDigest = peerComparesHeadDigests
        let tagged = byDigest || peerHello?.features.contains(.headTags) == true
        var chunk: [SpaceVector] = []
        var authors = Set<SigningPublicKey>()
        var size = 0
        for id in order {
            let v = spaces[id]!.local
            var heads: [SigningPublicKey: HeadTag] = [:]
            if tagged, let known = localHeads[id] {
                for (author, seq) in v.entries {
                    if let h = known[author], h.lastSequence == seq { heads[author] = HeadTag(h.lastID) }
                }
            }
            let item = SpaceVector(space: id, vector: v, heads: heads)
            if byDigest { sentSummaries.append(item) }
            let newAuthors = v.entries.keys.filter { !authors.contains($0) }.count
            let cost = SpaceID.byteCount + 2 + v.entries.count * (13 + HeadTag.byteCount)
                + newAuthors * SigningPublicKey.byteCount
            if !chunk.isEmpty && (size + cost > 1 << 20 || chunk.count >= 4096) {
                send(.summary(chunk), &out)
                chunk = []
                authors = []
                size = 0
            }
            chunk.append(byDigest ? SpaceVector(space: id, vector: v) : item)
            authors.formUnion(v.entries.keys)
            size += cost
        }
        if !chunk.isEmpty { send(.summary(chunk), &out) }
        if byDigest && !order.isEmpty { send(.headsDigest(HeadTag.digest(of: sentSummaries)), &out) }
    }

    /// The answer to a `headsDigest` that differs from ours: the tags of our summary's entries
    /// whose position the peer's summary reaches (the others it checks by the hash chain when
    /// they arrive), in `heads` messages of at most about 1 MiB, the last flagged.
    private mutating func sendHeads(_ out: inout [SyncAction]) {
        var chunk: [SpaceVector] = []
        var size = 0
        for item in sentSummaries {
            let theirs = spaces[item.space]!.peerSummary
            var v = FeedVector()
            var heads: [SigningPublicKey: HeadTag] = [:]
            for (author, tag) in item.heads where theirs[author] >= item.vector[author] {
                v[author] = item.vector[author]
                heads[author] = tag
            }
            guard !heads.isEmpty else { continue }
            let cost = SpaceID.byteCount + 2 + heads.count * (13 + HeadTag.byteCount + SigningPublicKey.byteCount)
            if !chunk.isEmpty && (size + cost > 1 << 20 || chunk.count >= 4096) {
                send(.heads(chunk, last: false), &out)
                chunk = []
                size = 0
            }
            chunk.append(SpaceVector(space: item.space, vector: v, heads: heads))
            size += cost
        }
        send(.heads(chunk, last: true), &out)
    }

    /// Sends `held` (the claims of `id`) in `claims` messages of at most about 1 MiB each, the last flagged.
    private mutating func sendClaims(_ id: SpaceID, _ held: [HeadClaim], _ out: inout [SyncAction]) {
        var chunk: [HeadClaim] = []
        var size = 0
        for c in held.sorted(by: { SigningPublicKey.precedes($0.claimant, $1.claimant) }) {
            if !chunk.isEmpty && (size + c.bytes.count > 1 << 20 || chunk.count >= SyncMessage.maximumClaimsPerMessage) {
                send(.claims(space: id, claims: chunk, last: false), &out)
                chunk = []
                size = 0
            }
            chunk.append(c)
            size += c.bytes.count + 4
        }
        send(.claims(space: id, claims: chunk, last: true), &out)
    }

    /// Queues `e` if it is the next of its author for the peer; returns whether it was queued.
    private mutating func enqueue(_ e: Envelope, into s: inout SpaceState, _ out: inout [SyncAction]) -> Bool {
        let h = e.header
        guard !s.queued.covers(h), h.seqStart == s.queued[h.author] + 1 else { return false }
        guard e.bytes.count <= SyncLimits.maximumEnvelopeByteCount else {
            fail(
                .localFault(SyncError(
                    .internalError,
                    "envelope \(e.id) is \(e.bytes.count) bytes, more than the \(SyncLimits.maximumEnvelopeByteCount) a frame carries: seal smaller batches")),
                &out)
            return false
        }
        if s.queueHead > 0 && s.queueHead >= s.queue.count {
            s.queue.removeAll(keepingCapacity: true)
            s.queueHead = 0
        }
        s.queue.append(e)
        s.queued.add(h)
        return true
    }

    /// Sends queued batches while the window allows, then asks the node for more.
    private mutating func pump(_ out: inout [SyncAction]) {
        guard phase == .open, !order.isEmpty else { return }
        var progressed = true
        while progressed && inFlightTotal < sendWindow {
            progressed = false
            for i in 0..<order.count where inFlightTotal < sendWindow {
                let id = order[(cursor + i) % order.count]
                if sendBatch(id, &out) {
                    progressed = true
                    cursor = (cursor + i + 1) % order.count
                    break
                }
            }
        }
        // Prefetch: at most one batch waiting beyond the window, so the next goes out on the ack.
        var busy = inFlightTotal
        for s in spaces.values where s.fetchOutstanding || !s.queueIsEmpty { busy += 1 }
        for i in 0..<order.count where busy <= sendWindow {
            let id = order[(cursor + i) % order.count]
            guard var s = spaces[id], s.needsFetch else { continue }
            s.fetchOutstanding = true
            s.fetchGeneration = s.generation
            spaces[id] = s
            busy += 1
            out.append(.fetch(space: id, after: s.fetchPoint, limit: FetchLimit(envelopes: limits.batchEnvelopes, bytes: limits.batchBytes)))
        }
    }

    /// Sends one batch of `id`'s queue; returns whether one was sent.
    private mutating func sendBatch(_ id: SpaceID, _ out: inout [SyncAction]) -> Bool {
        guard var s = spaces[id], s.summaryReceived, !s.queueIsEmpty else { return false }
        var batch: [Envelope] = []
        var bytes = 0
        while s.queueHead < s.queue.count && batch.count < limits.batchEnvelopes {
            let e = s.queue[s.queueHead]
            if s.peerHolds.covers(e.header) {
                s.queueHead += 1
                continue
            }
            if !batch.isEmpty && bytes + e.bytes.count > limits.batchBytes { break }
            batch.append(e)
            bytes += e.bytes.count
            s.queueHead += 1
        }
        if s.queueIsEmpty {
            s.queue.removeAll(keepingCapacity: s.queue.capacity <= 4096)
            s.queueHead = 0
        }
        guard !batch.isEmpty else {
            spaces[id] = s
            return false
        }
        let frame = SyncMessage.envelopes(space: id, envelopes: batch).framed()
        s.inFlightSizes.append(frame.count)
        inFlightBytes += frame.count
        inFlightTotal += 1
        if ackClock == nil { ackClock = latest }
        spaces[id] = s
        stats.batchesSent += 1
        stats.envelopesSent += batch.count
        stats.framesSent += 1
        stats.bytesSent += frame.count
        out.append(.send(frame))
        return true
    }

    /// Appends `.synced` when the session has just become settled, and starts or stops the
    /// deadline for announced data.
    private mutating func finish(_ out: inout [SyncAction]) {
        guard !isClosed else { return }
        let settled = isSettled
        if settled && !wasSettled { out.append(.synced) }
        wasSettled = settled
        // Running only while the peer owes us data and nothing of ours holds it up: a batch
        // delivered to our store and not yet stored keeps the peer's window (and the deadline) shut.
        if settled || phase != .open || pendingTotal > 0 || !(headsOwed || spaces.values.contains(where: \.peerOwes)) {
            owedClock = nil
        } else if owedClock == nil {
            owedClock = latest
        }
    }
}
