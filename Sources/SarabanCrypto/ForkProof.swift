/// Evidence that an author equivocated: two different envelopes, both signed by `author`,
/// that claim the same place in its feed.
///
/// Either the two envelopes start at the same sequence number, or the second one names a
/// different predecessor (`previousHash`) than the envelope accepted at that position.
/// Keep both envelopes: anyone can check the two signatures and see the fork.
public struct ForkProof: Sendable, Hashable, CustomStringConvertible {
    /// The space of the feed.
    public let spaceID: [UInt8]
    /// The author who signed both.
    public let author: SigningPublicKey
    /// The sequence number both claim (the start of the conflicting envelope).
    public let sequence: UInt64
    /// The id accepted first (for a predecessor conflict: the accepted head).
    public let acceptedID: EnvelopeID
    /// The conflicting id (for a predecessor conflict: the `previousHash` the new envelope names).
    public let conflictingID: EnvelopeID
    /// The conflicting envelope itself.
    public let conflictingEnvelopeID: EnvelopeID

    public var description: String {
        "fork by \(author) at seq \(sequence): \(acceptedID) vs \(conflictingID)"
    }
}
