import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanCore
import SarabanNode
import SarabanOffice

// The inbox (dispatches awaiting receipt) as a page and as JSON, with receive and return.

extension WebApp {
    func addInbox(_ router: Router<WebContext>) {
        if options.relay { return }
        router.get("/inbox") { [self] request, context in
            let (s, user) = try context.web.sessionUser()
            let lang = context.web.lang
            let q = try request.query()
            let t = PageRenderer.strings(lang)
            let clearance = context.web.principal?.clearance ?? .none
            let items = try node.correspondence.inbox().map { inboxRow($0, clearance: clearance, lang: lang, csrf: s.csrf) }
            var values: [String: Any] = ["items": items, "has_items": !items.isEmpty, "count": items.count]
            if let n = q["received"], Int(n) != nil { values["notice"] = "\(t["received_notice"]!) \(n)" }
            if q["returned"] == "1" { values["notice"] = t["returned_notice"]! }
            return pages.html(pages.page("inbox", title: t["inbox_nav"]!, lang: lang, user: user, csrf: s.csrf, values: values))
        }
        router.post("/inbox/{id}/receive") { [self] _, context in
            let result = try receiveDispatch(context)
            return Response(status: .seeOther, headers: [.location: "/inbox?received=\(result.allocation.number)"])
        }
        router.post("/inbox/{id}/return") { [self] _, context in
            _ = try returnDispatch(context, reason: context.web.form["reason"])
            return Response(status: .seeOther, headers: [.location: "/inbox?returned=1"])
        }
        router.get("/api/v1/inbox") { [self] _, context in
            let clearance = context.web.principal?.clearance ?? .none
            return try Self.json(try node.correspondence.inbox().map { InboxJSON($0, clearance: clearance) })
        }
        router.post("/api/v1/inbox/{id}/receive") { [self] _, context in
            let r = try receiveDispatch(context)
            return try Self.json(
                ReceivedJSON(
                    record: r.record.description, number: r.allocation.number, year: r.allocation.year, existing: r.existing))
        }
        router.post("/api/v1/inbox/{id}/return") { [self] request, context in
            struct Body: Decodable { var reason: String }
            let body = try await request.decode(as: Body.self, context: context)
            let receipt = try returnDispatch(context, reason: body.reason)
            return try Self.json(ReturnedJSON(receipt: receipt?.description))
        }
    }

    /// The dispatch named by the route's `{id}` (a full document id: 404 for anything else).
    func dispatchID(_ context: WebContext) throws -> DocID {
        guard let text = context.parameters.get("id"), let id = DocID(text) else { throw WebError.notFound }
        return id
    }

    func receiveDispatch(_ context: WebContext) throws -> ReceiveResult {
        let id = try dispatchID(context)
        let r = try node.correspondence.receive(id)
        logger.notice("dispatch received", metadata: ["dispatch": "\(id)", "by": "\(context.web.principal?.label ?? "?")"])
        try? live.check()
        return r
    }

    func returnDispatch(_ context: WebContext, reason: String?) throws -> DocID? {
        let id = try dispatchID(context)
        let reason = (reason ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty, reason.count <= 500 else {
            throw WebError.invalid("กรุณาระบุเหตุผลที่ส่งคืน (ไม่เกิน 500 ตัวอักษร)", "give the reason for returning it (at most 500 characters)")
        }
        let r = try node.correspondence.returnDispatch(id, reason: reason)
        logger.notice("dispatch returned", metadata: ["dispatch": "\(id)", "by": "\(context.web.principal?.label ?? "?")"])
        try? live.check()
        return r
    }

    func inboxRow(_ i: InboxItem, clearance: Secrecy, lang: Lang, csrf: String) -> [String: Any] {
        let d = i.dispatch
        let f = d.letter.fields
        let secrecy = LetterAccess.secrecy(f)
        return Self.dropEmpty([
            "id": d.id.description, "urgency": d.urgency.rawValue, "urgency_en": d.urgency.english,
            "secrecy": secrecy == .none ? "" : secrecy.rawValue, "from": d.office,
            "number": d.letter.stamp.letterNumber, "date": d.letter.stamp.date,
            "subject": LetterAccess.subject(f, clearance: clearance),
            "attachments": d.letter.attachments.map(\.name).joined(separator: ", "),
            "sent": PageRenderer.beDateTime(d.sent, lang), "csrf": csrf,
        ])
    }
}

/// One inbox entry in `GET /api/v1/inbox`.
struct InboxJSON: Encodable {
    var id: String
    var from_office: String
    var from_node: String
    var urgency: String
    var urgency_en: String
    var secrecy: String
    var sent: String
    var letter_number: String
    var date: String
    var subject: String
    /// True when the subject is withheld: a secret letter above the caller's clearance.
    var withheld: Bool
    var attachments: [AttachmentJSON]

    init(_ i: InboxItem, clearance: Secrecy) {
        let d = i.dispatch
        id = d.id.description
        from_office = d.office
        from_node = d.from.text
        urgency = d.urgency.rawValue
        urgency_en = d.urgency.english
        let s = LetterAccess.secrecy(d.letter.fields)
        secrecy = s.english
        sent = PeerListEntry.time(d.sent)
        letter_number = d.letter.stamp.letterNumber
        date = d.letter.stamp.date
        withheld = s > clearance
        subject = LetterAccess.subject(d.letter.fields, clearance: clearance)
        attachments = withheld ? [] : d.letter.attachments.map { AttachmentJSON(name: $0.name, size: $0.size, hash: $0.hash, url: nil) }
    }
}

struct ReceivedJSON: Encodable {
    var record: String
    var number: Int
    var year: Int
    var existing: Bool
}

struct ReturnedJSON: Encodable {
    var receipt: String?
}
