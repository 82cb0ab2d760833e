import Foundation
import SarabanNode

// `saraban status`: what peers did not deliver though head claims say it exists, and members not
// heard from for longer than `stale_after` (Docs/SECURITY.md, "Withholding").

/// One author a peer did not deliver, in `saraban status --json` (`withheld`).
struct StatusWithheldJSON: Encodable {
    var peer: String
    var peerName: OrNull<String>
    var space: String
    var author: String
    /// Changes of the author that the claim says exist and this node does not hold.
    var behind: UInt64
    var held: UInt64
    var claimed: UInt64
    /// Who claimed them, and when (ISO 8601 UTC, the claimant's clock).
    var claimant: String
    var claimTime: String
    /// When the session that did not deliver them settled.
    var detectedAt: String

    init(peer: String, peerName: String?, _ w: WithheldFeed) {
        self.peer = peer
        self.peerName = OrNull(peerName)
        space = w.space
        author = w.author
        behind = w.behind
        held = w.held
        claimed = w.claimed
        claimant = w.claimant
        claimTime = Output.time(w.claimTime)
        detectedAt = Output.time(w.detectedAt)
    }
}

/// One member of a space whose latest head claim is older than `stale_after` (`stale`).
struct StatusStaleJSON: Encodable {
    var space: String
    var spaceName: String
    var member: String
    /// ISO 8601 UTC of its latest claim (its clock).
    var lastClaim: String
}

enum StatusWithholding {
    static func withheld(_ node: Node) -> [StatusWithheldJSON] {
        let names = Dictionary(
            ((try? node.syncSettings())?.peers ?? []).map { ($0.nodeID.text, $0.name) }, uniquingKeysWith: { a, _ in a })
        return node.withheldByPeer().flatMap { entry in
            entry.withheld.map { StatusWithheldJSON(peer: entry.peer, peerName: names[entry.peer] ?? nil, $0) }
        }
    }

    static func stale(_ node: Node) -> [StatusStaleJSON] {
        ((try? node.staleMembers()) ?? []).map {
            StatusStaleJSON(space: $0.space, spaceName: $0.spaceName, member: $0.member, lastClaim: Output.time($0.lastClaim))
        }
    }

    /// Nothing when nothing was withheld; otherwise a warning line and a row per peer and author.
    static func renderWithheld(_ rows: [StatusWithheldJSON], colour: Bool = Colour.enabled) -> [String] {
        guard !rows.isEmpty else { return [] }
        let peers = Set(rows.map(\.peer)).count
        var lines = [
            Colour.paint(
                "withheld:   \(peers) peer(s) — ข้อมูลที่มีอยู่จริงแต่ไม่ได้รับจากเครื่องนี้ / envelopes exist (signed claims of members say so) "
                    + "that these peers did not deliver: sync with another relay or the claimant, and ask the peer's operator",
                .yellow, enabled: colour)
        ]
        var t = Table(["PEER", "SPACE", "AUTHOR", "BEHIND", "CLAIMED BY", "CLAIM TIME"])
        t.indent = "  "
        for r in rows {
            t.add([
                Table.Cell(r.peerName.value ?? String(r.peer.prefix(12)) + "…"), Table.Cell(String(r.space.prefix(8)) + "…"),
                Table.Cell(String(r.author.prefix(12)) + "…"), Table.Cell(String(r.behind), .yellow),
                Table.Cell(String(r.claimant.prefix(12)) + "…"), Table.Cell(r.claimTime),
            ])
        }
        return lines + t.render(colour: colour)
    }

    /// Nothing when no member is stale; otherwise a line and a row per space and member.
    static func renderStale(_ rows: [StatusStaleJSON], staleAfter: String, colour: Bool = Colour.enabled) -> [String] {
        guard !rows.isEmpty else { return [] }
        var lines = [
            Colour.paint(
                "stale:      \(rows.count) member(s) — ไม่ได้รับข่าวจากสมาชิกเกิน \(staleAfter) / not heard from for more than "
                    + "\(staleAfter) (stale_after in config.json): their latest signed claim is older",
                .yellow, enabled: colour)
        ]
        var t = Table(["SPACE", "MEMBER", "LAST CLAIM"])
        t.indent = "  "
        for r in rows {
            t.add([
                Table.Cell(r.spaceName.isEmpty ? String(r.space.prefix(8)) + "…" : r.spaceName),
                Table.Cell(String(r.member.prefix(12)) + "…"), Table.Cell(r.lastClaim, .yellow),
            ])
        }
        return lines + t.render(colour: colour)
    }
}
