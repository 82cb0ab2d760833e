import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

extension Store {
    /// The files SQLite keeps for the database at `path`: the database, its write-ahead log and
    /// its shared-memory index. The log holds recent pages in the clear (space keys, opened changes).
    static func databaseFiles(_ path: String) -> [String] { [path, path + "-wal", path + "-shm"] }

    /// Creates the empty database file with mode 0600 before SQLite opens it. SQLite creates the
    /// `-wal` and `-shm` files with the mode of the database file (whatever the umask), so all
    /// three are owner-only from the first byte written.
    static func createOwnerOnly(_ path: String) throws(StorageError) {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            let message = "cannot create \(path): \(String(cString: strerror(e)))"
            throw StorageError(e == EACCES || e == EROFS || e == EPERM ? .readOnly : .io, message, path: path)
        }
        Glibc.close(fd)
    }

    /// Takes group and other permissions off the database files that have them (a data directory
    /// made before the files were created owner-only had a 0644 `-wal` and `-shm`). Files not
    /// owned by this user are left alone.
    static func restrictToOwner(_ path: String, logger: Logger) {
        for file in databaseFiles(path) {
            var st = stat()
            guard stat(file, &st) == 0, st.st_mode & 0o077 != 0, st.st_uid == geteuid() else { continue }
            if chmod(file, st.st_mode & 0o700) == 0 {
                logger.notice("made \(file) readable by its owner only (it was \(String(st.st_mode & 0o777, radix: 8)))")
            }
        }
    }
}
