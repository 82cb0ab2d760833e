import Foundation
import SarabanCore
import SarabanNode
import SarabanOffice
import Testing

/// A settable wall clock shared by a test and its nodes.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var ms: Int64
    init(_ ms: Int64) { self.ms = ms }
    var now: Int64 {
        lock.lock()
        defer { lock.unlock() }
        return ms
    }
    func set(_ v: Int64) {
        lock.lock()
        ms = v
        lock.unlock()
    }
    func advance(_ d: Int64) { set(now + d) }
    var closure: @Sendable () -> Int64 { { [self] in self.now } }
}

/// Milliseconds since 1970 of a Thai wall-clock time (UTC+7), Gregorian year.
func thaiMillis(_ y: Int, _ m: Int, _ d: Int, _ h: Int = 10, _ min: Int = 0) -> Int64 {
    var c = DateComponents()
    (c.year, c.month, c.day, c.hour, c.minute) = (y, m, d, h, min)
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = TimeZone(secondsFromGMT: 7 * 3600)!
    return Int64(cal.date(from: c)!.timeIntervalSince1970 * 1000)
}

let day: Int64 = 86_400_000

/// Two offices' nodes in one temporary directory.
struct Offices {
    let dir = TempDir()
    let clock: TestClock
    let a: Node
    let b: Node

    init(_ name: String = #function, at ms: Int64 = thaiMillis(2025, 6, 13), configure: ((inout [String: Any]) -> Void)? = nil)
        throws
    {
        clock = TestClock(ms)
        let da = DataDirectory(path: dir.path + "/a")
        let db = DataDirectory(path: dir.path + "/b")
        try Node.initialize(dataDir: da, office: "สำนักงานจังหวัดนครสวรรค์", letterCode: "นว 0017", logger: quiet).close()
        try Node.initialize(dataDir: db, office: "ที่ทำการปกครองอำเภอบรรพตพิสัย", letterCode: "นว 0318", logger: quiet).close()
        if let configure {
            for d in [da, db] {
                var obj = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: d.configPath))) as! [String: Any]
                configure(&obj)
                try JSONSerialization.data(withJSONObject: obj).write(to: URL(fileURLWithPath: d.configPath))
            }
        }
        a = try Node.open(dataDir: da, logger: quiet, now: clock.closure)
        b = try Node.open(dataDir: db, logger: quiet, now: clock.closure)
    }

    /// Sends every change one node has and the other lacks, both ways (a change-file exchange).
    func exchange() throws {
        let ca = try a.store.changes()
        let cb = try b.store.changes()
        _ = try b.apply(changes: ca)
        _ = try a.apply(changes: cb)
    }

    func close() {
        a.close()
        b.close()
        dir.cleanup()
    }
}

func fixture(_ name: String) throws -> (LetterKind, [(name: String, value: String)]) {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let data = try Data(contentsOf: root.appendingPathComponent("Fixtures/letters/\(name).json"))
    let obj = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let kind = try LetterKind(parsing: obj["kind"] as! String)
    let fields = (obj["fields"] as! [String: String]).sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
    return (kind, fields)
}

let fixtureNames = ["external", "internal", "stamped", "directive", "public-relations", "record"]

@Suite struct LetterTests {
    @Test func fixturesOfEveryKindValidateAndSend() throws {
        let o = try Offices()
        defer { o.close() }
        var kinds = Set<LetterKind>()
        for name in fixtureNames {
            let (kind, fields) = try fixture(name)
            kinds.insert(kind)
            let id = try o.a.createLetter(kind: kind, fields: fields)
            let v = try o.a.letter(id)
            #expect(o.a.missingFields(v).isEmpty, "\(name)")
            let r = try o.a.sendLetter(id)
            let after = try o.a.letter(id)
            #expect(after.status == .sent)
            if kind == .directive {
                #expect(r.allocation.book == .order)
                #expect(after.fields["ที่"] == "1/2568")
            }
            #expect(after.fields["วันที่"] == "13 มิถุนายน 2568")
        }
        #expect(kinds.count == 6)
        let send = try #require(try o.a.register(.send, year: 2568))
        #expect(send.state.lines.map(\.number) == [1, 2, 3, 4, 5])
        #expect(try o.a.letters().compactMap { $0.fields["ที่"] }.sorted() == [
            "1/2568", "นว 0017/1", "นว 0017/2", "นว 0017/3", "นว 0017/4", "นว 0017/5",
        ])
    }

    @Test func validationErrorsAreThaiAndEnglish() throws {
        let o = try Offices()
        defer { o.close() }
        let bad = #expect(throws: NodeError.self) {
            try o.a.createLetter(kind: .external, fields: [("ชั้นความเร็ว", "เร็วจี๋")])
        }
        #expect(bad?.code == .invalidArgument)
        #expect(bad?.message.contains("ชั้นความเร็ว") == true && bad?.message.contains("urgency") == true)
        let badDate = #expect(throws: NodeError.self) { try o.a.createLetter(kind: .external, fields: [("date", "31 กุมภาพันธ์ 2568")]) }
        #expect(badDate?.message.contains("is not a date") == true)
        // A draft may be incomplete; sending it is refused with every missing field named.
        let id = try o.a.createLetter(kind: .external, fields: [("subject", "ทดสอบ")])
        let missing = #expect(throws: NodeError.self) { try o.a.sendLetter(id) }
        #expect(missing?.message.contains("ต้องมีเรียน") == true)
        #expect(missing?.message.contains("salutation") == true)
        #expect(try o.a.letter(id).status == .draft)
        #expect(try o.a.register(.send, year: 2568)?.state.lines.isEmpty ?? true)
    }

    @Test func statusTransitionsAreEnforced() throws {
        let o = try Offices()
        defer { o.close() }
        let (k, f) = try fixture("external")
        let id = try o.a.createLetter(kind: k, fields: f)
        let e = #expect(throws: NodeError.self) { try o.a.editLetter(id, field: "สถานะ", value: "closed") }
        #expect(e?.code == .refused)
        #expect(e?.message.contains("cannot go from draft to closed") == true)
        try o.a.sendLetter(id)
        // ที่, วันที่ and เรื่อง are fixed once numbered.
        #expect(throws: NodeError.self) { try o.a.editLetter(id, field: "เรื่อง", value: "อื่น") }
        #expect(throws: NodeError.self) { try o.a.editLetter(id, field: "ที่", value: "นว 0017/999") }
        try o.a.editLetter(id, field: "status", value: "ปิดเรื่อง")
        #expect(try o.a.letter(id).status == .closed)
        #expect(throws: NodeError.self) { try o.a.editLetter(id, field: "status", value: "draft") }
    }

    @Test func bodyEditsAreTextEdits() throws {
        let o = try Offices()
        defer { o.close() }
        let id = try o.a.createLetter(kind: .internal, fields: [("ข้อความ", "ด้วยสำนักงานขออนุมัติ")])
        try o.a.editLetter(id, field: "ข้อความ", value: "ด้วยสำนักงานจังหวัดขออนุมัติ")
        try o.a.editLetter(id, field: "body", value: " (ด่วน)", insertAt: "ด้วยสำนักงานจังหวัดขออนุมัติ".unicodeScalars.count)
        let d = try o.a.document(id)
        #expect(d.kind(of: "ข้อความ") == .text)
        #expect(d.display("ข้อความ") == "ด้วยสำนักงานจังหวัดขออนุมัติ (ด่วน)")
        // Concurrent body edits on two nodes merge instead of conflicting.
        try o.exchange()
        try o.a.editLetter(id, field: "ข้อความ", value: "เรื่องเดิม: ด้วยสำนักงานจังหวัดขออนุมัติ (ด่วน)")
        let bd = try o.b.document(id)
        #expect(bd.display("ข้อความ") == "ด้วยสำนักงานจังหวัดขออนุมัติ (ด่วน)")
        let end = "ด้วยสำนักงานจังหวัดขออนุมัติ (ด่วน)".unicodeScalars.count
        try o.b.edit { tx, docs in try tx.insertText(id, field: "ข้อความ", at: end, " ครับ", in: &docs) }
        try o.exchange()
        let merged = "เรื่องเดิม: ด้วยสำนักงานจังหวัดขออนุมัติ (ด่วน) ครับ"
        #expect(try o.a.document(id).display("ข้อความ") == merged)
        #expect(try o.b.document(id).display("ข้อความ") == merged)
    }

    /// Two offices number their own books offline for five days, then exchange both ways:
    /// zero collisions and zero gaps in every register, on both nodes, and both see the same lines.
    @Test func numberingUnderPartition() throws {
        let o = try Offices()
        defer { o.close() }
        var sentByA: [DocID] = []
        var sentByB: [DocID] = []
        for dayIndex in 0..<5 {
            for i in 0..<12 {
                o.clock.advance(60_000)
                let la = try o.a.createLetter(
                    kind: .external,
                    fields: [("เรื่อง", "เรื่องที่ \(dayIndex)-\(i)"), ("เรียน", "นายอำเภอ"), ("ข้อความ", "ข้อความ"),
                        ("คำลงท้าย", "ขอแสดงความนับถือ"), ("ผู้ลงนาม", "นายสมมติ ใจดีเสมอ"), ("ตำแหน่ง", "ผู้ว่าราชการจังหวัด")])
                try o.a.sendLetter(la, circular: i % 4 == 0)
                sentByA.append(la)
                let lb = try o.b.createLetter(
                    kind: .internal,
                    fields: [("ส่วนราชการ", "อำเภอ"), ("เรื่อง", "บันทึก \(dayIndex)-\(i)"), ("เรียน", "นายอำเภอ"),
                        ("ข้อความ", "ข้อความ"), ("ผู้ลงนาม", "ปลัดอำเภอ"), ("ตำแหน่ง", "ปลัดอำเภอ")])
                try o.b.sendLetter(lb)
                sentByB.append(lb)
            }
            if dayIndex == 2 {
                // Mid-partition: each office cancels one of its numbers and reserves one.
                try o.a.cancelNumber(.send, number: 3, reason: "พิมพ์ผิด ออกหนังสือใหม่")
                _ = try o.b.reserve(.send, until: o.clock.now + day, purpose: "หนังสือด่วนที่สุดของนายอำเภอ")
            }
            o.clock.advance(day)
        }
        try o.exchange()
        // Each office receives the other's letters, still without talking in between.
        for id in sentByA { try o.b.receiveLetter(id) }
        for id in sentByB { try o.a.receiveLetter(id) }
        try o.exchange()

        for node in [o.a, o.b] {
            let regs = try node.registers()
            #expect(regs.count == 5)  // A: send, circular, receive; B: send, receive
            for r in regs {
                let cg = r.state.collisionsAndGaps
                #expect(cg.collisions.isEmpty && cg.gaps.isEmpty, "\(r.book) of \(r.owner)")
                #expect(r.state.ignored.isEmpty)
                #expect(r.state.lines.map(\.number) == Array(1...r.state.lines.count))
            }
            let aSend = try #require(try node.register(.send, year: 2568, owner: o.a.replica))
            let aCirc = try #require(try node.register(.circular, year: 2568, owner: o.a.replica))
            let bSend = try #require(try node.register(.send, year: 2568, owner: o.b.replica))
            #expect(aSend.state.lines.count == 45 && aCirc.state.lines.count == 15)
            #expect(bSend.state.lines.count == 61)  // 60 letters and the reservation
            #expect(aSend.state.lines[2].state == .cancelled)
            #expect(try #require(try node.register(.receive, year: 2568, owner: o.b.replica)).state.lines.count == 60)
            #expect(try #require(try node.register(.receive, year: 2568, owner: o.a.replica)).state.lines.count == 60)
        }
        // Both nodes see identical lines in every register.
        for r in try o.a.registers() {
            let other = try #require(try o.b.register(r.book, year: r.year, owner: r.owner))
            #expect(other.state.lines == r.state.lines)
        }
        // Every letter number of an office appears once.
        let numbers = try o.a.letters().filter { $0.createdBy == o.a.replica }.compactMap { $0.fields["ที่"] }
        #expect(Set(numbers).count == numbers.count && numbers.count == 60)
        // Every acknowledgement travelled back to the sender's copy.
        for id in sentByA { #expect(try o.a.letter(id).acknowledgements.map(\.office) == ["ที่ทำการปกครองอำเภอบรรพตพิสัย"]) }
    }

    @Test func nonOwnerAllocationIsRefusedAndForgedEventsIgnored() throws {
        let o = try Offices()
        defer { o.close() }
        let (k, f) = try fixture("external")
        try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f))
        try o.exchange()
        let reg = try #require(try o.b.register(.send, year: 2568, owner: o.a.replica))
        let e = #expect(throws: NodeError.self) {
            try o.b.appendRegisterEvent(
                reg.id,
                .allocate(number: 2, letter: "x", date: try ThaiDate(year: 2568, month: 6, day: 13), time: "10:00", summary: ""))
        }
        #expect(e?.code == .refused)
        #expect(e?.message.contains("only the owning node") == true)
        // A raw append that bypasses the check is ignored by every node's fold.
        let forged = RegisterEvent.allocate(
            number: 2, letter: "x", date: try ThaiDate(year: 2568, month: 6, day: 13), time: "10:00", summary: "ปลอม")
        try o.b.append(reg.id, field: "events", value: forged.encoded)
        try o.exchange()
        let seen = try #require(try o.a.register(.send, year: 2568))
        #expect(seen.state.lines.count == 1)
        #expect(seen.state.ignored.count == 1 && seen.state.ignored[0].contains("not the owner"))
        // The owner's next number is still 2.
        try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f))
        #expect(try o.a.register(.send, year: 2568)?.state.lines.map(\.number) == [1, 2])
    }

    @Test func calendarYearRollover() throws {
        let o = try Offices(at: thaiMillis(2025, 12, 31, 23, 50))
        defer { o.close() }
        let (k, f) = try fixture("external")
        let a1 = try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f)).allocation
        let a2 = try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f)).allocation
        #expect((a1.year, a1.number, a2.number) == (2568, 1, 2))
        o.clock.set(thaiMillis(2026, 1, 1, 0, 10))
        let id3 = try o.a.createLetter(kind: k, fields: f)
        let a3 = try o.a.sendLetter(id3).allocation
        #expect((a3.year, a3.number) == (2569, 1))
        #expect(try o.a.letter(id3).fields["วันที่"] == "1 มกราคม 2569")
        #expect(try o.a.register(.send, year: 2568)?.state.lines.count == 2)
    }

    @Test func fiscalYearStartsFirstOctober() throws {
        let o = try Offices(at: thaiMillis(2025, 9, 30, 16, 0)) { $0["register_year"] = "fiscal" }
        defer { o.close() }
        #expect(o.a.registerYearPolicy == .fiscal(startMonth: 10))
        let (k, f) = try fixture("internal")
        for _ in 0..<3 { try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f)) }
        o.clock.set(thaiMillis(2025, 10, 1, 8, 30))
        let a = try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f)).allocation
        #expect((a.year, a.number) == (2569, 1))
        #expect(try o.a.register(.send, year: 2568)?.state.lines.count == 3)
    }

    @Test func duplicateReceiptMakesNoSecondEntryAndAckTravelsBack() throws {
        let o = try Offices()
        defer { o.close() }
        let (k, f) = try fixture("external")
        let id = try o.a.createLetter(kind: k, fields: f)
        #expect(throws: NodeError.self) { try o.a.receiveLetter(id) }  // the sender cannot receive its own letter
        try o.a.sendLetter(id)
        try o.exchange()
        o.clock.advance(3_600_000)
        let r1 = try o.b.receiveLetter(id)
        #expect(r1.number == 1 && !r1.existing)
        try o.exchange()  // duplicate delivery of everything
        try o.exchange()
        let r2 = try o.b.receiveLetter(id)
        #expect(r2.number == 1 && r2.existing)
        #expect(try o.b.register(.receive, year: 2568)?.state.lines.count == 1)
        try o.exchange()
        let acks = try o.a.letter(id).acknowledgements
        #expect(acks.count == 1)
        #expect(acks.first?.number == 1 && acks.first?.office == "ที่ทำการปกครองอำเภอบรรพตพิสัย" && acks.first?.time == "11:00")
    }

    @Test func concurrentRoutingIsKeptInCausalOrder() throws {
        let o = try Offices()
        defer { o.close() }
        let (k, f) = try fixture("external")
        let id = try o.a.createLetter(kind: k, fields: f)
        try o.a.sendLetter(id)
        try o.exchange()
        try o.b.receiveLetter(id)
        try o.b.routeLetter(id, to: "ปลัดอำเภอ", note: "เพื่อโปรดพิจารณา", from: "งานสารบรรณ")
        try o.a.routeLetter(id, to: "กลุ่มงานอำนวยการ", note: "ติดตามผลการตอบรับ")
        try o.b.routeLetter(id, to: "นายอำเภอ", note: "เห็นควรเข้าร่วมประชุม", from: "ปลัดอำเภอ")
        try o.exchange()
        let ra = try o.a.letter(id).routing
        let rb = try o.b.letter(id).routing
        #expect(ra.count == 3 && ra == rb)
        // B's two hops keep their causal order.
        let bHops = ra.filter { $0.office == "ที่ทำการปกครองอำเภอบรรพตพิสัย" }.map(\.to)
        #expect(bHops == ["ปลัดอำเภอ", "นายอำเภอ"])
    }

    @Test func signatureVerificationAndTamperDetection() throws {
        let o = try Offices()
        defer { o.close() }
        let officer = try o.a.officers.add(
            name: "นายสมมติ ใจดีเสมอ", position: "ผู้ว่าราชการจังหวัดนครสวรรค์", passphrase: officerPassphrase, protection: .minimum)
        #expect(mode(o.a.dataDirectory.path + "/officers") == 0o700)
        let keyFiles = try FileManager.default.contentsOfDirectory(atPath: o.a.dataDirectory.path + "/officers")
            .filter { $0.hasSuffix(".key") }
        #expect(keyFiles.count == 1 && mode(o.a.dataDirectory.path + "/officers/" + keyFiles[0]) == 0o600)
        #expect(throws: NodeError.self) {
            try o.a.officers.add(name: "นายสมมติ ใจดีเสมอ", position: "x", passphrase: officerPassphrase, protection: .minimum)
        }
        #expect(try o.a.officers.list().map(\.publicKey) == [officer.publicKey])

        let (k, f) = try fixture("external")
        let id = try o.a.createLetter(kind: k, fields: f)
        try o.a.registerLetter(id)
        let pdf = o.dir.file("scan.pdf")
        try Data(repeating: 0x25, count: 1000).write(to: URL(fileURLWithPath: pdf))
        try o.a.attach(id, file: pdf)
        try o.a.officers.sign(id, officer: "นายสมมติ ใจดีเสมอ", passphrase: officerPassphrase)
        try o.a.sendLetter(id)
        #expect(try o.a.officers.verify(id).allSatisfy(\.valid))
        try o.exchange()
        let onB = try o.b.officers.verify(id)
        #expect(onB.count == 1 && onB[0].valid && onB[0].certifiedBy == o.a.nodeID.text)

        // Another office edits a signed field: verification on the signer's node names it.
        try o.b.edit { tx, docs in try tx.set(id, field: "เรียน", value: .string("ผู้ว่าราชการจังหวัด"), in: &docs) }
        try o.exchange()
        let after = try o.a.officers.verify(id)
        #expect(after.count == 1 && !after[0].valid)
        #expect(after[0].certificateValid && after[0].signatureValid)
        #expect(after[0].changedFields == ["เรียน"])
        // Status changes are not signed content.
        try o.a.editLetter(id, field: "สถานะ", value: "closed")
        #expect(try o.a.officers.verify(id)[0].changedFields == ["เรียน"])
    }

    @Test func forgedSignatureRecordIsInvalid() throws {
        let o = try Offices()
        defer { o.close() }
        try o.a.officers.add(
            name: "นายสมมติ ใจดีเสมอ", position: "ผู้ว่าราชการจังหวัด", passphrase: officerPassphrase, protection: .minimum)
        let (k, f) = try fixture("internal")
        let id = try o.a.createLetter(kind: k, fields: f)
        let rec = try o.a.officers.sign(id, officer: "นายสมมติ ใจดีเสมอ", passphrase: officerPassphrase)
        try o.exchange()
        // B copies A's record but changes the signed text: the signature no longer matches.
        var forged = rec
        forged.fields["เรื่อง"] = "เรื่องปลอม"
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        try o.b.append(id, field: "ลายมือชื่อ", value: String(decoding: try enc.encode(forged), as: UTF8.self))
        let checks = try o.b.officers.verify(id)
        #expect(checks.count == 2)
        #expect(checks.filter(\.valid).count == 1)
        let bad = try #require(checks.first { !$0.valid })
        // Recorded by B but certified by A's key; the officer's signature fails too.
        #expect(!bad.certificateValid && !bad.signatureValid)
    }

    @Test func secrecyNeedsAClearedSpace() throws {
        let o = try Offices { $0["space_clearance"] = ["office": "ลับ"] }
        defer { o.close() }
        let top = #expect(throws: NodeError.self) {
            try o.a.createLetter(kind: .internal, fields: [("ชั้นความลับ", "ลับที่สุด")], space: "office")
        }
        #expect(top?.code == .refused)
        #expect(top?.message.contains("ข้อ 29") == true && top?.message.contains("top-secret") == true)
        let noSpace = #expect(throws: NodeError.self) {
            try o.a.createLetter(kind: .internal, fields: [("ชั้นความลับ", "ลับ")])
        }
        #expect(noSpace?.code == .refused && noSpace?.message.contains("cleared") == true)
        let tooHigh = #expect(throws: NodeError.self) {
            try o.a.createLetter(kind: .internal, fields: [("secrecy", "ลับมาก")], space: "office")
        }
        #expect(tooHigh?.code == .refused)
        let (k, f) = try fixture("secret")
        let id = try o.a.createLetter(kind: k, fields: f, space: "office")
        #expect(try o.a.letter(id).fields["ชั้นความลับ"] == "ลับ")
        #expect(throws: NodeError.self) { try o.a.editLetter(id, field: "ชั้นความลับ", value: "ลับมาก") }
        // An ordinary letter cannot be raised to ลับ outside a cleared space.
        let plain = try o.a.createLetter(kind: .internal, fields: [("เรื่อง", "ทั่วไป")])
        #expect(throws: NodeError.self) { try o.a.editLetter(plain, field: "ชั้นความลับ", value: "ลับ") }
        #expect(try o.a.clearance(ofSpace: "office") == .confidential)
        #expect(try o.a.clearance(ofSpace: nil) == Secrecy.none)
    }

    @Test func attachmentsAreEncryptedInChunksAndContentAddressed() throws {
        let o = try Offices()
        defer { o.close() }
        let id = try o.a.createLetter(kind: .internal, fields: [("เรื่อง", "แนบไฟล์")])
        var bytes = [UInt8](repeating: 0, count: 600 * 1024)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ i >> 9) }
        let marker = Array("ข้อความลับในไฟล์สแกน".utf8)
        bytes.replaceSubrange(0..<marker.count, with: marker)
        let file = o.dir.file("scan.pdf")
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        let a = try o.a.attach(id, file: file)
        #expect(a.chunks == 3 && a.size == bytes.count && a.hash.count == 64 && a.root.count == 64)
        #expect(try o.a.attachmentStatus(id).map(\.complete) == [true])
        // The default space's key when spaces hold keys, else the node-local key.
        #expect(a.key == "node" || a.key.hasPrefix("space:"))
        #expect(o.a.attachmentChunksPresent(a) == [0, 1, 2])
        let chunk0 = try Data(contentsOf: URL(fileURLWithPath: o.a.attachmentDirectory(a) + "/0"))
        #expect(chunk0.range(of: Data(marker)) == nil)
        #expect(try o.a.readAttachment(a) == bytes)
        if a.key == "node" { #expect(mode(o.a.dataDirectory.path + "/attachment.key") == 0o600) }
        // Attaching the same content again lists it once.
        try o.a.attach(id, file: file)
        #expect(try o.a.letter(id).attachments.map(\.hash) == [a.hash])
        // A modified chunk is detected.
        var damaged = [UInt8](chunk0)
        damaged[100] ^= 1
        try Data(damaged).write(to: URL(fileURLWithPath: o.a.attachmentDirectory(a) + "/0"))
        #expect(throws: NodeError.self) { try o.a.readAttachment(a) }
    }

    @Test func reservationsExpireAndCancelledNumbersStay() throws {
        let o = try Offices()
        defer { o.close() }
        let (k, f) = try fixture("external")
        try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f))
        let r = try o.a.reserve(.send, until: o.clock.now + 3_600_000, purpose: "หนังสือของผู้ว่าราชการ")
        #expect(r.number == 2)
        let r3 = try o.a.reserve(.send, until: o.clock.now + 3_600_000, purpose: "สำรอง")
        // Use reservation 2.
        let id = try o.a.createLetter(kind: k, fields: f)
        let used = try o.a.sendLetter(id, reserved: 2).allocation
        let usedNumber = try o.a.letter(id).fields["ที่"]
        #expect(used.number == 2 && usedNumber == "นว 0017/2")
        try o.a.cancelNumber(.send, number: 1, reason: "ส่งผิดหน่วยงาน")
        #expect(throws: NodeError.self) { try o.a.cancelNumber(.send, number: 1, reason: "ซ้ำ") }
        #expect(throws: NodeError.self) { try o.a.cancelNumber(.send, number: 9, reason: "ไม่มี") }
        o.clock.advance(2 * 3_600_000)
        let lines = try #require(try o.a.register(.send, year: 2568)).state.lines
        #expect(lines.map(\.state) == [.cancelled, .used, .expired])
        #expect(lines[0].note == "ส่งผิดหน่วยงาน")
        #expect(r3.number == 3)
        // An expired reservation cannot be used; the next letter takes 4.
        #expect(throws: NodeError.self) { try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f), reserved: 3) }
        #expect(try o.a.sendLetter(try o.a.createLetter(kind: k, fields: f)).allocation.number == 4)
    }

    @Test func concurrentAllocationsInOneNodeNeverCollide() throws {
        let o = try Offices()
        defer { o.close() }
        let (k, f) = try fixture("external")
        let ids = try (0..<16).map { _ in try o.a.createLetter(kind: k, fields: f) }
        // A second handle on the same data directory, as a second `saraban` process would be.
        let a2 = try Node.open(dataDir: o.a.dataDirectory, logger: quiet, now: o.clock.closure)
        defer { a2.close() }
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: ids.count) { i in
            do { try (i % 2 == 0 ? o.a : a2).sendLetter(ids[i]) } catch { errors.add("\(error)") }
        }
        #expect(errors.all.isEmpty)
        let reg = try #require(try o.a.register(.send, year: 2568))
        #expect(reg.state.lines.map(\.number) == Array(1...16))
        #expect(try o.a.registers().count == 1)
        #expect(Set(try o.a.letters().compactMap { $0.fields["ที่"] }).count == 16)
    }

    @Test func thaiDatesRender() throws {
        let d = ThaiDate(unixMillis: thaiMillis(2025, 6, 13, 0, 5))
        #expect(d.formatted() == "13 มิถุนายน 2568")
        #expect(d.formatted(thaiDigits: true) == "๑๓ มิถุนายน ๒๕๖๘")
        // 23:30 UTC on 12 June is already 13 June in Thailand.
        #expect(ThaiDate(unixMillis: thaiMillis(2025, 6, 13, 6, 30) - 7 * 3_600_000).formatted() == "12 มิถุนายน 2568")
        let o = try Offices()
        defer { o.close() }
        let id = try o.a.createLetter(kind: .external, fields: [("วันที่", "2025-06-13")])
        #expect(try o.a.letter(id).fields["วันที่"] == "13 มิถุนายน 2568")
        let id2 = try o.a.createLetter(kind: .external, fields: [("วันที่", "๑ ต.ค. ๒๕๖๘")])
        #expect(try o.a.letter(id2).fields["วันที่"] == "1 ตุลาคม 2568")
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) {
        lock.lock()
        list.append(s)
        lock.unlock()
    }
    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }
}

/// The read cache behind the web app's lists and registers keeps letters without their body text
/// (no list shows it, and it is most of a real letter's bytes); a whole letter is still read
/// whole, and a write is seen at the next version.
@Suite struct CachedLettersTests {
    @Test func listViewsLeaveTheBodyOutAndTheLetterKeepsIt() throws {
        let o = try Offices()
        defer { o.close() }
        let body = String(repeating: "จึงเรียนมาเพื่อโปรดทราบ ", count: 200)
        let id = try o.a.createLetter(kind: .internal, fields: [("เรื่อง", "ขออนุมัติ"), ("ข้อความ", body)])
        let cached = try o.a.cachedLetters(version: try o.a.contentVersion())
        let view = try #require(cached.first { $0.id == id })
        #expect(view.fields[LetterField.subject.rawValue] == "ขออนุมัติ")
        #expect(view.fields[LetterField.body.rawValue] == nil)
        #expect(try o.a.letter(id).fields[LetterField.body.rawValue] == body)
        try o.a.editLetter(id, field: "เรื่อง", value: "ขออนุมัติเดินทาง")
        let again = try o.a.cachedLetters(version: try o.a.contentVersion())
        #expect(again.first { $0.id == id }?.fields[LetterField.subject.rawValue] == "ขออนุมัติเดินทาง")
    }
}
