import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanOffice

// Drafting (Docs/WEB.md, "Drafting"): a new letter of each of the six kinds, its fields checked by
// SarabanOffice with the messages shown beside them, the body edited as text and saved as text
// operations from the copy the form was loaded with; register, sign as an officer, send.

extension WebApp {
    /// The writing half of the pages and the API (drafting, routing, work lists, conflicts, search).
    func addWriting(_ router: Router<WebContext>) {
        if options.relay { return }
        addDraftPages(router)
        addWorkPages(router)
        addWriteAPI(router)
    }

    func addDraftPages(_ router: Router<WebContext>) {
        router.get("/letters/new") { [self] request, context in
            let (s, user) = try Self.sessionUser(context)
            let lang = context.web.lang
            let q = try request.query()
            guard let k = q["kind"], !k.isEmpty else {
                let kinds = LetterKind.allCases.map { ["value": $0.english, "label": Self.kindLabel($0, lang)] }
                return pages.html(
                    pages.page("letters_new", title: WriteL10n.text("new_letter", lang), lang: lang, user: user, csrf: s.csrf,
                        values: ["kinds": kinds]))
            }
            let kind = try Self.kind(k)
            return draftForm(kind: kind, fields: [:], context: context, session: s, user: user, issues: [:])
        }
        router.post("/letters") { [self] _, context in
            let (s, user) = try Self.sessionUser(context)
            try Self.require(context, Self.drafters)
            let form = context.web.form
            let kind = try Self.kind(form["kind"] ?? "")
            let fields = Self.formFields(kind).reduce(into: [String: String]()) { out, f in
                if let v = form[Self.name(f)], !v.isEmpty { out[f.rawValue] = Self.text(v) }
            }
            let blocking = Self.issues(kind: kind, fields: fields, lang: context.web.lang, blockingOnly: true)
            if !blocking.isEmpty {
                return draftForm(
                    kind: kind, fields: fields, context: context, session: s, user: user, issues: blocking,
                    problem: WriteL10n.text("fix_fields", context.web.lang), status: .badRequest)
            }
            let id = try createDraft(kind: kind, fields: fields)
            return Self.redirect("/letters/\(id)/edit?done=saved")
        }
        router.get("/letters/{id}/edit") { [self] request, context in
            let id = try Self.letterID(context)
            let done = try request.query()["done"]
            return try letterPage(id, context: context, notice: done.flatMap { notice($0, id: id, lang: context.web.lang) })
        }
        router.post("/letters/{id}/edit") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.drafters)
            return try pageAction(id, request, context) {
                try saveDraft(id, form: context.web.form, lang: context.web.lang)
                return "saved"
            }
        }
        router.post("/letters/{id}/register") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.drafters)
            return try pageAction(id, request, context) {
                _ = try registerLetter(id)
                return "registered"
            }
        }
        router.post("/letters/{id}/sign") { [self] _, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.signers)
            let form = context.web.form
            do {
                _ = try await sign(id, officer: form["officer"] ?? "", passphrase: form["passphrase"] ?? "", context: context)
            } catch let e as WebError where e.status != .tooManyRequests && e.status != .serviceUnavailable {
                return try letterPage(id, context: context, problem: Self.message(e, context.web.lang), status: e.status)
            }
            return Self.redirect("/letters/\(id)/edit?done=signed")
        }
        router.post("/letters/{id}/send") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.drafters)
            return try pageAction(id, request, context) {
                _ = try send(id, to: context.web.form.all("to"))
                return "sent"
            }
        }
    }

    // MARK: - Operations shared by the pages and the API

    func createDraft(kind: LetterKind, fields: [String: String]) throws -> DocID {
        try node.createLetter(kind: kind, fields: fields.sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) })
    }

    /// Saves a draft form: the fields changed from the values the form was loaded with (others'
    /// concurrent writes to untouched fields stay), then the body as text operations from its copy.
    func saveDraft(_ id: DocID, form: FormData, lang: Lang) throws {
        let v = try node.letter(id)
        var changes: [(LetterField, String)] = []
        for f in Self.formFields(v.kind) where f != .body {
            guard let new = form[Self.name(f)].map(Self.text) else { continue }
            let loaded = form["orig_" + Self.name(f)].map(Self.text)
            if new == (loaded ?? v.fields[f.rawValue] ?? "") || new == (v.fields[f.rawValue] ?? "") { continue }
            if new.isEmpty && Self.choiceFields.contains(f) { continue }
            changes.append((f, new))
        }
        var merged = v.fields
        for (f, value) in changes { merged[f.rawValue] = value }
        let blocking = Self.issues(kind: v.kind, fields: merged, lang: lang, blockingOnly: true)
        if let first = blocking.first {
            throw WebError.invalid(first.value, first.value)
        }
        if let body = form[Self.name(.body)].map(Self.text) {
            try saveBody(id, body: body, base: form["body_base"])
        }
        for (f, value) in changes { try node.editLetter(id, field: f.rawValue, value: value) }
    }

    /// The body written from the copy named by `base` (a ``BodyToken``); without one, the smallest
    /// replacement of the body as it is now.
    func saveBody(_ id: DocID, body: String, base: String?) throws {
        if let base, !base.isEmpty {
            guard let bytes = BodyToken.open(id, base) else {
                throw WebError(
                    .conflict, "stale-form", th: "แบบฟอร์มนี้หมดอายุหรือไม่ได้โหลดจากหนังสือนี้ กรุณาโหลดหน้าใหม่",
                    en: "this form is stale or was not loaded from this letter: reload the page (nothing was saved)")
            }
            try node.editLetterBody(id, base: bytes, text: body)
        } else if body != (try node.letterBody(id)).text {
            try node.editLetter(id, field: LetterField.body.rawValue, value: body)
        }
    }

    /// Registers the letter; fields still missing are named in both languages (the node's
    /// message carries the list in English only).
    func registerLetter(_ id: DocID) throws -> Allocation {
        let missing = node.missingFields(try node.letter(id))
        if !missing.isEmpty {
            throw WebError.invalid(
                "ลงทะเบียนไม่ได้: " + missing.map(\.thai).joined(separator: ", "),
                "cannot register: " + missing.map(\.english).joined(separator: "; "))
        }
        return try node.registerLetter(id)
    }

    /// Signs as `officer`, the key unlocked by `passphrase` on the Argon2id queue. A wrong
    /// passphrase signs nothing and counts against the caller's login lock-out.
    func sign(_ id: DocID, officer: String, passphrase: String, context: WebContext) async throws -> SignatureRecord {
        let who = context.web.principal?.label ?? "?"
        let now = self.now
        if throttle.lockedUntil(account: who, address: context.remoteKey, now: now) != nil {
            throw WebError(
                .tooManyRequests, "locked-out", th: "ใส่รหัสผ่านผิดหลายครั้ง ระบบระงับชั่วคราว",
                en: "too many wrong passphrases: try again later")
        }
        guard !officer.isEmpty, !passphrase.isEmpty else {
            throw WebError.invalid("ต้องเลือกผู้ลงนามและใส่รหัสผ่านกุญแจลงนาม", "choose the officer and give the key's passphrase")
        }
        let node = self.node
        let secret = SecureBytes(Array(passphrase.utf8))
        guard let result = await checks.run({ Result { try node.officers.sign(id, officer: officer, passphrase: secret) } }) else {
            throw WebError.busy
        }
        do {
            let record = try result.get()
            logger.notice("letter signed", metadata: ["letter": "\(id)", "officer": "\(officer)", "by": "\(who)"])
            return record
        } catch let e as NodeError where e.code == .wrongPassphrase {
            throttle.recordFailure(account: who, address: context.remoteKey, now: now)
            throw WebError(
                .forbidden, "wrong-passphrase", th: "รหัสผ่านกุญแจลงนามไม่ถูกต้อง ไม่ได้ลงนาม",
                en: "the officer's passphrase is wrong; nothing was signed")
        }
    }

    func send(_ id: DocID, to recipients: [String]) throws -> SendResult {
        let to = recipients.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !to.isEmpty else {
            throw WebError.invalid("ต้องเลือกสำนักงานผู้รับอย่างน้อยหนึ่งแห่ง", "choose at least one office to send to")
        }
        return try node.correspondence.send(id, to: to)
    }

    // MARK: - The draft page

    /// Runs a form's action and goes back to the letter's page: with a notice when it worked, or
    /// the page again with the refusal (in the page's language, status of the error) when not.
    func pageAction(_ id: DocID, _ request: Request, _ context: WebContext, _ body: () throws -> String) throws -> Response {
        do {
            let done = try body()
            return Self.redirect("/letters/\(id)/edit?done=\(done)")
        } catch {
            let e = ErrorMiddleware.webError(error, logger: logger, request: request)
            if e.status == .internalServerError || e.status == .notFound || e.code == "csrf" { throw e }
            return try letterPage(id, context: context, problem: Self.message(e, context.web.lang), status: e.status)
        }
    }

    func notice(_ done: String, id: DocID, lang: Lang) -> String? {
        guard ["saved", "registered", "signed", "sent", "routed"].contains(done) else { return nil }
        var text = WriteL10n.text(done, lang)
        if let v = try? node.letter(id) {
            if done == "registered", let n = v.fields[LetterField.number.rawValue] { text += " " + n }
            if done == "sent" { text += " " + v.deliveries.map(\.office).joined(separator: ", ") }
        }
        return text
    }

    /// The page of an existing letter: its form (read-only once it cannot be edited), then
    /// register, sign, send and route as its state and the user's role allow.
    func letterPage(
        _ id: DocID, context: WebContext, notice: String? = nil, problem: String? = nil, status: HTTPResponse.Status = .ok
    ) throws -> Response {
        let (s, user) = try Self.sessionUser(context)
        let lang = context.web.lang
        let v = try node.letter(id)
        // Audited like every other look at a secret letter (allowed or refused).
        try authorize(v, context, via: "edit page")
        var fields = v.fields
        let body = try node.letterBody(id)
        fields[LetterField.body.rawValue] = body.text
        let received = v.origin != nil || v.receiveEntry != nil
        let editable = !received && [.draft, .registered, .returned].contains(v.status)
        var extra: [String: Any] = [
            "id": id.description, "status": lang == .th ? v.status.rawValue : v.status.english,
            "editable": editable,
            "body_base": editable ? BodyToken.seal(id, body.base) : "",
            "can_register": !received && v.status == .draft && Self.drafters.contains(user.role),
            "can_sign": !received && v.kind.isSigned && editable && Self.signers.contains(user.role),
            "can_send": !received && (v.status == .draft || v.status == .registered) && Self.drafters.contains(user.role),
            "can_route": user.role == .head,
            "due_example": ThaiDate(unixMillis: now).formatted(),
        ]
        if let number = v.fields[LetterField.number.rawValue] { extra["number"] = number }
        if (extra["can_sign"] as? Bool) == true {
            extra["officers"] = try node.officers.list().map { ["name": $0.name, "position": $0.position] }
        }
        if (extra["can_send"] as? Bool) == true {
            extra["offices"] = try node.correspondence.offices().map {
                ["office": $0.label, "code": $0.code, "node": $0.nodes.first?.text ?? $0.office]
            }
        }
        let sigs = v.signatures.map { ["officer": $0.officer, "position": $0.position, "when": PageRenderer.beDateTime($0.time, lang)] }
        extra["signatures"] = sigs
        extra["has_signatures"] = !sigs.isEmpty
        extra["deliveries"] = v.deliveries.map { ["office": $0.office] }
        extra["has_deliveries"] = !v.deliveries.isEmpty
        let routing = v.routing.map {
            ["from": $0.from, "to": $0.to, "instruction": $0.instruction, "date": $0.date, "time": $0.time]
        }
        extra["routing"] = routing
        extra["has_routing"] = !routing.isEmpty
        let locked: Set<LetterField> = editable && v.status != .registered ? [] : (editable ? [.date, .subject] : Set(LetterField.allCases))
        return draftForm(
            kind: v.kind, fields: fields, context: context, session: s, user: user,
            issues: Self.issues(kind: v.kind, fields: fields, lang: lang, blockingOnly: false), locked: locked,
            action: "/letters/\(id)/edit", extra: extra, notice: notice, problem: problem, status: status)
    }

    func draftForm(
        kind: LetterKind, fields: [String: String], context: WebContext, session: Session, user: WebUser,
        issues: [String: String], locked: Set<LetterField> = [], action: String = "/letters", extra: [String: Any] = [:],
        notice: String? = nil, problem: String? = nil, status: HTTPResponse.Status = .ok
    ) -> Response {
        let lang = context.web.lang
        let rows: [[String: Any]] = Self.formFields(kind).map { f in
            let value = fields[f.rawValue] ?? ""
            var row: [String: Any] = [
                "name": Self.name(f), "label": lang == .th ? f.rawValue : "\(f.english.capitalized) (\(f.rawValue))",
                "value": value, "required": kind.requiredFields.contains(f), "multiline": f == .body,
                "locked": locked.contains(f),
            ]
            if let issue = issues[f.rawValue] { row["issue"] = issue }
            let choices = Self.choices(f, kind: kind, lang: lang)
            if !choices.isEmpty {
                row["has_choices"] = true
                row["choices"] = choices.map { c -> [String: Any] in
                    ["value": c.value, "label": c.label, "selected": c.value == value]
                }
            }
            return row
        }
        var values = extra
        if values["editable"] == nil { values["editable"] = true }  // a new letter's form
        values["fields"] = rows
        values["kind"] = kind.english
        values["action"] = action
        values["csrf"] = session.csrf
        values["heading"] = Self.kindLabel(kind, lang)
        if let notice { values["notice"] = notice }
        if let problem { values["problem"] = problem }
        return pages.html(
            pages.page("draft", title: Self.kindLabel(kind, lang), lang: lang, user: user, csrf: session.csrf, values: values),
            status: status)
    }

    // MARK: - Helpers

    static let drafters: Set<Role> = [.clerk, .officer, .head, .admin]
    static let signers: Set<Role> = [.officer, .head]

    static func sessionUser(_ context: WebContext) throws -> (Session, WebUser) {
        guard case .session(let s, let u) = context.web.principal else { throw WebError.unauthenticated }
        return (s, u)
    }

    /// Refuses a user whose role is not among `roles` (a token's scope was checked already).
    static func require(_ context: WebContext, _ roles: Set<Role>) throws {
        if case .session(_, let u) = context.web.principal, !roles.contains(u.role) { throw WebError.forbidden }
    }

    /// A secret letter (ลับ, ลับมาก) opens only for users cleared for its class.
    static func checkCleared(_ v: LetterView, _ user: WebUser) throws {
        guard let c = v.fields[LetterField.secrecy.rawValue], let secrecy = try? Secrecy(parsing: c), secrecy > .none else { return }
        let cleared = user.clearance.flatMap { try? Secrecy(parsing: $0) } ?? Secrecy.none
        if cleared < secrecy {
            throw WebError(
                .forbidden, "not-cleared", th: "ท่านไม่ได้รับอนุญาตให้เปิดหนังสือชั้นความลับนี้",
                en: "you are not cleared for this letter's secrecy class")
        }
    }

    static func letterID(_ context: WebContext) throws -> DocID {
        guard let id = DocID(context.parameters.get("id") ?? "") else { throw WebError.notFound }
        return id
    }

    static func kind(_ text: String) throws -> LetterKind {
        if let k = LetterKind.allCases.first(where: { $0.english == text || $0.rawValue == text }) { return k }
        do { return try LetterKind(parsing: text) } catch {
            throw WebError.invalid(
                "ไม่รู้จักชนิดหนังสือ ใช้ได้: " + LetterKind.allCases.map(\.rawValue).joined(separator: ", "),
                "unknown kind of letter; use one of " + LetterKind.allCases.map(\.english).joined(separator: ", "))
        }
    }

    static func kindLabel(_ k: LetterKind, _ lang: Lang) -> String {
        lang == .th ? k.thaiName : "\(k.english.capitalized) letter (\(k.thaiName))"
    }

    /// The form's name of a field (and the API's key): its English name.
    static func name(_ f: LetterField) -> String { f.english }

    /// A browser's textarea ends lines with CR LF; the letter keeps LF.
    static func text(_ s: String) -> String { s.replacingOccurrences(of: "\r\n", with: "\n") }

    /// The fields a draft of `kind` offers, in the order of the Regulation's forms.
    static func formFields(_ kind: LetterKind) -> [LetterField] {
        var out: [LetterField] = [.urgency, .secrecy]
        if !kind.subtypes.isEmpty { out.append(.subtype) }
        out += [.agency, .date, .subject, .salutation, .recipient, .sender, .reference, .enclosures, .body, .closing, .signer, .position]
        return out
    }

    static let choiceFields: Set<LetterField> = [.urgency, .secrecy, .subtype]

    static func choices(_ f: LetterField, kind: LetterKind, lang: Lang) -> [(value: String, label: String)] {
        switch f {
        case .urgency: return Urgency.allCases.map { ($0.rawValue, lang == .th ? $0.rawValue : $0.english) }
        case .secrecy:
            return Secrecy.allCases.filter { $0 != .topSecret }.map { ($0.rawValue, lang == .th ? $0.rawValue : $0.english) }
        case .subtype: return kind.subtypes.map { ($0, $0) }
        default: return []
        }
    }

    /// What SarabanOffice says of each field's value, by Thai field name: a required field left
    /// empty (blocks registration, not drafting) and values it cannot take (block saving).
    static func issues(kind: LetterKind, fields: [String: String], lang: Lang, blockingOnly: Bool) -> [String: String] {
        var out: [String: String] = [:]
        func say(_ f: LetterField, _ e: OfficeError) { out[f.rawValue] = lang == .th ? e.thai : e.english }
        let found = validateLetter(kind: kind, fields: fields)
        if !blockingOnly {
            for f in kind.requiredFields {
                if let e = found.first(where: { $0.code == .missingField && $0.thai.hasSuffix("ต้องมี" + f.rawValue) }) { say(f, e) }
            }
        }
        if let e = found.first(where: { $0.code == .invalidValue && $0.thai.hasPrefix("ประเภท") }) { say(.subtype, e) }
        for f in [LetterField.urgency, .secrecy, .date] {
            guard let value = fields[f.rawValue], !value.isEmpty else { continue }
            do throws(OfficeError) {
                switch f {
                case .urgency: _ = try Urgency(parsing: value)
                case .secrecy: _ = try Secrecy(parsing: value)
                default: _ = try ThaiDate(parsing: value)
                }
            } catch { say(f, error) }
        }
        return out
    }

    static func message(_ e: WebError, _ lang: Lang) -> String { lang == .th ? e.th : e.en }

    static func redirect(_ to: String) -> Response {
        Response(status: .seeOther, headers: [.location: to, .cacheControl: "no-store"])
    }
}

extension WriteL10n {
    static func text(_ key: String, _ lang: Lang) -> String {
        guard let v = table[key] else { return key }
        return lang == .th ? v.th : v.en
    }
}

/// The body's copy in a form: the text field's state as the form was loaded (``BodyCopy/base``)
/// with a keyed BLAKE2b tag over the letter id and those bytes, under a key this process drew at
/// start. Only a copy this node handed out is decoded (a forged or edited one is refused before
/// any of its bytes are read as a text state); a form from before a restart asks for a reload.
enum BodyToken {
    static let key = SecureBytes(randomCount: 32)

    static func tag(_ id: DocID, _ bytes: [UInt8]) -> [UInt8] {
        (try? BLAKE2b.hash(Array(id.description.utf8) + [0] + bytes, outputLength: 32, key: key)) ?? []
    }

    static func seal(_ id: DocID, _ bytes: [UInt8]) -> String {
        AccountStore.base64URL(bytes) + "." + AccountStore.base64URL(tag(id, bytes))
    }

    static func open(_ id: DocID, _ token: String) -> [UInt8]? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let bytes = decode(parts[0]), let mac = decode(parts[1]) else { return nil }
        guard Sodium.constantTimeEqual(mac, tag(id, bytes)) else { return nil }
        return bytes
    }

    static func decode(_ s: Substring) -> [UInt8]? {
        var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while t.count % 4 != 0 { t += "=" }
        return Data(base64Encoded: t).map { [UInt8]($0) }
    }
}
