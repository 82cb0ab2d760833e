import SarabanCore
import Testing
@testable import SarabanOffice

/// The register as the official form: columns, CSV for Thai Excel, secret subjects withheld,
/// reservations in Thai time.
@Suite struct RegisterFormTests {
    let owner = ReplicaID(hi: 1, lo: 1)

    func state(_ events: [RegisterEvent], now: Int64 = 0) -> RegisterState {
        RegisterState(
            events: events.enumerated().map { i, e in
                RegisterEntry(
                    value: .string(e.encoded),
                    stamp: Stamp(
                        op: OpID(counter: UInt64(i + 1), replica: owner), change: ChangeID(author: owner, seq: UInt64(i + 1)),
                        time: 0))
            }, owner: owner, now: now)
    }

    @Test func theReceiveBookPrintsTheFormsColumnsWithASecretSubjectWithheld() throws {
        let d = try ThaiDate(year: 2569, month: 12, day: 6)
        // 2026-12-31T16:59:00Z is 31 ธันวาคม 2569 23:59 in Thailand.
        let until: Int64 = 1_798_736_340_000
        let s = state([
            .allocate(number: 1, letter: "5-aa", date: d, time: "10:42", summary: "ขอเชิญประชุม"),
            .allocate(number: 2, letter: "6-aa", date: d, time: "10:50", summary: "ลับเฉพาะ"),
            .reserve(number: 3, until: until, purpose: "รอหนังสือจังหวัด"),
            .allocate(number: 4, letter: "7-aa", date: d, time: "11:00", summary: "มี, จุลภาค \"อัญประกาศ\""),
            .cancel(number: 4, reason: "ลงซ้ำ"),
        ], now: until - 1)
        let letters: [String: RegisterForm.Letter] = [
            "5-aa": .init(letterNumber: "นว 0017/1", date: "5 ธันวาคม 2569", from: "จังหวัด", to: "นายก", subject: "ขอเชิญประชุม",
                          secrecy: .none, action: "→ ปลัด: ทราบ", note: ""),
            "6-aa": .init(letterNumber: "กห 1/ลับ 9", date: "4 ธันวาคม 2569", from: "กองทัพ", to: "", subject: "ลับเฉพาะ",
                          secrecy: .confidential, action: "", note: "ชั้นความลับ ลับ"),
        ]
        let form = RegisterForm(book: .receive, year: 2569, office: "อบต.", code: "นว 0318", state: s, letters: letters)
        #expect(RegisterForm.columns(.receive).prefix(8) == ["เลขทะเบียนรับ", "ที่", "ลงวันที่", "จาก", "ถึง", "เรื่อง", "การปฏิบัติ", "หมายเหตุ"])
        #expect(form.cells(form.rows[0]) == [
            "1", "นว 0017/1", "5 ธันวาคม 2569", "จังหวัด", "นายก", "ขอเชิญประชุม", "→ ปลัด: ทราบ", "", "6 ธันวาคม 2569", "10:42",
        ])
        #expect(form.rows[1].subject == "ลับ" && form.rows[1].withheld)
        #expect(form.rows[2].note == "จองไว้ถึง 31 ธันวาคม 2569 23:59 น.; รอหนังสือจังหวัด" && form.rows[2].registered == nil)
        #expect(form.rows[3].note == "ยกเลิก: ลงซ้ำ")
        let cleared = RegisterForm(
            book: .receive, year: 2569, office: "อบต.", code: "", state: s, letters: letters, clearance: .confidential)
        #expect(cleared.rows[1].subject == "ลับเฉพาะ" && !cleared.rows[1].withheld)

        let csv = form.csv()
        #expect(Array(csv.utf8.prefix(3)) == [0xEF, 0xBB, 0xBF])
        #expect(!csv.contains("ลับเฉพาะ"))
        #expect(csv.contains("\r\n4,,6 ธันวาคม 2569,,,\"มี, จุลภาค \"\"อัญประกาศ\"\"\",,ยกเลิก: ลงซ้ำ,6 ธันวาคม 2569,11:00\r\n"))
        #expect(csv.split(separator: "\r\n", omittingEmptySubsequences: false).count == 6)  // header, 4 rows, "" after the last CRLF
        #expect(form.csv(thaiDigits: true).contains("๑,นว ๐๐๑๗/๑"))
    }

    @Test func theSendBookNumbersWithTheOfficesCodeAndAnExpiredReservationSaysSo() throws {
        let d = try ThaiDate(year: 2569, month: 12, day: 6)
        let s = state([
            .allocate(number: 1, letter: "5-aa", date: d, time: "10:42", summary: "ขอเชิญ"),
            .reserve(number: 2, until: 1_000, purpose: ""),
        ], now: 2_000)
        let form = RegisterForm(book: .circular, year: 2569, office: "จังหวัด", code: "นว 0017", state: s, letters: [:])
        #expect(RegisterForm.columns(.circular)[0] == "เลขทะเบียนส่ง")
        #expect(form.rows[0].letterNumber == "นว 0017/ว 1" && form.rows[0].from == "จังหวัด" && form.rows[0].subject == "ขอเชิญ")
        #expect(form.rows[1].state == .expired && form.rows[1].note.hasPrefix("หมดอายุการจอง (จองไว้ถึง 1 มกราคม 2513 07:00 น.)"))
        #expect(ThaiDate.clock(unixMillis: 0) == "07:00" && ThaiDate.clock(unixMillis: -1) == "06:59")
    }
}
