import CSodium

/// A Noise CipherState (Noise Protocol Framework rev. 34, §5.1) for ChaChaPoly:
/// ChaCha20-Poly1305-IETF keyed by `k`, nonce = 4 zero bytes ‖ 64-bit little-endian counter.
///
/// After a handshake, ``NoiseHandshakeState/split()`` returns one cipher state per direction;
/// ``encrypt(_:associatedData:)`` and ``decrypt(_:associatedData:)`` protect transport messages
/// of at most ``maximumMessageLength`` bytes (ciphertext including the 16-byte tag).
///
/// This is a value type holding a counter: keep exactly one copy per direction and always use it
/// in place (`inout`, or a `var` you own). Encrypting with two copies would reuse nonces.
public struct CipherState: Sendable, CustomStringConvertible {
    /// 65535 bytes: the Noise limit for any message, tag included.
    public static let maximumMessageLength = 65535
    /// 16 bytes.
    public static let tagLength = 16

    private var key: SecureBytes?
    /// The next nonce.
    public private(set) var nonce: UInt64 = 0

    /// A cipher state with key `key` (or none: then encryption is the identity, as in early handshake messages).
    init(key: SecureBytes?) { self.key = key }

    /// Whether a key is set.
    public var hasKey: Bool { key != nil }

    /// Encrypts a transport message.
    ///
    /// - Throws: ``CryptoError/Code/noiseMessageTooLong`` when the ciphertext would exceed 65535 bytes
    ///   (split the data into frames), ``CryptoError/Code/noiseNonceExhausted`` after 2⁶⁴−1 messages.
    public mutating func encrypt(_ plaintext: [UInt8], associatedData: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        guard plaintext.count + (hasKey ? Self.tagLength : 0) <= Self.maximumMessageLength else {
            throw CryptoError(
                .noiseMessageTooLong,
                "a Noise message carries at most \(Self.maximumMessageLength - Self.tagLength) plaintext bytes, got \(plaintext.count): split it into frames"
            )
        }
        return try encryptWithAd(associatedData, plaintext)
    }

    /// Decrypts a transport message.
    ///
    /// - Throws: ``CryptoError/Code/authenticationFailed`` for a modified, replayed or reordered message
    ///   (the session must be closed), ``CryptoError/Code/noiseMessageTooLong`` above 65535 bytes.
    public mutating func decrypt(_ ciphertext: [UInt8], associatedData: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        guard ciphertext.count <= Self.maximumMessageLength else {
            throw CryptoError(
                .noiseMessageTooLong,
                "a Noise message is at most \(Self.maximumMessageLength) bytes, got \(ciphertext.count): close the session"
            )
        }
        return try decryptWithAd(associatedData, ciphertext)
    }

    /// Noise `Rekey()`: replaces the key with ENCRYPT(k, 2⁶⁴−1, "", 32 zero bytes)[0..<32]; the counter is kept.
    public mutating func rekey() {
        guard let key else { return }
        let zeros = [UInt8](repeating: 0, count: 32)
        let out = Self.seal(key: key, nonce: UInt64.max, ad: [], plaintext: zeros)
        self.key = SecureBytes(Array(out.prefix(32)))
    }

    mutating func encryptWithAd(_ ad: [UInt8], _ plaintext: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let key else { return plaintext }
        guard nonce != UInt64.max else {
            throw CryptoError(.noiseNonceExhausted, "this Noise session used all its nonces: open a new session")
        }
        let out = Self.seal(key: key, nonce: nonce, ad: ad, plaintext: plaintext)
        nonce += 1
        return out
    }

    mutating func decryptWithAd(_ ad: [UInt8], _ ciphertext: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard let key else { return ciphertext }
        guard nonce != UInt64.max else {
            throw CryptoError(.noiseNonceExhausted, "this Noise session used all its nonces: open a new session")
        }
        guard ciphertext.count >= Self.tagLength else {
            throw CryptoError(.authenticationFailed, "a Noise ciphertext is shorter than its tag: close the session")
        }
        var out = [UInt8](repeating: 0, count: ciphertext.count - Self.tagLength)
        let n = Self.nonceBytes(nonce)
        let rc = ciphertext.withUnsafeBufferPointer { c in
            ad.withUnsafeBufferPointer { a in
                out.withUnsafeMutableBufferPointer { m in
                    key.withUnsafeBytes { k in
                        crypto_aead_chacha20poly1305_ietf_decrypt(
                            m.u8, nil, nil, c.u8, UInt64(c.count), a.u8, UInt64(a.count), n, k.u8)
                    }
                }
            }
        }
        guard rc == 0 else {
            throw CryptoError(
                .authenticationFailed,
                "a Noise message failed authentication (modified, replayed or wrong key): close the session")
        }
        nonce += 1
        return out
    }

    static func nonceBytes(_ n: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 12)
        for i in 0..<8 { out[4 + i] = UInt8(truncatingIfNeeded: n >> (8 * UInt64(i))) }
        return out
    }

    static func seal(key: SecureBytes, nonce: UInt64, ad: [UInt8], plaintext: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + tagLength)
        let n = nonceBytes(nonce)
        plaintext.withUnsafeBufferPointer { m in
            ad.withUnsafeBufferPointer { a in
                out.withUnsafeMutableBufferPointer { c in
                    key.withUnsafeBytes { k in
                        _ = crypto_aead_chacha20poly1305_ietf_encrypt(
                            c.u8, nil, m.u8, UInt64(m.count), a.u8, UInt64(a.count), nil, n, k.u8)
                    }
                }
            }
        }
        return out
    }

    public var description: String { "CipherState(key: \(key.map { "\($0)" } ?? "none"), nonce: \(nonce))" }
}
