import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import SarabanCrypto
import SarabanNode

/// The language of a page: Thai first, English on request (the `lang` cookie).
public enum Lang: String, Sendable {
    case th, en
}

/// Who made a request.
enum Principal: Sendable {
    /// A browser with a session cookie.
    case session(Session, WebUser)
    /// A program with an API token.
    case token(APIToken)

    var userName: String? {
        if case .session(_, let u) = self { return u.name }
        return nil
    }

    var role: Role? {
        if case .session(_, let u) = self { return u.role }
        return nil
    }

    /// For logs and the audit list: `user:somsri` or `token:vendor-x`.
    var label: String {
        switch self {
        case .session(_, let u): return "user:\(u.name)"
        case .token(let t): return "token:\(t.name)"
        }
    }
}

/// What the web app's middleware learns about a request before its handler runs.
struct WebState: Sendable {
    var lang: Lang = .th
    var principal: Principal?
    /// The urlencoded form of a POST, read (and its CSRF token checked) by ``AuthMiddleware``.
    var form = FormData()
    /// Set when the request came through a TLS-terminating proxy the operator named (`--tls-proxy`).
    var secure = false
}

/// The request context of every route.
public struct WebContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    var web = WebState()
    /// The client's address (for login rate limiting): IPv4, or IPv6 by its /64. Behind the
    /// operator's TLS proxy (`--tls-proxy`, the proxy on this machine) it is the address the proxy
    /// appended to `X-Forwarded-For` (``AuthMiddleware`` sets it), else every client would share one.
    var remoteKey: String
    /// The peer of the TCP connection.
    let peerAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
        remoteKey = LoginThrottle.addressKey(peerAddress)
    }

    /// 1 MiB: forms and JSON bodies (attachments stream through their own route).
    public var maxUploadSize: Int { 1 << 20 }
}

/// An `application/x-www-form-urlencoded` body or a query string, strictly decoded: every name and
/// value must be valid UTF-8 after percent-decoding (else 400, nothing stored).
struct FormData: Sendable {
    var pairs: [(String, String)] = []

    subscript(_ name: String) -> String? { pairs.last { $0.0 == name }?.1 }
    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }

    init() {}

    init(parsing bytes: some Collection<UInt8>) throws(WebError) {
        for part in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let kv = part.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(kv[0])
            let value = kv.count > 1 ? try Self.decode(kv[1]) : ""
            pairs.append((name, value))
        }
    }

    static func decode(_ s: some Collection<UInt8>) throws(WebError) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = s.startIndex
        func hex(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - 48
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - 87
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - 55
            default: return nil
            }
        }
        while i < s.endIndex {
            let c = s[i]
            if c == UInt8(ascii: "+") {
                out.append(0x20)
            } else if c == UInt8(ascii: "%") {
                let a = s.index(after: i)
                let b = a < s.endIndex ? s.index(after: a) : a
                guard b < s.endIndex, let h = hex(s[a]), let l = hex(s[b]) else {
                    throw WebError.invalid("รหัส % ในข้อมูลไม่ถูกต้อง", "a %-escape in the request is malformed")
                }
                out.append(h << 4 | l)
                i = b
            } else {
                out.append(c)
            }
            i = s.index(after: i)
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw WebError.invalidUTF8 }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 && $0 != "\n" && $0 != "\r" && $0 != "\t" }) else {
            throw WebError.invalid("ข้อมูลมีอักขระควบคุม", "the request contains control characters")
        }
        return text
    }
}

extension Request {
    /// The query string, strictly decoded (``FormData``).
    func query() throws(WebError) -> FormData {
        guard let q = uri.query else { return FormData() }
        return try FormData(parsing: Array(q.utf8))
    }

    func cookie(_ name: String) -> String? {
        for header in headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.split(separator: "=", maxSplits: 1)
                if kv.count == 2, kv[0].trimmingCharacters(in: .whitespaces) == name {
                    return kv[1].trimmingCharacters(in: .whitespaces)
                }
            }
        }
        return nil
    }

    var isSafeMethod: Bool { method == .get || method == .head || method == .options }
}
