import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
import SarabanSync
#if canImport(Glibc)
import Glibc
#endif

extension Node {
    // MARK: - Role

    /// Member (holds space keys, opens and applies envelopes) or relay (stores and forwards the
    /// spaces it carries, never holds a key). Fixed at `saraban init` (`--relay`).
    public var role: NodeRole {
        ((try? store.setting("role")) ?? nil) == "relay" ? .relay : .member
    }

    /// Called by ``initialize(dataDir:office:letterCode:relay:logger:now:)`` once the database exists:
    /// a member gets its default space "office" (epoch-0 key, itself the only member); a relay
    /// drops it. The database holds space keys, so it is made 0600 like `node.key`.
    static func setUpSpaces(store: Store, identity: SigningKeyPair, office: String, relay: Bool, path: String)
        throws(NodeError)
    {
        do {
            if relay {
                try store.becomeRelay()
                try store.setSetting("role", "relay")
            } else if let space = try store.defaultSpace() {
                try store.addSpaceKey(space, epoch: 0, key: SymmetricKey.generate())
                try store.addSpaceMember(space, SpaceMember(key: identity.publicKey, office: office, addedBy: identity.publicKey))
            }
        } catch {
            throw NodeError(error)
        }
        chmod(path, 0o600)
    }

    // MARK: - Spaces

    /// Every space this node carries.
    public func spaces() throws(NodeError) -> [SpaceInfo] {
        do { return try store.spaces() } catch { throw NodeError(error) }
    }

    /// The space named by `text`: its name, its 32-hex-digit id, or a unique prefix of the id.
    public func resolveSpace(_ text: String) throws(NodeError) -> SpaceInfo {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { throw NodeError(.invalidArgument, "the space is empty; give its name or id") }
        let all = try spaces()
        let byName = all.filter { $0.name == t }
        if byName.count == 1 { return byName[0] }
        let lower = t.lowercased()
        let byID = all.filter { $0.id.hex.hasPrefix(lower) }
        if byName.isEmpty, byID.count == 1 { return byID[0] }
        if byName.count > 1 || byID.count > 1 {
            let shown = (byName.isEmpty ? byID : byName).map { "  \($0.id.hex)  \($0.name)" }.joined(separator: "\n")
            throw NodeError(.invalidArgument, "\(t) names several spaces; give the id:\n\(shown)")
        }
        throw NodeError(
            .unknownDocument, "this node carries no space \(t); `saraban space list` shows its spaces")
    }

    func requireMember(_ info: SpaceInfo) throws(NodeError) {
        guard info.role == .member else {
            throw NodeError(.refused, "this node only relays space \(info.id.hex); it holds no key and cannot write to it")
        }
        guard info.members.contains(where: { $0.key == identity.publicKey && $0.isActive }) else {
            throw NodeError(
                .refused,
                "this node is no longer a member of space \(info.name) (\(info.id.hex)): it was removed; ask a member to invite it again")
        }
    }

    /// Creates a space with this node as its only member: a random 16-byte id, an epoch-0 key,
    /// and its membership document (a signed change in the space itself).
    @discardableResult
    public func createSpace(name: String) throws(NodeError) -> SpaceInfo {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty else { throw NodeError(.invalidArgument, "the space name is empty") }
        guard role == .member else { throw NodeError(.refused, "a relay cannot create spaces; it only carries them") }
        if try spaces().contains(where: { $0.name == name }) {
            throw NodeError(.invalidArgument, "this node already has a space named \(name); choose another name")
        }
        let id = SpaceID(bytes: Sodium.randomBytes(16))!
        do {
            try store.addSpace(
                id: id, name: name, role: .member, epoch: 0, keys: [0: SymmetricKey.generate()],
                members: [SpaceMember(key: identity.publicKey, office: config.office, addedBy: identity.publicKey)],
                createdAt: now())
        } catch { throw NodeError(error) }
        _ = try ensureSpaceDocument(id)
        logger.info("created space", metadata: ["space": "\(id.hex)", "name": "\(name)"])
        return try resolveSpace(id.hex)
    }

    /// The space's membership document, created (with the current members, offices and epoch)
    /// the first time it is needed.
    func ensureSpaceDocument(_ space: SpaceID) throws(NodeError) -> DocID {
        guard let info = try spaceInfo(space) else {
            throw NodeError(.unknownDocument, "this node carries no space \(space.hex)")
        }
        if let d = info.document { return d }
        try requireMember(info)
        let doc = try edit(in: space) { tx, docs in
            let id = try tx.createDocument(kind: SpaceDocument.kind, in: &docs)
            try tx.set(id, field: SpaceDocument.name, value: .string(info.name), in: &docs)
            try tx.set(id, field: SpaceDocument.epoch, value: .int(Int64(info.epoch)), in: &docs)
            for m in info.members where m.isActive {
                try tx.addToSet(id, field: SpaceDocument.members, value: m.nodeID.text, in: &docs)
                if !m.office.isEmpty {
                    try tx.set(id, field: SpaceDocument.office(m.nodeID), value: .string(m.office), in: &docs)
                }
            }
            return id
        }.value
        do { try store.setSpaceDocument(space, doc) } catch { throw NodeError(error) }
        return doc
    }

    /// Adds `invitee` to the space (a signed change to its membership document) and returns an
    /// invitation carrying every epoch key this node holds, sealed to the invitee.
    /// `cleared`: the class the invited office is cleared for (recorded in the membership
    /// document); inviting below the space's declared class is refused (Node+Clearance.swift).
    public func invite(
        space: SpaceID, invitee: NodeID, office: String? = nil, cleared: Secrecy = .none
    ) throws(NodeError) -> Invitation {
        guard var info = try spaceInfo(space) else {
            throw NodeError(.unknownDocument, "this node carries no space \(space.hex)")
        }
        try requireMember(info)
        try checkInviteClearance(space, invitee: invitee, cleared: cleared)
        guard invitee.publicKey != identity.publicKey else {
            throw NodeError(.invalidArgument, "a node cannot invite itself; give the invitee's node id (`saraban id` on its machine)")
        }
        let doc = try ensureSpaceDocument(space)
        try edit(in: space) { tx, docs in
            try tx.addToSet(doc, field: SpaceDocument.members, value: invitee.text, in: &docs)
            if let office, !office.isEmpty {
                try tx.set(doc, field: SpaceDocument.office(invitee), value: .string(office), in: &docs)
            }
            if cleared > .none {
                try tx.set(doc, field: Self.clearedField(invitee), value: .string(cleared.rawValue), in: &docs)
            }
        }
        do {
            try store.addSpaceMember(
                space,
                SpaceMember(key: invitee.publicKey, office: office ?? "", addedBy: identity.publicKey, sinceEpoch: info.epoch))
            info = try store.space(space) ?? info
            let keys = try store.spaceKeys(space)
            let inv = try Invitation.make(
                space: space, name: info.name, document: doc, inviter: identity, invitee: invitee.publicKey,
                epoch: info.epoch, members: info.members.filter(\.isActive).map { ($0.key, $0.office) }, keys: keys,
                clearance: clearanceForInvitation(space), relays: designatedRelays(space).map(\.publicKey))
            logger.info("invited a node", metadata: ["space": "\(space.hex)", "invitee": "\(invitee.text)"])
            return inv
        } catch let e as StorageError {
            throw NodeError(e)
        } catch {
            throw NodeError(.io, "cannot seal the invitation: \(error)")
        }
    }

    /// Joins the space of an invitation addressed to this node: stores its keys and members.
    /// The space's documents arrive by sync (``receiveEnvelopes(space:_:)``).
    @discardableResult
    public func join(_ invitation: Invitation) throws(NodeError) -> SpaceInfo {
        guard role == .member else {
            throw NodeError(.refused, "a relay never holds space keys; carry the space instead (`saraban space carry`)")
        }
        let keys = try invitation.openKeys(with: identity)
        guard keys[invitation.epoch] != nil else {
            throw NodeError(.invalidFile, "the invitation lacks the key of its current epoch; ask for a new invitation")
        }
        var members = invitation.members.map {
            SpaceMember(key: $0.key, office: $0.office, sinceEpoch: invitation.epoch)
        }
        if !members.contains(where: { $0.key == identity.publicKey }) {
            members.append(SpaceMember(key: identity.publicKey, addedBy: invitation.inviter, sinceEpoch: invitation.epoch))
        }
        if let i = members.firstIndex(where: { $0.key == identity.publicKey }) {
            members[i].addedBy = invitation.inviter
            if members[i].office.isEmpty { members[i].office = config.office }
        }
        do {
            try store.addSpace(
                id: invitation.space, name: invitation.name, role: .member, epoch: invitation.epoch,
                document: invitation.document, keys: keys, members: members, createdAt: now())
        } catch { throw NodeError(error) }
        try recordInvitedClearance(invitation)
        logger.info("joined space", metadata: ["space": "\(invitation.space.hex)", "name": "\(invitation.name)"])
        return try resolveSpace(invitation.space.hex)
    }

    /// Removes `member` from the space and rotates its key: a new random epoch key is sealed to
    /// each remaining member in a rekey record, written (with the removal) as one signed change in
    /// the current epoch; everything written afterwards uses the new epoch, which the removed node
    /// cannot open. What it already had stays readable to it. Returns the new epoch.
    @discardableResult
    public func removeMember(space: SpaceID, member: NodeID) throws(NodeError) -> UInt32 {
        guard let info = try spaceInfo(space) else {
            throw NodeError(.unknownDocument, "this node carries no space \(space.hex)")
        }
        try requireMember(info)
        guard member.publicKey != identity.publicKey else {
            throw NodeError(.invalidArgument, "a node cannot remove itself; ask another member to remove it")
        }
        guard info.members.contains(where: { $0.key == member.publicKey && $0.isActive }) else {
            throw NodeError(.unknownDocument, "\(member.text) is not a member of space \(info.name); `saraban space list` shows the members")
        }
        let doc = try ensureSpaceDocument(space)
        let newEpoch = info.epoch + 1
        let key = SymmetricKey.generate()
        let remaining = info.members.filter { $0.isActive && $0.key != member.publicKey }
        var entries: [String] = []
        for m in remaining {
            do { entries.append(try SpaceDocument.keyEntry(epoch: newEpoch, member: m.nodeID, key: key)) } catch {
                throw NodeError(.io, "cannot seal the new key to \(m.nodeID.text): \(error.message)")
            }
        }
        try edit(in: space) { tx, docs in
            try tx.removeFromSet(doc, field: SpaceDocument.members, value: member.text, in: &docs)
            for e in entries { try tx.append(doc, field: SpaceDocument.keys, value: e, in: &docs) }
            try tx.set(doc, field: SpaceDocument.epoch, value: .int(Int64(newEpoch)), in: &docs)
        }
        logger.info("removed a member and rotated the key", metadata: ["space": "\(space.hex)", "epoch": "\(newEpoch)"])
        return newEpoch
    }

    /// On a relay: starts carrying `space` (storing and forwarding its envelopes without a key).
    public func carry(space: SpaceID, name: String? = nil) throws(NodeError) {
        guard role == .relay else {
            throw NodeError(.refused, "only a relay carries spaces it is not a member of; members join by invitation")
        }
        do { try store.addSpace(id: space, name: name ?? space.hex, role: .relay, createdAt: now()) } catch {
            throw NodeError(error)
        }
    }

    /// The space of a document.
    public func space(ofDocument id: DocID) throws(NodeError) -> SpaceID {
        do { return try store.space(ofDocument: id) } catch {
            if error.code == .notFound { throw NodeError(.unknownDocument, error.message) }
            throw NodeError(error)
        }
    }

    // MARK: - Envelopes (what sync calls)

    /// Verifies, stores and, on a member, opens and applies envelopes received for `space`
    /// (``Store/receiveEnvelopes(space:_:identity:receivedAt:)``), in one transaction.
    public func receiveEnvelopes(space: SpaceID, _ envelopes: [Envelope]) throws(NodeError) -> ReceiveReport {
        do {
            let r = try store.receiveEnvelopes(
                space: space, envelopes, identity: role == .member ? identity : nil, receivedAt: now())
            if !r.refused.isEmpty {
                logger.warning(
                    "refused envelopes",
                    metadata: [
                        "space": "\(space.hex)", "refused": "\(r.refused.count)",
                        "first": "\(r.refused[0].error.code.rawValue)",
                    ])
            }
            return r
        } catch { throw NodeError(error) }
    }

    /// Per author, the envelopes of `space` above `after`, in store order (see ``Store/envelopes(space:after:limit:)``).
    public func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) throws(NodeError)
        -> (envelopes: [Envelope], complete: Bool)
    {
        do { return try store.envelopes(space: space, after: after, limit: limit) } catch { throw NodeError(error) }
    }

    public func feedVector(space: SpaceID) throws(NodeError) -> FeedVector {
        do { return try store.feedVector(space: space) } catch { throw NodeError(error) }
    }

    /// Every space carried, with what this node holds of it.
    public func carriedSpaces() throws(NodeError) -> [SpaceID: FeedVector] {
        do { return try store.carriedSpaces() } catch { throw NodeError(error) }
    }

    /// Grows whenever an envelope is stored by any process on this data directory (cheap).
    public func changeProbe() throws(NodeError) -> Int64 {
        do { return try store.envelopeLogPosition() } catch { throw NodeError(error) }
    }

    /// Envelopes stored after probe value `position`, with the new position.
    public func newEnvelopes(after position: Int64, limit: Int = 4096) throws(NodeError)
        -> (envelopes: [(space: SpaceID, envelope: Envelope)], position: Int64)
    {
        do { return try store.newEnvelopes(after: position, limit: limit) } catch { throw NodeError(error) }
    }

    /// Node ids of the active members of every space this node is a member of (not itself).
    public func memberNodeIDs() throws(NodeError) -> Set<NodeID> {
        let keys: Set<SigningPublicKey>
        do { keys = try store.activeMemberKeys() } catch { throw NodeError(error) }
        return Set(keys.lazy.filter { $0 != self.identity.publicKey }.map(\.nodeID))
    }

    // MARK: - Helpers

    /// The space, or nil when this node does not carry it.
    public func spaceInfo(_ space: SpaceID) throws(NodeError) -> SpaceInfo? {
        do { return try store.space(space) } catch { throw NodeError(error) }
    }
}
