import Testing
import SarabanCore
@testable import SarabanOffice

@Suite struct ThaiDateTests {
    @Test func formatsAndParsesBuddhistEraDates() throws {
        let d = try ThaiDate(year: 2568, month: 6, day: 13)
        #expect(d.formatted() == "13 มิถุนายน 2568")
        #expect(d.formatted(thaiDigits: true) == "๑๓ มิถุนายน ๒๕๖๘")
        #expect(d.abbreviated() == "13 มิ.ย. 68")
        #expect(d.iso == "2025-06-13")
        #expect(try ThaiDate(parsing: "๑๓ มิถุนายน ๒๕๖๘") == d)
        #expect(try ThaiDate(parsing: "13 มิ.ย. 2568") == d)
        #expect(try ThaiDate(parsing: "2025-06-13") == d)
    }

    /// The forms clerks type (issue 14): slashes, abbreviated and full months, Thai digits, พ.ศ., ISO.
    @Test func parsesTheDateFormsClerksWrite() throws {
        let d = try ThaiDate(year: 2569, month: 12, day: 6)
        for text in ["6/12/2569", "06/12/2569", "6/12/69", "๖/๑๒/๒๕๖๙", "6 ธ.ค. 2569", "6 ธค 2569", "6 ธันวาคม 2569",
                     "๖ ธันวาคม ๒๕๖๙", "6 ธันวาคม พ.ศ. 2569", "  6  ธันวาคม 2569 ", "2026-12-06"]
        {
            #expect(try ThaiDate(parsing: text) == d, "\(text)")
        }
        #expect(try ThaiDate(parsing: "29/2/2567") == ThaiDate(year: 2567, month: 2, day: 29))
        #expect(throws: OfficeError.self) { try ThaiDate(parsing: "29/2/2568") }
        #expect(throws: OfficeError.self) { try ThaiDate(parsing: "6/13/2569") }
        #expect(throws: OfficeError.self) { try ThaiDate(parsing: "6/12/569") }
        #expect(throws: OfficeError.self) { try ThaiDate(parsing: "6//2569") }
    }

    /// `6 ธันวาคม 2026` was stored as year 1483 BE without a word; now it is refused, naming 2569.
    @Test func refusesChristianEraYearsNamingTheBuddhistEraYear() throws {
        for text in ["6 ธันวาคม 2026", "6/12/2026", "๖ ธ.ค. ๒๐๒๖"] {
            do {
                let d = try ThaiDate(parsing: text)
                Issue.record("\(text) parsed as \(d)")
            } catch {
                #expect(error.code == .invalidDate)
                #expect(error.thai.contains("2569") && error.english.contains("2569"), "\(error)")
                #expect(error.english.contains("6 ธันวาคม 2569") && error.english.contains("2026-12-06"), "\(error)")
            }
        }
        // A BE year written in ISO form.
        do {
            _ = try ThaiDate(parsing: "2569-12-06")
            Issue.record("2569-12-06 parsed")
        } catch {
            #expect(error.english.contains("2026-12-06"), "\(error)")
        }
        #expect(try ThaiDate(parsing: "1/1/2400").year == 2400)
    }

    @Test func convertsInstantsInThailandsTimeZone() {
        // 2024-12-31T17:30:00Z is 1 January 2568, 00:30 in Bangkok.
        let ms: Int64 = 1_735_666_200_000
        #expect(ThaiDate(unixMillis: ms).formatted() == "1 มกราคม 2568")
        #expect(ThaiDate(unixMillis: ms, utcOffsetSeconds: 0).formatted() == "31 ธันวาคม 2567")
        // Leap day 2024 (2567 BE).
        #expect(ThaiDate(unixMillis: 1_709_164_800_000, utcOffsetSeconds: 0).formatted() == "29 กุมภาพันธ์ 2567")
    }

    @Test func rejectsImpossibleDatesWithThaiAndEnglishMessages() {
        #expect(throws: OfficeError.self) { try ThaiDate(year: 2568, month: 2, day: 29) }
        #expect(throws: OfficeError.self) { try ThaiDate(year: 2568, month: 13, day: 1) }
        do {
            _ = try ThaiDate(parsing: "สามสิบ กุมภา")
            Issue.record("parsed nonsense")
        } catch {
            #expect(error.thai.contains("6/12/2569") && error.english.contains("6 ธันวาคม 2569") && error.english.contains("2026-12-06"))
        }
    }
}

@Suite struct LetterTests {
    @Test func validatesRequiredFieldsPerKind() {
        let ok: [String: String] = [
            "เรื่อง": "ขอเชิญประชุม", "เรียน": "นายอำเภอ", "ข้อความ": "ด้วย...", "คำลงท้าย": "ขอแสดงความนับถือ",
            "ผู้ลงนาม": "นายสมมติ ใจดี", "ตำแหน่ง": "นายกองค์การบริหารส่วนตำบล",
        ]
        #expect(validateLetter(kind: .external, fields: ok).isEmpty)
        var missing = ok
        missing["เรียน"] = " "
        let issues = validateLetter(kind: .external, fields: missing)
        #expect(issues.map(\.code) == [.missingField])
        #expect(issues[0].thai.contains("เรียน") && issues[0].english.contains("salutation"))
        #expect(validateLetter(kind: .directive, fields: ["ประเภท": "ประกาศ", "เรื่อง": "x", "ข้อความ": "y", "ผู้ลงนาม": "z", "ตำแหน่ง": "w"])
            .map(\.code) == [.invalidValue])
    }

    @Test func refusesTopSecretAndParsesClasses() throws {
        #expect(try Secrecy(parsing: "ลับ") == .confidential)
        #expect(try Urgency(parsing: "ด่วนที่สุด") == .mostUrgent)
        #expect(throws: OfficeError(.topSecretRefused,
                                    th: "หนังสือลับที่สุดต้องไม่ส่งผ่านระบบสารบรรณอิเล็กทรอนิกส์ (ระเบียบงานสารบรรณ ข้อ 29) ให้ดำเนินการทางเอกสาร",
                                    en: "top-secret letters are kept out of e-Saraban by the regulation (clause 29); handle it on paper")) {
            try Secrecy(parsing: "ลับที่สุด")
        }
    }

    @Test func statusTransitionsFollowTheLifecycle() throws {
        try LetterStatus.draft.checkTransition(to: .registered)
        try LetterStatus.registered.checkTransition(to: .sent)
        #expect(throws: OfficeError.self) { try LetterStatus.closed.checkTransition(to: .draft) }
        #expect(throws: OfficeError.self) { try LetterStatus.draft.checkTransition(to: .sent) }
    }

    @Test func canonicalBytesChangeWithAnySignedFieldOrAttachment() {
        let f = ["เรื่อง": "ขอเชิญประชุม\tวาระ", "ข้อความ": "บรรทัด 1\nบรรทัด 2", "สถานะ": "ร่าง"]
        let base = canonicalLetterBytes(kind: .external, fields: f, attachmentHashes: ["aa", "bb"])
        #expect(canonicalLetterBytes(kind: .external, fields: f, attachmentHashes: ["bb", "aa"]) == base)
        var g = f
        g["สถานะ"] = "ส่งแล้ว"  // status is not signed
        #expect(canonicalLetterBytes(kind: .external, fields: g, attachmentHashes: ["aa", "bb"]) == base)
        g["เรื่อง"] = "ขอเชิญประชุม วาระ"
        #expect(canonicalLetterBytes(kind: .external, fields: g, attachmentHashes: ["aa", "bb"]) != base)
        #expect(canonicalLetterBytes(kind: .external, fields: f, attachmentHashes: ["aa"]) != base)
        #expect(changedSignedFields(signed: f, current: g) == ["เรื่อง"])
    }
}

@Suite struct RegisterTests {
    let owner = ReplicaID(hi: 7, lo: 7)
    let other = ReplicaID(hi: 8, lo: 8)

    func entry(_ e: RegisterEvent, by a: ReplicaID, seq: UInt64) -> RegisterEntry {
        RegisterEntry(value: .string(e.encoded), stamp: Stamp(op: OpID(counter: seq, replica: a), change: ChangeID(author: a, seq: seq), time: 0))
    }

    @Test func numbersFollowOnWithoutGapsAndOnlyTheOwnerCounts() throws {
        let d = try ThaiDate(year: 2568, month: 6, day: 13)
        let events = [
            entry(.allocate(number: 1, letter: "1-aa", date: d, time: "09:15", summary: "ขอเชิญ\tประชุม"), by: owner, seq: 1),
            entry(.allocate(number: 2, letter: "2-aa", date: d, time: "09:20", summary: "x"), by: other, seq: 1),  // not the owner
            entry(.allocate(number: 2, letter: "3-aa", date: d, time: "10:00", summary: "y"), by: owner, seq: 2),
            entry(.allocate(number: 2, letter: "4-aa", date: d, time: "10:01", summary: "dup"), by: owner, seq: 3),  // out of sequence
            entry(.reserve(number: 3, until: 1_000, purpose: "คำสั่งแต่งตั้ง"), by: owner, seq: 4),
            entry(.reserve(number: 4, until: 5_000, purpose: "สำรอง"), by: owner, seq: 5),
            entry(.cancel(number: 2, reason: "พิมพ์ผิด"), by: owner, seq: 6),
        ]
        let s = RegisterState(events: events, owner: owner, now: 2_000)
        #expect(s.lines.map(\.number) == [1, 2, 3, 4])
        #expect(s.lines.map(\.state) == [.used, .cancelled, .expired, .reserved])
        #expect(s.lines[0].summary == "ขอเชิญ\tประชุม")
        #expect(s.ignored.count == 2)
        #expect(s.nextNumber == 5)
        #expect(s.collisionsAndGaps.collisions.isEmpty && s.collisionsAndGaps.gaps.isEmpty)
    }

    @Test func letterNumbersAndYears() throws {
        #expect(RegisterBook.send.letterNumber(123, officeCode: "มท 0808.2", year: 2568) == "มท 0808.2/123")
        #expect(RegisterBook.circular.letterNumber(99, officeCode: "ศธ 0527.10", year: 2568, thaiDigits: true) == "ศธ ๐๕๒๗.๑๐/ว ๙๙")
        #expect(RegisterBook.order.letterNumber(5, officeCode: "x", year: 2568) == "5/2568")
        let oct = try ThaiDate(year: 2567, month: 10, day: 1)
        #expect(RegisterYearPolicy.calendar.year(of: oct) == 2567)
        #expect(RegisterYearPolicy.fiscal(startMonth: 10).year(of: oct) == 2568)
        #expect(RegisterEvent(encoded: "allocate\t1\tx") == nil)
        #expect(RegisterEvent(encoded: RegisterEvent.cancel(number: 3, reason: "a\\b\nc").encoded) == .cancel(number: 3, reason: "a\\b\nc"))
    }
}
