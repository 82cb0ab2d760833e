import Foundation
import SarabanNode
#if canImport(Glibc)
import Glibc
#endif

/// One view of a secret letter (ลับ, ลับมาก), or a refused attempt at one.
public struct AuditEntry: Codable, Sendable, Equatable {
    /// Milliseconds since 1970.
    public var time: Int64
    /// `user:somsri` or `token:vendor-x` (``Principal/label``).
    public var who: String
    /// The letter's document id.
    public var letter: String
    /// Its class: ลับ or ลับมาก.
    public var secrecy: String
    /// What was seen: `page`, `print`, `api`, `attachment`.
    public var via: String
    /// False when the view was refused (not cleared): the attempt is recorded too.
    public var allowed: Bool
}

/// The audit list of views of secret letters: `web-audit.jsonl` in the data directory, one JSON
/// object per line, appended with one `write(2)` under `O_APPEND` (a crash loses at most the line
/// being written, never an earlier one), mode 0600 like the node's key files. Kept beside
/// `web-accounts.json`, not in the replicated database: who read what at this office is this
/// node's record, not a fact to sync to other offices. Admins read it at `/audit` and
/// `GET /api/v1/audit`.
public final class AuditLog: @unchecked Sendable {
    public static let fileName = "web-audit.jsonl"
    public let path: String
    // Serialises appends from concurrent requests (one line each, never interleaved).
    private let lock = NSLock()

    public init(directory: DataDirectory) {
        path = directory.path + "/" + Self.fileName
    }

    /// Appends `entry`. A failure to record refuses the view (the caller does not show the letter).
    public func record(_ entry: AuditEntry) throws(NodeError) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? enc.encode(entry) else { throw NodeError(.invalidArgument, "cannot encode an audit entry") }
        let line = [UInt8](data) + [0x0A]
        lock.lock()
        defer { lock.unlock() }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw NodeError(.io, "ไม่สามารถบันทึกการเปิดดูหนังสือลับ / cannot write the audit list (errno \(errno))")
        }
        defer { close(fd) }
        // Owner-only whatever the umask or an earlier copy said.
        fchmod(fd, 0o600)
        let n = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == line.count else {
            throw NodeError(.io, "ไม่สามารถบันทึกการเปิดดูหนังสือลับ / cannot write the audit list (errno \(errno))")
        }
        fsync(fd)
    }

    /// Every entry, newest first. A damaged line (a crash mid-write) is skipped.
    public func entries() -> [AuditEntry] {
        lock.lock()
        let data = FileManager.default.contents(atPath: path) ?? Data()
        lock.unlock()
        let dec = JSONDecoder()
        var out: [AuditEntry] = []
        for line in data.split(separator: 0x0A) where !line.isEmpty {
            if let e = try? dec.decode(AuditEntry.self, from: Data(line)) { out.append(e) }
        }
        return out.reversed()
    }
}
