/// Sizes every part of a feed agrees on: the store seals envelopes below them, the sync codec
/// frames them, the receive path refuses what exceeds them.
public enum FeedLimits {
    /// The largest envelope: one envelope alone in a sync `envelopes` frame (a 4 MiB frame less
    /// the message's version, tag, space and count, and the envelope's own length prefix).
    /// `SyncLimits.maximumEnvelopeByteCount` is this value; a sync test checks it against the frame layout.
    public static let maximumEnvelopeByteCount = (4 << 20) - (2 + SpaceID.byteCount + 4) - 4
}

/// How many envelopes (and bytes) one read of a feed may return.
public struct FetchLimit: Hashable, Sendable {
    public var envelopes: Int
    public var bytes: Int

    public init(envelopes: Int, bytes: Int) {
        self.envelopes = envelopes
        self.bytes = bytes
    }
}
