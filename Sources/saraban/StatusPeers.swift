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

/// `saraban status --json`: the node status plus `peers`.
struct StatusJSON: Encodable {
    var status: NodeStatus
    var peers: [StatusPeerJSON]

    enum Key: String, CodingKey { case peers }

    func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(peers, forKey: .peers)
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
