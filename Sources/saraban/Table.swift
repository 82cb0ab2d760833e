import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Terminal display width: how many columns a string takes in a monospaced terminal.
///
/// Thai is written with above and below marks (the vowels ั ิ ี ึ ื ุ ู ฺ and the tone marks ่ ้ ๊ ๋,
/// U+0E31, U+0E34–U+0E3A, U+0E47–U+0E4E) that stack on the consonant before them and take no
/// column; counting characters or scalars would misalign every table with Thai in it. The rules
/// follow `wcwidth(3)`:
///
/// - combining marks (general categories Mn, Me), format characters (Cf: zero width space, joiners,
///   direction marks), controls and variation selectors take 0 columns;
/// - East Asian Wide and Fullwidth characters (CJK, Hangul syllables, fullwidth forms, most emoji)
///   take 2;
/// - everything else takes 1.
enum DisplayWidth {
    static func of(_ s: String) -> Int {
        var w = 0
        for u in s.unicodeScalars { w += of(u) }
        return w
    }

    static func of(_ u: Unicode.Scalar) -> Int {
        let v = u.value
        if v < 0x20 || (v >= 0x7F && v < 0xA0) { return 0 }
        if v < 0x300 { return 1 }  // fast path: Latin
        // Thai above/below vowels and tone marks (also Mn; listed for clarity and speed).
        if v == 0x0E31 || (0x0E34...0x0E3A).contains(v) || (0x0E47...0x0E4E).contains(v) { return 0 }
        if (0x0E00...0x0E7F).contains(v) { return 1 }
        switch u.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: break
        }
        if (0x1160...0x11FF).contains(v) { return 0 }  // Hangul medial vowels and final consonants
        if (0xFE00...0xFE0F).contains(v) || (0xE0100...0xE01EF).contains(v) { return 0 }  // variation selectors
        return isWide(v) ? 2 : 1
    }

    /// East Asian Wide (W) and Fullwidth (F) ranges (Unicode 15, as `wcwidth` implementations list them).
    static func isWide(_ v: UInt32) -> Bool {
        switch v {
        case 0x1100...0x115F, 0x231A...0x231B, 0x2329...0x232A, 0x23E9...0x23EC, 0x23F0, 0x23F3, 0x25FD...0x25FE,
            0x2614...0x2615, 0x2648...0x2653, 0x267F, 0x2693, 0x26A1, 0x26AA...0x26AB, 0x26BD...0x26BE,
            0x26C4...0x26C5, 0x26CE, 0x26D4, 0x26EA, 0x26F2...0x26F3, 0x26F5, 0x26FA, 0x26FD, 0x2705,
            0x270A...0x270B, 0x2728, 0x274C, 0x274E, 0x2753...0x2755, 0x2757, 0x2795...0x2797, 0x27B0, 0x27BF,
            0x2B1B...0x2B1C, 0x2B50, 0x2B55, 0x2E80...0x303E, 0x3041...0x33FF, 0x3400...0x4DBF, 0x4E00...0x9FFF,
            0xA000...0xA4CF, 0xA960...0xA97F, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE10...0xFE19, 0xFE30...0xFE6F,
            0xFF00...0xFF60, 0xFFE0...0xFFE6, 0x16FE0...0x16FE4, 0x17000...0x18CFF, 0x1B000...0x1B2FF,
            0x1F004, 0x1F0CF, 0x1F18E, 0x1F191...0x1F19A, 0x1F200...0x1F251, 0x1F300...0x1F320, 0x1F32D...0x1F335,
            0x1F337...0x1F37C, 0x1F37E...0x1F393, 0x1F3A0...0x1F3CA, 0x1F3CF...0x1F3D3, 0x1F3E0...0x1F3F0,
            0x1F3F4, 0x1F3F8...0x1F43E, 0x1F440, 0x1F442...0x1F4FC, 0x1F4FF...0x1F53D, 0x1F54B...0x1F54E,
            0x1F550...0x1F567, 0x1F57A, 0x1F595...0x1F596, 0x1F5A4, 0x1F5FB...0x1F64F, 0x1F680...0x1F6C5,
            0x1F6CC, 0x1F6D0...0x1F6D2, 0x1F6D5...0x1F6D7, 0x1F6EB...0x1F6EC, 0x1F6F4...0x1F6FC,
            0x1F7E0...0x1F7EB, 0x1F90C...0x1F93A, 0x1F93C...0x1F945, 0x1F947...0x1F9FF, 0x1FA70...0x1FAFF,
            0x20000...0x2FFFD, 0x30000...0x3FFFD:
            return true
        default:
            return false
        }
    }

    /// `s` cut to at most `columns` columns, ending with "…" when cut. Marks stay with their base.
    static func truncate(_ s: String, to columns: Int) -> String {
        guard of(s) > columns else { return s }
        guard columns >= 1 else { return "" }
        var out = String.UnicodeScalarView()
        var w = 0
        for u in s.unicodeScalars {
            let uw = of(u)
            if w + uw > columns - 1 { break }
            out.append(u)
            w += uw
        }
        return String(out) + "…"
    }

    /// `s` padded with spaces on the right to `columns` columns.
    static func pad(_ s: String, to columns: Int) -> String {
        let w = of(s)
        return w >= columns ? s : s + String(repeating: " ", count: columns - w)
    }
}

/// ANSI colour, only when stdout is a terminal and `NO_COLOR` is unset or empty
/// (https://no-color.org). Tests and pipes always get plain text.
enum Colour {
    static let enabled: Bool = {
        let env = ProcessInfo.processInfo.environment
        if let v = env["NO_COLOR"], !v.isEmpty { return false }
        if env["TERM"] == "dumb" { return false }
        return isatty(STDOUT_FILENO) == 1
    }()

    enum Style: String {
        case bold = "1", dim = "2", red = "31", green = "32", yellow = "33", cyan = "36"
    }

    static func paint(_ s: String, _ style: Style, enabled: Bool = Colour.enabled) -> String {
        enabled && !s.isEmpty ? "\u{1B}[\(style.rawValue)m\(s)\u{1B}[0m" : s
    }
}

/// A table whose columns are aligned by display width (so Thai lines up).
///
/// Cells are plain strings; an optional style per cell is applied after padding, so escape codes
/// never count towards the width. Long cells in columns with a `maxWidth` are cut with "…".
struct Table {
    struct Cell {
        var text: String
        var style: Colour.Style?
        init(_ text: String, _ style: Colour.Style? = nil) {
            self.text = text
            self.style = style
        }
    }

    var headers: [String]
    var rows: [[Cell]] = []
    /// Per column: the widest a cell may be (nil: unlimited).
    var maxWidths: [Int?]
    var indent = ""
    var gap = "  "

    init(_ headers: [String], maxWidths: [Int?]? = nil) {
        self.headers = headers
        self.maxWidths = maxWidths ?? Array(repeating: nil, count: headers.count)
    }

    mutating func add(_ cells: [Cell]) {
        rows.append(cells + Array(repeating: Cell(""), count: max(0, headers.count - cells.count)))
    }

    mutating func add(_ texts: [String]) { add(texts.map { Cell($0) }) }

    /// The lines, without trailing spaces. `colour` defaults to whether stdout is a colour terminal.
    func render(colour: Bool = Colour.enabled) -> [String] {
        let cut: [[Cell]] = rows.map { row in
            row.enumerated().map { i, c in
                var c = c
                c.text = c.text.replacingOccurrences(of: "\n", with: "⏎")
                if i < maxWidths.count, let m = maxWidths[i] { c.text = DisplayWidth.truncate(c.text, to: m) }
                return c
            }
        }
        var widths = headers.map(DisplayWidth.of)
        for row in cut {
            for (i, c) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], DisplayWidth.of(c.text)) }
        }
        func line(_ cells: [Cell]) -> String {
            var parts: [String] = []
            for (i, c) in cells.enumerated() where i < widths.count {
                let last = i == widths.count - 1
                let spaces = last ? 0 : max(0, widths[i] - DisplayWidth.of(c.text))
                let text = c.style.map { colour ? Colour.paint(c.text, $0, enabled: true) : c.text } ?? c.text
                parts.append(text + String(repeating: " ", count: spaces))
            }
            var s = indent + parts.joined(separator: gap)
            while s.hasSuffix(" ") { s.removeLast() }
            return s
        }
        var out = [line(headers.map { Cell($0, .bold) })]
        for r in cut { out.append(line(r)) }
        return out
    }
}
