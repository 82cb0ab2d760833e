import Foundation
import Logging
import SarabanCrypto
import SarabanSync
import SarabanTransport

/// Where a relay process listens.
public struct FleetAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public var description: String { "\(host):\(port)" }
}

/// Counts of the sessions offices ran.
public final class FleetSessionCounts: @unchecked Sendable {
    private let lock = NSLock()
    public private(set) var opened = 0
    public private(set) var synced = 0
    public private(set) var failed = 0
    public private(set) var open = 0
    /// `error` frames received from a relay (for example `refused`: its database is unavailable).
    public private(set) var refusals: [String] = []

    public init() {}

    func record(_ event: PeerEvent) {
        lock.withLock {
            switch event {
            case .opened:
                opened += 1
                open += 1
            case .synced: synced += 1
            case .closed(let r):
                open -= 1
                if case .peerError(let e) = r.reason, refusals.count < 100 { refusals.append("\(e)") }
            case .progress: break
            }
        }
    }

    func failure() { lock.withLock { failed += 1 } }
}

/// Runs an office's sessions with relays: one-shot (`saraban sync`'s way) or held open (a daemon's).
public struct FleetDialler: Sendable {
    /// The relays' node id (every relay process of one deployment shares the relay's key).
    public let relayID: NodeID
    public var transport: TransportConfiguration
    public var limits = SyncLimits()
    public let counts: FleetSessionCounts
    let logger: Logger

    public init(relayID: NodeID, transport: TransportConfiguration = TransportConfiguration(rateLimit: nil), counts: FleetSessionCounts) {
        self.relayID = relayID
        self.transport = transport
        self.counts = counts
        var quiet = Logger(label: "saraban.fleet")
        quiet.logLevel = .critical
        logger = quiet
    }

    /// The office's endpoint: its own identity, trusting only the relay.
    public func endpoint(for office: FleetOffice) -> SecureTransport {
        let relay = relayID
        return SecureTransport(identity: office.identity, configuration: transport, logger: logger, trust: { $0 == relay })
    }

    /// One session that says bye and hangs up once synced; returns whether it got there.
    @discardableResult
    public func syncOnce(_ office: FleetOffice, endpoint: SecureTransport, relay: FleetAddress) async -> Bool {
        let box = ChannelBox()
        let counts = self.counts
        let connection = PeerConnection(
            store: office, configuration: .init(role: .member, limits: limits, closeWhenSynced: true), logger: logger
        ) { event in
            counts.record(event)
            if case .progress(_, let s) = event { office.relayHolds(space: s.space, vector: s.peerHolds) }
            if case .synced = event { box.closeSoon() }
        }
        do {
            let report = try await endpoint.connect(host: relay.host, port: relay.port, expecting: relayID) { channel in
                box.arm(channel)
                return try await connection.run(over: &channel)
            }
            return report.wasSynced
        } catch {
            counts.failure()
            return false
        }
    }

    /// Keeps a session open with a relay, starting with `relays[first]` and moving to the next
    /// after a failure (a relay killed, refusing, unreachable), with a short backoff, until the
    /// task is cancelled.
    public func stayConnected(_ office: FleetOffice, endpoint: SecureTransport, relays: [FleetAddress], first: Int) async {
        var i = first
        var failures = 0
        let counts = self.counts
        while !Task.isCancelled {
            let relay = relays[i % relays.count]
            let connection = PeerConnection(
                store: office, configuration: .init(role: .member, limits: limits), logger: logger
            ) { event in
                counts.record(event)
                if case .progress(_, let s) = event { office.relayHolds(space: s.space, vector: s.peerHolds) }
            }
            var healthy = false
            do {
                let report = try await endpoint.connect(host: relay.host, port: relay.port, expecting: relayID) { channel in
                    try await connection.run(over: &channel)
                }
                healthy = report.wasSynced
            } catch {
                counts.failure()
            }
            if Task.isCancelled { break }
            failures = healthy ? 0 : failures + 1
            i += 1
            let ms = min(2_000, 50 << min(failures, 6))
            try? await Task.sleep(for: .milliseconds(Int.random(in: ms / 2...ms)))
        }
    }
}

/// Closes a one-shot session's channel shortly after it is synced, so that the bye leaves first
/// and neither side waits for the other to hang up.
final class ChannelBox: @unchecked Sendable {
    private let lock = NSLock()
    private var channel: SecureChannel?
    private var fired = false

    func arm(_ c: SecureChannel) { lock.withLock { channel = c } }

    func closeSoon() {
        let c: SecureChannel? = lock.withLock {
            guard !fired else { return nil }
            fired = true
            return channel
        }
        guard let c else { return }
        Task {
            try? await Task.sleep(for: .milliseconds(50))
            c.close()
        }
    }
}
