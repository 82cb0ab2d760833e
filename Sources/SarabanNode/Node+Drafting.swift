import Foundation
import SarabanCore
import SarabanOffice
import SarabanStorage

// What the web app's writing half needs from the node (Docs/WEB.md, "Drafting", "Search",
// "Work lists"): the body of a draft edited from the copy a form was loaded with, the search
// index, and the letters waiting for someone.

/// A letter's body as a form loads it: the text, and the text field's state it was read from
/// (``TextCRDT`` snapshot bytes), which ``Node/editLetterBody(_:base:text:)`` edits from.
public struct BodyCopy: Sendable {
    public var text: String
    public var base: [UInt8]
}

/// A letter on someone's work list.
public struct WorkItem: Sendable {
    public var letter: LetterView
    /// The last routing hop to the person (assigned-to lists).
    public var hop: RoutingEntry?
    /// กำหนดเสร็จ as a date, when one was set.
    public var due: ThaiDate?
    public var overdue: Bool
}

extension Node {
    /// The letter field (a register, not one of ``LetterField``) holding the date routing set as
    /// the deadline (กำหนดเสร็จ), as `13 มิถุนายน 2569`.
    public static let dueField = "กำหนดเสร็จ"

    // MARK: - The body as text

    /// The body of letter `id` and the state it was read from.
    public func letterBody(_ id: DocID) throws(NodeError) -> BodyCopy {
        let d = try document(id)
        let t = d.texts[LetterField.body.rawValue] ?? TextCRDT()
        var w = BinaryWriter(capacity: 256)
        t.encode(into: &w)
        return BodyCopy(text: t.string, base: w.bytes)
    }

    /// Writes `text` as the body of letter `id`, edited from `base` (a ``BodyCopy/base`` of this
    /// letter): only what differs between the copy and `text` is changed, as text operations, so
    /// what another clerk saved meanwhile stays. The same rules as ``editLetter(_:field:value:insertAt:)``.
    public func editLetterBody(_ id: DocID, base: [UInt8], text: String) throws(NodeError) {
        let v = try letter(id)
        try checkEditable(v, .body)
        let copy: TextCRDT
        do {
            var r = BinaryReader(base, maxLength: base.count)
            copy = try TextCRDT.decode(from: &r)
        } catch {
            throw NodeError(
                .invalidArgument,
                "ข้อความที่แก้ไม่ได้โหลดจากหนังสือนี้ กรุณาโหลดใหม่ / the edited text was not loaded from this letter: reload it")
        }
        _ = try editLetterDocument(id) { tx, docs in
            try tx.editText(id, field: LetterField.body.rawValue, from: copy, to: text, in: &docs)
        }
    }

    // MARK: - Search

    /// A letter's row in the search index (nil: not a letter).
    public static func searchRow(_ d: Document) -> SearchRow? {
        guard let v = letterView(d) else { return nil }
        let f = v.fields
        var number = f[LetterField.number.rawValue] ?? ""
        if let r = v.receiveEntry { number += (number.isEmpty ? "" : " ") + "\(r.number)/\(r.year)" }
        let sender = [v.origin?.office, f[LetterField.sender.rawValue], f[LetterField.agency.rawValue]]
            .compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
        let date = f[LetterField.date.rawValue].flatMap { try? ThaiDate(parsing: $0) } ?? v.receiveEntry?.date
        var row = SearchRow(
            subject: f[LetterField.subject.rawValue] ?? "", number: number, sender: sender,
            body: f[LetterField.body.rawValue] ?? "", day: date.map(Self.dayKey) ?? 0,
            kind: v.origin != nil || v.receiveEntry != nil ? "received" : (v.status == .draft ? "draft" : "sent"))
        row.secrecy = f[LetterField.secrecy.rawValue] ?? ""
        return row
    }

    /// yyyymmdd in the Buddhist Era.
    public static func dayKey(_ d: ThaiDate) -> Int { d.year * 10000 + d.month * 100 + d.day }

    /// Letters matching `q`; the index is brought up to date first (letters changed by this
    /// node or received by sync since the last search).
    public func search(_ q: SearchQuery) throws(NodeError) -> [SearchHit] {
        do {
            try store.refreshSearch(Self.searchRow)
            return try store.search(q)
        } catch { throw NodeError(error) }
    }

    // MARK: - Work lists

    /// Letters whose last routing hop went to one of `names` (a user's login and display name),
    /// not closed or cancelled: the "assigned to me" list, deadlines first.
    public func assigned(to names: [String], today: ThaiDate) throws(NodeError) -> [WorkItem] {
        let wanted = Set(names.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        var out: [WorkItem] = []
        for d in try documents(ofKind: LetterDocument.kind) where !d.isDeleted {
            guard let v = Self.letterView(d), v.status != .closed, v.status != .cancelled,
                let hop = v.routing.last, wanted.contains(hop.to)
            else { continue }
            out.append(workItem(v, d, hop: hop, today: today))
        }
        return Self.byDeadline(out)
    }

    /// Drafts and registered letters naming one of `names` as ผู้ลงนาม and not yet signed by
    /// them: the "waiting for my signature" list.
    public func awaitingSignature(by names: [String], today: ThaiDate) throws(NodeError) -> [WorkItem] {
        let wanted = Set(names.filter { !$0.isEmpty })
        var out: [WorkItem] = []
        for d in try documents(ofKind: LetterDocument.kind) where !d.isDeleted {
            guard let v = Self.letterView(d), v.status == .draft || v.status == .registered, v.kind.isSigned,
                let signer = v.fields[LetterField.signer.rawValue], wanted.contains(signer),
                !v.signatures.contains(where: { $0.officer == signer }), v.origin == nil
            else { continue }
            out.append(workItem(v, d, hop: nil, today: today))
        }
        return Self.byDeadline(out)
    }

    func workItem(_ v: LetterView, _ d: Document, hop: RoutingEntry?, today: ThaiDate) -> WorkItem {
        let due = d.display(Self.dueField).flatMap { try? ThaiDate(parsing: $0) }
        return WorkItem(letter: v, hop: hop, due: due, overdue: due.map { $0 < today } ?? false)
    }

    static func byDeadline(_ items: [WorkItem]) -> [WorkItem] {
        items.sorted { a, b in
            switch (a.due, b.due) {
            case let (x?, y?) where x != y: return x < y
            case (_?, nil): return true
            case (nil, _?): return false
            default: return a.letter.id < b.letter.id
            }
        }
    }

    /// Routes the letter (เกษียน, ``routeLetter(_:to:note:from:)``) and, with `due`, sets its
    /// กำหนดเสร็จ, in one change each.
    public func routeLetter(_ id: DocID, to: String, note: String, from: String?, due: String?) throws(NodeError) {
        var dueText: String?
        if let due, !due.trimmingCharacters(in: .whitespaces).isEmpty {
            do { dueText = try ThaiDate(parsing: due).formatted() } catch { throw NodeError(error) }
        }
        try routeLetter(id, to: to, note: note, from: from)
        if let dueText {
            try editLetterDocument(id) { tx, docs in try tx.set(id, field: Self.dueField, value: .string(dueText), in: &docs) }
        }
    }
}
