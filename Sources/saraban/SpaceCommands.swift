import ArgumentParser
import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanOffice
import SarabanRelayPostgres
import SarabanStorage
import SarabanSync

// MARK: - space

extension Saraban {
    struct SpaceCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "space",
            abstract: "Create, share, join, list and leave spaces (the unit of replication and encryption).",
            subcommands: [
                Create.self, Invite.self, Join.self, List.self, Remove.self, Leave.self, Admin.self, Carry.self, Clearance.self, Relay.self,
                Refused.self, Retire.self,
            ])
    }
}

/// One space in `space list --json`.
struct SpaceJSON: Encodable {
    struct Member: Encodable {
        var nodeID: String
        var office: String
        var active: Bool
        var admin: Bool
        var sinceEpoch: UInt32
        var removedEpoch: UInt32?
    }
    var id: String
    var name: String
    var role: String
    var epoch: UInt32
    var isDefault: Bool
    var documents: Int
    var members: [Member]

    init(_ s: SpaceInfo) {
        id = s.id.hex
        name = s.name
        role = s.role.description
        epoch = s.epoch
        isDefault = s.isDefault
        documents = s.documents
        members = s.members.map {
            Member(
                nodeID: $0.nodeID.text, office: $0.office, active: $0.isActive, admin: $0.isAdmin, sinceEpoch: $0.sinceEpoch,
                removedEpoch: $0.removedEpoch)
        }
    }
}

extension Saraban.SpaceCommand {
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a space with this node as its only member; prints its id.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The space's name (unique on this node).") var name: String

        func run() async throws {
            try options.withNode { node in
                let s = try node.createSpace(name: name)
                if output.json { try Output.json(SpaceJSON(s)) } else { Output.line(s.id.hex) }
            }
        }
    }

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a node to a space and print (or write) its invitation.",
            discussion: """
                The invitation holds the space's keys sealed to NODE_ID: only that node can open it, so it may
                travel by e-mail or USB stick. Run `saraban space join INVITE` on the invited node.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The space: its name or id.") var space: String
        @Argument(help: "The invited node's id (`saraban id` on that node).") var nodeID: String
        @Option(help: ArgumentHelp("Write the invitation to FILE (never overwritten) instead of printing it.", valueName: "FILE"))
        var out: String?
        @Option(help: ArgumentHelp("The invited office's name, shown in `space list`.", valueName: "NAME"))
        var office: String?
        @Option(help: ArgumentHelp(
            "The secrecy class the invited office is cleared for (ลับ, ลับมาก); required to join a cleared space.",
            valueName: "LEVEL"))
        var cleared: String?
        @Flag(help: "Make the invited node an admin of the space too (it may then invite, remove, clear and designate).")
        var admin = false

        func run() async throws {
            let invitee = try parseNodeID(nodeID)
            try options.withNode { node in
                let s = try node.resolveSpace(space)
                if let out, FileManager.default.fileExists(atPath: out) {
                    throw NodeError(.invalidArgument, "\(out) already exists; choose another file name or remove it first")
                }
                let level = try cleared.map { c throws(NodeError) in try parseSecrecy(c) } ?? .none
                let inv = try node.invite(space: s.id, invitee: invitee, office: office, cleared: level, admin: admin)
                if let out {
                    guard FileManager.default.createFile(atPath: out, contents: Data((inv.text + "\n").utf8)) else {
                        throw NodeError(.io, "cannot write \(out); check the directory exists and is writable")
                    }
                    if output.json {
                        struct Out: Encodable {
                            var space: String
                            var invitee: String
                            var file: String
                        }
                        try Output.json(Out(space: s.id.hex, invitee: invitee.text, file: out))
                    } else {
                        Output.note("wrote the invitation for \(invitee.text) to \(out)")
                    }
                } else if output.json {
                    struct Out: Encodable {
                        var space: String
                        var invitee: String
                        var invitation: String
                    }
                    try Output.json(Out(space: s.id.hex, invitee: invitee.text, invitation: inv.text))
                } else {
                    Output.line(inv.text)
                }
            }
        }
    }

    struct Join: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Join a space with an invitation made for this node.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The invitation text, or a file holding it.") var invitation: String
        @Option(
            name: .customLong("as"),
            help: ArgumentHelp(
                "The space's name on this node, when the invitation's name is already a space's name or id here.",
                valueName: "NAME"))
        var localName: String?

        func run() async throws {
            var text = invitation
            if !text.hasPrefix(Invitation.prefix) && !text.hasPrefix("sbinvite1:") {
                guard let data = FileManager.default.contents(atPath: invitation) else {
                    throw NodeError(
                        .invalidArgument,
                        "\(invitation) is neither an invitation (\(Invitation.prefix)…) nor a readable file")
                }
                text = String(decoding: data, as: UTF8.self)
            }
            let inv = try Invitation.parse(text)
            try options.withNode { node in
                let s = try node.join(inv, as: localName)
                if output.json { try Output.json(SpaceJSON(s)) } else {
                    Output.line("joined space \(s.name) (\(s.id.hex)); its documents arrive with the next sync")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the spaces this node carries: name, id, epoch, members, documents.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            try options.withNode { node in
                let spaces = try node.spaces()
                if output.json {
                    try Output.json(spaces.map(SpaceJSON.init))
                    return
                }
                for s in spaces {
                    let active = s.members.filter(\.isActive)
                    var line = "\(s.id.hex)  \(s.name)"
                    if s.isDefault { line += " (default)" }
                    if s.role == .relay {
                        line += "  relay"
                    } else {
                        line += "  epoch \(s.epoch)  \(active.count) member\(active.count == 1 ? "" : "s")"
                            + "  \(s.documents) document\(s.documents == 1 ? "" : "s")"
                    }
                    Output.line(line)
                    for m in active {
                        Output.line("    \(m.nodeID.text)\(m.office.isEmpty ? "" : "  \(m.office)")\(m.isAdmin ? "  (admin)" : "")")
                    }
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a node from a space and rotate the space key.",
            discussion: """
                A new epoch key is sealed to each remaining member. The removed node keeps what it already
                had, but cannot read anything written after this.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The space: its name or id.") var space: String
        @Argument(help: "The node id to remove.") var nodeID: String

        func run() async throws {
            let member = try parseNodeID(nodeID)
            try options.withNode { node in
                let s = try node.resolveSpace(space)
                let epoch = try node.removeMember(space: s.id, member: member)
                if output.json {
                    struct Out: Encodable {
                        var space: String
                        var removed: String
                        var epoch: UInt32
                    }
                    try Output.json(Out(space: s.id.hex, removed: member.text, epoch: epoch))
                } else {
                    Output.line("removed \(member.text) from \(s.name); the space is now at key epoch \(epoch)")
                }
            }
        }
    }

    struct Leave: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Leave a space: stop syncing it and delete its keys and this node's copy (asks for --yes).",
            discussion: """
                Prints what happens to the letters in it (Thai and English): the space's documents and keys are
                deleted here, the other members keep theirs; letters received through it stay in this office's
                receive book; dispatches waiting in the inbox are dropped. Without --yes it asks on a terminal,
                else deletes nothing and exits 64. The office's own space cannot be left, nor a space by its
                last admin while others hold it (exit 68: make another member an admin first).
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The space: its name or id.") var space: String
        @Flag(help: "Leave without asking.") var yes = false

        func run() async throws {
            try options.withNode { node in
                let s = try node.resolveSpace(space)
                let plan = try node.leavePlan(s.id)
                for line in plan.consequences { Output.note(line) }
                if !yes { try Self.confirm(s.name) }
                let left = try node.leaveSpace(s.id)
                if output.json {
                    struct Out: Encodable {
                        var space: String
                        var name: String
                        var documents: Int
                        var envelopes: Int
                        var keys: Int
                        var inboxDropped: Int
                        var receivedKept: Int
                        var sentKept: Int
                    }
                    try Output.json(
                        Out(
                            space: s.id.hex, name: s.name, documents: left.documents, envelopes: left.envelopes, keys: left.keys,
                            inboxDropped: plan.inbox, receivedKept: plan.received, sentKept: plan.sent))
                } else {
                    Output.line("ออกจากพื้นที่ \(s.name) แล้ว / left space \(s.name) (\(s.id.hex))")
                }
            }
        }

        /// Asks on a terminal; without one, refuses (exit 64) having deleted nothing.
        static func confirm(_ name: String) throws(NodeError) {
            let refusal = NodeError(
                .invalidArgument,
                "ยังไม่ได้ออกจากพื้นที่ \(name) ไม่มีสิ่งใดถูกลบ / nothing was deleted: run `saraban space leave \(name) --yes` to leave")
            guard isatty(STDIN_FILENO) == 1 else { throw refusal }
            FileHandle.standardError.write(Data("saraban: พิมพ์ yes เพื่อออก / type yes to leave \(name): ".utf8))
            guard readLine()?.trimmingCharacters(in: .whitespaces).lowercased() == "yes" else { throw refusal }
        }
    }

    struct Admin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a member an admin of a space (or, with --revoke, a plain member again).",
            discussion: """
                Admins add and remove members, rotate the key, grant clearances and designate relays; the
                space's creator is its first admin. Only an admin may run this (exit 68 otherwise); a space
                keeps at least one admin.
                """)

        @OptionGroup var options: DataOptions
        @Argument(help: "The space: its name or id.") var space: String
        @Argument(help: "The member's node id.") var nodeID: String
        @Flag(help: "Make an admin a plain member again.") var revoke = false

        func run() async throws {
            let member = try parseNodeID(nodeID)
            try options.withNode { node in
                let s = try node.resolveSpace(space)
                try node.setAdmin(space: s.id, member: member, admin: !revoke)
                Output.note("\(member.text) is \(revoke ? "no longer an admin" : "now an admin") of \(s.name)")
            }
        }
    }

    struct Refused: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the received changes of a space that were refused (logged with no effect) and why.",
            discussion: """
                A change is refused on every node alike when its author was not an admin (membership, keys,
                clearances, relays) or not an owner of a document it touched, in that change's causal past.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The space: its name or id.") var space: String

        func run() async throws {
            try options.withNode { node in
                let s = try node.resolveSpace(space)
                let rows = try node.refusedChanges(s.id)
                if output.json { try Output.json(rows); return }
                if rows.isEmpty { Output.line("no refused changes in \(s.name)") }
                for r in rows { Output.line("\(r.author)/\(r.seq)  \(Output.time(r.at))  \(r.reason)") }
            }
        }
    }

    struct Carry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On a relay: store and forward spaces' envelopes (without any key).",
            discussion: """
                A space carried without --for is served to every peer the relay trusts; with --for NODE_ID
                (repeatable) only to those peers (added to any named before). --from FILE carries many
                spaces at once, one per line: `SPACE_ID [NODE_ID ...]` (the peers it is served to; none:
                every peer), `#` starts a comment. Carrying a space again is harmless.

                On this node's own database, once a space's membership log reaches the relay (its members send
                it with their envelopes), the relay also stores envelopes only from the space's members and serves
                the space only to its members and designated relays. --creator pins the node whose log the relay
                accepts for a space made before membership logs existed (a newer space's id already names its
                creator). A relay on PostgreSQL does not read membership logs yet (Docs/RELAY.md).
                """)

        @OptionGroup var options: DataOptions
        @Argument(help: "The space ids (32 hex digits each, from `saraban space list` on a member).") var spaces: [String] = []
        @Option(help: "A local name for the space (with one space only).") var name: String?
        @Option(
            help: ArgumentHelp(
                "The node id of the space's creator (spaces made before membership logs; one space only).", valueName: "NODE_ID"))
        var creator: String?
        @Option(
            name: .customLong("for"),
            help: ArgumentHelp(
                "Serve the spaces only to this peer (repeat for several); without it, to every trusted peer.",
                valueName: "NODE_ID"))
        var peers: [String] = []
        @Option(help: ArgumentHelp("Carry the spaces listed in FILE (`SPACE_ID [NODE_ID ...]` per line).", valueName: "FILE"))
        var from: String?
        @Option(
            help: ArgumentHelp(
                "The relay's store (default: config.json `store`, else this node's database).",
                valueName: "postgresql://USER@HOST/DB"))
        var store: String?

        static func space(_ text: String, at place: String) throws(NodeError) -> SarabanSync.SpaceID {
            guard let id = SarabanSync.SpaceID(hex: text.trimmingCharacters(in: .whitespaces).lowercased()) else {
                throw NodeError(.invalidArgument, "\(place)\(text.debugDescription) is not a space id: 32 hex digits")
            }
            return id
        }

        static func peer(_ text: String, at place: String) throws(NodeError) -> NodeID {
            do { return try NodeID(parsing: text) } catch {
                throw NodeError(
                    .invalidArgument, "\(place)\(text.debugDescription) is not a node id (\(error)); copy it from `saraban id` on the peer")
            }
        }

        /// The groups to carry: the arguments with --for, then each line of --from.
        func groups() throws(NodeError) -> [(spaces: [SarabanSync.SpaceID], peers: [NodeID])] {
            var out: [(spaces: [SarabanSync.SpaceID], peers: [NodeID])] = []
            if !spaces.isEmpty {
                var ids: [SarabanSync.SpaceID] = []
                for s in spaces { ids.append(try Self.space(s, at: "")) }
                var named: [NodeID] = []
                for p in peers { named.append(try Self.peer(p, at: "--for ")) }
                out.append((ids, named))
            }
            if let from {
                guard let data = FileManager.default.contents(atPath: from) else {
                    throw NodeError(.invalidFile, "cannot read \(from): check that it exists and its permissions")
                }
                guard let text = String(data: data, encoding: .utf8) else {
                    throw NodeError(.invalidFile, "\(from) is not UTF-8 text")
                }
                for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                    let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                    let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
                    guard let first = words.first else { continue }
                    let place = "\(from) line \(n + 1): "
                    var named: [NodeID] = []
                    for p in words.dropFirst() { named.append(try Self.peer(p, at: place)) }
                    out.append(([try Self.space(first, at: place)], named))
                }
            }
            return out
        }

        func run() async throws {
            guard !spaces.isEmpty || from != nil else {
                throw NodeError(.invalidArgument, "give the id of the space to carry (or --from FILE)")
            }
            guard name == nil || (spaces.count == 1 && from == nil) else {
                throw NodeError(.invalidArgument, "--name names one space; carry the spaces one at a time to name them")
            }
            guard creator == nil || (spaces.count == 1 && from == nil) else {
                throw NodeError(.invalidArgument, "--creator names the creator of one space; carry the spaces one at a time")
            }
            guard peers.isEmpty || !spaces.isEmpty else { throw NodeError(.invalidArgument, "--for names the peers of the spaces given as arguments") }
            let groups = try groups()
            try await options.withNode { node in
                guard node.role == .relay else {
                    throw NodeError(.refused, "only a relay carries spaces it is not a member of; members join by invitation")
                }
                let local = try RelayStores.location(node, flag: store) == nil
                guard creator == nil || local else {
                    throw NodeError(
                        .invalidArgument,
                        "--creator is for a relay on its own database: a relay on PostgreSQL does not read membership logs yet "
                            + "(รีเลย์บน PostgreSQL ยังไม่อ่านบันทึกสมาชิก)")
                }
                let pin = try creator.map { c throws(NodeError) in try parseNodeID(c) }
                if name != nil || pin != nil, local, try node.carriedSpaces()[groups[0].spaces[0]] == nil {
                    // The node's own database keeps the space's name and its creator's pin.
                    try node.carry(space: groups[0].spaces[0], name: name, creator: pin)
                }
                try await RelayStores.with(node, flag: store) { relay in
                    for g in groups { try await relay.carry(g.spaces, for: g.peers) }
                }
            }
        }
    }
}

extension Saraban.SpaceCommand {
    struct Clearance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Declare the secrecy class a space may hold, or record the class a member office is cleared for.",
            discussion: """
                LEVEL: ปกติ (none), ลับ (confidential), ลับมาก (secret); ลับที่สุด is refused (it stays on paper).
                Without --member, declares the space's class; refused while an active member is cleared for less.
                With --member NODE_ID, records that office's clearance. Secret letters are created, raised and
                sent only in a space whose members are all cleared, and a cleared space is synced only with its
                members and designated relays (`saraban space relay`). See Docs/ESARABAN.md.
                """)

        @OptionGroup var options: DataOptions
        @Argument(help: "The space: its name or id.") var space: String
        @Argument(help: "ปกติ, ลับ or ลับมาก.") var level: String
        @Option(help: ArgumentHelp("A member's node id: record its clearance instead.", valueName: "NODE_ID"))
        var member: String?

        func run() async throws {
            let l = try parseSecrecy(level)
            try options.withNode { node in
                let s = try node.resolveSpace(space)
                if let member {
                    try node.setMemberClearance(s.id, member: try parseNodeID(member), to: l)
                } else {
                    try node.setSpaceClearance(s.id, to: l)
                }
            }
        }
    }

    struct Relay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Designate a relay to carry a space (a cleared space is synced only with members and designated relays).")

        @OptionGroup var options: DataOptions
        @Argument(help: "The space: its name or id.") var space: String
        @Argument(help: "The relay's node id (`saraban id` on the relay).") var nodeID: String

        func run() async throws {
            let id = try parseNodeID(nodeID)
            try options.withNode { node in
                try node.designateRelay(try node.resolveSpace(space).id, relay: id)
            }
        }
    }
}

/// A node id given on the command line (`sb…`), or `.invalidArgument` saying what is wrong with it.
func parseNodeID(_ text: String) throws(NodeError) -> NodeID {
    do { return try NodeID(parsing: text) } catch { throw NodeError(.invalidArgument, error.message) }
}

func parseSecrecy(_ text: String) throws(NodeError) -> Secrecy {
    do { return try Secrecy(parsing: text.trimmingCharacters(in: .whitespaces)) } catch { throw NodeError(error) }
}

// MARK: - dev

extension Saraban {
    struct Dev: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Developer tools.", subcommands: [OpenAPICommand.self])
    }
}


extension Saraban.SpaceCommand {
    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "On a relay on PostgreSQL: drop the envelopes stored before a month, a month (partition) at a time.",
            discussion: """
                Each month stored before --before (UTC, YYYY-MM; at most the current month) is first written to
                --archive DIR/YYYY-MM/SPACE.changes (one change file per space, sealed envelopes only: a member merges
                it with `saraban doc merge FILE`), then its partition is dropped and the relay's horizons move: a
                member that lacks a retired stretch of a feed is told so when it syncs (`saraban sync` lists it) and
                takes it from another member or from the archive. Membership logs are never retired. Attachments
                last stored or fetched before the month before --before go too (to DIR/YYYY-MM/attachments/ROOT/, the
                layout of a member's DATA/attachments/); a member offering one again is told the relay no longer
                keeps it. Without --archive nothing is kept: say so with --no-archive. Docs/RELAY.md, "Retention".
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Option(help: ArgumentHelp("Retire the months before this one (UTC).", valueName: "YYYY-MM")) var before: String
        @Option(help: ArgumentHelp("Write each month's envelopes here first.", valueName: "DIR")) var archive: String?
        @Flag(help: "Drop the months without archiving them.") var noArchive = false
        @Option(
            help: ArgumentHelp(
                "The relay's store (default: config.json `store`).", valueName: "postgresql://USER@HOST/DB"))
        var store: String?

        static func month(_ text: String) throws(NodeError) -> Int {
            let parts = text.split(separator: "-")
            guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, let y = Int(parts[0]), let m = Int(parts[1]),
                (1970...9999).contains(y), (1...12).contains(m)
            else {
                throw NodeError(.invalidArgument, "--before \(text.debugDescription) is not a month: give YYYY-MM, for example 2026-01 (รูปแบบเดือนไม่ถูกต้อง)")
            }
            return y * 100 + m
        }

        func run() async throws {
            let month = try Self.month(before)
            guard (archive != nil) != noArchive else {
                throw NodeError(
                    .invalidArgument,
                    archive == nil
                        ? "give --archive DIR to keep the retired envelopes, or --no-archive to drop them for good (ระบุที่เก็บถาวร)"
                        : "--archive and --no-archive contradict each other: give one")
            }
            try await options.withNode { node in
                guard node.role == .relay, try RelayStores.location(node, flag: store) != nil else {
                    throw NodeError(
                        .refused,
                        "retention is for a relay on PostgreSQL (months are partitions there); a member or a relay on its own "
                            + "database keeps every envelope (ใช้ได้กับรีเลย์บน PostgreSQL เท่านั้น)")
                }
                let relay = try await RelayStores.open(node, flag: store)
                guard let pg = relay as? PostgresRelayStore else {
                    await relay.close()
                    throw NodeError(.refused, "retention is for a relay on PostgreSQL")
                }
                let report: RetirementReport
                do {
                    report = try await pg.retire(before: month, archive: archive.map { URL(fileURLWithPath: $0) })
                    await pg.close()
                } catch {
                    await pg.close()
                    throw error
                }
                if output.json {
                    try Output.json(report)
                } else if report.months.isEmpty && report.attachments.isEmpty {
                    Output.line("nothing to retire: no month before \(before) is stored, and no attachment was last used before the month before it")
                } else {
                    for m in report.months {
                        Output.line(
                            "\(m.month): dropped \(m.envelopes) envelopes (\(Output.bytes(Int64(m.bytes)))); horizons moved for \(m.feeds) feeds"
                                + (m.archive.map { "; archived \(m.covered) envelopes in \($0)" } ?? "; not archived"))
                    }
                    for a in report.attachments {
                        Output.line(
                            "\(a.month): let go \(a.attachments) attachments last used then (\(a.chunks) chunks, \(Output.bytes(Int64(a.bytes))))"
                                + (a.archive.map { "; archived in \($0)" } ?? "; not archived"))
                    }
                }
            }
        }
    }
}
