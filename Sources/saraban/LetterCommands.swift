import ArgumentParser
import Foundation
import SarabanCore
import SarabanNode
import SarabanOffice

// MARK: - letter

struct LetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "letter",
        abstract: "Official letters (หนังสือราชการ): draft, edit, show, sign, verify, send, receive, route, attach, fetch.",
        discussion: """
            Fields are named in Thai or English: ที่ (number), ส่วนราชการ (agency), วันที่ (date), เรื่อง (subject),
            เรียน (salutation), อ้างถึง (reference), สิ่งที่ส่งมาด้วย (enclosures), ข้อความ (body), คำลงท้าย (closing),
            ผู้ลงนาม (signer), ตำแหน่ง (position), ชั้นความเร็ว (urgency), ชั้นความลับ (secrecy), สถานะ (status),
            ประเภท (subtype), ถึง (to), จาก (from). See Docs/ESARABAN.md.
            """,
        subcommands: [
            New.self, Edit.self, Show.self, List.self, Register.self, Send.self, Receive.self, Route.self, Sign.self,
            Verify.self, Attach.self, Extract.self, Fetch.self,
        ])
}

func resolveLetter(_ node: Node, _ text: String) throws(NodeError) -> DocID {
    try node.resolveDocument(text)
}

extension LetterCommand {
    struct New: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Draft a letter and print its id.",
            discussion: """
                Example: saraban letter new --kind ภายนอก --subject "ขอเชิญประชุม" --to "ผู้ว่าราชการจังหวัดเชียงใหม่" \\
                  --urgency ด่วน --set "ข้อความ=ด้วย…" --set คำลงท้าย=ขอแสดงความนับถือ
                """)

        @OptionGroup var options: DataOptions
        @Option(help: "ภายนอก, ภายใน, ประทับตรา, สั่งการ, ประชาสัมพันธ์, หลักฐาน (or external, internal, stamped, directive, public-relations, record).")
        var kind: String
        @Option(help: "เรื่อง.") var subject: String?
        @Option(help: "เรียน (the addressee).") var to: String?
        @Option(help: "ชั้นความเร็ว: ด่วนที่สุด, ด่วนมาก, ด่วน.") var urgency: String?
        @Option(help: "ชั้นความลับ: ลับมาก, ลับ (ลับที่สุด is refused).") var secrecy: String?
        @Option(help: "The space the letter belongs to (secret letters need a cleared space).") var space: String?
        @Option(name: .customLong("set"), help: ArgumentHelp("Set a field (repeatable).", valueName: "FIELD=VALUE"))
        var assignments: [String] = []

        func run() async throws {
            let k: LetterKind
            do { k = try LetterKind(parsing: kind) } catch { throw NodeError(error) }
            var fields: [(name: String, value: String)] = []
            if let subject { fields.append((LetterField.subject.rawValue, subject)) }
            if let to { fields.append((LetterField.salutation.rawValue, to)) }
            if let urgency { fields.append((LetterField.urgency.rawValue, urgency)) }
            if let secrecy { fields.append((LetterField.secrecy.rawValue, secrecy)) }
            for a in assignments { fields.append(try parseAssignment(a)) }
            let node = try options.openNode()
            defer { node.close() }
            let id = try node.createLetter(kind: k, fields: fields, space: space)
            let missing = node.missingFields(try node.letter(id))
            if !missing.isEmpty {
                Output.note(
                    "draft; still needed before `letter send`: "
                        + missing.map { "\($0.thai) / \($0.english)" }.joined(separator: "; "))
            }
            Output.line(id.description)
        }
    }

    struct Edit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Edit one field (ข้อความ is edited as text; สถานะ follows the allowed transitions).")

        @OptionGroup var options: DataOptions
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Argument(help: "The field (Thai or English name).") var field: String
        @Argument(help: "The new value.") var value: String
        @Option(help: "For ข้อความ: insert VALUE at this position (Unicode scalars) instead of replacing the text.")
        var at: Int?

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            try node.editLetter(try resolveLetter(node, doc), field: field, value: value, insertAt: at)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a letter as its header reads on paper.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Flag(name: .customLong("thai-digits"), help: "Print numbers and dates with Thai digits (๐–๙).")
        var thaiDigits = false

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let v = try node.letter(try resolveLetter(node, doc))
            let status = try node.attachmentStatus(v.id)
            if output.json {
                var j = LetterJSON(v, thaiDigits: thaiDigits)
                j.attachmentStatus = status
                try Output.json(j)
            } else {
                let held = Dictionary(status.map { ($0.hash, $0.held) }, uniquingKeysWith: max)
                for l in LetterText.render(v, thaiDigits: thaiDigits, held: held) { Output.line(l) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the letters.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Option(help: "Only letters in this status (ร่าง/draft, ลงทะเบียนแล้ว/registered, ส่งแล้ว/sent, …).")
        var status: String?

        func run() async throws {
            var s: LetterStatus?
            if let status { do { s = try LetterStatus(parsing: status) } catch { throw NodeError(error) } }
            let node = try options.openNode()
            defer { node.close() }
            let letters = try node.letters(status: s)
            if output.json {
                try Output.json(letters.map { LetterSummaryJSON($0) })
                return
            }
            for v in letters {
                let f = v.fields
                var line = "\(v.id)  \(v.kind.rawValue)  \(v.status.rawValue)"
                if let n = f[LetterField.number.rawValue] { line += "  ที่ \(n)" }
                if let u = f[LetterField.urgency.rawValue], u != Urgency.normal.rawValue { line += "  [\(u)]" }
                if let c = f[LetterField.secrecy.rawValue], c != Secrecy.none.rawValue { line += "  [\(c)]" }
                line += "  \(f[LetterField.subject.rawValue] ?? "")"
                Output.line(line)
            }
        }
    }

    struct Register: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "register",
            abstract: "Give the letter its number from this office's register (draft → registered), without sending.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Flag(help: "Number it in the circular book (ว).") var circular = false
        @Option(help: "Use this reserved number.") var number: Int?

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let id = try resolveLetter(node, doc)
            let a = try node.registerLetter(id, circular: circular, reserved: number)
            try printAllocation(node, id, a, status: try node.letter(id).status, json: output.json)
        }
    }

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register the letter in the send, circular (ว) or order book and mark it sent.",
            discussion: "ที่ becomes the office's letter code and the number, e.g. มท 0808.2/123, มท 0808.2/ว 12, 7/2568.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Flag(help: "Send as a circular (หนังสือเวียน, numbered in the ว book).") var circular = false
        @Option(help: "Use this reserved number.") var number: Int?

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let id = try resolveLetter(node, doc)
            let r = try node.sendLetter(id, circular: circular, reserved: number)
            try printAllocation(node, id, r.allocation, status: r.status, json: output.json)
        }
    }

    struct Receive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a letter from another office in this office's receive book and acknowledge it.",
            discussion: "A second delivery of the same letter finds the existing entry; nothing new is written.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let id = try resolveLetter(node, doc)
            let a = try node.receiveLetter(id)
            if output.json {
                try Output.json(AllocationJSON(a, letter: id, number: String(a.number), status: nil))
            } else {
                Output.line(
                    "เลขรับ \(a.number)  วันที่ \(a.date.formatted())  เวลา \(a.time) น.\(a.existing ? "  (รับไว้แล้ว / already received)" : "")")
            }
        }
    }

    struct Route: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Endorse and forward (เกษียนหนังสือ): append who sent it to whom, with an instruction and the date.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Option(help: "To whom (person or unit).") var to: String
        @Option(help: "The instruction (เกษียน), for example \"เพื่อโปรดพิจารณา\".") var note: String = ""
        @Option(help: "Who forwards it (default: this office).") var from: String?

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            try node.routeLetter(try resolveLetter(node, doc), to: to, note: note, from: from)
        }
    }

    struct Sign: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign the letter's fields and attachment hashes with an officer's key.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Option(help: "The officer's name (`saraban officer add`).") var officer: String
        @OptionGroup var passphrase: PassphraseOptions

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let id = try resolveLetter(node, doc)
            let r = try node.signLetter(id, officer: officer, passphrase: try passphrase.forSigning(node, officer: officer))
            Output.note("signed by \(r.officer) (\(r.position))")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every signature: certificate, signature, and fields changed after signing.",
            discussion: "Exit status 0 when every signature is valid and nothing changed; 68 otherwise; 67 when unsigned.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let checks = try node.verifyLetter(try resolveLetter(node, doc))
            if output.json {
                struct Out: Encodable {
                    var valid: Bool
                    var signatures: [SignatureCheckJSON]
                }
                try Output.json(
                    Out(valid: !checks.isEmpty && checks.allSatisfy(\.valid), signatures: checks.map(SignatureCheckJSON.init)))
            } else {
                for c in checks {
                    let verdict = c.valid ? "ถูกต้อง / valid" : "ไม่ถูกต้อง / INVALID"
                    Output.line("\(c.officer) (\(c.position)): \(verdict)")
                    Output.line("  certificate: \(c.certificateValid ? "ok" : "INVALID") (node \(c.certifiedBy))")
                    Output.line("  signature:   \(c.signatureValid ? "ok" : "INVALID")")
                    if !c.changedFields.isEmpty {
                        Output.line("  changed after signing: \(c.changedFields.joined(separator: ", "))")
                    }
                }
            }
            if checks.isEmpty { throw NodeError(.unknownField, "หนังสือนี้ยังไม่มีการลงนาม / the letter is not signed") }
            if !checks.allSatisfy(\.valid) {
                let changed = Array(Swift.Set(checks.flatMap(\.changedFields))).sorted()
                throw NodeError(
                    .refused,
                    "ลายมือชื่อไม่ถูกต้องหรือมีการแก้ไขหลังลงนาม / a signature is invalid or the letter changed after signing"
                        + (changed.isEmpty ? "" : ": \(changed.joined(separator: ", "))"))
            }
        }
    }

    struct Attach: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Attach a file (scanned PDF…): content-addressed by BLAKE2b-256, stored encrypted in 256 KiB chunks.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Argument(help: "The file.") var file: String
        @Option(help: "The name shown (default: the file name).") var name: String?

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let a = try node.attach(try resolveLetter(node, doc), file: file, name: name)
            if output.json { try Output.json(a) } else { Output.line("\(a.hash)  \(a.name)  \(a.size) bytes") }
        }
    }

    struct Fetch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fetch the missing chunks of a letter's attachments from peers (relays carrying its space, or members).",
            discussion: """
                Sync moves letters, not attachment chunks: a node fetches chunks only when asked (this command).
                Chunks already held are never fetched again, so an interrupted fetch resumes. Each chunk is checked
                against the letter's manifest root and decrypted with the space key before it is kept. PEER is a
                configured peer's name, node id (or prefix) or HOST:PORT; by default every configured peer is tried
                in turn until the attachments are complete. Exits 69 when an attachment is still incomplete.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Argument(help: "The attachment's hash or root (or a prefix); default: every attachment of the letter.")
        var attachment: String?
        @Option(help: "Fetch from this peer only.") var peer: String?

        struct Result: Encodable {
            var peers: [AttachmentFetchResult]
            var attachments: [AttachmentStatus]
        }

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let id = try resolveLetter(node, doc)
            let settings = try node.syncSettings()
            let peers = try peer.map { q throws(NodeError) in [try settings.peer(matching: q)] }
            let (results, status) = try await node.fetchAttachments(
                id, hash: attachment, storage: try node.envelopeStorage(), peers: peers)
            if output.json {
                try Output.json(Result(peers: results, attachments: status))
            } else {
                for r in results {
                    Output.line(
                        "\(r.peer): \(r.chunksReceived) chunk\(r.chunksReceived == 1 ? "" : "s") received"
                            + (r.rejected > 0 ? ", \(r.rejected) refused (damaged or not matching the manifest)" : "")
                            + (r.error.map { "; \($0)" } ?? ""))
                }
                for a in status {
                    Output.line("\(a.hash.prefix(16))…  \(a.name)  \(a.held)/\(a.chunks) chunks\(a.complete ? "  complete" : "")")
                }
            }
            let incomplete = status.filter { !$0.complete }
            if !incomplete.isEmpty {
                throw NodeError(
                    .unreachable,
                    "incomplete: " + incomplete.map { "\($0.name) (\($0.held)/\($0.chunks) chunks)" }.joined(separator: ", ")
                        + "; no peer reached holds the rest; try again later or add a relay carrying the space")
            }
        }
    }

    struct Extract: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decrypt an attachment to a new file.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Argument(help: "The attachment's hash (or a prefix) or name.") var attachment: String
        @Argument(help: "The file to write (never overwritten).") var file: String

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let v = try node.letter(try resolveLetter(node, doc))
            let m = v.attachments.filter { $0.hash.hasPrefix(attachment) || $0.name == attachment }
            guard m.count == 1 else {
                throw NodeError(
                    .unknownField,
                    m.isEmpty ? "no attachment \(attachment) on this letter" : "\(attachment) matches \(m.count) attachments")
            }
            let bytes = try node.readAttachment(m[0])
            guard !FileManager.default.fileExists(atPath: file) else {
                throw NodeError(.invalidArgument, "\(file) already exists; choose another file name")
            }
            guard FileManager.default.createFile(atPath: file, contents: Data(bytes)) else {
                throw NodeError(.io, "cannot write \(file)")
            }
        }
    }
}

func printAllocation(_ node: Node, _ id: DocID, _ a: Allocation, status: LetterStatus, json: Bool) throws {
    let v = try node.letter(id)
    let number = v.fields[LetterField.number.rawValue] ?? String(a.number)
    if json {
        try Output.json(AllocationJSON(a, letter: id, number: number, status: status))
    } else {
        Output.line("ที่ \(number)  วันที่ \(a.date.formatted())  (\(a.book.thaiName) \(a.year) เลข \(a.number))  \(status.rawValue)")
    }
}

// MARK: - officer

struct OfficerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "officer", abstract: "Officers who sign letters: Ed25519 keys certified by this node.",
        subcommands: [Add.self, List.self, Passwd.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an officer key certified by this node, sealed under the officer's passphrase (officers/, mode 0600).",
            discussion: "Asks for the passphrase twice on the terminal, or reads it with --passphrase-file (at least 8 characters).")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The officer's full name.") var name: String
        @Option(help: "The position (ตำแหน่ง).") var position: String
        @OptionGroup var passphrase: PassphraseOptions

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            guard let secret = try passphrase.new(prompt: "ตั้งรหัสผ่านของ \(name) / choose a passphrase for \(name): ") else {
                throw Passphrase.missing("officer add")
            }
            let o = try node.addOfficer(name: name, position: position, passphrase: secret)
            if output.json { try Output.json(o) } else { Output.line(o.publicKey) }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List this node's officers.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            let node = try options.openNode()
            defer { node.close() }
            let all = try node.officers()
            let sealed = all.map { (try? node.officerHasPassphrase($0.name)) ?? false }
            if output.json {
                struct Row: Encodable {
                    var officer: Officer
                    var hasPassphrase: Bool
                    func encode(to encoder: any Encoder) throws {
                        try officer.encode(to: encoder)
                        var c = encoder.container(keyedBy: Key.self)
                        try c.encode(hasPassphrase, forKey: .hasPassphrase)
                    }
                    enum Key: String, CodingKey { case hasPassphrase }
                }
                try Output.json(zip(all, sealed).map { Row(officer: $0, hasPassphrase: $1) })
            } else {
                for (o, s) in zip(all, sealed) {
                    Output.line("\(o.name)  \(o.position)  \(o.publicKey.prefix(16))…" + (s ? "" : "  (no passphrase: `saraban officer passwd`)"))
                }
            }
        }
    }
}

// MARK: - Rendering

enum LetterText {
    static func digits(_ s: String, _ thai: Bool) -> String { thai ? ThaiDigits.convert(s) : s }

    static func date(_ text: String, _ thai: Bool) -> String {
        if let d = try? ThaiDate(parsing: text) { return d.formatted(thaiDigits: thai) }
        return digits(text, thai)
    }

    /// `held`: chunks held here per attachment hash (`letter show`); without it every attachment shows as complete.
    static func render(_ v: LetterView, thaiDigits t: Bool, held: [String: Int]? = nil) -> [String] {
        let f = v.fields
        var out: [String] = []
        var marks: [String] = []
        if let u = f[LetterField.urgency.rawValue], u != Urgency.normal.rawValue { marks.append(u) }
        if let c = f[LetterField.secrecy.rawValue], c != Secrecy.none.rawValue { marks.append(c) }
        if !marks.isEmpty { out.append(marks.joined(separator: "  ")) }
        out.append("\(v.kind.thaiName)\(f[LetterField.subtype.rawValue].map { " (\($0))" } ?? "")")
        func row(_ field: LetterField, date isDate: Bool = false) {
            guard let value = f[field.rawValue] else { return }
            out.append("\(field.rawValue)  \(isDate ? date(value, t) : digits(value, t))")
        }
        row(.agency)
        row(.number)
        row(.date, date: true)
        row(.subject)
        row(.salutation)
        row(.reference)
        row(.enclosures)
        if let body = f[LetterField.body.rawValue] {
            out.append("")
            for l in body.split(separator: "\n", omittingEmptySubsequences: false) { out.append("        " + digits(String(l), t)) }
            out.append("")
        }
        if let c = f[LetterField.closing.rawValue] { out.append("                    \(c)") }
        if let s = f[LetterField.signer.rawValue] { out.append("                    (\(s))") }
        if let p = f[LetterField.position.rawValue] { out.append("                    \(p)") }
        row(.recipient)
        row(.sender)
        out.append("")
        out.append("id:     \(v.id)")
        out.append("สถานะ:  \(v.status.rawValue) (\(v.status.english))")
        if let sp = f[LetterDocument.space] { out.append("พื้นที่:  \(sp)") }
        if v.conflicts > 0 { out.append("conflicts: \(v.conflicts) (`saraban conflicts \(v.id)`)") }
        if !v.attachments.isEmpty {
            out.append("สิ่งแนบ (\(v.attachments.count)):")
            for a in v.attachments {
                let held = held.map { $0[a.hash] ?? 0 } ?? a.chunks
                let state = held == a.chunks ? "ครบ/complete" : "มี \(digits(String(held), t))/\(digits(String(a.chunks), t)) ส่วน (`saraban letter fetch`)"
                out.append("  - \(a.name)  \(digits(String(a.size), t)) bytes  \(a.hash.prefix(16))…  \(state)")
            }
        }
        if !v.signatures.isEmpty {
            out.append("ลายมือชื่อ (\(v.signatures.count)):")
            for s in v.signatures { out.append("  - \(s.officer) (\(s.position))  \(Output.time(s.time))") }
        }
        if !v.routing.isEmpty {
            out.append("เกษียน (\(v.routing.count)):")
            for r in v.routing {
                let d = (try? ThaiDate(parsing: r.date)).map { $0.formatted(thaiDigits: t) } ?? r.date
                out.append("  - \(r.from) → \(r.to): \(r.instruction)  (\(d) \(digits(r.time, t)) น.)")
            }
        }
        if !v.acknowledgements.isEmpty {
            out.append("การตอบรับ (\(v.acknowledgements.count)):")
            for a in v.acknowledgements {
                let d = (try? ThaiDate(parsing: a.date)).map { $0.formatted(thaiDigits: t) } ?? a.date
                out.append("  - \(a.office)  เลขรับ \(digits(String(a.number), t))  \(d) \(digits(a.time, t)) น.")
            }
        }
        return out
    }
}

struct LetterJSON: Encodable {
    var id: String
    var kind: String
    var kindEnglish: String
    var status: String
    var statusEnglish: String
    var fields: [String: String]
    var date: String?
    var routing: [RoutingEntry]
    var acknowledgements: [Acknowledgement]
    var signatures: [Sig]
    var attachments: [AttachmentRef]
    /// What this node holds of each attachment (`letter show --json`).
    var attachmentStatus: [AttachmentStatus]?
    var conflicts: Int

    struct Sig: Encodable {
        var officer: String
        var position: String
        var time: Int64
    }

    init(_ v: LetterView, thaiDigits t: Bool) {
        id = v.id.description
        kind = v.kind.rawValue
        kindEnglish = v.kind.english
        status = v.status.rawValue
        statusEnglish = v.status.english
        fields = v.fields.mapValues { t ? ThaiDigits.convert($0) : $0 }
        date = v.fields[LetterField.date.rawValue].flatMap { try? ThaiDate(parsing: $0) }?.iso
        routing = v.routing
        acknowledgements = v.acknowledgements
        signatures = v.signatures.map { Sig(officer: $0.officer, position: $0.position, time: $0.time) }
        attachments = v.attachments
        conflicts = v.conflicts
    }
}

struct LetterSummaryJSON: Encodable {
    var id: String
    var kind: String
    var status: String
    var number: String?
    var subject: String?
    var urgency: String?
    var secrecy: String?

    init(_ v: LetterView) {
        id = v.id.description
        kind = v.kind.rawValue
        status = v.status.rawValue
        number = v.fields[LetterField.number.rawValue]
        subject = v.fields[LetterField.subject.rawValue]
        urgency = v.fields[LetterField.urgency.rawValue]
        secrecy = v.fields[LetterField.secrecy.rawValue]
    }
}

struct AllocationJSON: Encodable {
    var letter: String
    var book: String
    var year: Int
    var number: Int
    var letterNumber: String
    var date: String
    var dateThai: String
    var time: String
    var existing: Bool
    var status: String?

    init(_ a: Allocation, letter: DocID, number: String, status: LetterStatus?) {
        self.letter = letter.description
        book = a.book.english
        year = a.year
        self.number = a.number
        letterNumber = number
        date = a.date.iso
        dateThai = a.date.formatted()
        time = a.time
        existing = a.existing
        self.status = status?.rawValue
    }
}

struct SignatureCheckJSON: Encodable {
    var officer: String
    var position: String
    var certifiedBy: String
    var certificateValid: Bool
    var signatureValid: Bool
    var changedFields: [String]
    var valid: Bool

    init(_ c: SignatureCheck) {
        officer = c.officer
        position = c.position
        certifiedBy = c.certifiedBy
        certificateValid = c.certificateValid
        signatureValid = c.signatureValid
        changedFields = c.changedFields
        valid = c.valid
    }
}
