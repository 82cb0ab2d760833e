// SarabanOffice: the e-Saraban domain (letters, registers, Thai dates) as pure values.
// Standard library only, like SarabanCore; clocks come in as parameters.

/// A calendar date in the Thai solar calendar: Gregorian months and days, Buddhist Era years
/// (BE = CE + 543), as official letters print them.
public struct ThaiDate: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Buddhist Era year, for example 2568.
    public let year: Int
    /// 1…12.
    public let month: Int
    /// 1…31.
    public let day: Int

    public static let monthNames = [
        "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
        "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
    ]
    public static let monthAbbreviations = [
        "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
    ]

    /// Validates a BE date.
    public init(year: Int, month: Int, day: Int) throws(OfficeError) {
        guard (1...12).contains(month) else {
            throw OfficeError(.invalidDate, th: "เดือน \(month) ไม่ถูกต้อง (1–12)", en: "month \(month) is not 1–12")
        }
        let ce = year - 543
        guard ce >= 1, day >= 1, day <= ThaiDate.daysIn(month: month, ceYear: ce) else {
            throw OfficeError(.invalidDate, th: "วันที่ \(day) \(ThaiDate.monthNames[month - 1]) \(year) ไม่มีอยู่จริง",
                              en: "\(day)/\(month)/\(year) BE is not a date")
        }
        self.year = year
        self.month = month
        self.day = day
    }

    init(unchecked year: Int, _ month: Int, _ day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The date at `millis` (since 1970 UTC) in a time zone `utcOffsetSeconds` east of UTC
    /// (Thailand: +7 h, the default).
    public init(unixMillis millis: Int64, utcOffsetSeconds: Int = 7 * 3600) {
        let secs = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let local = secs + Int64(utcOffsetSeconds)
        let days = local >= 0 ? local / 86400 : (local - 86399) / 86400
        let (y, m, d) = ThaiDate.civil(fromDays: days)
        self.init(unchecked: y + 543, m, d)
    }

    /// The Gregorian (CE) year.
    public var ceYear: Int { year - 543 }

    /// `13 มิถุนายน 2568`, with Thai digits when asked.
    public func formatted(thaiDigits: Bool = false) -> String {
        let s = "\(day) \(ThaiDate.monthNames[month - 1]) \(year)"
        return thaiDigits ? ThaiDigits.convert(s) : s
    }

    /// `13 มิ.ย. 68`.
    public func abbreviated(thaiDigits: Bool = false) -> String {
        let s = "\(day) \(ThaiDate.monthAbbreviations[month - 1]) \(year % 100 < 10 ? "0" : "")\(year % 100)"
        return thaiDigits ? ThaiDigits.convert(s) : s
    }

    /// ISO 8601 in the Gregorian calendar, for JSON.
    public var iso: String { ThaiDate.isoText(ceYear, month, day) }

    public var description: String { formatted() }

    /// Parses a date as clerks write it, Thai or Arabic digits alike:
    /// `6/12/2569`, `6 ธ.ค. 2569`, `6 ธันวาคม 2569`, `6 ธันวาคม พ.ศ. 2569`, `๖ ธันวาคม ๒๕๖๙`
    /// (Buddhist Era; a two-digit year is 25xx) or ISO `2026-12-06` (Christian Era).
    ///
    /// A Buddhist Era year below 2400 (`6 ธันวาคม 2026`) is refused, naming the BE year it
    /// probably meant; so is an ISO year of 2400 or more (a BE year written as ISO).
    public init(parsing text: String) throws(OfficeError) {
        let t = ThaiDigits.toArabic(text).split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\u{A0}" })
            .map(String.init)
        if t.count == 1, let (y, m, d) = ThaiDate.parseISO(t[0]) {
            guard y < ThaiDate.smallestBEYear else {
                throw OfficeError(
                    .invalidDate, th: "วันที่แบบ ISO \(t[0]) ใช้ปี ค.ศ. ปี \(y) น่าจะเป็น พ.ศ.: เขียน \(ThaiDate.isoText(y - 543, m, d)) หรือ \(d)/\(m)/\(y)",
                    en: "ISO dates use the Christian Era: \(t[0]) would be the year \(y) CE; write \(ThaiDate.isoText(y - 543, m, d)) or \(d)/\(m)/\(y)")
            }
            try self.init(year: y + 543, month: m, day: d)
            return
        }
        var parts: (day: Int, month: Int, year: Int)? = nil
        if t.count == 1 {
            let p = t[0].split(separator: "/", omittingEmptySubsequences: false)
            if p.count == 3, let d = Int(p[0]), let m = Int(p[1]), let y = Int(p[2]), p[2].count == 2 || p[2].count == 4 {
                parts = (d, m, y)
            }
        } else if t.count == 3 || (t.count == 4 && (t[2] == "พ.ศ." || t[2] == "พ.ศ")), let d = Int(t[0]),
                  let y = Int(t[t.count - 1]), let m = ThaiDate.month(named: t[1])
        {
            parts = (d, m, y)
        }
        guard let (d, m, year) = parts else {
            throw OfficeError(
                .invalidDate, th: "อ่านวันที่ \"\(text)\" ไม่ได้ ใช้รูปแบบ 6/12/2569, 6 ธ.ค. 2569 หรือ 6 ธันวาคม 2569",
                en: "cannot read the date \"\(text)\"; write it as 6/12/2569, 6 ธ.ค. 2569, 6 ธันวาคม 2569 or 2026-12-06")
        }
        let y = year < 100 ? year + 2500 : year
        guard y >= ThaiDate.smallestBEYear else {
            let month = (1...12).contains(m) ? ThaiDate.monthNames[m - 1] : "\(m)"
            throw OfficeError(
                .invalidDate,
                th: "ปี \(y) ไม่ใช่ปีพุทธศักราช ถ้าหมายถึง ค.ศ. \(y) ให้เขียน พ.ศ. \(y + 543): \(d) \(month) \(y + 543)",
                en: "the year \(y) is not a Buddhist Era year; if you meant \(y) CE, write \(y + 543) BE: \(d) \(month) \(y + 543) (or ISO \(ThaiDate.isoText(y, m, d)))")
        }
        try self.init(year: y, month: m, day: d)
    }

    /// Buddhist Era years below this are refused when parsing (2400 BE is 1857 CE): such a year is
    /// almost always a Christian Era year typed by mistake.
    public static let smallestBEYear = 2400

    /// 1…12 for a full month name or an abbreviation, with or without its dots (`ธ.ค.`, `ธค`).
    static func month(named name: String) -> Int? {
        if let i = monthNames.firstIndex(of: name) { return i + 1 }
        let bare = name.filter { $0 != "." }
        if let i = monthAbbreviations.firstIndex(where: { $0.filter { $0 != "." } == bare }) { return i + 1 }
        return nil
    }

    private static func parseISO(_ s: String) -> (Int, Int, Int)? {
        let p = s.split(separator: "-")
        guard p.count == 3, let y = Int(p[0]), let m = Int(p[1]), let d = Int(p[2]), p[0].count == 4 else { return nil }
        return (y, m, d)
    }

    static func isoText(_ y: Int, _ m: Int, _ d: Int) -> String {
        func pad(_ n: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(n).count)) + String(n) }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }

    public static func < (a: ThaiDate, b: ThaiDate) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }

    static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    static func daysIn(month: Int, ceYear: Int) -> Int {
        switch month {
        case 2: return isLeap(ceYear) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
    static func civil(fromDays z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(m <= 2 ? y + 1 : y), Int(m), Int(d))
    }
}

/// Thai digits (๐–๙), which official letters may use for every number.
public enum ThaiDigits {
    public static func convert(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            if u.value >= 0x30 && u.value <= 0x39 {
                out.append(Unicode.Scalar(u.value - 0x30 + 0x0E50)!)
            } else {
                out.append(u)
            }
        }
        return String(out)
    }

    public static func toArabic(_ s: String) -> String {
        var out = String.UnicodeScalarView()
        for u in s.unicodeScalars {
            if u.value >= 0x0E50 && u.value <= 0x0E59 {
                out.append(Unicode.Scalar(u.value - 0x0E50 + 0x30)!)
            } else {
                out.append(u)
            }
        }
        return String(out)
    }
}
