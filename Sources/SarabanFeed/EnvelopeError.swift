import SarabanCrypto

/// Why a node refused a received envelope (the store's receive path, a relay, the simulator). Nothing of a
/// refused envelope is stored; a refusal never affects the other envelopes of the batch.
public struct EnvelopeError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// This node does not carry the space (not a member, not configured as its relay).
        case spaceNotCarried
        /// The envelope's header names another space than the batch.
        case wrongSpace
        /// The author is not (or, for this epoch, no longer) a member of the space.
        case notAMember
        /// The signature does not verify: modified bytes, or signed by someone other than its author.
        case tampered
        /// It starts after the author's next expected sequence number: earlier envelopes are missing.
        case gap
        /// It overlaps what was accepted without being a stored envelope: out of order.
        case reordered
        /// The author signed a different envelope for a stored position (``forkProof``).
        case fork
        /// This node holds no key for the envelope's epoch (removed from the space, or rekey not yet received).
        case wrongEpoch
        /// Signed by a member but does not decrypt with the epoch key.
        case undecryptable
        /// Decrypts, but the changes inside do not match the header (author, sequence range) or do not decode,
        /// or touch a document of another space.
        case invalidContents
    }

    public let code: Code
    public let message: String
    public let forkProof: ForkProof?

    public init(_ code: Code, _ message: String, forkProof: ForkProof? = nil) {
        self.code = code
        self.message = message
        self.forkProof = forkProof
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
