import SarabanNode
import SarabanStorage

/// One space's authority state in `saraban status` (Docs/SECURITY.md): what the space's
/// membership log refused, holds or keeps waiting.
struct StatusSpaceJSON: Encodable {
    var id: String
    var name: String
    /// The space has a membership log (false: made before it, under the legacy rules).
    var membershipLog: Bool
    var admin: Bool
    /// Envelopes held until their authors are admitted or their keys arrive.
    var heldEnvelopes: Int
    /// Received changes logged with no effect (not an admin, not an owner, malformed).
    var refusedChanges: Int
    /// This node's changes waiting unsealed, and why.
    var unsealedChanges: Int
    var sealWait: OrNull<String>
    /// Removed nodes that still hold the current key (an admin must rotate it).
    var keyHeldByRemoved: [String]
}

enum StatusSpaces {
    static func rows(_ node: Node) -> [StatusSpaceJSON] {
        guard let spaces = try? node.spaces() else { return [] }
        return spaces.filter { $0.role == .member }.compactMap { s in
            guard let a = try? node.authority(s.id) else { return nil }
            return StatusSpaceJSON(
                id: s.id.hex, name: s.name, membershipLog: a.hasLog, admin: a.admins.contains(node.identity.publicKey),
                heldEnvelopes: a.held, refusedChanges: a.refusedChanges, unsealedChanges: a.unsealed,
                sealWait: OrNull(a.sealWait), keyHeldByRemoved: a.leakedTo.map(\.nodeID.text).sorted())
        }
    }

    /// A line per space with something to say (nothing for a space where all is well).
    static func render(_ rows: [StatusSpaceJSON]) -> [String] {
        var out: [String] = []
        for r in rows {
            var notes: [String] = []
            if r.heldEnvelopes > 0 { notes.append("\(r.heldEnvelopes) envelope(s) held until their authors are admitted or their keys arrive") }
            if r.refusedChanges > 0 { notes.append("\(r.refusedChanges) received change(s) refused (`saraban space refused \(r.name)`)") }
            if r.unsealedChanges > 0 {
                notes.append("\(r.unsealedChanges) change(s) of this node wait unsealed\(r.sealWait.value.map { ": \($0)" } ?? "")")
            }
            if !r.keyHeldByRemoved.isEmpty {
                notes.append("the current key is still held by removed node(s) \(r.keyHeldByRemoved.map { String($0.prefix(12)) + "…" }.joined(separator: ", "))")
            }
            if !r.membershipLog { notes.append("made before membership logs: its creator upgrades it when it runs this version") }
            guard !notes.isEmpty else { continue }
            out.append("space \(r.name) (\(r.id.prefix(8))): " + notes.joined(separator: "; "))
        }
        return out
    }
}
