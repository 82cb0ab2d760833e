import NIOConcurrencyHelpers
import NIOCore
import SarabanCrypto

/// A pair of token buckets (bytes and frames) shared by every connection of one peer.
///
/// Consumption may run into debt; the caller then waits ``consume(bytes:frames:)``'s answer
/// before reading more, which is how TCP backpressure reaches the sender.
public final class TokenBucket: Sendable {
    private struct State {
        var bytes: Double
        var frames: Double
        var last: UInt64
        var throttles = 0
        var throttledNanoseconds: UInt64 = 0
    }

    public let limit: RateLimit
    private let state: NIOLockedValueBox<State>

    public init(limit: RateLimit, now: UInt64 = NIODeadline.now().uptimeNanoseconds) {
        self.limit = limit
        state = NIOLockedValueBox(State(bytes: Double(limit.burstBytes), frames: Double(limit.burstFrames), last: now))
    }

    /// Takes `bytes` and `frames`; returns how long to wait before reading again (zero when within the limit).
    public func consume(bytes: Int, frames: Int, now: UInt64 = NIODeadline.now().uptimeNanoseconds) -> Duration {
        state.withLockedValue { s in
            let elapsed = Double(now &- min(s.last, now)) / 1e9
            s.last = max(s.last, now)
            s.bytes = min(Double(limit.burstBytes), s.bytes + elapsed * Double(limit.bytesPerSecond)) - Double(bytes)
            s.frames =
                min(Double(limit.burstFrames), s.frames + elapsed * Double(limit.framesPerSecond)) - Double(frames)
            let wait = max(0, -s.bytes / Double(limit.bytesPerSecond), -s.frames / Double(limit.framesPerSecond))
            guard wait > 0 else { return .zero }
            s.throttles += 1
            s.throttledNanoseconds &+= UInt64(wait * 1e9)
            return .nanoseconds(Int64(wait * 1e9))
        }
    }

    /// How many reads had to wait, and for how long in total.
    public var throttling: (count: Int, total: Duration) {
        state.withLockedValue { ($0.throttles, .nanoseconds(Int64(clamping: $0.throttledNanoseconds))) }
    }
}

/// The buckets of every peer of one transport, by node id.
final class RateLimiterRegistry: Sendable {
    private let limit: RateLimit?
    private let buckets = NIOLockedValueBox<[NodeID: TokenBucket]>([:])

    init(limit: RateLimit?) { self.limit = limit }

    func bucket(for peer: NodeID) -> TokenBucket? {
        guard let limit else { return nil }
        return buckets.withLockedValue { b in
            if let existing = b[peer] { return existing }
            let new = TokenBucket(limit: limit)
            b[peer] = new
            return new
        }
    }

    func throttling(of peer: NodeID) -> (count: Int, total: Duration) {
        buckets.withLockedValue { $0[peer] }?.throttling ?? (0, .zero)
    }
}
