import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
import SarabanSync

/// Secrecy routing: which spaces may hold ลับ / ลับมาก letters, which nodes are cleared for them,
/// and which peers a cleared space is synced with.
///
/// All of it is data in the space's membership document (kind `space`), so it replicates, merges
/// and is signed like any change:
///
/// | field | type | meaning |
/// |---|---|---|
/// | `clearance` | register | the highest class the space may hold (ปกติ, ลับ, ลับมาก) |
/// | `cleared.<node id>` | register | the class a member office is cleared for (recorded by the member who invited or cleared it) |
/// | `relays` | set | node ids of the relays designated to carry the space |
///
/// A node counts itself as cleared (the space's declared class bounds it); the member that declares
/// a space's class records itself as cleared for it, so the other members see it cleared too.
/// `space_clearance` in config.json still declares a class for a space without a `clearance`
/// field (this node's private spaces).
extension Node {
    static let clearanceField = "clearance"
    static let relaysField = "relays"
    static func clearedField(_ node: NodeID) -> String { "cleared." + node.text }

    /// The space's membership document, if this node holds it.
    func spaceDocument(_ space: SpaceID) -> Document? {
        guard let info = try? spaceInfo(space) else { return nil }
        return spaceDocument(info)
    }

    /// The membership document of the space `info` describes, if this node holds it.
    func spaceDocument(_ info: SpaceInfo) -> Document? {
        guard let d = info.document else { return nil }
        return try? document(d)
    }

    /// The class the space is declared for: its document's `clearance`, else `space_clearance` in
    /// config.json under its name, else none.
    public func declaredClearance(of space: SpaceID) throws(NodeError) -> Secrecy {
        try declaredClearance(of: space, configName: try spaceInfo(space)?.name ?? "")
    }

    /// `configName`: the key looked up in `space_clearance` ("" for a letter given no `--space`:
    /// the default space is uncleared unless config.json says so under "").
    func declaredClearance(of space: SpaceID, configName: String) throws(NodeError) -> Secrecy {
        declaredClearance(of: space, configName: configName, document: spaceDocument(space))
    }

    /// The same, given the space's membership document (nil: not held yet) already read.
    func declaredClearance(of space: SpaceID, configName: String, document: Document?) -> Secrecy {
        if let d = document, let c = d.display(Self.clearanceField), let s = try? Secrecy(parsing: c) { return s }
        // Before the membership document arrives: what the invitation said.
        if let c = (try? store.setting(Self.invitedClearanceKey(space))) ?? nil, let s = try? Secrecy(parsing: c) { return s }
        if let c = config.spaceClearance?[configName], let s = try? Secrecy(parsing: c) { return s }
        return .none
    }

    static func invitedClearanceKey(_ space: SpaceID) -> String { "space.\(space.hex).clearance" }
    static func invitedRelaysKey(_ space: SpaceID) -> String { "space.\(space.hex).relays" }

    /// The class an invitation to `space` carries ("" when it is not cleared).
    func clearanceForInvitation(_ space: SpaceID) -> String {
        let c = (try? declaredClearance(of: space)) ?? .none
        return c > .none ? c.rawValue : ""
    }

    /// Keeps the class and designated relays an invitation carried, until the membership document says more.
    func recordInvitedClearance(_ inv: Invitation) throws(NodeError) {
        do {
            if !inv.clearance.isEmpty { try store.setSetting(Self.invitedClearanceKey(inv.space), inv.clearance) }
            if !inv.relays.isEmpty {
                try store.setSetting(Self.invitedRelaysKey(inv.space), inv.relays.map(\.nodeID.text).joined(separator: ","))
            }
        } catch { throw NodeError(error) }
    }

    /// The class `member` is cleared for in `space` (this node: the space's declared class).
    public func memberClearance(_ member: NodeID, in space: SpaceID) throws(NodeError) -> Secrecy {
        memberClearance(member, document: spaceDocument(space))
    }

    /// The same, given the space's membership document (nil: not held yet) already read.
    func memberClearance(_ member: NodeID, document: Document?) -> Secrecy {
        if member.publicKey == identity.publicKey { return .topSecret }  // bounded by the space's declared class
        guard let d = document, let c = d.display(Self.clearedField(member)), let s = try? Secrecy(parsing: c)
        else { return .none }
        return s
    }

    /// What the space may hold now: its declared class, lowered to the least-cleared active member.
    /// Returns the class and the members below the declared one.
    public func effectiveClearance(of space: SpaceID) throws(NodeError) -> (Secrecy, uncleared: [SpaceMember]) {
        try effectiveClearance(of: space, declared: try declaredClearance(of: space))
    }

    func effectiveClearance(of space: SpaceID, declared: Secrecy) throws(NodeError) -> (Secrecy, uncleared: [SpaceMember]) {
        guard declared > .none, let info = try spaceInfo(space) else { return (declared, []) }
        let document = spaceDocument(space)  // read once, not once per member
        var eff = declared
        var low: [SpaceMember] = []
        for m in info.members where m.isActive {
            let c = memberClearance(m.nodeID, document: document)
            if c < declared { low.append(m) }
            eff = min(eff, c)
        }
        return (eff, low)
    }

    /// Refuses `secrecy` for a letter in `space` (nil: the default space) unless the space and
    /// every member of it are cleared for that class.
    func checkClearance(_ secrecy: Secrecy, in space: SpaceID?, spaceName: String?, action: String) throws(NodeError) {
        guard secrecy > .none else { return }
        let sp: SpaceID
        if let space { sp = space } else {
            guard let d = try? store.defaultSpace() else {
                throw NodeError(.refused, "this node has no default space; pass --space NAME of a cleared space")
            }
            sp = d
        }
        let declared = try declaredClearance(of: sp, configName: spaceName ?? "")
        let (eff, low) = try effectiveClearance(of: sp, declared: declared)
        guard eff < secrecy else { return }
        let where_ = spaceName.map { "พื้นที่ \($0)" } ?? "พื้นที่ของสำนักงาน"
        let whereEn = spaceName.map { "space \($0)" } ?? "the office's default space"
        if declared >= secrecy {
            let who = low.map { $0.office.isEmpty ? String($0.nodeID.text.prefix(12)) : $0.office }.joined(separator: ", ")
            throw NodeError(
                .refused,
                "สมาชิกของ\(where_)บางรายไม่ได้รับอนุญาตชั้น\(secrecy.rawValue) (\(who)) / "
                    + "cannot \(action) a \(secrecy.english) letter: members of \(whereEn) are not cleared for "
                    + "\(secrecy.english): \(who); clear them (`saraban space clearance SPACE \(secrecy.rawValue) --member NODE_ID`) "
                    + "or remove them from the space")
        }
        throw NodeError(
            .refused,
            "หนังสือชั้น\(secrecy.rawValue)อยู่ได้เฉพาะในพื้นที่ที่ได้รับอนุญาตชั้นความลับนั้น แต่\(where_)ได้รับอนุญาตเพียง \(eff.rawValue) / "
                + "cannot \(action) a \(secrecy.english) letter: it may only live in a space cleared for \(secrecy.english); "
                + "\(whereEn) is cleared for \(eff.english) only: pass --space NAME of a cleared space "
                + "(`saraban space clearance SPACE LEVEL`, or `space_clearance` in config.json)")
    }

    // MARK: - Changing clearances

    /// Declares the class `space` may hold. Refuses a class above what an active member (other
    /// than this node) is cleared for: clear the member first, or remove it.
    public func setSpaceClearance(_ space: SpaceID, to level: Secrecy) throws(NodeError) {
        guard let info = try spaceInfo(space) else { throw NodeError(.unknownDocument, "this node carries no space \(space.hex)") }
        _ = try requireAdmin(info, to: "declare the space's class")
        for m in info.members where m.isActive && m.key != identity.publicKey {
            let c = try memberClearance(m.nodeID, in: space)
            if c < level {
                throw NodeError(
                    .refused,
                    "\(m.office.isEmpty ? m.nodeID.text : m.office) ไม่ได้รับอนุญาตชั้น\(level.rawValue) / member "
                        + "\(m.nodeID.text) is cleared for \(c.english) only; clear it first "
                        + "(`saraban space clearance \(info.name) \(level.rawValue) --member \(m.nodeID.text)`) or remove it")
            }
        }
        let doc = try ensureSpaceDocument(space)
        let me = identity.publicKey.nodeID
        let recorded = spaceDocument(space)?.display(Self.clearedField(me)).flatMap { try? Secrecy(parsing: $0) } ?? .none
        try edit(in: space) { tx, docs in
            try tx.set(doc, field: Self.clearanceField, value: .string(level.rawValue), in: &docs)
            // The declaring office vouches for itself, so the other members see it cleared too.
            if recorded < level {
                try tx.set(doc, field: Self.clearedField(me), value: .string(level.rawValue), in: &docs)
            }
        }
    }

    /// Records the class a member office is cleared for (only an admin of the space may; every
    /// node refuses the change from anyone else).
    public func setMemberClearance(_ space: SpaceID, member: NodeID, to level: Secrecy) throws(NodeError) {
        guard let info = try spaceInfo(space) else { throw NodeError(.unknownDocument, "this node carries no space \(space.hex)") }
        _ = try requireAdmin(info, to: "grant clearances")
        let doc = try ensureSpaceDocument(space)
        try edit(in: space) { tx, docs in
            try tx.set(doc, field: Self.clearedField(member), value: .string(level.rawValue), in: &docs)
        }
    }

    /// Refuses inviting `invitee`, cleared for `cleared`, into a space declared above that.
    func checkInviteClearance(_ space: SpaceID, invitee: NodeID, cleared: Secrecy) throws(NodeError) {
        let declared = try declaredClearance(of: space)
        guard cleared < declared else { return }
        throw NodeError(
            .refused,
            "พื้นที่นี้ได้รับอนุญาตชั้น\(declared.rawValue) ผู้ได้รับเชิญต้องได้รับอนุญาตชั้นเดียวกัน / the space is cleared for "
                + "\(declared.english); a member must be cleared for it too: invite with --cleared \(declared.rawValue) "
                + "once the office is cleared (it is \(cleared.english) now)")
    }

    /// Designates a relay to carry `space` (recorded in the membership document); for a cleared
    /// space, only members and designated relays are offered it by sync.
    public func designateRelay(_ space: SpaceID, relay: NodeID) throws(NodeError) {
        guard let info = try spaceInfo(space) else { throw NodeError(.unknownDocument, "this node carries no space \(space.hex)") }
        _ = try requireAdmin(info, to: "designate relays")
        try writeControl(space, document: try ensureSpaceDocument(space), [.relay(relay, add: true)])
    }

    /// The relays designated for `space`.
    public func designatedRelays(_ space: SpaceID) -> Set<NodeID> {
        designatedRelays(space, document: spaceDocument(space))
    }

    /// The same, given the space's membership document (nil: not held yet) already read.
    func designatedRelays(_ space: SpaceID, document: Document?) -> Set<NodeID> {
        if let a = try? authority(space), a.hasLog {
            var out = Set(a.relays.map(\.nodeID))
            if let r = (try? store.setting(Self.invitedRelaysKey(space))) ?? nil, a.relays.isEmpty {
                out.formUnion(r.split(separator: ",").compactMap { try? NodeID(parsing: String($0)) })
            }
            return out
        }
        var texts = document.map { $0.view.sets[Self.relaysField] ?? [] } ?? []
        if let r = (try? store.setting(Self.invitedRelaysKey(space))) ?? nil { texts += r.split(separator: ",").map(String.init) }
        return Set(texts.compactMap { try? NodeID(parsing: $0) })
    }

    // MARK: - Sync

    /// On a relay: whether `space` may be synced with `peer`. A relay serves a space with a
    /// membership log only to its members and designated relays (it reads the log's control
    /// envelopes: Docs/SECURITY.md); a space without a log yet, to every trusted peer.
    public func relayServes(_ space: SpaceID, to peer: NodeID) throws(NodeError) -> Bool {
        guard let a = try? authority(space), a.hasLog else { return true }
        let member = try spaceInfo(space)?.members.contains { $0.isActive && $0.key == peer.publicKey } ?? false
        return member || a.relays.contains(peer.publicKey)
    }

    /// The spaces to sync with `peer`: every carried space, except that a cleared space
    /// (declared above ปกติ) is synced only with its active members and designated relays, so its
    /// envelopes never reach another peer even though they are encrypted. Called once per
    /// session; each member space's membership document is read and decoded once.
    public func carriedSpaces(for peer: NodeID) throws(NodeError) -> [SpaceID: FeedVector] {
        var all = try carriedSpaces()
        guard role == .member else {
            for (space, _) in all where try !relayServes(space, to: peer) { all[space] = nil }
            return all
        }
        for (space, _) in all {
            guard let info = try spaceInfo(space), info.role == .member else { continue }
            let document = spaceDocument(info)
            guard declaredClearance(of: space, configName: info.name, document: document) > .none else { continue }
            let member = info.members.contains { $0.isActive && $0.key == peer.publicKey }
            if !member && !designatedRelays(space, document: document).contains(peer) { all[space] = nil }
        }
        return all
    }
}
