import CoreMetrics
import Foundation
import Hummingbird
import Logging
import Prometheus
import SarabanNode

/// A relay's HTTP endpoint for operators (`saraban serve --relay --metrics HOST:PORT`):
///
/// - `GET /metrics`: every swift-metrics metric of the process in Prometheus text format
///   (`saraban_relay_*`, see Docs/RELAY.md, and postgres-nio's pool metrics);
/// - `GET /ready`: `200 ready` while the relay's store answers, `503` with the reason when it does
///   not (a load balancer takes the relay out of rotation meanwhile).
///
/// Nothing else is served; no request reads or changes the store.
public enum RelayMetricsEndpoint {
    private static let bootstrapped: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// The process's Prometheus registry, installed as the swift-metrics backend on first use.
    public static var registry: PrometheusCollectorRegistry { bootstrapped }

    /// Serves `/metrics` and `/ready` on `host:port` until the task is cancelled; `onListening`
    /// receives the bound port (port 0 picks a free one).
    public static func run(
        host: String, port: Int, health: @escaping @Sendable () -> RelayHealth, logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void
    ) async throws {
        let registry = self.registry
        let router = Router()
        router.get("metrics") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("ready") { _, _ -> Response in
            switch health() {
            case .ready:
                return Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: "ready\n")))
            case .unready(let why):
                return Response(
                    status: .serviceUnavailable, body: ResponseBody(byteBuffer: ByteBuffer(string: "unready: \(why)\n")))
            }
        }
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .warning)
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? port) }, logger: quiet)
        try await app.run()
    }
}
