import CSodium
import Synchronization

/// An Ed25519 public key: the long-term identity of a node.
public struct SigningPublicKey: Hashable, Sendable, CustomStringConvertible {
    /// 32 bytes.
    public static let byteCount = Int(crypto_sign_PUBLICKEYBYTES)

    /// The 32 key bytes.
    public let rawRepresentation: [UInt8]

    /// Wraps 32 bytes.
    ///
    /// - Throws: ``CryptoError/Code/invalidLength`` when `bytes` is not 32 bytes long.
    public init(rawRepresentation bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.byteCount else {
            throw CryptoError(.invalidLength, "an Ed25519 public key is \(Self.byteCount) bytes, got \(bytes.count)")
        }
        rawRepresentation = bytes
    }

    init(unchecked bytes: [UInt8]) { rawRepresentation = bytes }

    /// The key's bytes in one call (the synthesized hash combines the count and then each byte
    /// separately: 33 calls, a few percent of a busy relay's CPU in its feed-vector lookups).
    public func hash(into hasher: inout Hasher) {
        rawRepresentation.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func == (a: SigningPublicKey, b: SigningPublicKey) -> Bool { a.rawRepresentation == b.rawRepresentation }

    /// Whether `signature` is a valid detached Ed25519 signature of `message` by this key.
    public func isValidSignature(_ signature: [UInt8], for message: some Collection<UInt8>) -> Bool {
        guard signature.count == Int(crypto_sign_BYTES) else { return false }
        Sodium.ensureInitialized()
        return withContiguousBytes(message) { m in
            signature.withUnsafeBufferPointer { sig in
                rawRepresentation.withUnsafeBufferPointer { pk in
                    crypto_sign_verify_detached(
                        sig.u8, m.u8, UInt64(m.count),
                        pk.u8) == 0
                }
            }
        }
    }

    /// The X25519 public key for Diffie-Hellman with this identity (`crypto_sign_ed25519_pk_to_curve25519`).
    ///
    /// The conversion checks the point is in the main subgroup (a scalar multiplication): about
    /// 8 % of a relay's CPU per idle session when done twice per handshake (its own key and the
    /// peer's). It is a pure function of public bytes, so results are remembered (``conversions``).
    ///
    /// - Throws: ``CryptoError/Code/invalidKey`` when the bytes are not a usable Ed25519 point.
    public func x25519PublicKey() throws(CryptoError) -> [UInt8] {
        if let known = Self.conversions.withLock({ $0[self] }) { return known }
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: Int(crypto_scalarmult_curve25519_BYTES))
        let rc = rawRepresentation.withUnsafeBufferPointer { pk in
            crypto_sign_ed25519_pk_to_curve25519(&out, pk.u8)
        }
        guard rc == 0 else {
            throw CryptoError(
                .invalidKey, "this Ed25519 public key is not a valid curve point: the node id or key file is wrong")
        }
        let converted = out
        Self.conversions.withLock { memo in
            if memo.count >= Self.conversionsKept { memo.removeAll(keepingCapacity: true) }
            memo[self] = converted
        }
        return out
    }

    /// Successful conversions by key (public values only; a failed one is never kept). At most
    /// ``conversionsKept`` (about 200 bytes each), then forgotten all at once: a relay holding
    /// 2,000 offices keeps about 400 KB.
    static let conversions = Mutex<[SigningPublicKey: [UInt8]]>([:])
    static let conversionsKept = 8_192

    /// The node id for this key.
    public var nodeID: NodeID { NodeID(publicKey: self) }

    public var description: String { NodeID(publicKey: self).text }
}

/// An Ed25519 key pair: a node's signing identity.
///
/// The secret lives in ``SecureBytes``; printing the pair shows only the public key.
public struct SigningKeyPair: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// 32 bytes.
    public static let seedByteCount = Int(crypto_sign_SEEDBYTES)
    /// 64 bytes.
    public static let signatureByteCount = Int(crypto_sign_BYTES)

    /// The public half.
    public let publicKey: SigningPublicKey
    /// libsodium's 64-byte secret key (seed ‖ public key).
    private let secretKey: SecureBytes

    /// A fresh random identity.
    public static func generate() -> SigningKeyPair {
        SigningKeyPair(validSeed: SecureBytes(randomCount: seedByteCount))
    }

    /// Re-creates the identity from its 32-byte seed (as stored in the key file).
    ///
    /// - Throws: ``CryptoError/Code/invalidLength`` when the seed is not 32 bytes: the key file is corrupt.
    public init(seed: SecureBytes) throws(CryptoError) {
        guard seed.count == Self.seedByteCount else {
            throw CryptoError(
                .invalidLength,
                "the identity seed must be \(Self.seedByteCount) bytes, got \(seed.count): the key file is corrupt, restore it from backup or run `saraban init` in a new directory"
            )
        }
        self.init(validSeed: seed)
    }

    /// `seed` has the right length.
    private init(validSeed seed: SecureBytes) {
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: SigningPublicKey.byteCount)
        secretKey = SecureBytes(count: Int(crypto_sign_SECRETKEYBYTES)) { sk in
            seed.withUnsafeBytes { s in
                _ = crypto_sign_seed_keypair(
                    &pk, sk.u8, s.u8)
            }
        }
        publicKey = SigningPublicKey(unchecked: pk)
    }

    /// The 32-byte seed, the only secret a key file needs to store.
    public var seed: SecureBytes { secretKey.prefix(Self.seedByteCount) }

    /// A detached 64-byte Ed25519 signature of `message`.
    public func sign(_ message: some Collection<UInt8>) -> [UInt8] {
        withContiguousBytes(message) { m in sign(raw: m) }
    }

    func sign(raw m: UnsafeRawBufferPointer) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.signatureByteCount) { out, count in
            secretKey.withUnsafeBytes { sk in
                _ = crypto_sign_detached(
                    out.u8, nil, m.u8, UInt64(m.count),
                    sk.u8)
            }
            count = Self.signatureByteCount
        }
    }

    /// The X25519 key pair for Diffie-Hellman with this identity (`crypto_sign_ed25519_sk_to_curve25519`).
    ///
    /// - Throws: ``CryptoError/Code/invalidKey`` if the conversion fails.
    public func x25519KeyPair() throws(CryptoError) -> X25519KeyPair {
        let pk = try publicKey.x25519PublicKey()
        let sk = SecureBytes(count: X25519KeyPair.byteCount) { out in
            secretKey.withUnsafeBytes { s in
                _ = crypto_sign_ed25519_sk_to_curve25519(
                    out.u8, s.u8)
            }
        }
        return X25519KeyPair(unchecked: sk, publicKey: pk)
    }

    public var description: String { "SigningKeyPair(\(publicKey), secret: \(secretKey))" }
    public var debugDescription: String { description }
}

/// An X25519 key pair for Diffie-Hellman (Noise statics and ephemerals).
public struct X25519KeyPair: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// 32 bytes, for both halves.
    public static let byteCount = Int(crypto_scalarmult_curve25519_BYTES)

    /// The secret scalar.
    public let secretKey: SecureBytes
    /// The public key (32 bytes).
    public let publicKey: [UInt8]

    init(unchecked secretKey: SecureBytes, publicKey: [UInt8]) {
        self.secretKey = secretKey
        self.publicKey = publicKey
    }

    /// Derives the public key from a 32-byte secret (`crypto_scalarmult_base`).
    ///
    /// - Throws: ``CryptoError/Code/invalidLength`` when the secret is not 32 bytes.
    public init(secretKey: SecureBytes) throws(CryptoError) {
        guard secretKey.count == Self.byteCount else {
            throw CryptoError(.invalidLength, "an X25519 secret key is \(Self.byteCount) bytes, got \(secretKey.count)")
        }
        self.init(validSecretKey: secretKey)
    }

    /// `secretKey` is 32 bytes. (`crypto_scalarmult_base` clamps the scalar and cannot fail on such input.)
    private init(validSecretKey secretKey: SecureBytes) {
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: Self.byteCount)
        _ = secretKey.withUnsafeBytes { s in
            crypto_scalarmult_base(&pk, s.u8)
        }
        self.secretKey = secretKey
        self.publicKey = pk
    }

    /// A fresh random key pair.
    public static func generate() -> X25519KeyPair {
        X25519KeyPair(validSecretKey: SecureBytes(randomCount: byteCount))
    }

    /// X25519(secret, peer public key).
    ///
    /// - Throws: ``CryptoError/Code/invalidKey`` when the result is all zero (a low-order peer key),
    ///   ``CryptoError/Code/invalidLength`` when the peer key is not 32 bytes.
    public func sharedSecret(with peerPublicKey: [UInt8]) throws(CryptoError) -> SecureBytes {
        guard peerPublicKey.count == Self.byteCount else {
            throw CryptoError(
                .invalidLength, "an X25519 public key is \(Self.byteCount) bytes, got \(peerPublicKey.count)")
        }
        var rc: Int32 = 0
        let shared = SecureBytes(count: Self.byteCount) { out in
            secretKey.withUnsafeBytes { s in
                peerPublicKey.withUnsafeBufferPointer { p in
                    rc = crypto_scalarmult(
                        out.u8, s.u8,
                        p.u8)
                }
            }
        }
        guard rc == 0 else {
            throw CryptoError(.invalidKey, "the peer's X25519 key is a low-order point: refuse this peer")
        }
        return shared
    }

    public var description: String { "X25519KeyPair(public: \(hexString(publicKey)), secret: \(secretKey))" }
    public var debugDescription: String { description }
}
