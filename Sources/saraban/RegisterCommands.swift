import ArgumentParser
import Foundation
import SarabanCore
import SarabanNode
import SarabanOffice

// MARK: - register

struct RegisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register",
        abstract: "Registers (ทะเบียนหนังสือ): receive (รับ), send (ส่ง), circular (ว), order (คำสั่ง), per year.",
        discussion: """
            Only this node numbers its own registers; numbers are gapless and never reused. Cancelled numbers stay
            listed as ยกเลิก; reservations that were not used expire visibly. The year is the Buddhist Era year,
            calendar by default (`"register_year": "fiscal"` in config.json for fiscal years starting 1 October).
            """,
        subcommands: [Show.self, Reserve.self, Cancel.self])

    static func book(_ text: String) throws(NodeError) -> RegisterBook {
        do { return try RegisterBook(parsing: text) } catch { throw NodeError(error) }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a register as the official form: one row per number.",
            discussion: """
                Columns: เลขทะเบียนรับ (ส่ง), ที่, ลงวันที่, จาก, ถึง, เรื่อง, การปฏิบัติ (where the letter went, the receipts,
                the routing), หมายเหตุ, then the date and time the number was given (Thai time, BE). --csv writes UTF-8
                with a byte-order mark, as Thai Excel needs. The subject of a ลับ or ลับมาก letter is withheld (shown as
                its class) unless --clearance covers it.
                """)

        @OptionGroup var options: DataOptions
        @Argument(help: "รับ/receive, ส่ง/send, ว/circular, คำสั่ง/order.") var book: String
        @Option(help: "The BE year (default: the current register year).") var year: Int?
        @Option(help: "Another office's register (its node id or replica hex), as received by sync.") var owner: String?
        @Option(help: "Show subjects of secret letters up to this class (ลับ, ลับมาก).") var clearance: String?
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: "Print CSV (UTF-8 with a byte-order mark, header row).") var csv = false
        @Flag(name: .customLong("thai-digits"), help: "Print numbers and dates with Thai digits.") var thaiDigits = false

        func run() async throws {
            let b = try RegisterCommand.book(book)
            let cleared = try clearance.map { c throws(NodeError) in try parseSecrecy(c) } ?? .none
            try options.withNode { node in
                let y = year ?? node.registerYear(at: node.currentMillis)
                var ownerID: ReplicaID?
                if let owner {
                    ownerID = ReplicaID(hex: owner) ?? ReplicaID(hex: String(owner.prefix(32)))
                    if ownerID == nil, let r = try node.registers().first(where: { $0.owner.hex.hasPrefix(owner) }) {
                        ownerID = r.owner
                    }
                    guard ownerID != nil else { throw NodeError(.unknownDocument, "no register owned by \(owner) on this node") }
                }
                let reg = try node.register(b, year: y, owner: ownerID)
                let form = try node.registerForms.form(b, year: y, owner: ownerID, clearance: cleared)
                let rows = form.rows
                if json {
                    struct Out: Encodable {
                        var book: String
                        var bookThai: String
                        var year: Int
                        var office: String?
                        var owner: String?
                        var register: String?
                        var next: Int
                        var columns: [String]
                        var lines: [RegisterRowJSON]
                        var ignored: [String]
                    }
                    try Output.json(
                        Out(
                            book: b.english, bookThai: b.thaiName, year: y, office: reg?.office, owner: reg?.owner.hex,
                            register: reg?.id.description, next: reg?.state.nextNumber ?? 1, columns: RegisterForm.columns(b),
                            lines: rows.map(RegisterRowJSON.init), ignored: form.ignored))
                    return
                }
                if csv {
                    FileHandle.standardOutput.write(Data(form.csv(thaiDigits: thaiDigits).utf8))
                    return
                }
                let t = thaiDigits
                Output.line("\(b.thaiName) ปี \(t ? ThaiDigits.convert(String(y)) : String(y))\(reg.map { "  \($0.office)" } ?? "")")
                guard !rows.isEmpty else {
                    Output.line("(ยังไม่มีรายการ / no entries yet)")
                    return
                }
                var table = Table(RegisterForm.columns(b), maxWidths: [nil, nil, nil, 30, 30, 40, 40, 40, nil, nil])
                for r in rows { table.add(form.cells(r, thaiDigits: t)) }
                for l in table.render() { Output.line(l) }
                for i in form.ignored { Output.note("ignored register event: \(i)") }
            }
        }
    }

    struct Reserve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set the next number aside (จองเลข); use it with `letter send DOC --number N` before it expires.")

        @OptionGroup var options: DataOptions
        @Argument(help: "รับ/receive, ส่ง/send, ว/circular, คำสั่ง/order.") var book: String
        @Option(help: "When the reservation expires: a duration (90m, 8h, 3d), a date (2025-06-13, 13 มิถุนายน 2568: end of that day) or ms since 1970. Default 1d.")
        var until: String = "1d"
        @Option(help: "What it is reserved for.") var purpose: String = ""

        func run() async throws {
            let b = try RegisterCommand.book(book)
            try options.withNode { node in
                let untilMs = try parseUntil(until, now: node.currentMillis)
                let r = try node.reserve(b, until: untilMs, purpose: purpose)
                Output.line("\(r.number)")
                Output.note("reserved \(b.thaiName) \(r.year) number \(r.number) until \(Output.time(untilMs))")
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel a number: it stays in the register marked ยกเลิก, never reused.")

        @OptionGroup var options: DataOptions
        @Argument(help: "รับ/receive, ส่ง/send, ว/circular, คำสั่ง/order.") var book: String
        @Argument(help: "The number.") var number: Int
        @Option(help: "Why (required).") var reason: String
        @Option(help: "The BE year (default: the current register year).") var year: Int?

        func run() async throws {
            let b = try RegisterCommand.book(book)
            try options.withNode { node in
                try node.cancelNumber(b, year: year, number: number, reason: reason)
            }
        }
    }
}

/// `90m`, `8h`, `3d`, an ISO or Thai date (end of that day, Thai time), or ms since 1970.
func parseUntil(_ text: String, now: Int64) throws(NodeError) -> Int64 {
    let t = text.trimmingCharacters(in: .whitespaces)
    if let last = t.last, let n = Int64(t.dropLast()), n > 0 {
        switch last {
        case "m": return now + n * 60_000
        case "h": return now + n * 3_600_000
        case "d": return now + n * 86_400_000
        default: break
        }
    }
    if let ms = Int64(t), ms > 1_000_000_000_000 { return ms }
    if let d = try? ThaiDate(parsing: t) {
        // 23:59:59.999 of that day in Thai time (UTC+7).
        var days: Int64 = 0
        let y = d.ceYear, m = d.month
        let yy = Int64(m <= 2 ? y - 1 : y)
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let mp = Int64((m + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(d.day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        days = era * 146_097 + doe - 719_468
        return (days + 1) * 86_400_000 - 7 * 3_600_000 - 1
    }
    throw NodeError(.invalidArgument, "cannot read --until \(text.debugDescription): use 8h, 3d, 2025-06-13 or 13 มิถุนายน 2568")
}

struct RegisterRowJSON: Encodable {
    var number: Int
    var state: String
    var stateEnglish: String
    /// The date the number was given (ISO) and in Thai, and the time (Thai time).
    var date: String?
    var dateThai: String?
    var time: String?
    var letter: String?
    var letterNumber: String?
    /// ลงวันที่: the letter's own date, as written.
    var letterDate: String?
    var subject: String
    var withheld: Bool
    var secrecy: String
    var from: String?
    var to: String?
    var action: String
    var note: String
    var reservedUntil: Int64?

    init(_ r: RegisterForm.Row) {
        number = r.number
        state = r.state.rawValue
        switch r.state {
        case .used: stateEnglish = "used"
        case .reserved: stateEnglish = "reserved"
        case .expired: stateEnglish = "expired"
        case .cancelled: stateEnglish = "cancelled"
        }
        date = r.registered?.iso
        dateThai = r.registered?.formatted()
        time = r.time
        reservedUntil = r.reservedUntil
        letter = r.letter
        letterNumber = r.letterNumber.isEmpty ? nil : r.letterNumber
        letterDate = r.date.isEmpty ? nil : r.date
        subject = r.subject
        withheld = r.withheld
        secrecy = r.secrecy.rawValue
        from = r.from.isEmpty ? nil : r.from
        to = r.to.isEmpty ? nil : r.to
        action = r.action
        note = r.note
    }
}
