import CSodium

/// The id of an envelope: BLAKE2b-256 of its signed bytes (header ‖ nonce ‖ ciphertext).
///
/// The author's signature is over exactly this digest, and the next envelope of the same author
/// names it in ``EnvelopeHeader/previousHash``, so one signature vouches for the whole chain behind it.
public struct EnvelopeID: Hashable, Sendable, CustomStringConvertible {
    /// 32 bytes.
    public static let byteCount = 32
    /// The id of "no previous envelope": 32 zero bytes.
    public static let zero = EnvelopeID(unchecked: [UInt8](repeating: 0, count: byteCount))

    /// The digest bytes.
    public let bytes: [UInt8]

    /// The digest in one call (see ``SigningPublicKey/hash(into:)``).
    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func == (a: EnvelopeID, b: EnvelopeID) -> Bool { a.bytes == b.bytes }

    /// Wraps 32 bytes.
    ///
    /// - Throws: ``CryptoError/Code/invalidLength`` for any other length.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.byteCount else {
            throw CryptoError(.invalidLength, "an envelope id is \(Self.byteCount) bytes, got \(bytes.count)")
        }
        self.bytes = bytes
    }

    init(unchecked bytes: [UInt8]) { self.bytes = bytes }

    /// Whether this is ``zero``.
    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }

    /// 64 lowercase hex digits.
    public var hex: String { hexString(bytes) }

    public var description: String { String(hex.prefix(16)) }
}

/// The clear-text header of an ``Envelope``: who wrote which changes where, and what came before.
///
/// Binary form (101 bytes, integers big-endian):
/// `version (1) ‖ spaceID (16) ‖ author (32) ‖ seqStart (8) ‖ seqEnd (8) ‖ epoch (4) ‖ previousHash (32)`.
/// The encoded header is the AEAD's associated data and is covered by the signature.
public struct EnvelopeHeader: Hashable, Sendable {
    /// The only version this build writes and reads.
    public static let currentVersion: UInt8 = 1
    /// Encoded size in bytes.
    public static let byteCount = 1 + 16 + 32 + 8 + 8 + 4 + 32
    /// The largest number of changes in one envelope.
    public static let maximumChangesPerEnvelope: UInt64 = 1 << 20

    /// Format version (``currentVersion``).
    public var version: UInt8
    /// The space the changes belong to (16 bytes).
    public var spaceID: [UInt8]
    /// The author's identity key; the envelope must be signed by it.
    public var author: SigningPublicKey
    /// First per-author sequence number in this envelope (sequences start at 1 and have no gaps).
    public var seqStart: UInt64
    /// Last sequence number in this envelope (inclusive).
    public var seqEnd: UInt64
    /// The key epoch the ciphertext is encrypted under.
    public var epoch: UInt32
    /// The id of the author's previous envelope in this space, or ``EnvelopeID/zero`` when `seqStart == 1`.
    public var previousHash: EnvelopeID

    /// Creates a header; ``Envelope/seal(plaintext:header:key:signer:)`` checks it.
    public init(
        version: UInt8 = EnvelopeHeader.currentVersion, spaceID: [UInt8], author: SigningPublicKey,
        seqStart: UInt64, seqEnd: UInt64, epoch: UInt32, previousHash: EnvelopeID
    ) {
        self.version = version
        self.spaceID = spaceID
        self.author = author
        self.seqStart = seqStart
        self.seqEnd = seqEnd
        self.epoch = epoch
        self.previousHash = previousHash
    }

    /// The number of changes the header claims.
    public var changeCount: UInt64 { seqEnd &- seqStart &+ 1 }

    /// The 101-byte encoding.
    public var encoded: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.byteCount)
        encode(into: &out)
        return out
    }

    func encode(into out: inout [UInt8]) {
        out.append(version)
        out.append(contentsOf: spaceID)
        out.append(contentsOf: author.rawRepresentation)
        appendBigEndian(seqStart, to: &out)
        appendBigEndian(seqEnd, to: &out)
        appendBigEndian(epoch, to: &out)
        out.append(contentsOf: previousHash.bytes)
    }

    /// Checks the field rules shared by sealing and decoding.
    func validate() throws(CryptoError) {
        guard version == Self.currentVersion else {
            throw CryptoError(
                .envelopeUnsupportedVersion,
                "envelope version \(version) is not supported by this build (it reads version \(Self.currentVersion)): upgrade saraban on this node"
            )
        }
        guard spaceID.count == 16 else {
            throw CryptoError(.envelopeMalformed, "an envelope's space id is 16 bytes, got \(spaceID.count)")
        }
        guard seqStart >= 1, seqEnd >= seqStart else {
            throw CryptoError(
                .envelopeMalformed,
                "envelope sequence range \(seqStart)…\(seqEnd) is invalid: sequences start at 1 and seqEnd ≥ seqStart")
        }
        guard seqEnd - seqStart < Self.maximumChangesPerEnvelope else {
            throw CryptoError(
                .envelopeTooLarge, "an envelope carries at most \(Self.maximumChangesPerEnvelope) changes")
        }
        guard (seqStart == 1) == previousHash.isZero else {
            throw CryptoError(
                .envelopeMalformed,
                "an envelope's previous hash must be zero exactly when it starts at sequence 1 (got seqStart \(seqStart))"
            )
        }
    }

    /// Decodes from exactly `byteCount` bytes at the start of `bytes`.
    static func decode(_ b: UnsafeRawBufferPointer) throws(CryptoError) -> EnvelopeHeader {
        var o = 0
        func take(_ n: Int) -> [UInt8] {
            defer { o += n }
            return Array(UnsafeRawBufferPointer(rebasing: b[o..<(o + n)]))
        }
        func u64() -> UInt64 { take(8).reduce(0) { $0 << 8 | UInt64($1) } }
        let version = take(1)[0]
        let space = take(16)
        let author = SigningPublicKey(unchecked: take(32))
        let s = u64()
        let e = u64()
        let epoch = take(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let prev = EnvelopeID(unchecked: take(32))
        let header = EnvelopeHeader(
            version: version, spaceID: space, author: author, seqStart: s, seqEnd: e, epoch: epoch, previousHash: prev)
        try header.validate()
        return header
    }
}

@inline(__always)
func appendBigEndian<T: FixedWidthInteger>(_ v: T, to out: inout [UInt8]) {
    var x = v.bigEndian
    withUnsafeBytes(of: &x) { out.append(contentsOf: $0) }
}

/// A signed, encrypted batch of one author's changes in one space.
///
/// Layout: `header (101) ‖ nonce (24) ‖ ciphertext ‖ signature (64)`, where the ciphertext is
/// XChaCha20-Poly1305 of the padded plaintext (see below) with the encoded header as associated
/// data, and the signature is Ed25519 by `header.author` over ``id`` = BLAKE2b-256 of everything
/// before the signature. The padded plaintext is a 4-byte big-endian length, the plaintext, and
/// zeros up to a PADME bucket, so a relay learns the size only to within about 12%.
///
/// A relay (no space key) can ``decode(_:)``, ``verifySignature()`` and run a ``FeedVerifier``;
/// only members holding the epoch key can ``open(key:)``.
public struct Envelope: Hashable, Sendable {
    /// Largest encoded envelope accepted: 16 MiB.
    public static let maximumByteCount = 16 << 20
    /// Bytes added around the ciphertext: header, nonce, signature.
    static let framing = EnvelopeHeader.byteCount + XChaCha20Poly1305.nonceByteCount + SigningKeyPair.signatureByteCount
    /// Smallest valid envelope: framing, tag, and the 4-byte length of an empty plaintext.
    public static let minimumByteCount = framing + XChaCha20Poly1305.tagByteCount + 4
    /// Largest plaintext that fits.
    public static let maximumPlaintextByteCount = maximumByteCount - minimumByteCount - (maximumByteCount >> 3)

    /// The decoded header.
    public let header: EnvelopeHeader
    /// The whole encoded envelope, as stored and sent.
    public let bytes: [UInt8]
    /// BLAKE2b-256 of the signed bytes; what the next envelope's `previousHash` names.
    public let id: EnvelopeID

    private init(header: EnvelopeHeader, bytes: [UInt8], id: EnvelopeID) {
        self.header = header
        self.bytes = bytes
        self.id = id
    }

    /// The 24-byte nonce.
    public var nonce: [UInt8] {
        Array(bytes[EnvelopeHeader.byteCount..<(EnvelopeHeader.byteCount + XChaCha20Poly1305.nonceByteCount)])
    }

    /// The 64-byte signature.
    public var signature: [UInt8] { Array(bytes.suffix(SigningKeyPair.signatureByteCount)) }

    /// Encrypts, pads and signs a batch of changes.
    ///
    /// - Parameters:
    ///   - plaintext: the encoded changes `header.seqStart…header.seqEnd`.
    ///   - header: the header to publish; `header.author` must be `signer.publicKey`.
    ///   - key: the space key of `header.epoch`.
    ///   - signer: the author's identity.
    /// - Throws: ``CryptoError/Code/envelopeMalformed`` for an invalid header or a signer that is not the author,
    ///   ``CryptoError/Code/envelopeTooLarge`` when the plaintext exceeds ``maximumPlaintextByteCount``.
    public static func seal(
        plaintext: [UInt8], header: EnvelopeHeader, key: SymmetricKey, signer: SigningKeyPair
    ) throws(CryptoError) -> Envelope {
        try header.validate()
        guard signer.publicKey == header.author else {
            throw CryptoError(
                .envelopeMalformed,
                "the envelope's author is \(header.author) but the signer is \(signer.publicKey): sign with the author's identity"
            )
        }
        guard plaintext.count <= maximumPlaintextByteCount else {
            throw CryptoError(
                .envelopeTooLarge,
                "a plaintext of \(plaintext.count) bytes exceeds \(maximumPlaintextByteCount): split the batch")
        }
        let padded = Padding.paddedLength(forPlaintext: plaintext.count)
        let headerLen = EnvelopeHeader.byteCount
        let nonceLen = XChaCha20Poly1305.nonceByteCount
        let bodyStart = headerLen + nonceLen
        let signedLen = bodyStart + padded + XChaCha20Poly1305.tagByteCount
        let total = signedLen + SigningKeyPair.signatureByteCount

        var out = [UInt8]()
        out.reserveCapacity(total)
        header.encode(into: &out)
        out.append(contentsOf: XChaCha20Poly1305.randomNonce())
        appendBigEndian(UInt32(plaintext.count), to: &out)
        out.append(contentsOf: plaintext)
        out.append(contentsOf: repeatElement(0, count: total - out.count))

        var digest = [UInt8]()
        out.withUnsafeMutableBytes { all in
            let headerBytes = UnsafeRawBufferPointer(rebasing: all[0..<headerLen])
            let nonce = UnsafeRawBufferPointer(rebasing: all[headerLen..<bodyStart])
            let body = UnsafeMutableRawBufferPointer(rebasing: all[bodyStart..<signedLen])
            // In place: libsodium allows the ciphertext to overlap the plaintext exactly.
            XChaCha20Poly1305.encrypt(
                into: body, plaintext: UnsafeRawBufferPointer(rebasing: all[bodyStart..<(bodyStart + padded)]),
                associatedData: headerBytes, nonce: nonce, key: key)
            digest = BLAKE2b.digest(UnsafeRawBufferPointer(rebasing: all[0..<signedLen]), outputLength: 32)
        }
        let signature = digest.withUnsafeBytes { signer.sign(raw: $0) }
        out.replaceSubrange(signedLen..<total, with: signature)
        return Envelope(header: header, bytes: out, id: EnvelopeID(unchecked: digest))
    }

    /// Strictly decodes an envelope received from the network or read from disk.
    ///
    /// Checks sizes, the version byte, header fields, and that the ciphertext length is a padding
    /// bucket. It does not check the signature: call ``verifySignature()`` (or a ``FeedVerifier``).
    ///
    /// - Throws: ``CryptoError/Code/envelopeMalformed``, ``CryptoError/Code/envelopeUnsupportedVersion``
    ///   or ``CryptoError/Code/envelopeTooLarge``.
    public static func decode(_ bytes: [UInt8]) throws(CryptoError) -> Envelope {
        try decode(bytes, storedID: nil)
    }

    /// ``decode(_:)`` for an envelope read back from this node's own store, with the ``id`` the
    /// store computed when it stored the envelope (after verifying it): the same checks, without
    /// hashing the whole envelope again. Only for ids this process or its store computed; bytes
    /// from a peer go through ``decode(_:)``, and a receiver recomputes the id whatever it is sent.
    public static func decode(_ bytes: [UInt8], storedID: EnvelopeID) throws(CryptoError) -> Envelope {
        try decode(bytes, storedID: Optional(storedID))
    }

    private static func decode(_ bytes: [UInt8], storedID: EnvelopeID?) throws(CryptoError) -> Envelope {
        guard bytes.count <= maximumByteCount else {
            throw CryptoError(
                .envelopeTooLarge, "an envelope of \(bytes.count) bytes exceeds \(maximumByteCount): refuse it")
        }
        guard bytes.count >= minimumByteCount else {
            throw CryptoError(
                .envelopeMalformed,
                "an envelope of \(bytes.count) bytes is shorter than the minimum \(minimumByteCount): it was truncated")
        }
        let padded = bytes.count - framing - XChaCha20Poly1305.tagByteCount
        guard Padding.isBucket(padded) else {
            throw CryptoError(
                .envelopeMalformed,
                "the envelope's ciphertext length is not a padding bucket: it was truncated or extended")
        }
        let signedLen = bytes.count - SigningKeyPair.signatureByteCount
        let result: Result<(EnvelopeHeader, [UInt8]), CryptoError> = bytes.withUnsafeBytes { all in
            do throws(CryptoError) {
                let header = try EnvelopeHeader.decode(
                    UnsafeRawBufferPointer(rebasing: all[0..<EnvelopeHeader.byteCount]))
                if let storedID { return .success((header, storedID.bytes)) }
                let digest = BLAKE2b.digest(UnsafeRawBufferPointer(rebasing: all[0..<signedLen]), outputLength: 32)
                return .success((header, digest))
            } catch {
                return .failure(error)
            }
        }
        let (header, digest) = try result.get()
        return Envelope(header: header, bytes: bytes, id: EnvelopeID(unchecked: digest))
    }

    /// Whether the signature is a valid Ed25519 signature of ``id`` by `header.author`.
    public func isSignatureValid() -> Bool {
        header.author.isValidSignature(signature, for: id.bytes)
    }

    /// Checks the author's signature.
    ///
    /// - Throws: ``CryptoError/Code/feedBadSignature`` when the envelope was modified or signed by
    ///   a key other than its header's author.
    public func verifySignature() throws(CryptoError) {
        guard isSignatureValid() else {
            throw CryptoError(
                .feedBadSignature,
                "envelope \(id) is not signed by its author \(header.author): it was tampered with or forged; drop it and report the sender"
            )
        }
    }

    /// Decrypts and unpads the plaintext. Checks the AEAD tag (and so the header) but not the signature.
    ///
    /// - Throws: ``CryptoError/Code/authenticationFailed`` for a wrong key or modified bytes,
    ///   ``CryptoError/Code/envelopeMalformed`` for bad padding inside an authentic envelope.
    public func open(key: SymmetricKey) throws(CryptoError) -> [UInt8] {
        let headerLen = EnvelopeHeader.byteCount
        let bodyStart = headerLen + XChaCha20Poly1305.nonceByteCount
        let signedLen = bytes.count - SigningKeyPair.signatureByteCount
        let padded = signedLen - bodyStart - XChaCha20Poly1305.tagByteCount
        var plain = [UInt8](repeating: 0, count: padded)
        let ok = bytes.withUnsafeBytes { all in
            plain.withUnsafeMutableBytes { m in
                XChaCha20Poly1305.decrypt(
                    into: m, ciphertext: UnsafeRawBufferPointer(rebasing: all[bodyStart..<signedLen]),
                    associatedData: UnsafeRawBufferPointer(rebasing: all[0..<headerLen]),
                    nonce: UnsafeRawBufferPointer(rebasing: all[headerLen..<bodyStart]), key: key)
            }
        }
        guard ok else {
            throw CryptoError(
                .authenticationFailed,
                "envelope \(id) does not decrypt with the epoch \(header.epoch) key: wrong key, or it was modified")
        }
        let length = Int(plain[0]) << 24 | Int(plain[1]) << 16 | Int(plain[2]) << 8 | Int(plain[3])
        guard length <= padded - 4, Padding.paddedLength(forPlaintext: length) == padded,
            plain[(4 + length)...].allSatisfy({ $0 == 0 })
        else {
            throw CryptoError(.envelopeMalformed, "envelope \(id) has invalid padding: the author's software is faulty")
        }
        plain.removeFirst(4)
        plain.removeLast(padded - 4 - length)
        return plain
    }
}
