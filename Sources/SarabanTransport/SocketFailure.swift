import NIOCore
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

// Naming what went wrong when a TCP connection could not be opened or a port bound, from NIO's
// errors (errno inside IOError, HappyEyeballs' per-address failures, DNS failures, timeouts),
// so that the node can tell a person what failed and what to try.

extension TransportError {
    /// The error for a failed dial of `host:port`.
    init(connecting error: any Error, host: String, port: Int) {
        let target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        switch Self.classify(error) {
        case .refused:
            self.init(.connectionRefused, "\(target) refused the connection (nothing listens on that port)")
        case .unreachable(let why):
            self.init(.hostUnreachable, "\(target) cannot be reached: \(why)")
        case .timedOut:
            self.init(.connectTimeout, "\(target) did not answer in time")
        case .dns(let why):
            self.init(.hostNotFound, "the host name \(host) cannot be resolved (\(why))")
        case .other:
            self.init(.connectFailed, "cannot connect to \(target): \(error)")
        }
    }

    /// The error for a failed bind of `host:port`.
    init(listening error: any Error, host: String, port: Int) {
        let target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        switch Self.errno(of: error) {
        case EADDRINUSE?: self.init(.addressInUse, "\(target) is already in use by another program")
        case EACCES?: self.init(.cannotListen, "no permission to listen on \(target) (ports below 1024 need root)")
        case EADDRNOTAVAIL?: self.init(.cannotListen, "\(host) is not an address of this machine")
        default: self.init(.cannotListen, "cannot listen on \(target): \(error)")
        }
    }

    private enum Kind {
        case refused, timedOut, other
        case unreachable(String)
        case dns(String)
    }

    private static func classify(_ error: any Error) -> Kind {
        if case ChannelError.connectTimeout = error { return .timedOut }
        if let e = error as? NIOConnectionError {
            // Every address failed: name the most telling failure.
            let kinds = e.connectionErrors.map { classify($0.error) }
            if kinds.contains(where: { if case .refused = $0 { return true } else { return false } }) { return .refused }
            if let u = kinds.first(where: { if case .unreachable = $0 { return true } else { return false } }) { return u }
            if kinds.contains(where: { if case .timedOut = $0 { return true } else { return false } }) { return .timedOut }
            if e.connectionErrors.isEmpty, let dns = e.dnsAError ?? e.dnsAAAAError { return .dns("\(dns)") }
            return .other
        }
        switch errno(of: error) {
        case ECONNREFUSED?: return .refused
        case EHOSTUNREACH?: return .unreachable("no route to the host")
        case ENETUNREACH?: return .unreachable("no route to its network")
        case ENETDOWN?: return .unreachable("this machine's network is down")
        case ETIMEDOUT?: return .timedOut
        default: return .other
        }
    }

    private static func errno(of error: any Error) -> CInt? {
        if let io = error as? IOError { return io.errnoCode }
        if let e = error as? NIOConnectionError, e.connectionErrors.count == 1 { return errno(of: e.connectionErrors[0].error) }
        return nil
    }
}
