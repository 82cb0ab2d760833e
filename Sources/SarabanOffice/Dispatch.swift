import SarabanCore

// Correspondence between offices (Docs/ESARABAN.md, "Dispatches and receipts"): the formats,
// written once here (pure); the node seals and opens them.
//
// A DISPATCH is a document of kind `dispatch` created sealed (no owner: nobody may change or delete
// it) in an exchange space, in ONE change. Members of the space see its clear fields; only the
// nodes it has a box for can open its payload: the letter as sent (``SentLetter``), encrypted
// under a fresh dispatch key with XChaCha20-Poly1305. A RECEIPT is a sealed document of kind
// `receipt` in the same space: which dispatch, from which node, to which nodes, and the receiving
// office's answer (``ReceiptBody``) sealed to each of the sender's nodes.

/// Field names of a dispatch document.
public enum DispatchDocument {
    public static let kind = "dispatch"
    /// The sender node's id (`sb…`); the change that made the dispatch is authored by it.
    public static let from = "from"
    /// The sending office's name.
    public static let office = "office"
    /// The recipient nodes' ids, separated by single spaces.
    public static let to = "to"
    /// When it was sent (ms since 1970, int).
    public static let sent = "sent"
    /// ชั้นความเร็ว (inbox order; nothing secret).
    public static let urgency = "urgency"
    /// `payload` = nonce (24) ‖ XChaCha20-Poly1305(dispatch key, ``SentLetter`` encoding,
    /// ad = ``payloadAD(dispatch:from:)``).
    public static let payload = "payload"
    /// `box.<node id>`: the dispatch key sealed (`crypto_box_seal`) to that node.
    public static func box(_ node: String) -> String { "box." + node }
    public static let boxPrefix = "box."

    /// The associated data of the payload: binds it to its dispatch document and sender.
    public static func payloadAD(dispatch: String, from: String) -> [UInt8] {
        Array("SRBN-DISPATCH-V1\n\(dispatch)\n\(from)\n".utf8)
    }

    /// Splits the `to` field.
    public static func recipients(_ text: String) -> [String] { text.split(separator: " ").map(String.init) }
}

/// Field names of a receipt document.
public enum ReceiptDocument {
    public static let kind = "receipt"
    /// The dispatch's document id.
    public static let dispatch = "dispatch"
    /// The receiving node's id.
    public static let from = "from"
    /// The nodes it is sealed to (the sender's), separated by single spaces.
    public static let to = "to"
    /// `box.<node id>`: the ``ReceiptBody`` sealed (`crypto_box_seal`) to that node.
    public static func box(_ node: String) -> String { "box." + node }
}

/// An office as a dispatch names it: its name, letter code (sender only) and nodes.
public struct OfficeAddress: Hashable, Sendable {
    public var office: String
    public var code: String
    public var nodes: [String]

    public init(office: String, code: String = "", nodes: [String]) {
        self.office = office
        self.code = code
        self.nodes = nodes
    }
}

/// An attachment as a dispatch lists it. Its chunks are sealed under the dispatch key and stored
/// under `root` in the exchange space (Docs/ESARABAN.md, "Attachments of a dispatch").
public struct SentAttachment: Hashable, Sendable {
    /// BLAKE2b-256 of the file (hex): what signatures cover.
    public var hash: String
    public var name: String
    public var size: Int
    public var chunks: Int
    /// The attachment's root in the exchange space (hex).
    public var root: String

    public init(hash: String, name: String, size: Int, chunks: Int, root: String) {
        self.hash = hash
        self.name = name
        self.size = size
        self.chunks = chunks
        self.root = root
    }
}

/// The letter as sent: what a dispatch's payload holds, opened with the dispatch key.
public struct SentLetter: Hashable, Sendable {
    public var kind: LetterKind
    /// Every field of the letter but สถานะ (ข้อความ as its text), by Thai name.
    public var fields: [String: String]
    public var attachments: [SentAttachment]
    public var signatures: [SignatureRecord]
    /// The sending office (its name, code and the node that sent it first in `nodes`).
    public var sender: OfficeAddress
    /// Every office the letter is addressed to (a circular names many), with its nodes.
    public var recipients: [OfficeAddress]
    public var circular: Bool
    public var stamp: RegistryStamp

    public init(
        kind: LetterKind, fields: [String: String], attachments: [SentAttachment], signatures: [SignatureRecord],
        sender: OfficeAddress, recipients: [OfficeAddress], circular: Bool, stamp: RegistryStamp
    ) {
        self.kind = kind
        self.fields = fields
        self.attachments = attachments
        self.signatures = signatures
        self.sender = sender
        self.recipients = recipients
        self.circular = circular
        self.stamp = stamp
    }

    public static let version: UInt8 = 1

    /// `version ‖ kind ‖ fields ‖ attachments ‖ signatures ‖ sender ‖ recipients ‖ circular ‖ stamp`
    /// (byte layout in Docs/ESARABAN.md). Fields are written in ``LetterField`` order, so equal
    /// letters encode to equal bytes.
    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: 1024)
        w.byte(Self.version)
        w.string(kind.rawValue)
        let present = LetterField.allCases.filter { $0 != .status && fields[$0.rawValue] != nil }
        w.varint(present.count)
        for f in present {
            w.string(f.rawValue)
            w.string(fields[f.rawValue]!)
        }
        w.varint(attachments.count)
        for a in attachments {
            w.string(a.hash)
            w.string(a.name)
            w.varint(a.size)
            w.varint(a.chunks)
            w.string(a.root)
        }
        w.varint(signatures.count)
        for s in signatures { Self.write(s, &w) }
        Self.write(sender, &w)
        w.varint(recipients.count)
        for r in recipients { Self.write(r, &w) }
        w.byte(circular ? 1 : 0)
        w.lengthPrefixed(stamp.encoded())
        return w.bytes
    }

    /// Decodes ``encoded()``; malformed, truncated or foreign bytes throw a typed ``DecodingError``.
    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        var r = BinaryReader(bytes, maxLength: 16 << 20)
        let at = r.offset
        let v = try r.byte()
        guard v == Self.version else { throw DecodingError(.unsupportedVersion, at: at, "dispatch payload version \(v)") }
        let kindAt = r.offset
        guard let kind = LetterKind(rawValue: try r.string()) else {
            throw DecodingError(.invalidValue, at: kindAt, "unknown letter kind")
        }
        var fields: [String: String] = [:]
        for _ in 0..<(try r.count(max: LetterField.allCases.count)) {
            let nameAt = r.offset
            let name = try r.string()
            guard let f = LetterField(rawValue: name), f != .status, fields[name] == nil else {
                throw DecodingError(.invalidValue, at: nameAt, "unexpected or repeated field \(name)")
            }
            fields[f.rawValue] = try r.string()
        }
        var attachments: [SentAttachment] = []
        for _ in 0..<(try r.count(max: r.remaining / 5)) {
            let hash = try r.string()
            let name = try r.string()
            let size = try r.count(max: Int(Int64.max >> 1))
            let chunksAt = r.offset
            let chunks = try r.count(max: 1 << 24)
            guard chunks >= 1 else { throw DecodingError(.invalidValue, at: chunksAt, "an attachment has at least one chunk") }
            attachments.append(SentAttachment(hash: hash, name: name, size: size, chunks: chunks, root: try r.string()))
        }
        var signatures: [SignatureRecord] = []
        for _ in 0..<(try r.count(max: r.remaining / 12)) { signatures.append(try Self.readSignature(&r)) }
        let sender = try Self.readAddress(&r)
        var recipients: [OfficeAddress] = []
        for _ in 0..<(try r.count(max: r.remaining / 3)) { recipients.append(try Self.readAddress(&r)) }
        let circAt = r.offset
        let circ = try r.byte()
        guard circ <= 1 else { throw DecodingError(.invalidValue, at: circAt, "circular flag \(circ)") }
        var sr = BinaryReader(Array(try r.lengthPrefixed()), maxLength: 1 << 16)
        let stamp = try RegistryStamp.read(&sr)
        try sr.expectEnd()
        try r.expectEnd()
        self.init(
            kind: kind, fields: fields, attachments: attachments, signatures: signatures, sender: sender,
            recipients: recipients, circular: circ == 1, stamp: stamp)
    }

    static func write(_ a: OfficeAddress, _ w: inout BinaryWriter) {
        w.string(a.office)
        w.string(a.code)
        w.varint(a.nodes.count)
        for n in a.nodes { w.string(n) }
    }

    static func readAddress(_ r: inout BinaryReader) throws(DecodingError) -> OfficeAddress {
        let office = try r.string()
        let code = try r.string()
        var nodes: [String] = []
        for _ in 0..<(try r.count(max: r.remaining)) { nodes.append(try r.string()) }
        return OfficeAddress(office: office, code: code, nodes: nodes)
    }

    static func write(_ s: SignatureRecord, _ w: inout BinaryWriter) {
        w.varint(s.version)
        for t in [s.officer, s.position, s.officerKey, s.nodeKey, s.certificate, s.signature, s.kind] { w.string(t) }
        let names = s.fields.keys.sorted()
        w.varint(names.count)
        for n in names {
            w.string(n)
            w.string(s.fields[n]!)
        }
        w.varint(s.attachments.count)
        for a in s.attachments { w.string(a) }
        w.signed(s.time)
    }

    static func readSignature(_ r: inout BinaryReader) throws(DecodingError) -> SignatureRecord {
        let version = try r.count(max: 255)
        var t: [String] = []
        for _ in 0..<7 { t.append(try r.string()) }
        var fields: [String: String] = [:]
        for _ in 0..<(try r.count(max: r.remaining / 2)) {
            let n = try r.string()
            fields[n] = try r.string()
        }
        var atts: [String] = []
        for _ in 0..<(try r.count(max: r.remaining)) { atts.append(try r.string()) }
        return SignatureRecord(
            version: version, officer: t[0], position: t[1], officerKey: t[2], nodeKey: t[3], certificate: t[4],
            signature: t[5], kind: t[6], fields: fields, attachments: atts, time: try r.signed())
    }
}

/// A receiving office's answer to a dispatch: received (with its receive number) or returned
/// (ส่งคืน, with the reason). Sealed to each of the sender's nodes in a receipt document, and
/// signed by the receiving node.
public struct ReceiptBody: Hashable, Sendable {
    public enum Status: UInt8, Sendable, Hashable {
        case received = 0
        case returned = 1
    }

    public var status: Status
    /// The dispatch's document id.
    public var dispatch: String
    public var office: String
    public var code: String
    /// The receiving node's id.
    public var node: String
    /// เลขรับ and its register year (0 when returned).
    public var number: Int
    public var year: Int
    /// ISO date and `HH:MM`, Thai time.
    public var date: String
    public var time: String
    /// Why it was returned (empty when received).
    public var reason: String
    /// Milliseconds since 1970.
    public var at: Int64
    /// The receiving node's Ed25519 signature over ``signedBytes`` (64 bytes).
    public var signature: [UInt8]

    public init(
        status: Status, dispatch: String, office: String, code: String, node: String, number: Int, year: Int,
        date: String, time: String, reason: String, at: Int64, signature: [UInt8] = []
    ) {
        self.status = status
        self.dispatch = dispatch
        self.office = office
        self.code = code
        self.node = node
        self.number = number
        self.year = year
        self.date = date
        self.time = time
        self.reason = reason
        self.at = at
        self.signature = signature
    }

    static let version: UInt8 = 1
    static let context = Array("SARABAN-RECEIPT-V1\n".utf8)

    private func writeFields(_ w: inout BinaryWriter) {
        w.byte(status.rawValue)
        for s in [dispatch, office, code, node] { w.string(s) }
        w.varint(number)
        w.varint(year)
        for s in [date, time, reason] { w.string(s) }
        w.signed(at)
    }

    /// What the receiving node signs: a fixed context and every field but the signature.
    public var signedBytes: [UInt8] {
        var w = BinaryWriter(capacity: 200)
        w.raw(Self.context)
        writeFields(&w)
        return w.bytes
    }

    /// `version 1 ‖ status ‖ dispatch ‖ office ‖ code ‖ node ‖ number ‖ year ‖ date ‖ time ‖ reason ‖ at ‖ signature`.
    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: 240)
        w.byte(Self.version)
        writeFields(&w)
        w.lengthPrefixed(signature)
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(DecodingError) {
        var r = BinaryReader(bytes, maxLength: 1 << 16)
        let at0 = r.offset
        let v = try r.byte()
        guard v == Self.version else { throw DecodingError(.unsupportedVersion, at: at0, "receipt version \(v)") }
        let stAt = r.offset
        guard let status = Status(rawValue: try r.byte()) else {
            throw DecodingError(.invalidValue, at: stAt, "unknown receipt status")
        }
        let dispatch = try r.string()
        let office = try r.string()
        let code = try r.string()
        let node = try r.string()
        let number = try r.count(max: Int(Int32.max))
        let year = try r.count(max: 100_000)
        let date = try r.string()
        let time = try r.string()
        let reason = try r.string()
        let at = try r.signed()
        let sigAt = r.offset
        let sig = Array(try r.lengthPrefixed())
        guard sig.count == 64 else { throw DecodingError(.invalidValue, at: sigAt, "signature is \(sig.count) bytes, not 64") }
        try r.expectEnd()
        self.init(
            status: status, dispatch: dispatch, office: office, code: code, node: node, number: number, year: year,
            date: date, time: time, reason: reason, at: at, signature: sig)
    }
}
