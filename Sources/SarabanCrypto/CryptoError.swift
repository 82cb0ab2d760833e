/// The one error type thrown by SarabanCrypto.
///
/// Every error carries a ``Code`` that callers can switch on and a human-readable ``message`` that
/// says what went wrong and what to do next. Fork errors also carry a ``ForkProof``.
///
/// ```swift
/// do { try verifier.accept(envelope) }
/// catch let error where error.code == .feedFork { report(error.forkProof) }
/// ```
public struct CryptoError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of failure this is. Distinct codes let callers react differently without parsing messages.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        // Library and key material
        /// libsodium could not be initialised (no entropy source?).
        case libraryUnavailable
        /// A key, seed, nonce or hash has the wrong number of bytes.
        case invalidLength
        /// A key is not usable (for example an Ed25519 public key that is not a curve point,
        /// or a Diffie-Hellman result that is all zero).
        case invalidKey
        /// AEAD or sealed-box authentication failed: wrong key, or the bytes were modified.
        case authenticationFailed
        /// An Ed25519 signature does not verify against the claimed public key.
        case invalidSignature
        /// A requested output length is outside the allowed range.
        case invalidParameter
        /// A computation could not get the memory it needs (Argon2id's memory cost).
        case resourceExhausted

        // Node ids
        /// The text is not a node id: wrong prefix, length or characters.
        case nodeIDMalformed
        /// The text looks like a node id but its checksum does not match: a typo.
        case nodeIDChecksumMismatch

        // Noise
        /// The protocol name or pattern is not one this implementation supports.
        case noiseUnsupportedProtocol
        /// The pattern needs a key (local static, remote static, pre-shared key) that was not supplied.
        case noiseMissingKey
        /// A handshake method was called out of turn (for example writing when it is the peer's turn).
        case noiseOutOfOrder
        /// A message exceeds 65535 bytes, the Noise maximum.
        case noiseMessageTooLong
        /// A received handshake message is too short or its payload does not parse.
        case noiseMalformedMessage
        /// A cipher state used its last nonce; the session must be re-established.
        case noiseNonceExhausted
        /// The peer's identity payload names an Ed25519 key that does not match its Noise static key.
        case peerIdentityMismatch
        /// The peer proved its identity but the caller's trust policy refuses it.
        case peerUntrusted

        // Envelopes
        /// Envelope bytes do not decode: truncated, bad field, or bad padding.
        case envelopeMalformed
        /// Envelope version byte is unknown to this build.
        case envelopeUnsupportedVersion
        /// An envelope or its plaintext exceeds the maximum size.
        case envelopeTooLarge

        // Feed verification
        /// The envelope belongs to another space.
        case feedWrongSpace
        /// The envelope's epoch is not one the caller knows.
        case feedWrongEpoch
        /// The envelope's signature does not verify (tampered, or signed by someone other than its author).
        case feedBadSignature
        /// The same envelope was already accepted.
        case feedReplay
        /// The envelope starts after the next expected sequence number: earlier envelopes are missing.
        case feedGap
        /// The envelope's range overlaps already accepted ones without matching a known batch (reordered or overlapping).
        case feedOverlap
        /// The author signed two different envelopes for the same position: equivocation. See ``CryptoError/forkProof``.
        case feedFork
    }

    /// The kind of failure.
    public let code: Code
    /// What happened and what to do next.
    public let message: String
    /// For ``Code/feedFork``: the two conflicting envelope ids.
    public let forkProof: ForkProof?

    /// Creates an error.
    public init(_ code: Code, _ message: String, forkProof: ForkProof? = nil) {
        self.code = code
        self.message = message
        self.forkProof = forkProof
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
