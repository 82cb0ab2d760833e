import Foundation
import SarabanCore
import SarabanOffice
#if canImport(Glibc)
import Glibc
#endif

/// What the web app reads on every request, computed once per version of the store
/// (``SarabanStorage/Store/contentVersion()``) rather than once per request: every letter
/// decoded, the registers folded, a register year's form. A value may also say until when it is
/// true (a register's reservations expire with time), and is computed again after that. A
/// value is computed after the version it is filed under was read, so it is never older than
/// its version; any write makes the next read compute it again.
public final class ReadCache: @unchecked Sendable {
    private let lock = NSLock()
    private var version: Int64?
    private var values: [String: (value: any Sendable, validUntil: Int64?)] = [:]

    private let computing = NSRecursiveLock()

    init() {}

    /// How long a computation must take before the freed memory is given back.
    static let trimAfter: Duration = .milliseconds(100)

    /// glibc's `malloc_trim(0)`, looked up at run time (not in every C library): returns free
    /// heap pages to the system.
    private static let mallocTrim: (@convention(c) (Int) -> Int32)? =
        dlsym(dlopen(nil, RTLD_NOW), "malloc_trim").map { unsafeBitCast($0, to: (@convention(c) (Int) -> Int32).self) }

    static func releaseFreedMemory() { _ = mallocTrim?(0) }

    private func kept<T>(_ key: String, version: Int64, now: Int64) -> T? {
        lock.lock()
        defer { lock.unlock() }
        guard self.version == version, let kept = values[key], kept.validUntil.map({ now <= $0 }) ?? true else { return nil }
        return kept.value as? T
    }

    /// The value under `key` for store version `version` at time `now`, computed by `compute`
    /// (which returns it and the last instant it holds for, nil: until the store changes) when
    /// missing, stale or expired.
    public func value<T: Sendable>(
        _ key: String, version: Int64, now: Int64, _ compute: () throws(NodeError) -> (T, validUntil: Int64?)
    ) throws(NodeError) -> T {
        if let value: T = kept(key, version: version, now: now) { return value }
        // One computation at a time (a cold cache met by 200 requests at once decodes the letters
        // once, not 200 times over); recursive, as a value may be made of other cached values.
        computing.lock()
        defer { computing.unlock() }
        if let value: T = kept(key, version: version, now: now) { return value }
        let started = ContinuousClock.now
        let (value, validUntil) = try compute()
        // A long computation decoded many documents that are garbage now. glibc keeps the freed
        // pages (the daemon's RSS went from 43 to 168 MB at the first letters request over 10,000
        // letters, and stayed there); give them back. Only after slow computations, which
        // happen once per write at most: a trim walks the heap.
        if ContinuousClock.now - started > Self.trimAfter { Self.releaseFreedMemory() }
        lock.lock()
        defer { lock.unlock() }
        // Versions only grow (``SarabanStorage/Store/contentVersion()``): a value of an older
        // version than the one kept is returned to its caller but not kept.
        if let kept = self.version, version < kept { return value }
        if self.version != version {
            self.version = version
            values = [:]
        }
        values[key] = (value, validUntil)
        return value
    }
}

extension Node {
    /// The store's content version (``ReadCache``).
    public func contentVersion() throws(NodeError) -> Int64 {
        do { return try store.contentVersion() } catch { throw NodeError(error) }
    }

    /// ``letters(status:)`` (every live letter, by id) through the read cache, for lists and
    /// registers: without their body text (ข้อความ), which no list shows and which is most of a
    /// real letter's bytes; ``letter(_:)`` reads a whole letter.
    public func cachedLetters(version: Int64) throws(NodeError) -> [LetterView] {
        try readCache.value("letters", version: version, now: now()) { () throws(NodeError) in
            (try letters(status: nil, withBody: false), nil)
        }
    }

    /// ``registers(now:)`` through the read cache: valid until the first live reservation expires.
    public func cachedRegisters(version: Int64) throws(NodeError) -> [RegisterView] {
        let t = now()
        return try readCache.value("registers", version: version, now: t) { () throws(NodeError) in
            let all = try registers(now: t)
            let expiries = all.flatMap { r in r.state.lines.compactMap { $0.state == .reserved ? Int64($0.time ?? "") : nil } }
            return (all, expiries.filter { $0 >= t }.min())
        }
    }
}
