import CSodium

/// Argon2id (libsodium `crypto_pwhash`, algorithm `ARGON2ID13`): password hashing for the web
/// app's accounts and key derivation for secrets kept under a passphrase (officer keys).
///
/// Two uses, one cost model:
/// - ``hashPassword(_:parameters:)`` and ``verifyPassword(_:hash:)``: the self-describing string
///   `$argon2id$v=19$m=…,t=…,p=1$salt$hash` (`crypto_pwhash_str`), with a fresh random salt each
///   time; the string carries its own parameters, so raising them later keeps old hashes valid
///   (``needsRehash(_:parameters:)`` says when to re-hash at the next login).
/// - ``deriveKey(passphrase:salt:parameters:)``: 32 bytes for XChaCha20-Poly1305 from a
///   passphrase and a 16-byte salt (`crypto_pwhash`); the caller stores the salt and parameters
///   beside what it encrypts.
///
/// ```swift
/// let stored = try Argon2id.hashPassword(SecureBytes(Array("รหัสผ่าน".utf8)))
/// let ok = try Argon2id.verifyPassword(SecureBytes(Array("รหัสผ่าน".utf8)), hash: stored)
/// ```
public enum Argon2id {
    /// The cost of one computation: passes over memory (`opslimit`) and memory in bytes (`memlimit`).
    public struct Parameters: Sendable, Hashable, CustomStringConvertible {
        /// Passes (Argon2's `t`), at least ``minimumOperations``.
        public var operations: UInt64
        /// Memory in bytes (Argon2's `m` × 1024), at least ``minimumMemory``.
        public var memory: Int

        public init(operations: UInt64, memory: Int) {
            self.operations = operations
            self.memory = memory
        }

        /// libsodium's interactive limits: 2 passes over 64 MiB (about 0.1–0.3 s on an office PC).
        /// For logins to the web app, where a person waits and the server may verify several at once.
        public static let interactive = Parameters(
            operations: UInt64(crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE),
            memory: Int(crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE))

        /// libsodium's moderate limits: 3 passes over 256 MiB (about 1 s). For secrets on disk
        /// that an attacker with a copy of the file could try passphrases against offline
        /// (officer keys): each guess costs 256 MiB and a second.
        public static let moderate = Parameters(
            operations: UInt64(crypto_pwhash_argon2id_OPSLIMIT_MODERATE),
            memory: Int(crypto_pwhash_argon2id_MEMLIMIT_MODERATE))

        /// libsodium's lowest accepted cost (1 pass, 8 KiB). Only for tests of code that stores
        /// hashes; never for real secrets.
        public static let minimum = Parameters(operations: minimumOperations, memory: minimumMemory)

        public var description: String { "Argon2id(t=\(operations), m=\(memory / 1024) KiB)" }
    }

    /// 1 pass.
    public static let minimumOperations = UInt64(crypto_pwhash_argon2id_OPSLIMIT_MIN)
    /// 8 KiB.
    public static let minimumMemory = Int(crypto_pwhash_argon2id_MEMLIMIT_MIN)
    /// Upper bound this API accepts for memory: 4 GiB (libsodium allows more on 64-bit, nobody here needs it).
    public static let maximumMemory = 4 << 30
    /// 16 bytes.
    public static let saltByteCount = Int(crypto_pwhash_argon2id_SALTBYTES)
    /// Derived keys are at least 16 bytes.
    public static let minimumKeyByteCount = Int(crypto_pwhash_argon2id_BYTES_MIN)
    /// The longest hash string `crypto_pwhash_str` writes, including its terminating NUL (128).
    public static let hashStringCapacity = Int(crypto_pwhash_argon2id_STRBYTES)
    /// Every hash string starts with this.
    public static let hashPrefix = crypto_pwhash_argon2id_STRPREFIX

    /// A fresh random salt for ``deriveKey(passphrase:salt:parameters:)``.
    public static func randomSalt() -> [UInt8] { Sodium.randomBytes(saltByteCount) }

    /// Hashes a password for storage, with a fresh random salt.
    ///
    /// - Throws: ``CryptoError/Code/invalidParameter`` when `parameters` are outside libsodium's
    ///   limits; ``CryptoError/Code/resourceExhausted`` when the memory cannot be allocated.
    public static func hashPassword(
        _ password: SecureBytes, parameters: Parameters = .interactive
    ) throws(CryptoError) -> String {
        try check(parameters)
        var out = [CChar](repeating: 0, count: hashStringCapacity)
        let rc = password.withUnsafeBytes { p in
            out.withUnsafeMutableBufferPointer { o in
                crypto_pwhash_str_alg(
                    o.baseAddress!, p.cchar, UInt64(p.count),
                    parameters.operations, parameters.memory, crypto_pwhash_argon2id_ALG_ARGON2ID13)
            }
        }
        guard rc == 0 else { throw outOfMemory(parameters) }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Whether `password` matches `hash` (a string from ``hashPassword(_:parameters:)``). The
    /// comparison takes the same time whatever the password; a wrong password returns `false`.
    ///
    /// - Throws: ``CryptoError/Code/invalidParameter`` when `hash` is not an Argon2id hash string
    ///   (a damaged accounts file, not a wrong password).
    public static func verifyPassword(_ password: SecureBytes, hash: String) throws(CryptoError) -> Bool {
        let cString = try hashCString(hash)
        let rc = password.withUnsafeBytes { p in
            crypto_pwhash_str_verify(cString, p.cchar, UInt64(p.count))
        }
        return rc == 0
    }

    /// Whether `hash` was made with other parameters than `parameters` (re-hash the password at
    /// the next successful login).
    ///
    /// - Throws: ``CryptoError/Code/invalidParameter`` when `hash` is not an Argon2id hash string.
    public static func needsRehash(_ hash: String, parameters: Parameters = .interactive) throws(CryptoError) -> Bool {
        let cString = try hashCString(hash)
        let rc = crypto_pwhash_argon2id_str_needs_rehash(cString, parameters.operations, parameters.memory)
        guard rc >= 0 else {
            throw CryptoError(.invalidParameter, "the stored password hash does not parse: restore the accounts file or reset the password")
        }
        return rc == 1
    }

    /// Derives `byteCount` secret bytes (32 by default: a ``SymmetricKey``'s length) from a
    /// passphrase and a salt. The same passphrase, salt and parameters always give the same bytes.
    ///
    /// - Throws: ``CryptoError/Code/invalidLength`` for a salt that is not 16 bytes or an output
    ///   shorter than 16; ``CryptoError/Code/invalidParameter`` for parameters outside libsodium's
    ///   limits; ``CryptoError/Code/resourceExhausted`` when the memory cannot be allocated.
    public static func deriveBytes(
        passphrase: SecureBytes, salt: [UInt8], parameters: Parameters, byteCount: Int = SymmetricKey.byteCount
    ) throws(CryptoError) -> SecureBytes {
        guard salt.count == saltByteCount else {
            throw CryptoError(.invalidLength, "an Argon2id salt is \(saltByteCount) bytes, got \(salt.count): the stored salt is damaged")
        }
        guard byteCount >= minimumKeyByteCount else {
            throw CryptoError(.invalidLength, "Argon2id derives at least \(minimumKeyByteCount) bytes, asked for \(byteCount)")
        }
        try check(parameters)
        var rc: Int32 = 0
        let out = SecureBytes(count: byteCount) { o in
            rc = passphrase.withUnsafeBytes { p in
                salt.withUnsafeBytes { s in
                    crypto_pwhash(
                        o.u8, UInt64(byteCount), p.cchar, UInt64(p.count),
                        s.u8, parameters.operations, parameters.memory, crypto_pwhash_argon2id_ALG_ARGON2ID13)
                }
            }
        }
        guard rc == 0 else { throw outOfMemory(parameters) }
        return out
    }

    /// A 32-byte XChaCha20-Poly1305 key derived from a passphrase and salt
    /// (``deriveBytes(passphrase:salt:parameters:byteCount:)``).
    public static func deriveKey(
        passphrase: SecureBytes, salt: [UInt8], parameters: Parameters
    ) throws(CryptoError) -> SymmetricKey {
        SymmetricKey(unchecked: try deriveBytes(passphrase: passphrase, salt: salt, parameters: parameters))
    }

    static func check(_ p: Parameters) throws(CryptoError) {
        guard p.operations >= minimumOperations, p.operations <= UInt64(UInt32.max) else {
            throw CryptoError(.invalidParameter, "Argon2id passes must be 1…\(UInt32.max), got \(p.operations)")
        }
        guard p.memory >= minimumMemory, p.memory <= maximumMemory else {
            throw CryptoError(
                .invalidParameter, "Argon2id memory must be \(minimumMemory) bytes…4 GiB, got \(p.memory) bytes")
        }
    }

    static func outOfMemory(_ p: Parameters) -> CryptoError {
        CryptoError(
            .resourceExhausted,
            "Argon2id could not allocate \(p.memory / 1024) KiB: free some memory (or lower the parallel logins) and try again")
    }

    /// The hash as a NUL-terminated C string of at most ``hashStringCapacity`` bytes, checked to be Argon2id.
    static func hashCString(_ hash: String) throws(CryptoError) -> [CChar] {
        let bytes = Array(hash.utf8)
        guard hash.hasPrefix(hashPrefix), bytes.count < hashStringCapacity, !bytes.contains(0) else {
            throw CryptoError(
                .invalidParameter,
                "the stored password hash is not an Argon2id hash string: restore the accounts file or reset the password")
        }
        return bytes.map { CChar(bitPattern: $0) } + [0]
    }
}

extension UnsafeRawBufferPointer {
    /// The base address as `char*`, never nil (libsodium's password parameters are `const char *`).
    @inline(__always)
    var cchar: UnsafePointer<CChar> { UnsafeRawPointer(u8).assumingMemoryBound(to: CChar.self) }
}
