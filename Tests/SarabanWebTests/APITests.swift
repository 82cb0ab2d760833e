import Foundation
import SarabanNode
@testable import SarabanWeb
import Testing

/// The JSON API's skeleton answers what the CLI's --json says, for a token and for a session.
@Suite(.timeLimit(.minutes(3))) struct APITests {
    @Test func nodeAndPeersAnswerAsTheCLIDoes() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let other = try Node.initialize(
            dataDir: DataDirectory(path: w.dir + "/other"), office: "อำเภอเมืองน่าน", logger: quiet)
        defer { other.close() }
        try w.node.addPeer(nodeID: other.nodeID.text, address: "10.0.0.2:7420", name: "อำเภอเมืองน่าน")
        let (_, token) = try w.app.accounts.createToken(name: "vendor-x", scope: .read)
        let auth = [("Authorization", "Bearer \(token)")]
        let node = try await w.get("/api/v1/node", headers: auth)
        #expect(node.status == 200 && node.header("content-type") == "application/json; charset=utf-8")
        #expect(node.json?["office"] as? String == "สำนักงานจังหวัดน่าน" && node.json?["letter_code"] as? String == "นน")
        #expect(node.json?["node_id"] as? String == w.node.nodeID.text)
        let peers = try await w.get("/api/v1/peers", headers: auth)
        let list = try #require(try JSONSerialization.jsonObject(with: Data(peers.body)) as? [[String: Any]])
        #expect(list.count == 1)
        #expect(list[0]["node_id"] as? String == other.nodeID.text && list[0]["address"] as? String == "10.0.0.2:7420")
        #expect(list[0]["name"] as? String == "อำเภอเมืองน่าน" && list[0]["envelopes_sent"] as? Int == 0)
        #expect(list[0]["last_contact"] == nil && list[0]["changes_we_lack"] == nil)
        // The same rows as the CLI's `peer list --json` (one encoder type for both).
        let cli = try JSONSerialization.jsonObject(with: JSONEncoder().encode(try w.node.peerList())) as? [[String: Any]]
        #expect(cli?.first?["node_id"] as? String == list[0]["node_id"] as? String)
    }
}
