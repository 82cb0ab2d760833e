import CoreMetrics
import Foundation
import Hummingbird
import Metrics
import Prometheus
import SarabanNode
import SarabanSync
import SarabanTransport

/// The node's Prometheus metrics (`GET /metrics`), recorded through swift-metrics into a registry
/// of this daemon's own (no process-wide bootstrap, so tests run several side by side). Names,
/// labels and what they count are listed in Docs/WEB.md, "Metrics".
public final class WebMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Latency buckets of `saraban_http_request_duration_seconds`: 1 ms to 10 s.
    static let latencyBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
    ]

    public init() {
        registry = PrometheusCollectorRegistry()
        var f = PrometheusMetricsFactory(registry: registry)
        f.defaultDurationHistogramBuckets = Self.latencyBuckets
        factory = f
    }

    /// One HTTP request: `route` is the route's pattern (`/api/v1/letters/{id}`), never the raw
    /// path, so the number of series stays bounded.
    func request(route: String, method: String, status: Int, nanoseconds: Int64) {
        Counter(
            label: "saraban_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))],
            factory: factory
        ).increment()
        Metrics.Timer(
            label: "saraban_http_request_duration_seconds", dimensions: [("route", route), ("method", method)], factory: factory
        ).recordNanoseconds(nanoseconds)
    }

    /// A sync session event from the daemon (`NodeDaemon`'s `onEvent`).
    public func record(_ event: PeerEvent) {
        switch event {
        case .opened:
            Counter(label: "saraban_sync_sessions_total", factory: factory).increment()
            Meter(label: "saraban_sync_sessions_open", factory: factory).increment()
        case .closed(let report):
            Meter(label: "saraban_sync_sessions_open", factory: factory).decrement()
            // Named like the relay's saraban_relay_envelopes_sent_total (issue 16), one counter per direction.
            Counter(label: "saraban_sync_envelopes_received_total", factory: factory).increment(by: report.stats.envelopesReceived)
            Counter(label: "saraban_sync_envelopes_sent_total", factory: factory).increment(by: report.stats.envelopesSent)
            Counter(label: "saraban_sync_sessions_closed_total", dimensions: [("synced", report.wasSynced ? "true" : "false")], factory: factory)
                .increment()
        case .progress, .synced:
            break
        }
    }

    /// Gauges read when scraped: the store's size on disk and each configured peer's lag.
    func collect(node: Node) {
        var bytes: Int64 = 0
        for suffix in ["", "-wal"] {
            if let a = try? FileManager.default.attributesOfItem(atPath: node.dataDirectory.databasePath + suffix),
                let n = a[.size] as? NSNumber
            {
                bytes += n.int64Value
            }
        }
        Gauge(label: "saraban_store_bytes", factory: factory).record(bytes)
        let book = (try? node.peerStatuses()) ?? [:]
        for p in (try? node.syncSettings().peers) ?? [] {
            let s = book[p.nodeID.text]
            let peer = p.name ?? String(p.nodeID.text.prefix(12))
            Gauge(label: "saraban_peer_lag_changes", dimensions: [("peer", peer), ("direction", "peer_lacks")], factory: factory)
                .record(Int64(s?.changesPeerLacks ?? 0))
            Gauge(label: "saraban_peer_lag_changes", dimensions: [("peer", peer), ("direction", "we_lack")], factory: factory)
                .record(Int64(s?.changesWeLack ?? 0))
            if let c = s?.lastContact {
                Gauge(label: "saraban_peer_last_contact_seconds", dimensions: [("peer", peer)], factory: factory).record(c / 1000)
            }
        }
    }
}

/// Counts every request by route pattern, method and status, and times it.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let metrics: WebMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            record(context, request, status: (error as? any HTTPResponseError)?.status.code ?? 500, start)
            throw error
        }
        record(context, request, status: response.status.code, start)
        return response
    }

    func record(_ context: Context, _ request: Request, status: Int, _ start: ContinuousClock.Instant) {
        let d = (ContinuousClock.now - start).components
        metrics.request(
            route: context.endpointPath ?? "NotFound", method: request.method.rawValue, status: status,
            nanoseconds: d.seconds * 1_000_000_000 + d.attoseconds / 1_000_000_000)
    }
}
