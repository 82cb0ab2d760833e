import ArgumentParser
import Foundation
import SarabanCrypto
import SarabanNode
import SarabanSync

// `saraban inspect-sync PEER`: a dry run of a reconciliation (see Node+InspectSync.swift).

extension Saraban {
    struct InspectSync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "inspect-sync",
            abstract: "Show what a sync with a peer would move each way, without moving it.",
            discussion: """
                PEER is a configured peer's name, node id (or a unique prefix) or HOST:PORT, as for `saraban sync`.
                Dials it, exchanges hello and summaries (version vectors), says bye and prints, per shared space
                and author, the sequence numbers and how many changes (and envelopes, where known) would go each
                way. Sends and stores no envelope. With --offline, nothing is dialled: it compares with the
                vectors the peer announced in the last sync (recorded in the node's peer status), so what the peer wrote
                since is not counted. Exit 69 when the peer cannot be reached (or nothing was recorded).
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Flag(help: "Compare with the peer's last recorded summary instead of dialling it.") var offline = false
        @Option(help: ArgumentHelp("Give up on a silent peer after this long.", valueName: "SECONDS"))
        var timeout: Double = 30
        @Argument(help: "The peer (name, node id or prefix, or HOST:PORT).") var peer: String

        func run() async throws {
            guard timeout > 0 else { throw NodeError(.invalidArgument, "--timeout must be a positive number of seconds") }
            try await options.withNode { node in
                let target = try node.syncSettings().peer(matching: peer)
                let preview =
                    offline
                    ? try node.inspectSyncRecorded(peer: target)
                    : try await node.inspectSync(peer: target, timeout: .milliseconds(Int(timeout * 1000)))
                if output.json {
                    try Output.json(InspectSyncJSON(preview))
                } else {
                    for l in InspectSyncText.render(preview) { Output.line(l) }
                }
            }
        }
    }
}

/// `saraban inspect-sync --json` (documented in Docs/CLI.md). Every key is always present.
struct InspectSyncJSON: Encodable {
    struct Movement: Encodable {
        var changes: UInt64
        var envelopes: OrNull<Int>
        init(_ m: SyncMovement) {
            changes = m.changes
            envelopes = OrNull(m.envelopes)
        }
    }

    struct Range: Encodable {
        var first: UInt64
        var last: UInt64
        var changes: UInt64
        var envelopes: OrNull<Int>
        init(_ r: SequenceRange) {
            first = r.first
            last = r.last
            changes = r.changes
            envelopes = OrNull(r.envelopes)
        }
    }

    struct Author: Encodable {
        var nodeID: String
        var office: OrNull<String>
        var here: UInt64
        var peer: UInt64
        var toPeer: OrNull<Range>
        var fromPeer: OrNull<Range>
        init(_ a: AuthorPreview) {
            nodeID = a.nodeID.text
            office = OrNull(a.office)
            here = a.local
            peer = a.peer
            toPeer = OrNull(a.toPeer.map(Range.init))
            fromPeer = OrNull(a.fromPeer.map(Range.init))
        }
    }

    struct Space: Encodable {
        var space: String
        var name: String
        var toPeer: Movement
        var fromPeer: Movement
        var authors: [Author]
        var claimedAhead: [Claimed]
    }

    /// An author a head claim says more exists of than the peer holds.
    struct Claimed: Encodable {
        var nodeID: String
        var claimed: UInt64
        var peer: UInt64
        var here: UInt64
        var claimant: String
        var claimTime: String
        init(_ c: ClaimedAhead) {
            nodeID = c.author.text
            claimed = c.claimed
            peer = c.peer
            here = c.local
            claimant = c.claimant.text
            claimTime = Output.time(c.claimTime)
        }
    }



    struct Named: Encodable {
        var space: String
        var name: String
    }

    var peer: String
    var nodeID: String
    var address: String
    var source: String
    var peerRole: OrNull<String>
    var recordedAt: OrNull<String>
    var seconds: OrNull<Double>
    var spaces: [Space]
    var notShared: [Named]
    var peerOnlySpaces: OrNull<Int>
    var toPeer: Movement
    var fromPeer: Movement
    /// What the peer did not deliver in its last settled session (DIR/withheld.json), as `status` shows it.
    var withheld: [StatusWithheldJSON]

    init(_ p: SyncPreview) {
        peer = p.peer.label
        nodeID = p.peer.nodeID.text
        address = p.peer.address.description
        source = p.source.rawValue
        peerRole = OrNull(p.peerRole.map { "\($0)" })
        recordedAt = OrNull(p.recordedAt.map(Output.time))
        seconds = OrNull(p.seconds.map { ($0 * 1000).rounded() / 1000 })
        spaces = p.spaces.map { s in
            Space(
                space: s.space.hex, name: s.name, toPeer: Movement(s.toPeer), fromPeer: Movement(s.fromPeer),
                authors: s.authors.map(Author.init), claimedAhead: s.claimedAhead.map(Claimed.init))
        }
        withheld = p.withheld.map { StatusWithheldJSON(peer: p.peer.nodeID.text, peerName: p.peer.name, $0) }
        notShared = p.notShared.map { Named(space: $0.space.hex, name: $0.name) }
        peerOnlySpaces = OrNull(p.peerOnlySpaces)
        toPeer = Movement(p.toPeer)
        fromPeer = Movement(p.fromPeer)
    }
}

enum InspectSyncText {
    static func count(_ n: UInt64, _ word: String) -> String { "\(n) \(word)\(n == 1 ? "" : "s")" }

    static func movement(_ m: SyncMovement) -> String {
        var s = count(m.changes, "change")
        if let e = m.envelopes, m.changes > 0 { s += " in " + count(UInt64(e), "envelope") }
        return s
    }

    static func range(_ r: SequenceRange?) -> String {
        guard let r else { return "-" }
        return r.first == r.last ? "\(r.first)" : "\(r.first)–\(r.last)"
    }

    /// A heading per shared space and a table of its authors, then the totals.
    static func render(_ p: SyncPreview, colour: Bool = Colour.enabled) -> [String] {
        var out: [String] = []
        let source: String
        switch p.source {
        case .live:
            source = "\(p.peerRole.map { "\($0), " } ?? "")asked just now"
        case .recorded:
            source = "its summary recorded \(p.recordedAt.map(Output.time) ?? "earlier"); what it wrote since is not counted"
        }
        out.append("inspect-sync with \(p.peer.label) (\(p.peer.address)): \(source)")
        if p.spaces.isEmpty { out.append("no shared space") }
        for s in p.spaces {
            out.append("")
            out.append(
                "space \(s.name) (\(s.space.hex.prefix(8))…): send \(movement(s.toPeer)), receive \(movement(s.fromPeer))")
            var t = Table(
                ["OFFICE", "NODE", "HERE", "PEER", "SEND SEQ", "SEND", "ENVELOPES", "RECEIVE SEQ", "RECEIVE"],
                maxWidths: [32, nil, nil, nil, nil, nil, nil, nil, nil])
            t.indent = "  "
            for a in s.authors {
                let send = a.toPeer?.changes ?? 0
                let receive = a.fromPeer?.changes ?? 0
                t.add([
                    Table.Cell(a.office ?? "-"), Table.Cell(String(a.nodeID.text.prefix(12)) + "…"),
                    Table.Cell(String(a.local)), Table.Cell(String(a.peer)),
                    Table.Cell(range(a.toPeer)), Table.Cell(String(send), send > 0 ? .yellow : nil),
                    Table.Cell(a.toPeer?.envelopes.map(String.init) ?? "-"),
                    Table.Cell(range(a.fromPeer)), Table.Cell(String(receive), receive > 0 ? .yellow : nil),
                ])
            }
            out += t.render(colour: colour)
            for c in s.claimedAhead {
                out.append(
                    Colour.paint(
                        "  claims say more exists / ข้อมูลตามคำยืนยันของสมาชิก: \(c.author.text.prefix(12))… up to \(c.claimed), the peer holds "
                            + "\(c.peer), here \(c.local) (claimed by \(c.claimant.text.prefix(12))… at \(Output.time(c.claimTime)))",
                        .yellow, enabled: colour))
            }
        }
        if !p.withheld.isEmpty {
            out.append("")
            out.append(
                Colour.paint(
                    "not delivered in the last settled session though claims say it exists / ไม่ได้รับทั้งที่มีอยู่จริง:", .yellow,
                    enabled: colour))
            for w in p.withheld {
                out.append(
                    "  space \(w.space.prefix(8))…: \(w.author.prefix(12))… \(w.behind) behind (held \(w.held), claimed \(w.claimed) by "
                        + "\(w.claimant.prefix(12))… at \(Output.time(w.claimTime)))")
            }
        }
        if !p.notShared.isEmpty {
            out.append("")
            let what = p.source == .live ? "not carried by the peer" : "no recorded summary"
            out.append("\(what): " + p.notShared.map(\.name).joined(separator: ", "))
        }
        out.append("")
        let shared = p.spaces.count
        out.append(
            "total over \(shared) shared space\(shared == 1 ? "" : "s"): send \(movement(p.toPeer)), "
                + "receive \(movement(p.fromPeer)); nothing was sent or stored")
        return out
    }
}
