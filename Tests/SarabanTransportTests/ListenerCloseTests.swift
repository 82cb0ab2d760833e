import Foundation
import NIOCore
import SarabanCrypto
import Testing

#if canImport(Glibc)
import Glibc
#endif

@_spi(Testing) @testable import SarabanTransport

/// Closing a listener while connections arrive must not stop the process. NIO hands an accepted
/// connection to the listener's stream before it turns active; one that arrived as the listening
/// socket closed was released untaken, and its channel turning active then released the last
/// reference to its writer, unfinished: "Deinited NIOAsyncWriter without calling finish()", a
/// trap that stopped a daemon in CI (PowerLossTests, 7 December 2026). An untaken accepted
/// connection now closes itself.
@Suite(.timeLimit(.minutes(3))) struct ListenerCloseTests {
    @Test func closingAListenerWhileConnectionsArriveDoesNotTrap() async throws {
        let keys = try SigningKeyPair(seed: SecureBytes(Array(repeating: 7, count: 32)))
        for round in 0..<40 {
            let transport = SecureTransport(identity: keys, configuration: fastTransport(), trust: { _ in true })
            let listener = try await transport.listen(host: "127.0.0.1", port: 0)
            let port = UInt16(listener.port)
            let running = Task { try await listener.run { _ in } }
            // A burst of plain TCP connections from another thread, the listener closed midway.
            let burst = Thread { Self.connect(count: 64, port: port) }
            burst.start()
            try await Task.sleep(for: .microseconds(200 * (round % 10)))
            listener.close()
            _ = try? await running.value
        }
    }

    /// Opens `count` connections to 127.0.0.1:`port` without waiting for them, then closes them.
    static func connect(count: Int, port: UInt16) {
        var fds: [Int32] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            fds.append(fd)
        }
        usleep(50_000)
        for fd in fds { close(fd) }
    }
}
