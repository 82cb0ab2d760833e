import ArgumentParser
import Foundation
import SarabanCore
import SarabanNode

struct Saraban: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "saraban",
        abstract: "An offline-first e-Office node for Thai government offices.",
        discussion: """
            Every command takes --data DIR (default: $SARABAN_HOME, else ./saraban-data).
            Exit statuses are listed in Docs/CLI.md.
            """,
        version: SarabanVersion.line,
        subcommands: [
            Init.self, ID.self, Status.self, Doc.self, Text.self, SetCommand.self, ListCommand.self,
            Conflicts.self, Resolve.self, History.self, Diff.self,
            LetterCommand.self, RegisterCommand.self, OfficerCommand.self, OfficeCommand.self, UserCommand.self,
            TokenCommand.self,
            Serve.self, Sync.self, InspectSync.self, Peer.self,
            SpaceCommand.self, Dev.self,
        ]
    )
}

extension Saraban {
    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a node: data directory, Ed25519 identity, database and config.",
            discussion: "Prints the new node id. Refuses a directory that already holds a node, changing nothing.")

        @OptionGroup var options: DataOptions
        @Option(help: ArgumentHelp("The office (ส่วนราชการ) this node serves.", valueName: "NAME"))
        var office: String
        @Option(help: ArgumentHelp("The office's letter code (รหัสตัวพยัญชนะ), for example มท.", valueName: "LETTERCODE"))
        var code: String?
        @Flag(help: "Create a relay: it stores and forwards the spaces it carries and never holds a space key.")
        var relay = false

        func run() async throws {
            let node = try Node.initialize(dataDir: options.directory, office: office, letterCode: code, relay: relay)
            defer { node.close() }
            Output.note("initialised node for \(node.config.office) in \(node.dataDirectory.path)")
            Output.line(node.nodeID.text)
        }
    }

    struct ID: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "id", abstract: "Print this node's id.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            try options.withNode { node in
                if output.json {
                    struct Out: Encodable {
                        var nodeID: String
                        var replica: String
                        var office: String
                    }
                    try Output.json(Out(nodeID: node.nodeID.text, replica: node.replica.hex, office: node.config.office))
                } else {
                    Output.line(node.nodeID.text)
                }
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the office, node id, document and change counts, and database size.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            try await options.withNode { node in
                let s = try node.status()
                let peers = await StatusPeers.rows(node)
                let spaces = StatusSpaces.rows(node)
                let forks = StatusForks.rows(node)
                let withheld = StatusWithholding.withheld(node)
                let stale = StatusWithholding.stale(node)
                if output.json {
                    try Output.json(
                        StatusJSON(status: s, peers: peers, spaces: spaces, forks: forks, withheld: withheld, stale: stale))
                    return
                }
                Output.line("office:     \(s.office)\(s.letterCode.map { " (\($0))" } ?? "")")
                Output.line("node id:    \(s.nodeID)")
                Output.line("data:       \(s.dataDirectory)")
                Output.line("documents:  \(s.documents)\(s.deletedDocuments > 0 ? " (\(s.deletedDocuments) deleted)" : "")")
                Output.line("changes:    \(s.changes)\(s.pendingChanges > 0 ? " (\(s.pendingChanges) waiting)" : "")")
                Output.line("database:   \(Output.bytes(s.databaseBytes))")
                for l in StatusPeers.render(peers) { Output.line(l) }
                for l in StatusSpaces.render(spaces) { Output.line(l) }
                for l in StatusForks.render(forks) { Output.line(l) }
                for l in StatusWithholding.renderWithheld(withheld) { Output.line(l) }
                let staleAfter = (try? node.currentConfig())?.staleAfter ?? NodeConfig.defaultStaleAfter
                for l in StatusWithholding.renderStale(stale, staleAfter: staleAfter) { Output.line(l) }
            }
        }
    }
}

// MARK: - doc

extension Saraban {
    struct Doc: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create, edit, show, list, delete, export and merge documents.",
            subcommands: [New.self, Set.self, Get.self, Show.self, List.self, Delete.self, Restore.self, Export.self,
                Merge.self])
    }
}

extension Saraban.Doc {
    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a document and print its id.",
            discussion: "Example: saraban doc new --kind letter --set subject=ขออนุมัติเดินทาง --set urgency=ด่วน")

        @OptionGroup var options: DataOptions
        @Option(help: "The document kind, for example letter, memo, order.")
        var kind = "document"
        @Option(name: .customLong("set"), help: ArgumentHelp("Set a field (repeatable).", valueName: "FIELD=VALUE"))
        var assignments: [String] = []
        @Option(help: ArgumentHelp("The space (name or id) to create it in; default: the node's own space.", valueName: "SPACE"))
        var space: String?

        func run() async throws {
            let fields = try assignments.map { text throws(NodeError) in try parseAssignment(text) }
            guard !kind.isEmpty else { throw NodeError(.invalidArgument, "--kind is empty") }
            try options.withNode { node in
                let spaceID = try space.map { text throws(NodeError) in try node.resolveSpace(text).id }
                let id = try node.createDocument(kind: kind, fields: fields, space: spaceID)
                Output.line(id.description)
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a field to a text value (this also resolves a conflict on it).")

        @OptionGroup var options: DataOptions
        @OptionGroup var target: DocField
        @Argument(help: "The value (UTF-8 text).") var value: String

        func run() async throws {
            try target.edit(options) { node, doc, field in try node.set(doc, field: field, value: .string(value)) }
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a field's value exactly as stored (sets and lists one item per line).")

        @OptionGroup var options: DataOptions
        @OptionGroup var target: DocField

        func run() async throws {
            let field = target.field
            let d = try options.withNode { node in try node.document(try node.resolveDocument(target.doc)) }
            guard let value = d.display(field) else {
                let known = d.fields.map(\.name)
                throw NodeError(
                    .unknownField,
                    "document \(d.id) has no field '\(field)'"
                        + (known.isEmpty ? "" : "; its fields are: \(known.joined(separator: ", "))"))
            }
            Output.line(value)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a document: every field and every kept conflict.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The document id or a unique prefix of it.") var doc: String
        @Option(help: ArgumentHelp("Show the document as it stood right after this change (AUTHOR/SEQ).", valueName: "CHANGE"))
        var at: String?
        @Flag(help: "Show only the conflicts, as `saraban conflicts` does.") var conflicts = false

        func run() async throws {
            try options.withNode { node in
                if let at {
                    return try ShowVariants.at(node, try node.resolveDocument(doc), at, json: output.json)
                }
                if conflicts { return try ShowVariants.conflicts(node, try node.resolveDocument(doc), json: output.json) }
                let d = try node.document(try node.resolveDocument(doc))
                if output.json {
                    try Output.json(DocumentJSON(d))
                } else {
                    for line in DocumentText.render(d) { Output.line(line) }
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the documents.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Flag(help: "Include deleted documents.") var all = false

        func run() async throws {
            try options.withNode { node in
                let docs = try node.documents().filter { d in
                    // A deleted document stays listed while edits made concurrently with its deletion are kept.
                    all || !d.isDeleted || d.conflicts.contains { if case .deletion = $0 { true } else { false } }
                }
                if output.json {
                    try Output.json(docs.map(DocumentSummaryJSON.init))
                    return
                }
                for d in docs {
                    let s = DocumentSummaryJSON(d)
                    var line = "\(s.id)  \(s.kind)"
                    if s.deleted { line += "  [deleted]" }
                    if s.conflicts > 0 { line += "  [\(s.conflicts) conflict\(s.conflicts == 1 ? "" : "s")]" }
                    if let t = s.title { line += "  \(t)" }
                    Output.line(line)
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a document (edits made concurrently elsewhere stay visible as a conflict).")

        @OptionGroup var options: DataOptions
        @Argument(help: "The document id or a unique prefix of it.") var doc: String

        func run() async throws {
            try options.withNode { node in try node.deleteDocument(try node.resolveDocument(doc)) }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Restore a deleted document.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The document id or a unique prefix of it.") var doc: String

        func run() async throws {
            try options.withNode { node in try node.restoreDocument(try node.resolveDocument(doc)) }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the changes of a document (with their causal past) to a change file.",
            discussion: """
                Carry the file to another office and run `saraban doc merge FILE` there. For a document \
                of a synced space the file holds the space's signed, encrypted envelopes, which the \
                other office verifies as it would over sync.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The document id or a unique prefix of it.") var doc: String
        @Argument(help: "The change file to create (never overwritten).") var file: String

        func run() async throws {
            try options.withNode { node in
                let id = try node.resolveDocument(doc)
                let r = try node.exportDocument(id, to: file)
                if output.json {
                    struct Out: Encodable {
                        var document: String
                        var file: String
                        var changes: Int
                        var envelopes: Int
                        @OrNull var space: String?
                    }
                    try Output.json(
                        Out(document: id.description, file: file, changes: r.changes, envelopes: r.envelopes, space: r.space?.hex))
                } else {
                    let n = r.changes
                    let sealed = r.space.map { " (\(r.envelopes) signed envelope\(r.envelopes == 1 ? "" : "s") of space \($0.hex))" } ?? ""
                    Output.line("exported \(n) change\(n == 1 ? "" : "s") of \(id) to \(file)\(sealed)")
                }
            }
        }
    }

    struct Merge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Apply the changes in a change file (idempotent).",
            discussion: "Reports how many changes were applied, were already here (duplicate), or wait for others.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "A file written by `saraban doc export`.") var file: String

        func run() async throws {
            try options.withNode { node in
                let r = try node.merge(file: file)
                if output.json {
                    try Output.json(r)
                } else {
                    Output.line("applied \(r.applied), duplicate \(r.duplicates), waiting \(r.waiting)")
                }
            }
        }
    }
}

// MARK: - text, set, list

extension Saraban {
    struct Text: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Edit a text field character by character (positions count Unicode scalars).",
            subcommands: [Insert.self, Delete.self])

        struct Insert: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Insert TEXT at position POS.")
            @OptionGroup var at: TextPosition
            @Argument(help: "The text to insert.") var text: String

            func run() async throws { try at.edit { try $0.insertText($1, field: $2, at: $3, text) } }
        }

        struct Delete: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete LEN characters from position POS.")
            @OptionGroup var at: TextPosition
            @Argument(help: "How many characters.") var len: String

            func run() async throws {
                try at.edit(checking: { try parseCount(len, "LEN") }) { try $0.deleteText($1, field: $2, at: $3, count: $4) }
            }
        }
    }

    struct SetCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set", abstract: "Add to or remove from a set field (add wins over a concurrent remove).",
            subcommands: [Add.self, Remove.self])

        struct Add: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add VALUE to the set.")
            @OptionGroup var edit: FieldValueEdit
            func run() async throws { try edit.run { try $0.addToSet($1, field: $2, value: $3) } }
        }

        struct Remove: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove VALUE from the set.")
            @OptionGroup var edit: FieldValueEdit
            func run() async throws { try edit.run { try $0.removeFromSet($1, field: $2, value: $3) } }
        }
    }

    struct ListCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list", abstract: "Append to an append-only list field (routing logs, comments).",
            subcommands: [Append.self])

        struct Append: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Append VALUE to the list.")
            @OptionGroup var edit: FieldValueEdit
            func run() async throws { try edit.run { try $0.append($1, field: $2, value: $3) } }
        }
    }
}

// MARK: - Shared arguments of the field edits

/// `DOC FIELD`: the document (id or a unique prefix of it) and the field an edit addresses.
struct DocField: ParsableArguments {
    @Argument(help: "The document id or a unique prefix of it.") var doc: String
    @Argument(help: "The field name.") var field: String

    /// Opens the node, resolves DOC and runs `body` with the node, the document and FIELD.
    func edit(_ options: DataOptions, _ body: (Node, DocID, String) throws -> Void) throws {
        try options.withNode { node in try body(node, try node.resolveDocument(doc), field) }
    }
}

/// `[--data DIR] DOC FIELD POS` of `text insert` and `text delete`.
struct TextPosition: ParsableArguments {
    @OptionGroup var options: DataOptions
    @OptionGroup var target: DocField
    @Argument(help: "Position: 0 is the start.") var pos: String

    /// Checks POS, then what `checking` parses (before the node is opened), then runs `body`
    /// with the node, the document, FIELD, POS and that.
    func edit<T>(
        checking: () throws -> T, _ body: (Node, DocID, String, Int, T) throws -> Void
    ) throws {
        let p = try parseCount(pos, "POS")
        let extra = try checking()
        try target.edit(options) { node, doc, field in try body(node, doc, field, p, extra) }
    }

    func edit(_ body: (Node, DocID, String, Int) throws -> Void) throws {
        try edit(checking: {}) { node, doc, field, p, _ in try body(node, doc, field, p) }
    }
}

/// `[--data DIR] DOC FIELD VALUE` of `set add`, `set remove` and `list append`.
struct FieldValueEdit: ParsableArguments {
    @OptionGroup var options: DataOptions
    @OptionGroup var target: DocField
    @Argument(help: "The value.") var value: String

    /// Opens the node, resolves DOC and runs `body` with the node, the document, FIELD and VALUE.
    func run(_ body: (Node, DocID, String, String) throws -> Void) throws {
        try target.edit(options) { node, doc, field in try body(node, doc, field, value) }
    }
}
