import ArgumentParser
import Foundation
import SarabanCore
import SarabanNode

// `saraban history`, `saraban diff` and `saraban doc show --at` (issue 7).

/// One change of `saraban history --json`. Every key is always present (`office`, `nodeID` null
/// when unknown).
struct HistoryEntryJSON: Encodable {
    var change: String
    var author: String
    @OrNull var office: String?
    @OrNull var nodeID: String?
    var seq: UInt64
    var time: Int64
    var timeISO: String
    var timeThai: String
    /// Fields of the document the change touched, sorted.
    var fields: [String]
    var operations: [OperationJSON]
    /// Other authors' changes it had seen (`AUTHOR/SEQ`, sorted).
    var deps: [String]
    /// `verified` or `unsigned`.
    var signature: String

    struct OperationJSON: Encodable {
        var action: String
        var field: String?
        var value: String?
        var count: Int?
    }

    init(_ e: HistoryEntry) {
        change = e.change.id.description
        author = e.author.replica.hex
        office = e.author.office
        nodeID = e.author.nodeID
        seq = e.change.seq
        time = e.change.time
        timeISO = When.iso(e.change.time)
        timeThai = When.thai(e.change.time)
        fields = e.fields
        operations = e.operations.map {
            OperationJSON(action: $0.action.rawValue, field: $0.field, value: $0.value, count: $0.count)
        }
        deps = e.change.deps.sortedEntries.map { ChangeID(author: $0.author, seq: $0.seq).description }
        signature = e.signature.rawValue
    }
}

enum SignatureText {
    static func of(_ s: SignatureStatus) -> String {
        switch s {
        case .verified: return "verified"
        case .unsigned: return "unsigned (local log only)"
        }
    }
}

/// `saraban diff --json`: one element per field that differs.
struct FieldDiffJSON: Encodable {
    /// The field; absent for the document's lifecycle.
    var field: String?
    /// `register`, `text`, `set`, `list` or `lifecycle`.
    var type: String
    /// Register: the values shown before and after (several while in conflict). Text: the whole
    /// text. Lifecycle: "live" or "deleted".
    var old: [ValueJSON]?
    var new: [ValueJSON]?
    var oldText: String?
    var newText: String?
    /// Text: the line diff, each line `{ "kind" : "same|removed|added", "text" : … }`.
    var lines: [LineJSON]?
    /// Set: elements added and removed.
    var added: [String]?
    var removed: [String]?
    /// List: entries appended (and entries of the earlier state missing from the later one,
    /// which happens only when FROM is not in TO's past).
    var appended: [EntryJSON]?
    var missing: [EntryJSON]?
    var oldStatus: String?
    var newStatus: String?

    struct LineJSON: Encodable {
        var kind: String
        var text: String
    }

    init(_ d: FieldDiff) {
        field = d.field
        switch d {
        case .register(_, let o, let n):
            type = "register"
            old = o.map { ValueJSON(value: $0) }
            new = n.map { ValueJSON(value: $0) }
        case .text(_, let o, let n, let ls):
            type = "text"
            oldText = o
            newText = n
            lines = ls.map { LineJSON(kind: $0.kind.rawValue, text: $0.text) }
        case .set(_, let a, let r):
            type = "set"
            added = a
            removed = r
        case .list(_, let a, let m):
            type = "list"
            appended = a.map(EntryJSON.init)
            missing = m.isEmpty ? nil : m.map(EntryJSON.init)
        case .lifecycle(let o, let n):
            type = "lifecycle"
            oldStatus = o ? "deleted" : "live"
            newStatus = n ? "deleted" : "live"
        }
    }
}

enum DiffText {
    static func render(_ diffs: [FieldDiff], colour: Bool = Colour.enabled) -> [String] {
        func plus(_ s: String) -> String { Colour.paint("+ " + s, .green, enabled: colour) }
        func minus(_ s: String) -> String { Colour.paint("- " + s, .red, enabled: colour) }
        func values(_ v: [Value]) -> String {
            v.isEmpty ? "(absent)" : v.map { $0.description.debugDescription }.joined(separator: " | ")
        }
        var out: [String] = []
        for d in diffs {
            switch d {
            case .register(let f, let o, let n):
                out.append("\(f) (register): \(values(o)) → \(values(n))")
            case .text(let f, _, _, let lines):
                out.append("\(f) (text):")
                for l in lines {
                    switch l.kind {
                    case .same: out.append("    " + l.text)
                    case .removed: out.append("  " + minus(l.text))
                    case .added: out.append("  " + plus(l.text))
                    }
                }
            case .set(let f, let a, let r):
                out.append("\(f) (set):")
                for v in r { out.append("  " + minus(v)) }
                for v in a { out.append("  " + plus(v)) }
            case .list(let f, let a, let m):
                out.append("\(f) (list):")
                for e in m { out.append("  " + minus(e.value.description) + "  (\(DocumentText.who(e.stamp)))") }
                for e in a { out.append("  " + plus(e.value.description) + "  (\(DocumentText.who(e.stamp)))") }
            case .lifecycle(let o, let n):
                out.append("status: \(o ? "deleted" : "live") → \(n ? "deleted" : "live")")
            }
        }
        return out
    }
}

extension Saraban {
    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every change that touched a document, in causal order, with author, time and fields.",
            discussion: """
                Causal order: a change is listed after every change it had seen (sorted by its first \
                operation's Lamport counter, then author; every node lists the same order). SIGNATURE says \
                whether the change arrived in a signed envelope whose signature verified; changes known only \
                from the local change log (written here, or merged from a change file) show \
                "unsigned (local log only)". Use a CHANGE with `saraban doc show DOC --at CHANGE` or \
                `saraban diff DOC --from CHANGE --to CHANGE`.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The document id or a unique prefix of it.") var doc: String
        @Option(help: ArgumentHelp("Only changes that touched this field.", valueName: "F")) var field: String?

        func run() async throws {
            try options.withNode { node in
                let id = try node.resolveDocument(doc)
                let entries = try node.history(of: id, field: field)
                if output.json {
                    try Output.json(entries.map(HistoryEntryJSON.init))
                    return
                }
                let d = try node.document(id)
                Output.line(
                    "history of \(id) (\(d.kind))\(field.map { ", field \($0)" } ?? ""): \(entries.count) "
                        + "change\(entries.count == 1 ? "" : "s"), oldest first")
                var t = Table(
                    ["CHANGE", "AUTHOR", "TIME (UTC)", "เวลาไทย", "FIELDS", "SIGNATURE", "OPERATIONS"],
                    maxWidths: [nil, 32, nil, nil, 40, nil, nil])
                for e in entries {
                    t.add([
                        Table.Cell(e.change.id.description), Table.Cell(e.author.label), Table.Cell(When.iso(e.change.time)),
                        Table.Cell(When.thai(e.change.time)), Table.Cell(e.fields.isEmpty ? "-" : e.fields.joined(separator: ", ")),
                        Table.Cell(SignatureText.of(e.signature), e.signature == .verified ? .green : .yellow),
                        Table.Cell(e.operations.map(\.description).joined(separator: "; ")),
                    ])
                }
                for l in t.render() { Output.line(l) }
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Field-level differences of a document between two of its changes.",
            discussion: """
                Compares the document as it stood right after --from with the document right after --to \
                (see `saraban doc show DOC --at CHANGE`): registers old → new, text as -/+ lines, sets as \
                removed/added elements, lists as appended entries. CHANGE is AUTHOR/SEQ as \
                `saraban history DOC` prints it (any unique prefix of the author).
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The document id or a unique prefix of it.") var doc: String
        @Option(help: ArgumentHelp("The earlier change.", valueName: "CHANGE")) var from: String
        @Option(help: ArgumentHelp("The later change.", valueName: "CHANGE")) var to: String

        func run() async throws {
            try options.withNode { node in
                let id = try node.resolveDocument(doc)
                let space = try node.space(ofDocument: id)
                let a = try node.resolveChange(from, space: space)
                let b = try node.resolveChange(to, space: space)
                let old = try node.document(id, at: a)
                let new = try node.document(id, at: b)
                let diffs = Node.diff(old, new)
                if output.json {
                    struct Out: Encodable {
                        var document: String
                        var from: String
                        var to: String
                        var fields: [FieldDiffJSON]
                    }
                    try Output.json(Out(document: id.description, from: a.description, to: b.description, fields: diffs.map(FieldDiffJSON.init)))
                    return
                }
                Output.line("diff \(id) from \(a) to \(b)")
                if diffs.isEmpty {
                    Output.line("no differences")
                    return
                }
                for l in DiffText.render(diffs) { Output.line(l) }
            }
        }
    }
}

/// `saraban doc show DOC --at CHANGE` and `--conflicts`.
enum ShowVariants {
    static func at(_ node: Node, _ id: DocID, _ change: String, json: Bool) throws {
        let cid = try node.resolveChange(change, space: try node.space(ofDocument: id))
        let d = try node.document(id, at: cid)
        if json {
            try Output.json(DocumentJSON(d))
            return
        }
        Output.line("as of:    change \(cid)")
        for line in DocumentText.render(d) { Output.line(line) }
    }

    static func conflicts(_ node: Node, _ id: DocID, json: Bool) throws {
        let d = try node.document(id)
        let dir = AuthorDirectory(node)
        let entries = d.conflicts.map { ConflictEntryJSON(d, $0, dir) }
        if json {
            try Output.json(entries)
            return
        }
        if entries.isEmpty {
            Output.line("no conflicts in \(id)")
            return
        }
        for l in ConflictText.render(entries) { Output.line(l) }
    }
}
