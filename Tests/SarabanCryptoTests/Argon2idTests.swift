import Foundation
import SarabanCrypto
import Testing

/// libsodium's Argon2id vectors (Fixtures/argon2id) and the properties the web app's accounts and
/// the officer keys rely on.
@Suite struct Argon2idTests {
    struct Vectors: Decodable {
        struct Derive: Decodable {
            var password: String
            var salt: String
            var opslimit: UInt64
            var memlimit: Int
            var outlen: Int
            var key: String
        }
        struct Verify: Decodable {
            var password: String
            var hash: String
            var valid: Bool
        }
        var derive: [Derive]
        var verify: [Verify]
    }

    static let vectors: Vectors = {
        let url = repositoryRoot.appendingPathComponent("Fixtures/argon2id/libsodium-pwhash-argon2id.json")
        return try! JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
    }()

    static func unhex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    static func secret(_ text: String) -> SecureBytes { SecureBytes(Array(text.utf8)) }

    @Test func derivationMatchesLibsodiumsKnownAnswers() throws {
        #expect(Self.vectors.derive.count == 3)
        for v in Self.vectors.derive {
            let out = try Argon2id.deriveBytes(
                passphrase: SecureBytes(Self.unhex(v.password)), salt: Self.unhex(v.salt),
                parameters: .init(operations: v.opslimit, memory: v.memlimit), byteCount: v.outlen)
            #expect(hex(out.copyBytes()) == v.key, "vector t=\(v.opslimit) m=\(v.memlimit)")
        }
    }

    @Test func hashStringsFromLibsodiumsSuiteVerifyOrAreRefused() throws {
        for v in Self.vectors.verify {
            #expect(try Argon2id.verifyPassword(Self.secret(v.password), hash: v.hash) == v.valid, "\(v.hash)")
        }
        // One byte of a valid hash changed: refused.
        let good = Self.vectors.verify[0]
        var bytes = Array(good.hash.utf8)
        bytes[bytes.count - 3] = bytes[bytes.count - 3] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(try !Argon2id.verifyPassword(Self.secret(good.password), hash: String(decoding: bytes, as: UTF8.self)))
    }

    @Test func aHashedPasswordVerifiesAndAWrongOneDoesNot() throws {
        let p = Argon2id.Parameters(operations: 2, memory: 1 << 20)
        let password = "รหัสผ่านของนางสาวสมศรี 2569"
        let h = try Argon2id.hashPassword(Self.secret(password), parameters: p)
        #expect(h.hasPrefix("$argon2id$v=19$m=1024,t=2,p=1$"))
        #expect(try Argon2id.verifyPassword(Self.secret(password), hash: h))
        #expect(try !Argon2id.verifyPassword(Self.secret(password + " "), hash: h))
        #expect(try !Argon2id.verifyPassword(Self.secret(""), hash: h))
        // A fresh salt every time: the same password hashes to another string.
        let h2 = try Argon2id.hashPassword(Self.secret(password), parameters: p)
        #expect(h2 != h)
        #expect(try Argon2id.verifyPassword(Self.secret(password), hash: h2))
        // needsRehash says when the stored cost is not today's.
        #expect(try !Argon2id.needsRehash(h, parameters: p))
        #expect(try Argon2id.needsRehash(h, parameters: .init(operations: 3, memory: 1 << 20)))
        #expect(try Argon2id.needsRehash(h, parameters: .interactive))
    }

    @Test func theInteractiveParametersAreLibsodiumsAndWork() throws {
        #expect(Argon2id.Parameters.interactive == .init(operations: 2, memory: 64 << 20))
        #expect(Argon2id.Parameters.moderate == .init(operations: 3, memory: 256 << 20))
        let h = try Argon2id.hashPassword(Self.secret("correct horse"))
        #expect(h.hasPrefix("$argon2id$v=19$m=65536,t=2,p=1$"))
        #expect(try Argon2id.verifyPassword(Self.secret("correct horse"), hash: h))
        #expect(try !Argon2id.verifyPassword(Self.secret("correct hors"), hash: h))
    }

    @Test func aDerivedKeyIsDeterministicAndAWrongPassphraseCannotOpenWhatItSealed() throws {
        let p = Argon2id.Parameters(operations: 1, memory: 1 << 20)
        let salt = Argon2id.randomSalt()
        #expect(salt.count == 16)
        let k1 = try Argon2id.deriveKey(passphrase: Self.secret("ผู้ว่าราชการ"), salt: salt, parameters: p)
        let k2 = try Argon2id.deriveKey(passphrase: Self.secret("ผู้ว่าราชการ"), salt: salt, parameters: p)
        #expect(Sodium.constantTimeEqual(k1.secret, k2.secret))
        let otherSalt = try Argon2id.deriveKey(passphrase: Self.secret("ผู้ว่าราชการ"), salt: Argon2id.randomSalt(), parameters: p)
        #expect(!Sodium.constantTimeEqual(k1.secret, otherSalt.secret))
        let otherCost = try Argon2id.deriveKey(
            passphrase: Self.secret("ผู้ว่าราชการ"), salt: salt, parameters: .init(operations: 2, memory: 1 << 20))
        #expect(!Sodium.constantTimeEqual(k1.secret, otherCost.secret))

        let nonce = XChaCha20Poly1305.randomNonce()
        let sealed = try XChaCha20Poly1305.seal(Array("seed".utf8), key: k1, nonce: nonce)
        let wrong = try Argon2id.deriveKey(passphrase: Self.secret("ผู้ว่าราชการ "), salt: salt, parameters: p)
        #expect(errorCode { try XChaCha20Poly1305.open(sealed, key: wrong, nonce: nonce) } == .authenticationFailed)
        #expect(try XChaCha20Poly1305.open(sealed, key: k2, nonce: nonce) == Array("seed".utf8))
    }

    @Test func badInputIsATypedError() {
        let p = Argon2id.Parameters(operations: 1, memory: 1 << 20)
        #expect(errorCode { try Argon2id.deriveKey(passphrase: Self.secret("x"), salt: [1, 2, 3], parameters: p) } == .invalidLength)
        #expect(
            errorCode {
                try Argon2id.deriveBytes(passphrase: Self.secret("x"), salt: Argon2id.randomSalt(), parameters: p, byteCount: 8)
            } == .invalidLength)
        #expect(
            errorCode {
                try Argon2id.hashPassword(Self.secret("x"), parameters: .init(operations: 0, memory: 1 << 20))
            } == .invalidParameter)
        #expect(
            errorCode {
                try Argon2id.deriveKey(
                    passphrase: Self.secret("x"), salt: Argon2id.randomSalt(), parameters: .init(operations: 1, memory: 1024))
            } == .invalidParameter)
        // Not an Argon2id string: a damaged accounts file, not a wrong password.
        for bad in ["", "plain", "$argon2i$v=19$m=4096,t=3,p=1$MzE4ODFiZWFlMjAzOWUAAA$FWUV6tsyJ32qThiLi1cCsLIbf3dIOG/RwXcTzt536KY",
            "$argon2id$" + String(repeating: "a", count: 200), "$argon2id$v=19\u{0}"]
        {
            #expect(errorCode { try Argon2id.verifyPassword(Self.secret("x"), hash: bad) } == .invalidParameter, "\(bad)")
        }
        #expect(errorCode { try Argon2id.needsRehash("$argon2id$garbage") } == .invalidParameter)
    }
}
