import Foundation
import SarabanCrypto
#if canImport(Glibc)
import Glibc
#endif

/// `node.key`: the node's Ed25519 identity seed, in a small self-checking binary format.
///
/// Layout (73 bytes): the magic `SRBNKEY` + NUL (8), a format version (1), the 32-byte seed,
/// and the 32-byte public key. On load the public key is derived again from the seed and must
/// equal the stored one, so any damaged byte in either half is detected and reported.
///
/// The file is created with `open(2)` using `O_CREAT | O_EXCL` and mode 0600, so it is never
/// readable by others, not even for an instant, and an existing key is never overwritten.
enum KeyFile {
    static let magic: [UInt8] = Array("SRBNKEY".utf8) + [0]
    static let version: UInt8 = 1
    static let size = 8 + 1 + 32 + 32

    static func write(_ pair: SigningKeyPair, to path: String) throws(NodeError) {
        var bytes = magic
        bytes.append(version)
        bytes += pair.seed.copyBytes()
        bytes += pair.publicKey.rawRepresentation
        defer { for i in bytes.indices { bytes[i] = 0 } }
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let e = errno
            if e == EEXIST { throw NodeError(.alreadyInitialized, "\(path) already exists; refusing to overwrite a node key") }
            if e == EACCES || e == EROFS || e == EPERM {
                throw NodeError(.readOnly, "cannot create \(path): \(String(cString: strerror(e))); make the directory writable")
            }
            throw NodeError(.io, "cannot create \(path): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw NodeError(.io, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw NodeError(.io, "cannot sync \(path): \(String(cString: strerror(errno)))") }
    }

    /// Refuses a key file that group or others may read or write (as ssh refuses such a private
    /// key): whoever can read it can act as this node, so it is not used until the mode is fixed.
    static func checkOwnerOnly(_ path: String) throws(NodeError) {
        var st = stat()
        guard stat(path, &st) == 0 else { return }  // unreadable: reading it reports why
        let mode = st.st_mode & 0o777
        guard mode & 0o077 != 0 else { return }
        let octal = "0" + String(mode, radix: 8)
        throw NodeError(
            .insecureKey,
            "the key file \(path) has mode \(octal): group or others can read it, so it is refused; "
                + "make it readable by its owner only with `chmod 600 \(path)` and check who may have copied it "
                + "/ ไฟล์กุญแจ \(path) ผู้อื่นอ่านได้ (สิทธิ์ \(octal)) จึงไม่ใช้: สั่ง `chmod 600 \(path)` "
                + "ให้อ่านได้เฉพาะเจ้าของ แล้วตรวจสอบว่ามีผู้ใดคัดลอกไปหรือไม่")
    }

    static func load(from path: String) throws(NodeError) -> SigningKeyPair {
        func corrupt(_ why: String) -> NodeError {
            NodeError(
                .corruptKey,
                "the node key \(path) is damaged (\(why)); restore node.key from your backup. Without it this node "
                    + "cannot prove its identity; if it is lost for good, run `saraban init` in a new directory "
                    + "and re-sync from a peer")
        }
        guard FileManager.default.fileExists(atPath: path) else { throw corrupt("the file is missing") }
        try checkOwnerOnly(path)
        guard var bytes = FileManager.default.contents(atPath: path).map({ [UInt8]($0) }) else {
            throw NodeError(.readOnly, "cannot read the node key \(path): check its owner and permissions")
        }
        defer { for i in bytes.indices { bytes[i] = 0 } }
        guard bytes.count == size else { throw corrupt("it is \(bytes.count) bytes long, expected \(size)") }
        guard Array(bytes[0..<8]) == magic else { throw corrupt("it is not a saraban key file") }
        guard bytes[8] == version else { throw corrupt("unknown key format version \(bytes[8])") }
        let seed = SecureBytes(Array(bytes[9..<41]))
        let stored = Array(bytes[41..<73])
        let pair: SigningKeyPair
        do { pair = try SigningKeyPair(seed: seed) } catch { throw corrupt("\(error.message)") }
        guard pair.publicKey.rawRepresentation == stored else {
            throw corrupt("its self-check failed: the public key does not match the secret seed")
        }
        return pair
    }
}
