import Foundation
import Hummingbird
import NIOCore
import SarabanCore
import SarabanCrypto
import SarabanNode

// The sync status page (peers and relays, last contact, lag, fork reports, the node's health)
// and the audit list of views of secret letters (admins).

extension WebApp {
    /// A peer not heard from for this long is marked stale.
    static let staleAfterMillis: Int64 = 15 * 60 * 1000

    func addSyncStatus(_ router: Router<WebContext>) {
        if options.relay { return }
        router.get("/sync") { [self] _, context in
            let (s, user) = try context.web.sessionUser()
            let lang = context.web.lang
            let t = PageRenderer.strings(lang)
            let status = try node.status()
            let book = (try? node.peerStatuses()) ?? [:]
            var relayKeys = Set<String>()
            for sp in try node.spaces() {
                relayKeys.formUnion(node.designatedRelays(sp.id).map(\.text))
            }
            let now = self.now
            let peers: [[String: Any]] = try node.syncSettings().peers.map { p in
                let st = book[p.nodeID.text]
                let stale = st?.lastContact.map { now - $0 > Self.staleAfterMillis } ?? true
                let relay = relayKeys.contains(p.nodeID.text)
                return [
                    "name": p.label, "node_id": p.nodeID.text, "address": p.address.description,
                    "kind": relay ? (lang == .th ? "ตัวกลาง (relay)" : "relay") : (lang == .th ? "เครื่องสำนักงาน" : "office node"),
                    "contact": st?.lastContact.map { PageRenderer.beDateTime($0, lang) } ?? t["never"]!,
                    "synced": st?.lastSynced.map { PageRenderer.beDateTime($0, lang) } ?? t["never"]!,
                    "they_lack": st?.changesPeerLacks ?? 0, "we_lack": st?.changesWeLack ?? 0,
                    "error": st?.lastError ?? "", "stale": stale, "row_class": stale ? "warn" : "",
                ]
            }
            let forks: [[String: Any]] = book.values.flatMap { $0.forks ?? [] }.sorted { $0.detectedAt > $1.detectedAt }.map {
                ["found": PageRenderer.beDateTime($0.detectedAt, lang), "peer": $0.peer, "author": $0.author, "sequence": $0.sequence]
            }
            let (ready, why) = readiness()
            let values: [String: Any] = [
                "ready": ready ? (lang == .th ? "พร้อม" : "ready") : why, "ready_class": ready ? "ok" : "bad",
                "services": daemon == nil ? (lang == .th ? "ไม่ได้ทำงาน (เว็บอย่างเดียว)" : "not running (web app only)")
                    : (lang == .th ? "ทำงาน" : "running"),
                "documents": status.documents, "pending": status.pendingChanges,
                "store_size": Self.bytes(status.databaseBytes), "font": Assets.fontSource ?? (lang == .th ? "ไม่พบ" : "none installed"),
                "listeners": live.listeners, "peers": peers, "has_peers": !peers.isEmpty, "forks": forks, "has_forks": !forks.isEmpty,
            ]
            return pages.html(pages.page("sync", title: t["sync_status"]!, lang: lang, user: user, csrf: s.csrf, values: values))
        }
        router.get("/audit") { [self] _, context in
            let (s, user) = try context.web.sessionUser()
            guard user.role == .admin else { throw WebError.forbidden }
            let lang = context.web.lang
            let entries: [[String: Any]] = audit.entries().map { e in
                [
                    "when": PageRenderer.beDateTime(e.time, lang), "who": e.who, "letter": e.letter, "secrecy": e.secrecy,
                    "via": e.via, "outcome": e.allowed ? (lang == .th ? "เปิดดู" : "viewed") : (lang == .th ? "ถูกปฏิเสธ" : "refused"),
                    "row_class": e.allowed ? "" : "bad",
                ]
            }
            return pages.html(
                pages.page(
                    "audit", title: PageRenderer.strings(lang)["audit"]!, lang: lang, user: user, csrf: s.csrf,
                    values: ["entries": entries, "has_entries": !entries.isEmpty]))
        }
        router.get("/api/v1/audit") { [self] _, context in
            guard case .session(_, let user) = context.web.principal, user.role == .admin else {
                throw WebError(
                    .forbidden, "forbidden", th: "เฉพาะผู้ดูแลระบบที่เข้าสู่ระบบอ่านบันทึกนี้ได้",
                    en: "only a logged-in admin may read the audit list")
            }
            return try Self.json(audit.entries())
        }
    }
}
