/// Tab-separated records stored as list values (register events, routing entries,
/// acknowledgements, attachment references): `\`, tab and newline inside a field are escaped as
/// `\\`, `\t` and `\n`, so a record is always one line and splits back exactly.
public enum TabFields {
    public static func escape(_ s: String) -> String {
        var o = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": o += "\\\\"
            case "\t": o += "\\t"
            case "\n": o += "\\n"
            default: o.unicodeScalars.append(c)
            }
        }
        return o
    }

    public static func unescape<S: StringProtocol>(_ s: S) -> String {
        var o = ""
        var it = s.unicodeScalars.makeIterator()
        while let c = it.next() {
            if c == "\\", let n = it.next() {
                switch n {
                case "t": o += "\t"
                case "n": o += "\n"
                default: o.unicodeScalars.append(n)
                }
            } else {
                o.unicodeScalars.append(c)
            }
        }
        return o
    }

    /// Joins escaped fields with tabs.
    public static func join(_ fields: [String]) -> String { fields.map(escape).joined(separator: "\t") }

    /// Splits on tabs and unescapes each field.
    public static func split(_ s: String) -> [String] {
        s.split(separator: "\t", omittingEmptySubsequences: false).map { unescape($0) }
    }
}
