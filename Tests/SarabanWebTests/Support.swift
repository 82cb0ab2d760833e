import Foundation
import Logging
import SarabanCrypto
import SarabanNode
@testable import SarabanWeb
@_exported import SarabanTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// An HTTP/1.1 response as bytes arrived: status, headers in order, body (de-chunked).
struct HTTPReply: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: [UInt8]

    func header(_ name: String) -> String? { headers.last { $0.0.lowercased() == name.lowercased() }?.1 }
    func all(_ name: String) -> [String] { headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1) }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] }

    /// `name=value` of each Set-Cookie.
    var setCookies: [String: String] {
        var out: [String: String] = [:]
        for c in all("set-cookie") {
            let first = c.split(separator: ";")[0]
            let kv = first.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            out[String(kv[0])] = kv.count > 1 ? String(kv[1]) : ""
        }
        return out
    }
}

/// A small blocking HTTP/1.1 client over a raw socket (`Connection: close`), run on a thread of
/// its own so a test waiting for the server never holds a cooperative thread the server needs.
/// Raw on purpose: the bad-input tests send bytes no client library would (invalid UTF-8, `..`).
enum HTTP {
    static func request(
        _ port: Int, _ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) async throws -> HTTPReply {
        try await offThread { try blocking(port, method, target, headers: headers, body: body) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func blocking(_ port: Int, _ method: String, _ target: String, headers: [(String, String)], body: [UInt8]) throws
        -> HTTPReply
    {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 60, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let rc = loopback(port) { connect(fd, $0, $1) }
        guard rc == 0 else { throw Failure(description: "connect to \(port): errno \(errno)") }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (k, v) in headers { head += "\(k): \(v)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let out = Array(head.utf8) + body
        var sent = 0
        while sent < out.count {
            let n = out.withUnsafeBytes { send(fd, $0.baseAddress! + sent, out.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server may answer (413) and close before it read everything
            sent += n
        }
        var data: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data += buf[0..<n]
        }
        return try parse(data)
    }

    /// Calls `body` with the address 127.0.0.1:`port` (as connect(2) and bind(2) take it).
    static func loopback(_ port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    static func parse(_ data: [UInt8]) throws -> HTTPReply {
        let sep: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, data.count - 3)).first(where: { Array(data[$0..<$0 + 4]) == sep }) else {
            throw Failure(description: "no HTTP head in \(data.count) bytes")
        }
        let lines = String(decoding: data[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [(String, String)] = []
        for l in lines.dropFirst() {
            guard let colon = l.firstIndex(of: ":") else { continue }
            headers.append((String(l[..<colon]), l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var body = Array(data[(end + 4)...])
        if headers.contains(where: { $0.0.lowercased() == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
            var out: [UInt8] = []
            var i = 0
            while i < body.count {
                guard let crlf = (i..<body.count - 1).first(where: { body[$0] == 13 && body[$0 + 1] == 10 }) else { break }
                let size = Int(String(decoding: body[i..<crlf], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
                if size == 0 { break }
                out += body[(crlf + 2)..<min(body.count, crlf + 2 + size)]
                i = crlf + 2 + size + 2
            }
            body = out
        }
        return HTTPReply(status: status, headers: headers, body: body)
    }
}

/// A wall clock the test moves.
final class TestClock: @unchecked Sendable {
    // Guards `ms`.
    private let lock = NSLock()
    private var ms: Int64 = 1_796_000_000_000  // 2026-11-30

    var now: Int64 {
        lock.lock()
        defer { lock.unlock() }
        return ms
    }

    func advance(seconds: Int64) {
        lock.lock()
        ms += seconds * 1000
        lock.unlock()
    }
}

let quiet: Logger = {
    var l = Logger(label: "saraban.web.test")
    l.logLevel = .critical
    return l
}()

/// A node in a temporary directory with its web app running on a free port (no sync daemon),
/// users made with Argon2id's minimum cost.
final class WebNode: @unchecked Sendable {
    let dir: String
    let node: Node
    let app: WebApp
    let clock = TestClock()
    var port = 0
    private var task: Task<Void, any Error>?

    init(_ name: String = #function, configure: (inout WebOptions) -> Void = { _ in }) throws {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        dir = FileManager.default.temporaryDirectory.path + "/saraban-web-\(safe)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        node = try Node.initialize(
            dataDir: DataDirectory(path: dir + "/data"), office: "สำนักงานจังหวัดน่าน", letterCode: "นน", logger: quiet)
        var options = WebOptions()
        options.port = 0
        options.passwordCost = .minimum
        let clock = self.clock
        options.now = { clock.now }
        configure(&options)
        app = try WebApp(node: node, options: options, logger: quiet)
    }

    func start() async throws {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let service = app.service { continuation.yield($0) }
        task = Task { try await service.run() }
        var it = stream.makeAsyncIterator()
        guard let address = await it.next(), let p = Int(address.split(separator: ":").last ?? "") else {
            throw HTTP.Failure(description: "the web app did not start")
        }
        port = p
    }

    func stop() async {
        task?.cancel()
        _ = await task?.result
        node.close()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Adds a user (minimum Argon2id cost) and returns their password.
    @discardableResult
    func addUser(_ name: String, role: Role, password: String = "รหัสผ่านยาวพอ") throws -> String {
        try app.accounts.addUser(name: name, displayName: "นางสาวสมศรี ใจดี", role: role, password: SecureBytes(Array(password.utf8)))
        return password
    }

    func get(_ path: String, cookies: [String: String] = [:], headers: [(String, String)] = []) async throws -> HTTPReply {
        try await HTTP.request(port, "GET", path, headers: Self.cookieHeader(cookies) + headers)
    }

    func post(
        _ path: String, form: [(String, String)] = [], cookies: [String: String] = [:], headers: [(String, String)] = []
    ) async throws -> HTTPReply {
        let body = Array(form.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&").utf8)
        return try await HTTP.request(
            port, "POST", path,
            headers: [("Content-Type", "application/x-www-form-urlencoded")] + Self.cookieHeader(cookies) + headers, body: body)
    }

    func postJSON(_ path: String, _ json: [String: Any], cookies: [String: String] = [:], headers: [(String, String)] = [])
        async throws -> HTTPReply
    {
        let body = try JSONSerialization.data(withJSONObject: json)
        return try await HTTP.request(
            port, "POST", path, headers: [("Content-Type", "application/json")] + Self.cookieHeader(cookies) + headers,
            body: [UInt8](body))
    }

    static func cookieHeader(_ cookies: [String: String]) -> [(String, String)] {
        cookies.isEmpty ? [] : [("Cookie", cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))]
    }

    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
    }

    /// The login page's CSRF cookie and field value.
    func loginForm() async throws -> String {
        let page = try await get("/login")
        #expect(page.status == 200)
        let cookie = try #require(page.setCookies["saraban_login"])
        #expect(page.text.contains("name=\"_csrf\" value=\"\(cookie)\""))
        return cookie
    }

    /// Logs in; returns the session cookie and the page's CSRF token.
    func login(_ name: String, _ password: String) async throws -> (cookie: String, csrf: String) {
        let csrf = try await loginForm()
        let r = try await post(
            "/login", form: [("_csrf", csrf), ("name", name), ("password", password), ("next", "/")],
            cookies: ["saraban_login": csrf])
        #expect(r.status == 303, "login: \(r.status) \(r.text)")
        let session = try #require(r.setCookies["saraban_session"])
        let home = try await get("/", cookies: ["saraban_session": session])
        #expect(home.status == 200)
        let token = try #require(
            home.text.range(of: #"name="csrf-token" content="([^"]+)""#, options: .regularExpression).map {
                String(home.text[$0]).components(separatedBy: "content=\"")[1].dropLast()
            })
        return (session, String(token))
    }
}
