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
    // MARK: - Setting up (the role it records is read when the node opens: ``Node/role``)

    /// Called by ``initialize(dataDir:office:letterCode:relay:logger:now:)`` once the database exists:
    /// a member gets its default space "office" (bound to this node, which is its creator and
    /// first admin, with an epoch-0 key and its membership log's genesis); a relay drops it. The
    /// database holds space keys, so it is made 0600 like `node.key`.
    static func setUpSpaces(
        store: Store, identity: SigningKeyPair, office: String, relay: Bool, path: String, now: Int64,
        random: (Int) -> [UInt8]
    ) throws(NodeError) {
        do {
            if relay {
                try store.becomeRelay()
                try store.setSetting("role", "relay")
            } else {
                // The office's own space: bound to this node; its membership log starts the first
                // time an admin operation needs it (ensureSpaceDocument), so a fresh node holds no change.
                let salt = random(16)
                let id = SpaceBinding.spaceID(creator: identity.publicKey, salt: salt)
                let key = try symmetricKey(random)
                try store.addSpace(
                    id: id, name: "office", role: .member, epoch: 0, keys: [KeyCommitment.ref(of: key): (0, key)],
                    members: [SpaceMember(key: identity.publicKey, office: office, addedBy: identity.publicKey)], createdAt: now)
                try store.setSealingKey(id, ref: KeyCommitment.ref(of: key))
                try store.setSetting(saltKey(id), Hex.encode(salt))
                try store.setDefaultSpace(id)
            }
        } catch let error as NodeError {
            throw error
        } catch let error as StorageError {
            throw NodeError(error)
        } catch {
            throw NodeError(.io, "\(error)")
        }
        chmod(path, 0o600)
    }

    static func saltKey(_ space: SpaceID) -> String { "space.\(space.hex).salt" }

    /// A new space with `identity` as its creator and first admin: an id bound to its key
    /// (``SpaceBinding``), an epoch-0 key, and the membership document with the log's genesis
    /// (a control change) and the space's name and the creator's office (a change sealed under
    /// the key). Returns the id.
    static func makeSpace(
        store: Store, identity: SigningKeyPair, name: String, office: String, now: Int64, random: (Int) -> [UInt8]
    ) throws -> SpaceID {
        let salt = random(16)
        let id = SpaceBinding.spaceID(creator: identity.publicKey, salt: salt)
        let key = try symmetricKey(random)
        let me = identity.publicKey.nodeID
        try store.addSpace(
            id: id, name: name, role: .member, epoch: 0, keys: [KeyCommitment.ref(of: key): (0, key)],
            members: [SpaceMember(key: identity.publicKey, office: office, addedBy: identity.publicKey)], createdAt: now)
        let doc = try store.change(space: id, signer: identity, time: now) { tx, docs in
            let d = try tx.createDocument(kind: SpaceDocument.kind, in: &docs)
            let genesis = ControlEntry.genesis(creator: me, commitment: KeyCommitment.commit(key), salt: salt)
            try tx.append(d, field: ControlEntry.field, value: genesis.text, in: &docs)
            return d
        }.value
        _ = try store.change(space: id, signer: identity, time: now) { tx, docs in
            try tx.set(doc, field: SpaceDocument.name, value: .string(name), in: &docs)
            if !office.isEmpty { try tx.set(doc, field: SpaceDocument.office(me), value: .string(office), in: &docs) }
        }
        return id
    }

    // MARK: - Spaces

    /// Every space this node carries.
    public func spaces() throws(NodeError) -> [SpaceInfo] {
        do { return try store.spaces() } catch { throw NodeError(error) }
    }

    /// The space named by `text`: its 32-hex-digit id (always that space, whatever names other
    /// spaces have), else its name, else a unique prefix of its id.
    public func resolveSpace(_ text: String) throws(NodeError) -> SpaceInfo {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { throw NodeError(.invalidArgument, "the space is empty; give its name or id") }
        let all = try spaces()
        let lower = t.lowercased()
        if let exact = all.first(where: { $0.id.hex == lower }) { return exact }
        let byName = all.filter { $0.name == t }
        if byName.count == 1 { return byName[0] }
        let byID = all.filter { $0.id.hex.hasPrefix(lower) }
        if byName.isEmpty, byID.count == 1 { return byID[0] }
        if byName.count > 1 || byID.count > 1 {
            let shown = (byName.isEmpty ? byID : byName).map { "  \($0.id.hex)  \($0.name)" }.joined(separator: "\n")
            throw NodeError(.invalidArgument, "\(t) names several spaces; give the id:\n\(shown)")
        }
        throw NodeError(
            .unknownDocument, "this node carries no space \(t); `saraban space list` shows its spaces")
    }

    /// Refuses a space name that another space here already has, or that is (a prefix of) a
    /// space's id: a name must never stand for another space.
    func checkSpaceName(_ name: String, id: SpaceID? = nil) throws(NodeError) {
        let lower = name.lowercased()
        for s in try spaces() where s.id != id {
            if s.name == name {
                throw NodeError(
                    .invalidArgument,
                    "มีพื้นที่ชื่อ \(name) อยู่แล้ว / this node already has a space named \(name) (\(s.id.hex)); choose another name")
            }
            if lower.count >= 8, s.id.hex.hasPrefix(lower) {
                throw NodeError(
                    .refused,
                    "ชื่อพื้นที่ \(name) ตรงกับรหัสของพื้นที่อื่น / the space name \(name) is the id of another space here "
                        + "(\(s.id.hex), \(s.name)): a name may not stand for another space's id; refused")
            }
        }
    }

    func requireMember(_ info: SpaceInfo) throws(NodeError) {
        guard info.role == .member else {
            throw NodeError(.refused, "this node only relays space \(info.id.hex); it holds no key and cannot write to it")
        }
        guard info.members.contains(where: { $0.key == identity.publicKey && $0.isActive }) else {
            throw NodeError(
                .refused,
                "this node is no longer a member of space \(info.name) (\(info.id.hex)): it was removed; ask an admin to invite it again")
        }
    }

    /// The space's authority state (admins, leaks, held envelopes).
    public func authority(_ space: SpaceID) throws(NodeError) -> SpaceAuthority {
        do { return try store.authority(space) } catch { throw NodeError(error) }
    }

    /// Received changes of `space` refused with no effect, newest first.
    public func refusedChanges(_ space: SpaceID) throws(NodeError) -> [RefusedChange] {
        do { return try store.refusedChanges(space) } catch { throw NodeError(error) }
    }

    /// Refuses unless this node is an admin of the space (a space made before the membership
    /// log becomes one when its creator opens it: see ``upgradeSpaces()``).
    func requireAdmin(_ info: SpaceInfo, to action: String) throws(NodeError) -> SpaceAuthority {
        try requireMember(info)
        var a = try authority(info.id)
        if !a.hasLog {
            try upgradeSpace(info)  // this node's own space whose log was left for later
            a = try authority(info.id)
        }
        guard a.hasLog else {
            throw NodeError(
                .refused,
                "พื้นที่ \(info.name) สร้างก่อนมีผู้ดูแล / space \(info.name) was made before spaces had admins: only its creator "
                    + "(\(info.document.map { "replica \($0.op.replica)" } ?? "unknown")) may \(action), once it runs this version "
                    + "of saraban (it then becomes the space's admin)")
        }
        guard a.admins.contains(identity.publicKey) else {
            let admins = a.admins.map(\.nodeID.text).sorted().joined(separator: ", ")
            throw NodeError(
                .refused,
                "เฉพาะผู้ดูแลพื้นที่เท่านั้นที่\(Self.thaiAction(action)) / only an admin of space \(info.name) may \(action); "
                    + "this node is a member, not an admin; ask an admin (\(admins))")
        }
        return a
    }

    static func thaiAction(_ action: String) -> String {
        switch action {
        case "invite": "เชิญสมาชิกได้"
        case "remove members": "นำสมาชิกออกได้"
        case "grant clearances", "declare the space's class": "กำหนดชั้นความลับได้"
        case "designate relays": "กำหนดรีเลย์ได้"
        case "make admins": "แต่งตั้งผู้ดูแลได้"
        default: "ทำรายการนี้ได้"
        }
    }

    /// Creates a space with this node as its creator, first admin and only member.
    @discardableResult
    public func createSpace(name: String) throws(NodeError) -> SpaceInfo {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty else { throw NodeError(.invalidArgument, "the space name is empty") }
        guard role == .member else { throw NodeError(.refused, "a relay cannot create spaces; it only carries them") }
        try checkSpaceName(name)
        let id: SpaceID
        do {
            id = try Self.makeSpace(store: store, identity: identity, name: name, office: config.office, now: now(), random: random)
        } catch {
            throw Self.wrap(error)
        }
        logger.info("created space", metadata: ["space": "\(id.hex)", "name": "\(name)"])
        return try resolveSpace(id.hex)
    }

    static func wrap(_ error: any Error) -> NodeError {
        if let e = error as? NodeError { return e }
        if let e = error as? StorageError { return NodeError(e) }
        if let e = error as? EditError { return NodeError(e) }
        return NodeError(.io, "\(error)")
    }

    /// The space's membership document (every space made by this version has one).
    func ensureSpaceDocument(_ space: SpaceID) throws(NodeError) -> DocID {
        guard let info = try spaceInfo(space) else {
            throw NodeError(.unknownDocument, "this node carries no space \(space.hex)")
        }
        if let d = info.document { return d }
        try upgradeSpace(info)
        guard let d = try spaceInfo(space)?.document else {
            throw NodeError(.refused, "space \(info.name) has no membership document yet; sync with its members first")
        }
        return d
    }

    /// Writes one control change (entries of the membership log) in `space`.
    func writeControl(_ space: SpaceID, document doc: DocID, _ entries: [ControlEntry]) throws(NodeError) {
        try edit(in: space) { tx, docs in
            for e in entries { try tx.append(doc, field: ControlEntry.field, value: e.text, in: &docs) }
        }
    }

    /// Adds `invitee` to the space (a control change by this admin) and returns an invitation
    /// carrying every key this node holds of the space, sealed to the invitee. `admin`: the
    /// invitee becomes an admin too. `cleared`: the class the invited office is cleared for
    /// (recorded in the membership document); inviting below the space's declared class is
    /// refused (Node+Clearance.swift).
    public func invite(
        space: SpaceID, invitee: NodeID, office: String? = nil, cleared: Secrecy = .none, admin: Bool = false
    ) throws(NodeError) -> Invitation {
        guard var info = try spaceInfo(space) else {
            throw NodeError(.unknownDocument, "this node carries no space \(space.hex)")
        }
        _ = try requireAdmin(info, to: "invite")
        try checkInviteClearance(space, invitee: invitee, cleared: cleared)
        guard invitee.publicKey != identity.publicKey else {
            throw NodeError(.invalidArgument, "a node cannot invite itself; give the invitee's node id (`saraban id` on its machine)")
        }
        if info.members.contains(where: { $0.key == invitee.publicKey && $0.isActive }) {
            throw NodeError(.invalidArgument, "\(invitee.text) is already a member of space \(info.name)")
        }
        let doc = try ensureSpaceDocument(space)
        let keys: [KeyRef: (epoch: UInt32, key: SymmetricKey)]
        do { keys = try store.spaceKeys(space) } catch { throw NodeError(error) }
        try writeControl(space, document: doc, [.add(invitee, admin: admin, keys: keys.keys.sorted())])
        if (office.map { !$0.isEmpty } ?? false) || cleared > .none {
            try edit(in: space) { tx, docs in
                if let office, !office.isEmpty {
                    try tx.set(doc, field: SpaceDocument.office(invitee), value: .string(office), in: &docs)
                }
                if cleared > .none {
                    try tx.set(doc, field: Self.clearedField(invitee), value: .string(cleared.rawValue), in: &docs)
                }
            }
        }
        do {
            if let office, !office.isEmpty {
                try store.addSpaceMember(
                    space, SpaceMember(key: invitee.publicKey, office: office, addedBy: identity.publicKey, sinceEpoch: info.epoch))
            }
            info = try store.space(space) ?? info
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
    /// The space's documents and membership log arrive by sync (``receiveEnvelopes(space:_:)``).
    /// `localName` names the space on this node instead of the invitation's name (which must not
    /// be a name or id of a space this node already has).
    @discardableResult
    public func join(_ invitation: Invitation, as localName: String? = nil) throws(NodeError) -> SpaceInfo {
        guard role == .member else {
            throw NodeError(.refused, "a relay never holds space keys; carry the space instead (`saraban space carry`)")
        }
        let keys = try invitation.openKeys(with: identity)
        guard keys.values.contains(where: { $0.epoch == invitation.epoch }) else {
            throw NodeError(.invalidFile, "the invitation lacks the key of its current epoch; ask for a new invitation")
        }
        if let existing = try spaceInfo(invitation.space) {
            throw NodeError(
                .invalidArgument,
                "this node already carries space \(existing.name) (\(invitation.space.hex)); `saraban space list` shows it")
        }
        let name = localName?.trimmingCharacters(in: .whitespacesAndNewlines) ?? invitation.name
        do { try checkSpaceName(name, id: invitation.space) } catch {
            throw NodeError(error.code, error.message + "; join it under another name on this node: `saraban space join FILE --as NAME`")
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
                id: invitation.space, name: name.isEmpty ? invitation.name : name, role: .member, epoch: invitation.epoch,
                document: invitation.document, keys: keys, members: members, createdAt: now())
            // Seal with the newest key the invitation carried until the log says which is current.
            if let newest = keys.filter({ $0.value.epoch == invitation.epoch }).keys.sorted().first, case .committed = newest {
                try store.setSealingKey(invitation.space, ref: newest)
            }
        } catch { throw NodeError(error) }
        try recordInvitedClearance(invitation)
        logger.info("joined space", metadata: ["space": "\(invitation.space.hex)", "name": "\(invitation.name)"])
        return try resolveSpace(invitation.space.hex)
    }

    /// Removes `member` from the space and rotates its key, as ONE control change by this admin:
    /// the removal, the next epoch's key committed to and sealed to each remaining member. Everything
    /// written afterwards uses the new epoch, which the removed node cannot open. What it already
    /// had stays readable to it. Returns the new epoch.
    @discardableResult
    public func removeMember(space: SpaceID, member: NodeID) throws(NodeError) -> UInt32 {
        guard let info = try spaceInfo(space) else {
            throw NodeError(.unknownDocument, "this node carries no space \(space.hex)")
        }
        _ = try requireAdmin(info, to: "remove members")
        guard member.publicKey != identity.publicKey else {
            throw NodeError(.invalidArgument, "a node cannot remove itself; ask another admin to remove it")
        }
        guard info.members.contains(where: { $0.key == member.publicKey && $0.isActive }) else {
            throw NodeError(.unknownDocument, "\(member.text) is not a member of space \(info.name); `saraban space list` shows the members")
        }
        let epoch = try rotate(space, removing: [member])
        logger.info("removed a member and rotated the key", metadata: ["space": "\(space.hex)", "epoch": "\(epoch)"])
        return epoch
    }

    /// Writes a rekey for the next epoch (removing `removed`), sealed to every remaining member.
    @discardableResult
    func rotate(_ space: SpaceID, removing removed: [NodeID]) throws(NodeError) -> UInt32 {
        let roster: Roster
        do { roster = try store.roster(space) } catch { throw NodeError(error) }
        let r = roster.current
        guard let epoch = r.epoch, let parent = r.currentKey, let doc = try spaceInfo(space)?.document else {
            throw NodeError(.refused, "space \(space.hex) has no membership log yet")
        }
        let key = try newSymmetricKey()
        let gone = Set(removed.map(\.publicKey))
        var entries: [ControlEntry] = removed.map { .remove($0) }
        entries.append(.rekey(epoch: epoch + 1, parent: parent, commitment: KeyCommitment.commit(key)))
        for m in r.members.subtracting(gone).sorted(by: SigningPublicKey.precedes) {
            do {
                let box = try key.secret.withUnsafeBytes { k throws(CryptoError) in try SealedBox.seal(Array(k), to: m) }
                entries.append(.key(epoch: epoch + 1, m.nodeID, box: box))
            } catch {
                throw NodeError(.io, "cannot seal the new key to \(m.nodeID.text): \(error.message)")
            }
        }
        try writeControl(space, document: doc, entries)
        return epoch + 1
    }

    /// Makes `member` an admin of the space, or an admin a plain member again.
    public func setAdmin(space: SpaceID, member: NodeID, admin: Bool) throws(NodeError) {
        guard let info = try spaceInfo(space) else {
            throw NodeError(.unknownDocument, "this node carries no space \(space.hex)")
        }
        let a = try requireAdmin(info, to: "make admins")
        guard info.members.contains(where: { $0.key == member.publicKey && $0.isActive }) else {
            throw NodeError(.unknownDocument, "\(member.text) is not a member of space \(info.name)")
        }
        if !admin && a.admins == [member.publicKey] {
            throw NodeError(.refused, "\(member.text) is the space's only admin; make another member an admin first")
        }
        try writeControl(space, document: try ensureSpaceDocument(space), [.role(member, admin: admin)])
    }

    /// What an admin does on its own after a batch: rotates the key when a removed node still
    /// holds it (concurrent removals), and shares keys with members that lack them (a member
    /// added concurrently with a rekey). Returns whether it wrote anything.
    @discardableResult
    public func healAuthority(_ space: SpaceID) throws(NodeError) -> Bool {
        guard role == .member, let info = try spaceInfo(space), info.role == .member else { return false }
        let a = try authority(space)
        guard a.hasLog, a.admins.contains(identity.publicKey) else { return false }
        var wrote = false
        if !a.leakedTo.isEmpty {
            let epoch = try rotate(space, removing: [])
            logger.notice(
                "rotated the key: removed nodes still held it", metadata: ["space": "\(space.hex)", "epoch": "\(epoch)"])
            wrote = true
        }
        let shares = try authority(space).lacking
        if !shares.isEmpty, let doc = info.document {
            let keys: [KeyRef: (epoch: UInt32, key: SymmetricKey)]
            do { keys = try store.spaceKeys(space) } catch { throw NodeError(error) }
            var entries: [ControlEntry] = []
            for (m, refs) in shares.sorted(by: { SigningPublicKey.precedes($0.key, $1.key) }) {
                for ref in refs.sorted() {
                    guard let k = keys[ref] else { continue }
                    do {
                        let box = try k.key.secret.withUnsafeBytes { b throws(CryptoError) in try SealedBox.seal(Array(b), to: m) }
                        entries.append(.share(ref, m.nodeID, box: box))
                    } catch { continue }
                }
            }
            if !entries.isEmpty {
                try writeControl(space, document: doc, entries)
                wrote = true
            }
        }
        return wrote
    }

    /// Gives each space made before the membership log one, where this node is its creator:
    /// the creator writes the log's legacy genesis (itself as first admin, the members it knows
    /// with the legacy epochs they held, the relays designated), as a control change every node
    /// and relay can read. Run when the node opens; others follow when the change reaches them.
    public func upgradeSpaces() {
        guard role == .member, let ids = try? store.memberSpacesWithoutLog(), !ids.isEmpty else { return }
        for id in ids {
            // A space of this version whose log is left for later (the default space) waits.
            guard ((try? store.setting(Self.saltKey(id))) ?? nil) == nil, let info = try? spaceInfo(id) else { continue }
            do { try upgradeSpace(info) } catch {
                logger.warning("could not give a space its membership log", metadata: ["space": "\(info.id.hex)", "error": "\(error)"])
            }
        }
    }

    func upgradeSpace(_ info: SpaceInfo) throws(NodeError) {
        guard try !authority(info.id).hasLog else { return }
        let isCreator = info.document.map { $0.op.replica == replica } ?? info.isDefault
        guard isCreator, info.members.contains(where: { $0.key == identity.publicKey && $0.isActive }) else { return }
        let me = identity.publicKey.nodeID
        if info.epoch == 0, let saltHex = (try? store.setting(Self.saltKey(info.id))) ?? nil, let salt = Hex.decode(saltHex),
            SpaceBinding.spaceID(creator: identity.publicKey, salt: salt) == info.id,
            let key = (try? store.spaceKeys(info.id))?.values.first(where: { $0.epoch == 0 })?.key
        {
            // A space of this version whose log was left for later (the default space).
            let genesis = ControlEntry.genesis(creator: me, commitment: KeyCommitment.commit(key), salt: salt)
            var entries: [ControlEntry] = [genesis]
            for m in info.members where m.isActive && m.key != identity.publicKey {
                entries.append(.add(m.nodeID, admin: false, keys: [KeyCommitment.ref(of: key)]))
            }
            let existing = info.document
            try edit(in: info.id) { tx, docs in
                let doc = try existing ?? tx.createDocument(kind: SpaceDocument.kind, in: &docs)
                for e in entries { try tx.append(doc, field: ControlEntry.field, value: e.text, in: &docs) }
            }
            return
        }
        let legacyEpoch = info.epoch
        var entries: [ControlEntry] = [.genesisLegacy(creator: me, epoch: legacyEpoch)]
        for m in info.members where m.key != identity.publicKey {
            let last = m.removedEpoch.map { $0 == 0 ? nil : $0 - 1 } ?? legacyEpoch
            guard let last, m.sinceEpoch <= last else { continue }
            let refs = (m.sinceEpoch...last).map { KeyRef.legacy($0) }
            // A former member keeps the right to the epochs it held (its old envelopes stay valid).
            entries.append(m.isActive ? .add(m.nodeID, admin: false, keys: refs) : .former(m.nodeID, keys: refs))
        }
        for r in designatedRelays(info.id, document: spaceDocument(info)).sorted(by: { $0.text < $1.text }) {
            entries.append(.relay(r, add: true))
        }
        let existing = info.document
        try edit(in: info.id) { tx, docs in
            let doc = try existing ?? tx.createDocument(kind: SpaceDocument.kind, in: &docs)
            for e in entries { try tx.append(doc, field: ControlEntry.field, value: e.text, in: &docs) }
        }
        logger.notice("gave a space its membership log (this node is its first admin)", metadata: ["space": "\(info.id.hex)"])
    }

    /// On a relay: starts carrying `space` (storing and forwarding its envelopes without a key).
    /// `creator` pins the node whose legacy genesis the relay accepts (spaces made before the
    /// membership log; a new space's id already names its creator).
    public func carry(space: SpaceID, name: String? = nil, creator: NodeID? = nil) throws(NodeError) {
        guard role == .relay else {
            throw NodeError(.refused, "only a relay carries spaces it is not a member of; members join by invitation")
        }
        do {
            try store.addSpace(id: space, name: name ?? space.hex, role: .relay, createdAt: now())
            if let creator { try store.setSetting("space.\(space.hex).creator", creator.text) }
        } catch {
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
            if !r.refusedChanges.isEmpty {
                logger.warning(
                    "refused changes (logged with no effect)",
                    metadata: [
                        "space": "\(space.hex)", "refused": "\(r.refusedChanges.count)",
                        "first": "\(r.refusedChanges[0].change): \(r.refusedChanges[0].reason)",
                    ])
            }
            if !r.held.isEmpty {
                logger.info(
                    "held envelopes until their authors are admitted or their keys arrive",
                    metadata: ["space": "\(space.hex)", "held": "\(r.held.count)", "first": "\(r.held[0].reason)"])
            }
            // An admin mends what the batch revealed: a removed node holding the current key, a
            // member lacking one.
            if role == .member, r.accepted.contains(where: { $0.header.epoch == ControlEntry.publicEpoch }) {
                do { try healAuthority(space) } catch {
                    logger.warning("could not rotate or share the space's key", metadata: ["space": "\(space.hex)", "error": "\(error)"])
                }
            }
            return r
        } catch let error as NodeError {
            throw error
        } catch let error as StorageError {
            throw NodeError(error)
        } catch {
            throw NodeError(.io, "\(error)")
        }
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

    /// Changes when a space is created, joined or left (by any process on this data directory),
    /// which ``changeProbe()`` does not show until an envelope is stored.
    public func spacesProbe() throws(NodeError) -> String {
        do { return try store.spacesFingerprint() } catch { throw NodeError(error) }
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
