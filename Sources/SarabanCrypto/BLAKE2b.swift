import CSodium

/// BLAKE2b (libsodium `crypto_generichash`), one-shot and streaming.
///
/// Output lengths run from ``minimumOutputLength`` (16) to ``maximumOutputLength`` (64) bytes;
/// keys are optional and at most 64 bytes.
public enum BLAKE2b {
    /// 16 bytes.
    public static let minimumOutputLength = Int(crypto_generichash_BYTES_MIN)
    /// 64 bytes.
    public static let maximumOutputLength = Int(crypto_generichash_BYTES_MAX)
    /// 64 bytes.
    public static let maximumKeyLength = Int(crypto_generichash_KEYBYTES_MAX)

    /// Hashes `data` to `outputLength` bytes, keyed when `key` is given.
    ///
    /// - Throws: ``CryptoError/Code/invalidParameter`` for an output length outside 16…64,
    ///   ``CryptoError/Code/invalidLength`` for a key longer than 64 bytes.
    public static func hash(
        _ data: some Collection<UInt8>, outputLength: Int = 32, key: SecureBytes? = nil
    ) throws(CryptoError) -> [UInt8] {
        try checkParameters(outputLength: outputLength, keyLength: key?.count ?? 0)
        return withContiguousBytes(data) { d in digest(d, outputLength: outputLength, key: key) }
    }

    /// Unchecked one-shot hash over raw bytes (parameters already validated).
    static func digest(_ data: UnsafeRawBufferPointer, outputLength: Int, key: SecureBytes? = nil) -> [UInt8] {
        Sodium.ensureInitialized()
        return [UInt8](unsafeUninitializedCapacity: outputLength) { out, count in
            let input = data.u8
            if let key {
                key.withUnsafeBytes { k in
                    _ = crypto_generichash(
                        out.u8, outputLength, input, UInt64(data.count),
                        k.u8, k.count)
                }
            } else {
                _ = crypto_generichash(out.u8, outputLength, input, UInt64(data.count), nil, 0)
            }
            count = outputLength
        }
    }

    /// Unkeyed hash of an array, internal fast path.
    static func digest(_ data: [UInt8], outputLength: Int) -> [UInt8] {
        data.withUnsafeBytes { digest($0, outputLength: outputLength) }
    }

    static func checkParameters(outputLength: Int, keyLength: Int) throws(CryptoError) {
        guard (minimumOutputLength...maximumOutputLength).contains(outputLength) else {
            throw CryptoError(
                .invalidParameter,
                "BLAKE2b output length \(outputLength) is outside \(minimumOutputLength)…\(maximumOutputLength): pick a length in range"
            )
        }
        guard keyLength <= maximumKeyLength else {
            throw CryptoError(.invalidLength, "BLAKE2b keys are at most \(maximumKeyLength) bytes, got \(keyLength)")
        }
    }

    /// An incremental BLAKE2b hasher.
    ///
    /// ```swift
    /// let hasher = try BLAKE2b.Hasher(outputLength: 32)
    /// hasher.update(part1); hasher.update(part2)
    /// let digest = hasher.finalize()
    /// ```
    /// ``finalize()`` works on a copy of the state, so it may be called more than once and
    /// updates may continue afterwards. A hasher is a reference type and is not `Sendable`.
    public final class Hasher {
        private let state: UnsafeMutableRawPointer
        private let stateSize: Int
        /// The digest length this hasher produces.
        public let outputLength: Int

        /// Starts a hash of `outputLength` bytes, keyed when `key` is given.
        public init(outputLength: Int = 32, key: SecureBytes? = nil) throws(CryptoError) {
            try BLAKE2b.checkParameters(outputLength: outputLength, keyLength: key?.count ?? 0)
            Sodium.ensureInitialized()
            self.outputLength = outputLength
            stateSize = crypto_generichash_statebytes()
            // libsodium declares the state 64-byte aligned.
            state = UnsafeMutableRawPointer.allocate(byteCount: stateSize, alignment: 64)
            let st = OpaquePointer(state)
            if let key {
                key.withUnsafeBytes { k in
                    _ = crypto_generichash_init(st, k.u8, k.count, outputLength)
                }
            } else {
                _ = crypto_generichash_init(st, nil, 0, outputLength)
            }
        }

        deinit {
            sodium_memzero(state, stateSize)
            state.deallocate()
        }

        /// Adds `data` to the hash.
        public func update(_ data: some Collection<UInt8>) {
            withContiguousBytes(data) { d in
                _ = crypto_generichash_update(
                    OpaquePointer(state),
                    d.u8, UInt64(d.count))
            }
        }

        /// The digest of everything added so far.
        public func finalize() -> [UInt8] {
            let copy = UnsafeMutableRawPointer.allocate(byteCount: stateSize, alignment: 64)
            defer {
                sodium_memzero(copy, stateSize)
                copy.deallocate()
            }
            copy.copyMemory(from: state, byteCount: stateSize)
            return [UInt8](unsafeUninitializedCapacity: outputLength) { out, count in
                _ = crypto_generichash_final(
                    OpaquePointer(copy), out.u8, outputLength)
                count = outputLength
            }
        }
    }
}
