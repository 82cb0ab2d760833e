import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore
import SarabanOffice

/// Renders the server-side pages from the Mustache templates in ``Templates`` (no build chain, no
/// script needed to read a page): a layout around each page's content, Thai first, English when
/// the `lang` cookie says so. Every value is HTML-escaped by Mustache (`{{x}}`); only the layout's
/// `{{{content}}}` is a page this renderer made.
struct PageRenderer: Sendable {
    let library: MustacheLibrary
    let office: String
    let now: @Sendable () -> Int64

    init(office: String, now: @escaping @Sendable () -> Int64) throws {
        var library = MustacheLibrary()
        for (name, text) in Templates.all + ReadTemplates.all + WriteTemplates.all { try library.register(text, named: name) }
        self.library = library
        self.office = office
        self.now = now
    }

    /// The strings of one language for the templates: `{{t.key}}` (merged once per language).
    static func strings(_ lang: Lang) -> [String: String] {
        lang == .th ? thaiStrings : englishStrings
    }

    private static let thaiStrings = merged(.th)
    private static let englishStrings = merged(.en)

    private static func merged(_ lang: Lang) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in L10n.table.merging(ReadStrings.table, uniquingKeysWith: { a, _ in a }) { out[k] = lang == .th ? v.th : v.en }
        for (k, v) in WriteL10n.table where out[k] == nil { out[k] = lang == .th ? v.th : v.en }
        return out
    }

    /// The day (Thai time) of `millis`, as days since 1970: a page showing the date is kept per day.
    static func day(_ millis: Int64) -> Int64 {
        (millis + 7 * 3_600_000) / 86_400_000
    }

    /// A whole page: `template` rendered with `values`, inside the layout.
    func page(
        _ template: String, title: String, lang: Lang, user: WebUser? = nil, csrf: String? = nil, values: [String: Any] = [:]
    ) -> ByteBuffer {
        var v = values
        let t = Self.strings(lang)
        v["t"] = t
        v["lang"] = lang.rawValue
        v["office"] = office
        let content = library.render(v, withTemplate: template) ?? ""
        var layout: [String: Any] = [
            "t": t, "lang": lang.rawValue, "office": office, "title": title, "content": content,
            "today": Self.beDate(now(), lang), "other_lang": lang == .th ? "en" : "th",
            "other_lang_label": lang == .th ? "English" : "ภาษาไทย",
        ]
        if let user {
            layout["user"] = [
                "name": user.name, "display": user.displayName, "role": lang == .th ? user.role.thai : user.role.rawValue,
                "admin": user.role == .admin,
            ]
        }
        if let csrf { layout["csrf"] = csrf }
        return ByteBuffer(string: library.render(layout, withTemplate: "layout") ?? "")
    }

    func html(_ body: ByteBuffer, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: body))
    }

    func errorPage(_ e: WebError, lang: Lang) -> ByteBuffer {
        page(
            "error", title: lang == .th ? e.th : e.en, lang: lang,
            values: [
                "status": e.status.code, "first": lang == .th ? e.th : e.en, "second": lang == .th ? e.en : e.th,
                "second_lang": lang == .th ? "en" : "th", "code": e.code,
            ])
    }

    func loginPage(
        lang: Lang, next: String, name: String = "", error: String? = nil, notice: String? = nil, csrfCookie: Cookie,
        status: HTTPResponse.Status = .ok
    ) throws -> Response {
        var values: [String: Any] = ["next": next, "name": name, "csrf": csrfCookie.value]
        if let error { values["error"] = error }
        if let notice { values["notice"] = notice }
        var r = html(page("login", title: lang == .th ? "เข้าสู่ระบบ" : "Log in", lang: lang, values: values), status: status)
        r.setCookie(csrfCookie)
        return r
    }

    /// A time as a Buddhist-Era date (Thai time, UTC+7): `6 ธันวาคม 2569` / `6 December 2569 BE`.
    static func beDate(_ millis: Int64, _ lang: Lang) -> String {
        let d = ThaiDate(unixMillis: millis)
        if lang == .th { return d.formatted() }
        let months = [
            "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
            "December",
        ]
        return "\(d.day) \(months[d.month - 1]) \(d.year) BE"
    }

    /// `6 ธ.ค. 2569 10:42` (Thai time).
    static func beDateTime(_ millis: Int64, _ lang: Lang) -> String {
        let local = millis / 1000 + 7 * 3600
        let hm = String(format: "%02d:%02d", (local / 3600) % 24, (local / 60) % 60)
        let d = ThaiDate(unixMillis: millis)
        if lang == .th { return "\(d.day) \(ThaiDate.monthAbbreviations[d.month - 1]) \(d.year) \(hm)" }
        return "\(beDate(millis, .en)) \(hm)"
    }
}

/// The page strings in Thai and English (`{{t.key}}` in the templates).
enum L10n {
    static let table: [String: (th: String, en: String)] = [
        "app": ("ระบบสารบรรณอิเล็กทรอนิกส์", "Saraban e-Office"),
        "login": ("เข้าสู่ระบบ", "Log in"),
        "logout": ("ออกจากระบบ", "Log out"),
        "user_name": ("ชื่อผู้ใช้", "User name"),
        "password": ("รหัสผ่าน", "Password"),
        "home": ("หน้าหลัก", "Home"),
        "node": ("เครื่องของสำนักงาน", "This office's node"),
        "node_id": ("รหัสเครื่อง", "Node id"),
        "role": ("บทบาท", "Role"),
        "today": ("วันนี้", "Today"),
        "peers": ("เครื่องที่เชื่อมต่อ", "Peers"),
        "peer": ("เครื่อง", "Peer"),
        "last_contact": ("ติดต่อล่าสุด", "Last contact"),
        "they_lack": ("รอส่งไป", "They lack"),
        "we_lack": ("รอรับ", "We lack"),
        "never": ("ยังไม่เคย", "never"),
        "no_peers": ("ยังไม่ได้ตั้งค่าเครื่องที่เชื่อมต่อ", "no peers configured"),
        "error": ("เกิดข้อผิดพลาด", "Error"),
        "back_home": ("กลับหน้าหลัก", "Back to the home page"),
        "session_expired": ("หมดเวลาการใช้งาน กรุณาเข้าสู่ระบบใหม่", "Your session has expired: log in again."),
        "welcome": ("ยินดีต้อนรับ", "Welcome"),
        "skip": ("ข้ามไปยังเนื้อหา", "Skip to content"),
        "language": ("ภาษา", "Language"),
        "store_size": ("ขนาดฐานข้อมูล", "Database size"),
        "letter_code": ("รหัสตัวพยัญชนะ", "Letter code"),
        "sync": ("การประสานข้อมูล", "Sync"),
    ]
}
