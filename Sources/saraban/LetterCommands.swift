import ArgumentParser
import Foundation
import SarabanCore
import SarabanNode
import SarabanOffice

// MARK: - letter

struct LetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "letter",
        abstract: "Official letters (หนังสือราชการ): draft, sign, send to other offices, inbox, receive or return, intake, route.",
        discussion: """
            Fields are named in Thai or English: ที่ (number), ส่วนราชการ (agency), วันที่ (date), เรื่อง (subject),
            เรียน (salutation), อ้างถึง (reference), สิ่งที่ส่งมาด้วย (enclosures), ข้อความ (body), คำลงท้าย (closing),
            ผู้ลงนาม (signer), ตำแหน่ง (position), ชั้นความเร็ว (urgency), ชั้นความลับ (secrecy), สถานะ (status),
            ประเภท (subtype), ถึง (to), จาก (from). See Docs/ESARABAN.md.
            """,
        subcommands: [
            New.self, Edit.self, Show.self, List.self, Register.self, Send.self, Inbox.self, Receive.self, Return.self,
            Intake.self, Route.self, Sign.self, Verify.self, Attach.self, Extract.self, Fetch.self,
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
            try options.withNode { node in
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
            try options.withNode { node in
                try node.editLetter(try resolveLetter(node, doc), field: field, value: value, insertAt: at)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a letter as its header reads on paper, where it lives, and where it was sent or came from.",
            discussion: "Given a dispatch id (`letter inbox`), shows the letter as the sending office sent it.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter (or dispatch) id or a unique prefix.") var doc: String
        @Flag(name: .customLong("thai-digits"), help: "Print numbers and dates with Thai digits (๐–๙).")
        var thaiDigits = false

        func run() async throws {
            try options.withNode { node in
                let id = try resolveLetter(node, doc)
                if try node.document(id).kind == DispatchDocument.kind {
                    let o = try node.correspondence.openDispatch(id)
                    if output.json {
                        try Output.json(InboxJSON(InboxItem(dispatch: o, spaceName: try node.spaceInfo(o.space)?.name ?? "")))
                    } else {
                        for l in LetterText.render(dispatch: o, thaiDigits: thaiDigits) { Output.line(l) }
                    }
                    return
                }
                let v = try node.letter(id)
                let status = try node.attachmentStatus(v.id)
                let deliveries = try node.correspondence.deliveryStatus(v)
                if output.json {
                    var j = LetterJSON(v, thaiDigits: thaiDigits)
                    j.attachmentStatus = status
                    j.deliveries = deliveries.map(DeliveryJSON.init)
                    try Output.json(j)
                } else {
                    let held = Dictionary(status.map { ($0.hash, $0.held) }, uniquingKeysWith: max)
                    for l in LetterText.render(v, thaiDigits: thaiDigits, held: held, deliveries: deliveries) { Output.line(l) }
                }
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
            try options.withNode { node in
                // A shared letter of the earlier model is listed through this office's record of it.
                let all = try node.letters(status: s)
                let superseded = Swift.Set(try node.letters().compactMap(\.legacy))
                let letters = all.filter { !superseded.contains($0.id) }
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
            try options.withNode { node in
                let id = try resolveLetter(node, doc)
                let a = try node.registerLetter(id, circular: circular, reserved: number)
                try printAllocation(node, id, a, status: try node.letter(id).status, json: output.json)
            }
        }
    }

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send the letter to other offices: register it if needed, then publish a sealed dispatch to each.",
            discussion: """
                ที่ becomes the office's letter code and the number, e.g. มท 0808.2/123, มท 0808.2/ว 12, 7/2568. Each --to
                names an office (`saraban office list`): its name, letter code or node id. The letter travels as a dispatch
                in an exchange space this office shares with the recipients: nobody can change or delete it, only the
                recipients can open it, and their receipts come back (`letter show`). Nothing is numbered when a recipient
                is unknown (exit 67) or shares no space with this office (exit 68). A circular (--circular, numbered in
                the ว book) is one dispatch to many offices. Sending again sends nothing twice.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Option(name: .customLong("to"), help: ArgumentHelp("A recipient office (repeatable): name, letter code or node id.", valueName: "OFFICE"))
        var recipients: [String] = []
        @Flag(help: "Send as a circular (หนังสือเวียน, numbered in the ว book).") var circular = false
        @Option(help: "Use this reserved number.") var number: Int?

        func run() async throws {
            try options.withNode { node in
                let id = try resolveLetter(node, doc)
                let v = try node.letter(id)
                if recipients.isEmpty && v.home != nil {
                    // A letter of the shared-letter model (made with --space): marked sent where it is.
                    let r = try node.sendLetter(id, circular: circular, reserved: number)
                    Output.note(
                        "marked sent in space \(v.home ?? ""), where its members already see it; to send a letter to other offices, "
                            + "draft it without --space and use `saraban letter send DOC --to OFFICE`")
                    try printAllocation(node, id, r.allocation, status: r.status, json: output.json)
                    return
                }
                let r = try node.correspondence.send(id, to: recipients, circular: circular, reserved: number)
                if output.json {
                    var j = AllocationJSON(r.allocation, letter: id, number: r.letterNumber, status: r.status)
                    j.dispatches = r.dispatches.map(DispatchJSON.init)
                    try Output.json(j)
                } else {
                    let a = r.allocation
                    Output.line(
                        "ที่ \(r.letterNumber)  วันที่ \(a.date.formatted())  (\(a.book.thaiName) \(a.year) เลข \(a.number))  \(r.status.rawValue)")
                    for d in r.dispatches {
                        Output.line(
                            "ส่งถึง \(d.offices.joined(separator: ", "))  ทาง \(d.spaceName)  dispatch \(d.id)"
                                + (d.existing ? "  (ส่งไว้แล้ว / already sent)" : ""))
                    }
                }
            }
        }
    }

    struct Inbox: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Letters other offices sent to this office and not yet received or returned (หนังสือเข้า).",
            discussion: "Most urgent first (ด่วนที่สุด, ด่วนมาก, ด่วน), then oldest first. Take one in with `letter receive ID`.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Flag(name: .customLong("thai-digits"), help: "Print numbers and dates with Thai digits (๐–๙).")
        var thaiDigits = false

        func run() async throws {
            try options.withNode { node in
                let items = try node.correspondence.inbox()
                if output.json {
                    try Output.json(items.map(InboxJSON.init))
                    return
                }
                if items.isEmpty {
                    Output.note("ไม่มีหนังสือเข้า / nothing waiting")
                    return
                }
                for i in items { Output.line(LetterText.inboxLine(i, thaiDigits: thaiDigits)) }
            }
        }
    }

    struct Receive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take in letters from other offices: this office's record, its receive number, a receipt back.",
            discussion: """
                ID is a dispatch from `letter inbox` (several may be given, or --all for the whole inbox, most urgent
                first): this office gets its own record of the letter (its routing and status are this office's), the
                next number of its receive book, and the sender is sent a signed receipt (office, เลขรับ, date, time).
                Receiving again writes nothing new. A letter of the shared-letter model (made in a shared space) is
                acknowledged on the letter itself, as before.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The dispatch ids (or unique prefixes).") var docs: [String] = []
        @Flag(help: "Receive everything in the inbox.") var all = false

        func run() async throws {
            try options.withNode { node in
                if all != docs.isEmpty {
                    throw NodeError(.invalidArgument, "give the dispatch ids to receive, or --all for the whole inbox (not both)")
                }
                var ids: [DocID] = []
                for d in docs { ids.append(try resolveLetter(node, d)) }
                if all { ids = try node.correspondence.inbox().map(\.dispatch.id) }
                if ids.count == 1, try node.document(ids[0]).kind == LetterDocument.kind {
                    let a = try node.receiveLetter(ids[0])
                    if output.json {
                        try Output.json(AllocationJSON(a, letter: ids[0], number: String(a.number), status: nil))
                    } else {
                        Output.line(
                            "เลขรับ \(a.number)  วันที่ \(a.date.formatted())  เวลา \(a.time) น.\(a.existing ? "  (รับไว้แล้ว / already received)" : "")")
                    }
                    return
                }
                let results = try node.correspondence.receive(ids)
                let json = zip(ids, results).map { id, r in
                    var j = AllocationJSON(r.allocation, letter: r.record, number: String(r.allocation.number), status: .received)
                    j.dispatch = id.description
                    j.receipt = r.receipt?.description
                    j.existing = r.existing
                    return j
                }
                if output.json {
                    if all || ids.count != 1 { try Output.json(json) } else { try Output.json(json[0]) }
                    return
                }
                if all && results.isEmpty { Output.note("ไม่มีหนังสือเข้า / nothing waiting") }
                for r in results {
                    let a = r.allocation
                    Output.line(
                        "เลขรับ \(a.number)  วันที่ \(a.date.formatted())  เวลา \(a.time) น.  หนังสือ \(r.record)"
                            + (r.existing ? "  (รับไว้แล้ว / already received)" : ""))
                }
            }
        }
    }

    struct Return: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "return",
            abstract: "Send a dispatch back to its office (ส่งคืน) with the reason; it is not numbered here.",
            discussion: "The sender's `letter show` shows the return and its reason. Refused once the letter was received.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The dispatch id (or a unique prefix).") var doc: String
        @Option(help: "Why it is sent back (required).") var reason: String

        func run() async throws {
            try options.withNode { node in
                let r = try node.correspondence.returnDispatch(try resolveLetter(node, doc), reason: reason)
                Output.note("ส่งคืนแล้ว / returned")
                if let r { Output.line(r.description) }
            }
        }
    }

    struct Intake: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a letter that arrived outside Saraban (post, by hand, e-mail) in the receive book.",
            discussion: """
                Example: saraban letter intake --from "สำนักงานที่ดินจังหวัด" --number "นว 0020/455" --date 6/12/2569 \\
                  --subject "แจ้งผลการรังวัด" --to "นายอำเภอ" --via ไปรษณีย์ --scan scan.pdf
                ที่ is the sending agency's own number, kept as written. Prints the receive number and the record's id.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Option(help: "Who sent it (จาก).") var from: String
        @Option(help: "Its number as written on it (ที่), e.g. \"นว 0020/455\".") var number: String
        @Option(help: "Its date (ลงวันที่): 6/12/2569, 6 ธ.ค. 2569, 6 ธันวาคม 2569 or 2026-12-06.") var date: String
        @Option(help: "เรื่อง.") var subject: String
        @Option(help: "To whom it is addressed (ถึง).") var to: String?
        @Option(help: "How it came: ไปรษณีย์, มือ, อีเมล… (free text).") var via: String?
        @Option(help: "ชั้นความลับ: ลับ or ลับมาก (the office's space must be cleared for it).") var secrecy: String?
        @Option(help: "A scan of it, attached to the record.") var scan: String?
        @Option(help: "The letter's kind (default ภายนอก).") var kind: String = LetterKind.external.rawValue

        func run() async throws {
            let k: LetterKind
            do { k = try LetterKind(parsing: kind) } catch { throw NodeError(error) }
            let s = try secrecy.map { c throws(NodeError) in try parseSecrecy(c) } ?? .none
            try options.withNode { node in
                let r = try node.correspondence.intake(
                    kind: k, from: from, number: number, date: date, subject: subject, to: to, via: via, secrecy: s, scan: scan)
                let a = r.allocation
                if output.json {
                    try Output.json(AllocationJSON(a, letter: r.record, number: String(a.number), status: .received))
                } else {
                    Output.line("เลขรับ \(a.number)  วันที่ \(a.date.formatted())  เวลา \(a.time) น.  หนังสือ \(r.record)")
                }
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
            try options.withNode { node in
                try node.routeLetter(try resolveLetter(node, doc), to: to, note: note, from: from)
            }
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
            try options.withNode { node in
                let id = try resolveLetter(node, doc)
                let r = try node.officers.sign(id, officer: officer, passphrase: try passphrase.forSigning(node, officer: officer))
                Output.note("signed by \(r.officer) (\(r.position))")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every signature (certificate, signature, fields changed after signing) and the registry's stamp.",
            discussion: """
                Officers sign the letter's content (everything but ที่, วันที่ and สถานะ); the register's number and date
                are signed by the registering node (the registry stamp), so signing before or after registration both
                verify. Exit status 0 when every signature and the stamp are valid and nothing changed; 68 otherwise;
                67 when unsigned.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The letter id or a unique prefix.") var doc: String

        func run() async throws {
            try options.withNode { node in
                let id = try resolveLetter(node, doc)
                let checks = try node.officers.verify(id)
                let stamp = try node.officers.verifyStamp(id)
                if output.json {
                    struct Out: Encodable {
                        var valid: Bool
                        var signatures: [SignatureCheckJSON]
                        @OrNull var stamp: StampCheck?
                    }
                    try Output.json(
                        Out(
                            valid: !checks.isEmpty && checks.allSatisfy(\.valid) && (stamp?.valid ?? true),
                            signatures: checks.map(SignatureCheckJSON.init), stamp: stamp))
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
                    if let s = stamp {
                        Output.line("ตราทะเบียน ที่ \(s.letterNumber) วันที่ \(s.date): \(s.valid ? "ถูกต้อง / valid" : "ไม่ถูกต้อง / INVALID")")
                        Output.line("  registered by: \(s.office) (node \(s.registeredBy))  signature: \(s.signatureValid ? "ok" : "INVALID")")
                        if !s.mismatchedFields.isEmpty {
                            Output.line("  differs from the letter: \(s.mismatchedFields.joined(separator: ", "))")
                        }
                        if s.contentChanged { Output.line("  content changed after the registry stamp") }
                    }
                }
                if checks.isEmpty { throw NodeError(.unknownField, "หนังสือนี้ยังไม่มีการลงนาม / the letter is not signed") }
                if !checks.allSatisfy(\.valid) || !(stamp?.valid ?? true) {
                    let changed = Array(Swift.Set(checks.flatMap(\.changedFields) + (stamp?.mismatchedFields ?? []))).sorted()
                    throw NodeError(
                        .refused,
                        "ลายมือชื่อไม่ถูกต้องหรือมีการแก้ไขหลังลงนาม / a signature is invalid or the letter changed after signing"
                            + (changed.isEmpty ? "" : ": \(changed.joined(separator: ", "))"))
                }
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
            try options.withNode { node in
                let a = try node.attach(try resolveLetter(node, doc), file: file, name: name)
                if output.json { try Output.json(a) } else { Output.line("\(a.hash)  \(a.name)  \(a.size) bytes") }
            }
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
            try await options.withNode { node in
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
    }

    struct Extract: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decrypt an attachment to a new file.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The letter id or a unique prefix.") var doc: String
        @Argument(help: "The attachment's hash (or a prefix) or name.") var attachment: String
        @Argument(help: "The file to write (never overwritten).") var file: String

        func run() async throws {
            try options.withNode { node in
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
            try options.withNode { node in
                guard let secret = try passphrase.new(prompt: "ตั้งรหัสผ่านของ \(name) / choose a passphrase for \(name): ") else {
                    throw Passphrase.missing("officer add")
                }
                let o = try node.officers.add(name: name, position: position, passphrase: secret)
                if output.json { try Output.json(o) } else { Output.line(o.publicKey) }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List this node's officers.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            try options.withNode { node in
                let all = try node.officers.list()
                let sealed = all.map { (try? node.officers.hasPassphrase($0.name)) ?? false }
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
}

// MARK: - Rendering

enum LetterText {
    static func digits(_ s: String, _ thai: Bool) -> String { thai ? ThaiDigits.convert(s) : s }

    static func date(_ text: String, _ thai: Bool) -> String {
        if let d = try? ThaiDate(parsing: text) { return d.formatted(thaiDigits: thai) }
        return digits(text, thai)
    }

    /// `held`: chunks held here per attachment hash (`letter show`); without it every attachment shows as complete.
    static func render(
        _ v: LetterView, thaiDigits t: Bool, held: [String: Int]? = nil, deliveries: [DeliveryStatus] = []
    ) -> [String] {
        let f = v.fields
        var out: [String] = []
        let marks = marks(f)
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
        if let home = v.home {
            out.append("อยู่ที่:   พื้นที่ \(home) (ใช้ร่วมกับสมาชิกของพื้นที่ / shared with the space's members)")
        } else if v.origin != nil || v.receiveEntry != nil {
            out.append("อยู่ที่:   สำนักงานนี้ (ฉบับของสำนักงานนี้ / this office's own record of a letter received)")
        } else if v.deliveries.isEmpty {
            out.append("อยู่ที่:   สำนักงานนี้ (ยังไม่ออกไปที่อื่น / this office only: nothing leaves until `letter send --to`)")
        } else {
            out.append("อยู่ที่:   สำนักงานนี้ (บันทึกการส่ง / this office's record; the recipients hold the dispatch)")
        }
        if let o = v.origin {
            out.append("รับจาก:  \(o.office)\(o.code.isEmpty ? "" : " (\(o.code))")  dispatch \(o.dispatch)")
        }
        if let c = v.channel { out.append("ช่องทาง: \(c)") }
        if let e = v.receiveEntry {
            out.append("เลขรับ:  \(digits(String(e.number), t))  \(shortDate(e.date, t)) \(digits(e.time, t)) น.")
        }
        for d in deliveries { out.append(deliveryLine(d, thaiDigits: t)) }
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

extension LetterText {
    /// `6 ธ.ค. 2569`.
    static func shortDate(_ d: ThaiDate, _ t: Bool) -> String {
        digits("\(d.day) \(ThaiDate.monthAbbreviations[d.month - 1]) \(d.year)", t)
    }

    static func shortDate(_ text: String, _ t: Bool) -> String {
        (try? ThaiDate(parsing: text)).map { shortDate($0, t) } ?? digits(text, t)
    }

    /// `ส่งถึง อบต.หนองบัว  รับแล้ว เลขรับ 12 (6 ธ.ค. 2569 10:42)`, `ยังไม่รับ`, `ส่งคืน: reason`.
    static func deliveryLine(_ d: DeliveryStatus, thaiDigits t: Bool) -> String {
        var line = "ส่งถึง \(d.delivery.office)  "
        switch d.state {
        case .pending: line += "ยังไม่รับ"
        case .received(let n, _, let date, let time):
            line += "รับแล้ว เลขรับ \(digits(String(n), t)) (\(shortDate(date, t)) \(digits(time, t)))"
        case .returned(let reason, let date, let time):
            line += "ส่งคืน: \(reason) (\(shortDate(date, t)) \(digits(time, t)))"
        }
        if !d.receiptValid { line += "  [มีใบตอบรับที่ตรวจสอบไม่ผ่าน / a receipt failed its checks]" }
        return line
    }

    static func marks(_ f: [String: String]) -> [String] {
        var marks: [String] = []
        if let u = f[LetterField.urgency.rawValue], u != Urgency.normal.rawValue { marks.append(u) }
        if let c = f[LetterField.secrecy.rawValue], c != Secrecy.none.rawValue { marks.append(c) }
        return marks
    }

    /// One inbox line: id, marks, sender, ที่, ลงวันที่, เรื่อง, attachments.
    static func inboxLine(_ i: InboxItem, thaiDigits t: Bool) -> String {
        let l = i.dispatch.letter
        let f = l.fields
        var line = "\(i.dispatch.id)"
        for m in marks(f) { line += "  [\(m)]" }
        line += "  จาก \(l.sender.office.isEmpty ? i.dispatch.office : l.sender.office)"
        if let n = f[LetterField.number.rawValue] { line += "  ที่ \(digits(n, t))" }
        if let d = f[LetterField.date.rawValue] { line += "  ลงวันที่ \(shortDate(d, t))" }
        line += "  เรื่อง \(f[LetterField.subject.rawValue] ?? "")"
        if !l.attachments.isEmpty { line += "  (สิ่งแนบ \(digits(String(l.attachments.count), t)))" }
        return line
    }

    /// A dispatch opened: the letter as sent, then who sent it to whom.
    static func render(dispatch o: OpenedDispatch, thaiDigits t: Bool) -> [String] {
        let l = o.letter
        var fields = l.fields
        fields[LetterField.status.rawValue] = LetterStatus.sent.rawValue
        let v = LetterView(
            id: o.id, kind: l.kind, fields: fields, status: .sent, routing: [], acknowledgements: [],
            signatures: l.signatures, attachments: [], conflicts: 0, createdBy: ReplicaID(bytes: o.from.replicaBytes),
            created: o.sent)
        var out = Array(render(v, thaiDigits: t).prefix { !$0.hasPrefix("id:") })
        out.append("dispatch: \(o.id)  (หนังสือเข้า / a letter sent to this office)")
        out.append("จาก:     \(l.sender.office)\(l.sender.code.isEmpty ? "" : " (\(l.sender.code))")  node \(o.from.text)")
        out.append("ถึง:     \(l.recipients.map { $0.office.isEmpty ? ($0.nodes.first ?? "") : $0.office }.joined(separator: ", "))")
        out.append("ส่งเมื่อ: \(Output.time(o.sent))")
        if !l.attachments.isEmpty {
            out.append("สิ่งแนบ (\(l.attachments.count)):")
            for a in l.attachments { out.append("  - \(a.name)  \(digits(String(a.size), t)) bytes  \(a.hash.prefix(16))…") }
        }
        if !l.signatures.isEmpty {
            out.append("ลายมือชื่อ (\(l.signatures.count)):")
            for s in l.signatures { out.append("  - \(s.officer) (\(s.position))  \(Output.time(s.time))") }
        }
        return out
    }
}

struct DeliveryJSON: Encodable {
    var office: String
    var nodes: [String]
    var dispatch: String
    var space: String
    /// pending, received or returned.
    var state: String
    @OrNull var number: Int?
    @OrNull var year: Int?
    @OrNull var date: String?
    @OrNull var time: String?
    @OrNull var reason: String?
    var receiptValid: Bool

    init(_ d: DeliveryStatus) {
        office = d.delivery.office
        nodes = d.delivery.nodes
        dispatch = d.delivery.dispatch
        space = d.delivery.space
        receiptValid = d.receiptValid
        switch d.state {
        case .pending: state = "pending"
        case .received(let n, let y, let dt, let t):
            state = "received"
            (number, year, date, time) = (n, y, dt, t)
        case .returned(let r, let dt, let t):
            state = "returned"
            (reason, date, time) = (r, dt, t)
        }
    }
}

struct DispatchJSON: Encodable {
    var id: String
    var space: String
    var spaceName: String
    var offices: [String]
    var existing: Bool

    init(_ d: DispatchSent) {
        id = d.id.description
        space = d.space.hex
        spaceName = d.spaceName
        offices = d.offices
        existing = d.existing
    }
}

struct InboxJSON: Encodable {
    struct Attachment: Encodable {
        var hash: String
        var name: String
        var size: Int
        var chunks: Int
    }

    var dispatch: String
    var space: String
    var spaceName: String
    var from: String
    var office: String
    var code: String
    var sent: Int64
    var urgency: String
    var kind: String
    var fields: [String: String]
    @OrNull var number: String?
    @OrNull var date: String?
    @OrNull var subject: String?
    var recipients: [String]
    var circular: Bool
    var attachments: [Attachment]
    var signatures: Int

    init(_ i: InboxItem) {
        let o = i.dispatch
        let l = o.letter
        dispatch = o.id.description
        space = o.space.hex
        spaceName = i.spaceName
        from = o.from.text
        office = l.sender.office
        code = l.sender.code
        sent = o.sent
        urgency = o.urgency.rawValue
        kind = l.kind.rawValue
        fields = l.fields
        number = l.fields[LetterField.number.rawValue]
        date = l.fields[LetterField.date.rawValue].flatMap { try? ThaiDate(parsing: $0) }?.iso
        subject = l.fields[LetterField.subject.rawValue]
        recipients = l.recipients.map { $0.office.isEmpty ? ($0.nodes.first ?? "") : $0.office }
        circular = l.circular
        attachments = l.attachments.map { Attachment(hash: $0.hash, name: $0.name, size: $0.size, chunks: $0.chunks) }
        signatures = l.signatures.count
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
    /// The space it lives in; null for the office's own space.
    @OrNull var home: String?
    /// Where it was sent, with each recipient's receipt (`letter show --json`).
    var deliveries: [DeliveryJSON] = []
    /// On a received letter: the sending office and its dispatch.
    @OrNull var receivedFrom: String?
    @OrNull var dispatch: String?
    @OrNull var receiveNumber: Int?

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
        home = v.home
        receivedFrom = v.origin?.office ?? (v.receiveEntry != nil ? v.fields[LetterField.sender.rawValue] : nil)
        dispatch = v.origin?.dispatch
        receiveNumber = v.receiveEntry?.number
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
    /// `letter send --to`: the dispatches published.
    var dispatches: [DispatchJSON]?
    /// `letter receive`: the dispatch taken in and the receipt written.
    var dispatch: String?
    var receipt: String?

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
