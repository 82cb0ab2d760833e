import SarabanCrypto
import SarabanSync
import SarabanTransport

/// What a person is told when talking to a peer failed: what failed, in Thai and in English, and
/// what to try next (`saraban sync`, `inspect-sync`, `peer list`, the daemon's log).
public enum NetworkFailure {
    /// A dial of `peer` at `address` that threw `error` (connect, handshake).
    public static func describe(
        _ error: any Error, peer: String, address: PeerAddress, configuration: TransportConfiguration = .init()
    ) -> String {
        guard let e = error as? TransportError else { return "\(peer) (\(address)): \(error)" }
        let at = "\(peer) (\(address))"
        switch e.code {
        case .connectionRefused:
            return "เชื่อมต่อ \(at) ไม่ได้: ไม่มีโปรแกรมรอรับที่พอร์ตนี้ / cannot connect to \(at): nothing listens on "
                + "that port (connection refused). Check that `saraban serve` runs there and that the port in "
                + "`saraban peer list` is right."
        case .hostUnreachable:
            return "ติดต่อ \(at) ไม่ได้ เครือข่ายไปไม่ถึง / cannot reach \(at): \(e.message). Check this machine's "
                + "network (cable, Wi-Fi, VPN) and the address in `saraban peer list`."
        case .connectTimeout:
            return "\(at) ไม่ตอบภายใน \(seconds(configuration.connectTimeout)) วินาที / \(at) did not answer within "
                + "\(seconds(configuration.connectTimeout)) s: the machine may be off, the address wrong, or a firewall "
                + "dropping the connection. Check that it is on and reachable (ping \(address.host))."
        case .hostNotFound:
            return "ไม่พบชื่อเครื่อง \(address.host) / \(e.message). Check the name in `saraban peer list` or use the "
                + "peer's IP address."
        case .handshakeTimeout:
            return "\(at) รับการเชื่อมต่อแต่ไม่ยืนยันตัวตนภายใน \(seconds(configuration.handshakeTimeout)) วินาที / \(at) "
                + "accepted the connection but did not finish the secure handshake within "
                + "\(seconds(configuration.handshakeTimeout)) s: it may not be a saraban node, or it is overloaded. "
                + "Check the port in `saraban peer list` and try again."
        case .handshakeFailed:
            return "ยืนยันตัวตนกับ \(at) ไม่สำเร็จ / the secure handshake with \(at) failed (\(e.message)): what listens "
                + "there is not a compatible saraban node. Check the port, and that both run a compatible "
                + "`saraban --version`."
        case .unexpectedPeer:
            return "ที่อยู่ \(address) เป็นของเครื่องอื่น / \(address) answered as another node"
                + (e.peer.map { " (\($0))" } ?? "") + ", not \(peer): the address now belongs to someone else. Ask "
                + "\(peer) for its address and node id and run `saraban peer add NODE_ID HOST:PORT`."
        case .peerUntrusted:
            return "ไม่ได้ไว้ใจ \(at) / \(e.message)"
        default:
            return "\(at): \(e)"
        }
    }

    /// Binding the listening socket at `address` failed with `error`.
    public static func listening(_ error: any Error, address: PeerAddress) -> NodeError {
        guard let e = error as? TransportError, e.code == .addressInUse || e.code == .cannotListen else {
            return NodeError(.unreachable, "ฟังที่ \(address) ไม่ได้ / cannot listen on \(address): \(error)")
        }
        var message = "ฟังที่ \(address) ไม่ได้ / cannot listen on \(address): \(e.message). "
        if e.code == .addressInUse {
            message += "Another program (perhaps another `saraban serve`) holds that port: stop it (`ss -ltnp "
                + "'sport = :\(address.port)'` shows which), or choose another port with --listen HOST:PORT or "
                + "`listen` in config.json (and tell the peers with `saraban peer add`)."
        } else {
            message += "Choose an address of this machine and a port above 1024 with --listen HOST:PORT or `listen` "
                + "in config.json."
        }
        return NodeError(.unreachable, message)
    }

    /// A session with `peer` that ended before it was synced (`report.wasSynced` false).
    /// `me` is this node's id, for the advice when the peer refused us.
    public static func describe(
        _ report: PeerReport, peer: String, address: PeerAddress, me: NodeID,
        configuration: TransportConfiguration = .init()
    ) -> String {
        let at = "\(peer) (\(address))"
        if isRefusal(report) { return refusal(peer: peer, address: address, me: me) }
        let resume = "what arrived is stored, nothing is lost; run `saraban sync` again to go on"
        if let t = report.transportError {
            switch t.code {
            case .idleTimeout, .readTimeout, .writeTimeout:
                return "การเชื่อมต่อกับ \(at) เงียบหายไป / the connection with \(at) went silent (\(t.message)): the "
                    + "network dropped or the peer is overloaded; \(resume)."
            case .connectionClosed:
                return "การเชื่อมต่อกับ \(at) หลุดระหว่างซิงก์ / the connection with \(at) dropped during the sync; \(resume)."
            default:
                return "\(at): \(t); \(resume)."
            }
        }
        if let s = report.storeError { return "\(at): this node's store failed: \(s)" }
        switch report.reason {
        case .timedOut:
            return "\(at) หยุดตอบ / \(at) stopped answering within the sync timeout; \(resume)."
        case .connectionLost:
            return "การเชื่อมต่อกับ \(at) หลุด / the connection with \(at) was lost; \(resume)."
        case .peerError(let e):
            return "\(at) ยุติการซิงก์ / \(at) ended the session: \(e)."
        default:
            return "\(at): the session ended (\(report.reason)) before it was synced; \(resume)."
        }
    }

    /// The peer refused this node (see ``isRefusal(_:)``).
    public static func refusal(peer: String, address: PeerAddress, me: NodeID) -> String {
        let at = "\(peer) (\(address))"
        return "\(at) ปฏิเสธเครื่องนี้ / \(at) refused this node: it closed the connection right after the handshake "
            + "without a word, as a node does with a node id it does not trust. Ask its administrator to add this "
            + "node there (`saraban peer add \(me.text) HOST:PORT`) or to invite it into a shared space."
    }

    /// The peer closed the connection right after the Noise handshake, before a single byte of
    /// sync: what a node does with an initiator whose node id it does not trust (the responder
    /// learns the initiator's id only from the last handshake message, then just closes).
    public static func isRefusal(_ report: PeerReport) -> Bool {
        !report.wasSynced && report.reason == .connectionLost && report.wire.bytesReceived == 0
            && report.stats.framesReceived == 0
    }

    static func seconds(_ d: Duration) -> String {
        let c = d.components
        let s = Double(c.seconds) + Double(c.attoseconds) / 1e18
        return s == s.rounded() ? String(Int(s)) : String(s)
    }
}
