import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One `saraban serve` per data directory: an exclusive `flock` on `DATA/serve.lock`, held while
/// the daemon runs, with the holder's pid written in the file so that a second daemon can name it.
/// The kernel drops the lock when the process ends, however it ends (kill -9 included), so a
/// stale file never blocks a restart.
final class ServeLock: @unchecked Sendable {
    private var fd: Int32

    private init(fd: Int32) { self.fd = fd }

    static func path(_ dir: DataDirectory) -> String { dir.path + "/serve.lock" }

    /// Takes the lock, or throws `.busy` naming the pid of the daemon that holds it.
    static func acquire(_ dir: DataDirectory) throws(NodeError) -> ServeLock {
        let path = Self.path(dir)
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw NodeError(.io, "cannot open \(path): \(String(cString: strerror(errno)))") }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e != EWOULDBLOCK {
                Glibc.close(fd)
                throw NodeError(.io, "cannot lock \(path): \(String(cString: strerror(e)))")
            }
            var buffer = [UInt8](repeating: 0, count: 32)
            let n = pread(fd, &buffer, buffer.count, 0)
            Glibc.close(fd)
            let pid = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
            let who = pid.isEmpty ? "another saraban serve" : "another saraban serve (pid \(pid))"
            throw NodeError(
                .busy,
                "\(who) is already running on \(dir.path): one daemon per data directory. Stop it first"
                    + (pid.isEmpty ? "" : " (`kill \(pid)`)") + ", or give this one its own --data.")
        }
        let text = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, text, text.count, 0)
        return ServeLock(fd: fd)
    }

    /// Empties the file and drops the lock (also done by the kernel when the process ends).
    func release() {
        guard fd >= 0 else { return }
        _ = ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        Glibc.close(fd)
        fd = -1
    }

    deinit { release() }
}
