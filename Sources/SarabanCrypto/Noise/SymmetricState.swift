import CSodium

/// Noise SymmetricState (rev. 34, §5.2) over BLAKE2b: HASHLEN 64, BLOCKLEN 128, HMAC per RFC 2104
/// built from libsodium's BLAKE2b-512, HKDF per §4.3.
struct SymmetricState: Sendable {
    static let hashLength = 64
    static let blockLength = 128

    var cipher = CipherState(key: nil)
    var chainingKey: SecureBytes
    var h: [UInt8]

    /// `InitializeSymmetric(protocol_name)`.
    init(protocolName: [UInt8]) {
        if protocolName.count <= Self.hashLength {
            h = protocolName + [UInt8](repeating: 0, count: Self.hashLength - protocolName.count)
        } else {
            h = BLAKE2b.digest(protocolName, outputLength: Self.hashLength)
        }
        chainingKey = SecureBytes(h)
    }

    /// `MixHash(data)`: h = HASH(h ‖ data).
    mutating func mixHash(_ data: [UInt8]) {
        h = BLAKE2b.digest(h + data, outputLength: Self.hashLength)
    }

    /// `MixKey(ikm)`.
    mutating func mixKey(_ ikm: SecureBytes) {
        let out = ikm.withUnsafeBytes { Self.hkdf(chainingKey: chainingKey, ikm: $0, outputs: 2) }
        chainingKey = out[0]
        cipher = CipherState(key: out[1].prefix(32))
    }

    /// `MixKey(ikm)` for public input (PSK-mode ephemeral keys).
    mutating func mixKey(public ikm: [UInt8]) {
        let out = ikm.withUnsafeBytes { Self.hkdf(chainingKey: chainingKey, ikm: $0, outputs: 2) }
        chainingKey = out[0]
        cipher = CipherState(key: out[1].prefix(32))
    }

    /// `MixKeyAndHash(ikm)`.
    mutating func mixKeyAndHash(_ ikm: SecureBytes) {
        let out = ikm.withUnsafeBytes { Self.hkdf(chainingKey: chainingKey, ikm: $0, outputs: 3) }
        chainingKey = out[0]
        mixHash(out[1].copyBytes())
        cipher = CipherState(key: out[2].prefix(32))
    }

    /// `EncryptAndHash(plaintext)`.
    mutating func encryptAndHash(_ plaintext: [UInt8]) throws(CryptoError) -> [UInt8] {
        let c = try cipher.encryptWithAd(h, plaintext)
        mixHash(c)
        return c
    }

    /// `DecryptAndHash(ciphertext)`.
    mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(CryptoError) -> [UInt8] {
        let p = try cipher.decryptWithAd(h, ciphertext)
        mixHash(ciphertext)
        return p
    }

    /// `Split()`: (initiator→responder, responder→initiator).
    func split() -> (CipherState, CipherState) {
        let out = Self.hkdf(chainingKey: chainingKey, ikm: UnsafeRawBufferPointer(start: nil, count: 0), outputs: 2)
        return (CipherState(key: out[0].prefix(32)), CipherState(key: out[1].prefix(32)))
    }

    /// HMAC-BLAKE2b-512(key, data) with key ≤ 64 bytes, as RFC 2104 defines it.
    static func hmac(key: UnsafeRawBufferPointer, data: [UnsafeRawBufferPointer]) -> SecureBytes {
        var block = [UInt8](repeating: 0, count: blockLength)
        defer { block.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) } }
        for i in 0..<key.count { block[i] = key[i] }
        var inner = [UInt8](repeating: 0, count: hashLength)
        defer { inner.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) } }
        let state = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
        defer {
            sodium_memzero(state, crypto_generichash_statebytes())
            state.deallocate()
        }
        let st = OpaquePointer(state)
        // inner = H((K ⊕ ipad) ‖ data)
        for i in 0..<blockLength { block[i] ^= 0x36 }
        _ = crypto_generichash_init(st, nil, 0, hashLength)
        _ = block.withUnsafeBufferPointer { crypto_generichash_update(st, $0.u8, UInt64($0.count)) }
        for d in data { _ = crypto_generichash_update(st, d.u8, UInt64(d.count)) }
        _ = inner.withUnsafeMutableBufferPointer { crypto_generichash_final(st, $0.u8, hashLength) }
        // outer = H((K ⊕ opad) ‖ inner); 0x36 ⊕ 0x5c turns ipad into opad.
        for i in 0..<blockLength { block[i] ^= 0x36 ^ 0x5c }
        return SecureBytes(count: hashLength) { out in
            _ = crypto_generichash_init(st, nil, 0, hashLength)
            _ = block.withUnsafeBufferPointer { crypto_generichash_update(st, $0.u8, UInt64($0.count)) }
            _ = inner.withUnsafeBufferPointer { crypto_generichash_update(st, $0.u8, UInt64($0.count)) }
            _ = crypto_generichash_final(st, out.u8, hashLength)
        }
    }

    /// HKDF(chaining_key, input_key_material, num_outputs) of §4.3; 2 or 3 outputs of 64 bytes.
    static func hkdf(chainingKey: SecureBytes, ikm: UnsafeRawBufferPointer, outputs: Int) -> [SecureBytes] {
        let temp = chainingKey.withUnsafeBytes { hmac(key: $0, data: [ikm]) }
        var result: [SecureBytes] = []
        var previous: SecureBytes?
        for i in 1...outputs {
            var counter = UInt8(i)
            let next = temp.withUnsafeBytes { t in
                withUnsafeBytes(of: &counter) { c in
                    if let previous {
                        return previous.withUnsafeBytes { p in hmac(key: t, data: [p, c]) }
                    }
                    return hmac(key: t, data: [c])
                }
            }
            result.append(next)
            previous = next
        }
        return result
    }
}
