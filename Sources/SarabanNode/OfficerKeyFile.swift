import Foundation
import SarabanCrypto
#if canImport(Glibc)
import Glibc
#endif

/// An officer's key file (`officers/officer-<hash>.key`, mode 0600): the officer's Ed25519 seed
/// encrypted under a key derived from the officer's passphrase with Argon2id.
///
/// Layout (138 bytes, integers big-endian):
///
/// | bytes | field |
/// |---|---|
/// | 8 | magic `SRBNKEY` + NUL (as `node.key`) |
/// | 1 | format version: 2 (version 1 is the plain `node.key` format, still read) |
/// | 1 | key derivation: 1 = Argon2id v1.3 (libsodium `crypto_pwhash`, `ALG_ARGON2ID13`) |
/// | 4 | Argon2id passes (`opslimit`) |
/// | 4 | Argon2id memory in KiB (`memlimit` / 1024) |
/// | 16 | salt |
/// | 24 | XChaCha20-Poly1305 nonce |
/// | 32 | the officer's public key (in the clear: the certificate names it) |
/// | 48 | the 32-byte seed sealed with XChaCha20-Poly1305 (+ 16-byte tag) |
///
/// The associated data of the seal is every byte before it, so a changed parameter, salt or
/// public key fails like a wrong passphrase; after opening, the public key is derived from the
/// seed again and must equal the stored one. A wrong passphrase and a modified file cannot be
/// told apart (both fail authentication): either way nothing is signed.
///
/// A version-1 file (a plain seed, as written before passphrases) still loads; the officer's
/// next signature with a passphrase, or `saraban officer passwd`, replaces it with a version-2
/// file (written beside it and renamed over it, so a crash leaves one whole file).
enum OfficerKeyFile {
    static let version: UInt8 = 2
    static let kdfArgon2id13: UInt8 = 1
    static let size = 8 + 1 + 1 + 4 + 4 + 16 + 24 + 32 + 48
    /// The shortest passphrase accepted for a new key (characters, after NFC normalisation).
    static let minimumPassphraseLength = 8

    /// How a key file is protected.
    enum Contents {
        /// A version-1 file: the seed in the clear.
        case plain(SigningKeyPair)
        /// A version-2 file: the public key, readable without the passphrase.
        case sealed(publicKey: [UInt8])
    }

    /// The passphrase as the bytes Argon2id takes: NFC-normalised UTF-8 (one Thai text typed with
    /// two input methods gives one key).
    static func normalized(_ passphrase: SecureBytes) -> SecureBytes {
        passphrase.withUnsafeBytes { raw in
            guard let text = String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self) else {
                return passphrase
            }
            return SecureBytes(Array(text.precomposedStringWithCanonicalMapping.utf8))
        }
    }

    /// Refuses an empty or short new passphrase (exit 64), naming the rule.
    static func checkNew(_ passphrase: SecureBytes) throws(NodeError) {
        let count = passphrase.withUnsafeBytes { raw in
            String(validating: raw.bindMemory(to: UInt8.self), as: UTF8.self)?.count
        }
        guard let count else {
            throw NodeError(
                .invalidArgument,
                "รหัสผ่านต้องเป็นข้อความ UTF-8 / the passphrase is not valid UTF-8 text; nothing was changed")
        }
        guard count >= minimumPassphraseLength else {
            throw NodeError(
                .invalidArgument,
                "รหัสผ่านสั้นเกินไป (อย่างน้อย \(minimumPassphraseLength) ตัวอักษร) / the passphrase is too short: use at "
                    + "least \(minimumPassphraseLength) characters (a few words are easier to remember); nothing was changed")
        }
    }

    /// The sealed file's bytes for `pair` under `passphrase`.
    static func seal(
        _ pair: SigningKeyPair, passphrase: SecureBytes, parameters: Argon2id.Parameters
    ) throws(NodeError) -> [UInt8] {
        let salt = Argon2id.randomSalt()
        let nonce = XChaCha20Poly1305.randomNonce()
        var header = KeyFile.magic
        header.append(version)
        header.append(kdfArgon2id13)
        header += bigEndian(UInt32(clamping: parameters.operations))
        header += bigEndian(UInt32(clamping: parameters.memory / 1024))
        header += salt + nonce + pair.publicKey.rawRepresentation
        do {
            let key = try Argon2id.deriveKey(passphrase: normalized(passphrase), salt: salt, parameters: parameters)
            var seed = pair.seed.copyBytes()
            defer { for i in seed.indices { seed[i] = 0 } }
            return header + (try XChaCha20Poly1305.seal(seed, key: key, nonce: nonce, associatedData: header))
        } catch {
            throw NodeError(.io, "cannot encrypt the officer key: \(error.message)")
        }
    }

    /// Reads `path` without the passphrase: a plain key, or a sealed key's public key.
    static func inspect(_ path: String) throws(NodeError) -> Contents {
        let bytes = try read(path)
        if bytes.count == KeyFile.size, bytes[8] == KeyFile.version { return .plain(try KeyFile.load(from: path)) }
        let fields = try parse(bytes, path)
        return .sealed(publicKey: fields.publicKey)
    }

    /// Opens a sealed key with `passphrase`; a plain key opens without it.
    ///
    /// - Throws: `.wrongPassphrase` (exit 77) when the passphrase does not open the key.
    static func unlock(_ path: String, passphrase: SecureBytes?, officer: String) throws(NodeError) -> SigningKeyPair {
        let bytes = try read(path)
        if bytes.count == KeyFile.size, bytes[8] == KeyFile.version { return try KeyFile.load(from: path) }
        let f = try parse(bytes, path)
        guard let passphrase else {
            throw NodeError(
                .invalidArgument,
                "กุญแจของ \(officer) ต้องใช้รหัสผ่าน / the key of officer \(officer) is under a passphrase: run the command on "
                    + "a terminal to be asked for it, or pass --passphrase-file FILE; nothing was signed")
        }
        let seed: [UInt8]
        do {
            let key = try Argon2id.deriveKey(passphrase: normalized(passphrase), salt: f.salt, parameters: f.parameters)
            seed = try XChaCha20Poly1305.open(f.sealed, key: key, nonce: f.nonce, associatedData: f.header)
        } catch where error.code == .authenticationFailed {
            throw NodeError(
                .wrongPassphrase,
                "รหัสผ่านไม่ถูกต้อง ไม่ได้ลงนาม / wrong passphrase for officer \(officer) (or \(path) was modified); "
                    + "nothing was signed. Try again; an officer who forgot it asks the office's admin to add a new officer key")
        } catch {
            throw NodeError(.corruptKey, "cannot open the officer key \(path): \(error.message)")
        }
        var s = seed
        defer { for i in s.indices { s[i] = 0 } }
        let pair: SigningKeyPair
        do { pair = try SigningKeyPair(seed: SecureBytes(s)) } catch {
            throw NodeError(.corruptKey, "the officer key \(path) is damaged (\(error.message)); restore it from a backup")
        }
        guard pair.publicKey.rawRepresentation == f.publicKey else {
            throw NodeError(.corruptKey, "the officer key \(path) fails its self-check; restore it from a backup")
        }
        return pair
    }

    // MARK: - Parsing

    struct Fields {
        var header: [UInt8]
        var parameters: Argon2id.Parameters
        var salt: [UInt8]
        var nonce: [UInt8]
        var publicKey: [UInt8]
        var sealed: [UInt8]
    }

    static func read(_ path: String) throws(NodeError) -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw NodeError(.corruptKey, "the officer key \(path) is missing; restore it from a backup")
        }
        try KeyFile.checkOwnerOnly(path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError(.readOnly, "cannot read the officer key \(path): check its owner and permissions")
        }
        return [UInt8](data)
    }

    static func parse(_ b: [UInt8], _ path: String) throws(NodeError) -> Fields {
        func corrupt(_ why: String) -> NodeError {
            NodeError(.corruptKey, "the officer key \(path) is damaged (\(why)); restore it from a backup")
        }
        guard b.count >= 10, Array(b[0..<8]) == KeyFile.magic else { throw corrupt("it is not a saraban key file") }
        guard b[8] == version else { throw corrupt("unknown key format version \(b[8])") }
        guard b[9] == kdfArgon2id13 else { throw corrupt("unknown key derivation \(b[9])") }
        guard b.count == size else { throw corrupt("it is \(b.count) bytes long, expected \(size)") }
        func u32(_ at: Int) -> UInt32 { b[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        let parameters = Argon2id.Parameters(operations: UInt64(u32(10)), memory: Int(u32(14)) * 1024)
        guard parameters.operations >= Argon2id.minimumOperations, parameters.memory >= Argon2id.minimumMemory,
            parameters.memory <= Argon2id.maximumMemory
        else { throw corrupt("its Argon2id parameters \(parameters) are out of range") }
        return Fields(
            header: Array(b[0..<90]), parameters: parameters, salt: Array(b[18..<34]), nonce: Array(b[34..<58]),
            publicKey: Array(b[58..<90]), sealed: Array(b[90..<138]))
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
}
