import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanOffice
#if canImport(Glibc)
import Glibc
#endif

/// What a web user may do (Docs/WEB.md, "Roles").
public enum Role: String, Codable, Sendable, CaseIterable, Comparable {
    /// งานสารบรรณ: drafts, registers, receives, dispatches.
    case clerk
    /// An officer who signs with their own officer key.
    case officer
    /// A head of division or the office head: routes, signs, reads the work of the office.
    case head
    /// Manages the web app: reads the audit list, sees every page.
    case admin

    public var thai: String {
        switch self {
        case .clerk: return "เจ้าหน้าที่สารบรรณ"
        case .officer: return "ผู้ลงนาม"
        case .head: return "หัวหน้าส่วนราชการ"
        case .admin: return "ผู้ดูแลระบบ"
        }
    }

    var rank: Int { Role.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }

    /// Parses `clerk|officer|head|admin` (or the Thai name).
    public init(parsing text: String) throws(NodeError) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let r = Role(rawValue: t) ?? Role.allCases.first(where: { $0.thai == t }) else {
            throw NodeError(
                .invalidArgument,
                "ไม่รู้จักบทบาท \(text.debugDescription) / unknown role \(text.debugDescription): use clerk, officer, head or admin")
        }
        self = r
    }
}

/// What an API token may do.
public enum TokenScope: String, Codable, Sendable {
    /// GET and HEAD under /api/v1 (and /metrics).
    case read
    /// Every /api/v1 call.
    case write

    public init(parsing text: String) throws(NodeError) {
        guard let s = TokenScope(rawValue: text.lowercased()) else {
            throw NodeError(.invalidArgument, "ไม่รู้จักขอบเขต \(text.debugDescription) / --scope must be read or write")
        }
        self = s
    }
}

/// One web user. The password is kept only as an Argon2id hash string.
public struct WebUser: Codable, Sendable, Equatable {
    public var name: String
    public var displayName: String
    public var role: Role
    public var passwordHash: String
    public var disabled: Bool
    /// Milliseconds since 1970.
    public var created: Int64
    public var passwordChanged: Int64
    /// Cleared for secret letters up to this class (ลับ, ลับมาก), if any.
    public var clearance: String?
}

/// One API token. Only the BLAKE2b-256 hash of the token is kept; the token is shown once.
public struct APIToken: Codable, Sendable, Equatable {
    public var name: String
    public var scope: TokenScope
    public var hash: String
    public var created: Int64
    public var revoked: Int64?
}

/// The web app's accounts and API tokens: `web-accounts.json` in the data directory, mode 0600,
/// beside `node.key`, never in the replicated database (an account belongs to one node: an
/// office's branch server has its own).
///
/// Every change takes the data directory's `flock` (`.lock`, as config.json), reads the file, changes it and
/// replaces it by rename (a crash leaves the old or the new file, whole). Readers (the running
/// daemon) re-read it when its modification time or size changes, so `saraban user disable` or
/// `saraban token revoke` on the command line takes effect at the daemon's next request.
public final class AccountStore: @unchecked Sendable {
    public struct Contents: Codable, Sendable, Equatable {
        public var version = 1
        public var users: [WebUser] = []
        public var tokens: [APIToken] = []
    }

    public static let fileName = "web-accounts.json"
    /// Token text starts with this, so a leaked token is recognisable (secret scanners, logs).
    public static let tokenPrefix = "sbt_"
    /// The shortest password accepted (characters, after NFC normalisation).
    public static let minimumPasswordLength = 8

    public let path: String
    let directory: DataDirectory
    let passwordCost: Argon2id.Parameters
    let now: @Sendable () -> Int64
    // Guards `cached`: the daemon's request tasks read it concurrently.
    private let lock = NSLock()
    private var cached: (mtime: timespec, size: Int, contents: Contents)?
    private var decoy: String?

    public init(
        directory: DataDirectory, passwordCost: Argon2id.Parameters = .interactive,
        now: @escaping @Sendable () -> Int64 = Node.systemClock
    ) {
        self.path = directory.path + "/" + Self.fileName
        self.directory = directory
        self.passwordCost = passwordCost
        self.now = now
    }

    // MARK: - Reading

    /// The accounts as on disk now (cached while the file is unchanged).
    public func load() throws(NodeError) -> Contents {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { return Contents() }
            throw NodeError(.io, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        // The mode is checked at every read (the stat is made anyway), so a chmod is seen at once.
        try checkOwnerOnly(st)
        lock.lock()
        if let c = cached, c.mtime.tv_sec == st.st_mtim.tv_sec, c.mtime.tv_nsec == st.st_mtim.tv_nsec, c.size == Int(st.st_size) {
            lock.unlock()
            return c.contents
        }
        lock.unlock()
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError(.readOnly, "cannot read \(path): check its owner and permissions")
        }
        let contents: Contents
        do { contents = try JSONDecoder().decode(Contents.self, from: data) } catch {
            throw NodeError(
                .badConfig,
                "\(path) is damaged (\(error)); restore it from a backup, or move it aside and add the users again "
                    + "with `saraban user add`")
        }
        lock.lock()
        cached = (st.st_mtim, Int(st.st_size), contents)
        lock.unlock()
        return contents
    }

    public func user(_ name: String) throws(NodeError) -> WebUser? {
        let key = Self.normalizedName(name)
        return try load().users.first { $0.name == key }
    }

    /// The active token whose hash matches `token`, if any.
    public func token(matching token: String) throws(NodeError) -> APIToken? {
        guard token.hasPrefix(Self.tokenPrefix), token.utf8.count < 200 else { return nil }
        let h = Self.tokenHash(token)
        return try load().tokens.first { $0.revoked == nil && Sodium.constantTimeEqual(Array($0.hash.utf8), Array(h.utf8)) }
    }

    // MARK: - Changing (CLI)

    /// Adds a user. Refuses a name already used, a bad name and a short password.
    @discardableResult
    public func addUser(name: String, displayName: String?, role: Role, password: SecureBytes) throws(NodeError) -> WebUser {
        let key = try Self.checkName(name)
        let hash = try hashPassword(password)
        return try change { c throws(NodeError) in
            guard !c.users.contains(where: { $0.name == key }) else {
                throw NodeError(.alreadyInitialized, "มีผู้ใช้ชื่อ \(key) แล้ว / a user named \(key) already exists; nothing was changed")
            }
            let t = now()
            let u = WebUser(
                name: key, displayName: displayName?.trimmingCharacters(in: .whitespaces).nilIfEmpty ?? key, role: role,
                passwordHash: hash, disabled: false, created: t, passwordChanged: t, clearance: nil)
            c.users.append(u)
            return u
        }
    }

    /// Sets a user's password (an admin's reset, or the user's own change through the web app).
    public func setPassword(_ name: String, password: SecureBytes) throws(NodeError) {
        let hash = try hashPassword(password)
        try changeUser(name) { u in
            u.passwordHash = hash
            u.passwordChanged = now()
        }
    }

    /// Disables (or enables again) a user: a disabled user cannot log in and their sessions end
    /// at their next request.
    public func setDisabled(_ name: String, _ disabled: Bool) throws(NodeError) {
        try changeUser(name) { $0.disabled = disabled }
    }

    /// Clears the user for secret letters up to `level` (``Secrecy/none``: no clearance).
    public func setClearance(_ name: String, _ level: Secrecy) throws(NodeError) {
        try changeUser(name) { $0.clearance = level == .none ? nil : level.rawValue }
    }

    /// Sets the user's role.
    public func setRole(_ name: String, _ role: Role) throws(NodeError) {
        try changeUser(name) { $0.role = role }
    }

    /// Creates a token and returns its text (shown once: only its hash is kept).
    public func createToken(name: String, scope: TokenScope) throws(NodeError) -> (APIToken, String) {
        let key = try Self.checkName(name, what: "token")
        let text = Self.tokenPrefix + Self.base64URL(Sodium.randomBytes(32))
        return try change { c throws(NodeError) in
            guard !c.tokens.contains(where: { $0.name == key && $0.revoked == nil }) else {
                throw NodeError(
                    .alreadyInitialized,
                    "มีโทเคนชื่อ \(key) แล้ว / a token named \(key) already exists; revoke it first (`saraban token revoke \(key)`)")
            }
            let t = APIToken(name: key, scope: scope, hash: Self.tokenHash(text), created: now(), revoked: nil)
            c.tokens.append(t)
            return (t, text)
        }
    }

    /// Revokes the active token named `name`: it is refused from the daemon's next request.
    public func revokeToken(_ name: String) throws(NodeError) {
        let key = Self.normalizedName(name)
        try change { c throws(NodeError) in
            guard let i = c.tokens.firstIndex(where: { $0.name == key && $0.revoked == nil }) else {
                throw NodeError(.unknownDocument, "ไม่มีโทเคนชื่อ \(key) / no active token named \(key) (`saraban token list`)")
            }
            c.tokens[i].revoked = now()
        }
    }

    // MARK: - Checking

    /// Whether `password` is the user's. Takes Argon2id's time whether or not the user exists.
    public func verify(_ name: String, password: SecureBytes) throws(NodeError) -> WebUser? {
        let u = try user(name)
        let hash = u?.passwordHash ?? decoyHash()
        let ok: Bool
        do { ok = try Argon2id.verifyPassword(Self.normalized(password), hash: hash) } catch {
            throw NodeError(.badConfig, "the password hash of \(name) in \(path) is damaged; reset it with `saraban user passwd \(name)`")
        }
        guard ok, let u else { return nil }
        return u
    }

    /// A hash of a random password at this store's cost, so a login for an unknown name costs as
    /// much as one for a known name.
    func decoyHash() -> String {
        lock.lock()
        defer { lock.unlock() }
        if let decoy { return decoy }
        let h = (try? Argon2id.hashPassword(SecureBytes(randomCount: 16), parameters: passwordCost)) ?? ""
        decoy = h
        return h
    }

    // MARK: - Helpers

    static func normalizedName(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// A login or token name: 1–64 of a–z, 0–9, `.`, `_`, `-` (case-folded), so two names never
    /// look alike on screen.
    public static func checkName(_ name: String, what: String = "user") throws(NodeError) -> String {
        let key = normalizedName(name)
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789._-")
        guard (1...64).contains(key.count), key.allSatisfy({ allowed.contains($0) }), key.first != "-" else {
            throw NodeError(
                .invalidArgument,
                "ชื่อ\(what == "user" ? "ผู้ใช้" : "โทเคน") \(name.debugDescription) ใช้ไม่ได้ / the \(what) name "
                    + "\(name.debugDescription) is not 1–64 of a–z, 0–9, '.', '_', '-' (put a Thai name in --display)")
        }
        return key
    }

    static func normalized(_ password: SecureBytes) -> SecureBytes {
        password.withUnsafeBytes { raw in
            guard let text = String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self) else { return password }
            return SecureBytes(Array(text.precomposedStringWithCanonicalMapping.utf8))
        }
    }

    func hashPassword(_ password: SecureBytes) throws(NodeError) -> String {
        let count = password.withUnsafeBytes { String(validating: $0.bindMemory(to: UInt8.self), as: UTF8.self)?.count }
        guard let count else {
            throw NodeError(.invalidArgument, "รหัสผ่านต้องเป็นข้อความ UTF-8 / the password is not valid UTF-8 text")
        }
        guard count >= Self.minimumPasswordLength else {
            throw NodeError(
                .invalidArgument,
                "รหัสผ่านสั้นเกินไป (อย่างน้อย \(Self.minimumPasswordLength) ตัวอักษร) / the password is too short: use at least "
                    + "\(Self.minimumPasswordLength) characters; nothing was changed")
        }
        do { return try Argon2id.hashPassword(Self.normalized(password), parameters: passwordCost) } catch {
            throw NodeError(.io, "cannot hash the password: \(error.message)")
        }
    }

    static func tokenHash(_ token: String) -> String {
        Hex.encode((try? BLAKE2b.hash(Array(token.utf8), outputLength: 32)) ?? [])
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    func checkOwnerOnly(_ st: stat) throws(NodeError) {
        guard st.st_mode & 0o077 != 0 else { return }
        throw NodeError(
            .insecureKey,
            "\(path) (the web app's password hashes and token hashes) can be read by group or others; it is refused: "
                + "`chmod 600 \(path)` / ผู้อื่นอ่าน \(path) ได้ จึงไม่ใช้: สั่ง `chmod 600 \(path)`")
    }

    func changeUser(_ name: String, _ body: (inout WebUser) -> Void) throws(NodeError) {
        let key = Self.normalizedName(name)
        try change { c throws(NodeError) in
            guard let i = c.users.firstIndex(where: { $0.name == key }) else {
                throw NodeError(.unknownDocument, "ไม่มีผู้ใช้ชื่อ \(key) / no user named \(key) (`saraban user list`)")
            }
            body(&c.users[i])
        }
    }

    /// Read, change and replace the file under the data directory's lock (`.lock`, as config.json).
    @discardableResult
    func change<T>(_ body: (inout Contents) throws(NodeError) -> T) throws(NodeError) -> T {
        try ConfigFileLock.withLock(directory) { () throws(NodeError) -> T in
            lock.lock()
            cached = nil
            lock.unlock()
            var contents = try load()
            let result = try body(&contents)
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data: Data
            do { data = try enc.encode(contents) + Data("\n".utf8) } catch { throw NodeError(.io, "\(error)") }
            try Node.replaceFile(path, with: data, mode: 0o600)
            return result
        }
    }
}

extension String {
    var nilIfEmpty: String? { isEmpty ? nil : self }
}
