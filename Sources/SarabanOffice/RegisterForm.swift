/// A register as the official forms print it (ระเบียบงานสารบรรณ: ทะเบียนหนังสือรับ, ทะเบียนหนังสือส่ง):
/// one row per number, in the form's columns, folded from the register's lines and what the node
/// knows of each letter. Pure: the node supplies the letters; nothing here reads or writes.
public struct RegisterForm: Sendable {
    /// What the node knows of the letter on a line.
    public struct Letter: Hashable, Sendable {
        /// ที่ as written on the letter (the sender's number, for a received one).
        public var letterNumber: String?
        /// ลงวันที่ as written on the letter.
        public var date: String?
        public var from: String
        public var to: String
        public var subject: String
        public var secrecy: Secrecy
        /// การปฏิบัติ: where it went, who answered, the routing and the outcome.
        public var action: String
        public var note: String

        public init(
            letterNumber: String?, date: String?, from: String, to: String, subject: String, secrecy: Secrecy,
            action: String, note: String
        ) {
            self.letterNumber = letterNumber
            self.date = date
            self.from = from
            self.to = to
            self.subject = subject
            self.secrecy = secrecy
            self.action = action
            self.note = note
        }
    }

    public struct Row: Hashable, Sendable {
        /// เลขทะเบียนรับ / เลขทะเบียนส่ง.
        public var number: Int
        public var state: RegisterLine.State
        public var letterNumber: String
        /// ลงวันที่ (BE, as the letter gives it).
        public var date: String
        public var from: String
        public var to: String
        /// เรื่อง, or the secrecy class when withheld.
        public var subject: String
        public var action: String
        public var note: String
        /// When the number was given (Thai time); nil for reservations.
        public var registered: ThaiDate?
        public var time: String?
        /// For a reservation: when it expires (ms since 1970).
        public var reservedUntil: Int64?
        public var secrecy: Secrecy
        /// The subject is withheld: a letter above the viewer's clearance.
        public var withheld: Bool
        /// The letter's document id (JSON only: never printed in the form).
        public var letter: String?
    }

    public var book: RegisterBook
    public var year: Int
    public var office: String
    public var rows: [Row]
    /// Register events ignored by the fold (written by another node, out of sequence…).
    public var ignored: [String]

    /// The form's columns: เลขทะเบียนรับ (or ส่ง), ที่, ลงวันที่, จาก, ถึง, เรื่อง, การปฏิบัติ, หมายเหตุ,
    /// then the date and time the number was given (the form's day headings, as columns).
    public static func columns(_ book: RegisterBook) -> [String] {
        [book == .receive ? "เลขทะเบียนรับ" : "เลขทะเบียนส่ง", "ที่", "ลงวันที่", "จาก", "ถึง", "เรื่อง", "การปฏิบัติ", "หมายเหตุ",
            "วันที่ลงทะเบียน", "เวลา"]
    }

    /// - Parameters:
    ///   - state: the register folded (``RegisterState``).
    ///   - code: the office's letter code, for the ที่ of its own books.
    ///   - letters: what the node knows of each letter, by document id.
    ///   - clearance: the class the viewer may see; subjects of letters above it are withheld.
    public init(
        book: RegisterBook, year: Int, office: String, code: String, state: RegisterState, letters: [String: Letter],
        clearance: Secrecy = .none
    ) {
        self.book = book
        self.year = year
        self.office = office
        ignored = state.ignored
        rows = state.lines.map { l in
            let info = l.letter.flatMap { letters[$0] }
            let own = book == .receive ? nil : book.letterNumber(l.number, officeCode: code, year: year)
            var row = Row(
                number: l.number, state: l.state, letterNumber: own ?? info?.letterNumber ?? "",
                date: info?.date ?? l.date?.formatted() ?? "", from: info?.from ?? (book == .receive ? "" : office),
                to: info?.to ?? "", subject: info?.subject ?? l.summary, action: info?.action ?? "", note: info?.note ?? "",
                registered: l.date, time: l.time, reservedUntil: nil, secrecy: info?.secrecy ?? .none, withheld: false,
                letter: l.letter)
            switch l.state {
            case .used:
                break
            case .cancelled:
                row.note = Self.join(["ยกเลิก: \(l.note)", row.note])
            case .reserved, .expired:
                let until = Int64(l.time ?? "")
                row.reservedUntil = until
                row.registered = nil
                row.time = nil
                row.letterNumber = ""
                row.date = ""
                let when = until.map { "\(ThaiDate(unixMillis: $0).formatted()) \(ThaiDate.clock(unixMillis: $0)) น." } ?? ""
                row.note = Self.join([
                    l.state == .reserved ? "จองไว้ถึง \(when)" : "หมดอายุการจอง (จองไว้ถึง \(when))", l.note,
                ])
            }
            if row.secrecy > clearance {
                row.subject = row.secrecy.rawValue
                row.withheld = true
            }
            return row
        }
    }

    static func join(_ parts: [String]) -> String { parts.filter { !$0.isEmpty }.joined(separator: "; ") }

    /// A row's cells, in ``columns(_:)`` order; Thai digits when asked.
    public func cells(_ r: Row, thaiDigits: Bool = false) -> [String] {
        func d(_ s: String) -> String { thaiDigits ? ThaiDigits.convert(s) : s }
        return [
            d(String(r.number)), d(r.letterNumber), d(r.date), r.from, r.to, r.subject, r.action, r.note,
            r.registered.map { d($0.formatted()) } ?? "", r.time.map { d($0) } ?? "",
        ]
    }

    /// The form as CSV for spreadsheets: UTF-8 with a byte-order mark (so Thai Excel reads it as
    /// UTF-8), a header row, CRLF line ends, fields quoted when they hold a comma, quote or line end.
    public func csv(thaiDigits: Bool = false) -> String {
        var out = "\u{FEFF}"
        for line in [Self.columns(book)] + rows.map({ cells($0, thaiDigits: thaiDigits) }) {
            out += line.map(Self.csvField).joined(separator: ",") + "\r\n"
        }
        return out
    }

    public static func csvField(_ s: String) -> String {
        if s.contains(",") || s.contains("\"") || s.contains("\n") || s.contains("\r") {
            return "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
        }
        return s
    }
}

extension ThaiDate {
    /// `HH:MM` at `millis` (since 1970 UTC) in a time zone `utcOffsetSeconds` east of UTC (Thailand: +7 h).
    public static func clock(unixMillis millis: Int64, utcOffsetSeconds: Int = 7 * 3600) -> String {
        let secs = (millis >= 0 ? millis / 1000 : (millis - 999) / 1000) + Int64(utcOffsetSeconds)
        let s = ((secs % 86400) + 86400) % 86400
        let h = s / 3600
        let m = (s % 3600) / 60
        return (h < 10 ? "0" : "") + "\(h):" + (m < 10 ? "0" : "") + "\(m)"
    }
}
