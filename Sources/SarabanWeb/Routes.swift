import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanCrypto
import SarabanNode

// The routes of the web app: operations, static files, pages and the JSON API skeleton.

extension WebApp {
    // MARK: - Operations

    func addOperations(_ router: Router<WebContext>) {
        router.get("/healthz") { _, _ in Self.plain("ok\n") }
        router.get("/readyz") { [self] _, _ in
            let (ready, why) = readiness()
            return Response(
                status: ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: why + "\n")))
        }
        router.get("/metrics") { [self] _, _ in
            metrics.collect(node: node)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer())))
        }
    }

    /// Ready when the database answers (and, in `serve`, the sync listener is bound: the web app
    /// starts after it).
    func readiness() -> (Bool, String) {
        do {
            _ = try node.store.schemaInfo()
            return (true, "ready")
        } catch {
            return (false, "the database does not answer: \(error.code)")
        }
    }

    static func plain(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: - Static files

    func addAssets(_ router: Router<WebContext>) {
        router.get("/static/{name}") { _, context in
            guard let r = Assets.response(context.parameters.get("name") ?? "") else { throw WebError.notFound }
            return r
        }
        router.get("/static/fonts/{name}") { _, context in
            guard let r = Assets.response("fonts/" + (context.parameters.get("name") ?? "")) else { throw WebError.notFound }
            return r
        }
    }

    // MARK: - Pages

    func addPages(_ router: Router<WebContext>) {
        if options.relay { return }
        router.get("/login") { [self] request, context in
            let q = try request.query()
            if case .valid = request.cookie(AuthMiddleware.sessionCookie).map({ sessions.lookup($0, now: now) }) ?? .unknown {
                return Response(status: .seeOther, headers: [.location: AuthMiddleware.localTarget(q["next"])])
            }
            let lang = context.web.lang
            return try pages.loginPage(
                lang: lang, next: AuthMiddleware.localTarget(q["next"]),
                notice: q["expired"] == "1" ? PageRenderer.strings(lang)["session_expired"] : nil, csrfCookie: newLoginCookie())
        }
        router.post("/login") { [self] request, context in try await login(request, context) }
        router.post("/logout") { [self] request, context in logout(request, context) }
        router.get("/lang") { [self] request, _ in
            let q = try request.query()
            let lang: Lang = q["to"] == "en" ? .en : .th
            var r = Response(status: .seeOther, headers: [.location: AuthMiddleware.localTarget(q["next"] ?? request.headers[.referer].flatMap(Self.pathOf))])
            r.setCookie(Cookie(name: "lang", value: lang.rawValue, maxAge: 365 * 86400, path: "/", secure: options.tlsProxy, httpOnly: true, sameSite: .strict))
            return r
        }
        router.get("/") { [self] _, context in
            guard case .session(let s, let user) = context.web.principal else { throw WebError.unauthenticated }
            let lang = context.web.lang
            let status = try node.status()
            let peers = try peerRows(lang)
            let values: [String: Any] = [
                "display": user.displayName, "node_id": node.nodeID.text, "code": node.config.letterCode ?? "",
                "role": lang == .th ? user.role.thai : user.role.rawValue, "store_size": Self.bytes(status.databaseBytes),
                "peers": peers, "has_peers": !peers.isEmpty,
            ]
            return pages.html(pages.page("home", title: PageRenderer.strings(lang)["home"]!, lang: lang, user: user, csrf: s.csrf, values: values))
        }
    }

    /// The path of a same-site `Referer` (for the language switch's way back).
    static func pathOf(_ referer: String) -> String? {
        guard let u = URLComponents(string: referer) else { return nil }
        return u.path + (u.query.map { "?" + $0 } ?? "")
    }

    func peerRows(_ lang: Lang) throws -> [[String: Any]] {
        let configured = try node.syncSettings().peers
        let book = (try? node.peerStatuses()) ?? [:]
        return configured.map { p in
            let s = book[p.nodeID.text]
            return [
                "name": p.name ?? String(p.nodeID.text.prefix(12)), "node_id": p.nodeID.text,
                "contact": s?.lastContact.map { PageRenderer.beDateTime($0, lang) } ?? PageRenderer.strings(lang)["never"]!,
                "they_lack": s?.changesPeerLacks ?? 0, "we_lack": s?.changesWeLack ?? 0,
            ]
        }
    }

    static func bytes(_ n: Int64) -> String {
        if n < 1024 { return "\(n) B" }
        if n < 1 << 20 { return String(format: "%.1f KiB", Double(n) / 1024) }
        return String(format: "%.1f MiB", Double(n) / 1_048_576)
    }

    // MARK: - JSON API

    func addAPI(_ router: Router<WebContext>) {
        router.get("/api/v1/openapi.json") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: OpenAPI.document)))
        }
        router.get("/api/v1/me") { _, context in
            switch context.web.principal {
            case .session(_, let u)?:
                return try Self.json(Me(kind: "user", name: u.name, display_name: u.displayName, role: u.role.rawValue, scope: nil))
            case .token(let t)?:
                return try Self.json(Me(kind: "token", name: t.name, display_name: nil, role: nil, scope: t.scope.rawValue))
            case nil:
                throw WebError.unauthenticated
            }
        }
        router.post("/api/v1/me/password") { [self] request, context in
            try await changeOwnPassword(request, context)
        }
        router.get("/api/v1/node") { [self] _, _ in
            let s = try node.status()
            return try Self.json(
                NodeInfo(
                    office: s.office, letter_code: s.letterCode, node_id: s.nodeID, documents: s.documents,
                    database_bytes: s.databaseBytes))
        }
        router.get("/api/v1/peers") { [self] _, _ in try Self.json(try node.peerList()) }
    }

    struct PasswordChange: Decodable {
        var current_password: String
        var new_password: String
    }

    /// `POST /api/v1/me/password`: a user changes their own password (the current one checked on
    /// the Argon2id queue; a wrong one counts against the login throttle, so this is no way around it).
    func changeOwnPassword(_ request: Request, _ context: WebContext) async throws -> Response {
        guard case .session(_, let user) = context.web.principal else {
            throw WebError(
                .forbidden, "forbidden", th: "เฉพาะผู้ใช้ที่เข้าสู่ระบบเปลี่ยนรหัสผ่านของตนได้",
                en: "only a logged-in user can change their own password")
        }
        let body = try await request.decode(as: PasswordChange.self, context: context)
        let now = self.now
        if throttle.lockedUntil(account: user.name, address: context.remoteKey, now: now) != nil {
            throw WebError(
                .tooManyRequests, "locked-out", th: "ใส่รหัสผ่านผิดหลายครั้ง ระบบระงับชั่วคราว",
                en: "too many wrong passwords: try again later")
        }
        let accounts = self.accounts
        let current = SecureBytes(Array(body.current_password.utf8))
        guard let result = await checks.run({ Result { try accounts.verify(user.name, password: current) } }) else {
            throw WebError.busy
        }
        guard try result.get() != nil else {
            throttle.recordFailure(account: user.name, address: context.remoteKey, now: now)
            throw WebError(
                .forbidden, "wrong-password", th: "รหัสผ่านปัจจุบันไม่ถูกต้อง ไม่ได้เปลี่ยนรหัสผ่าน",
                en: "the current password is wrong; the password was not changed")
        }
        let new = SecureBytes(Array(body.new_password.utf8))
        guard let set = await checks.run({ Result { try accounts.setPassword(user.name, password: new) } }) else {
            throw WebError.busy
        }
        try set.get()
        logger.notice("password changed", metadata: ["user": "\(user.name)"])
        return Response(status: .noContent)
    }

    struct Me: Encodable {
        var kind: String
        var name: String
        var display_name: String?
        var role: String?
        var scope: String?
    }

    struct NodeInfo: Encodable {
        var office: String
        var letter_code: String?
        var node_id: String
        var documents: Int
        var database_bytes: Int64
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        jsonResponse(try jsonBytes(value), status: status)
    }

    /// `value` as the API's JSON (keys sorted, slashes bare).
    static func jsonBytes(_ value: some Encodable) throws -> ByteBuffer {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ByteBuffer(bytes: try enc.encode(value))
    }

    static func jsonResponse(_ body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body))
    }
}
