import SarabanCore

/// Official letters as documents of kind `letter` (see Docs/ESARABAN.md).
///
/// Register fields are named by ``LetterField`` (the Thai names used on paper); ข้อความ is a text
/// field; the kind is `ชนิด`. Append lists: `เกษียน` (routing), `การตอบรับ` (acknowledgements of
/// the shared-letter model), `ลายมือชื่อ` (officers' signatures), `สิ่งแนบ` (attachments),
/// `การส่ง` (this office's dispatches of the letter).
public enum LetterDocument {
    public static let kind = "letter"
    public static let kindField = "ชนิด"
    public static let routing = "เกษียน"
    public static let acknowledgements = "การตอบรับ"
    public static let signatures = "ลายมือชื่อ"
    public static let attachments = "สิ่งแนบ"
    /// `book\tnumber\tyear\towner` of the sender's registration.
    public static let registration = "ทะเบียนส่ง"
    /// The name of the space the letter was created in (display and clearance checks).
    public static let space = "พื้นที่"
    /// The registry's stamp (``RegistryStamp`` encoding, bytes).
    public static let stamp = "ตราทะเบียน"
    /// Where this office sent the letter: ``Delivery`` lines.
    public static let deliveries = "การส่ง"
    /// On a received letter: the dispatch it came in (``Origin``).
    public static let origin = "ต้นทาง"
    /// On a received letter: its line in this office's receive book (``ReceiveEntry``).
    public static let receiveEntry = "ทะเบียนรับ"
    /// On a letter taken in from paper (`letter intake`): how it came (ไปรษณีย์, มือ, อีเมล…).
    public static let channel = "ช่องทาง"
    /// On this office's record of a letter of the shared-letter model (before dispatches): the id
    /// of that shared letter, which stays readable where it is.
    public static let legacy = "ฉบับเดิม"
}

/// One dispatch of a letter, as the sender's record lists it (`การส่ง`): to which office and
/// nodes, which dispatch document, in which exchange space.
public struct Delivery: Hashable, Sendable {
    public var office: String
    public var nodes: [String]
    public var dispatch: String
    /// The exchange space's id (hex).
    public var space: String

    public init(office: String, nodes: [String], dispatch: String, space: String) {
        self.office = office
        self.nodes = nodes
        self.dispatch = dispatch
        self.space = space
    }

    /// `office\tnode,node\tdispatch\tspace` (``TabFields``).
    public var encoded: String { TabFields.join([office, nodes.joined(separator: ","), dispatch, space]) }

    public init?(encoded: String) {
        let p = TabFields.split(encoded)
        guard p.count == 4, !p[2].isEmpty, !p[3].isEmpty else { return nil }
        self.init(office: p[0], nodes: p[1].split(separator: ",").map(String.init), dispatch: p[2], space: p[3])
    }
}

/// The dispatch a received letter came in: the receiving office's link to the sender's record.
public struct Origin: Hashable, Sendable {
    /// The dispatch's document id.
    public var dispatch: String
    /// The exchange space's id (hex).
    public var space: String
    /// The sending node's id, office and letter code.
    public var node: String
    public var office: String
    public var code: String

    public init(dispatch: String, space: String, node: String, office: String, code: String) {
        self.dispatch = dispatch
        self.space = space
        self.node = node
        self.office = office
        self.code = code
    }

    /// `dispatch\tspace\tnode\toffice\tcode` (``TabFields``).
    public var encoded: String { TabFields.join([dispatch, space, node, office, code]) }

    public init?(encoded: String) {
        let p = TabFields.split(encoded)
        guard p.count == 5, !p[0].isEmpty else { return nil }
        self.init(dispatch: p[0], space: p[1], node: p[2], office: p[3], code: p[4])
    }
}

/// A received letter's line in the receive book: เลขรับ, year, date and time.
public struct ReceiveEntry: Hashable, Sendable {
    public var number: Int
    public var year: Int
    public var date: ThaiDate
    public var time: String

    public init(number: Int, year: Int, date: ThaiDate, time: String) {
        self.number = number
        self.year = year
        self.date = date
        self.time = time
    }

    /// `number\tyear\tISO date\tHH:MM`.
    public var encoded: String { TabFields.join([String(number), String(year), date.iso, time]) }

    public init?(encoded: String) {
        let p = TabFields.split(encoded)
        guard p.count == 4, let n = Int(p[0]), let y = Int(p[1]), let d = try? ThaiDate(parsing: p[2]) else { return nil }
        self.init(number: n, year: y, date: d, time: p[3])
    }
}
