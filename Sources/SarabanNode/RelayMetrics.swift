import CoreMetrics
import Foundation
import SarabanCrypto
import SarabanStorage
import SarabanSync
import SarabanTransport

/// A relay's metrics, through swift-metrics (exported by `saraban serve --metrics` as Prometheus
/// text on `/metrics`; without a metrics backend they cost a no-op call). Names (all prefixed
/// `saraban_relay_`) are listed in Docs/RELAY.md and used by `Sync/grafana-relay.json`.
public final class RelayMetrics: @unchecked Sendable {
    let dimensions: [(String, String)]
    let sessionsTotal: Counter
    let sessionsOpen: Meter
    let envelopesIn: Counter
    let envelopesDuplicate: Counter
    let envelopesOut: Counter
    let bytesIn: Counter
    let bytesOut: Counter
    let cursorLag: Gauge
    let readyGauge: Gauge
    private let lock = NSLock()
    private var timers: [String: CoreMetrics.Timer] = [:]
    private var errorCounters: [String: Counter] = [:]
    /// Per open session (peer), the stats already counted and its lag.
    private var sessions: [NodeID: (stats: SyncStats, lag: [SpaceID: UInt64])] = [:]
    private var lagTotal: UInt64 = 0

    public init(store: String) {
        let d = [("store", store)]
        dimensions = d
        sessionsTotal = Counter(label: "saraban_relay_sessions_total", dimensions: d)
        sessionsOpen = Meter(label: "saraban_relay_sessions_open", dimensions: d)
        envelopesIn = Counter(label: "saraban_relay_envelopes_stored_total", dimensions: d)
        envelopesDuplicate = Counter(label: "saraban_relay_envelopes_duplicate_total", dimensions: d)
        envelopesOut = Counter(label: "saraban_relay_envelopes_sent_total", dimensions: d)
        bytesIn = Counter(label: "saraban_relay_bytes_received_total", dimensions: d)
        bytesOut = Counter(label: "saraban_relay_bytes_sent_total", dimensions: d)
        cursorLag = Gauge(label: "saraban_relay_cursor_lag_changes", dimensions: d)
        readyGauge = Gauge(label: "saraban_relay_ready", dimensions: d)
    }

    /// Runs `body`, recording its duration as `saraban_relay_store_seconds{op}`.
    func timed<T>(_ op: String, _ body: () async throws -> T) async rethrows -> T {
        let t0 = ContinuousClock.now
        defer { record(op, since: t0) }
        return try await body()
    }

    /// Records the time `op` took since `t0` (an operation heard back by callback).
    func record(_ op: String, since t0: ContinuousClock.Instant) {
        let d = (ContinuousClock.now - t0).components
        timer(op).recordNanoseconds(d.seconds * 1_000_000_000 + d.attoseconds / 1_000_000_000)
    }

    private func timer(_ op: String) -> CoreMetrics.Timer {
        lock.withLock {
            if let t = timers[op] { return t }
            let t = CoreMetrics.Timer(label: "saraban_relay_store_seconds", dimensions: dimensions + [("op", op)])
            timers[op] = t
            return t
        }
    }

    /// Counts `saraban_relay_errors_total{code}`.
    func error(_ code: String, count: Int = 1) {
        let c = lock.withLock { () -> Counter in
            if let c = errorCounters[code] { return c }
            let c = Counter(label: "saraban_relay_errors_total", dimensions: dimensions + [("code", code)])
            errorCounters[code] = c
            return c
        }
        c.increment(by: count)
    }

    func envelopesIn(_ report: ReceiveReport) {
        if !report.accepted.isEmpty { envelopesIn.increment(by: report.accepted.count) }
        if !report.duplicates.isEmpty { envelopesDuplicate.increment(by: report.duplicates.count) }
        for r in report.refused { error(r.error.code.rawValue) }
    }

    func refused(_ code: String, count: Int) { error(code, count: count) }

    func storeFailed(_ error: any Error) {
        self.error((error as? RelayStoreError).map { "store_" + $0.code.rawValue } ?? "store_failed")
    }

    func ready(_ ready: Bool) { readyGauge.record(ready ? 1 : 0) }

    /// Folds a session event into the session, byte and lag metrics.
    public func record(_ event: PeerEvent) {
        switch event {
        case .opened(let peer, _, _):
            sessionsTotal.increment()
            sessionsOpen.increment()
            lock.withLock { sessions[peer] = (SyncStats(), [:]) }
        case .progress(let peer, let status):
            let total = lock.withLock { () -> UInt64 in
                guard var s = sessions[peer] else { return lagTotal }
                lagTotal -= s.lag[status.space] ?? 0
                s.lag[status.space] = status.changesPeerLacks
                lagTotal += status.changesPeerLacks
                sessions[peer] = s
                return lagTotal
            }
            cursorLag.record(Int64(clamping: total))
        case .synced(let peer, let stats):
            count(peer, stats, closing: false)
        case .closed(let report):
            count(report.peer, report.stats, closing: true)
        }
    }

    private func count(_ peer: NodeID, _ stats: SyncStats, closing: Bool) {
        let (before, total) = lock.withLock { () -> (SyncStats?, UInt64) in
            let before = sessions[peer]?.stats
            if closing {
                if let s = sessions.removeValue(forKey: peer) { lagTotal -= s.lag.values.reduce(0, +) }
            } else {
                sessions[peer]?.stats = stats
            }
            return (before, lagTotal)
        }
        if closing && before != nil { sessionsOpen.decrement() }
        let b = before ?? SyncStats()
        if stats.envelopesSent > b.envelopesSent { envelopesOut.increment(by: stats.envelopesSent - b.envelopesSent) }
        if stats.bytesSent > b.bytesSent { bytesOut.increment(by: stats.bytesSent - b.bytesSent) }
        if stats.bytesReceived > b.bytesReceived { bytesIn.increment(by: stats.bytesReceived - b.bytesReceived) }
        if closing { cursorLag.record(Int64(clamping: total)) }
    }
}
