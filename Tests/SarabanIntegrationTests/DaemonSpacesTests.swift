import Foundation
import SarabanCore
import SarabanNode
import SarabanSync
import Testing

/// A running daemon and the spaces it carries (issue 14): a space joined or created while the
/// daemons run is synced without restarting them.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DaemonSpacesTests {
    /// A and B run and are connected (a session open, sharing no space yet). Then A creates a
    /// space, B joins it and A writes in it: B gets the write. Before, the open session's hello
    /// listed only the spaces carried when it opened, so B never got it while both ran.
    @Test func spaceJoinedWhileRunningIsSynced() async throws {
        let root = temporaryDirectory("join")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try TestNode("อบต.บ้านใหม่", root: root)
        let b = try TestNode("อบต.หนองบัว", root: root)
        try await withNodes([a, b]) {
            try await a.start()
            try await b.start()
            try a.addPeer(b)
            try b.addPeer(a)
            try await eventually("a session between A and B") {
                ((try? a.node.peerStatuses()) ?? [:])[b.id.text]?.lastContact != nil
                    && ((try? b.node.peerStatuses()) ?? [:])[a.id.text]?.lastContact != nil
            }
            let space = try shareSpace("สารบรรณ", creator: a, members: [b], relays: [])
            let doc = try a.node.createDocument(kind: "letter", fields: [("subject", "หลังเข้าร่วม")], space: space)
            try await eventually("B has A's write in the space joined while running", timeout: .seconds(20)) {
                try holdsAll(b, [(doc, "subject", "หลังเข้าร่วม")])
            }
            // And the other way, a space B creates and A joins.
            let second = try shareSpace("กองคลัง", creator: b, members: [a], relays: [])
            let back = try b.node.createDocument(kind: "letter", fields: [("subject", "จากหนองบัว")], space: second)
            try await eventually("A has B's write in the second space", timeout: .seconds(20)) {
                try holdsAll(a, [(back, "subject", "จากหนองบัว")])
            }
        }
    }
}
