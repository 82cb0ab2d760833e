import SarabanCrypto

/// A point on the driver's monotonic clock, in nanoseconds from an origin the driver chooses.
///
/// The session never reads a clock: a NIO driver passes `NIODeadline.now().uptimeNanoseconds`,
/// a simulator its virtual time.
public struct SyncInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    /// `seconds` after the origin.
    public static func seconds(_ seconds: Int) -> SyncInstant { SyncInstant(nanoseconds: UInt64(seconds) * 1_000_000_000) }

    public static func < (a: SyncInstant, b: SyncInstant) -> Bool { a.nanoseconds < b.nanoseconds }

    public static func + (t: SyncInstant, d: Duration) -> SyncInstant {
        SyncInstant(nanoseconds: t.nanoseconds &+ d.nanoseconds)
    }

    /// The time from `earlier` to `self` (zero if `earlier` is later).
    public func duration(since earlier: SyncInstant) -> Duration {
        .nanoseconds(Int64(clamping: nanoseconds >= earlier.nanoseconds ? nanoseconds - earlier.nanoseconds : 0))
    }

    public var description: String { "t+\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// Whole nanoseconds, clamped at 0 and `UInt64.max`.
    var nanoseconds: UInt64 {
        let c = components
        guard c.seconds >= 0 else { return 0 }
        let (s, o) = UInt64(c.seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return o ? .max : s &+ UInt64(c.attoseconds / 1_000_000_000)
    }
}

/// Batching, flow control and keep-alive settings of a session.
public struct SyncLimits: Hashable, Sendable {
    /// The largest envelope a session can send: one envelope alone in an `envelopes` frame.
    /// Envelopes are sealed by their author; the node must seal batches no larger than this.
    /// (``FeedLimits/maximumEnvelopeByteCount``: the store seals below it; a test checks the two agree.)
    public static let maximumEnvelopeByteCount = FeedLimits.maximumEnvelopeByteCount

    /// The most envelopes in one `envelopes` message (and the `fetch` count limit).
    public var batchEnvelopes: Int
    /// The most envelope bytes in one `envelopes` message (one larger envelope still goes alone).
    public var batchBytes: Int
    /// Batches that may be in flight without an ack; announced in hello as the receive window,
    /// and the send window is the smaller of ours and the peer's.
    public var window: Int
    /// Send a ping after this long without receiving anything.
    public var pingInterval: Duration
    /// Close after this long without receiving anything (also the hello deadline), after this
    /// long with batches in flight and no ack (a peer whose store is stuck), and after this long
    /// without progress while the peer owes data it announced (its summary, or envelopes its
    /// summary or acks claim) and no delivery of ours is pending. The last two grow with the
    /// bytes in flight (and a frame arriving) at ``minimumReceiveRate``.
    public var timeout: Duration
    /// The slowest a frame may arrive, in bytes per second: a frame of `n` bytes must be complete
    /// within `timeout + n / minimumReceiveRate` of its first byte, so a peer dribbling bytes
    /// (slow-loris) is closed while a slow rural link still delivers a full batch.
    public var minimumReceiveRate: Int

    public init(
        batchEnvelopes: Int = 512, batchBytes: Int = 1 << 20, window: Int = 2,
        pingInterval: Duration = .seconds(15), timeout: Duration = .seconds(45), minimumReceiveRate: Int = 512
    ) {
        self.batchEnvelopes = min(max(batchEnvelopes, 1), SyncMessage.maximumEnvelopesPerMessage)
        self.batchBytes = min(max(batchBytes, 1), Self.maximumEnvelopeByteCount)
        self.window = min(max(window, 1), Hello.maximumWindow)
        self.pingInterval = pingInterval
        self.timeout = timeout
        self.minimumReceiveRate = max(minimumReceiveRate, 1)
    }
}

/// What a session needs to know about its node.
public struct SyncConfiguration: Sendable {
    /// This node's role, announced in hello.
    public var role: NodeRole
    /// Every space this node carries, with the vector it holds now. A member lists the spaces it
    /// belongs to, a relay the spaces it is configured for. Spaces the peer does not also carry
    /// are never summarised or sent.
    public var spaces: [SpaceID: FeedVector]
    /// Per space, per author, the envelope that ends at the author's entry of `spaces` (its id
    /// goes into the summary as a ``HeadTag`` when the peer reads them). Entries without one are
    /// summarised without a tag; none at all: a summary without tags.
    public var heads: [SpaceID: [SigningPublicKey: FeedHead]]
    /// Per space, the head claims this node holds (its own and those it verified, the latest per
    /// claimant): their digest goes to a peer that exchanges claims, and they themselves when the
    /// peer's digest differs.
    public var claims: [SpaceID: [HeadClaim]]
    /// Per space, per author, the **first** sequence number this node holds, for the feeds it no
    /// longer holds from their first envelope (a relay after retention: Docs/RELAY.md,
    /// "Retention"). Sent to a peer that reads them (``HelloFeatures/horizons``); a peer below a
    /// horizon is not sent that author's envelopes and does not wait for them. Empty on a member.
    public var floors: [SpaceID: FeedVector]
    public var limits: SyncLimits

    public init(
        role: NodeRole, spaces: [SpaceID: FeedVector], heads: [SpaceID: [SigningPublicKey: FeedHead]] = [:],
        claims: [SpaceID: [HeadClaim]] = [:], floors: [SpaceID: FeedVector] = [:], limits: SyncLimits = SyncLimits()
    ) {
        self.role = role
        self.spaces = spaces
        self.heads = heads
        self.claims = claims
        self.floors = floors
        self.limits = limits
    }
}

/// A protocol error with its wire code.
public struct SyncError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: SyncErrorCode
    public var message: String

    public init(_ code: SyncErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// Why a session ended.
public enum CloseReason: Hashable, Sendable, CustomStringConvertible {
    /// The driver called ``SyncSession/close()``; a `bye` was sent.
    case closedLocally
    /// The peer sent `bye`.
    case peerSaidBye
    /// The peer broke the protocol (or sent garbage); an `error` was sent to it.
    case violation(SyncError)
    /// This node could not go on (for example an envelope too large to send); an `error` was sent.
    case localFault(SyncError)
    /// The peer sent `error`.
    case peerError(SyncError)
    /// A deadline of ``SyncLimits/timeout`` passed: nothing received, no ack for a batch in
    /// flight, or none of the data the peer announced arriving; an `error` (`timeout`) was sent.
    case timedOut
    /// The driver reported the connection gone (``SyncSession/connectionLost()``).
    case connectionLost

    public var description: String {
        switch self {
        case .closedLocally: "closed locally"
        case .peerSaidBye: "peer said bye"
        case .violation(let e): "protocol violation by the peer: \(e)"
        case .localFault(let e): "local fault: \(e)"
        case .peerError(let e): "peer reported \(e)"
        case .timedOut: "timed out"
        case .connectionLost: "connection lost"
        }
    }
}

/// What the driver must do after an input. Perform the actions in order.
public enum SyncAction: Sendable {
    /// Write these bytes (one complete frame) to the connection.
    case send([UInt8])
    /// Read from the store the envelopes of `space` after `after` (per author, those whose last
    /// sequence is above the author's entry), each author's in chain order, in the order the
    /// store received them, at most `limit.envelopes` and about `limit.bytes` (at least one if
    /// any exist), then call ``SyncSession/fetched(space:envelopes:complete:)`` exactly once.
    case fetch(space: SpaceID, after: FeedVector, limit: FetchLimit)
    /// Verify (signature, hash chain), store and, on a member, open and apply these envelopes,
    /// then call ``SyncSession/stored(space:vector:)`` exactly once, even if some were refused;
    /// and ``SyncSession/localEnvelopes(space:_:)`` on the node's other sessions with those stored.
    case deliver(space: SpaceID, envelopes: [Envelope], from: SigningPublicKey)
    /// The peer holds at least `peerHolds` of `space` (for status: lag each way).
    case peerProgress(space: SpaceID, peerHolds: FeedVector)
    /// The peer's summary of a space came with head tags: for each of its entries this node also
    /// holds, compare the tag with the envelope this node holds ending at that sequence number. A
    /// different envelope there (or none ending there) is a fork of that author's feed, which no
    /// vector shows when the two are equal (for example a node restored from an old copy of its
    /// database that wrote again). Nothing is exchanged for it; the node reports it.
    case peerHeads(SpaceVector)
    /// The peer sent head claims of `space` (structure checked, signatures not): verify each
    /// (signature, claimant a member of the space) and keep the latest per claimant; an older
    /// claim never replaces a newer one. Nothing is answered.
    case claims(space: SpaceID, claims: [HeadClaim], from: SigningPublicKey)
    /// The peer (a relay after retention) holds some feeds of `space` only from a later envelope
    /// than this node can chain on: per author, the sequence numbers this node lacks and cannot
    /// get from this peer (from what it holds + 1 to the peer's first − 1). Sent with the peer's
    /// summary of the space; the session no longer waits for those authors. The node reports it:
    /// the gap comes from another member, or from the relay's archive (`saraban doc merge`).
    case unreachable(space: SpaceID, gaps: [SigningPublicKey: ClosedRange<UInt64>], from: SigningPublicKey)
    /// Every shared space is caught up both ways, nothing in flight, and the head claims the peer
    /// owes (its `claimsDigest`, its `claims` where the digests differ) have come. A one-shot sync may now
    /// call ``SyncSession/close()``. Emitted each time the session becomes settled.
    case synced
    /// The peer sent an attachment message about a shared space: hand it to the node, which
    /// answers (if at all) with ``SyncSession/sendAttachment(_:)``.
    case attachment(AttachmentMessage)
    /// The session is over: after writing any `send` before it, close the connection. Always last.
    case close(CloseReason)
}

/// Counters of one session.
public struct SyncStats: Hashable, Sendable {
    public var framesSent = 0
    public var bytesSent = 0
    public var framesReceived = 0
    public var bytesReceived = 0
    /// Envelopes sent in `envelopes` messages.
    public var envelopesSent = 0
    /// `envelopes` messages sent.
    public var batchesSent = 0
    /// Envelopes received in `envelopes` messages (duplicates included).
    public var envelopesReceived = 0
    /// Received envelopes this node already held, not delivered.
    public var duplicatesIgnored = 0

    public init() {}
}

/// Where one shared space stands in a session.
public struct SpaceSyncStatus: Hashable, Sendable {
    public var space: SpaceID
    /// What this node holds.
    public var local: FeedVector
    /// What the peer is known to hold (its summary, acks, and what it sent).
    public var peerHolds: FeedVector
    /// Changes this node holds that the peer is not known to hold.
    public var changesPeerLacks: UInt64 { local.changesMissing(from: peerHolds) }
    /// Changes the peer holds that this node lacks.
    public var changesWeLack: UInt64 { peerHolds.changesMissing(from: local) }
    /// Batches sent and not yet acknowledged.
    public var batchesInFlight: Int
    /// Batches delivered to the node and not yet stored.
    public var deliveriesPending: Int
}
