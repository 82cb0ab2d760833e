import SarabanSync

/// A token-bucket limit on what one peer may send to this node.
///
/// Each peer (by node id, across all its connections to one ``SecureTransport``) has a bucket of
/// bytes and a bucket of frames. Reading is paused while either bucket is in debt, so TCP flow
/// control slows the sender down; nothing is dropped and the connection stays up.
public struct RateLimit: Hashable, Sendable {
    /// Sustained plaintext bytes per second.
    public var bytesPerSecond: Int
    /// Sustained sync frames per second.
    public var framesPerSecond: Int
    /// Bytes that may arrive at once after a quiet period.
    public var burstBytes: Int
    /// Frames that may arrive at once after a quiet period.
    public var burstFrames: Int

    public init(bytesPerSecond: Int, framesPerSecond: Int, burstBytes: Int? = nil, burstFrames: Int? = nil) {
        self.bytesPerSecond = max(bytesPerSecond, 1)
        self.framesPerSecond = max(framesPerSecond, 1)
        self.burstBytes = max(burstBytes ?? bytesPerSecond, 1)
        self.burstFrames = max(burstFrames ?? framesPerSecond, 1)
    }

    /// 64 MiB/s and 20,000 frames/s with one second of burst: far above a rural link, low enough
    /// that one peer cannot monopolise a node.
    public static let `default` = RateLimit(bytesPerSecond: 64 << 20, framesPerSecond: 20_000)
}

/// Timeouts and limits of secure channels.
public struct TransportConfiguration: Hashable, Sendable {
    /// The three Noise XX messages must be exchanged within this time after TCP connects.
    public var handshakeTimeout: Duration
    /// Close when nothing at all arrives for this long (the sync session pings every
    /// ``SyncLimits/pingInterval`` when quiet, so a live peer always sends something).
    public var idleTimeout: Duration
    /// A Noise message of `n` bytes must be complete within `readTimeout + n / minimumReceiveRate`
    /// of its first byte: a peer dribbling bytes (slow-loris) is cut, a slow link is not.
    public var readTimeout: Duration
    /// Bytes per second used with ``readTimeout``.
    public var minimumReceiveRate: Int
    /// Close when a write stays pending (the peer does not read) this long.
    public var writeTimeout: Duration
    /// TCP connect timeout when dialling.
    public var connectTimeout: Duration
    /// The largest sync frame payload accepted (at most ``Frame/maximumPayloadByteCount``).
    public var maximumFrameByteCount: Int
    /// Per-peer inbound rate limit; `nil` for none.
    public var rateLimit: RateLimit?
    /// How often connection deadlines are checked and the sync session ticked.
    public var tickInterval: Duration
    /// Accepted connections whose Noise handshake has not finished, at most, per listener: one
    /// more closes the oldest of them at once (so idle connections cannot use up the process's
    /// file descriptors, and a newcomer is never locked out by them).
    public var maximumPendingHandshakes: Int
    /// The same cap per source address (an IPv6 address counts by its /64 prefix): one more from
    /// that address closes the oldest pending connection from it.
    public var maximumPendingHandshakesPerAddress: Int

    /// 256 pending handshakes per listener, 16 per source address.
    public static let defaultMaximumPendingHandshakes = 256
    public static let defaultMaximumPendingHandshakesPerAddress = 16

    public init(
        handshakeTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(90),
        readTimeout: Duration = .seconds(30), minimumReceiveRate: Int = 512, writeTimeout: Duration = .seconds(60),
        connectTimeout: Duration = .seconds(10), maximumFrameByteCount: Int = Frame.maximumPayloadByteCount,
        rateLimit: RateLimit? = .default, tickInterval: Duration = .seconds(1),
        maximumPendingHandshakes: Int = defaultMaximumPendingHandshakes,
        maximumPendingHandshakesPerAddress: Int = defaultMaximumPendingHandshakesPerAddress
    ) {
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.readTimeout = readTimeout
        self.minimumReceiveRate = max(minimumReceiveRate, 1)
        self.writeTimeout = writeTimeout
        self.connectTimeout = connectTimeout
        self.maximumFrameByteCount = min(max(maximumFrameByteCount, 1), Frame.maximumPayloadByteCount)
        self.rateLimit = rateLimit
        self.tickInterval = tickInterval
        self.maximumPendingHandshakes = max(maximumPendingHandshakes, 1)
        self.maximumPendingHandshakesPerAddress = max(maximumPendingHandshakesPerAddress, 1)
    }
}

extension Duration {
    /// Seconds as a floating-point number.
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to `0...UInt64.max`.
    var nanosecondCount: UInt64 {
        let c = components
        guard c.seconds >= 0 else { return 0 }
        let (s, o) = UInt64(c.seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return o ? .max : s &+ UInt64(c.attoseconds / 1_000_000_000)
    }
}
