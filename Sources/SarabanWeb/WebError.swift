import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SarabanNode

/// An error the web app answers with: an HTTP status, a stable code for programs, and the message
/// in Thai and in English. The API sends it as `application/problem+json` (RFC 9457) with both
/// messages; a browser gets a page in its chosen language with the other below.
public struct WebError: Error, Sendable {
    public var status: HTTPResponse.Status
    /// Stable, machine-readable: `csrf`, `unauthenticated`, `session-expired`, `locked-out`, ...
    public var code: String
    public var th: String
    public var en: String
    /// Extra headers (`Retry-After`, `WWW-Authenticate`).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ code: String, th: String, en: String) {
        self.status = status
        self.code = code
        self.th = th
        self.en = en
    }

    static let notFound = WebError(.notFound, "not-found", th: "ไม่พบหน้าที่ขอ", en: "there is no such page")
    static let unauthenticated = WebError(
        .unauthorized, "unauthenticated", th: "กรุณาเข้าสู่ระบบก่อน",
        en: "log in first (a browser session, or an API token in `Authorization: Bearer sbt_…`)")
    static let sessionExpired = WebError(
        .unauthorized, "session-expired", th: "หมดเวลาการใช้งาน กรุณาเข้าสู่ระบบใหม่", en: "your session has expired: log in again")
    static let csrf = WebError(
        .forbidden, "csrf", th: "คำขอนี้ไม่มีรหัสป้องกันการปลอมแปลง (CSRF) ที่ถูกต้อง จึงไม่ได้บันทึก กรุณาโหลดหน้าใหม่แล้วลองอีกครั้ง",
        en: "the request has no valid CSRF token, so nothing was stored: reload the page and try again")
    static let forbidden = WebError(
        .forbidden, "forbidden", th: "บทบาทของท่านไม่มีสิทธิ์ทำรายการนี้", en: "your role may not do this")
    static let readOnlyToken = WebError(
        .forbidden, "read-only-token", th: "โทเคนนี้อ่านได้อย่างเดียว", en: "this API token has the read scope: it may only GET")
    static let tooLarge = WebError(
        .contentTooLarge, "too-large", th: "ข้อมูลที่ส่งมามีขนาดใหญ่เกินกำหนด จึงไม่ได้บันทึก",
        en: "the request body is larger than this endpoint accepts, so nothing was stored")
    static let invalidUTF8 = WebError(
        .badRequest, "invalid-utf8", th: "ข้อความที่ส่งมาไม่ใช่ UTF-8 จึงไม่ได้บันทึก",
        en: "the request is not valid UTF-8 text, so nothing was stored")
    static let badRequest = WebError(.badRequest, "bad-request", th: "คำขอไม่ถูกต้อง", en: "the request is malformed")
    static let methodNotAllowed = WebError(
        .methodNotAllowed, "method-not-allowed", th: "ไม่รองรับวิธีการนี้", en: "this method is not allowed here")
    static let busy = WebError(
        .serviceUnavailable, "busy", th: "ระบบกำลังตรวจรหัสผ่านจำนวนมาก กรุณาลองใหม่อีกครั้ง",
        en: "too many logins are being checked: try again in a moment")

    static func invalid(_ th: String, _ en: String) -> WebError { WebError(.badRequest, "invalid", th: th, en: en) }

    /// A node error as the web app reports it. Its message is already Thai and English.
    init(_ e: NodeError) {
        let status: HTTPResponse.Status
        let code: String
        switch e.code {
        case .invalidArgument, .invalidFile: (status, code) = (.badRequest, "invalid")
        case .unknownDocument, .unknownField: (status, code) = (.notFound, "not-found")
        case .ambiguousDocument: (status, code) = (.conflict, "ambiguous")
        case .refused: (status, code) = (.conflict, "refused")
        case .wrongPassphrase: (status, code) = (.forbidden, "wrong-passphrase")
        case .alreadyInitialized: (status, code) = (.conflict, "exists")
        case .busy: (status, code) = (.serviceUnavailable, "busy")
        default: (status, code) = (.internalServerError, "node-error")
        }
        if status == .internalServerError {
            // The node's message may name files of the server: it goes to the log, not to the client.
            self.init(
                status, code, th: "เครื่องทำรายการนี้ไม่สำเร็จ ข้อมูลไม่ได้ถูกเปลี่ยน ดูรายละเอียดในบันทึกของเครื่อง",
                en: "the node could not do this and nothing was changed; its log says why")
            return
        }
        let parts = e.message.components(separatedBy: " / ")
        if parts.count >= 2, parts[0].unicodeScalars.contains(where: { (0x0E00...0x0E7F).contains($0.value) }) {
            self.init(status, code, th: parts[0], en: parts.dropFirst().joined(separator: " / "))
        } else {
            self.init(status, code, th: "ทำรายการไม่สำเร็จ", en: e.message)
        }
    }

    /// RFC 9457 problem details with both languages: `title` (English reason), `detail` (English),
    /// `detail_th` (Thai), `code`, `status`.
    func problemJSON() -> ByteBuffer {
        struct Problem: Encodable {
            var type: String
            var title: String
            var status: Int
            var code: String
            var detail: String
            var detail_th: String
        }
        let p = Problem(
            type: "urn:saraban:problem:\(code)", title: status.reasonPhrase, status: status.code, code: code, detail: en,
            detail_th: th)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ByteBuffer(bytes: (try? enc.encode(p)) ?? Data())
    }

    func response(html: Bool, lang: Lang, pages: PageRenderer?) -> Response {
        var headers = self.headers
        let body: ByteBuffer
        if html, let pages {
            headers[.contentType] = "text/html; charset=utf-8"
            body = pages.errorPage(self, lang: lang)
        } else {
            headers[.contentType] = "application/problem+json; charset=utf-8"
            body = problemJSON()
        }
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: body))
    }
}

/// Turns every error below it into a `WebError` response: problem+json for the API and for
/// clients that ask for JSON, a Thai-first page for browsers. Nothing escapes as an empty 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = WebContext
    let pages: PageRenderer
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch {
            let e = Self.webError(error, logger: logger, request: request)
            return e.response(html: Self.wantsHTML(request), lang: context.web.lang, pages: pages)
        }
    }

    static func webError(_ error: any Error, logger: Logger, request: Request) -> WebError {
        switch error {
        case let e as WebError: return e
        case let e as NodeError:
            let w = WebError(e)
            if w.status == .internalServerError {
                logger.error("node error", metadata: ["path": "\(request.uri.path)", "error": "\(e.code)", "message": "\(e.message)"])
            }
            return w
        case let e as HTTPError:
            switch e.status {
            case .notFound: return .notFound
            case .contentTooLarge: return .tooLarge
            case .methodNotAllowed: return .methodNotAllowed
            case .badRequest, .unsupportedMediaType, .unprocessableContent:
                return .invalid("ข้อมูลที่ส่งมาอ่านไม่ได้ จึงไม่ได้บันทึก", "the request body could not be read, so nothing was stored")
            default: return WebError(e.status, "http", th: "ทำรายการไม่สำเร็จ", en: e.status.reasonPhrase)
            }
        case let e as any HTTPResponseError where e.status == .contentTooLarge:
            return .tooLarge
        case is DecodingError:
            return .invalid("ข้อมูล JSON ไม่ถูกต้อง จึงไม่ได้บันทึก", "the JSON body does not match the schema, so nothing was stored")
        default:
            logger.error("unexpected error", metadata: ["path": "\(request.uri.path)", "error": "\(type(of: error))"])
            return WebError(
                .internalServerError, "internal", th: "เกิดข้อผิดพลาดในระบบ ข้อมูลไม่ได้ถูกเปลี่ยน",
                en: "an internal error occurred; nothing was changed")
        }
    }

    /// A browser page, unless the path is the API's or the client asks for JSON.
    static func wantsHTML(_ request: Request) -> Bool {
        let path = request.uri.path
        if path.hasPrefix("/api/") || path == "/metrics" || path == "/healthz" || path == "/readyz" { return false }
        let accept = request.headers[.accept] ?? ""
        if accept.contains("json") && !accept.contains("text/html") { return false }
        return true
    }
}
