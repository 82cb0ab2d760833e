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
    public var iso: String {
        func pad(_ n: Int, _ w: Int) -> String { String(repeating: "0", count: max(0, w - String(n).count)) + String(n) }
        return "\(pad(ceYear, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }

    public var description: String { formatted() }

    /// Parses `13 มิถุนายน 2568`, `13 มิ.ย. 2568` (Thai or Arabic digits) or ISO `2025-06-13`.
    public init(parsing text: String) throws(OfficeError) {
        let t = ThaiDigits.toArabic(text).split(separator: " ").map(String.init)
        if t.count == 1, let iso = ThaiDate.parseISO(t[0]) {
            try self.init(year: iso.0 + 543, month: iso.1, day: iso.2)
            return
        }
        guard t.count == 3, let d = Int(t[0]), var y = Int(t[2]),
              let m = (ThaiDate.monthNames.firstIndex(of: t[1]) ?? ThaiDate.monthAbbreviations.firstIndex(of: t[1]))
        else {
            throw OfficeError(.invalidDate, th: "อ่านวันที่ \"\(text)\" ไม่ได้ ใช้รูปแบบ 13 มิถุนายน 2568",
                              en: "cannot read the date \"\(text)\"; write it as 13 มิถุนายน 2568 or 2025-06-13")
        }
        if y < 100 { y += 2500 }
        try self.init(year: y, month: m + 1, day: d)
    }

    private static func parseISO(_ s: String) -> (Int, Int, Int)? {
        let p = s.split(separator: "-")
        guard p.count == 3, let y = Int(p[0]), let m = Int(p[1]), let d = Int(p[2]), p[0].count == 4 else { return nil }
        return (y, m, d)
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
