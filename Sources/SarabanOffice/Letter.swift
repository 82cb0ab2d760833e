/// The six kinds of official letter (ระเบียบสำนักนายกรัฐมนตรีว่าด้วยงานสารบรรณ พ.ศ. 2526 ข้อ 9).
public enum LetterKind: String, CaseIterable, Sendable, Hashable {
    case external = "ภายนอก"
    case `internal` = "ภายใน"
    case stamped = "ประทับตรา"
    case directive = "สั่งการ"
    case publicRelations = "ประชาสัมพันธ์"
    case record = "หลักฐาน"

    public var english: String {
        switch self {
        case .external: return "external"
        case .internal: return "internal"
        case .stamped: return "stamped"
        case .directive: return "directive"
        case .publicRelations: return "public-relations"
        case .record: return "record"
        }
    }

    /// "an external", "a directive": the English name after its indefinite article.
    public var englishWithArticle: String {
        let e = english
        return (e.first.map { "aeiou".contains($0) } == true ? "an " : "a ") + e
    }

    /// The full Thai name, as the regulation lists it.
    public var thaiName: String {
        switch self {
        case .external: return "หนังสือภายนอก"
        case .internal: return "หนังสือภายใน"
        case .stamped: return "หนังสือประทับตรา"
        case .directive: return "หนังสือสั่งการ"
        case .publicRelations: return "หนังสือประชาสัมพันธ์"
        case .record: return "หนังสือที่เจ้าหน้าที่ทำขึ้นหรือรับไว้เป็นหลักฐาน"
        }
    }

    /// Accepts the Thai short or full name, or the English one.
    public init(parsing s: String) throws(OfficeError) {
        for k in LetterKind.allCases where s == k.rawValue || s == k.english || s == k.thaiName {
            self = k
            return
        }
        throw OfficeError(.unknownKind, th: "ไม่รู้จักชนิดหนังสือ \"\(s)\" ใช้ได้: \(LetterKind.allCases.map(\.rawValue).joined(separator: ", "))",
                          en: "unknown letter kind \"\(s)\"; use one of \(LetterKind.allCases.map(\.english).joined(separator: ", "))")
    }

    /// Sub-types for the kinds that have them (คำสั่ง/ระเบียบ/ข้อบังคับ, ประกาศ/แถลงการณ์/ข่าว, …).
    public var subtypes: [String] {
        switch self {
        case .directive: return ["คำสั่ง", "ระเบียบ", "ข้อบังคับ"]
        case .publicRelations: return ["ประกาศ", "แถลงการณ์", "ข่าว"]
        case .record: return ["หนังสือรับรอง", "รายงานการประชุม", "บันทึก", "หนังสืออื่น"]
        default: return []
        }
    }

    /// Fields that must be filled before the letter can be registered.
    public var requiredFields: [LetterField] {
        switch self {
        case .external: return [.subject, .salutation, .body, .closing, .signer, .position]
        case .internal: return [.agency, .subject, .salutation, .body, .signer, .position]
        case .stamped: return [.subject, .salutation, .body]
        case .directive: return [.subtype, .subject, .body, .signer, .position]
        case .publicRelations: return [.subtype, .subject, .body, .signer, .position]
        case .record: return [.subtype, .subject, .body]
        }
    }

    /// Whether a letter of this kind carries an officer's signature.
    public var isSigned: Bool { self != .stamped && self != .record }
}

/// The named parts of a letter. The raw values are the Thai names used on paper and as
/// document field names.
public enum LetterField: String, CaseIterable, Sendable, Hashable {
    case number = "ที่"
    case agency = "ส่วนราชการ"
    case date = "วันที่"
    case subject = "เรื่อง"
    case salutation = "เรียน"
    case reference = "อ้างถึง"
    case enclosures = "สิ่งที่ส่งมาด้วย"
    case body = "ข้อความ"
    case closing = "คำลงท้าย"
    case signer = "ผู้ลงนาม"
    case position = "ตำแหน่ง"
    case urgency = "ชั้นความเร็ว"
    case secrecy = "ชั้นความลับ"
    case status = "สถานะ"
    case subtype = "ประเภท"
    case recipient = "ถึง"
    case sender = "จาก"

    public var english: String {
        switch self {
        case .number: return "number"
        case .agency: return "agency"
        case .date: return "date"
        case .subject: return "subject"
        case .salutation: return "salutation"
        case .reference: return "reference"
        case .enclosures: return "enclosures"
        case .body: return "body"
        case .closing: return "closing"
        case .signer: return "signer"
        case .position: return "position"
        case .urgency: return "urgency"
        case .secrecy: return "secrecy"
        case .status: return "status"
        case .subtype: return "subtype"
        case .recipient: return "to"
        case .sender: return "from"
        }
    }

    /// Accepts the Thai or the English name.
    public init(parsing s: String) throws(OfficeError) {
        for f in LetterField.allCases where s == f.rawValue || s == f.english {
            self = f
            return
        }
        throw OfficeError(.invalidValue, th: "ไม่รู้จักช่อง \"\(s)\"", en: "unknown letter field \"\(s)\"; see `saraban letter --help`")
    }
}

/// ชั้นความเร็ว.
public enum Urgency: String, CaseIterable, Sendable, Hashable, Comparable {
    case normal = "ปกติ"
    case urgent = "ด่วน"
    case veryUrgent = "ด่วนมาก"
    case mostUrgent = "ด่วนที่สุด"

    public var english: String {
        switch self {
        case .normal: return "normal"
        case .urgent: return "urgent"
        case .veryUrgent: return "very-urgent"
        case .mostUrgent: return "most-urgent"
        }
    }

    public init(parsing s: String) throws(OfficeError) {
        for u in Urgency.allCases where s == u.rawValue || s == u.english {
            self = u
            return
        }
        throw OfficeError(.invalidValue, th: "ชั้นความเร็ว \"\(s)\" ไม่ถูกต้อง ใช้ ด่วนที่สุด ด่วนมาก ด่วน หรือ ปกติ",
                          en: "urgency \"\(s)\" is not one of most-urgent, very-urgent, urgent, normal")
    }

    private var rank: Int { Urgency.allCases.firstIndex(of: self)! }
    public static func < (a: Urgency, b: Urgency) -> Bool { a.rank < b.rank }
}

/// ชั้นความลับ (ระเบียบว่าด้วยการรักษาความลับของทางราชการ พ.ศ. 2544).
public enum Secrecy: String, CaseIterable, Sendable, Hashable, Comparable {
    case none = "ปกติ"
    case confidential = "ลับ"
    case secret = "ลับมาก"
    case topSecret = "ลับที่สุด"

    public var english: String {
        switch self {
        case .none: return "none"
        case .confidential: return "confidential"
        case .secret: return "secret"
        case .topSecret: return "top-secret"
        }
    }

    /// Parses a class; ลับที่สุด is refused because the regulation keeps it out of e-Saraban.
    public init(parsing s: String) throws(OfficeError) {
        guard let c = Secrecy.allCases.first(where: { s == $0.rawValue || s == $0.english }) else {
            throw OfficeError(.invalidValue, th: "ชั้นความลับ \"\(s)\" ไม่ถูกต้อง ใช้ ลับมาก ลับ หรือ ปกติ",
                              en: "secrecy \"\(s)\" is not one of secret, confidential, none")
        }
        guard c != .topSecret else {
            throw OfficeError(.topSecretRefused,
                              th: "หนังสือลับที่สุดต้องไม่ส่งผ่านระบบสารบรรณอิเล็กทรอนิกส์ (ระเบียบงานสารบรรณ ข้อ 29) ให้ดำเนินการทางเอกสาร",
                              en: "top-secret letters are kept out of e-Saraban by the regulation (clause 29); handle it on paper")
        }
        self = c
    }

    private var rank: Int { Secrecy.allCases.firstIndex(of: self)! }
    public static func < (a: Secrecy, b: Secrecy) -> Bool { a.rank < b.rank }
}

/// Where a letter is in its life.
public enum LetterStatus: String, CaseIterable, Sendable, Hashable {
    case draft = "ร่าง"
    case registered = "ลงทะเบียนแล้ว"
    case sent = "ส่งแล้ว"
    case circulating = "เวียน"
    case received = "รับแล้ว"
    case closed = "ปิดเรื่อง"
    case returned = "ส่งคืน"
    case cancelled = "ยกเลิก"

    public var english: String {
        switch self {
        case .draft: return "draft"
        case .registered: return "registered"
        case .sent: return "sent"
        case .circulating: return "circulating"
        case .received: return "received"
        case .closed: return "closed"
        case .returned: return "returned"
        case .cancelled: return "cancelled"
        }
    }

    public init(parsing s: String) throws(OfficeError) {
        guard let v = LetterStatus.allCases.first(where: { s == $0.rawValue || s.lowercased() == $0.english }) else {
            let all = LetterStatus.allCases
            throw OfficeError(
                .invalidValue, th: "สถานะ \"\(s)\" ไม่ถูกต้อง ใช้ได้: \(all.map(\.rawValue).joined(separator: ", "))",
                en: "unknown status \"\(s)\"; use one of \(all.map { "\($0.english) (\($0.rawValue))" }.joined(separator: ", "))")
        }
        self = v
    }

    /// The statuses a letter may move to from this one.
    public var next: Set<LetterStatus> {
        switch self {
        case .draft: return [.registered, .cancelled]
        case .registered: return [.sent, .circulating, .closed, .cancelled, .returned]
        case .sent, .circulating: return [.closed, .returned]
        case .received: return [.circulating, .closed, .returned]
        case .returned: return [.draft, .cancelled]
        case .closed, .cancelled: return []
        }
    }

    public func checkTransition(to s: LetterStatus) throws(OfficeError) {
        guard next.contains(s) else {
            throw OfficeError(.invalidTransition, th: "เปลี่ยนสถานะจาก \(rawValue) เป็น \(s.rawValue) ไม่ได้",
                              en: "a letter cannot go from \(english) to \(s.english)")
        }
    }
}

/// What is missing or wrong in a letter before it can be registered or signed.
public func validateLetter(kind: LetterKind, fields: [String: String]) -> [OfficeError] {
    var issues: [OfficeError] = []
    for f in kind.requiredFields where (fields[f.rawValue] ?? "").allSatisfy(\.isWhitespace) {
        issues.append(OfficeError(.missingField, th: "\(kind.thaiName)ต้องมี\(f.rawValue)",
                                  en: "\(kind.englishWithArticle) letter needs its \(f.english) (\(f.rawValue))"))
    }
    if !kind.subtypes.isEmpty, let st = fields[LetterField.subtype.rawValue], !st.isEmpty, !kind.subtypes.contains(st) {
        issues.append(OfficeError(.invalidValue, th: "ประเภท \(st) ไม่ใช่ของ\(kind.thaiName) ใช้ได้: \(kind.subtypes.joined(separator: ", "))",
                                  en: "\(st) is not a subtype of \(kind.english); use \(kind.subtypes.joined(separator: ", "))"))
    }
    if let u = fields[LetterField.urgency.rawValue], !u.isEmpty {
        do throws(OfficeError) { _ = try Urgency(parsing: u) } catch { issues.append(error) }
    }
    if let s = fields[LetterField.secrecy.rawValue], !s.isEmpty {
        do throws(OfficeError) { _ = try Secrecy(parsing: s) } catch { issues.append(error) }
    }
    if let d = fields[LetterField.date.rawValue], !d.isEmpty {
        do throws(OfficeError) { _ = try ThaiDate(parsing: d) } catch { issues.append(error) }
    }
    return issues
}

/// The bytes an officer signs: the letter's kind and fields in a fixed order, and the hashes of
/// its attachments. Any change to a signed field or attachment changes these bytes.
///
/// Format: `SARABAN-LETTER-V1\n`, then `kind\t<kind>\n`, then for every field in
/// ``LetterField`` order except status, `<name>\t<escaped value>\n` (only fields present), then
/// `attachment\t<hex hash>\n` for each attachment in sorted order. Tabs, newlines and backslashes
/// in values are escaped as `\t`, `\n`, `\\`.
public func canonicalLetterBytes(kind: LetterKind, fields: [String: String], attachmentHashes: [String]) -> [UInt8] {
    func esc(_ s: String) -> String { TabFields.escape(s) }
    var s = "SARABAN-LETTER-V1\nkind\t\(kind.rawValue)\n"
    for f in LetterField.allCases where f != .status {
        if let v = fields[f.rawValue] { s += "\(f.rawValue)\t\(esc(v))\n" }
    }
    for h in attachmentHashes.sorted() { s += "attachment\t\(h)\n" }
    return Array(s.utf8)
}

/// The fields whose values differ between what was signed and what the letter holds now.
public func changedSignedFields(signed: [String: String], current: [String: String]) -> [String] {
    LetterField.allCases.filter { $0 != .status }.map(\.rawValue).filter { signed[$0] != current[$0] }
}
