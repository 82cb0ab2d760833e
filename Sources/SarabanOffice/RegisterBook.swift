import SarabanCore

/// The registers (ทะเบียน) an office keeps, each numbered from 1 every year.
public enum RegisterBook: String, CaseIterable, Sendable, Hashable {
    /// ทะเบียนหนังสือรับ.
    case receive = "รับ"
    /// ทะเบียนหนังสือส่ง.
    case send = "ส่ง"
    /// Circulars (หนังสือเวียน, "ว").
    case circular = "ว"
    /// Orders (คำสั่ง).
    case order = "คำสั่ง"

    public var english: String {
        switch self {
        case .receive: return "receive"
        case .send: return "send"
        case .circular: return "circular"
        case .order: return "order"
        }
    }

    public var thaiName: String {
        switch self {
        case .receive: return "ทะเบียนหนังสือรับ"
        case .send: return "ทะเบียนหนังสือส่ง"
        case .circular: return "ทะเบียนหนังสือเวียน"
        case .order: return "ทะเบียนคำสั่ง"
        }
    }

    public init(parsing s: String) throws(OfficeError) {
        guard let b = RegisterBook.allCases.first(where: { s == $0.rawValue || s == $0.english || s == $0.thaiName }) else {
            throw OfficeError(.invalidValue, th: "ไม่รู้จักทะเบียน \"\(s)\" ใช้ รับ ส่ง ว หรือ คำสั่ง",
                              en: "unknown register \"\(s)\"; use receive, send, circular or order")
        }
        self = b
    }

    /// The letter number (ที่) for running number `n`: `มท 0808.2/123` for sent letters,
    /// `มท 0808.2/ว 123` for circulars, `123/2568` for orders, `123` for receipts.
    public func letterNumber(_ n: Int, officeCode: String, year: Int, thaiDigits: Bool = false) -> String {
        let s: String
        switch self {
        case .send: s = "\(officeCode)/\(n)"
        case .circular: s = "\(officeCode)/ว \(n)"
        case .order: s = "\(n)/\(year)"
        case .receive: s = "\(n)"
        }
        return thaiDigits ? ThaiDigits.convert(s) : s
    }
}

/// How an office counts its register years.
public enum RegisterYearPolicy: Sendable, Hashable {
    /// The calendar year, reset on 1 January (the regulation's default for circulars and orders).
    case calendar
    /// The fiscal year, starting on the first of `startMonth` (Thai government: October) and
    /// named by the BE year in which it ends.
    case fiscal(startMonth: Int)

    public func year(of date: ThaiDate) -> Int {
        switch self {
        case .calendar: return date.year
        case .fiscal(let m): return date.month >= m ? date.year + 1 : date.year
        }
    }

    public init(parsing s: String) throws(OfficeError) {
        switch s {
        case "calendar", "ปฏิทิน": self = .calendar
        case "fiscal", "งบประมาณ": self = .fiscal(startMonth: 10)
        default:
            throw OfficeError(.invalidValue, th: "รอบปี \"\(s)\" ไม่ถูกต้อง ใช้ ปฏิทิน หรือ งบประมาณ",
                              en: "year policy \"\(s)\" is not calendar or fiscal")
        }
    }

    public var name: String {
        switch self {
        case .calendar: return "calendar"
        case .fiscal: return "fiscal"
        }
    }
}

/// One event in a register's append-only log. Only the register's owner writes them.
public enum RegisterEvent: Hashable, Sendable {
    /// Number `number` given to `letter` (a document id) on `date` at `time` (HH:MM).
    case allocate(number: Int, letter: String, date: ThaiDate, time: String, summary: String)
    /// Number `number` set aside until `until` (ms since 1970) for `purpose`.
    case reserve(number: Int, until: Int64, purpose: String)
    /// A reserved number used for `letter`.
    case useReserved(number: Int, letter: String, date: ThaiDate, time: String, summary: String)
    /// Number `number` cancelled; it stays in the register marked ยกเลิก.
    case cancel(number: Int, reason: String)

    public var number: Int {
        switch self {
        case .allocate(let n, _, _, _, _), .reserve(let n, _, _), .useReserved(let n, _, _, _, _), .cancel(let n, _): return n
        }
    }

    /// A line of tab-separated fields, stored as an append-list value.
    public var encoded: String {
        func esc(_ s: String) -> String { TabFields.escape(s) }
        switch self {
        case .allocate(let n, let l, let d, let t, let s): return "allocate\t\(n)\t\(l)\t\(d.iso)\t\(t)\t\(esc(s))"
        case .reserve(let n, let u, let p): return "reserve\t\(n)\t\(u)\t\(esc(p))"
        case .useReserved(let n, let l, let d, let t, let s): return "use\t\(n)\t\(l)\t\(d.iso)\t\(t)\t\(esc(s))"
        case .cancel(let n, let r): return "cancel\t\(n)\t\(esc(r))"
        }
    }

    /// Parses ``encoded``; nil for anything malformed (such events are ignored and reported).
    public init?(encoded: String) {
        func unesc(_ s: Substring) -> String { TabFields.unescape(s) }
        let p = encoded.split(separator: "\t", omittingEmptySubsequences: false)
        guard p.count >= 3, let n = Int(p[1]), n >= 1 else { return nil }
        switch p[0] {
        case "allocate", "use":
            guard p.count == 6, let d = try? ThaiDate(parsing: String(p[3])) else { return nil }
            self = p[0] == "allocate"
                ? .allocate(number: n, letter: String(p[2]), date: d, time: String(p[4]), summary: unesc(p[5]))
                : .useReserved(number: n, letter: String(p[2]), date: d, time: String(p[4]), summary: unesc(p[5]))
        case "reserve":
            guard p.count == 4, let u = Int64(p[2]) else { return nil }
            self = .reserve(number: n, until: u, purpose: unesc(p[3]))
        case "cancel":
            guard p.count == 3 else { return nil }
            self = .cancel(number: n, reason: unesc(p[2]))
        default:
            return nil
        }
    }
}

/// One numbered line of a register as it stands.
public struct RegisterLine: Hashable, Sendable {
    public enum State: String, Sendable, Hashable {
        case used = "ใช้แล้ว"
        case reserved = "จองไว้"
        case expired = "หมดอายุการจอง"
        case cancelled = "ยกเลิก"
    }

    public var number: Int
    public var state: State
    public var letter: String?
    public var date: ThaiDate?
    public var time: String?
    public var summary: String
    /// Why it was cancelled, or what it was reserved for.
    public var note: String
}

/// A register's lines, folded from its event log: only the owner's events count, and each
/// number must be the next one, so the lines are 1…n with no gap and no number twice.
public struct RegisterState: Sendable {
    public private(set) var lines: [RegisterLine] = []
    /// Events that were ignored, with the reason (written by another node, out of sequence…).
    public private(set) var ignored: [String] = []

    public var nextNumber: Int { lines.count + 1 }

    /// - Parameters:
    ///   - events: the register's append-list entries, in list order.
    ///   - owner: the only replica allowed to write the register.
    ///   - now: ms since 1970, to expire reservations.
    public init(events: [RegisterEntry], owner: ReplicaID, now: Int64) {
        for e in events {
            guard e.stamp.change.author == owner else {
                ignored.append("\(e.stamp.change): written by \(e.stamp.change.author.short), not the owner \(owner.short)")
                continue
            }
            guard case .string(let s) = e.value, let ev = RegisterEvent(encoded: s) else {
                ignored.append("\(e.stamp.change): malformed register event")
                continue
            }
            apply(ev, at: e.stamp.change, now: now)
        }
        for i in lines.indices where lines[i].state == .reserved {
            if let until = Int64(lines[i].time ?? ""), until < now { lines[i].state = .expired }
        }
    }

    /// Adds one event written after the fold, as the fold would: a write that allocates many
    /// numbers (receiving a batch of dispatches) folds the register once and records each event,
    /// instead of folding the whole log again per number.
    public mutating func record(_ ev: RegisterEvent, at change: ChangeID, now: Int64) {
        apply(ev, at: change, now: now)
    }

    private mutating func apply(_ ev: RegisterEvent, at change: ChangeID, now: Int64) {
        switch ev {
        case .allocate(let n, let l, let d, let t, let s):
            guard n == nextNumber else {
                ignored.append("\(change): number \(n) out of sequence (next is \(nextNumber))")
                return
            }
            lines.append(RegisterLine(number: n, state: .used, letter: l, date: d, time: t, summary: s, note: ""))
        case .reserve(let n, let until, let p):
            guard n == nextNumber else {
                ignored.append("\(change): reservation \(n) out of sequence (next is \(nextNumber))")
                return
            }
            lines.append(RegisterLine(number: n, state: .reserved, letter: nil, date: nil, time: String(until), summary: "", note: p))
        case .useReserved(let n, let l, let d, let t, let s):
            guard n >= 1, n <= lines.count, lines[n - 1].state == .reserved else {
                ignored.append("\(change): number \(n) is not reserved")
                return
            }
            lines[n - 1] = RegisterLine(number: n, state: .used, letter: l, date: d, time: t, summary: s, note: lines[n - 1].note)
        case .cancel(let n, let r):
            guard n >= 1, n <= lines.count, lines[n - 1].state != .cancelled else {
                ignored.append("\(change): cannot cancel number \(n)")
                return
            }
            lines[n - 1].state = .cancelled
            lines[n - 1].note = r
        }
    }

    /// The numbers used more than once and the gaps in 1…n: both always empty by construction,
    /// and checked by tests and the simulator.
    public var collisionsAndGaps: (collisions: [Int], gaps: [Int]) {
        var seen = Set<Int>()
        var coll: [Int] = []
        for l in lines where !seen.insert(l.number).inserted { coll.append(l.number) }
        let gaps = lines.isEmpty ? [] : (1...lines.count).filter { !seen.contains($0) }
        return (coll, gaps)
    }
}
