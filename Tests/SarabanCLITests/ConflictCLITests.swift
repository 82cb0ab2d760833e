import Foundation
import Testing

@testable import saraban

// Conflict inspection, history, diff, past states and resolution, driven through the real
// `saraban` binary on two data directories that exchange change files (`doc export`/`doc merge`).
//
// Golden outputs live in Fixtures/golden/conflicts. Node ids are random, so outputs are
// normalised (node A's ids become a…a, node B's b…b, same lengths so tables stay aligned);
// times come from SARABAN_FAKE_TIME. Regenerate with SARABAN_UPDATE_GOLDEN=1 swift test --filter ConflictCLITests.

/// One node's data directory, with its ids and a fake clock that advances a minute per command.
final class TestNode: @unchecked Sendable {
    let data: String
    let office: String
    var nodeID = ""
    var replica = ""
    let clock: FakeMinutes

    init(_ data: String, office: String, clock: FakeMinutes) throws {
        self.data = data
        self.office = office
        self.clock = clock
        let r = try run(["init", "--data", data, "--office", office])
        #expect(r.status == 0, "\(r.stderr)")
        let id = try json(try run(["id", "--json", "--data", data]).stdout) as! [String: Any]
        nodeID = id["nodeID"] as! String
        replica = id["replica"] as! String
    }

    /// Runs `saraban ARGS --data DIR` at the next fake minute.
    @discardableResult
    func sar(_ args: [String], expect status: Int32? = 0) throws -> Result {
        let r = try run(args + ["--data", data], env: ["SARABAN_FAKE_TIME": String(clock.next())])
        if let status { #expect(r.status == status, "saraban \(args.joined(separator: " ")): \(r.stderr)") }
        return r
    }

    func out(_ args: [String]) throws -> String { try sar(args).stdout }
    func line(_ args: [String]) throws -> String { try out(args).trimmingCharacters(in: .newlines) }
    func jsonOut(_ args: [String]) throws -> Any { try json(try out(args + ["--json"])) }
}

/// Two offices A (กระทรวงมหาดไทย) and B (สำนักงานจังหวัดเชียงใหม่) in `dir`, on one fake clock.
func twoOffices(_ dir: TempDir) throws -> (a: TestNode, b: TestNode) {
    let clock = FakeMinutes()
    return (
        try TestNode(dir.file("a"), office: "กระทรวงมหาดไทย", clock: clock),
        try TestNode(dir.file("b"), office: "สำนักงานจังหวัดเชียงใหม่", clock: clock)
    )
}

final class FakeMinutes: @unchecked Sendable {
    private var t: Int64 = 1_795_621_320_000  // 2026-11-25T15:42:00Z
    func next() -> Int64 {
        t += 60_000
        return t
    }
}

/// Two nodes A (กระทรวงมหาดไทย) and B (สำนักงานจังหวัดเชียงใหม่) and four documents created on A,
/// then edited concurrently on both while cut off, then exchanged through change files:
///   doc1 register: A and B both set `subject` (B's write has the larger op id: it is shown);
///   doc2 text: both insert into `body` (merged, no conflict) and append to `routing` (both kept);
///   doc3 set: A removes `ด่วน` from `tags` while B adds it again (a contested removal);
///   doc4 delete against edit: A deletes it while B edits `note`.
struct TwoNodes {
    let dir: TempDir
    let a: TestNode
    let b: TestNode
    let doc1: String
    let doc2: String
    let doc3: String
    let doc4: String
    private var files = 0

    init(_ name: String = #function) throws {
        dir = TempDir(name)
        let clock = FakeMinutes()
        a = try TestNode(dir.file("a"), office: "กระทรวงมหาดไทย", clock: clock)
        b = try TestNode(dir.file("b"), office: "สำนักงานจังหวัดเชียงใหม่", clock: clock)
        doc1 = try a.line(["doc", "new", "--kind", "letter", "--set", "subject=ขออนุมัติเดินทางไปราชการ"])
        doc2 = try a.line(["doc", "new", "--kind", "memo", "--set", "subject=บันทึกข้อความ"])
        try a.sar(["text", "insert", doc2, "body", "0", "เรียน ท่าน"])
        try a.sar(["list", "append", doc2, "routing", "สารบรรณ → ผอ."])
        doc3 = try a.line(["doc", "new", "--kind", "letter", "--set", "subject=เรื่องด่วน"])
        try a.sar(["set", "add", doc3, "tags", "ด่วน"])
        try a.sar(["set", "add", doc3, "tags", "ลับ"])
        doc4 = try a.line(["doc", "new", "--kind", "letter", "--set", "subject=ร่างที่จะยกเลิก"])
        try exchange()
        // Cut off: concurrent edits. B's first change is a text insert (several op ids), so every
        // change of B that touches doc1 has a larger first op id than A's: the order is fixed.
        try a.sar(["doc", "set", doc1, "subject", "ฉบับ ก"])
        try a.sar(["text", "insert", doc2, "body", "10", " ผู้ว่าราชการจังหวัด"])
        try a.sar(["list", "append", doc2, "routing", "ผอ. → ปลัด"])
        try a.sar(["set", "remove", doc3, "tags", "ด่วน"])
        try a.sar(["doc", "delete", doc4])
        try b.sar(["text", "insert", doc2, "body", "0", "ที่ ชม ๐๐๑๗/๑\n"])
        try b.sar(["doc", "set", doc1, "urgency", "ด่วนที่สุด"])
        try b.sar(["doc", "set", doc1, "subject", "ฉบับ ข"])
        try b.sar(["list", "append", doc2, "routing", "สารบรรณ ชม → ผวจ."])
        try b.sar(["set", "add", doc3, "tags", "ด่วน"])
        try b.sar(["doc", "set", doc4, "note", "ขอแก้ไขวันที่"])
        try exchange()
    }

    /// Both directions, every document, through change files.
    mutating func exchange() throws {
        for (from, to) in [(a, b), (b, a)] {
            for d in [doc1, doc2, doc3, doc4] where !d.isEmpty {
                files += 1
                let f = dir.file("x\(files).changes")
                try from.sar(["doc", "export", d, f])
                try to.sar(["doc", "merge", f])
            }
        }
    }

    /// Replaces random ids by fixed ones of the same length (tables stay aligned).
    func normalise(_ s: String) -> String {
        var s = s
        for (n, c) in [(a, "a"), (b, "b")] {
            s = s.replacingOccurrences(of: n.nodeID, with: "sb" + String(repeating: c, count: n.nodeID.count - 2))
            s = s.replacingOccurrences(of: n.replica, with: String(repeating: c, count: 32))
        }
        for (n, c) in [(a, "a"), (b, "b")] {
            s = s.replacingOccurrences(of: String(n.replica.prefix(8)), with: String(repeating: c, count: 8))
        }
        return s
    }

    func cleanup() { dir.cleanup() }
}

/// Compares with Fixtures/golden/conflicts/NAME, or writes it when SARABAN_UPDATE_GOLDEN=1.
func golden(_ name: String, _ actual: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let path = root.appendingPathComponent("Fixtures/golden/conflicts/\(name)").path
    if ProcessInfo.processInfo.environment["SARABAN_UPDATE_GOLDEN"] == "1" {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(actual.utf8).write(to: URL(fileURLWithPath: path))
        return
    }
    guard let expected = FileManager.default.contents(atPath: path) else {
        Issue.record("missing golden file \(path); run SARABAN_UPDATE_GOLDEN=1 swift test", sourceLocation: sourceLocation)
        return
    }
    let e = String(decoding: expected, as: UTF8.self)
    if e != actual {
        let el = e.components(separatedBy: "\n")
        let al = actual.components(separatedBy: "\n")
        let first = zip(el, al).enumerated().first { $0.element.0 != $0.element.1 }
        let line = (first?.offset ?? min(el.count, al.count)) + 1
        let message: String =
            "\(name) differs from the golden file at line \(line):\n"
            + "expected: \(first?.element.0 ?? "(end)")\nactual:   \(first?.element.1 ?? "(end)")\n--- actual ---\n\(actual)"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }
}

@Suite struct DisplayWidthTests {
    @Test func thaiMarksTakeNoColumn() {
        #expect(DisplayWidth.of("ที่") == 1)  // ท + ี + ่
        #expect(DisplayWidth.of("เรื่อง") == 4)  // เ ร ื ่ อ ง
        #expect(DisplayWidth.of("กระทรวงมหาดไทย") == 14)
        #expect(DisplayWidth.of("ขออนุมัติเดินทางไปราชการ") == 20)
        #expect(DisplayWidth.of("ด่วนที่สุด") == 6)
        #expect(DisplayWidth.of("น้ำ") == 2)  // น + ้ + ำ (sara am is a spacing vowel)
        #expect(DisplayWidth.of("ฉบับ ก") == 5)
        for u in [0x0E31, 0x0E34, 0x0E35, 0x0E36, 0x0E37, 0x0E38, 0x0E39, 0x0E3A] + Array(0x0E47...0x0E4E) {
            #expect(DisplayWidth.of(Unicode.Scalar(UInt32(u))!) == 0, "U+\(String(u, radix: 16))")
        }
    }

    @Test func otherScripts() {
        #expect(DisplayWidth.of("") == 0)
        #expect(DisplayWidth.of("subject") == 7)
        #expect(DisplayWidth.of("e\u{301}") == 1)  // combining acute
        #expect(DisplayWidth.of("a\u{200B}b") == 2)  // zero width space
        #expect(DisplayWidth.of("\u{200D}\u{FE0F}") == 0)
        #expect(DisplayWidth.of("中文") == 4)
        #expect(DisplayWidth.of("한국") == 4)
        #expect(DisplayWidth.of("ＡＢ") == 4)  // fullwidth
        #expect(DisplayWidth.of("📄") == 2)
        #expect(DisplayWidth.of("\t") == 0)
        #expect(DisplayWidth.of("๐๘๐๘") == 4)  // Thai digits
    }

    @Test func truncateKeepsMarksWithTheirBase() {
        #expect(DisplayWidth.truncate("เรื่องด่วน", to: 20) == "เรื่องด่วน")
        let t = DisplayWidth.truncate("เรื่องด่วนที่สุด", to: 5)
        #expect(t == "เรื่อง…")
        #expect(DisplayWidth.of(t) == 5)
        #expect(DisplayWidth.truncate("中文中文", to: 4) == "中…")
    }

    @Test func tableAlignsThaiByDisplayWidth() {
        var t = Table(["FIELD", "VALUE", "CHANGE"])
        t.add(["subject", "ที่ มท ๐๘๐๘", "aaaaaaaa/1"])
        t.add(["เรื่อง", "ด่วนที่สุด", "bbbbbbbb/22"])
        t.add(["x", "中文", "c/3"])
        let lines = t.render(colour: false)
        #expect(lines.count == 4)
        // The third column starts at the same display column on every line.
        let starts = lines.map { line -> Int in
            let parts = line.components(separatedBy: "  ").filter { !$0.isEmpty }
            return DisplayWidth.of(String(line[..<line.range(of: parts.last!.trimmingCharacters(in: .whitespaces))!.lowerBound]))
        }
        #expect(Set(starts).count == 1, "\(lines)")
        #expect(lines.allSatisfy { !$0.hasSuffix(" ") })
        #expect(!lines.joined().contains("\u{1B}"))
        #expect(t.render(colour: true)[0].contains("\u{1B}[1m"))
    }

    @Test func fakeTimeParses() {
        #expect(FakeClock.parse("1795621370157") == 1_795_621_370_157)
        #expect(FakeClock.parse("2026-11-25T15:42:50.157Z") == 1_795_621_370_157)
        #expect(FakeClock.parse("2026-11-25T15:42:50Z") == 1_795_621_370_000)
        #expect(FakeClock.parse("yesterday") == nil)
        #expect(When.thai(1_795_621_370_157) == "25 พ.ย. 2569 22:42:50")
        #expect(When.thai(1_795_650_000_000) == "26 พ.ย. 2569 06:40:00")
    }
}

@Suite(.ownThread, .timeLimit(.minutes(5))) struct ConflictCLITests {
    @Test func noConflictsIsAnEmptyListAndExitZero() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let n = try TestNode(dir.data, office: "กระทรวงมหาดไทย", clock: FakeMinutes())
        let r = try n.sar(["conflicts"])
        #expect(r.stdout == "no conflicts\n")
        let j = try n.jsonOut(["conflicts"]) as? [Any]
        #expect(j?.isEmpty == true)
        let d = try n.line(["doc", "new", "--set", "subject=ก"])
        #expect((try n.jsonOut(["doc", "show", d, "--conflicts"]) as? [Any])?.isEmpty == true)
        #expect(try n.out(["doc", "show", d, "--conflicts"]) == "no conflicts in \(d)\n")
    }

    @Test func conflictsFromConcurrentEditsOnTwoNodes() throws {
        let s = try TwoNodes()
        defer { s.cleanup() }
        for n in [s.a, s.b] {
            let list = try #require(try n.jsonOut(["conflicts"]) as? [[String: Any]])
            #expect(list.map { $0["type"] as? String } == ["register", "setRemoval", "deletion"])
            #expect(list.map { $0["document"] as? String } == [s.doc1, s.doc3, s.doc4])
            // Text merged: no conflict on doc2, both inserts kept in one order, both appends kept.
            #expect(try n.line(["doc", "get", s.doc2, "body"]) == "ที่ ชม ๐๐๑๗/๑\nเรียน ท่าน ผู้ว่าราชการจังหวัด")
            #expect(try n.line(["doc", "get", s.doc2, "routing"]).split(separator: "\n").count == 3)
            #expect((try n.jsonOut(["doc", "show", s.doc2, "--conflicts"]) as? [Any])?.isEmpty == true)
        }
        try golden("conflicts-a.txt", s.normalise(try s.a.out(["conflicts"])))
        try golden("conflicts-b.txt", s.normalise(try s.b.out(["conflicts"])))
        try golden("conflicts-a.json", s.normalise(try s.a.out(["conflicts", "--json"])))
        try golden("show-conflicts-doc1-b.txt", s.normalise(try s.b.out(["doc", "show", s.doc1, "--conflicts"])))
        #expect(!(try s.a.out(["conflicts"])).contains("\u{1B}"), "no colour when stdout is not a terminal")
    }

    @Test func conflictJSONShape() throws {
        let s = try TwoNodes()
        defer { s.cleanup() }
        let list = try #require(try s.a.jsonOut(["conflicts"]) as? [[String: Any]])
        #expect(list.count == 3)
        let entryKeys: Set = ["document", "kind", "title", "type", "field", "values", "resolve"]
        let valueKeys: Set = [
            "action", "value", "fields", "shown", "author", "office", "nodeID", "change", "op", "time", "timeISO",
            "timeThai",
        ]
        for e in list {
            #expect(Set(e.keys) == entryKeys)
            for v in try #require(e["values"] as? [[String: Any]]) { #expect(Set(v.keys) == valueKeys) }
        }

        // Register: both values, the shown one (B's: larger op id) first.
        let reg = list[0]
        #expect(reg["field"] as? String == "subject")
        #expect(reg["kind"] as? String == "letter")
        #expect(reg["title"] as? String == "ฉบับ ข")
        let rv = try #require(reg["values"] as? [[String: Any]])
        #expect(rv.map { $0["value"] as? String } == ["ฉบับ ข", "ฉบับ ก"])
        #expect(rv.map { $0["action"] as? String } == ["write", "write"])
        #expect(rv.map { $0["shown"] as? Bool } == [true, false])
        #expect(rv.map { $0["author"] as? String } == [s.b.replica, s.a.replica])
        // A knows its own office and node id; B is unknown to it (no peer configured): null.
        #expect(rv[1]["office"] as? String == "กระทรวงมหาดไทย")
        #expect(rv[1]["nodeID"] as? String == s.a.nodeID)
        #expect(rv[0]["office"] is NSNull)
        #expect(rv[0]["nodeID"] is NSNull)
        #expect(rv[0]["change"] as? String == String(s.b.replica.prefix(8)) + "/3")
        #expect((rv[0]["op"] as? String)?.hasSuffix("@" + s.b.replica.prefix(8)) == true)
        #expect(rv[1]["change"] as? String == String(s.a.replica.prefix(8)) + "/9")
        let t = Int64(try #require(rv[0]["time"] as? Int))
        #expect(rv[0]["timeISO"] as? String == Output.time(t))
        #expect(rv[0]["timeThai"] as? String == When.thai(t))
        #expect(rv[0]["fields"] is NSNull)
        #expect((reg["resolve"] as? String)?.hasPrefix("saraban resolve \(s.doc1) subject --keep") == true)

        // Set: A's removal, then B's concurrent add that outlived it.
        let set = list[1]
        #expect(set["field"] as? String == "tags")
        let sv = try #require(set["values"] as? [[String: Any]])
        #expect(sv.map { $0["action"] as? String } == ["remove", "add"])
        #expect(sv.map { $0["value"] as? String } == ["ด่วน", "ด่วน"])
        #expect(sv.map { $0["author"] as? String } == [s.a.replica, s.b.replica])

        // Deletion against edit: A's deletion, B's concurrent edit of `note` (no op id: a whole change).
        let del = list[2]
        #expect(del["field"] is NSNull)
        let dv = try #require(del["values"] as? [[String: Any]])
        #expect(dv.map { $0["action"] as? String } == ["delete", "edit"])
        #expect(dv[1]["fields"] as? [String] == ["note"])
        #expect(dv[1]["op"] is NSNull)
        #expect(dv[1]["value"] is NSNull)
        #expect(dv[1]["author"] as? String == s.b.replica)

        // On B, B is the known office.
        let onB = try #require(try s.b.jsonOut(["conflicts"]) as? [[String: Any]])
        let bv = try #require(onB[0]["values"] as? [[String: Any]])
        #expect(bv[0]["office"] as? String == "สำนักงานจังหวัดเชียงใหม่")
        #expect(bv[1]["office"] is NSNull)
    }

    @Test func resolveThenMergeLeavesNoConflictOnEitherNode() throws {
        var s = try TwoNodes()
        defer { s.cleanup() }
        // Register: keep A's value (the one not shown) by its change, with a short author prefix.
        let aShort = String(s.a.replica.prefix(4))
        let r1 = try s.a.sar(["resolve", s.doc1, "subject", "--keep", "\(aShort)/9"])
        #expect(r1.stdout.contains("kept \"ฉบับ ก\""))
        // Set: B drops the element after all.
        try s.b.sar(["resolve", s.doc3, "tags", "--drop", "ด่วน"])
        // Deletion against edit: settled by restoring.
        try s.a.sar(["doc", "restore", s.doc4])
        #expect((try s.a.jsonOut(["conflicts"]) as? [Any])?.count == 1)  // B's drop has not arrived
        try s.exchange()
        for n in [s.a, s.b] {
            #expect(try n.out(["conflicts"]) == "no conflicts\n")
            #expect((try n.jsonOut(["conflicts"]) as? [Any])?.isEmpty == true)
            #expect(try n.line(["doc", "get", s.doc1, "subject"]) == "ฉบับ ก")
            #expect(try n.line(["doc", "get", s.doc3, "tags"]) == "ลับ")
            #expect(try n.line(["doc", "get", s.doc4, "note"]) == "ขอแก้ไขวันที่")
        }
        // Already resolved: --keep of a value no longer there is refused, naming the current one.
        let again = try s.b.sar(["resolve", s.doc1, "subject", "--keep", "\(aShort)/9"], expect: 68)
        #expect(again.stderr.contains("holds no conflict now"))
    }

    @Test func resolveWithValueAndKeepAddByChange() throws {
        var s = try TwoNodes()
        defer { s.cleanup() }
        try s.b.sar(["resolve", s.doc1, "subject", "--value", "ฉบับ ค (รวม)"])
        // A set conflict resolved by naming the kept add's change.
        let bAdd = try #require(
            ((try s.a.jsonOut(["conflicts"]) as? [[String: Any]])?[1]["values"] as? [[String: Any]])?[1]["change"]
                as? String)
        try s.a.sar(["resolve", s.doc3, "tags", "--keep", bAdd])
        try s.b.sar(["doc", "delete", s.doc4])
        try s.exchange()
        for n in [s.a, s.b] {
            #expect((try n.jsonOut(["conflicts"]) as? [Any])?.isEmpty == true)
            #expect(try n.line(["doc", "get", s.doc1, "subject"]) == "ฉบับ ค (รวม)")
            #expect(try n.line(["doc", "get", s.doc3, "tags"]) == "ด่วน\nลับ")
            #expect((try n.jsonOut(["doc", "show", s.doc4]) as? [String: Any])?["deleted"] as? Bool == true)
        }
    }

    @Test func resolveRefusals() throws {
        let s = try TwoNodes()
        defer { s.cleanup() }
        let a = s.a
        #expect(try a.sar(["resolve", s.doc1, "subject"], expect: 64).stderr.contains("exactly one of"))
        try a.sar(["resolve", s.doc1, "subject", "--keep", "x", "--value", "y"], expect: 64)
        let unknown = try a.sar(["resolve", s.doc1, "subject", "--keep", "ffff/99"], expect: 67)
        #expect(unknown.stderr.contains("choose one of"))
        try a.sar(["resolve", s.doc1, "subject", "--keep", "not-a-change"], expect: 64)
        #expect(try a.sar(["resolve", s.doc2, "body", "--value", "x"], expect: 68).stderr.contains("never conflict"))
        try a.sar(["resolve", s.doc1, "nosuch", "--value", "x"], expect: 67)
        try a.sar(["resolve", s.doc1, "urgency", "--value", "x"], expect: 68)  // no conflict there
        try a.sar(["resolve", s.doc3, "tags", "--keep", "ลับ"], expect: 67)  // not contested
        try a.sar(["resolve", s.doc3, "tags", "--value", "x"], expect: 64)
        // Nothing was written by the refusals.
        #expect((try a.jsonOut(["conflicts"]) as? [Any])?.count == 3)
    }

    @Test func historyInCausalOrder() throws {
        let s = try TwoNodes()
        defer { s.cleanup() }
        for n in [s.a, s.b] {
            let h = try #require(try n.jsonOut(["history", s.doc1]) as? [[String: Any]])
            let a8 = String(s.a.replica.prefix(8))
            let b8 = String(s.b.replica.prefix(8))
            #expect(h.map { $0["change"] as? String } == ["\(a8)/1", "\(a8)/9", "\(b8)/2", "\(b8)/3"])
            #expect(h.map { $0["fields"] as? [String] } == [["subject"], ["subject"], ["urgency"], ["subject"]])
            // Own changes were sealed into this node's signed envelopes; the other node's came in a
            // change file (no envelope): "unsigned".
            for e in h {
                let own = (e["author"] as? String) == n.replica
                #expect(e["signature"] as? String == (own ? "verified" : "unsigned"), "\(e["change"] ?? "")")
            }
            #expect(h[0]["office"] as? String == (n === s.a ? "กระทรวงมหาดไทย" : nil))
            let ops = try #require(h[0]["operations"] as? [[String: Any]])
            #expect(ops.map { $0["action"] as? String } == ["create", "set"])
            #expect(ops[1]["value"] as? String == "ขออนุมัติเดินทางไปราชการ")
            // No change is listed before one it had seen.
            for i in h.indices {
                for j in h.indices where j > i {
                    let later = h[j]["change"] as! String
                    #expect(!(h[i]["deps"] as! [String]).contains(later))
                }
            }
            let only = try #require(try n.jsonOut(["history", s.doc1, "--field", "urgency"]) as? [[String: Any]])
            #expect(only.map { $0["change"] as? String } == ["\(b8)/2"])
        }
        try golden("history-doc1-a.txt", s.normalise(try s.a.out(["history", s.doc1])))
        try golden("history-doc2-b.txt", s.normalise(try s.b.out(["history", s.doc2])))
        // A change id with an ambiguous or unknown author prefix is refused.
        try s.a.sar(["doc", "show", s.doc1, "--at", "zz/1"], expect: 64)
        try s.a.sar(["doc", "show", s.doc1, "--at", "\(s.a.replica.prefix(8))/999"], expect: 67)
    }

    @Test func showAtReproducesEarlierStates() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let clock = FakeMinutes()
        let a = try TestNode(dir.file("a"), office: "กระทรวงมหาดไทย", clock: clock)
        let doc = try a.line(["doc", "new", "--kind", "letter", "--set", "subject=ร่าง"])
        var states: [(String, String)] = []
        func record() throws {
            let last = try #require((try a.jsonOut(["history", doc]) as? [[String: Any]])?.last?["change"] as? String)
            states.append((last, try a.out(["doc", "show", doc, "--json"])))
        }
        try record()
        let other = try a.line(["doc", "new", "--set", "x=1"])  // another document in between
        try a.sar(["text", "insert", doc, "body", "0", "เรียน ผู้ว่าราชการจังหวัด"])
        try record()
        try a.sar(["doc", "set", other, "x", "2"])
        try a.sar(["text", "delete", doc, "body", "6", "4"])
        try record()
        try a.sar(["set", "add", doc, "tags", "ด่วน"])
        try a.sar(["list", "append", doc, "routing", "ผอ."])
        try record()
        try a.sar(["doc", "set", doc, "subject", "ฉบับจริง"])
        try a.sar(["set", "remove", doc, "tags", "ด่วน"])
        try record()
        try a.sar(["doc", "delete", doc])
        try record()
        try a.sar(["doc", "restore", doc])
        try record()
        for (change, state) in states {
            // Same encoder, sorted keys: the JSON texts are equal when the states are.
            #expect(try a.out(["doc", "show", doc, "--at", change, "--json"]) == state, "at \(change)")
        }
        let text = try a.out(["doc", "show", doc, "--at", states[1].0])
        #expect(text.hasPrefix("as of:    change \(states[1].0)\n"))
        #expect(text.contains("body (text) = เรียน ผู้ว่าราชการจังหวัด"))
        // A change before the document existed.
        let before = try a.line(["doc", "new"])
        try a.sar(["doc", "show", before, "--at", states[0].0], expect: 67)
    }

    @Test func diffBetweenChanges() throws {
        let s = try TwoNodes()
        defer { s.cleanup() }
        func history(_ doc: String) throws -> [String] {
            try #require(try s.a.jsonOut(["history", doc]) as? [[String: Any]]).map { $0["change"] as! String }
        }
        let a8 = String(s.a.replica.prefix(8))
        let b8 = String(s.b.replica.prefix(8))
        let h1 = try history(s.doc1)
        let h2 = try history(s.doc2)
        let h3 = try history(s.doc3)
        #expect(h2 == ["\(a8)/2", "\(a8)/3", "\(a8)/4", "\(b8)/1", "\(a8)/10", "\(b8)/4", "\(a8)/11"])
        #expect(h3 == ["\(a8)/5", "\(a8)/6", "\(a8)/7", "\(b8)/5", "\(a8)/12"])
        try golden("diff-doc1-a.txt", s.normalise(try s.a.out(["diff", s.doc1, "--from", h1[0], "--to", h1[3]])))
        try golden("diff-doc2-a.txt", s.normalise(try s.a.out(["diff", s.doc2, "--from", "\(a8)/4", "--to", "\(b8)/4"])))
        try golden("diff-doc3-a.txt", s.normalise(try s.a.out(["diff", s.doc3, "--from", "\(a8)/7", "--to", "\(a8)/12"])))
        try golden("show-at-doc2-b.txt", s.normalise(try s.b.out(["doc", "show", s.doc2, "--at", "\(b8)/1"])))

        let j = try #require(try s.a.jsonOut(["diff", s.doc1, "--from", h1[0], "--to", h1[3]]) as? [String: Any])
        #expect(j["from"] as? String == h1[0])
        let fields = try #require(j["fields"] as? [[String: Any]])
        #expect(fields.map { $0["field"] as? String } == ["subject", "urgency"])
        #expect(fields[0]["type"] as? String == "register")
        #expect(fields[0]["old"] as? [String] == ["ขออนุมัติเดินทางไปราชการ"])
        #expect(fields[0]["new"] as? [String] == ["ฉบับ ข"])
        #expect(fields[1]["old"] as? [String] == [])
        let t = try #require(try s.a.jsonOut(["diff", s.doc2, "--from", "\(a8)/4", "--to", "\(b8)/4"]) as? [String: Any])
        let tf = try #require(t["fields"] as? [[String: Any]])
        let body = try #require(tf.first { $0["field"] as? String == "body" })
        #expect(body["type"] as? String == "text")
        #expect((body["lines"] as? [[String: String]])?.map { $0["kind"]! } == ["added", "same"])
        let routing = try #require(tf.first { $0["field"] as? String == "routing" })
        #expect((routing["appended"] as? [[String: Any]])?.map { $0["value"] as? String } == ["สารบรรณ ชม → ผวจ."])
        let same = try s.a.out(["diff", s.doc1, "--from", h1[1], "--to", h1[1]])
        #expect(same.hasSuffix("no differences\n"))
    }

    @Test func statusShowsPerPeerLag() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let clock = FakeMinutes()
        let a = try TestNode(dir.file("a"), office: "กระทรวงมหาดไทย", clock: clock)
        let b = try TestNode(dir.file("b"), office: "สำนักงานจังหวัดเชียงใหม่", clock: clock)
        let c = try TestNode(dir.file("c"), office: "ศาลากลาง", clock: clock)
        // No peers yet.
        let none = try #require(try a.jsonOut(["status"]) as? [String: Any])
        #expect((none["peers"] as? [Any])?.isEmpty == true)
        #expect(none["office"] as? String == "กระทรวงมหาดไทย")  // the node status keys are still there
        #expect(try a.out(["status"]).contains("peers:      none"))
        try a.sar(["peer", "add", b.nodeID, "127.0.0.1:7421", "--name", "เชียงใหม่"])
        try a.sar(["peer", "add", c.nodeID, "127.0.0.1:7422"])
        // What the daemon records after a session (peers.json), as of the last contact.
        let book = """
            [{"node_id": "\(b.nodeID)", "last_contact": 1795621370157, "last_synced": 1795621370157,
              "changes_peer_lacks": 2, "changes_we_lack": 5, "envelopes_sent": 1, "envelopes_received": 3,
              "bytes_sent": 10, "bytes_received": 30, "sessions": 1}]
            """
        try Data(book.utf8).write(to: URL(fileURLWithPath: a.data + "/peers.json"))
        let s = try #require(try a.jsonOut(["status"]) as? [String: Any])
        let peers = try #require(s["peers"] as? [[String: Any]])
        #expect(peers.count == 2)
        let pb = try #require(peers.first { $0["nodeID"] as? String == b.nodeID })
        #expect(pb["name"] as? String == "เชียงใหม่")
        #expect(pb["changesPeerLacks"] as? Int == 2)
        #expect(pb["changesWeLack"] as? Int == 5)
        #expect(pb["lastContact"] as? String == "2026-11-25T15:42:50.157Z")
        let pc = try #require(peers.first { $0["nodeID"] as? String == c.nodeID })
        #expect(pc["lastContact"] is NSNull)
        #expect(pc["changesPeerLacks"] is NSNull)
        #expect(Set(pc.keys) == ["name", "nodeID", "address", "lastContact", "lastSynced", "changesPeerLacks", "changesWeLack", "lastError"])
        let text = try a.out(["status"])
        #expect(text.contains("peers:      2"))
        let row = try #require(text.split(separator: "\n").first { $0.contains("เชียงใหม่") })
        #expect(row.hasSuffix("2          5"))
        #expect(text.contains("never"))
    }
}

/// The `.ownThread` trait the child-process suites use: a synchronous test, and the asynchronous
/// code after an `await` in another, run on the test's own queue, not on the cooperative pool.
@Suite(.ownThread) struct OwnThreadTraitTests {
    @Test func aSynchronousTestRunsOnItsOwnQueue() {
        #expect(OwnThreadTrait.isCurrent)
    }

    @Test func anAsynchronousTestStaysOnItsOwnQueueAcrossAwaits() async throws {
        try await Task.sleep(for: .milliseconds(5))
        #expect(OwnThreadTrait.isCurrent)
    }
}

@Suite struct WithoutOwnThreadTests {
    @Test func withoutTheTraitATestRunsOnThePool() {
        #expect(!OwnThreadTrait.isCurrent)
    }
}
