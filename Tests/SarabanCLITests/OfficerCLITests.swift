import Foundation
import SarabanCrypto
import Testing

/// Officer keys under the officer's passphrase, as a clerk and an officer use them (issue 14):
/// `officer add` sets it, `letter sign` needs it (a wrong one exits 77 and signs nothing),
/// `officer passwd` changes it, and a key from before passphrases is sealed at its next signature.
@Suite(.timeLimit(.minutes(5))) struct OfficerCLITests {
    let env = ["SARABAN_FAKE_TIME": "2026-12-06T03:00:00Z"]
    static let officer = "นางสาวสมศรี ลงนามดี"

    func ok(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let r = try await runOffThread(args, env: env)
        #expect(r.status == 0, "saraban \(args.joined(separator: " ")): \(r.stderr)", sourceLocation: sourceLocation)
        return r.stdout
    }

    func passphraseFile(_ dir: TempDir, _ name: String, _ text: String, mode: Int = 0o600) -> String {
        let p = dir.file(name)
        FileManager.default.createFile(atPath: p, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: mode])
        return p
    }

    func signatureCount(_ data: String, _ id: String) async throws -> Int {
        let j = try json(try await ok(["letter", "show", "--data", data, id, "--json"])) as? [String: Any]
        return (j?["signatures"] as? [Any])?.count ?? -1
    }

    func keyFile(_ data: String) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: data + "/officers")
        return data + "/officers/" + (names.first { $0.hasSuffix(".key") } ?? "?")
    }

    @Test func officerAddNeedsAPassphraseAndSignExits77OnAWrongOne() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = dir.data
        _ = try await ok(["init", "--data", a, "--office", "สำนักงานจังหวัดน่าน", "--code", "นน"])
        // No terminal (stdin is /dev/null) and no file: refused, nothing created.
        let none = try await runOffThread(["officer", "add", "--data", a, Self.officer, "--position", "ปลัดจังหวัด"], env: env)
        #expect(none.status == 64 && none.stderr.contains("--passphrase-file") && none.stderr.contains("รหัสผ่าน"))
        #expect(!FileManager.default.fileExists(atPath: a + "/officers"))
        // A passphrase file others can read is refused like a key file.
        let open = passphraseFile(dir, "open", "ขอให้ลงนามได้", mode: 0o644)
        let loose = try await runOffThread(
            ["officer", "add", "--data", a, Self.officer, "--position", "ปลัดจังหวัด", "--passphrase-file", open], env: env)
        #expect(loose.status == 78 && loose.stderr.contains("chmod 600"))
        let short = passphraseFile(dir, "short", "สั้นไป")
        let tooShort = try await runOffThread(
            ["officer", "add", "--data", a, Self.officer, "--position", "ปลัดจังหวัด", "--passphrase-file", short], env: env)
        #expect(tooShort.status == 64 && tooShort.stderr.contains("8"))

        let good = passphraseFile(dir, "good", "ขอให้ลงนามได้")
        _ = try await ok(["officer", "add", "--data", a, Self.officer, "--position", "ปลัดจังหวัด", "--passphrase-file", good])
        let key = try keyFile(a)
        let attrs = try FileManager.default.attributesOfItem(atPath: key)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let list = try json(try await ok(["officer", "list", "--data", a, "--json"])) as? [[String: Any]]
        #expect(list?.first?["hasPassphrase"] as? Bool == true)
        #expect(try await ok(["officer", "list", "--data", a]).contains("no passphrase") == false)

        let id = try await ok(["letter", "new", "--data", a, "--kind", "ภายใน", "--subject", "ขออนุมัติเดินทางไปราชการ"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let wrong = passphraseFile(dir, "wrong", "ขอให้ลงนามได้!")
        let bad = try await runOffThread(["letter", "sign", "--data", a, id, "--officer", Self.officer, "--passphrase-file", wrong], env: env)
        #expect(bad.status == 77)
        #expect(bad.stderr.contains("รหัสผ่านไม่ถูกต้อง") && bad.stderr.contains("wrong passphrase"))
        #expect(!bad.stderr.contains("ขอให้ลงนามได้!"))
        let missing = try await runOffThread(["letter", "sign", "--data", a, id, "--officer", Self.officer], env: env)
        #expect(missing.status == 64 && missing.stderr.contains("--passphrase-file"))
        #expect(try await signatureCount(a, id) == 0)

        _ = try await ok(["letter", "sign", "--data", a, id, "--officer", Self.officer, "--passphrase-file", good])
        #expect(try await signatureCount(a, id) == 1)
        // The passphrase on standard input (`-`).
        let piped = try await runOffThread(
            [], shell: "printf '%s\\n' 'ขอให้ลงนามได้' | \"$SARABAN\" letter sign --data '\(a)' \(id) --officer '\(Self.officer)' --passphrase-file -",
            env: env)
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(try await signatureCount(a, id) == 2)
        let verify = try json(try await ok(["letter", "verify", "--data", a, id, "--json"])) as? [String: Any]
        #expect(verify?["valid"] as? Bool == true)
    }

    @Test func officerPasswdNeedsTheOldPassphrase() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = dir.data
        _ = try await ok(["init", "--data", a, "--office", "สำนักงานจังหวัดน่าน"])
        let old = passphraseFile(dir, "old", "รหัสเดิมของฉัน")
        let new = passphraseFile(dir, "new", "รหัสใหม่ของฉัน")
        _ = try await ok(["officer", "add", "--data", a, Self.officer, "--position", "ปลัดจังหวัด", "--passphrase-file", old])
        let before = FileManager.default.contents(atPath: try keyFile(a))
        let bad = try await runOffThread(
            ["officer", "passwd", "--data", a, Self.officer, "--passphrase-file", new, "--new-passphrase-file", new], env: env)
        #expect(bad.status == 77)
        #expect(FileManager.default.contents(atPath: try keyFile(a)) == before)
        _ = try await ok(["officer", "passwd", "--data", a, Self.officer, "--passphrase-file", old, "--new-passphrase-file", new])
        let id = try await ok(["letter", "new", "--data", a, "--kind", "ภายใน", "--subject", "ขออนุมัติ"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let withOld = try await runOffThread(["letter", "sign", "--data", a, id, "--officer", Self.officer, "--passphrase-file", old], env: env)
        #expect(withOld.status == 77)
        _ = try await ok(["letter", "sign", "--data", a, id, "--officer", Self.officer, "--passphrase-file", new])
        #expect(try await signatureCount(a, id) == 1)
    }

    /// A key written before passphrases (the `node.key` format, version 1) signs without one, with
    /// a warning, and is sealed under the passphrase of its next signature. The test opens the
    /// sealed file by the layout Docs/SECURITY.md documents to write the plain one.
    @Test func aPlainKeyFromAnOlderReleaseKeepsWorkingAndIsSealedAtItsNextSignature() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = dir.data
        _ = try await ok(["init", "--data", a, "--office", "สำนักงานจังหวัดน่าน"])
        let first = passphraseFile(dir, "first", "ชั่วคราวก่อนนะ")
        _ = try await ok(["officer", "add", "--data", a, Self.officer, "--position", "ปลัดจังหวัด", "--passphrase-file", first])
        let path = try keyFile(a)
        let sealed = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(sealed.count == 138 && Array(sealed[0..<10]) == Array("SRBNKEY".utf8) + [0, 2, 1])
        func u32(_ at: Int) -> Int { sealed[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        let parameters = Argon2id.Parameters(operations: UInt64(u32(10)), memory: u32(14) * 1024)
        #expect(parameters == .moderate)
        let key = try Argon2id.deriveKey(
            passphrase: SecureBytes(Array("ชั่วคราวก่อนนะ".utf8)), salt: Array(sealed[18..<34]), parameters: parameters)
        let seed = try XChaCha20Poly1305.open(
            Array(sealed[90..<138]), key: key, nonce: Array(sealed[34..<58]), associatedData: Array(sealed[0..<90]))
        let pair = try SigningKeyPair(seed: SecureBytes(seed))
        #expect(pair.publicKey.rawRepresentation == Array(sealed[58..<90]))
        let plain = Array("SRBNKEY".utf8) + [0, 1] + seed + pair.publicKey.rawRepresentation
        try FileManager.default.removeItem(atPath: path)
        FileManager.default.createFile(atPath: path, contents: Data(plain), attributes: [.posixPermissions: 0o600])
        #expect(try await ok(["officer", "list", "--data", a]).contains("no passphrase"))

        let id = try await ok(["letter", "new", "--data", a, "--kind", "ภายใน", "--subject", "ขออนุมัติ"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let legacy = try await runOffThread(["letter", "sign", "--data", a, id, "--officer", Self.officer], env: env)
        #expect(legacy.status == 0 && legacy.stderr.contains("officer passwd"))
        #expect(FileManager.default.contents(atPath: path) == Data(plain))
        let chosen = passphraseFile(dir, "chosen", "ตั้งรหัสใหม่แล้ว")
        _ = try await ok(["letter", "sign", "--data", a, id, "--officer", Self.officer, "--passphrase-file", chosen])
        let now = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(now.count == 138 && now[8] == 2)
        let again = try await runOffThread(["letter", "sign", "--data", a, id, "--officer", Self.officer], env: env)
        #expect(again.status == 64)
        #expect(try await signatureCount(a, id) == 2)
    }
}
