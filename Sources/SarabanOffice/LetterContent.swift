import SarabanCore

// What an officer's signature covers, and what the registry stamps: two separate things (issue 14,
// "signing order that cannot go wrong"). An officer signs the letter's CONTENT: its kind, every
// field but ที่, วันที่ and สถานะ, and its attachments' hashes. The register gives ที่ and วันที่,
// and the registering node signs them in a ``RegistryStamp`` bound to the content. So a letter
// signed before it is numbered (sign → send) and one numbered first (register → sign → send) both
// verify, and a field changed after a signature is still reported by name.

extension LetterField {
    /// The fields an officer's signature covers (version 2): all but ที่, วันที่ and สถานะ, which
    /// the register gives and the registry stamp signs.
    public static let content: [LetterField] = allCases.filter { $0 != .number && $0 != .date && $0 != .status }
}

/// What an officer signed, stored as JSON in the letter's `ลายมือชื่อ` list and carried, field by
/// field, in a dispatch (``SentLetter``).
///
/// `version` 1 signed ``canonicalLetterBytes(kind:fields:attachmentHashes:)`` (every field but
/// สถานะ, ที่ and วันที่ included: signing before registration could never verify afterwards);
/// version 2 signs ``canonicalLetterContent(kind:fields:attachmentHashes:)``.
public struct SignatureRecord: Sendable, Hashable, Codable {
    public var version: Int
    public var officer: String
    public var position: String
    public var officerKey: String
    /// The certifying node's public key (hex).
    public var nodeKey: String
    /// The node's signature over the officer certificate message (hex).
    public var certificate: String
    /// The officer's signature over ``signedBytes`` (hex).
    public var signature: String
    public var kind: String
    public var fields: [String: String]
    public var attachments: [String]
    public var time: Int64

    public init(
        version: Int, officer: String, position: String, officerKey: String, nodeKey: String, certificate: String,
        signature: String, kind: String, fields: [String: String], attachments: [String], time: Int64
    ) {
        self.version = version
        self.officer = officer
        self.position = position
        self.officerKey = officerKey
        self.nodeKey = nodeKey
        self.certificate = certificate
        self.signature = signature
        self.kind = kind
        self.fields = fields
        self.attachments = attachments
        self.time = time
    }

    /// The bytes the officer signed (nil: an unknown kind or version).
    public var signedBytes: [UInt8]? {
        guard let k = try? LetterKind(parsing: kind) else { return nil }
        switch version {
        case 1: return canonicalLetterBytes(kind: k, fields: fields, attachmentHashes: attachments)
        case 2: return canonicalLetterContent(kind: k, fields: fields, attachmentHashes: attachments)
        default: return nil
        }
    }

    /// The fields whose current values differ from the signed ones, for this record's version.
    public func changedFields(current: [String: String]) -> [String] {
        let covered = version >= 2 ? LetterField.content : LetterField.allCases.filter { $0 != .status }
        return covered.map(\.rawValue).filter { fields[$0] != current[$0] }
    }
}

/// The bytes an officer signs (signature version 2): the letter's kind, its content fields in
/// ``LetterField`` order (ที่, วันที่ and สถานะ left out) and its attachments' hashes.
///
/// Format: `SARABAN-LETTER-V2\n`, `kind\t<kind>\n`, then `<name>\t<escaped value>\n` for each
/// field of ``LetterField/content`` present, then `attachment\t<hex hash>\n` per attachment,
/// sorted. Values are escaped as ``TabFields`` does.
public func canonicalLetterContent(kind: LetterKind, fields: [String: String], attachmentHashes: [String]) -> [UInt8] {
    var s = "SARABAN-LETTER-V2\nkind\t\(kind.rawValue)\n"
    for f in LetterField.content {
        if let v = fields[f.rawValue] { s += "\(f.rawValue)\t\(TabFields.escape(v))\n" }
    }
    for h in attachmentHashes.sorted() { s += "attachment\t\(h)\n" }
    return Array(s.utf8)
}

/// The registry's stamp on a letter: the number (ที่) and date (วันที่) its register gave it,
/// signed by the registering node over these values and the hash of the letter's content
/// (``canonicalLetterContent(kind:fields:attachmentHashes:)``) when it was stamped.
///
/// Stored in the letter's `ตราทะเบียน` field and carried in every dispatch; its encoding
/// (``encoded()``) is the one used in both places.
public struct RegistryStamp: Hashable, Sendable {
    public var book: RegisterBook
    /// The running number in the book.
    public var number: Int
    /// The register year (BE).
    public var year: Int
    /// ที่, as printed on the letter (`นว 0017/12`).
    public var letterNumber: String
    /// วันที่, as written on the letter (`6 ธันวาคม 2569`).
    public var date: String
    public var office: String
    public var code: String
    /// The registering node's id (`sb…`).
    public var node: String
    /// The letter's document id at the registering office.
    public var letter: String
    /// BLAKE2b-256 of the letter's content bytes when it was stamped (32 bytes).
    public var contentHash: [UInt8]
    /// Milliseconds since 1970.
    public var time: Int64
    /// The registering node's Ed25519 signature over ``signedBytes`` (64 bytes).
    public var signature: [UInt8]

    public init(
        book: RegisterBook, number: Int, year: Int, letterNumber: String, date: String, office: String, code: String,
        node: String, letter: String, contentHash: [UInt8], time: Int64, signature: [UInt8] = []
    ) {
        self.book = book
        self.number = number
        self.year = year
        self.letterNumber = letterNumber
        self.date = date
        self.office = office
        self.code = code
        self.node = node
        self.letter = letter
        self.contentHash = contentHash
        self.time = time
        self.signature = signature
    }

    static let version: UInt8 = 1
    static let context = Array("SARABAN-REGISTRY-STAMP-V1\n".utf8)

    /// What the registering node signs: a fixed context, then every field but the signature in
    /// the binary form of ``encoded()``.
    public var signedBytes: [UInt8] {
        var w = BinaryWriter(capacity: 160)
        w.raw(Self.context)
        writeFields(&w)
        return w.bytes
    }

    private func writeFields(_ w: inout BinaryWriter) {
        w.string(book.rawValue)
        w.varint(number)
        w.varint(year)
        w.string(letterNumber)
        w.string(date)
        w.string(office)
        w.string(code)
        w.string(node)
        w.string(letter)
        w.lengthPrefixed(contentHash)
        w.signed(time)
    }

    /// `version 1 ‖ fields (as signed) ‖ signature`, length-prefixed strings and varints
    /// (SarabanCore's ``BinaryWriter``).
    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: 200)
        w.byte(Self.version)
        writeFields(&w)
        w.lengthPrefixed(signature)
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        var r = BinaryReader(bytes, maxLength: 1 << 16)
        self = try Self.read(&r)
        try r.expectEnd()
    }

    static func read(_ r: inout BinaryReader) throws(DecodingError) -> RegistryStamp {
        let at = r.offset
        let v = try r.byte()
        guard v == version else { throw DecodingError(.unsupportedVersion, at: at, "registry stamp version \(v)") }
        let bookAt = r.offset
        guard let book = RegisterBook(rawValue: try r.string()) else {
            throw DecodingError(.invalidValue, at: bookAt, "unknown register book")
        }
        let number = try r.count(max: Int(Int32.max))
        let year = try r.count(max: 100_000)
        let letterNumber = try r.string()
        let date = try r.string()
        let office = try r.string()
        let code = try r.string()
        let node = try r.string()
        let letter = try r.string()
        let hashAt = r.offset
        let hash = Array(try r.lengthPrefixed())
        guard hash.count == 32 else { throw DecodingError(.invalidValue, at: hashAt, "content hash is \(hash.count) bytes, not 32") }
        let time = try r.signed()
        let sigAt = r.offset
        let sig = Array(try r.lengthPrefixed())
        guard sig.count == 64 else { throw DecodingError(.invalidValue, at: sigAt, "signature is \(sig.count) bytes, not 64") }
        return RegistryStamp(
            book: book, number: number, year: year, letterNumber: letterNumber, date: date, office: office, code: code,
            node: node, letter: letter, contentHash: hash, time: time, signature: sig)
    }
}
