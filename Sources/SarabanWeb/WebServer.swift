import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SarabanCrypto
import SarabanNode
import ServiceLifecycle

/// Settings of the web app (`saraban serve --http HOST:PORT`).
public struct WebOptions: Sendable {
    /// Where to listen. 127.0.0.1:7480 by default: only this computer; a LAN address when the
    /// operator chooses one.
    public var host = "127.0.0.1"
    public var port = 7480
    /// Whether the operator named the address (`--http`): then a port in use stops `serve`
    /// (exit 69); the default address that is taken only costs a warning.
    public var explicitAddress = false
    /// The app is reached through a TLS-terminating reverse proxy on this machine (`--tls-proxy`):
    /// cookies are marked `Secure`, so a browser never sends them over plain HTTP, and the client
    /// address for login rate limiting is the last `X-Forwarded-For` entry of requests from loopback.
    public var tlsProxy = false
    /// A session ends after this long without a request...
    public var sessionIdle: Duration = .seconds(30 * 60)
    /// ...or this long after login.
    public var sessionLifetime: Duration = .seconds(12 * 3600)
    /// Wrong passwords per account or per address within `loginWindow` before a lock-out.
    public var loginLimit = 20
    public var loginWindow: Duration = .seconds(15 * 60)
    public var loginLockout: Duration = .seconds(15 * 60)
    /// Argon2id cost of new password hashes.
    public var passwordCost: Argon2id.Parameters = .interactive
    /// A relay serves only `/healthz`, `/readyz` and `/metrics` (it holds no letters).
    public var relay = false
    /// Wall clock, milliseconds since 1970 (tests move it to expire sessions).
    public var now: @Sendable () -> Int64 = Node.systemClock

    public init() {}
}

/// The clerks' web app and JSON API over one node: pages, `/api/v1`, health and metrics.
/// It shares the node's store with the sync services of the same daemon (Docs/WEB.md).
public final class WebApp: Sendable {
    public let node: Node
    public let options: WebOptions
    public let accounts: AccountStore
    public let metrics: WebMetrics
    let sessions: SessionStore
    let throttle: LoginThrottle
    let checks = PasswordChecks()
    let pages: PageRenderer
    let daemon: NodeDaemon?
    let logger: Logger
    /// Server-sent events for the inbox and letter pages, and the audit list of secret letters' views.
    let live: LiveEvents
    let audit: AuditLog
    /// Rendered bodies of the busiest read routes, per store content version (ResponseCache.swift).
    let responses = ResponseCache()

    /// `daemon`: the running node's sync services, for the sync status and readiness (nil in
    /// tests that run the web app alone).
    public init(
        node: Node, daemon: NodeDaemon? = nil, options: WebOptions = WebOptions(), metrics: WebMetrics = WebMetrics(),
        logger: Logger = Logger(label: "saraban.web")
    ) throws {
        self.node = node
        self.daemon = daemon
        self.options = options
        self.metrics = metrics
        self.logger = logger
        self.accounts = AccountStore(directory: node.dataDirectory, passwordCost: options.passwordCost, now: options.now)
        self.sessions = SessionStore(
            idleMillis: Int64(options.sessionIdle.components.seconds) * 1000,
            lifetimeMillis: Int64(options.sessionLifetime.components.seconds) * 1000)
        self.throttle = LoginThrottle(
            limit: options.loginLimit, windowMillis: Int64(options.loginWindow.components.seconds) * 1000,
            lockoutMillis: Int64(options.loginLockout.components.seconds) * 1000)
        self.pages = try PageRenderer(office: node.config.office, now: options.now)
        self.live = LiveEvents(node: node, daemon: daemon)
        self.audit = AuditLog(directory: node.dataDirectory)
    }

    /// Every route, in the order the middleware sees them.
    public func router() -> Router<WebContext> {
        let router = Router(context: WebContext.self)
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: ErrorMiddleware(pages: pages, logger: logger))
        router.add(middleware: AuthMiddleware(app: self))
        addOperations(router)
        addAssets(router)
        addPages(router)
        addAPI(router)
        addReadPages(router)
        addWriting(router)
        return router
    }

    /// The HTTP server as a service of the daemon's `ServiceGroup`. `onRunning` gets the bound
    /// address (`HOST:PORT`, the real port when 0 was asked).
    public func service(onRunning: @escaping @Sendable (String) -> Void = { _ in }) -> WebService {
        WebService(app: self, onRunning: onRunning)
    }

    var now: Int64 { options.now() }
}

/// `saraban serve`'s web server: a Hummingbird application run as one more service of the
/// daemon. A bind failure on an address the operator chose ends `serve` (exit 69); on the default
/// address it is logged and the node goes on syncing without its web app.
public struct WebService: Service {
    let app: WebApp
    let onRunning: @Sendable (String) -> Void

    public func run() async throws {
        let app = self.app
        let started = ManagedFlag()
        let onRunning = self.onRunning
        let application = Application(
            router: app.router(),
            configuration: .init(address: .hostname(app.options.host, port: app.options.port), serverName: nil),
            onServerRunning: { channel in
                started.set()
                let port = channel.localAddress?.port ?? app.options.port
                onRunning(WebService.display(host: app.options.host, port: port))
            },
            logger: app.logger)
        do {
            try await application.run()
        } catch {
            guard !started.isSet else { throw error }
            let address = WebService.display(host: app.options.host, port: app.options.port)
            if app.options.explicitAddress {
                throw NodeError(
                    .unreachable,
                    "เปิดเว็บที่ \(address) ไม่ได้ / cannot serve the web app on \(address): \(WebService.reason(error)); "
                        + "choose another --http HOST:PORT or stop what uses that port")
            }
            app.logger.warning(
                "the web app is not served: cannot listen on \(address) (\(WebService.reason(error))); pass --http HOST:PORT")
            try await gracefulShutdown()
        }
    }

    static func display(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("Address already in use") || text.contains("EADDRINUSE") || text.contains("errno: 98") {
            return "the port is in use"
        }
        return text
    }
}

/// A flag set once from any thread.
final class ManagedFlag: @unchecked Sendable {
    // Guards `value`.
    private let lock = NSLock()
    private var value = false
    func set() {
        lock.lock()
        value = true
        lock.unlock()
    }
    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

/// Headers on every response: no framing, no sniffing, no referrer, only our own scripts and styles.
struct SecurityHeadersMiddleware: RouterMiddleware {
    typealias Context = WebContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var response = try await next(request, context)
        response.headers[.contentSecurityPolicy] =
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; font-src 'self'; "
            + "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.xFrameOptions] = "DENY"
        response.headers[.referrerPolicy] = "no-referrer"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        return response
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let xFrameOptions = Self("X-Frame-Options")!
    static let xCSRFToken = Self("X-CSRF-Token")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let xForwardedFor = Self("X-Forwarded-For")!
}
