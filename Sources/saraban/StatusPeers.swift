import Foundation
import SarabanNode

// `saraban status`: per-peer lag, from what the daemon and `saraban sync` last recorded in the
// node's peer status rows (PeerStatusBook). Nothing is dialled: this node's vectors now are compared with
// the peer's last recorded summary (older files without one: the counts as of the last contact).

/// One configured peer in `saraban status --json` (`peers`). Every key is always present (null
/// when unknown).
struct StatusPeerJSON: Encodable {
    var name: OrNull<String>
    var nodeID: String
    var address: String
    /// ISO 8601 UTC of the last open session, or null if never contacted.
    var lastContact: OrNull<String>
    var lastSynced: OrNull<String>
    /// Changes the peer lacks (we have, it does not) and we lack, summed over shared spaces: what
    /// this node holds now against the peer's last recorded summary; null if never contacted.
    var changesPeerLacks: OrNull<UInt64>
    var changesWeLack: OrNull<UInt64>
    var lastError: OrNull<String>
}

/// One fork in `saraban status --json` (`forks`): an author signed two different envelopes for one
/// position of its feed, one held here and one held by `peer`.
struct StatusForkJSON: Encodable {
    var space: String
    var author: String
    /// The author is this node: its own database went back in time.
    var ownFeed: Bool
    var sequence: UInt64
    /// This node's envelope id (64 hex digits).
    var held: String
    var peer: String
    /// The peer's envelope id: 64 hex digits, or 16 when only its summary's head tag named it.
    var peerHolds: String
    /// ISO 8601 UTC of when it was first found.
    var detectedAt: String
    /// `envelope` (proven: the peer sent the other envelope, signed by the author) or `summary`
    /// (claimed by the peer's summary: its head tag names another envelope).
    var via: String
}

/// `saraban status --json`: the node status plus `peers`, `spaces`, `forks`, `withheld` and `stale`.
struct StatusJSON: Encodable {
    var status: NodeStatus
    var peers: [StatusPeerJSON]
    var spaces: [StatusSpaceJSON] = []
    var forks: [StatusForkJSON] = []
    var withheld: [StatusWithheldJSON] = []
    var stale: [StatusStaleJSON] = []

    enum Key: String, CodingKey { case peers, spaces, forks, withheld, stale }

    func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(peers, forKey: .peers)
        try c.encode(spaces, forKey: .spaces)
        try c.encode(forks, forKey: .forks)
        try c.encode(withheld, forKey: .withheld)
        try c.encode(stale, forKey: .stale)
    }
}

enum StatusForks {
    /// Every fork recorded in `forks.json` by `serve` and `sync`, oldest first.
    static func rows(_ node: Node) -> [StatusForkJSON] {
        PeerStatusBook.forks(node.dataDirectory).map {
            StatusForkJSON(
                space: $0.space, author: $0.author, ownFeed: $0.author == node.nodeID.text, sequence: $0.sequence,
                held: $0.held, peer: $0.peer, peerHolds: $0.peerHolds, detectedAt: Output.time($0.detectedAt), via: $0.via)
        }
    }

    /// Nothing when there is none; otherwise a warning line and one row per fork.
    static func render(_ rows: [StatusForkJSON], colour: Bool = Colour.enabled) -> [String] {
        guard !rows.isEmpty else { return [] }
        var lines = [
            Colour.paint(
                "forks:      \(rows.count) — ฟีดแตก: ผู้เขียนรายเดียวลงนามข้อมูลสองชุดที่ต่างกันในลำดับเดียวกัน / an author signed two "
                    + "different envelopes for one position: keep both databases as they are and alert an administrator",
                .red, enabled: colour)
        ]
        if rows.contains(where: \.ownFeed) {
            lines.append(
                "            ฐานข้อมูลของเครื่องนี้ย้อนกลับ / this node's own feed forked: its database went back in time (restored "
                    + "from an older copy, or a copy of it wrote elsewhere); write on one copy only")
        }
        var t = Table(["SPACE", "AUTHOR", "SEQ", "HELD HERE", "PEER", "PEER HOLDS", "VIA", "FOUND"])
        t.indent = "  "
        for r in rows {
            t.add([
                Table.Cell(String(r.space.prefix(8)) + "…"),
                Table.Cell(r.ownFeed ? "this node" : String(r.author.prefix(12)) + "…", .red),
                Table.Cell(String(r.sequence)), Table.Cell(String(r.held.prefix(16))), Table.Cell(String(r.peer.prefix(12)) + "…"),
                Table.Cell(String(r.peerHolds.prefix(16))), Table.Cell(r.via), Table.Cell(r.detectedAt),
            ])
        }
        return lines + t.render(colour: colour)
    }
}

enum StatusPeers {
    /// The configured peers with their last recorded lag (an unreadable config lists none:
    /// `saraban peer list` reports the config error).
    static func rows(_ node: Node) async -> [StatusPeerJSON] {
        guard let settings = try? node.syncSettings() else { return [] }
        let book = (try? await RelayStores.peerStatuses(node)) ?? [:]
        let local = try? await RelayStores.carriedSpaces(node)
        return settings.peers.map { p in
            let s = book[p.nodeID.text]
            let contacted = s?.lastContact != nil
            var lag = (peer: s?.changesPeerLacks, we: s?.changesWeLack)
            // With the peer's last summary recorded, compare it with what this node holds now:
            // local writes (and changes from other peers) since the last contact count at once.
            if let recorded = s?.recordedVectors, !recorded.isEmpty, let local {
                lag = (0, 0)
                for (space, r) in recorded {
                    guard let ours = local[space] else { continue }
                    lag.peer! += ours.changesMissing(from: r.vector)
                    lag.we! += r.vector.changesMissing(from: ours)
                }
            }
            return StatusPeerJSON(
                name: OrNull(p.name), nodeID: p.nodeID.text, address: p.address.description,
                lastContact: OrNull(s?.lastContact.map(Output.time)), lastSynced: OrNull(s?.lastSynced.map(Output.time)),
                changesPeerLacks: OrNull(contacted ? lag.peer : nil), changesWeLack: OrNull(contacted ? lag.we : nil),
                lastError: OrNull(s?.lastError))
        }
    }

    static func render(_ rows: [StatusPeerJSON], colour: Bool = Colour.enabled) -> [String] {
        if rows.isEmpty { return ["peers:      none (add one with `saraban peer add NODE_ID HOST:PORT --name NAME`)"] }
        var t = Table(["PEER", "NODE", "ADDRESS", "LAST CONTACT", "THEY LACK", "WE LACK"], maxWidths: [32, nil, nil, nil, nil, nil])
        t.indent = "  "
        for r in rows {
            let (contact, theyLack, weLack) = (r.lastContact.value, r.changesPeerLacks.value ?? 0, r.changesWeLack.value ?? 0)
            let lag: (String, String) = contact == nil ? ("-", "-") : (String(theyLack), String(weLack))
            t.add([
                Table.Cell(r.name.value ?? "-"), Table.Cell(String(r.nodeID.prefix(12)) + "…"), Table.Cell(r.address),
                Table.Cell(contact ?? "never", contact == nil ? .yellow : nil),
                Table.Cell(lag.0, theyLack > 0 ? .yellow : nil), Table.Cell(lag.1, weLack > 0 ? .yellow : nil),
            ])
        }
        return ["peers:      \(rows.count) (changes each way: this node now against the peer's last summary)"] + t.render(colour: colour)
    }
}
