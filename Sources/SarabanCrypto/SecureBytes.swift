import CSodium

/// Secret bytes (keys, seeds) held outside Swift's copy-on-write arrays and wiped on release.
///
/// The bytes live in one heap allocation that is never copied implicitly, and `sodium_memzero`
/// clears it in `deinit`. Printing a `SecureBytes` shows `<redacted N bytes>`, never the content.
/// Use ``withUnsafeBytes(_:)`` to pass the secret to C, and ``copyBytes()`` only when the bytes
/// must leave memory on purpose (writing a key file).
///
/// Instances are immutable after initialisation, which is why sharing them across threads is safe
/// (`@unchecked Sendable`): nothing writes to the buffer after `init` returns until `deinit`.
public final class SecureBytes: @unchecked Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private let buffer: UnsafeMutableRawBufferPointer

    /// The number of secret bytes.
    public var count: Int { countStored }

    /// Allocates `count` bytes and lets `initializer` fill them (internal: for C calls that write keys).
    init(count: Int, initializingWith initializer: (UnsafeMutableRawBufferPointer) -> Void) {
        Sodium.ensureInitialized()
        let count = max(count, 0)
        let allocation = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        allocation.initializeMemory(as: UInt8.self, repeating: 0)
        initializer(UnsafeMutableRawBufferPointer(rebasing: allocation[0..<count]))
        self.buffer = allocation
        self.countStored = count
    }

    private let countStored: Int

    /// Copies `bytes` into secure storage. The caller should drop (or wipe) its own copy.
    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count) { dst in
            bytes.withUnsafeBytes { src in
                if let base = src.baseAddress, let d = dst.baseAddress {
                    d.copyMemory(from: base, byteCount: src.count)
                }
            }
        }
    }

    /// `count` random bytes from libsodium's CSPRNG.
    public convenience init(randomCount count: Int) {
        self.init(count: count) { dst in
            if let d = dst.baseAddress, count > 0 { randombytes_buf(d, count) }
        }
    }

    deinit {
        sodium_memzero(buffer.baseAddress, buffer.count)
        buffer.deallocate()
    }

    /// Calls `body` with the secret bytes. Do not let the pointer escape.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(rebasing: buffer[0..<countStored]))
    }

    /// A plain copy of the secret, for writing it to a key file. Wipe or drop it promptly.
    public func copyBytes() -> [UInt8] {
        Array(UnsafeRawBufferPointer(rebasing: buffer[0..<countStored]))
    }

    /// A new `SecureBytes` holding the first `n` bytes.
    func prefix(_ n: Int) -> SecureBytes {
        let n = min(n, countStored)
        return SecureBytes(count: n) { dst in
            if let d = dst.baseAddress, let s = buffer.baseAddress, n > 0 { d.copyMemory(from: s, byteCount: n) }
        }
    }

    public var description: String { "<redacted \(countStored) bytes>" }
    public var debugDescription: String { description }
}
