import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanCrypto
import SarabanNode

/// Who may reach what (Docs/WEB.md, "Security"):
/// - open to anyone: the login page, `/healthz`, `/readyz`, `/static/…` and the language switch;
/// - pages: a session cookie only (a logged-out browser is sent to the login page);
/// - `/api/v1/…`: a session cookie or an API token (`Authorization: Bearer sbt_…`; a read token
///   may only GET); `/metrics`: a token or an admin's session;
/// - every request that changes something (not GET/HEAD/OPTIONS) made with a session carries the
///   session's CSRF token (form field `_csrf` or header `X-CSRF-Token`) and, when the browser
///   sends one, an `Origin` equal to the request's own host. Tokens need no CSRF token: a browser
///   never sends them on its own.
/// Forms are read here, at most 1 MiB, strictly decoded (invalid UTF-8 is a 400), before the
/// token check, so no handler ever sees an unchecked form.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let app: WebApp

    static let sessionCookie = "saraban_session"
    static let loginCookie = "saraban_login"

    static func isPublic(_ path: String) -> Bool {
        ["/login", "/healthz", "/readyz", "/lang", "/favicon.ico"].contains(path) || path.hasPrefix("/static/")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        var request = request
        var context = context
        context.web.lang = request.cookie("lang") == "en" ? .en : .th
        context.web.secure = app.options.tlsProxy
        if app.options.tlsProxy, ["127.0.0.1", "::1"].contains(context.peerAddress),
            let client = request.headers[values: .xForwardedFor].last?.split(separator: ",").last
        {
            context.remoteKey = LoginThrottle.addressKey(client.trimmingCharacters(in: .whitespaces))
        }
        let path = request.uri.path
        if !request.isSafeMethod {
            try Self.checkOrigin(request)
            if Self.isForm(request) {
                let body = try await request.collectBody(upTo: context.maxUploadSize)
                context.web.form = try FormData(parsing: body.readableBytesView)
                request.body = .init(buffer: body)
            }
        }
        if Self.isPublic(path) {
            if path == "/login" && !request.isSafeMethod {
                // Login CSRF: the form carries the value of a cookie the login page set.
                guard let cookie = request.cookie(Self.loginCookie), let field = context.web.form["_csrf"],
                    Sodium.constantTimeEqual(Array(cookie.utf8), Array(field.utf8))
                else { throw WebError.csrf }
            }
            return try await next(request, context)
        }
        switch try authenticate(request, context) {
        case .principal(let p):
            context.web.principal = p
        case .redirect(let to):
            return Response(status: .seeOther, headers: [.location: to, .cacheControl: "no-store"])
        }
        if case .session(let s, _) = context.web.principal, !request.isSafeMethod {
            let presented = request.headers[.xCSRFToken] ?? context.web.form["_csrf"]
            guard let presented, Sodium.constantTimeEqual(Array(presented.utf8), Array(s.csrf.utf8)) else {
                throw WebError.csrf
            }
        }
        return try await next(request, context)
    }

    enum Outcome {
        case principal(Principal)
        case redirect(String)
    }

    func authenticate(_ request: Request, _ context: Context) throws -> Outcome {
        let path = request.uri.path
        let machine = path.hasPrefix("/api/") || path == "/metrics"
        if let auth = request.headers[.authorization] {
            guard machine else { throw WebError.unauthenticated }
            guard auth.hasPrefix("Bearer "), let token = try app.accounts.token(matching: String(auth.dropFirst(7))) else {
                var e = WebError(
                    .unauthorized, "invalid-token", th: "โทเคนไม่ถูกต้องหรือถูกยกเลิกแล้ว",
                    en: "the API token is unknown or revoked (`saraban token list`)")
                e.headers[.wwwAuthenticate] = "Bearer error=\"invalid_token\""
                throw e
            }
            if token.scope == .read && !request.isSafeMethod { throw WebError.readOnlyToken }
            return .principal(.token(token))
        }
        let html = ErrorMiddleware.wantsHTML(request) && request.method == .get
        func refuse(_ e: WebError, expired: Bool) throws -> Outcome {
            if html {
                var target = "/login?next=" + Self.percentEncode(path + (request.uri.query.map { "?" + $0 } ?? ""))
                if expired { target += "&expired=1" }
                return .redirect(target)
            }
            var e = e
            if machine { e.headers[.wwwAuthenticate] = "Bearer" }
            throw e
        }
        guard let cookie = request.cookie(Self.sessionCookie) else { return try refuse(.unauthenticated, expired: false) }
        switch app.sessions.lookup(cookie, now: app.now) {
        case .unknown: return try refuse(.unauthenticated, expired: false)
        case .expired: return try refuse(.sessionExpired, expired: true)
        case .valid(let s):
            guard let user = try app.accounts.user(s.user), !user.disabled else {
                app.sessions.endAll(user: s.user)
                return try refuse(.unauthenticated, expired: false)
            }
            if path == "/metrics" && user.role != .admin { throw WebError.forbidden }
            return .principal(.session(s, user))
        }
    }

    /// A browser's `Origin` (sent with every cross-site POST) must name this server.
    static func checkOrigin(_ request: Request) throws(WebError) {
        guard let origin = request.headers[.origin], origin != "null" else { return }
        guard let host = request.head.authority else { throw WebError.csrf }
        let bare = origin.replacingOccurrences(of: "http://", with: "").replacingOccurrences(of: "https://", with: "")
        guard bare == host else { throw WebError.csrf }
    }

    static func isForm(_ request: Request) -> Bool {
        (request.headers[.contentType] ?? "").lowercased().hasPrefix("application/x-www-form-urlencoded")
    }

    static func percentEncode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? "/"
    }

    /// A `next` target that stays on this server: a path, never `//host` or a scheme.
    static func localTarget(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), !next.hasPrefix("/\\"), !next.contains("\r"),
            !next.contains("\n")
        else { return "/" }
        return next
    }
}

extension WebApp {
    func sessionCookie(_ value: String, maxAge: Int) -> Cookie {
        Cookie(
            name: AuthMiddleware.sessionCookie, value: value, maxAge: maxAge, path: "/", secure: options.tlsProxy,
            httpOnly: true, sameSite: .strict)
    }

    /// `POST /login`: checks the throttle, then the password (on the Argon2id queue), then starts a session.
    func login(_ request: Request, _ context: WebContext) async throws -> Response {
        let form = context.web.form
        let name = AccountStore.normalizedName(form["name"] ?? "")
        let password = SecureBytes(Array((form["password"] ?? "").utf8))
        let next = AuthMiddleware.localTarget(form["next"])
        let now = self.now
        if let until = throttle.lockedUntil(account: name, address: context.remoteKey, now: now) {
            var e = WebError(
                .tooManyRequests, "locked-out",
                th: "ใส่รหัสผ่านผิดหลายครั้ง ระบบระงับการเข้าสู่ระบบชั่วคราว ลองใหม่ได้ในอีก \((until - now + 59_999) / 60_000) นาที",
                en: "too many wrong passwords: logging in is locked for \((until - now + 59_999) / 60_000) more minutes")
            e.headers[.retryAfter] = String((until - now + 999) / 1000)
            throw e
        }
        let accounts = self.accounts
        guard let result = await checks.run({ Result { try accounts.verify(name, password: password) } }) else {
            throw WebError.busy
        }
        guard let user = try result.get(), !user.disabled else {
            throttle.recordFailure(account: name, address: context.remoteKey, now: now)
            logger.notice("login refused", metadata: ["user": "\(name)", "address": "\(context.remoteKey)"])
            return try pages.loginPage(
                lang: context.web.lang, next: next, name: name,
                error: context.web.lang == .th ? "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" : "wrong user name or password",
                csrfCookie: newLoginCookie(), status: .unauthorized)
        }
        throttle.recordSuccess(account: name)
        let (cookie, _) = sessions.create(user: user.name, now: now)
        logger.info("login", metadata: ["user": "\(user.name)"])
        var response = Response(status: .seeOther, headers: [.location: next, .cacheControl: "no-store"])
        response.setCookie(sessionCookie(cookie, maxAge: Int(options.sessionLifetime.components.seconds)))
        response.setCookie(Cookie(name: AuthMiddleware.loginCookie, value: "", maxAge: 0, path: "/login", secure: options.tlsProxy, httpOnly: true, sameSite: .strict))
        return response
    }

    func logout(_ request: Request, _ context: WebContext) -> Response {
        if let c = request.cookie(AuthMiddleware.sessionCookie) { sessions.end(c) }
        var response = Response(status: .seeOther, headers: [.location: "/login", .cacheControl: "no-store"])
        response.setCookie(sessionCookie("", maxAge: 0))
        return response
    }

    /// A fresh value for the login form's CSRF cookie.
    func newLoginCookie() -> Cookie {
        Cookie(
            name: AuthMiddleware.loginCookie, value: AccountStore.base64URL(Sodium.randomBytes(24)), maxAge: 3600,
            path: "/login", secure: options.tlsProxy, httpOnly: true, sameSite: .strict)
    }
}
