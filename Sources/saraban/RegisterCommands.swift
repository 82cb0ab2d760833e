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
        static let configuration = CommandConfiguration(abstract: "Show a register, one line per number.")

        @OptionGroup var options: DataOptions
        @Argument(help: "รับ/receive, ส่ง/send, ว/circular, คำสั่ง/order.") var book: String
        @Option(help: "The BE year (default: the current register year).") var year: Int?
        @Option(help: "Another office's register (its node id or replica hex), as received by sync.") var owner: String?
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: "Print CSV (UTF-8, header row).") var csv = false
        @Flag(name: .customLong("thai-digits"), help: "Print numbers and dates with Thai digits.") var thaiDigits = false

        func run() async throws {
            let b = try RegisterCommand.book(book)
            let node = try options.openNode()
            defer { node.close() }
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
            let letters = Dictionary(
                uniqueKeysWithValues: try node.letters().map { ($0.id.description, $0) })
            let rows: [RegisterRowJSON] = (reg?.state.lines ?? []).map { l in
                RegisterRowJSON(l, book: b, code: reg?.code ?? "", year: y, letter: l.letter.flatMap { letters[$0] })
            }
            if json {
                struct Out: Encodable {
                    var book: String
                    var bookThai: String
                    var year: Int
                    var office: String?
                    var owner: String?
                    var register: String?
                    var next: Int
                    var lines: [RegisterRowJSON]
                    var ignored: [String]
                }
                try Output.json(
                    Out(
                        book: b.english, bookThai: b.thaiName, year: y, office: reg?.office, owner: reg?.owner.hex,
                        register: reg?.id.description, next: reg?.state.nextNumber ?? 1, lines: rows,
                        ignored: reg?.state.ignored ?? []))
                return
            }
            let t = thaiDigits
            func d(_ s: String) -> String { t ? ThaiDigits.convert(s) : s }
            if csv {
                Output.line("เลขทะเบียน,สถานะ,วันที่,เวลา,ที่,เรื่อง,จาก,ถึง,หมายเหตุ,หนังสือ")
                for r in rows {
                    Output.line(
                        [d(String(r.number)), r.state, r.dateThai.map { d($0) } ?? "", r.time.map { d($0) } ?? "",
                            r.letterNumber.map { d($0) } ?? "", r.subject, r.from ?? "", r.to ?? "", r.note, r.letter ?? ""]
                            .map(csvField).joined(separator: ","))
                }
                return
            }
            Output.line("\(b.thaiName) ปี \(d(String(y)))\(reg.map { "  \($0.office)" } ?? "")")
            guard reg != nil else {
                Output.line("(ยังไม่มีรายการ / no entries yet)")
                return
            }
            for r in rows {
                var line = "\(d(String(r.number)))  "
                switch r.stateEnglish {
                case "used":
                    line += "\(r.dateThai.map { d($0) } ?? "")  \(r.time.map { d($0) + " น." } ?? "")"
                    if let n = r.letterNumber { line += "  ที่ \(d(n))" }
                    line += "  \(r.subject)"
                case "cancelled": line += "ยกเลิก  \(r.note)"
                case "reserved": line += "จองไว้ถึง \(r.reservedUntil.map(Output.time) ?? "")  \(r.note)"
                default: line += "หมดอายุการจอง (expired reservation)  \(r.note)"
                }
                Output.line(line)
            }
            for i in reg?.state.ignored ?? [] { Output.note("ignored register event: \(i)") }
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
            let node = try options.openNode()
            defer { node.close() }
            let untilMs = try parseUntil(until, now: node.currentMillis)
            let r = try node.reserve(b, until: untilMs, purpose: purpose)
            Output.line("\(r.number)")
            Output.note("reserved \(b.thaiName) \(r.year) number \(r.number) until \(Output.time(untilMs))")
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
            let node = try options.openNode()
            defer { node.close() }
            try node.cancelNumber(b, year: year, number: number, reason: reason)
        }
    }
}

func csvField(_ s: String) -> String {
    if s.contains(",") || s.contains("\"") || s.contains("\n") {
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
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
    var date: String?
    var dateThai: String?
    var time: String?
    var letter: String?
    var letterNumber: String?
    var subject: String
    var from: String?
    var to: String?
    var note: String
    var reservedUntil: Int64?

    init(_ l: RegisterLine, book: RegisterBook, code: String, year: Int, letter v: LetterView?) {
        number = l.number
        state = l.state.rawValue
        switch l.state {
        case .used: stateEnglish = "used"
        case .reserved: stateEnglish = "reserved"
        case .expired: stateEnglish = "expired"
        case .cancelled: stateEnglish = "cancelled"
        }
        date = l.date?.iso
        dateThai = l.date?.formatted()
        let reserved = l.state == .reserved || l.state == .expired
        time = reserved ? nil : l.time
        reservedUntil = reserved ? l.time.flatMap { Int64($0) } : nil
        letter = l.letter
        if book == .receive {
            letterNumber = v?.fields[LetterField.number.rawValue]
        } else if l.state == .used || l.state == .cancelled, l.letter != nil || l.state == .used {
            letterNumber = book.letterNumber(l.number, officeCode: code, year: year)
        }
        subject = l.summary.isEmpty ? (v?.fields[LetterField.subject.rawValue] ?? "") : l.summary
        from = v?.fields[LetterField.sender.rawValue] ?? v?.fields[LetterField.agency.rawValue]
        to = v?.fields[LetterField.recipient.rawValue] ?? v?.fields[LetterField.salutation.rawValue]
        note = l.note
    }
}
