import Foundation
import Testing

/// `saraban user …` and `saraban token …` (Docs/WEB.md): accounts in web-accounts.json (0600),
/// passwords only as Argon2id hashes, tokens shown once and kept as hashes.
@Suite(.timeLimit(.minutes(5))) struct WebAccountCLITests {
    func ok(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let r = try await runOffThread(args)
        #expect(r.status == 0, "saraban \(args.joined(separator: " ")): \(r.stderr)", sourceLocation: sourceLocation)
        return r.stdout
    }

    func passwordFile(_ dir: TempDir, _ text: String) -> String {
        let p = dir.file("pw-\(UUID().uuidString.prefix(6))")
        FileManager.default.createFile(atPath: p, contents: Data((text + "\n").utf8), attributes: [.posixPermissions: 0o600])
        return p
    }

    @Test func usersAreAddedListedDisabledAndTheirPasswordsNeverStored() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let d = dir.data
        _ = try await ok(["init", "--data", d, "--office", "สำนักงานจังหวัดน่าน"])
        #expect(try await ok(["user", "list", "--data", d]).contains("no web users"))
        let pw = passwordFile(dir, "รหัสผ่านของสมศรี")
        _ = try await ok(["user", "add", "--data", d, "SomSri", "--role", "clerk", "--display", "นางสาวสมศรี ใจดี", "--password-file", pw])
        let file = d + "/web-accounts.json"
        let attrs = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(!text.contains("รหัสผ่านของสมศรี") && text.contains("$argon2id$v=19$m=65536,t=2,p=1$"))
        let list = try json(try await ok(["user", "list", "--data", d, "--json"])) as? [[String: Any]]
        #expect(list?.count == 1 && list?[0]["name"] as? String == "somsri" && list?[0]["role"] as? String == "clerk")
        #expect(list?[0]["display_name"] as? String == "นางสาวสมศรี ใจดี" && list?[0]["disabled"] as? Bool == false)
        #expect(list?[0]["password"] == nil && list?[0]["passwordHash"] == nil)

        // Refusals: a name taken (73), a bad role or name or a short password (64), no password source (64).
        #expect(try await runOffThread(["user", "add", "--data", d, "somsri", "--role", "clerk", "--password-file", pw]).status == 73)
        let role = try await runOffThread(["user", "add", "--data", d, "somchai", "--role", "boss", "--password-file", pw])
        #expect(role.status == 64 && role.stderr.contains("clerk, officer, head or admin"))
        let name = try await runOffThread(["user", "add", "--data", d, "สมชาย", "--role", "clerk", "--password-file", pw])
        #expect(name.status == 64 && name.stderr.contains("--display"))
        let short = try await runOffThread(["user", "add", "--data", d, "somchai", "--role", "clerk", "--password-file", passwordFile(dir, "สั้น")])
        #expect(short.status == 64 && short.stderr.contains("8"))
        let none = try await runOffThread(["user", "add", "--data", d, "somchai", "--role", "clerk"])
        #expect(none.status == 64 && none.stderr.contains("--password-file"))
        #expect(try String(contentsOfFile: file, encoding: .utf8) == text)

        _ = try await ok(["user", "passwd", "--data", d, "somsri", "--password-file", passwordFile(dir, "รหัสผ่านใหม่ของสมศรี")])
        #expect(try String(contentsOfFile: file, encoding: .utf8) != text)
        #expect(try await runOffThread(["user", "passwd", "--data", d, "nobody", "--password-file", pw]).status == 67)
        _ = try await ok(["user", "disable", "--data", d, "somsri"])
        #expect(try await ok(["user", "list", "--data", d]).contains("(disabled)"))
        _ = try await ok(["user", "enable", "--data", d, "somsri"])
        #expect(!(try await ok(["user", "list", "--data", d]).contains("(disabled)")))
        #expect(try await runOffThread(["user", "disable", "--data", d, "nobody"]).status == 67)
    }

    @Test func tokensAreShownOnceKeptAsHashesAndRevoked() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let d = dir.data
        _ = try await ok(["init", "--data", d, "--office", "สำนักงานจังหวัดน่าน"])
        let created = try json(try await ok(["token", "create", "--data", d, "--name", "vendor-x", "--scope", "read", "--json"]))
            as? [String: Any]
        let token = try #require(created?["token"] as? String)
        #expect(token.hasPrefix("sbt_") && token.count > 40 && created?["scope"] as? String == "read")
        #expect(!(try String(contentsOfFile: d + "/web-accounts.json", encoding: .utf8)).contains(token))
        let list = try await ok(["token", "list", "--data", d, "--json"])
        #expect(list.contains("vendor-x") && !list.contains(token))
        #expect(try await runOffThread(["token", "create", "--data", d, "--name", "vendor-x", "--scope", "read"]).status == 73)
        #expect(try await runOffThread(["token", "create", "--data", d, "--name", "other", "--scope", "admin"]).status == 64)
        _ = try await ok(["token", "revoke", "--data", d, "vendor-x"])
        let after = try json(try await ok(["token", "list", "--data", d, "--json"])) as? [[String: Any]]
        #expect(after?.first?["revoked"] is String)
        #expect(try await runOffThread(["token", "revoke", "--data", d, "vendor-x"]).status == 67)
        // The name is free again once revoked.
        #expect(try await runOffThread(["token", "create", "--data", d, "--name", "vendor-x", "--scope", "write"]).status == 0)
    }

    @Test func aLooseAccountsFileIsRefused() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let d = dir.data
        _ = try await ok(["init", "--data", d, "--office", "สำนักงานจังหวัดน่าน"])
        _ = try await ok(["token", "create", "--data", d, "--name", "vendor-x", "--scope", "read"])
        chmod(d + "/web-accounts.json", 0o644)
        let r = try await runOffThread(["token", "list", "--data", d])
        #expect(r.status == 78 && r.stderr.contains("chmod 600"))
    }
}
