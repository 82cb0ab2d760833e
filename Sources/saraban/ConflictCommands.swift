import ArgumentParser
import Foundation
import SarabanCore
import SarabanNode

// `saraban conflicts`, `saraban resolve` and `saraban doc show --conflicts` (issue 7).

/// Times as the CLI shows them: ISO 8601 UTC for machines, and the Thai calendar in Thai time
/// (UTC+7, Buddhist Era year) for people.
enum When {
    static let thaiMonths = [
        "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.", "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
    ]

    static func iso(_ ms: Int64) -> String { Output.time(ms) }

    /// `26 พ.ย. 2569 05:42:50` (Thai time, UTC+7; Buddhist Era year = CE + 543).
    static func thai(_ ms: Int64) -> String {
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = TimeZone(secondsFromGMT: 7 * 3600)!
        let c = cal.dateComponents(
            [.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: Double(ms) / 1000))
        func two(_ n: Int?) -> String { let n = n ?? 0; return n < 10 ? "0\(n)" : "\(n)" }
        return "\(c.day ?? 0) \(thaiMonths[(c.month ?? 1) - 1]) \((c.year ?? 0) + 543) \(two(c.hour)):\(two(c.minute)):\(two(c.second))"
    }
}

/// One value in a conflict, with everything an auditor needs to know about where it came from.
/// Every key is always present (null when unknown or not applicable), so the shape is stable.
struct ConflictValueJSON: Encodable {
    /// `write` (a register value), `add` / `remove` (set), `delete` / `restore` / `edit` (document).
    var action: String
    /// The value written, or the set element; null for delete, restore and edit.
    @OrNull var value: ValueJSON?
    /// Fields edited (for `edit`: edits made concurrently with a deletion).
    @OrNull var fields: [String]?
    /// Whether this is the value shown (the deterministic winner).
    var shown: Bool
    /// Replica id (32 hex digits) of the author.
    var author: String
    /// The author's office name when known, else null.
    @OrNull var office: String?
    /// The author's full node id when known (this node, configured peers), else null.
    @OrNull var nodeID: String?
    var change: String
    /// The operation id (null for `edit`, which stands for a whole change).
    @OrNull var op: String?
    var time: Int64
    var timeISO: String
    var timeThai: String

    init(
        action: String, value: Value? = nil, fields: [String]? = nil, shown: Bool = false, author: AuthorInfo,
        change: ChangeID, op: OpID?, time: Int64
    ) {
        self.action = action
        self.value = value.map { ValueJSON(value: $0) }
        self.fields = fields
        self.shown = shown
        self.author = author.replica.hex
        self.office = author.office
        self.nodeID = author.nodeID
        self.change = change.description
        self.op = op?.description
        self.time = time
        self.timeISO = When.iso(time)
        self.timeThai = When.thai(time)
    }

    init(action: String, value: Value? = nil, shown: Bool = false, _ s: Stamp, _ dir: AuthorDirectory) {
        self.init(
            action: action, value: value, shown: shown, author: dir[s.change.author], change: s.change, op: s.op,
            time: s.time)
    }
}

/// One conflict of `saraban conflicts --json`. Every key is always present (`field` and `title`
/// null when not applicable).
struct ConflictEntryJSON: Encodable {
    var document: String
    var kind: String
    @OrNull var title: String?
    /// `register`, `setRemoval`, `deletion` or `lifecycle` (see Docs/CRDT.md).
    var type: String
    /// The field (register and set conflicts).
    @OrNull var field: String?
    var values: [ConflictValueJSON]
    /// How to settle it, as a command line.
    var resolve: String

    init(_ d: Document, _ c: Conflict, _ dir: AuthorDirectory) {
        document = d.id.description
        kind = d.kind
        title = DocumentSummaryJSON(d).title
        let id = d.id.description
        switch c {
        case .register(let f, let entries):
            type = "register"
            field = f
            values = entries.enumerated().map { i, e in
                ConflictValueJSON(action: "write", value: e.value, shown: i == 0, e.stamp, dir)
            }
            resolve = "saraban resolve \(id) \(Self.quote(f)) --keep CHANGE   (or --value VALUE)"
        case .setRemoval(let f, let v, let removal, let kept):
            type = "setRemoval"
            field = f
            values =
                [ConflictValueJSON(action: "remove", value: .string(v), removal, dir)]
                + kept.map { ConflictValueJSON(action: "add", value: .string(v), shown: true, $0, dir) }
            resolve = "saraban resolve \(id) \(Self.quote(f)) --keep \(Self.quote(v))   (or --drop \(Self.quote(v)))"
        case .deletion(let dels, let edits):
            type = "deletion"
            values =
                dels.map { ConflictValueJSON(action: "delete", shown: true, $0.stamp, dir) }
                + edits.sorted { $0.key < $1.key }.map { author, mark in
                    ConflictValueJSON(
                        action: "edit", fields: mark.fields, author: dir[author],
                        change: ChangeID(author: author, seq: mark.seq), op: nil, time: mark.time)
                }
            resolve = "saraban doc delete \(id)   (keep it deleted)   or   saraban doc restore \(id)"
        case .lifecycle(let entries):
            type = "lifecycle"
            values = entries.enumerated().map { i, e in
                ConflictValueJSON(action: e.value == .bool(true) ? "restore" : "delete", shown: i == 0, e.stamp, dir)
            }
            resolve = "saraban doc delete \(id)   or   saraban doc restore \(id)"
        }
    }

    /// Quotes a shell word when it needs it.
    static func quote(_ s: String) -> String {
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { u in
            !" \t\n'\"\\$`!*?[]{}()<>|&;#~".unicodeScalars.contains(u)
        }
        return plain ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// The text form of conflicts: per document a heading, an aligned table (one row per value) and
/// the command that settles each conflict.
enum ConflictText {
    static let headers = ["FIELD", "CONFLICT", "VALUE", "OFFICE", "NODE", "TIME (UTC)", "เวลาไทย", "CHANGE"]

    static func render(_ entries: [ConflictEntryJSON], colour: Bool = Colour.enabled) -> [String] {
        var out: [String] = []
        var byDoc: [(String, [ConflictEntryJSON])] = []
        for e in entries {
            if byDoc.last?.0 == e.document { byDoc[byDoc.count - 1].1.append(e) } else { byDoc.append((e.document, [e])) }
        }
        for (i, (doc, list)) in byDoc.enumerated() {
            if i > 0 { out.append("") }
            let first = list[0]
            var heading = Colour.paint(doc, .bold, enabled: colour) + "  \(first.kind)"
            if let t = first.title, !t.isEmpty { heading += "  " + DisplayWidth.truncate(t, to: 60) }
            out.append(heading)
            var table = Table(headers, maxWidths: [24, nil, 40, 32, nil, nil, nil, nil])
            table.indent = "  "
            for c in list {
                for v in c.values {
                    let value: String
                    switch v.action {
                    case "write": value = (v.shown ? "* " : "  ") + (v.value.map { $0.value.description } ?? "")
                    case "add": value = "+ " + (v.value.map { $0.value.description } ?? "")
                    case "remove": value = "- " + (v.value.map { $0.value.description } ?? "")
                    case "edit": value = "edited " + (v.fields ?? []).joined(separator: ", ")
                    default: value = (v.shown ? "* " : "  ") + v.action + "d"
                    }
                    let style: Colour.Style? = v.shown ? .green : .yellow
                    table.add([
                        Table.Cell(c.field ?? "(document)"), Table.Cell(c.type), Table.Cell(value, style),
                        Table.Cell(v.office ?? String(v.author.prefix(8))), Table.Cell(String(v.author.prefix(8))),
                        Table.Cell(v.timeISO), Table.Cell(v.timeThai), Table.Cell(v.change),
                    ])
                }
            }
            out += table.render(colour: colour)
            for c in list {
                out.append("  " + Colour.paint("resolve:", .cyan, enabled: colour) + " " + c.resolve)
            }
        }
        return out
    }

    static func summary(_ entries: [ConflictEntryJSON]) -> String {
        let docs = Set(entries.map(\.document)).count
        return "\(entries.count) conflict\(entries.count == 1 ? "" : "s") in \(docs) document\(docs == 1 ? "" : "s")"
    }
}

extension Saraban {
    struct Conflicts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every document and field holding concurrent values.",
            discussion: """
                One row per kept value: the field, the conflict type, the value (* marks the one shown), \
                the author's office and node, the time (UTC and Thai) and the change id. Settle a conflict \
                with `saraban resolve` (registers and sets) or `saraban doc delete`/`doc restore` (a \
                deletion against concurrent edits). Prints "no conflicts" (or [] with --json) and exits 0 \
                when there are none.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Option(help: ArgumentHelp("Only documents of this space (its name or id, as `saraban space list` shows).", valueName: "S"))
        var space: String?

        func run() async throws {
            try options.withNode { node in
                let spaceID = try space.map { text throws(NodeError) in try node.resolveSpace(text).id }
                let dir = AuthorDirectory(node)
                let entries = try node.conflictedDocuments(space: spaceID).flatMap { d, cs in cs.map { ConflictEntryJSON(d, $0, dir) } }
                if output.json {
                    try Output.json(entries)
                    return
                }
                if entries.isEmpty {
                    Output.line("no conflicts")
                    return
                }
                for l in ConflictText.render(entries) { Output.line(l) }
                Output.line("")
                Output.line(ConflictText.summary(entries))
            }
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Settle a conflict on a field with one new change that supersedes every conflicting value.",
            discussion: """
                Register field: --keep CHANGE writes the value from that change again; --value V writes a new \
                value. CHANGE is AUTHOR/SEQ as `saraban conflicts` prints it (any unique prefix of the author).
                Set field with a contested removal: --keep ELEMENT adds it again (settling the removal); \
                --drop ELEMENT removes it (a removal that has now seen the concurrent adds). CHANGE of the \
                kept add or of the removal also works.
                A document deleted while others edited it is settled with `saraban doc delete DOC` (keep it \
                deleted) or `saraban doc restore DOC` (bring it back with the edits).
                Once the new change reaches the other nodes (sync, or `doc export`/`doc merge`), the conflict \
                is gone everywhere.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The document id or a unique prefix of it.") var doc: String
        @Argument(help: "The field in conflict.") var field: String
        @Option(help: ArgumentHelp("Keep this value (register: a change; set: an element or change).", valueName: "CHANGE"))
        var keep: String?
        @Option(help: ArgumentHelp("Write this new value instead (registers).", valueName: "V"))
        var value: String?
        @Option(help: ArgumentHelp("Remove this contested set element.", valueName: "ELEMENT"))
        var drop: String?

        func validate() throws {
            let n = [keep, value, drop].compactMap { $0 }.count
            guard n == 1 else {
                throw ValidationError("give exactly one of --keep CHANGE, --value V or --drop ELEMENT")
            }
        }

        func run() async throws {
            try options.withNode { node in
                let id = try node.resolveDocument(doc)
                let d = try node.document(id)
                var kept: String?
                let change: Change?
                switch d.kind(of: field) {
                case .set:
                    guard value == nil else {
                        throw NodeError(.invalidArgument, "'\(field)' is a set: use --keep ELEMENT or --drop ELEMENT")
                    }
                    let s = d.sets[field]!
                    let arg = keep ?? drop!
                    var element = arg
                    var keepIt = keep != nil
                    if s.contested(arg).isEmpty, arg.contains("/") {
                        // A change id: of a kept add (keep) or of the removal (drop).
                        var owner: [ChangeID: (String, Bool)] = [:]
                        for v in s.contestedValues {
                            for c in s.contested(v) {
                                owner[c.removal.stamp.change] = (v, false)
                                for a in c.keptAdds { owner[a.change] = (v, true) }
                            }
                        }
                        let cid = try node.resolveChange(arg, among: Array(owner.keys))
                        (element, keepIt) = owner[cid]!
                        if drop != nil { keepIt = false }
                    }
                    change = try node.resolveSetRemoval(id, field: field, element: element, keep: keepIt)
                    kept = (keepIt ? "kept " : "dropped ") + element.debugDescription
                case .register:
                    let r = d.registers[field]!
                    if !r.isConflicted, keep == nil || (try? node.resolveChange(keep!, among: r.entries.map(\.stamp.change))) == nil {
                        throw NodeError(
                            .refused,
                            "field '\(field)' of \(id) holds no conflict now (one value, from change "
                                + "\(r.entries.first.map(\.stamp.change.description) ?? "-")); perhaps it was resolved "
                                + "already. To change it use `saraban doc set \(id) \(ConflictEntryJSON.quote(field)) VALUE`")
                    }
                    if let keep {
                        let cid = try node.resolveChange(keep, among: r.entries.map(\.stamp.change))
                        change = try node.resolveRegister(id, field: field, keep: cid)
                        kept = "kept " + (r.entries.first { $0.stamp.change == cid }?.value.description ?? "").debugDescription
                            + " (change \(cid))"
                    } else if let value {
                        change = try node.resolveRegister(id, field: field, value: .string(value))
                        kept = "wrote " + value.debugDescription
                    } else {
                        throw NodeError(.invalidArgument, "'\(field)' is a register: use --keep CHANGE or --value V")
                    }
                default:
                    // Let the node say why (text never conflicts, unknown field).
                    _ = try node.resolveRegister(id, field: field, value: .string(value ?? ""))
                    return
                }
                if output.json {
                    struct Out: Encodable {
                        var document: String
                        var field: String
                        var result: String
                        var change: String?
                    }
                    try Output.json(Out(document: id.description, field: field, result: kept ?? "", change: change?.id.description))
                } else if let change {
                    Output.line("resolved \(field) of \(id): \(kept ?? "") in change \(change.id)")
                } else {
                    Output.line("\(field) of \(id) already holds only that value; nothing to do")
                }
            }
        }
    }
}
