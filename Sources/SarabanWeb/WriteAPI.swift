import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanCore
import SarabanNode
import SarabanOffice
import SarabanStorage

// The write half of /api/v1 for vendors' systems (Docs/WEB.md, "JSON API"): drafts, edits,
// register, sign, send, route, the office directory, conflicts and search. A write token or a
// session (with its CSRF header) is needed for everything but GET; bodies are strict JSON objects
// (unknown keys, wrong types and invalid UTF-8 refused with 400, nothing stored).

extension WebApp {
    func addWriteAPI(_ router: Router<WebContext>) {
        router.post("/api/v1/letters") { [self] request, context in
            try Self.require(context, Self.drafters)
            let body = try await Self.jsonObject(request, context, allowed: ["kind", "fields"])
            let kind = try Self.kind(try Self.string(body, "kind", required: true) ?? "")
            let fields = try Self.letterFields(body["fields"], kind: kind)
            let issues = Self.issues(kind: kind, fields: fields, lang: .en, blockingOnly: true)
            if let first = issues.first {
                let th = Self.issues(kind: kind, fields: fields, lang: .th, blockingOnly: true)[first.key] ?? first.value
                throw WebError.invalid(th, first.value)
            }
            let id = try createDraft(kind: kind, fields: fields)
            return try draftJSON(id, status: .created)
        }
        router.get("/api/v1/letters/{id}/body") { [self] _, context in
            let id = try Self.letterID(context)
            try checkClearedAPI(id, context)
            let b = try node.letterBody(id)
            return try Self.json(BodyJSON(id: id.description, body: b.text, body_base: BodyToken.seal(id, b.base)))
        }
        router.patch("/api/v1/letters/{id}") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.drafters)
            try checkClearedAPI(id, context)
            let body = try await Self.jsonObject(request, context, allowed: ["fields", "body", "body_base"])
            let v = try node.letter(id)
            var form = FormData()
            for (k, value) in try Self.letterFields(body["fields"], kind: v.kind) {
                let f = try! LetterField(parsing: k)
                if f == .body { throw WebError.invalid("ข้อความแก้ผ่าน body", "edit the body with \"body\" (and \"body_base\")") }
                form.pairs.append((Self.name(f), value))
            }
            if let text = try Self.string(body, "body") { form.pairs.append((Self.name(.body), Self.text(text))) }
            if let base = try Self.string(body, "body_base") { form.pairs.append(("body_base", base)) }
            try saveDraft(id, form: form, lang: .en)
            return try draftJSON(id)
        }
        router.post("/api/v1/letters/{id}/register") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.drafters)
            _ = try await Self.jsonObject(request, context, allowed: [], optional: true)
            let a = try registerLetter(id)
            let v = try node.letter(id)
            return try Self.json(
                Registered(
                    id: id.description, number: v.fields[LetterField.number.rawValue] ?? "", book: a.book.rawValue,
                    register_number: a.number, year: a.year, status: v.status.english))
        }
        router.post("/api/v1/letters/{id}/sign") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.signers)
            let body = try await Self.jsonObject(request, context, allowed: ["officer", "passphrase"])
            let rec = try await sign(
                id, officer: try Self.string(body, "officer", required: true) ?? "",
                passphrase: try Self.string(body, "passphrase", required: true) ?? "", context: context)
            return try Self.json(
                Signed(id: id.description, officer: rec.officer, position: rec.position, time: Self.iso(rec.time)))
        }
        router.post("/api/v1/letters/{id}/send") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.drafters)
            let body = try await Self.jsonObject(request, context, allowed: ["to"])
            guard let to = body["to"] as? [Any], to.allSatisfy({ $0 is String }) else {
                throw WebError.invalid("\"to\" ต้องเป็นรายการสำนักงาน", "\"to\" must be an array of offices (names, codes or node ids)")
            }
            let r = try send(id, to: to.compactMap { $0 as? String })
            return try Self.json(
                Sent(
                    id: id.description, number: r.letterNumber, status: r.status.english,
                    dispatches: r.dispatches.map { .init(id: $0.id.description, offices: $0.offices, existing: $0.existing) }))
        }
        router.post("/api/v1/letters/{id}/route") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.routers)
            let body = try await Self.jsonObject(request, context, allowed: ["to", "note", "due"])
            try route(
                id, to: try Self.string(body, "to", required: true) ?? "", note: try Self.string(body, "note") ?? "",
                due: try Self.string(body, "due"), context: context)
            return Response(status: .noContent)
        }
        router.get("/api/v1/offices") { [self] _, _ in
            try Self.json(try node.correspondence.offices().map { OfficeJSON(office: $0.office, code: $0.code, nodes: $0.nodes.map(\.text)) })
        }
        router.get("/api/v1/conflicts") { [self] _, context in
            let user: WebUser? = if case .session(_, let u) = context.web.principal { u } else { nil }
            let rows = try conflictRows(.en, user: user)
            return try Self.json(
                rows.map { r in
                    ConflictJSON(
                        document: r["document"] as? String ?? "", title: r["title"] as? String ?? "", field: r["field"] as? String ?? "",
                        values: (r["values"] as? [[String: Any]] ?? []).map {
                            .init(
                                value: $0["value"] as? String ?? "", shown: $0["shown"] as? Bool ?? false, who: $0["who"] as? String ?? "",
                                keep: $0["keep"] as? String ?? "")
                        })
                })
        }
        router.post("/api/v1/conflicts/{id}/resolve") { [self] request, context in
            try Self.require(context, Self.drafters)
            guard let id = DocID(context.parameters.get("id") ?? "") else { throw WebError.notFound }
            let body = try await Self.jsonObject(request, context, allowed: ["field", "keep"])
            try resolve(id, field: try Self.string(body, "field", required: true) ?? "", keep: try Self.string(body, "keep", required: true) ?? "")
            return Response(status: .noContent)
        }
        router.get("/api/v1/search") { [self] request, context in
            let user: WebUser? = if case .session(_, let u) = context.web.principal { u } else { nil }
            let q = try request.query()
            if let l = q["limit"], Int(l) == nil { throw WebError.invalid("limit ต้องเป็นตัวเลข", "limit must be a number") }
            // Kept per content version, question and who asks (a token, or a user's clearance: a
            // search shows secret letters only to the cleared; ResponseCache.swift). Documents
            // written since the version was read raise it, so the index refresh a search starts
            // with has nothing to add for a kept answer.
            let who = user.map { "user " + ($0.clearance ?? "") } ?? "token"
            let version = try node.contentVersion()
            let key: [any CustomStringConvertible] = [
                "search api", who, q["q"] ?? "", q["from"] ?? "", q["to"] ?? "", q["limit"] ?? "",
            ]
            let body = try cachedBody(key, version: version) {
                let hits = try search(q, user: user)
                let json = try Self.jsonBytes(
                    hits.map {
                        HitJSON(
                            id: $0.document.description, kind: $0.kind, subject: $0.subject, number: $0.number, sender: $0.sender,
                            date: $0.day > 0 ? String($0.day) : nil)
                    })
                return (json, nil)
            }
            return Self.jsonResponse(body)
        }
    }

    /// A secret letter only for callers cleared for its class: a user by their clearance, a token
    /// never (as the read API), each look recorded in the audit list. Before, the write API let
    /// any token read and change a secret letter's body, and its looks were not audited.
    func checkClearedAPI(_ id: DocID, _ context: WebContext) throws {
        if let v = try? node.letter(id) { try authorize(v, context, via: "api") }
    }

    func draftJSON(_ id: DocID, status: HTTPResponse.Status = .ok) throws -> Response {
        let v = try node.letter(id)
        var fields: [String: String] = [:]
        for (k, value) in v.fields {
            if let f = try? LetterField(parsing: k) { fields[Self.name(f)] = value }
        }
        let missing = Self.issues(kind: v.kind, fields: v.fields, lang: .en, blockingOnly: false)
        var issues: [String: String] = [:]
        for (k, value) in missing { if let f = try? LetterField(parsing: k) { issues[Self.name(f)] = value } }
        return try Self.json(
            DraftJSON(id: id.description, kind: v.kind.english, status: v.status.english, fields: fields, issues: issues),
            status: status)
    }

    // MARK: - Strict JSON

    /// The body as a JSON object with only `allowed` keys (at most 1 MiB, valid UTF-8). With
    /// `optional`, an empty body is an empty object.
    static func jsonObject(_ request: Request, _ context: WebContext, allowed: Set<String>, optional: Bool = false)
        async throws -> [String: Any]
    {
        var request = request
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        let bytes = Array(buffer.readableBytesView)
        if optional && bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        guard String(validating: bytes, as: UTF8.self) != nil else { throw WebError.invalidUTF8 }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(bytes), options: [])) as? [String: Any] else {
            throw WebError.invalid("ข้อมูลต้องเป็นออบเจกต์ JSON", "the body must be a JSON object")
        }
        let unknown = Set(object.keys).subtracting(allowed)
        if !unknown.isEmpty {
            let names = unknown.sorted().joined(separator: ", ")
            throw WebError.invalid("ไม่รู้จักช่อง \(names)", "unknown field(s): \(names); this call takes " + allowed.sorted().joined(separator: ", "))
        }
        return object
    }

    static func string(_ object: [String: Any], _ key: String, required: Bool = false) throws -> String? {
        guard let value = object[key], !(value is NSNull) else {
            if required { throw WebError.invalid("ต้องมี \"\(key)\"", "\"\(key)\" is required") }
            return nil
        }
        guard let s = value as? String else { throw WebError.invalid("\"\(key)\" ต้องเป็นข้อความ", "\"\(key)\" must be a string") }
        if s.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\r" && $0 != "\t" }) {
            throw WebError.invalid("\"\(key)\" มีอักขระควบคุม", "\"\(key)\" contains control characters")
        }
        return s
    }

    /// `{"subject": "…", "เรื่อง": "…"}`: letter fields by English or Thai name, strings only;
    /// ที่ and สถานะ come from the register, never from the caller.
    static func letterFields(_ value: Any?, kind: LetterKind) throws -> [String: String] {
        guard let value, !(value is NSNull) else { return [:] }
        guard let object = value as? [String: Any] else {
            throw WebError.invalid("\"fields\" ต้องเป็นออบเจกต์", "\"fields\" must be an object of field names and strings")
        }
        var out: [String: String] = [:]
        let offered = Set(formFields(kind))
        for key in object.keys.sorted() {
            guard let f = try? LetterField(parsing: key), offered.contains(f) else {
                throw WebError.invalid(
                    "ไม่รู้จักช่อง \(key) ของ\(kind.thaiName)",
                    "unknown field \(key) for \(kind.englishWithArticle) letter; use " + formFields(kind).map(name).joined(separator: ", "))
            }
            if let s = try string(object, key) { out[f.rawValue] = text(s) }
        }
        return out
    }

    static func iso(_ millis: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(millis) / 1000))
    }

    struct BodyJSON: Encodable {
        var id: String
        var body: String
        var body_base: String
    }

    struct DraftJSON: Encodable {
        var id: String
        var kind: String
        var status: String
        var fields: [String: String]
        var issues: [String: String]
    }

    struct Registered: Encodable {
        var id: String
        var number: String
        var book: String
        var register_number: Int
        var year: Int
        var status: String
    }

    struct Signed: Encodable {
        var id: String
        var officer: String
        var position: String
        var time: String
    }

    struct Sent: Encodable {
        struct Dispatch: Encodable {
            var id: String
            var offices: [String]
            var existing: Bool
        }
        var id: String
        var number: String
        var status: String
        var dispatches: [Dispatch]
    }

    struct OfficeJSON: Encodable {
        var office: String
        var code: String
        var nodes: [String]
    }

    struct ConflictJSON: Encodable {
        struct Value: Encodable {
            var value: String
            var shown: Bool
            var who: String
            var keep: String
        }
        var document: String
        var title: String
        var field: String
        var values: [Value]
    }

    struct HitJSON: Encodable {
        var id: String
        var kind: String
        var subject: String
        var number: String
        var sender: String
        var date: String?
    }
}
