import CSodium

/// A 256-bit symmetric key (space keys, epoch keys), held in ``SecureBytes``.
public struct SymmetricKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// 32 bytes.
    public static let byteCount = Int(crypto_aead_xchacha20poly1305_ietf_KEYBYTES)

    /// The key bytes.
    public let secret: SecureBytes

    /// Wraps 32 secret bytes.
    ///
    /// - Throws: ``CryptoError/Code/invalidLength`` when `secret` is not 32 bytes: the stored key is corrupt.
    public init(_ secret: SecureBytes) throws(CryptoError) {
        guard secret.count == Self.byteCount else {
            throw CryptoError(
                .invalidLength,
                "a symmetric key is \(Self.byteCount) bytes, got \(secret.count): the stored key is corrupt, restore it from backup or ask a member to re-invite this node"
            )
        }
        self.secret = secret
    }

    /// A fresh random key.
    public static func generate() -> SymmetricKey {
        SymmetricKey(unchecked: SecureBytes(randomCount: byteCount))
    }

    init(unchecked secret: SecureBytes) { self.secret = secret }

    public var description: String { "SymmetricKey(\(secret))" }
    public var debugDescription: String { description }
}

/// XChaCha20-Poly1305-IETF authenticated encryption (libsodium `crypto_aead_xchacha20poly1305_ietf`).
///
/// Nonces are 24 bytes, long enough to pick at random for every message (``randomNonce()``).
/// The ciphertext is the encrypted plaintext followed by a 16-byte tag.
public enum XChaCha20Poly1305 {
    /// 24 bytes.
    public static let nonceByteCount = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    /// 16 bytes.
    public static let tagByteCount = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)

    /// 24 random bytes.
    public static func randomNonce() -> [UInt8] { Sodium.randomBytes(nonceByteCount) }

    /// Encrypts and authenticates `plaintext`, also authenticating (not encrypting) `associatedData`.
    ///
    /// - Throws: ``CryptoError/Code/invalidLength`` when the nonce is not 24 bytes.
    public static func seal(
        _ plaintext: [UInt8], key: SymmetricKey, nonce: [UInt8], associatedData: [UInt8] = []
    ) throws(CryptoError) -> [UInt8] {
        try checkNonce(nonce)
        var out = [UInt8](repeating: 0, count: plaintext.count + tagByteCount)
        plaintext.withUnsafeBytes { m in
            associatedData.withUnsafeBytes { ad in
                out.withUnsafeMutableBytes { c in
                    nonce.withUnsafeBytes { n in
                        encrypt(into: c, plaintext: m, associatedData: ad, nonce: n, key: key)
                    }
                }
            }
        }
        return out
    }

    /// Decrypts and verifies `ciphertext` (ciphertext ‖ tag).
    ///
    /// - Throws: ``CryptoError/Code/authenticationFailed`` when the key, nonce or associated data
    ///   is wrong or the bytes were modified; ``CryptoError/Code/invalidLength`` for a bad nonce.
    public static func open(
        _ ciphertext: [UInt8], key: SymmetricKey, nonce: [UInt8], associatedData: [UInt8] = []
    ) throws(CryptoError) -> [UInt8] {
        try checkNonce(nonce)
        guard ciphertext.count >= tagByteCount else {
            throw CryptoError(.authenticationFailed, "the ciphertext is shorter than its tag: it was truncated")
        }
        var out = [UInt8](repeating: 0, count: ciphertext.count - tagByteCount)
        let ok = ciphertext.withUnsafeBytes { c in
            associatedData.withUnsafeBytes { ad in
                out.withUnsafeMutableBytes { m in
                    nonce.withUnsafeBytes { n in
                        decrypt(into: m, ciphertext: c, associatedData: ad, nonce: n, key: key)
                    }
                }
            }
        }
        guard ok else {
            throw CryptoError(.authenticationFailed, "decryption failed: wrong key or the data was modified")
        }
        return out
    }

    static func checkNonce(_ nonce: [UInt8]) throws(CryptoError) {
        guard nonce.count == nonceByteCount else {
            throw CryptoError(
                .invalidLength, "an XChaCha20-Poly1305 nonce is \(nonceByteCount) bytes, got \(nonce.count)")
        }
    }

    /// `c` must hold `m.count + 16` bytes; `c` and `m` may be the same memory.
    static func encrypt(
        into c: UnsafeMutableRawBufferPointer, plaintext m: UnsafeRawBufferPointer,
        associatedData ad: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, key: SymmetricKey
    ) {
        key.secret.withUnsafeBytes { k in
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                c.u8, nil,
                m.u8, UInt64(m.count),
                ad.u8, UInt64(ad.count), nil,
                nonce.u8, k.u8)
        }
    }

    /// `m` must hold `c.count - 16` bytes. Returns false when authentication fails.
    static func decrypt(
        into m: UnsafeMutableRawBufferPointer, ciphertext c: UnsafeRawBufferPointer,
        associatedData ad: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, key: SymmetricKey
    ) -> Bool {
        key.secret.withUnsafeBytes { k in
            crypto_aead_xchacha20poly1305_ietf_decrypt(
                m.u8, nil, nil,
                c.u8, UInt64(c.count),
                ad.u8, UInt64(ad.count),
                nonce.u8, k.u8) == 0
        }
    }
}

/// Anonymous public-key encryption to a node (libsodium `crypto_box_seal`), used for space
/// invitations and key rotation: anyone can seal to a node's identity, only that node can open.
///
/// The recipient's Ed25519 identity is converted to X25519. The box is 48 bytes longer than the
/// message and does not reveal the sender.
public enum SealedBox {
    /// 48 bytes: an ephemeral public key and a tag.
    public static let overhead = Int(crypto_box_PUBLICKEYBYTES + crypto_box_MACBYTES)

    /// Encrypts `message` so only the holder of `recipient`'s secret key can read it.
    ///
    /// - Throws: ``CryptoError/Code/invalidKey`` when the recipient key cannot be converted to X25519.
    public static func seal(_ message: [UInt8], to recipient: SigningPublicKey) throws(CryptoError) -> [UInt8] {
        let pk = try recipient.x25519PublicKey()
        var out = [UInt8](repeating: 0, count: message.count + overhead)
        let rc = message.withUnsafeBufferPointer { m in
            out.withUnsafeMutableBufferPointer { c in
                crypto_box_seal(c.u8, m.u8, UInt64(m.count), pk)
            }
        }
        guard rc == 0 else {
            throw CryptoError(.invalidKey, "sealing to \(recipient) failed: its public key is unusable")
        }
        return out
    }

    /// `crypto_box_seal` with the ephemeral key pair derived from `ephemeralSeed` (32 bytes from
    /// the caller's generator: a node's injected randomness, seeded in the simulator) instead of
    /// libsodium's own: the same format (ephemeral public key, then `crypto_box_easy` under the
    /// nonce BLAKE2b-192(ephemeral public key ‖ recipient key)), opened by ``open(_:with:)``.
    /// A seed must never be used twice.
    ///
    /// - Throws: ``CryptoError/Code/invalidLength`` for a seed that is not 32 bytes,
    ///   ``CryptoError/Code/invalidKey`` when the recipient key cannot be converted to X25519.
    public static func seal(_ message: [UInt8], to recipient: SigningPublicKey, ephemeralSeed: [UInt8]) throws(CryptoError)
        -> [UInt8]
    {
        guard ephemeralSeed.count == Int(crypto_box_SEEDBYTES) else {
            throw CryptoError(.invalidLength, "a sealed box's ephemeral seed is \(crypto_box_SEEDBYTES) bytes, got \(ephemeralSeed.count)")
        }
        let pk = try recipient.x25519PublicKey()
        Sodium.ensureInitialized()
        var epk = [UInt8](repeating: 0, count: Int(crypto_box_PUBLICKEYBYTES))
        var esk = [UInt8](repeating: 0, count: Int(crypto_box_SECRETKEYBYTES))
        defer { for i in esk.indices { esk[i] = 0 } }
        _ = crypto_box_seed_keypair(&epk, &esk, ephemeralSeed)
        let nonce = BLAKE2b.digest(epk + pk, outputLength: Int(crypto_box_NONCEBYTES))
        var out = [UInt8](repeating: 0, count: message.count + Int(crypto_box_MACBYTES))
        let rc = message.withUnsafeBufferPointer { m in
            out.withUnsafeMutableBufferPointer { c in crypto_box_easy(c.u8, m.u8, UInt64(m.count), nonce, pk, esk) }
        }
        guard rc == 0 else {
            throw CryptoError(.invalidKey, "sealing to \(recipient) failed: its public key is unusable")
        }
        return epk + out
    }

    /// Opens a box sealed to `recipient`.
    ///
    /// - Throws: ``CryptoError/Code/authenticationFailed`` when the box was sealed to another node or modified.
    public static func open(_ box: [UInt8], with recipient: SigningKeyPair) throws(CryptoError) -> [UInt8] {
        guard box.count >= overhead else {
            throw CryptoError(
                .authenticationFailed, "the sealed box is shorter than \(overhead) bytes: it was truncated")
        }
        let x = try recipient.x25519KeyPair()
        var out = [UInt8](repeating: 0, count: box.count - overhead)
        let rc = box.withUnsafeBufferPointer { c in
            out.withUnsafeMutableBufferPointer { m in
                x.secretKey.withUnsafeBytes { sk in
                    crypto_box_seal_open(
                        m.u8, c.u8, UInt64(c.count), x.publicKey,
                        sk.u8)
                }
            }
        }
        guard rc == 0 else {
            throw CryptoError(
                .authenticationFailed,
                "this sealed box is not for this node (or was modified): ask the sender to seal it to \(recipient.publicKey)"
            )
        }
        return out
    }
}
