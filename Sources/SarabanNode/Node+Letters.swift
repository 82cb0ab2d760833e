import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
import SarabanSync

/// One hop of เกษียนหนังสือ.
public struct RoutingEntry: Sendable, Hashable, Codable {
    public var from: String
    public var to: String
    public var instruction: String
    public var date: String
    public var time: String
    public var office: String
    public var author: String
    public var change: String

    static func encode(from: String, to: String, note: String, date: ThaiDate, time: String, office: String) -> String {
        [from, to, note, date.iso, time, office].map(escapeTab).joined(separator: "\t")
    }
}

/// A receiving office's acknowledgement, as it travels back to the sender.
public struct Acknowledgement: Sendable, Hashable, Codable {
    public var office: String
    public var number: Int
    public var year: Int
    public var date: String
    public var time: String
    public var node: String
}

/// An attachment as the letter lists it.
public struct AttachmentRef: Sendable, Hashable, Codable {
    public var hash: String
    public var name: String
    public var size: Int
    public var chunks: Int
    /// `node` (this node's local key) or `space:<hex>:<epoch>`.
    public var key: String
    /// The attachment's name on the wire and on disk: BLAKE2b-256 over its space, chunk count and
    /// the BLAKE2b-256 of each encrypted chunk (`Node.attachmentRoot`); empty on refs written
    /// before chunks were synced (stored under `hash`, never fetched).
    public var root: String = ""
}

/// A letter as this node sees it.
public struct LetterView: Sendable {
    public var id: DocID
    public var kind: LetterKind
    public var fields: [String: String]
    public var status: LetterStatus
    public var routing: [RoutingEntry]
    public var acknowledgements: [Acknowledgement]
    public var signatures: [SignatureRecord]
    public var attachments: [AttachmentRef]
    public var conflicts: Int
    public var createdBy: ReplicaID
    public var created: Int64
    /// The registry's stamp (ที่ and วันที่ signed by the registering node), once registered.
    public var stamp: RegistryStamp?
    /// Where this office sent it (`letter send --to`), one line per recipient office.
    public var deliveries: [Delivery] = []
    /// On a letter received from another office: the dispatch it came in.
    public var origin: Origin?
    /// On a received letter: its line in this office's receive book.
    public var receiveEntry: ReceiveEntry?
    /// How a letter taken in from paper came (`letter intake --via`).
    public var channel: String?
    /// On a record migrated from the shared-letter model: the shared letter's id.
    public var legacy: DocID?
    /// The name of the space it lives in, nil for the office's own space (set by ``Node/letter(_:)``).
    public var home: String?

    public init(
        id: DocID, kind: LetterKind, fields: [String: String], status: LetterStatus, routing: [RoutingEntry],
        acknowledgements: [Acknowledgement], signatures: [SignatureRecord], attachments: [AttachmentRef], conflicts: Int,
        createdBy: ReplicaID, created: Int64
    ) {
        self.id = id
        self.kind = kind
        self.fields = fields
        self.status = status
        self.routing = routing
        self.acknowledgements = acknowledgements
        self.signatures = signatures
        self.attachments = attachments
        self.conflicts = conflicts
        self.createdBy = createdBy
        self.created = created
    }
}

/// The verdict of `letter verify` for one signature.
public struct SignatureCheck: Sendable, Hashable, Codable {
    public var officer: String
    public var position: String
    public var certifiedBy: String
    public var certificateValid: Bool
    public var signatureValid: Bool
    public var changedFields: [String]
    public var signedAt: Int64
    public var valid: Bool { certificateValid && signatureValid && changedFields.isEmpty }
}

/// The verdict of `letter verify` on the registry's stamp.
public struct StampCheck: Sendable, Hashable, Codable {
    /// The node that registered the letter and signed the stamp.
    public var registeredBy: String
    public var office: String
    public var letterNumber: String
    public var date: String
    public var signatureValid: Bool
    /// ที่ or วันที่ on the letter differing from the stamp.
    public var mismatchedFields: [String]
    /// The content changed after the stamp, on a letter sent or received.
    public var contentChanged: Bool
    public var valid: Bool { signatureValid && mismatchedFields.isEmpty && !contentChanged }
}

/// An officer of this office (`officers/` in the data directory).
public struct Officer: Sendable, Hashable, Codable {
    public var name: String
    public var position: String
    public var publicKey: String
    public var nodeKey: String
    public var certificate: String
}

func escapeTab(_ s: String) -> String { TabFields.escape(s) }

func splitTabs(_ s: String) -> [String] { TabFields.split(s) }

extension NodeError {
    /// A domain error, in Thai and English.
    public init(_ e: OfficeError) {
        switch e.code {
        case .topSecretRefused, .invalidTransition, .notRegisterOwner, .alreadyCancelled:
            self.init(.refused, e.description)
        case .unknownNumber:
            self.init(.unknownField, e.description)
        default:
            self.init(.invalidArgument, e.description)
        }
    }
}

extension Node {
    // MARK: - Reading letters

    static func letterView(_ d: Document) -> LetterView? {
        guard d.kind == LetterDocument.kind, let k = d.display(LetterDocument.kindField),
            let kind = try? LetterKind(parsing: k)
        else { return nil }
        var fields: [String: String] = [:]
        for f in LetterField.allCases {
            if let v = d.display(f.rawValue), !v.isEmpty, d.kind(of: f.rawValue) != .list { fields[f.rawValue] = v }
        }
        let status = fields[LetterField.status.rawValue].flatMap { try? LetterStatus(parsing: $0) } ?? .draft
        func list(_ name: String) -> [RegisterEntry] { d.lists[name]?.entries ?? [] }
        let routing = list(LetterDocument.routing).compactMap { e -> RoutingEntry? in
            guard let s = e.value.string else { return nil }
            let p = splitTabs(s)
            guard p.count == 6 else { return nil }
            return RoutingEntry(
                from: p[0], to: p[1], instruction: p[2], date: p[3], time: p[4], office: p[5],
                author: e.stamp.change.author.hex, change: e.stamp.change.description)
        }
        let acks = list(LetterDocument.acknowledgements).compactMap { e -> Acknowledgement? in
            guard let s = e.value.string else { return nil }
            let p = splitTabs(s)
            guard p.count == 6, let n = Int(p[1]), let y = Int(p[2]), p[5] == e.stamp.change.author.hex else { return nil }
            return Acknowledgement(office: p[0], number: n, year: y, date: p[3], time: p[4], node: p[5])
        }
        let sigs = list(LetterDocument.signatures).compactMap { e -> SignatureRecord? in
            guard let s = e.value.string else { return nil }
            return try? JSONDecoder().decode(SignatureRecord.self, from: Data(s.utf8))
        }
        let atts = list(LetterDocument.attachments).compactMap { e -> AttachmentRef? in
            guard let s = e.value.string else { return nil }
            let p = splitTabs(s)
            guard p.count == 5 || p.count == 6, let size = Int(p[2]), let chunks = Int(p[3]), chunks >= 1 else { return nil }
            return AttachmentRef(hash: p[0], name: p[1], size: size, chunks: chunks, key: p[4], root: p.count == 6 ? p[5] : "")
        }
        var v = LetterView(
            id: d.id, kind: kind, fields: fields, status: status, routing: routing, acknowledgements: acks,
            signatures: sigs, attachments: atts, conflicts: d.conflicts.count, createdBy: d.created.change.author,
            created: d.created.time)
        if case .bytes(let b)? = d.registers[LetterDocument.stamp]?.winner?.value { v.stamp = try? RegistryStamp(decoding: b) }
        v.deliveries = list(LetterDocument.deliveries).compactMap { $0.value.string.flatMap(Delivery.init(encoded:)) }
        v.origin = d.display(LetterDocument.origin).flatMap(Origin.init(encoded:))
        v.receiveEntry = d.display(LetterDocument.receiveEntry).flatMap(ReceiveEntry.init(encoded:))
        v.channel = d.display(LetterDocument.channel)
        v.legacy = d.display(LetterDocument.legacy).flatMap(DocID.init)
        return v
    }

    /// The letter `id`.
    public func letter(_ id: DocID) throws(NodeError) -> LetterView {
        let d = try document(id)
        guard var v = Self.letterView(d) else {
            if d.kind == DispatchDocument.kind {
                throw NodeError(
                    .unknownDocument,
                    "\(id) is a dispatch from another office, not this office's letter: `saraban letter show \(id)` opens it, "
                        + "`saraban letter receive \(id)` takes it in (`saraban letter inbox` lists them)")
            }
            if d.kind == LetterDocument.kind {
                // `doc new --kind letter` (a plain document of kind "letter"): it has no letter kind.
                let kinds = LetterKind.allCases.map { "\($0.rawValue)/\($0.english)" }.joined(separator: ", ")
                throw NodeError(
                    .unknownDocument,
                    "\(id) เป็นเอกสารทั่วไปที่สร้างด้วย doc new ไม่ใช่หนังสือราชการ / \(id) is a plain document of kind "
                        + "\"letter\" made with `saraban doc new`, with no letter kind (\(kinds)); make letters with "
                        + "`saraban letter new --kind ภายนอก --subject …`")
            }
            throw NodeError(.unknownDocument, "\(id) is a \(d.kind), not a letter; `saraban letter list` shows the letters")
        }
        v.home = documentSpaceName(id)
        return v
    }

    /// Every live letter, optionally only those in `status`.
    public func letters(status: LetterStatus? = nil) throws(NodeError) -> [LetterView] {
        try letters(status: status, withBody: true)
    }

    /// Every live letter's view, decoded one document at a time (``SarabanStorage/Store/forEachDocument(kind:space:_:)``);
    /// without the body text when `withBody` is false (lists).
    func letters(status: LetterStatus?, withBody: Bool) throws(NodeError) -> [LetterView] {
        var out: [LetterView] = []
        do {
            try store.forEachDocument(kind: LetterDocument.kind) { d in
                guard !d.isDeleted, var v = Self.letterView(d), status == nil || v.status == status else { return }
                if !withBody { v.fields[LetterField.body.rawValue] = nil }
                out.append(v)
            }
        } catch { throw NodeError(error) }
        // By id (counter, then node), not as text: 2-… before 10-….
        out.sort { $0.id < $1.id }
        return out
    }

    // MARK: - Secrecy and spaces

    /// The highest secrecy class a space is cleared for: its space document's `clearance`
    /// field, else `space_clearance` in config.json, else none.
    public func clearance(ofSpace name: String?) throws(NodeError) -> Secrecy {
        guard let name, !name.isEmpty else {
            if let c = config.spaceClearance?[""], let s = try? Secrecy(parsing: c) { return s }
            return .none
        }
        for d in try documents(ofKind: SpaceDocument.kind) where d.display(SpaceDocument.name) == name {
            if let c = d.display("clearance"), let s = try? Secrecy(parsing: c) { return s }
        }
        if let c = config.spaceClearance?[name], let s = try? Secrecy(parsing: c) { return s }
        return .none
    }

    /// Refuses `secrecy` in a space not cleared for it (ลับที่สุด is refused earlier, by parsing):
    /// the space and every active member must be cleared (Node+Clearance.swift).
    func checkClearance(_ secrecy: Secrecy, space: String?, action: String = "create") throws(NodeError) {
        guard secrecy > .none else { return }
        try checkClearance(secrecy, in: try spaceID(named: space), spaceName: space, action: action)
    }

    /// The storage space named `name` (nil: the default space).
    func spaceID(named name: String?) throws(NodeError) -> SpaceID? {
        guard let name, !name.isEmpty else { return nil }
        let all: [SpaceInfo]
        do { all = try store.spaces() } catch { throw NodeError(error) }
        if let s = all.first(where: { $0.name == name || $0.id.hex == name }) { return s.id }
        throw NodeError(.unknownDocument, "no space \(name) on this node; `saraban space list` shows the spaces")
    }

    /// One local change in the space of document `id` (letters may live in any space).
    func editLetterDocument<T>(
        _ id: DocID?, space: SpaceID? = nil,
        _ body: (inout Transaction, inout DocumentsInTransaction) throws -> T
    ) throws(NodeError) -> T {
        var sp = space
        if sp == nil, let id {
            do {
                let s = try store.space(ofDocument: id)
                let def = try store.defaultSpace()
                sp = s == def ? nil : s
            } catch { throw NodeError(error) }
        }
        return try edit(in: sp, body).value
    }

    // MARK: - Creating and editing

    /// Normalises one field value (Thai names for classes, dates as `13 มิถุนายน 2568`).
    static func normalise(_ field: LetterField, _ value: String, kind: LetterKind) throws(NodeError) -> String {
        do throws(OfficeError) {
            switch field {
            case .urgency: return try Urgency(parsing: value).rawValue
            case .secrecy: return try Secrecy(parsing: value).rawValue
            case .date: return try ThaiDate(parsing: value).formatted()
            case .status: return try LetterStatus(parsing: value).rawValue
            case .subtype:
                if !kind.subtypes.isEmpty, !kind.subtypes.contains(value) {
                    throw OfficeError(
                        .invalidValue, th: "ประเภท \(value) ไม่ใช่ของ\(kind.thaiName) ใช้ได้: \(kind.subtypes.joined(separator: ", "))",
                        en: "\(value) is not a subtype of \(kind.english); use \(kind.subtypes.joined(separator: ", "))")
                }
                return value
            default: return value
            }
        } catch {
            throw NodeError(error)
        }
    }

    /// Creates a draft letter. Field names may be Thai or English; values are checked
    /// (urgency, secrecy, date, subtype); missing required fields are reported by
    /// ``missingFields(_:)`` and block registration, not drafting.
    public func createLetter(kind: LetterKind, fields input: [(name: String, value: String)], space: String? = nil)
        throws(NodeError) -> DocID
    {
        var fields: [(LetterField, String)] = []
        for (n, v) in input {
            let f: LetterField
            do { f = try LetterField(parsing: n) } catch { throw NodeError(error) }
            guard f != .status, f != .number else {
                throw NodeError(
                    .invalidArgument,
                    "\(f.rawValue) ตั้งเองไม่ได้: ที่ ได้จากทะเบียนเมื่อส่ง สถานะเริ่มที่ร่าง / \(f.english) cannot be set on a new "
                        + "letter: the number comes from the register (`letter send`), the status starts as draft")
            }
            fields.removeAll { $0.0 == f }
            fields.append((f, try Self.normalise(f, v, kind: kind)))
        }
        let secrecy = fields.first { $0.0 == .secrecy }.flatMap { try? Secrecy(parsing: $0.1) } ?? .none
        try checkClearance(secrecy, space: space)
        let sp = try spaceID(named: space)
        let spaceName = space
        return try editLetterDocument(nil, space: sp) { tx, docs in
            let id = try tx.createDocument(kind: LetterDocument.kind, in: &docs)
            try tx.set(id, field: LetterDocument.kindField, value: .string(kind.rawValue), in: &docs)
            try tx.set(id, field: LetterField.status.rawValue, value: .string(LetterStatus.draft.rawValue), in: &docs)
            if let spaceName, !spaceName.isEmpty {
                try tx.set(id, field: LetterDocument.space, value: .string(spaceName), in: &docs)
            }
            for (f, v) in fields {
                if f == .body {
                    if !v.isEmpty { try tx.insertText(id, field: f.rawValue, at: 0, v, in: &docs) }
                } else {
                    try tx.set(id, field: f.rawValue, value: .string(v), in: &docs)
                }
            }
            return id
        }
    }

    /// The required fields of the letter's kind that are still empty, as domain errors.
    public func missingFields(_ v: LetterView) -> [OfficeError] {
        validateLetter(kind: v.kind, fields: v.fields)
    }

    /// Fields fixed once a number is given (as real registers keep them).
    static let lockedAfterRegistration: Set<LetterField> = [.number, .date, .subject]

    /// Edits one field. ข้อความ is edited as text (the smallest replacement, or an insert at
    /// `insertAt`); สถานะ must follow the allowed transitions; ที่ comes only from the register;
    /// ที่, วันที่ and เรื่อง are fixed once the letter is registered.
    public func editLetter(_ id: DocID, field name: String, value: String, insertAt: Int? = nil) throws(NodeError) {
        let v = try letter(id)
        let f: LetterField
        do { f = try LetterField(parsing: name) } catch { throw NodeError(error) }
        try checkEditable(v, f)
        let value = try Self.normalise(f, value, kind: v.kind)
        if f == .status {
            let to = try! LetterStatus(parsing: value)
            do { try v.status.checkTransition(to: to) } catch { throw NodeError(error) }
            if to == .sent || to == .circulating || to == .registered {
                throw NodeError(
                    .refused,
                    "ใช้คำสั่ง letter send เพื่อออกเลขและส่ง / use `saraban letter send \(id)` (it takes a number from the register)")
            }
        }
        if f == .secrecy {
            try checkClearance(
                try! Secrecy(parsing: value), in: try space(ofDocument: id),
                spaceName: v.fields[LetterDocument.space] ?? documentSpaceName(id), action: "raise to")
        }
        try editLetterDocument(id) { tx, docs in
            if f == .body {
                let old = try docs.withDocument(id) { $0?.texts[f.rawValue]?.string ?? "" }
                if let at = insertAt {
                    try tx.insertText(id, field: f.rawValue, at: at, value, in: &docs)
                } else {
                    let (p, del, ins) = Self.minimalReplacement(old, value)
                    if del > 0 { try tx.deleteText(id, field: f.rawValue, at: p, count: del, in: &docs) }
                    if !ins.isEmpty { try tx.insertText(id, field: f.rawValue, at: p, ins, in: &docs) }
                }
            } else {
                try tx.set(id, field: f.rawValue, value: .string(value), in: &docs)
            }
        }
    }

    /// Refuses an edit of field `f` the letter's state does not allow (the rules of ``editLetter(_:field:value:insertAt:)``).
    func checkEditable(_ v: LetterView, _ f: LetterField) throws(NodeError) {
        let id = v.id
        if f == .number {
            throw NodeError(
                .refused, "ที่ ได้จากทะเบียนเท่านั้น / the number (ที่) is given by the register: `saraban letter send \(id)`")
        }
        if f != .status && (v.origin != nil || v.receiveEntry != nil) {
            throw NodeError(
                .refused,
                "หนังสือรับเก็บไว้ตามที่ได้รับ แก้ได้เฉพาะสถานะ / a received letter keeps the content it came with; only its "
                    + "status (and routing, `letter route`) belong to this office")
        }
        if f != .status && (v.status == .sent || v.status == .circulating) {
            throw NodeError(
                .refused,
                "หนังสือส่งแล้ว แก้เนื้อหาไม่ได้ / the letter was sent: its content is what the recipients hold; a correction "
                    + "is a new letter")
        }
        if v.status != .draft && v.status != .returned && Self.lockedAfterRegistration.contains(f) {
            throw NodeError(
                .refused,
                "\(f.rawValue) แก้ไม่ได้หลังลงทะเบียนแล้ว (สถานะ \(v.status.rawValue)) / the \(f.english) cannot change after "
                    + "registration; cancel the number (`register cancel`) and make a new letter")
        }
        if v.status == .cancelled || v.status == .closed {
            throw NodeError(.refused, "หนังสือนี้\(v.status.rawValue)แล้ว / the letter is \(v.status.english); it cannot be edited")
        }
    }

    func documentSpaceName(_ id: DocID) -> String? {
        guard let s = try? store.space(ofDocument: id), let def = try? store.defaultSpace(), s != def,
            let info = try? store.space(s)
        else { return nil }
        return info.name
    }

    /// The common prefix and suffix kept: (position, scalars to delete, text to insert), in scalars.
    static func minimalReplacement(_ old: String, _ new: String) -> (Int, Int, String) {
        let a = Array(old.unicodeScalars)
        let b = Array(new.unicodeScalars)
        let (p, s) = TextDiff.commonEnds(a, b)
        var ins = String.UnicodeScalarView()
        ins.append(contentsOf: b[p..<(b.count - s)])
        return (p, a.count - p - s, String(ins))
    }

    // MARK: - Register, send, receive

    /// The book a letter of this kind is numbered in.
    public static func book(for v: LetterView, circular: Bool) -> RegisterBook {
        if v.kind == .directive && v.fields[LetterField.subtype.rawValue] == "คำสั่ง" { return .order }
        if circular { return .circular }
        return .send
    }

    /// Gives the letter its number (draft → registered): the next number of this office's book
    /// for its kind, allocated atomically with the register entry; then ที่ (letter code +
    /// number), วันที่ (today, unless set) and the status are written on the letter. Repeating
    /// it (after a crash between the two writes, for example) finds the same number.
    @discardableResult
    public func registerLetter(_ id: DocID, circular: Bool = false, reserved: Int? = nil) throws(NodeError) -> Allocation {
        let v = try letter(id)
        if v.status != .draft && v.status != .registered {
            throw NodeError(
                .refused, "ลงทะเบียนไม่ได้ สถานะ \(v.status.rawValue) / a \(v.status.english) letter cannot be registered again")
        }
        let missing = missingFields(v)
        if !missing.isEmpty {
            throw NodeError(
                .invalidArgument,
                "ลงทะเบียนไม่ได้ / cannot register:\n" + missing.map { "  - \($0.thai) / \($0.english)" }.joined(separator: "\n")
                    + "\nfill them with `saraban letter edit \(id) FIELD VALUE`")
        }
        if v.createdBy != replica {
            throw NodeError(
                .refused,
                "หนังสือนี้สร้างโดยสำนักงานอื่น ให้ใช้ letter receive / this letter was made by another office (\(v.createdBy.short)): "
                    + "register it with `saraban letter receive \(id)`")
        }
        // A registered letter keeps the book it was numbered in.
        let book = v.stamp?.book ?? Self.book(for: v, circular: circular)
        let code = config.letterCode ?? ""
        if code.isEmpty && book != .order {
            throw NodeError(
                .badConfig,
                "ยังไม่ได้กำหนดรหัสหนังสือของสำนักงาน / this office has no letter code (รหัสตัวพยัญชนะ, for example มท 0808.2): "
                    + "set \"letterCode\" in \(dataDirectory.configPath)")
        }
        let subject = v.fields[LetterField.subject.rawValue] ?? ""
        let a = try allocate(book, letter: id, summary: subject, reserved: reserved)
        let number = book.letterNumber(a.number, officeCode: code, year: a.year)
        let registration = [book.rawValue, String(a.number), String(a.year), replica.hex].joined(separator: "\t")
        let hasDate = v.fields[LetterField.date.rawValue] != nil
        let date = v.fields[LetterField.date.rawValue] ?? a.date.formatted()
        let current = v.status
        let stamp = try registryStamp(v, book: book, number: a.number, year: a.year, letterNumber: number, date: date)
        let restamp = v.stamp.map { $0.letterNumber != number || $0.date != date || $0.contentHash != stamp.contentHash } ?? true
        try editLetterDocument(id) { tx, docs in
            if v.fields[LetterField.number.rawValue] != number {
                try tx.set(id, field: LetterField.number.rawValue, value: .string(number), in: &docs)
                try tx.set(id, field: LetterDocument.registration, value: .string(registration), in: &docs)
            }
            if !hasDate { try tx.set(id, field: LetterField.date.rawValue, value: .string(date), in: &docs) }
            if restamp { try tx.set(id, field: LetterDocument.stamp, value: .bytes(stamp.encoded()), in: &docs) }
            if current == .draft {
                try tx.set(id, field: LetterField.status.rawValue, value: .string(LetterStatus.registered.rawValue), in: &docs)
            }
        }
        return a
    }

    /// BLAKE2b-256 of the letter's content bytes (``canonicalLetterContent(kind:fields:attachmentHashes:)``).
    static func contentHash(_ v: LetterView) -> [UInt8] {
        let (fields, atts) = Officers.signedContent(v)
        return (try? BLAKE2b.hash(canonicalLetterContent(kind: v.kind, fields: fields, attachmentHashes: atts), outputLength: 32))
            ?? []
    }

    /// This node's registry stamp for the letter as it is now: its number and date, bound to its
    /// content's hash, signed with the node key.
    func registryStamp(
        _ v: LetterView, book: RegisterBook, number: Int, year: Int, letterNumber: String, date: String
    ) throws(NodeError) -> RegistryStamp {
        var s = RegistryStamp(
            book: book, number: number, year: year, letterNumber: letterNumber, date: date, office: config.office,
            code: config.letterCode ?? "", node: nodeID.text, letter: v.id.description, contentHash: Self.contentHash(v),
            time: now())
        s.signature = identity.sign(s.signedBytes)
        return s
    }

    /// Registers the letter if needed, then marks it sent (or circulating for circulars).
    @discardableResult
    public func sendLetter(_ id: DocID, circular: Bool = false, reserved: Int? = nil) throws(NodeError) -> (
        allocation: Allocation, status: LetterStatus
    ) {
        let v0 = try letter(id)
        // A secret letter is sent only through a space (still) cleared for it, members included.
        if let c = v0.fields[LetterField.secrecy.rawValue], let secrecy = try? Secrecy(parsing: c), secrecy > .none {
            try checkClearance(
                secrecy, in: try space(ofDocument: id), spaceName: v0.fields[LetterDocument.space] ?? documentSpaceName(id),
                action: "send")
        }
        if v0.status == .sent || v0.status == .circulating {
            throw NodeError(.refused, "หนังสือนี้ส่งแล้ว (\(v0.fields[LetterField.number.rawValue] ?? "")) / the letter was already sent")
        }
        let a = try registerLetter(id, circular: circular, reserved: reserved)
        let to: LetterStatus = a.book == .circular ? .circulating : .sent
        let v = try letter(id)
        do { try v.status.checkTransition(to: to) } catch { throw NodeError(error) }
        try editLetterDocument(id) { tx, docs in
            try tx.set(id, field: LetterField.status.rawValue, value: .string(to.rawValue), in: &docs)
        }
        return (a, to)
    }

    /// Registers a letter from another office in this office's receive book (number, date,
    /// time) and appends the acknowledgement to the letter's `การตอบรับ` list, which reaches
    /// the sender by sync. A duplicate delivery (or a repeated command) finds the existing
    /// entry, keyed on the letter's document id, and writes nothing new.
    @discardableResult
    public func receiveLetter(_ id: DocID) throws(NodeError) -> Allocation {
        let v = try letter(id)
        if v.createdBy == replica {
            throw NodeError(
                .refused, "หนังสือนี้ออกจากสำนักงานนี้เอง / this office made the letter; only receiving offices register it as received")
        }
        guard v.status == .sent || v.status == .circulating || v.status == .closed else {
            throw NodeError(
                .refused, "หนังสือยังไม่ได้ส่ง (สถานะ \(v.status.rawValue)) / the letter has not been sent yet (\(v.status.english))")
        }
        let summary = v.fields[LetterField.subject.rawValue] ?? ""
        let a = try allocate(.receive, letter: id, summary: summary)
        let me = replica.hex
        if v.acknowledgements.contains(where: { $0.node == me && $0.number == a.number && $0.year == a.year }) { return a }
        let ack = [config.office, String(a.number), String(a.year), a.date.iso, a.time, me].map(escapeTab)
            .joined(separator: "\t")
        try editLetterDocument(id) { tx, docs in
            try tx.append(id, field: LetterDocument.acknowledgements, value: ack, in: &docs)
        }
        return a
    }

    // MARK: - Routing

    /// Appends a hop to the letter's เกษียน log: who forwarded it to whom, with what instruction, when.
    public func routeLetter(_ id: DocID, to: String, note: String, from: String? = nil) throws(NodeError) {
        _ = try letter(id)
        let to = to.trimmingCharacters(in: .whitespaces)
        guard !to.isEmpty else { throw NodeError(.invalidArgument, "ต้องระบุผู้รับ / --to WHOM is empty") }
        let t = now()
        let value = RoutingEntry.encode(
            from: from ?? config.office, to: to, note: note, date: ThaiDate(unixMillis: t), time: Self.thaiTime(t),
            office: config.office)
        try editLetterDocument(id) { tx, docs in try tx.append(id, field: LetterDocument.routing, value: value, in: &docs) }
    }
}
