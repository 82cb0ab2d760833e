import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The connections a listener accepted whose Noise handshake has not finished, capped overall
/// (``TransportConfiguration/maximumPendingHandshakes``) and per source address
/// (``TransportConfiguration/maximumPendingHandshakesPerAddress``).
///
/// A connection beyond a cap is not queued: the oldest pending connection of its address (or,
/// for the overall cap, the oldest of all) is closed at once to make room. Idle connections that
/// never start a handshake therefore hold at most the cap's worth of file descriptors, and cannot
/// lock a newcomer out for the whole handshake timeout: a peer's handshake takes one round trip,
/// so an attacker would have to open a cap's worth of connections within that round trip, again
/// and again, to keep one from completing.
final class PendingHandshakes: Sendable {
    private struct Entry {
        let channel: any Channel
        let address: [UInt8]
        let ticket: PendingHandshake
    }

    private struct State {
        var next: UInt64 = 0
        var entries: [UInt64: Entry] = [:]
        /// Per address, its pending connections' ids, oldest first.
        var byAddress: [[UInt8]: [UInt64]] = [:]
        var closed = 0
        var lastWarning: NIODeadline?
        var closedSinceWarning = 0

        mutating func remove(_ id: UInt64) -> Entry? {
            guard let e = entries.removeValue(forKey: id) else { return nil }
            byAddress[e.address]?.removeAll { $0 == id }
            if byAddress[e.address]?.isEmpty == true { byAddress[e.address] = nil }
            return e
        }
    }

    let total: Int
    let perAddress: Int
    let logger: Logger
    private let state = NIOLockedValueBox(State())

    init(configuration: TransportConfiguration, logger: Logger) {
        total = configuration.maximumPendingHandshakes
        perAddress = configuration.maximumPendingHandshakesPerAddress
        self.logger = logger
    }

    /// Connections pending now, and how many were closed to stay within the caps so far.
    var counts: (pending: Int, closed: Int) { state.withLockedValue { ($0.entries.count, $0.closed) } }

    /// Records a connection just accepted, closing the oldest pending ones beyond the caps. The
    /// connection leaves when its ticket is released (handshake over) or it closes.
    func admit(_ channel: any Channel) -> PendingHandshake {
        let address = Self.addressKey(channel.remoteAddress)
        var victims: [Entry] = []
        var warning: (closed: Int, pending: Int)?
        let ticket: PendingHandshake = state.withLockedValue { s in
            let id = s.next
            s.next &+= 1
            let ticket = PendingHandshake(id: id, registry: self)
            while let ids = s.byAddress[address], ids.count >= perAddress, let e = s.remove(ids[0]) { victims.append(e) }
            while s.entries.count >= total, let oldest = s.entries.keys.min(), let e = s.remove(oldest) {
                victims.append(e)
            }
            s.entries[id] = Entry(channel: channel, address: address, ticket: ticket)
            s.byAddress[address, default: []].append(id)
            if !victims.isEmpty {
                s.closed += victims.count
                s.closedSinceWarning += victims.count
                let now = NIODeadline.now()
                if s.lastWarning.map({ now - $0 > .seconds(10) }) ?? true {
                    warning = (s.closedSinceWarning, s.entries.count)
                    s.lastWarning = now
                    s.closedSinceWarning = 0
                }
            }
            return ticket
        }
        // Closed outside the lock: a close on this thread runs the close callbacks, which release.
        for v in victims {
            v.ticket.evict()
            v.channel.close(promise: nil)
        }
        if let warning {
            logger.warning(
                "too many connections without a finished handshake: closed the oldest",
                metadata: [
                    "closed": "\(warning.closed)", "pending": "\(warning.pending)", "cap": "\(total)",
                    "capPerAddress": "\(perAddress)", "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")",
                ])
        }
        channel.closeFuture.whenComplete { _ in ticket.release() }
        return ticket
    }

    fileprivate func remove(_ id: UInt64) {
        _ = state.withLockedValue { $0.remove(id) }
    }

    /// What a cap counts per: an IPv4 address; an IPv6 address by its /64 prefix (one host or
    /// one site usually holds a whole /64), an IPv4-mapped one as its IPv4 address.
    static func addressKey(_ address: SocketAddress?) -> [UInt8] {
        switch address {
        case .v4(let a):
            return withUnsafeBytes(of: a.address.sin_addr) { Array($0) }
        case .v6(let a):
            let b = withUnsafeBytes(of: a.address.sin6_addr) { Array($0) }
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { return Array(b[12..<16]) }
            return Array(b[0..<8])
        default:
            return []
        }
    }
}

/// One accepted connection's place among the pending handshakes.
final class PendingHandshake: Sendable {
    let id: UInt64
    private let registry: PendingHandshakes
    private let evicted = NIOLockedValueBox(false)

    fileprivate init(id: UInt64, registry: PendingHandshakes) {
        self.id = id
        self.registry = registry
    }

    /// Whether the connection was closed to make room for newer ones.
    var wasEvicted: Bool { evicted.withLockedValue { $0 } }

    fileprivate func evict() { evicted.withLockedValue { $0 = true } }

    /// The handshake is over (or the connection closed): the connection no longer counts.
    func release() { registry.remove(id) }
}
