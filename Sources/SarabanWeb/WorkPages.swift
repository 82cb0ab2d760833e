import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanCore
import SarabanNode
import SarabanOffice
import SarabanStorage

// Routing (เกษียน) and work lists, conflicts with resolve buttons, a letter's history, and
// search (Docs/WEB.md).

extension WebApp {
    func addWorkPages(_ router: Router<WebContext>) {
        router.get("/work") { [self] _, context in
            let (s, user) = try Self.sessionUser(context)
            let lang = context.web.lang
            let today = ThaiDate(unixMillis: now)
            let names = [user.name, user.displayName]
            let row = { (w: WorkItem) -> [String: Any] in
                [
                    "id": w.letter.id.description, "subject": w.letter.fields[LetterField.subject.rawValue] ?? "",
                    "number": w.letter.fields[LetterField.number.rawValue] ?? "", "instruction": w.hop?.instruction ?? "",
                    "due": w.due.map { PageRenderer.beDate(Self.millis($0), lang) } ?? "", "overdue": w.overdue,
                    "status": lang == .th ? w.letter.status.rawValue : w.letter.status.english,
                ]
            }
            let assigned = try node.assigned(to: names, today: today).filter { Self.cleared($0.letter, user) }.map(row)
            let toSign = try node.awaitingSignature(by: try signerNames(user), today: today).map(row)
            return pages.html(
                pages.page(
                    "work", title: WriteL10n.text("work", lang), lang: lang, user: user, csrf: s.csrf,
                    values: [
                        "assigned": assigned, "has_assigned": !assigned.isEmpty, "to_sign": toSign, "has_to_sign": !toSign.isEmpty,
                    ]))
        }
        router.post("/letters/{id}/route") { [self] request, context in
            let id = try Self.letterID(context)
            try Self.require(context, Self.routers)
            let form = context.web.form
            return try pageAction(id, request, context) {
                try route(id, to: form["to"] ?? "", note: form["note"] ?? "", due: form["due"], context: context)
                return "routed"
            }
        }
        router.get("/conflicts") { [self] request, context in
            let (s, user) = try Self.sessionUser(context)
            let lang = context.web.lang
            let done = try request.query()["done"] == "resolved"
            var values: [String: Any] = ["conflicts": try conflictRows(lang, user: user), "csrf": s.csrf]
            if done { values["notice"] = WriteL10n.text("resolved", lang) }
            return pages.html(
                pages.page("conflicts", title: WriteL10n.text("conflicts", lang), lang: lang, user: user, csrf: s.csrf, values: values))
        }
        router.post("/conflicts/resolve") { [self] _, context in
            try Self.require(context, Self.drafters)
            let form = context.web.form
            guard let id = DocID(form["document"] ?? "") else { throw WebError.notFound }
            try resolve(id, field: form["field"] ?? "", keep: form["keep"] ?? "")
            return Self.redirect("/conflicts?done=resolved")
        }
        router.get("/letters/{id}/history") { [self] _, context in
            let (s, user) = try Self.sessionUser(context)
            let lang = context.web.lang
            let id = try Self.letterID(context)
            let d = try node.document(id)
            if let v = try? node.letter(id) { try authorize(v, context, via: "history") }
            let entries: [[String: Any]] = try node.history(of: id).reversed().map { e in
                [
                    "when": PageRenderer.beDateTime(e.change.time, lang), "who": e.author.label, "change": e.change.id.description,
                    "ops": e.operations.map(Self.describe),
                ]
            }
            return pages.html(
                pages.page(
                    "history", title: WriteL10n.text("history", lang), lang: lang, user: user, csrf: s.csrf,
                    values: ["title": d.display(LetterField.subject.rawValue) ?? id.description, "entries": entries]))
        }
        router.get("/search") { [self] request, context in
            let (s, user) = try Self.sessionUser(context)
            let lang = context.web.lang
            let q = try request.query()
            var values: [String: Any] = [
                "q": q["q"] ?? "", "from": q["from"] ?? "", "to": q["to"] ?? "",
                "date_example": ThaiDate(unixMillis: now).formatted(),
            ]
            if q["q"] != nil || q["from"] != nil || q["to"] != nil {
                do {
                    let hits = try search(q, user: user)
                    values["searched"] = true
                    values["count"] = hits.count
                    values["hits"] = hits.map { h -> [String: Any] in
                        [
                            "id": h.document.description, "subject": h.subject, "number": h.number, "sender": h.sender,
                            "date": Self.dayText(h.day, lang),
                        ]
                    }
                } catch let e as WebError where e.status == .badRequest {
                    values["problem"] = Self.message(e, lang)
                }
            }
            return pages.html(
                pages.page("search", title: WriteL10n.text("search", lang), lang: lang, user: user, csrf: s.csrf, values: values))
        }
    }

    static let routers: Set<Role> = [.head]

    // MARK: - Operations shared by the pages and the API

    func route(_ id: DocID, to: String, note: String, due: String?, context: WebContext) throws {
        var from: String?
        if case .session(_, let u) = context.web.principal { from = u.displayName.isEmpty ? u.name : u.displayName }
        try node.routeLetter(id, to: to, note: note, from: from, due: due)
    }

    /// Settles one kept conflict of `field`: `keep` is the change whose value stays (a register)
    /// or `keep:ELEMENT` / `drop:ELEMENT` (a set removal made concurrently with adds).
    func resolve(_ id: DocID, field: String, keep: String) throws {
        let d = try node.document(id)
        guard d.conflicts.contains(where: { $0.field == field }) else {
            throw WebError(
                .conflict, "no-conflict", th: "ช่องนี้ไม่มีข้อมูลขัดแย้งแล้ว (อาจมีผู้แก้ไปแล้ว)",
                en: "this field holds no conflict now (perhaps someone resolved it already)")
        }
        if keep.hasPrefix("keep:") || keep.hasPrefix("drop:") {
            try node.resolveSetRemoval(id, field: field, element: String(keep.dropFirst(5)), keep: keep.hasPrefix("keep:"))
            return
        }
        guard let r = d.registers[field] else {
            throw WebError.invalid("ช่องนี้แก้ข้อมูลขัดแย้งจากหน้านี้ไม่ได้", "this conflict cannot be resolved here")
        }
        let change = try node.resolveChange(keep, among: r.entries.map(\.stamp.change), space: try node.space(ofDocument: id))
        try node.resolveRegister(id, field: field, keep: change)
    }

    /// Every kept conflict on a register or a set field, each value with who wrote it and when
    /// (a secret letter's only for users cleared for it).
    func conflictRows(_ lang: Lang, user: WebUser?) throws -> [[String: Any]] {
        let dir = AuthorDirectory(node)
        var out: [[String: Any]] = []
        for (d, conflicts) in try node.conflictedDocuments() {
            let title = d.display(LetterField.subject.rawValue) ?? d.display("name") ?? d.kind
            if let c = d.display(LetterField.secrecy.rawValue), let s = try? Secrecy(parsing: c), s > .none,
                (user?.clearance.flatMap { try? Secrecy(parsing: $0) } ?? (user == nil ? s : Secrecy.none)) < s
            {
                continue
            }
            for c in conflicts {
                var values: [[String: Any]] = []
                switch c {
                case .register(let field, let entries):
                    for (i, e) in entries.enumerated() {
                        values.append([
                            "value": e.value.description, "shown": i == 0, "who": dir[e.stamp.change.author].label,
                            "when": PageRenderer.beDateTime(e.stamp.time, lang), "resolvable": true,
                            "keep": e.stamp.change.description, "action": WriteL10n.text("keep_this", lang),
                        ])
                    }
                    out.append(["document": d.id.description, "title": title, "field": field, "values": values])
                case .setRemoval(let field, let value, let removal, let adds):
                    for a in adds {
                        values.append([
                            "value": "+ " + value, "shown": true, "who": dir[a.change.author].label,
                            "when": PageRenderer.beDateTime(a.time, lang), "resolvable": true, "keep": "keep:" + value,
                            "action": WriteL10n.text("keep_element", lang),
                        ])
                    }
                    values.append([
                        "value": "− " + value, "shown": false, "who": dir[removal.change.author].label,
                        "when": PageRenderer.beDateTime(removal.time, lang), "resolvable": true, "keep": "drop:" + value,
                        "action": WriteL10n.text("drop_element", lang),
                    ])
                    out.append(["document": d.id.description, "title": title, "field": field, "values": values])
                case .deletion, .lifecycle:
                    continue
                }
            }
        }
        return out
    }

    /// `q`, `from` and `to` of a search form or the API's query, run against the index; a secret
    /// letter is found only by users cleared for it.
    func search(_ q: FormData, user: WebUser?) throws -> [SearchHit] {
        func day(_ key: String) throws -> Int? {
            guard let text = q[key], !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
            do { return Node.dayKey(try ThaiDate(parsing: text)) } catch {
                throw WebError.invalid(error.thai, error.english)
            }
        }
        let text = q["q"] ?? ""
        guard text.unicodeScalars.count <= 200 else {
            throw WebError.invalid("คำค้นยาวเกิน 200 ตัวอักษร", "the search text is longer than 200 characters")
        }
        let limit = Int(q["limit"] ?? "") ?? 100
        let hits = try node.search(SearchQuery(text: text, from: try day("from"), to: try day("to"), limit: limit))
        return hits.filter { h in
            guard let s = try? Secrecy(parsing: h.secrecy), s > .none else { return true }
            guard let user else { return false }
            return (user.clearance.flatMap { try? Secrecy(parsing: $0) } ?? Secrecy.none) >= s
        }
    }

    /// The names a user signs under: the officers whose name is the user's display or login name.
    func signerNames(_ user: WebUser) throws -> [String] {
        guard Self.signers.contains(user.role) else { return [] }
        let mine = Set([user.name, user.displayName])
        let named = try node.officers.list().map(\.name).filter { mine.contains($0) }
        return named.isEmpty ? [user.displayName] : named
    }

    static func cleared(_ v: LetterView, _ user: WebUser) -> Bool { (try? checkCleared(v, user)) != nil }

    static func describe(_ op: OperationSummary) -> String {
        let field = op.field.map { $0 + " " } ?? ""
        switch op.action {
        case .insertText: return "\(field)+ \(op.value ?? "")"
        case .deleteText: return "\(field)− \(op.count ?? 0)"
        default: return "\(op.action.rawValue) \(field)\(op.value ?? "")"
        }
    }

    /// Noon of the day in Thai time, as milliseconds (for the page's date format).
    static func millis(_ d: ThaiDate) -> Int64 {
        var days = 0
        // Days since 1970-01-01 (civil algorithm), the Gregorian year from the BE one.
        let y = d.ceYear - (d.month <= 2 ? 1 : 0)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (d.month + 9) % 12
        let doy = (153 * mp + 2) / 5 + d.day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        days = era * 146_097 + doe - 719_468
        return Int64(days) * 86_400_000 + 5 * 3_600_000
    }

    static func dayText(_ key: Int, _ lang: Lang) -> String {
        guard key > 0, let d = try? ThaiDate(year: key / 10000, month: key / 100 % 100, day: key % 100) else { return "" }
        return PageRenderer.beDate(millis(d), lang)
    }
}
