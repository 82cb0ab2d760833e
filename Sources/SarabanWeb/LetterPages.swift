import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanCore
import SarabanNode
import SarabanOffice

/// Who may see a secret letter (ลับ, ลับมาก): a user whose `clearance` in `web-accounts.json`
/// covers its class (`saraban user clearance NAME ลับ|ลับมาก`). API tokens have no clearance.
enum LetterAccess {
    static func secrecy(_ fields: [String: String]) -> Secrecy {
        fields[LetterField.secrecy.rawValue].flatMap { try? Secrecy(parsing: $0) } ?? .none
    }

    /// The subject, or the class in its place when `clearance` does not cover it (as the register does).
    static func subject(_ fields: [String: String], clearance: Secrecy) -> String {
        let s = secrecy(fields)
        return s > clearance ? "(\(s.rawValue))" : fields[LetterField.subject.rawValue] ?? ""
    }

    static let notCleared = WebError(
        .forbidden, "not-cleared", th: "ท่านไม่ได้รับอนุญาตให้เปิดดูหนังสือลับฉบับนี้ การพยายามเปิดดูถูกบันทึกไว้แล้ว",
        en: "you are not cleared for this secret letter; the attempt was recorded")
}

extension Principal {
    /// The class of secret letters this caller may read.
    var clearance: Secrecy {
        if case .session(_, let u) = self, let c = u.clearance, let s = try? Secrecy(parsing: c) { return s }
        return .none
    }
}

extension WebState {
    /// The logged-in browser's session and user (pages are for sessions; tokens use the API).
    func sessionUser() throws -> (Session, WebUser) {
        guard case .session(let s, let u) = principal else { throw WebError.unauthenticated }
        return (s, u)
    }
}

extension WebApp {
    /// The letter named by the route's `{id}`: this office's letters only (dispatches, receipts and
    /// other documents are not letters: 404).
    func routeLetter(_ context: WebContext) throws -> LetterView {
        guard let text = context.parameters.get("id"), let id = DocID(text) else { throw WebError.notFound }
        let v: LetterView
        do { v = try node.letter(id) } catch { throw WebError.notFound }
        return v
    }

    /// Lets the caller see letter `v` or refuses with 403; every look at a secret letter, allowed
    /// or refused, goes into the audit list first (if it cannot be recorded, nothing is shown).
    func authorize(_ v: LetterView, _ context: WebContext, via: String) throws {
        let secrecy = LetterAccess.secrecy(v.fields)
        guard secrecy > .none else { return }
        let principal = context.web.principal
        let allowed = (principal?.clearance ?? .none) >= secrecy
        try audit.record(
            AuditEntry(
                time: now, who: principal?.label ?? "?", letter: v.id.description, secrecy: secrecy.rawValue, via: via,
                allowed: allowed))
        if !allowed {
            logger.notice("secret letter refused", metadata: ["letter": "\(v.id)", "who": "\(principal?.label ?? "?")"])
            throw LetterAccess.notCleared
        }
    }

    /// The register year a letter belongs to: its receive or send number's, else the year it was made.
    func letterYear(_ v: LetterView) -> Int {
        v.receiveEntry?.year ?? v.stamp?.year ?? node.registerYear(at: v.created)
    }

    func addLetters(_ router: Router<WebContext>) {
        if options.relay { return }
        router.get("/letters") { [self] request, context in
            let (s, user) = try context.web.sessionUser()
            let lang = context.web.lang
            let t = PageRenderer.strings(lang)
            let (year, page, perPage) = try listParameters(request)
            let (slice, total) = try lettersPage(year: year, page: page, perPage: perPage)
            let clearance = context.web.principal?.clearance ?? .none
            let pages = max(1, (total + perPage - 1) / perPage)
            let items: [[String: Any]] = slice.map { v in
                let sec = LetterAccess.secrecy(v.fields)
                return Self.dropEmpty([
                    "id": v.id.description, "number": v.fields[LetterField.number.rawValue] ?? "",
                    "subject": LetterAccess.subject(v.fields, clearance: clearance),
                    "secrecy": sec == .none ? "" : sec.rawValue, "status": lang == .th ? v.status.rawValue : v.status.english,
                    "from": v.origin?.office ?? node.config.office,
                ])
            }
            var values: [String: Any] = ["items": items, "year": year, "page": page, "pages": pages]
            if page > 1 { values["prev"] = page - 1 }
            if page < pages { values["next"] = page + 1 }
            return self.pages.html(
                self.pages.page("letters", title: t["letters"]!, lang: lang, user: user, csrf: s.csrf, values: values))
        }
        router.get("/letters/{id}") { [self] _, context in
            let (s, user) = try context.web.sessionUser()
            let v = try routeLetter(context)
            try authorize(v, context, via: "page")
            let lang = context.web.lang
            let values = try letterValues(v, lang: lang)
            return pages.html(
                pages.page("letter", title: v.fields[LetterField.subject.rawValue] ?? v.kind.thaiName, lang: lang, user: user,
                    csrf: s.csrf, values: values))
        }
        router.get("/letters/{id}/print") { [self] _, context in
            _ = try context.web.sessionUser()
            let v = try routeLetter(context)
            try authorize(v, context, via: "print")
            let values = try letterValues(v, lang: context.web.lang)
            return pages.html(ByteBuffer(string: pages.library.render(values, withTemplate: "letter_print") ?? ""))
        }
        router.get("/letters/{id}/attachments/{name}") { [self] _, context in try attachment(context) }
        router.get("/api/v1/letters/{id}/attachments/{name}") { [self] _, context in try attachment(context) }
        router.get("/api/v1/letters") { [self] request, context in
            let (year, page, perPage) = try listParameters(request)
            let clearance = context.web.principal?.clearance ?? .none
            // Kept per content version, year, page and clearance (ResponseCache.swift).
            let version = try node.contentVersion()
            let body = try cachedBody(["letters api", year, page, perPage, clearance.rawValue], version: version) {
                let (slice, total) = try lettersPage(year: year, page: page, perPage: perPage)
                let json = try Self.jsonBytes(
                    LetterPageJSON(
                        year: year, page: page, per_page: perPage, total: total,
                        items: try slice.map { try LetterJSON(v: $0, app: self, clearance: clearance, full: false) }))
                return (json, nil)
            }
            return Self.jsonResponse(body)
        }
        router.get("/api/v1/letters/{id}") { [self] _, context in
            let v = try routeLetter(context)
            try authorize(v, context, via: "api")
            return try Self.json(try LetterJSON(v: v, app: self, clearance: .secret, full: true))
        }
    }

    /// An attachment of the route's letter, by name (a browser under `/letters`, a program under
    /// `/api/v1/letters`): the name checked first (400), then the caller's clearance (403, audited),
    /// then the letter's attachments (404), so nothing about a secret letter's files is told to
    /// the uncleared.
    func attachment(_ context: WebContext) throws -> Response {
        let v = try routeLetter(context)
        let name = try Self.attachmentName(context.parameters.get("name") ?? "")
        try authorize(v, context, via: "attachment")
        guard let a = v.attachments.first(where: { $0.name == name }) else { throw WebError.notFound }
        // Streamed a chunk at a time (each authenticated on its own): no whole file in memory.
        let reader = try node.attachmentReader(a)
        let first = reader.chunks > 0 ? try reader.chunk(0) : []
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/octet-stream", .contentDisposition: Self.contentDisposition(a.name),
                .contentLength: String(a.size), .cacheControl: "no-store",
            ],
            body: ResponseBody(contentLength: a.size) { writer in
                try await writer.write(ByteBuffer(bytes: first))
                for i in 1..<max(1, reader.chunks) { try await writer.write(ByteBuffer(bytes: try reader.chunk(i))) }
                try await writer.finish(nil)
            })
    }

    /// `year` (BE, default the current register year), `page` (from 1) and `per_page` (1–200, default 50).
    func listParameters(_ request: Request) throws -> (year: Int, page: Int, perPage: Int) {
        let q = try request.query()
        func int(_ name: String, _ def: Int, _ range: ClosedRange<Int>) throws -> Int {
            guard let text = q[name] else { return def }
            guard let n = Int(text), range.contains(n) else {
                throw WebError.invalid(
                    "ค่า \(name) ต้องเป็นตัวเลข \(range.lowerBound)–\(range.upperBound)",
                    "\(name) must be a number from \(range.lowerBound) to \(range.upperBound)")
            }
            return n
        }
        return (
            try int("year", node.registerYear(at: now), 2400...2800), try int("page", 1, 1...1_000_000),
            try int("per_page", 50, 1...200)
        )
    }

    /// The letters of register year `year`, newest first, one page of them and how many in all.
    func lettersPage(year: Int, page: Int, perPage: Int) throws -> ([LetterView], Int) {
        // Every letter is decoded and a year's list sorted once per version of the store (ReadCache).
        let version = try node.contentVersion()
        let all: [LetterView] = try node.readCache.value("letters of \(year)", version: version, now: now) {
            () throws(NodeError) in
            (try node.cachedLetters(version: version).filter { letterYear($0) == year }.sorted { ($0.created, $0.id) > ($1.created, $1.id) }, nil)
        }
        let start = min(all.count, (page - 1) * perPage)
        return (Array(all[start..<min(all.count, start + perPage)]), all.count)
    }

    /// What the letter templates show of `v`.
    func letterValues(_ v: LetterView, lang: Lang) throws -> [String: Any] {
        let f = v.fields
        func field(_ l: LetterField) -> String { f[l.rawValue] ?? "" }
        let secrecy = LetterAccess.secrecy(f)
        let urgency = f[LetterField.urgency.rawValue].flatMap { try? Urgency(parsing: $0) } ?? .normal
        let t = PageRenderer.strings(lang)
        var deliveries: [[String: Any]] = []
        for d in try node.correspondence.deliveryStatus(v) {
            let (state, text): (String, String)
            switch d.state {
            case .pending: (state, text) = ("pending", lang == .th ? "ยังไม่รับ" : "not received yet")
            case .received(let n, _, _, _): (state, text) = ("received", lang == .th ? "รับแล้ว เลขรับ \(n)" : "received, receive number \(n)")
            case .returned(let reason, _, _): (state, text) = ("returned", (lang == .th ? "ส่งคืน: " : "returned: ") + reason)
            }
            deliveries.append(["office": d.delivery.office, "state": state, "text": text])
        }
        let body = field(.body).components(separatedBy: "\n").filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        var values: [String: Any] = [
            "id": v.id.description, "kind_thai": v.kind.thaiName, "kind_en": v.kind.english,
            "memo": v.kind == .internal, "status": lang == .th ? v.status.rawValue : v.status.english,
            "number": field(.number), "date": field(.date), "subject": field(.subject),
            "agency": f[LetterField.agency.rawValue] ?? v.origin?.office ?? node.config.office,
            "salutation": field(.salutation), "reference": field(.reference), "enclosures": field(.enclosures),
            "paragraphs": body, "closing": field(.closing), "signer": field(.signer), "position": field(.position),
            "signed": !v.signatures.isEmpty, "deliveries": deliveries, "has_deliveries": !deliveries.isEmpty,
            "attachments": v.attachments.map { a in
                [
                    "name": a.name, "size": Self.bytes(Int64(a.size)),
                    "url": "/letters/\(v.id)/attachments/\(WebApp.segment(a.name))",
                ]
            },
            "t": t,
        ]
        values = Self.dropEmpty(values)
        if secrecy > .none { values["secrecy"] = secrecy.rawValue }
        if urgency > .normal { values["urgency"] = urgency.rawValue }
        if let r = v.receiveEntry { values["receive"] = "\(r.number)/\(r.year) (\(r.date.formatted()) \(r.time))" }
        if let o = v.origin { values["origin"] = o.office }
        return values
    }

    /// `values` without its empty strings: a Mustache section (`{{#x}}`) shows for an empty string
    /// too, so a field the letter does not have is left out, not shown blank.
    static func dropEmpty(_ values: [String: Any]) -> [String: Any] {
        values.filter { !(($0.value as? String)?.isEmpty ?? false) }
    }

    /// An attachment's name from the URL: percent-decoded strictly (invalid UTF-8: 400), and
    /// refused when it could name a path (`/`, `\`, `..`, a control character, empty): 400.
    static func attachmentName(_ raw: String) throws -> String {
        let name = try FormData.decode(Array(raw.utf8))
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.contains("\\"),
            !name.hasPrefix(".."), !name.contains("/.."),
            !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw WebError(
                .badRequest, "bad-name", th: "ชื่อไฟล์แนบไม่ถูกต้อง", en: "the attachment name is not a plain file name")
        }
        return name
    }

    /// `name` as one path segment (every byte but unreserved ASCII percent-encoded).
    static func segment(_ name: String) -> String {
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        allowed.insert(charactersIn: "-._~")
        return name.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// `attachment; filename="…"; filename*=UTF-8''…` (RFC 6266): an ASCII fallback with every
    /// other character, quote and backslash as `_`, and the exact name percent-encoded, so a Thai
    /// name reaches the browser whole and no name can break the header.
    static func contentDisposition(_ name: String) -> String {
        let ascii = String(
            name.unicodeScalars.map { s -> Character in
                (0x20..<0x7F).contains(s.value) && s != "\"" && s != "\\" ? Character(s) : "_"
            })
        var allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        allowed.insert(charactersIn: "!#$&+-.^_`|~")
        let encoded = name.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        return "attachment; filename=\"\(ascii)\"; filename*=UTF-8''\(encoded)"
    }
}

extension HTTPField.Name {
    static let contentDisposition = Self("Content-Disposition")!
}

struct AttachmentJSON: Encodable {
    var name: String
    var size: Int
    var hash: String
    var url: String?
}

struct DeliveryJSON: Encodable {
    var office: String
    var dispatch: String
    /// `pending`, `received` or `returned`.
    var state: String
    var receive_number: Int?
    var receive_year: Int?
    var reason: String?
}

/// A letter in `GET /api/v1/letters` (summary) and `GET /api/v1/letters/{id}` (`full`: fields,
/// attachments and deliveries).
struct LetterJSON: Encodable {
    var id: String
    var kind: String
    var status: String
    var year: Int
    var number: String?
    var date: String?
    var subject: String
    var secrecy: String
    var urgency: String
    var withheld: Bool
    var from_office: String?
    var receive_number: Int?
    var fields: [String: String]?
    var attachments: [AttachmentJSON]?
    var deliveries: [DeliveryJSON]?

    init(v: LetterView, app: WebApp, clearance: Secrecy, full: Bool) throws {
        let f = v.fields
        id = v.id.description
        kind = v.kind.english
        status = v.status.english
        year = app.letterYear(v)
        number = f[LetterField.number.rawValue]
        date = f[LetterField.date.rawValue]
        let s = LetterAccess.secrecy(f)
        secrecy = s.english
        urgency = (f[LetterField.urgency.rawValue].flatMap { try? Urgency(parsing: $0) } ?? .normal).english
        withheld = s > clearance
        subject = LetterAccess.subject(f, clearance: clearance)
        from_office = v.origin?.office
        receive_number = v.receiveEntry?.number
        guard full else { return }
        var named: [String: String] = [:]
        for (k, value) in f { named[(try? LetterField(parsing: k))?.english ?? k] = value }
        fields = named
        attachments = v.attachments.map {
            AttachmentJSON(
                name: $0.name, size: $0.size, hash: $0.hash,
                url: "/api/v1/letters/\(v.id)/attachments/\(WebApp.segment($0.name))")
        }
        deliveries = try app.node.correspondence.deliveryStatus(v).map { d in
            var j = DeliveryJSON(office: d.delivery.office, dispatch: d.delivery.dispatch, state: "pending")
            switch d.state {
            case .pending: break
            case .received(let n, let y, _, _): (j.state, j.receive_number, j.receive_year) = ("received", n, y)
            case .returned(let reason, _, _): (j.state, j.reason) = ("returned", reason)
            }
            return j
        }
    }
}

struct LetterPageJSON: Encodable {
    var year: Int
    var page: Int
    var per_page: Int
    var total: Int
    var items: [LetterJSON]
}
