import Foundation
import SarabanCrypto
import SarabanNode
import SarabanOffice
@testable import SarabanWeb
import Testing

/// The web app's doors (issue 15, "Bad input through HTTP"): who gets in, CSRF on every form,
/// expiry, lock-out, and bad requests refused with the right status and nothing stored.
@Suite(.timeLimit(.minutes(3))) struct WebSecurityTests {
    @Test func loggedOutRequestsGetTheLoginPageOrA401Problem() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let page = try await w.get("/")
        #expect(page.status == 303 && page.header("location") == "/login?next=/")
        let deep = try await w.get("/api/v1/node")
        #expect(deep.status == 401)
        #expect(deep.header("content-type")?.hasPrefix("application/problem+json") == true)
        #expect(deep.header("www-authenticate") == "Bearer")
        let p = try #require(deep.json)
        #expect(p["code"] as? String == "unauthenticated" && p["status"] as? Int == 401)
        #expect((p["detail_th"] as? String)?.contains("เข้าสู่ระบบ") == true && (p["detail"] as? String)?.contains("log in") == true)
        // Open doors: health, readiness, the login page and the stylesheet.
        #expect(try await w.get("/healthz").status == 200)
        #expect(try await w.get("/readyz").status == 200)
        let login = try await w.get("/login")
        #expect(login.status == 200 && login.text.contains("เข้าสู่ระบบ") && login.text.contains("<html lang=\"th\">"))
        #expect(try await w.get("/static/saraban.css").status == 200)
        // Security headers on every answer.
        #expect(login.header("content-security-policy")?.contains("default-src 'self'") == true)
        #expect(login.header("x-frame-options") == "DENY" && login.header("x-content-type-options") == "nosniff")
    }

    @Test func aClerkLogsInWithASessionCookieAndLogsOutWithItsCSRFToken() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        // Wrong password: 401, the login page again, no session.
        let csrf = try await w.loginForm()
        let wrong = try await w.post(
            "/login", form: [("_csrf", csrf), ("name", "somsri"), ("password", "ผิด")], cookies: ["saraban_login": csrf])
        #expect(wrong.status == 401 && wrong.text.contains("ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง"))
        #expect(wrong.setCookies["saraban_session"] == nil)

        let csrf2 = try await w.loginForm()
        let ok = try await w.post(
            "/login", form: [("_csrf", csrf2), ("name", "SomSri"), ("password", password), ("next", "/api/v1/me")],
            cookies: ["saraban_login": csrf2])
        #expect(ok.status == 303 && ok.header("location") == "/api/v1/me")
        let set = try #require(ok.all("set-cookie").first { $0.hasPrefix("saraban_session=") })
        #expect(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"))
        #expect(!set.contains("Secure"))
        let session = try #require(ok.setCookies["saraban_session"])
        let me = try await w.get("/api/v1/me", cookies: ["saraban_session": session])
        #expect(me.status == 200 && me.json?["name"] as? String == "somsri" && me.json?["role"] as? String == "clerk")
        // Only a local path as `next`: no open redirect.
        let csrf3 = try await w.loginForm()
        let away = try await w.post(
            "/login", form: [("_csrf", csrf3), ("name", "somsri"), ("password", password), ("next", "//evil.example/")],
            cookies: ["saraban_login": csrf3])
        #expect(away.header("location") == "/")

        // Logout needs the session's CSRF token.
        let (cookie, token) = try await w.login("somsri", password)
        let noToken = try await w.post("/logout", cookies: ["saraban_session": cookie])
        #expect(noToken.status == 403 && noToken.text.contains("CSRF"))
        let forged = try await w.post("/logout", form: [("_csrf", "x" + token)], cookies: ["saraban_session": cookie])
        #expect(forged.status == 403)
        #expect(try await w.get("/", cookies: ["saraban_session": cookie]).status == 200)
        let out = try await w.post("/logout", form: [("_csrf", token)], cookies: ["saraban_session": cookie])
        #expect(out.status == 303)
        #expect(try await w.get("/", cookies: ["saraban_session": cookie]).status == 303)
    }

    @Test func theLoginFormHasItsOwnCSRFTokenAndForeignOriginsAreRefused() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        // No login cookie (a cross-site form): refused before the password is looked at.
        let none = try await w.post("/login", form: [("_csrf", "abc"), ("name", "somsri"), ("password", password)])
        #expect(none.status == 403 && none.setCookies["saraban_session"] == nil)
        let csrf = try await w.loginForm()
        let other = try await w.post(
            "/login", form: [("_csrf", csrf), ("name", "somsri"), ("password", password)], cookies: ["saraban_login": csrf],
            headers: [("Origin", "http://evil.example")])
        #expect(other.status == 403 && other.setCookies["saraban_session"] == nil)
        // A JSON call with a session needs X-CSRF-Token too.
        let (cookie, token) = try await w.login("somsri", password)
        let change = ["current_password": password, "new_password": "รหัสผ่านใหม่ยาวพอ"]
        let bare = try await w.postJSON("/api/v1/me/password", change, cookies: ["saraban_session": cookie])
        #expect(bare.status == 403 && bare.json?["code"] as? String == "csrf")
        #expect(try w.app.accounts.verify("somsri", password: SecureBytes(Array(password.utf8))) != nil)
        let done = try await w.postJSON(
            "/api/v1/me/password", change, cookies: ["saraban_session": cookie], headers: [("X-CSRF-Token", token)])
        #expect(done.status == 204)
        #expect(try w.app.accounts.verify("somsri", password: SecureBytes(Array("รหัสผ่านใหม่ยาวพอ".utf8))) != nil)
    }

    @Test func secureCookiesBehindATLSProxy() async throws {
        let w = try WebNode { $0.tlsProxy = true }
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        let csrf = try await w.loginForm()
        let ok = try await w.post(
            "/login", form: [("_csrf", csrf), ("name", "somsri"), ("password", password)], cookies: ["saraban_login": csrf])
        let set = try #require(ok.all("set-cookie").first { $0.hasPrefix("saraban_session=") })
        #expect(set.contains("Secure") && set.contains("HttpOnly") && set.contains("SameSite=Strict"))
        // Behind the proxy every client comes from loopback: the lock-out goes by X-Forwarded-For.
        try w.addUser("somchai", role: .clerk, password: "อีกบัญชีหนึ่ง")
        func attempt(_ name: String, _ pass: String, from client: String) async throws -> Int {
            let csrf = try await w.loginForm()
            return try await w.post(
                "/login", form: [("_csrf", csrf), ("name", name), ("password", pass)], cookies: ["saraban_login": csrf],
                headers: [("X-Forwarded-For", "203.0.113.9, \(client)")]
            ).status
        }
        for i in 0..<20 { #expect(try await attempt("somsri", "ผิด \(i)", from: "10.1.1.1") == 401) }
        #expect(try await attempt("somchai", "อีกบัญชีหนึ่ง", from: "10.1.1.1") == 429)
        #expect(try await attempt("somchai", "อีกบัญชีหนึ่ง", from: "10.1.1.2") == 303)
    }

    @Test func aNodeFailureIsA500ThatNamesNoFileOfTheServer() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await w.login("somsri", password)
        chmod(w.app.accounts.path, 0o644)
        let r = try await w.get("/api/v1/me", cookies: ["saraban_session": cookie])
        #expect(r.status == 500 && r.json?["code"] as? String == "node-error")
        #expect(!r.text.contains(w.dir) && !r.text.contains("web-accounts"))
        let page = try await w.get("/", cookies: ["saraban_session": cookie])
        #expect(page.status == 500 && page.text.contains("ข้อมูลไม่ได้ถูกเปลี่ยน") && !page.text.contains(w.dir))
    }

    @Test func anIdleOrOldSessionExpires() async throws {
        let w = try WebNode {
            $0.sessionIdle = .seconds(600)
            $0.sessionLifetime = .seconds(3600)
        }
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await w.login("somsri", password)
        w.clock.advance(seconds: 590)
        #expect(try await w.get("/", cookies: ["saraban_session": cookie]).status == 200)
        w.clock.advance(seconds: 601)
        let expired = try await w.get("/", cookies: ["saraban_session": cookie])
        #expect(expired.status == 303 && expired.header("location")?.contains("expired=1") == true)
        let login = try await w.get(expired.header("location")!)
        #expect(login.text.contains("หมดเวลาการใช้งาน"))
        // Kept busy, a session still ends at its lifetime.
        let (second, _) = try await w.login("somsri", password)
        for _ in 0..<7 {
            w.clock.advance(seconds: 500)
            #expect(try await w.get("/api/v1/me", cookies: ["saraban_session": second]).status == 200)
        }
        w.clock.advance(seconds: 200)
        let old = try await w.get("/api/v1/me", cookies: ["saraban_session": second])
        #expect(old.status == 401 && old.json?["code"] as? String == "session-expired")
    }

    @Test func twentyWrongPasswordsLockTheAccountAndTheAddressForAWhile() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        func attempt(_ name: String, _ pass: String) async throws -> HTTPReply {
            let csrf = try await w.loginForm()
            return try await w.post(
                "/login", form: [("_csrf", csrf), ("name", name), ("password", pass)], cookies: ["saraban_login": csrf])
        }
        for i in 0..<20 { #expect(try await attempt("somsri", "ผิดครั้งที่ \(i)").status == 401) }
        // Locked: even the right password is refused, with Retry-After.
        let locked = try await attempt("somsri", password)
        #expect(locked.status == 429 && locked.header("retry-after") == "900" && locked.setCookies["saraban_session"] == nil)
        #expect(locked.text.contains("ระงับ"))
        // The address is locked too: another account from it is refused.
        try w.addUser("somchai", role: .clerk, password: "อีกบัญชีหนึ่ง")
        #expect(try await attempt("somchai", "อีกบัญชีหนึ่ง").status == 429)
        w.clock.advance(seconds: 15 * 60 + 1)
        #expect(try await attempt("somsri", password).status == 303)
    }

    @Test func aDisabledUsersSessionEndsAtItsNextRequest() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await w.login("somsri", password)
        try w.app.accounts.setDisabled("somsri", true)
        #expect(try await w.get("/api/v1/me", cookies: ["saraban_session": cookie]).status == 401)
        try w.app.accounts.setDisabled("somsri", false)
        #expect(try await w.get("/api/v1/me", cookies: ["saraban_session": cookie]).status == 401)
    }

    @Test func badRequestsAreRefusedAndNothingIsStored() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        let before = try Data(contentsOf: URL(fileURLWithPath: w.app.accounts.path))
        let (cookie, token) = try await w.login("somsri", password)
        let auth = [("X-CSRF-Token", token)]
        // Oversized body: 413, nothing stored.
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: 2 << 20)
        let huge = try await HTTP.request(
            w.port, "POST", "/api/v1/me/password",
            headers: [("Content-Type", "application/json"), ("Cookie", "saraban_session=\(cookie)")] + auth, body: big)
        #expect(huge.status == 413, "\(huge.status) \(huge.text)")
        // Invalid UTF-8 in a form and in JSON: 400.
        let csrf = try await w.loginForm()
        let badForm = try await HTTP.request(
            w.port, "POST", "/login",
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", "saraban_login=\(csrf)")],
            body: Array("_csrf=\(csrf)&name=som%FFsri&password=x".utf8))
        #expect(badForm.status == 400 && badForm.text.contains("UTF-8"))
        let badJSON = try await HTTP.request(
            w.port, "POST", "/api/v1/me/password",
            headers: [("Content-Type", "application/json"), ("Cookie", "saraban_session=\(cookie)")] + auth,
            body: Array(#"{"current_password":""#.utf8) + [0xFF, 0xFE] + Array(#"","new_password":"12345678x"}"#.utf8))
        #expect(badJSON.status == 400, "\(badJSON.status) \(badJSON.text)")
        #expect(badJSON.header("content-type")?.hasPrefix("application/problem+json") == true)
        let notJSON = try await HTTP.request(
            w.port, "POST", "/api/v1/me/password",
            headers: [("Content-Type", "application/json"), ("Cookie", "saraban_session=\(cookie)")] + auth,
            body: Array("{not json".utf8))
        #expect(notJSON.status == 400)
        // Path traversal: only the built-in files are served.
        for path in [
            "/static/../../../../etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd", "/static/fonts/..%2f..%2f..%2f..%2fetc%2fpasswd",
            "/static/%2e%2e/%2e%2e/etc/passwd", "/static/fonts/../../../../../../etc/passwd",
        ] {
            let r = try await HTTP.request(w.port, "GET", path)
            #expect([400, 404].contains(r.status), "\(path): \(r.status)")
            #expect(!r.text.contains("root:"), "\(path)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: w.app.accounts.path)) == before)
    }

    @Test func tokensReachOnlyTheAPIAndAReadTokenOnlyReads() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let (_, read) = try w.app.accounts.createToken(name: "vendor-x", scope: .read)
        let (_, write) = try w.app.accounts.createToken(name: "ecms", scope: .write)
        #expect(read.hasPrefix("sbt_") && read != write)
        let me = try await w.get("/api/v1/me", headers: [("Authorization", "Bearer \(read)")])
        #expect(me.status == 200 && me.json?["kind"] as? String == "token" && me.json?["scope"] as? String == "read")
        let post = try await w.postJSON(
            "/api/v1/me/password", ["current_password": "x", "new_password": "yyyyyyyy"], headers: [("Authorization", "Bearer \(read)")])
        #expect(post.status == 403 && post.json?["code"] as? String == "read-only-token")
        let writing = try await w.postJSON(
            "/api/v1/me/password", ["current_password": "x", "new_password": "yyyyyyyy"],
            headers: [("Authorization", "Bearer \(write)")])
        #expect(writing.status == 403 && writing.json?["code"] as? String == "forbidden")
        // Not for pages; a wrong or revoked token is refused.
        #expect(try await w.get("/", headers: [("Authorization", "Bearer \(read)")]).status == 401)
        let wrong = try await w.get("/api/v1/me", headers: [("Authorization", "Bearer sbt_" + String(repeating: "A", count: 43))])
        #expect(wrong.status == 401 && wrong.json?["code"] as? String == "invalid-token")
        try w.app.accounts.revokeToken("vendor-x")
        #expect(try await w.get("/api/v1/me", headers: [("Authorization", "Bearer \(read)")]).status == 401)
        #expect(try await w.get("/api/v1/me", headers: [("Authorization", "Bearer \(write)")]).status == 200)
        // The file keeps hashes only.
        let file = try String(contentsOfFile: w.app.accounts.path, encoding: .utf8)
        #expect(!file.contains(read) && !file.contains(write))
    }

    @Test func metricsNeedATokenOrAnAdmin() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let clerk = try w.addUser("somsri", role: .clerk)
        let admin = try w.addUser("admin", role: .admin, password: "ผู้ดูแลระบบ")
        #expect(try await w.get("/metrics").status == 401)
        let (c, _) = try await w.login("somsri", clerk)
        #expect(try await w.get("/metrics", cookies: ["saraban_session": c]).status == 403)
        let (a, _) = try await w.login("admin", admin)
        let m = try await w.get("/metrics", cookies: ["saraban_session": a])
        #expect(m.status == 200)
        #expect(m.text.contains(#"saraban_http_requests_total{route="/login",method="POST",status="303"}"#))
        #expect(m.text.contains("saraban_http_request_duration_seconds_bucket{route=\"/\",method=\"GET\",le=\"0.005\"}"))
        #expect(m.text.contains("saraban_store_bytes "))
        let (_, token) = try w.app.accounts.createToken(name: "prometheus", scope: .read)
        let t = try await w.get("/metrics", headers: [("Authorization", "Bearer \(token)")])
        #expect(t.status == 200 && t.text.contains(#"status="403""#))
        // Unknown paths share one series.
        _ = try await w.get("/no/such/\(UUID().uuidString)")
        let after = try await w.get("/metrics", headers: [("Authorization", "Bearer \(token)")])
        #expect(after.text.contains(#"saraban_http_requests_total{route="NotFound",method="GET",status="303"}"#))
    }

    @Test func pagesAreThaiFirstWithAnEnglishSwitchAndBuddhistEraDates() async throws {
        let w = try WebNode()
        try await w.start()
        defer { Task { await w.stop() } }
        let password = try w.addUser("somsri", role: .clerk)
        let (cookie, _) = try await w.login("somsri", password)
        let th = try await w.get("/", cookies: ["saraban_session": cookie])
        let year = ThaiDate(unixMillis: w.clock.now).year
        #expect(th.text.contains("<html lang=\"th\">") && th.text.contains("ออกจากระบบ") && th.text.contains(" \(year)<"))
        let sw = try await w.get("/lang?to=en&next=/", cookies: ["saraban_session": cookie])
        #expect(sw.status == 303 && sw.header("location") == "/" && sw.setCookies["lang"] == "en")
        let en = try await w.get("/", cookies: ["saraban_session": cookie, "lang": "en"])
        #expect(en.text.contains("<html lang=\"en\">") && en.text.contains("Log out") && en.text.contains("\(year) BE"))
        // The office's Thai name is shown whatever the language.
        #expect(en.text.contains("สำนักงานจังหวัดน่าน"))
        // The language switch never redirects off the server.
        #expect(try await w.get("/lang?to=en&next=//evil.example").header("location") == "/")
    }
}
