import Foundation
import SarabanCore
import SarabanCrypto
@testable import SarabanNode
import Testing

/// A passphrase the letter tests use for their officers (with Argon2id's minimum cost, to stay quick).
let officerPassphrase = SecureBytes(Array("รหัสผ่านของผู้ว่าฯ".utf8))

/// Officer keys under the officer's passphrase (issue 14): sealed on disk, a wrong passphrase
/// signs nothing, keys written before passphrases keep working and are sealed at the next signature.
@Suite struct OfficerPassphraseTests {
    static let name = "นางสาวสมศรี ลงนามดี"
    static func secret(_ s: String) -> SecureBytes { SecureBytes(Array(s.utf8)) }

    func node(_ dir: TempDir) throws -> Node {
        try Node.initialize(dataDir: dir.data, office: "สำนักงานจังหวัดน่าน", letterCode: "นน", logger: quiet)
    }

    func keyPath(_ node: Node) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: node.dataDirectory.path + "/officers")
        return node.dataDirectory.path + "/officers/" + (names.first { $0.hasSuffix(".key") } ?? "?")
    }

    func signatures(_ node: Node, _ id: DocID) throws -> Int { try node.letter(id).signatures.count }

    @Test func theKeyIsSealedOnDiskAndOnlyItsPassphraseSigns() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try node(dir)
        defer { node.close() }
        let officer = try node.officers.add(
            name: Self.name, position: "ปลัดจังหวัด", passphrase: Self.secret("ขอให้ลงนามได้"), protection: .minimum)
        let path = try keyPath(node)
        #expect(mode(path) == 0o600)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(bytes.count == OfficerKeyFile.size && bytes[8] == 2)
        #expect(try node.officers.hasPassphrase(Self.name))
        // The seed is nowhere in the file.
        let (_, pair) = try node.officers.key(Self.name, passphrase: Self.secret("ขอให้ลงนามได้"))
        let seed = pair.seed.copyBytes()
        #expect(Hex.encode(pair.publicKey.rawRepresentation) == officer.publicKey)
        #expect(!(0...(bytes.count - seed.count)).contains { Array(bytes[$0..<$0 + seed.count]) == seed })

        let id = try node.createLetter(kind: .internal, fields: [("เรื่อง", "ขออนุมัติ"), ("เรียน", "ผู้ว่าราชการจังหวัด")])
        let before = try node.letter(id)
        // Wrong passphrase: exit 77, nothing signed, nothing written.
        let wrong = #expect(throws: NodeError.self) {
            try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("ขอให้ลงนามได้ "))
        }
        #expect(wrong?.code == .wrongPassphrase && wrong?.code.exitCode == 77)
        #expect(wrong?.message.contains("ขอให้ลงนามได้") == false)
        // No passphrase for a sealed key: refused, nothing signed.
        let none = #expect(throws: NodeError.self) { try node.officers.sign(id, officer: Self.name) }
        #expect(none?.code == .invalidArgument)
        #expect(try node.letter(id).fields == before.fields && signatures(node, id) == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))

        let rec = try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("ขอให้ลงนามได้"))
        #expect(rec.officerKey == officer.publicKey)
        #expect(try node.officers.verify(id).allSatisfy(\.valid) && signatures(node, id) == 1)
    }

    @Test func aModifiedKeyFileSignsNothing() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try node(dir)
        defer { node.close() }
        try node.officers.add(name: Self.name, position: "ปลัดจังหวัด", passphrase: Self.secret("ขอให้ลงนามได้"), protection: .minimum)
        let path = try keyPath(node)
        let id = try node.createLetter(kind: .internal, fields: [("เรื่อง", "ขออนุมัติ")])
        // The Argon2id memory cost changed (it is authenticated), or the public key swapped.
        for offset in [17, 60] {
            var b = try Data(contentsOf: URL(fileURLWithPath: path))
            let original = b
            b[offset] ^= 0x01
            try b.write(to: URL(fileURLWithPath: path))
            let e = #expect(throws: NodeError.self) {
                try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("ขอให้ลงนามได้"))
            }
            #expect(e?.code == .wrongPassphrase, "offset \(offset)")
            try original.write(to: URL(fileURLWithPath: path))
        }
        // Passes set to 0, or the file truncated: damaged, exit 78.
        let b = try Data(contentsOf: URL(fileURLWithPath: path))
        try b.prefix(100).write(to: URL(fileURLWithPath: path))
        let e = #expect(throws: NodeError.self) {
            try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("ขอให้ลงนามได้"))
        }
        #expect(e?.code == .corruptKey)
        #expect(try signatures(node, id) == 0)
    }

    @Test func aPlainKeyFromBeforePassphrasesSignsAndIsSealedByTheNextPassphrase() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try node(dir)
        defer { node.close() }
        try node.officers.add(name: Self.name, position: "ปลัดจังหวัด", passphrase: Self.secret("ชั่วคราวก่อน"), protection: .minimum)
        // Replace the key with the version-1 (plain) file an older release wrote.
        let path = try keyPath(node)
        let (_, pair) = try node.officers.key(Self.name, passphrase: Self.secret("ชั่วคราวก่อน"))
        try FileManager.default.removeItem(atPath: path)
        try KeyFile.write(pair, to: path)
        #expect(try !node.officers.hasPassphrase(Self.name))

        let id = try node.createLetter(kind: .internal, fields: [("เรื่อง", "ขออนุมัติ")])
        try node.officers.sign(id, officer: Self.name)  // still signs without a passphrase
        #expect(try !node.officers.hasPassphrase(Self.name))
        // A too-short new passphrase is refused and signs nothing.
        let short = #expect(throws: NodeError.self) { try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("สั้น")) }
        #expect(short?.code == .invalidArgument)
        #expect(try signatures(node, id) == 1)
        // Signing with a passphrase seals it under that passphrase.
        try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("ตั้งรหัสใหม่แล้ว"))
        #expect(try node.officers.hasPassphrase(Self.name))
        #expect(mode(path) == 0o600)
        #expect(throws: NodeError.self) { try node.officers.sign(id, officer: Self.name) }
        let wrong = #expect(throws: NodeError.self) {
            try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("ชั่วคราวก่อน"))
        }
        #expect(wrong?.code == .wrongPassphrase)
        try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("ตั้งรหัสใหม่แล้ว"))
        #expect(try signatures(node, id) == 3)
        #expect(try node.officers.verify(id).allSatisfy(\.valid))
        // No temporary file left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: node.dataDirectory.path + "/officers").count == 2)
    }

    @Test func changingThePassphraseNeedsTheOldOne() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try node(dir)
        defer { node.close() }
        try node.officers.add(name: Self.name, position: "ปลัดจังหวัด", passphrase: Self.secret("รหัสเดิมของฉัน"), protection: .minimum)
        let path = try keyPath(node)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let wrong = #expect(throws: NodeError.self) {
            try node.officers.changePassphrase(Self.name, old: Self.secret("ไม่ใช่รหัสเดิม"), new: Self.secret("รหัสใหม่ของฉัน"))
        }
        #expect(wrong?.code == .wrongPassphrase)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == original)
        try node.officers.changePassphrase(
            Self.name, old: Self.secret("รหัสเดิมของฉัน"), new: Self.secret("รหัสใหม่ของฉัน"), protection: .minimum)
        let id = try node.createLetter(kind: .internal, fields: [("เรื่อง", "ขออนุมัติ")])
        #expect(throws: NodeError.self) { try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("รหัสเดิมของฉัน")) }
        try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("รหัสใหม่ของฉัน"))
        #expect(try signatures(node, id) == 1)
    }

    @Test func passphrasesAreComparedAfterNFCNormalisation() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try node(dir)
        defer { node.close() }
        // "café crème" typed with a precomposed é and with e + combining acute.
        try node.officers.add(
            name: Self.name, position: "ปลัดจังหวัด", passphrase: Self.secret("caf\u{E9} cr\u{E8}me"), protection: .minimum)
        let id = try node.createLetter(kind: .internal, fields: [("เรื่อง", "ขออนุมัติ")])
        try node.officers.sign(id, officer: Self.name, passphrase: Self.secret("cafe\u{301} cre\u{300}me"))
        #expect(try signatures(node, id) == 1)
    }

    @Test func aNewOfficerNeedsAPassphraseOfEightCharacters() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try node(dir)
        defer { node.close() }
        for bad in ["", "1234567", "สวัสดีครั"] where bad.count < 8 {
            let e = #expect(throws: NodeError.self) {
                try node.officers.add(name: Self.name, position: "ปลัดจังหวัด", passphrase: Self.secret(bad), protection: .minimum)
            }
            #expect(e?.code == .invalidArgument)
        }
        #expect(try node.officers.list().isEmpty)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: node.dataDirectory.path + "/officers")) ?? []
        #expect(left.isEmpty)
    }
}
