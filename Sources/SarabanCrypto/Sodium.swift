import CSodium

/// Result of the one-time `sodium_init()` call. Swift initialises globals lazily and exactly once
/// (thread-safe), so this is the single place libsodium is initialised.
private let sodiumInitResult: Int32 = sodium_init()

/// libsodium bootstrap and small utilities.
///
/// Every SarabanCrypto entry point makes sure libsodium is initialised, so calling
/// ``initialize()`` is optional; a node calls it once at start-up to fail early and clearly.
public enum Sodium {
    /// Initialises libsodium (idempotent, thread-safe).
    ///
    /// - Throws: ``CryptoError/Code/libraryUnavailable`` when libsodium cannot initialise.
    public static func initialize() throws(CryptoError) {
        guard sodiumInitResult >= 0 else {
            throw CryptoError(
                .libraryUnavailable,
                "libsodium failed to initialise (no usable random source?): check that /dev/urandom is readable")
        }
    }

    /// Ensures `sodium_init` ran. Cheap after the first call.
    @inline(__always)
    static func ensureInitialized() {
        _ = sodiumInitResult
    }

    /// `n` bytes from libsodium's CSPRNG.
    public static func randomBytes(_ n: Int) -> [UInt8] {
        ensureInitialized()
        guard n > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: n) { buffer, count in
            randombytes_buf(buffer.u8, n)
            count = n
        }
    }

    /// Compares two byte strings in time that depends only on their lengths.
    ///
    /// Returns `false` when the lengths differ.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        ensureInitialized()
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in sodium_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 }
        }
    }

    /// Constant-time comparison of two secrets.
    public static func constantTimeEqual(_ a: SecureBytes, _ b: SecureBytes) -> Bool {
        guard a.count == b.count else { return false }
        if a.count == 0 { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in sodium_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 }
        }
    }
}

/// Calls `body` with a pointer to the contiguous bytes of `bytes` (copying only when the collection
/// is not contiguous). The body does not throw: callers return a C status code and throw afterwards,
/// which keeps typed throws intact.
@inline(__always)
func withContiguousBytes<C: Collection, R>(_ bytes: C, _ body: (UnsafeRawBufferPointer) -> R) -> R
where C.Element == UInt8 {
    if let r = bytes.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) { return r }
    return Array(bytes).withUnsafeBytes(body)
}

/// Lowercase hex, for descriptions.
func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Parses lowercase or uppercase hex; nil on odd length or a non-hex character.
func bytesFromHex(_ text: String) -> [UInt8]? {
    let utf8 = Array(text.utf8)
    guard utf8.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
    var out = [UInt8]()
    out.reserveCapacity(utf8.count / 2)
    var i = 0
    while i < utf8.count {
        guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}

/// A few zero bytes that C calls can point at when a buffer is empty (libsodium declares most
/// pointer parameters non-null even for zero lengths). Nothing ever writes more than zero bytes here.
nonisolated(unsafe) private let emptyBytes: UnsafeMutablePointer<UInt8> = {
    let p = UnsafeMutablePointer<UInt8>.allocate(capacity: 16)
    p.initialize(repeating: 0, count: 16)
    return p
}()

extension UnsafeRawBufferPointer {
    /// The base address as `UInt8*`, never nil.
    @inline(__always)
    var u8: UnsafePointer<UInt8> { baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(emptyBytes) }
}

extension UnsafeMutableRawBufferPointer {
    /// The base address as `UInt8*`, never nil.
    @inline(__always)
    var u8: UnsafeMutablePointer<UInt8> { baseAddress?.assumingMemoryBound(to: UInt8.self) ?? emptyBytes }
}

extension UnsafeBufferPointer<UInt8> {
    /// The base address, never nil.
    @inline(__always)
    var u8: UnsafePointer<UInt8> { baseAddress ?? UnsafePointer(emptyBytes) }
}

extension UnsafeMutableBufferPointer<UInt8> {
    /// The base address, never nil.
    @inline(__always)
    var u8: UnsafeMutablePointer<UInt8> { baseAddress ?? emptyBytes }
}
