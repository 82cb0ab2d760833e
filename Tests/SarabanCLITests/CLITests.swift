import Foundation
import Testing

@Suite(.ownThread, .timeLimit(.minutes(5))) struct CLITests {
    /// `saraban init` in a fresh temp dir; returns the node id.
    func initNode(_ dir: TempDir, office: String = "กระทรวงมหาดไทย") throws -> String {
        let r = try run(["init", "--data", dir.data, "--office", office, "--code", "มท"])
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .newlines)
    }

    func newDoc(_ dir: TempDir, _ extra: [String] = []) throws -> String {
        let r = try run(["doc", "new", "--data", dir.data] + extra)
        #expect(r.status == 0, "\(r.stderr)")
        return r.stdout.trimmingCharacters(in: .newlines)
    }

    @Test func binaryIsFound() {
        #expect(FileManager.default.isExecutableFile(atPath: sarabanBinary), "no saraban at \(sarabanBinary)")
    }

    @Test func helpExitsZero() throws {
        let r = try run(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("doc"))
    }

    /// `saraban --version`: the release and the formats it speaks, on stdout, exit 0, without a node.
    @Test func versionNamesReleaseAndFormats() throws {
        let r = try run(["--version"])
        #expect(r.status == 0, "\(r.stderr)")
        let pattern = #"^saraban \d+\.\d+\.\d+ \(sync protocol \d+, database schema \d+, envelope format \d+, change files \d+ and \d+, config \d+\)\n$"#
        #expect(r.stdout.range(of: pattern, options: .regularExpression) != nil, "\(r.stdout.debugDescription)")
        #expect(r.stderr.isEmpty)
    }

    @Test func initIdStatus() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let id = try initNode(dir)
        #expect(id.hasPrefix("sb") && id.count == 58)
        let idOut = try run(["id", "--data", dir.data])
        #expect(idOut.status == 0 && idOut.stdout == id + "\n")
        let idJSON = try json(try run(["id", "--json", "--data", dir.data]).stdout) as? [String: Any]
        #expect(idJSON?["nodeID"] as? String == id)
        let status = try run(["status", "--data", dir.data])
        #expect(status.status == 0)
        #expect(status.stdout.contains("กระทรวงมหาดไทย"))
        #expect(status.stdout.contains(id))
        let s = try json(try run(["status", "--json", "--data", dir.data]).stdout) as? [String: Any]
        #expect(s?["office"] as? String == "กระทรวงมหาดไทย")
        #expect(s?["documents"] as? Int == 0)
        #expect(s?["changes"] as? Int == 0)
        #expect((s?["databaseBytes"] as? Int ?? 0) > 0)
    }

    @Test func dataDirectoryFromEnvironment() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let r = try run(["init", "--office", "A"], env: ["SARABAN_HOME": dir.data])
        #expect(r.status == 0)
        let id = try run(["id"], env: ["SARABAN_HOME": dir.data])
        #expect(id.stdout == r.stdout)
        // Default: ./saraban-data in the working directory.
        let local = try run(["init", "--office", "B"], cwd: dir.path)
        #expect(local.status == 0)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/saraban-data/node.key"))
    }

    @Test func initTwiceRefusesAndChangesNothing() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        let before = Snapshot(dir.data)
        let r = try run(["init", "--data", dir.data, "--office", "อื่น"])
        #expect(r.status == 73)
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("already holds a Saraban node"))
        #expect(Snapshot(dir.data) == before)
    }

    @Test func thaiRoundTripsByteForByte() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        let id = try newDoc(dir, ["--kind", "letter", "--set", "subject=\(thai)", "--set", "formula=a=b"])
        let got = try run(["doc", "get", "--data", dir.data, id, "subject"])
        #expect(got.status == 0)
        #expect(got.stdoutBytes == Data((thai + "\n").utf8))
        #expect(try run(["doc", "get", "--data", dir.data, id, "formula"]).stdout == "a=b\n")
        // Set through a unique prefix, then read back.
        let prefix = String(id.prefix(5))
        let set = try run(["doc", "set", "--data", dir.data, prefix, "เรื่อง", "ขออนุมัติเดินทางไปราชการ"])
        #expect(set.status == 0, "\(set.stderr)")
        #expect(try run(["doc", "get", "--data", dir.data, id, "เรื่อง"]).stdout == "ขออนุมัติเดินทางไปราชการ\n")
        let show = try json(try run(["doc", "show", "--json", "--data", dir.data, id]).stdout) as? [String: Any]
        #expect(show?["id"] as? String == id)
        #expect(show?["kind"] as? String == "letter")
        let fields = show?["fields"] as? [String: Any]
        #expect((fields?["subject"] as? [String: Any])?["value"] as? String == thai)
        #expect((fields?["subject"] as? [String: Any])?["type"] as? String == "register")
        let list = try json(try run(["doc", "list", "--json", "--data", dir.data]).stdout) as? [[String: Any]]
        #expect(list?.count == 1)
        #expect(list?.first?["title"] as? String == thai)
        let text = try run(["doc", "list", "--data", dir.data])
        #expect(text.stdout.contains(id) && text.stdout.contains(thai))
    }

    @Test func everyFieldTypeAndConflictsThroughFiles() throws {
        let a = TempDir()
        defer { a.cleanup() }
        let b = TempDir()
        defer { b.cleanup() }
        _ = try initNode(a)
        _ = try initNode(b, office: "จังหวัดเชียงใหม่")
        let id = try newDoc(a, ["--kind", "letter", "--set", "subject=ร่าง"])
        #expect(try run(["text", "insert", "--data", a.data, id, "body", "0", "เรียน ท่าน"]).status == 0)
        #expect(try run(["text", "insert", "--data", a.data, id, "body", "6", "ผู้ว่า "]).status == 0)
        #expect(try run(["text", "delete", "--data", a.data, id, "body", "12", "5"]).status == 0)
        #expect(try run(["set", "add", "--data", a.data, id, "tags", "ด่วน"]).status == 0)
        #expect(try run(["list", "append", "--data", a.data, id, "routing", "สารบรรณ → ผอ."]).status == 0)
        #expect(try run(["doc", "get", "--data", a.data, id, "body"]).stdout == "เรียน ผู้ว่า\n")
        let exp = try run(["doc", "export", "--data", a.data, id, a.file("x.changes")])
        #expect(exp.status == 0, "\(exp.stderr)")
        let merge = try run(["doc", "merge", "--json", "--data", b.data, a.file("x.changes")])
        #expect(merge.status == 0, "\(merge.stderr)")
        let m = try json(merge.stdout) as? [String: Any]
        #expect(m?["applied"] as? Int == 6)
        let again = try run(["doc", "merge", "--data", b.data, a.file("x.changes")])
        #expect(again.stdout == "applied 0, duplicate 6, waiting 0\n")
        // Concurrent edits, exchanged both ways.
        #expect(try run(["doc", "set", "--data", a.data, id, "subject", "ฉบับ ก"]).status == 0)
        #expect(try run(["doc", "set", "--data", b.data, id, "subject", "ฉบับ ข"]).status == 0)
        #expect(try run(["doc", "export", "--data", a.data, id, a.file("a.changes")]).status == 0)
        #expect(try run(["doc", "export", "--data", b.data, id, b.file("b.changes")]).status == 0)
        #expect(try run(["doc", "merge", "--data", a.data, b.file("b.changes")]).status == 0)
        #expect(try run(["doc", "merge", "--data", b.data, a.file("a.changes")]).status == 0)
        let showA = try run(["doc", "show", "--json", "--data", a.data, id])
        let showB = try run(["doc", "show", "--json", "--data", b.data, id])
        #expect(showA.stdout == showB.stdout)
        let doc = try json(showA.stdout) as? [String: Any]
        let conflicts = doc?["conflicts"] as? [[String: Any]]
        #expect(conflicts?.count == 1)
        #expect(conflicts?.first?["field"] as? String == "subject")
        let text = try run(["doc", "show", "--data", a.data, id]).stdout
        #expect(text.contains("conflict"))
        #expect(text.contains("ฉบับ ก") && text.contains("ฉบับ ข"))
        #expect(text.contains("body (text) = เรียน ผู้ว่า"))
        #expect(text.contains("tags (set) = {ด่วน}"))
        // Delete: the document disappears from the default list.
        #expect(try run(["doc", "delete", "--data", a.data, id]).status == 0)
        #expect(try run(["doc", "list", "--data", a.data]).stdout.isEmpty)
        #expect(try run(["doc", "list", "--all", "--data", a.data]).stdout.contains("[deleted]"))
    }

    // MARK: - Errors: clear message, non-zero exit, data untouched

    @Test func missingDataDirectory() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        for args in [["status"], ["id"], ["doc", "list"], ["doc", "new"], ["doc", "get", "1-", "x"]] {
            let r = try run(args + ["--data", dir.data])
            #expect(r.status == 66, "\(args)")
            #expect(r.stderr.contains("saraban init --office NAME"))
            #expect(r.stdout.isEmpty)
        }
        #expect(!FileManager.default.fileExists(atPath: dir.data))
        try FileManager.default.createDirectory(atPath: dir.data, withIntermediateDirectories: true)
        let r = try run(["status", "--data", dir.data])
        #expect(r.status == 66)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.data).isEmpty)
    }

    @Test func unknownDocumentAndField() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        let id = try newDoc(dir, ["--set", "a=1"])
        let before = Snapshot(dir.data)
        let r = try run(["doc", "set", "--data", dir.data, "999-ff", "a", "b"])
        #expect(r.status == 67)
        #expect(r.stderr.contains("no document 999-ff"))
        let g = try run(["doc", "get", "--data", dir.data, id, "nosuch"])
        #expect(g.status == 67)
        #expect(g.stderr.contains("no field 'nosuch'"))
        #expect(try run(["doc", "show", "--data", dir.data, "zzz"]).status == 67)
        #expect(Snapshot(dir.data).files == before.files)
    }

    @Test func ambiguousPrefixListsCandidates() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        var ids: [String] = []
        for _ in 0..<12 { ids.append(try newDoc(dir)) }
        let ones = ids.filter { $0.hasPrefix("1") }
        #expect(ones.count > 1)
        let r = try run(["doc", "show", "--data", dir.data, "1"])
        #expect(r.status == 67)
        #expect(r.stderr.contains("matches \(ones.count) documents"))
        for id in ones { #expect(r.stderr.contains(id)) }
    }

    @Test func malformedAssignment() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        let before = Snapshot(dir.data)
        for bad in ["novalue", "=value", ""] {
            let r = try run(["doc", "new", "--data", dir.data, "--set", bad])
            #expect(r.status == 64, "\(bad)")
            #expect(r.stderr.contains("FIELD=VALUE"))
        }
        #expect(Snapshot(dir.data) == before)
    }

    @Test func invalidUTF8Argument() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        let id = try newDoc(dir, ["--set", "a=1"])
        let before = Snapshot(dir.data)
        let r = try run([], shell: #""$SARABAN" doc set --data "$D" "$ID" a "$(printf 'ab\377\376')""#,
            env: ["D": dir.data, "ID": id])
        #expect(r.status == 65)
        #expect(r.stderr.contains("not valid UTF-8"))
        #expect(r.stderr.contains("ff fe"))
        #expect(Snapshot(dir.data) == before)
        // TIS-620 Thai (the legacy encoding) is caught the same way.
        let tis = try run([], shell: #""$SARABAN" doc new --data "$D" --set "subject=$(printf '\273\322\312')""#,
            env: ["D": dir.data])
        #expect(tis.status == 65)
        #expect(try run(["doc", "get", "--data", dir.data, id, "a"]).stdout == "1\n")
    }

    @Test func foreignAndNewerDatabase() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        let db = dir.data + "/saraban.db"
        let original = try Data(contentsOf: URL(fileURLWithPath: db))
        try Data("id,name\n1,foo\n".utf8).write(to: URL(fileURLWithPath: db))
        var before = Snapshot(dir.data)
        let r = try run(["status", "--data", dir.data])
        #expect(r.status == 79)
        #expect(r.stderr.contains("not a Saraban database"))
        #expect(Snapshot(dir.data) == before)
        // A newer schema: user_version (offset 60) above this build's.
        var patched = original
        patched[63] = 99
        try patched.write(to: URL(fileURLWithPath: db))
        before = Snapshot(dir.data)
        let n = try run(["doc", "new", "--data", dir.data])
        #expect(n.status == 79)
        #expect(n.stderr.contains("upgrade saraban"))
        #expect(Snapshot(dir.data) == before)
    }

    @Test func readOnlyDataDirectory() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        let id = try newDoc(dir)
        let before = Snapshot(dir.data)
        chmod(dir.data, 0o500)
        defer { chmod(dir.data, 0o700) }
        let r = try run(["doc", "set", "--data", dir.data, id, "a", "b"])
        #expect(r.status == 77)
        #expect(r.stderr.contains("read-only"))
        #expect(Snapshot(dir.data) == before)
    }

    @Test func corruptedKeyFile() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = try initNode(dir)
        let key = dir.data + "/node.key"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: key))
        bytes[30] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: key))
        let before = Snapshot(dir.data)
        let r = try run(["id", "--data", dir.data])
        #expect(r.status == 78)
        #expect(r.stderr.contains("node key"))
        #expect(r.stderr.contains("self-check"))
        #expect(Snapshot(dir.data) == before)
    }
}
