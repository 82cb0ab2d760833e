import Foundation
import SarabanCrypto
import SarabanNode
import SarabanSync
import SarabanTransport
import Testing

/// Trust is not only checked at the handshake: a daemon that stops trusting a node closes the
/// sessions it has open with it (Docs/TRANSPORT.md, "Revoking trust").
@Suite(.serialized, .timeLimit(.minutes(2)))
struct TrustRevocationTests {
    @Test("removing a peer from the trusted set closes its open session promptly and refuses its next handshake")
    func revokingTrustClosesTheSession() async throws {
        let root = temporaryDirectory("revoke")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try TestNode("A", root: root)
        let b = try TestNode("B", root: root)
        let events = Locked<[PeerEvent]>([])
        a.onEvent = { e in events.withLock { $0.append(e) } }
        try await a.start()
        try await b.start()
        try a.addPeer(b)
        try b.addPeer(a)
        let bID = b.id
        func opened() -> Int {
            events.current.filter { if case .opened(let p, _, _) = $0 { p == bID } else { false } }.count
        }
        func closedUntrusted() -> Bool {
            events.current.contains {
                if case .closed(let r) = $0 { r.peer == bID && r.transportError?.code == .peerUntrusted } else { false }
            }
        }
        func closedAny() -> Int {
            events.current.filter { if case .closed(let r) = $0 { r.peer == bID } else { false } }.count
        }
        try await withNodes([a, b]) {
            // A shares no space with B: only its peer list makes B trusted.
            try await eventually("A has a session with B", timeout: .seconds(20)) {
                opened() > 0 && a.daemon?.transport.openChannelPeers.contains(bID) == true
            }
            // The operator takes B out of A's peers (config.json edited while A runs).
            var config = try a.node.currentConfig()
            config.peers.removeAll { $0.nodeID == bID.text }
            try config.encoded().write(to: URL(fileURLWithPath: a.node.dataDirectory.configPath))
            let clock = ContinuousClock()
            let start = clock.now
            let closedBefore = closedAny()
            do {
                // Generous: on a loaded 2-core CI machine, timers of this process have resumed
                // seconds late. Under such load B's session can also end for another reason (a
                // read deadline) just before the revocation is read: then no session is left to
                // close as untrusted, and what follows (no session opens again; a fresh handshake
                // is refused) is what shows the revocation.
                try await eventually("A closed B's session as untrusted", timeout: .seconds(60)) {
                    closedUntrusted()
                        || (closedAny() > closedBefore && a.daemon?.transport.openChannelPeers.contains(bID) == false
                            && clock.now - start > .seconds(5))
                }
                if !closedUntrusted() { print("TrustRevocationTests: B's session ended otherwise before the revocation was read") }
            } catch {
                // It has timed out only under heavy load (twice in parallel runs, never alone):
                // say what A saw of B, to tell a session that ended otherwise from one never closed.
                let seen = events.current.compactMap { e -> String? in
                    switch e {
                    case .opened(let p, _, _) where p == bID: "opened"
                    case .closed(let r) where r.peer == bID:
                        "closed(\(r.reason), transport: \(r.transportError.map { "\($0.code)" } ?? "-"))"
                    default: nil
                    }
                }
                print("TrustRevocationTests: A's sessions with B: \(seen); channels open now: \(a.daemon?.transport.openChannelPeers.filter { $0 == bID }.count ?? -1)")
                throw error
            }
            let elapsed = clock.now - start
            print("revoked session closed after \(elapsed) (config re-read every \(a.options.configInterval))")
            #expect(a.daemon?.transport.openChannelPeers.contains(bID) == false)

            // B's daemon keeps redialling (backoff ≤ 800 ms here): no session opens again.
            let openedBefore = opened()
            try await Task.sleep(for: .seconds(2))
            #expect(opened() == openedBefore)
            #expect(a.daemon?.transport.openChannelPeers.contains(bID) == false)

            // A fresh handshake as B: the responder refuses it after message 3, so the connection
            // closes without a single sync byte (a trusted peer gets A's hello at once).
            let dialler = SecureTransport(identity: b.node.identity, configuration: TransportConfiguration(), trust: { _ in true })
            let first: Result<[UInt8]?, TransportError> = try await dialler.connect(
                host: "127.0.0.1", port: a.port, expecting: a.id
            ) { channel in
                do throws(TransportError) { return .success(try await channel.reader.next()) } catch { return .failure(error) }
            }
            switch first {
            case .success(let bytes): #expect(bytes == nil, "A sent \(bytes?.count ?? 0) bytes to an untrusted node")
            case .failure(let error): #expect(error.code == .connectionClosed, "\(error)")
            }
        }
    }
}
