import Foundation

/// One configured peer as `saraban peer list --json` and the web API's `GET /api/v1/peers` show
/// it: address, last contact and sync (ISO 8601, UTC), last error, lag each way at the last
/// contact (absent before the first), envelopes moved.
public struct PeerListEntry: Encodable, Sendable {
    public var name: String?
    public var node_id: String
    public var address: String
    public var last_contact: String?
    public var last_synced: String?
    public var last_error: String?
    public var changes_peer_lacks: UInt64?
    public var changes_we_lack: UInt64?
    public var envelopes_sent: Int
    public var envelopes_received: Int
    /// What the peer did not deliver in its latest settled session though head claims say it
    /// exists (absent when nothing was; Docs/SECURITY.md, "Withholding").
    public var withheld: [WithheldFeed]?

    /// `2025-01-31T09:15:02.123Z` from milliseconds since 1970.
    public static func time(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}

extension Node {
    /// The configured peers with what was recorded of each (the database rows).
    /// `statuses`: what was recorded of each peer by node id (default: this node's database).
    public func peerList(statuses: [String: PeerStatus]? = nil) throws(NodeError) -> [PeerListEntry] {
        let status: [String: PeerStatus]
        if let statuses { status = statuses } else { status = try peerStatuses() }
        return try syncSettings().peers.map { p in
            let s = status[p.nodeID.text]
            return PeerListEntry(
                name: p.name, node_id: p.nodeID.text, address: p.address.description,
                last_contact: s?.lastContact.map(PeerListEntry.time), last_synced: s?.lastSynced.map(PeerListEntry.time),
                last_error: s?.lastError, changes_peer_lacks: s?.lastContact == nil ? nil : s?.changesPeerLacks,
                changes_we_lack: s?.lastContact == nil ? nil : s?.changesWeLack,
                envelopes_sent: s?.envelopesSent ?? 0, envelopes_received: s?.envelopesReceived ?? 0, withheld: s?.withheld)
        }
    }
}
