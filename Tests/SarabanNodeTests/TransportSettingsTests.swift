import Foundation
import SarabanNode
import SarabanTransport
import Testing

/// config.json's transport caps reach the daemon's transport (Docs/TRANSPORT.md).
@Suite(.timeLimit(.minutes(2))) struct TransportSettingsTests {
    func withConfig(_ edit: (inout [String: Any]) -> Void, _ body: (Node) throws -> Void) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try Node.initialize(dataDir: dir.data, office: "A", logger: quiet).close()
        let url = URL(fileURLWithPath: dir.data.configPath)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        let node = try Node.open(dataDir: dir.data, logger: quiet)
        defer { node.close() }
        try body(node)
    }

    @Test("max_pending_handshakes and max_pending_handshakes_per_address set the daemon's caps")
    func capsFromConfig() throws {
        try withConfig({ $0["max_pending_handshakes"] = 40; $0["max_pending_handshakes_per_address"] = 3 }) { node in
            let daemon = try NodeDaemon(node: node, storage: try node.envelopeStorage(), logger: quiet)
            #expect(daemon.transport.configuration.maximumPendingHandshakes == 40)
            #expect(daemon.transport.configuration.maximumPendingHandshakesPerAddress == 3)
        }
        try withConfig({ _ in }) { node in
            let daemon = try NodeDaemon(node: node, storage: try node.envelopeStorage(), logger: quiet)
            #expect(daemon.transport.configuration.maximumPendingHandshakes == 256)
            #expect(daemon.transport.configuration.maximumPendingHandshakesPerAddress == 16)
        }
    }

    @Test("a cap below 1 is refused, naming the field")
    func badCap() throws {
        try withConfig({ $0["max_pending_handshakes_per_address"] = 0 }) { node in
            let error = #expect(throws: NodeError.self) { try node.syncSettings() }
            #expect(error?.code == .badConfig)
            #expect(error?.code.exitCode == 78)
            #expect(error?.message.contains("max_pending_handshakes_per_address") == true)
        }
    }
}
