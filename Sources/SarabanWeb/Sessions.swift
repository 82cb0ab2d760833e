import Dispatch
import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode

/// A logged-in browser: who, their CSRF token, when it started and was last used.
struct Session: Sendable {
    /// BLAKE2b of the cookie value (the store never keeps the cookie itself).
    var key: String
    var user: String
    var csrf: String
    var created: Int64
    var lastSeen: Int64
}

/// The web app's sessions, in the daemon's memory only: a restart logs everyone out (nothing to
/// steal from disk). A session ends after `idle` without a request or `lifetime` after login,
/// whichever comes first, at logout, and when its user is disabled.
final class SessionStore: @unchecked Sendable {
    enum Lookup {
        case valid(Session)
        case expired
        case unknown
    }

    let idle: Int64
    let lifetime: Int64
    let capacity: Int
    // Guards `sessions`: request tasks look sessions up concurrently.
    private let lock = NSLock()
    private var sessions: [String: Session] = [:]

    init(idleMillis: Int64, lifetimeMillis: Int64, capacity: Int = 10_000) {
        self.idle = idleMillis
        self.lifetime = lifetimeMillis
        self.capacity = capacity
    }

    static func key(_ cookie: String) -> String {
        Hex.encode((try? BLAKE2b.hash(Array(cookie.utf8), outputLength: 32)) ?? [])
    }

    /// Starts a session for `user`; returns the cookie value (shown to the browser only).
    func create(user: String, now: Int64) -> (cookie: String, session: Session) {
        let cookie = AccountStore.base64URL(Sodium.randomBytes(32))
        let s = Session(
            key: Self.key(cookie), user: user, csrf: AccountStore.base64URL(Sodium.randomBytes(24)), created: now, lastSeen: now)
        lock.lock()
        defer { lock.unlock() }
        if sessions.count >= capacity {
            sessions = sessions.filter { !expired($0.value, now) }
            if sessions.count >= capacity, let oldest = sessions.values.min(by: { $0.lastSeen < $1.lastSeen }) {
                sessions[oldest.key] = nil
            }
        }
        sessions[s.key] = s
        return (cookie, s)
    }

    /// The session for a cookie value, touched; an expired one is removed.
    func lookup(_ cookie: String, now: Int64) -> Lookup {
        let k = Self.key(cookie)
        lock.lock()
        defer { lock.unlock() }
        guard var s = sessions[k] else { return .unknown }
        if expired(s, now) {
            sessions[k] = nil
            return .expired
        }
        s.lastSeen = now
        sessions[k] = s
        return .valid(s)
    }

    func end(_ cookie: String) {
        lock.lock()
        sessions[Self.key(cookie)] = nil
        lock.unlock()
    }

    func endAll(user: String) {
        lock.lock()
        sessions = sessions.filter { $0.value.user != user }
        lock.unlock()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return sessions.count
    }

    private func expired(_ s: Session, _ now: Int64) -> Bool {
        now - s.lastSeen > idle || now - s.created > lifetime
    }
}

/// Login rate limiting: `limit` wrong passwords for one account, or from one address (IPv6 by
/// its /64), within `window` lock that account, or that address, out of logging in for `lockout`
/// (even with the right password: otherwise a lock-out would only slow a guesser down). A right
/// password resets the account's count. Memory stays bounded: stale entries are dropped.
final class LoginThrottle: @unchecked Sendable {
    struct Entry {
        var failures: Int
        var windowStart: Int64
        var lockedUntil: Int64?
    }

    let limit: Int
    let window: Int64
    let lockout: Int64
    // Guards both tables.
    private let lock = NSLock()
    private var accounts: [String: Entry] = [:]
    private var addresses: [String: Entry] = [:]

    init(limit: Int = 20, windowMillis: Int64 = 15 * 60_000, lockoutMillis: Int64 = 15 * 60_000) {
        self.limit = limit
        self.window = windowMillis
        self.lockout = lockoutMillis
    }

    /// Until when a login for `account` from `address` is refused, or nil when it may be tried.
    func lockedUntil(account: String, address: String, now: Int64) -> Int64? {
        lock.lock()
        defer { lock.unlock() }
        let times = [accounts[account]?.lockedUntil, addresses[address]?.lockedUntil].compactMap { $0 }.filter { $0 > now }
        return times.max()
    }

    func recordFailure(account: String, address: String, now: Int64) {
        lock.lock()
        defer { lock.unlock() }
        bump(&accounts, account, now)
        bump(&addresses, address, now)
        if accounts.count + addresses.count > 100_000 { prune(now) }
    }

    func recordSuccess(account: String) {
        lock.lock()
        accounts[account] = nil
        lock.unlock()
    }

    private func bump(_ table: inout [String: Entry], _ key: String, _ now: Int64) {
        var e = table[key] ?? Entry(failures: 0, windowStart: now, lockedUntil: nil)
        if let until = e.lockedUntil, until <= now { e = Entry(failures: 0, windowStart: now, lockedUntil: nil) }
        if now - e.windowStart > window { e = Entry(failures: 0, windowStart: now, lockedUntil: nil) }
        e.failures += 1
        if e.failures >= limit && e.lockedUntil == nil { e.lockedUntil = now + lockout }
        table[key] = e
    }

    private func prune(_ now: Int64) {
        func live(_ e: Entry) -> Bool { (e.lockedUntil ?? 0) > now || now - e.windowStart <= window }
        accounts = accounts.filter { live($0.value) }
        addresses = addresses.filter { live($0.value) }
    }

    /// The key of a client address: an IPv4 address whole, an IPv6 address by its first 64 bits.
    static func addressKey(_ host: String) -> String {
        guard host.contains(":") else { return host }
        var groups = host.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if let gap = groups.firstIndex(of: ""), host.contains("::") {
            let present = groups.filter { !$0.isEmpty }.count
            groups.remove(at: gap)
            groups.insert(contentsOf: Array(repeating: "0", count: max(0, 8 - present)), at: gap)
            groups = groups.filter { !$0.isEmpty }
        }
        return groups.prefix(4).joined(separator: ":") + "::/64"
    }
}

/// Runs Argon2id verifications one at a time on a queue of their own, off the cooperative
/// threads that serve requests: each takes 64 MiB and a fraction of a second, so at most one runs
/// at a time and at most `maximumWaiting` wait (more are refused with 503 at once).
final class PasswordChecks: @unchecked Sendable {
    let queue = DispatchQueue(label: "saraban.web.argon2id")
    let maximumWaiting: Int
    // Guards `waiting`.
    private let lock = NSLock()
    private var waiting = 0

    init(maximumWaiting: Int = 32) { self.maximumWaiting = maximumWaiting }

    /// Runs `body` on the queue; nil when too many are waiting.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        let admitted = lock.withLock { () -> Bool in
            guard waiting < maximumWaiting else { return false }
            waiting += 1
            return true
        }
        guard admitted else { return nil }
        let result: T = await withCheckedContinuation { c in queue.async { c.resume(returning: body()) } }
        lock.withLock { waiting -= 1 }
        return result
    }
}
