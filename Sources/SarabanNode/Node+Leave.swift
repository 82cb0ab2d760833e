import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
import SarabanSync

/// What leaving a space will do here, counted before anything is deleted (`saraban space leave`
/// prints it, and asks for `--yes`).
public struct LeavePlan: Sendable {
    public var space: SpaceInfo
    /// Letters of the shared-letter model that live in the space (deleted here).
    public var letters: Int
    /// Every document of the space (deleted here).
    public var documents: Int
    /// Dispatches from the space waiting in this office's inbox (dropped here, never received).
    public var inbox: Int
    /// Letters this office received through the space: their records stay in the office's space.
    public var received: Int
    /// Of those, the ones with attachments: their key is in the space's dispatch, so they cannot be
    /// fetched or extracted afterwards.
    public var receivedWithAttachments: Int
    /// Letters this office sent through the space: they stay in the send book; their receipts
    /// (รับแล้ว, ส่งคืน) are no longer shown.
    public var sent: Int
    /// Other active members holding the space (0: this node is the last to hold it).
    public var otherMembers: Int

    /// What happens, in Thai and English, one line each.
    public var consequences: [String] {
        var out: [String] = []
        let name = space.name
        if space.role == .relay {
            out.append(
                "เลิกเก็บและส่งต่อพื้นที่ \(name) ลบซองข้อมูลที่เก็บไว้ / this relay stops carrying space \(name) and deletes the "
                    + "envelopes it stored; the members keep their copies")
            return out
        }
        out.append(
            "เลิกซิงก์พื้นที่ \(name) ลบกุญแจและสำเนาในเครื่องนี้ (\(documents) เอกสาร, \(letters) หนังสือ) / stops syncing space "
                + "\(name) and deletes its keys and this node's copy (\(documents) documents, \(letters) letters in it)")
        out.append(
            otherMembers > 0
                ? "สมาชิกอื่น \(otherMembers) รายยังมีสำเนาอยู่ และยังนับเครื่องนี้เป็นสมาชิกจนกว่าผู้ดูแลจะนำออก / the \(otherMembers) "
                    + "other member(s) keep their copies and still list this node until an admin removes it "
                    + "(saraban space remove \(name) NODE_ID, which rotates the key)"
                : "ไม่มีเครื่องอื่นเก็บพื้นที่นี้ หนังสือในพื้นที่จะหายไปถาวร / no other node holds this space: what is in it is gone "
                    + "for good")
        if inbox > 0 {
            out.append(
                "หนังสือรอรับ \(inbox) ฉบับจากพื้นที่นี้จะไม่ได้รับ ให้ผู้ส่งส่งใหม่ทางพื้นที่อื่น / \(inbox) dispatch(es) from this "
                    + "space waiting in the inbox are dropped unreceived: receive them first, or ask the sender to send again "
                    + "through another space")
        }
        if received > 0 {
            out.append(
                "หนังสือที่รับแล้ว \(received) ฉบับยังอยู่ในทะเบียนรับและบันทึกของสำนักงาน / \(received) letter(s) received through "
                    + "it stay in the receive book and this office's records (text, ที่, signatures)")
        }
        if receivedWithAttachments > 0 {
            out.append(
                "สิ่งที่ส่งมาด้วยของหนังสือ \(receivedWithAttachments) ฉบับจะเปิดไม่ได้อีก ให้ส่งออกก่อน / the attachments of "
                    + "\(receivedWithAttachments) received letter(s) are opened with this space's keys: extract them first "
                    + "(saraban letter extract), they cannot be opened afterwards")
        }
        if sent > 0 {
            out.append(
                "หนังสือที่ส่งไป \(sent) ฉบับยังอยู่ในทะเบียนส่ง แต่จะไม่เห็นการรับหรือส่งคืนอีก / \(sent) letter(s) sent through it "
                    + "stay in the send book; their receipts (received, returned) are no longer shown")
        }
        return out
    }
}

extension Node {
    /// What leaving `space` would do. Refused (exit 68): the office's own space; the last admin of
    /// a space that other members hold (name another admin first).
    public func leavePlan(_ space: SpaceID) throws(NodeError) -> LeavePlan {
        guard let info = try spaceInfo(space) else {
            throw NodeError(.unknownDocument, "this node carries no space \(space.hex); `saraban space list` shows those it does")
        }
        guard !info.isDefault else {
            throw NodeError(
                .refused,
                "พื้นที่ \(info.name) เป็นพื้นที่ของสำนักงานเอง ออกไม่ได้ / space \(info.name) is this office's own space (its drafts, "
                    + "registers and records): it cannot be left")
        }
        let me = identity.publicKey
        let others = info.members.filter { $0.isActive && $0.key != me }
        if info.role == .member, !others.isEmpty {
            let a = try authority(space)
            if a.hasLog, a.admins.contains(me), !others.contains(where: { a.admins.contains($0.key) }) {
                let candidate = others.map(\.nodeID.text).sorted().first ?? "NODE_ID"
                throw NodeError(
                    .refused,
                    "เครื่องนี้เป็นผู้ดูแลคนสุดท้ายของพื้นที่ \(info.name) ให้แต่งตั้งผู้ดูแลอื่นก่อน / this node is the last admin of space "
                        + "\(info.name), which \(others.count) other member(s) hold: make another member an admin first "
                        + "(saraban space admin \(info.name) \(candidate)), then leave")
            }
        }
        var plan = LeavePlan(
            space: info, letters: 0, documents: info.documents, inbox: 0, received: 0, receivedWithAttachments: 0, sent: 0,
            otherMembers: others.count)
        guard info.role == .member else { return plan }
        plan.letters = try documents(ofKind: LetterDocument.kind, in: space).filter { !$0.isDeleted }.count
        plan.inbox = try correspondence.inbox().filter { $0.dispatch.space == space }.count
        let hex = space.hex
        let own: SpaceID?
        do { own = try store.defaultSpace() } catch { throw NodeError(error) }
        for d in try documents(ofKind: LetterDocument.kind, in: own) where !d.isDeleted {
            guard let v = Self.letterView(d) else { continue }
            if v.origin?.space == hex {
                plan.received += 1
                if !v.attachments.isEmpty { plan.receivedWithAttachments += 1 }
            }
            if v.deliveries.contains(where: { $0.space == hex }) { plan.sent += 1 }
        }
        return plan
    }

    /// Leaves `space`: checks as ``leavePlan(_:)`` does, then deletes everything this node holds of
    /// it in one transaction (documents, change log, envelopes, keys, members, settings). Nothing is
    /// sent: the other members keep their copies. A running daemon notices the space is gone at its
    /// next poll and stops syncing it.
    @discardableResult
    public func leaveSpace(_ space: SpaceID) throws(NodeError) -> LeftSpace {
        _ = try leavePlan(space)
        let left: LeftSpace
        do { left = try store.removeSpace(space) } catch { throw NodeError(error) }
        logger.info(
            "left a space", metadata: ["space": "\(space.hex)", "documents": "\(left.documents)", "envelopes": "\(left.envelopes)"])
        return left
    }
}
