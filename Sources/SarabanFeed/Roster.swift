import SarabanCore
import SarabanCrypto

/// One control change as the roster sees it: who made it, what it had seen, what it says.
public struct ControlChange: Sendable {
    public var id: ChangeID { past.change }
    /// The author's full key (the envelope's author).
    public var author: SigningPublicKey
    /// The change's identity and causal past (``ChangeContext/includes(_:)``).
    public var past: ChangeContext
    public var entries: [ControlEntry]

    public init(author: SigningPublicKey, past: ChangeContext, entries: [ControlEntry]) {
        self.author = author
        self.past = past
        self.entries = entries
    }

    /// The control entries of `change` appended to `document`'s log (nil when it appends none);
    /// `malformed` is set when a line does not parse.
    public static func entries(of change: Change, document: DocID) -> (entries: [ControlEntry], malformed: Bool)? {
        var out: [ControlEntry] = []
        var malformed = false
        for op in change.ops {
            guard case .listAppend(let d, let f, let v) = op, d == document, f == ControlEntry.field else { continue }
            if let e = ControlEntry(parsing: v) { out.append(e) } else { malformed = true }
        }
        return out.isEmpty && !malformed ? nil : (out, malformed)
    }
}

/// Why a control change was refused (it then has no effect anywhere).
public struct ControlRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The membership of one space: who may write, who administers it, which epoch key is current
/// and who holds which key, folded from the space's control changes.
///
/// **The rule.** A control change is judged once, against the roster of its own causal past
/// (the control changes its author had seen): it must come from an admin of that past and
/// follow the entry rules (``ControlEntry``). Since a change's past never changes, neither does
/// its verdict: every node that holds the same changes holds the same roster, whatever order
/// they arrived in. Within the accepted changes, membership, admin rights and relay designations
/// are add-wins observed-remove sets (a removal voids the additions its author had seen).
///
/// **Admins ousting each other.** Two changes, each valid in its own past, can remove (or
/// demote) each other's authors concurrently; applied both, they would leave the space without
/// an admin for good. So among concurrent changes that oust each other's authors, the one whose
/// author has the smaller replica id (the order that already picks an epoch's key among
/// concurrent rekeys) stands, and the other is **void**: its entries are not applied, except
/// that its key stays known for opening what was sealed with it (never an epoch's key). Authors
/// are taken in that order, so a cycle (a ousts b, b ousts c, c ousts a) leaves an admin too.
/// Void is computed from the accepted changes alone, so every node holding them agrees.
///
/// **Keys.** Each rekey names the next epoch and the key it follows (its parent). Concurrent
/// rekeys for one epoch are all kept for opening what was sealed with them, but only one is the
/// epoch's key: among the rekeys whose parent is the previous epoch's key, the one made by the
/// smallest change id (author, then sequence). A node seals with the latest epoch's key, and not
/// at all while that key is also held by someone no longer a member (``leakedTo``): an admin then
/// rekeys again, sealed to the current members only.
public struct Roster: Sendable {
    /// The state folded from a set of accepted control changes.
    public struct State: Sendable {
        public internal(set) var creator: SigningPublicKey?
        /// For a space made before the log: its epochs 0…legacyEpoch have no commitments.
        public internal(set) var legacyEpoch: UInt32?
        /// Live addition tags per node (a member has at least one).
        var memberTags: [SigningPublicKey: Set<ChangeID>] = [:]
        var adminTags: [SigningPublicKey: Set<ChangeID>] = [:]
        var relayTags: [SigningPublicKey: Set<ChangeID>] = [:]
        /// Every key: its epoch, its commitment (nil for legacy) and the rekey that made it.
        public internal(set) var keys: [KeyRef: KeyInfo] = [:]
        /// Who holds each key (rekey recipients, shares, what invitations carried).
        public internal(set) var holders: [KeyRef: Set<SigningPublicKey>] = [:]
        /// Boxes sealed to members: key, recipient, box, and the change that carried it.
        public internal(set) var boxes: [Box] = []
        /// The key of each epoch, index = epoch.
        public internal(set) var canonical: [KeyRef] = []
        /// The node that wrote each member's first still-live addition, and when it joined (epoch).
        public internal(set) var joined: [SigningPublicKey: UInt32] = [:]
        /// Accepted changes that lost to a concurrent change ousting their author (``Roster``,
        /// "Admins ousting each other"): not applied, their keys never an epoch's.
        public internal(set) var void: Set<ChangeID> = []

        public struct KeyInfo: Hashable, Sendable {
            public var epoch: UInt32
            public var commitment: [UInt8]?
            public var parent: KeyRef?
            public var by: ChangeID?
        }

        public struct Box: Hashable, Sendable {
            public var key: KeyRef
            public var member: SigningPublicKey
            public var box: [UInt8]
            public var by: ChangeID
        }

        public var members: Set<SigningPublicKey> { Set(memberTags.keys) }
        public var admins: Set<SigningPublicKey> { Set(adminTags.keys).intersection(memberTags.keys) }
        public var relays: Set<SigningPublicKey> { Set(relayTags.keys) }
        public var hasGenesis: Bool { creator != nil }

        /// The current epoch (the last with a key), nil before the genesis.
        public var epoch: UInt32? { canonical.isEmpty ? nil : UInt32(canonical.count - 1) }
        public var currentKey: KeyRef? { canonical.last }

        public func isMember(_ n: SigningPublicKey) -> Bool { memberTags[n] != nil }
        public func isAdmin(_ n: SigningPublicKey) -> Bool { memberTags[n] != nil && adminTags[n] != nil }

        /// The epochs `author` may write in: those of every key it legitimately received. A
        /// node removed at a rekey receives no later key, so it has no right in later epochs. A key
        /// made by a void change grants no right (its recipients only open what it sealed).
        public func rights(of author: SigningPublicKey) -> Set<UInt32> {
            var out = Set<UInt32>()
            for (k, hs) in holders where hs.contains(author) && grants(k) { if let e = keys[k]?.epoch { out.insert(e) } }
            return out
        }

        public func mayWrite(_ author: SigningPublicKey, epoch: UInt32) -> Bool {
            holders.contains { k, hs in hs.contains(author) && keys[k]?.epoch == epoch && grants(k) }
        }

        /// Whether holding key `k` is a right to write in its epoch (not made by a void change).
        func grants(_ k: KeyRef) -> Bool {
            guard let by = keys[k]?.by else { return keys[k] != nil }
            return !void.contains(by)
        }

        /// Non-members holding the current key: while not empty, nobody should seal with it.
        public var leakedTo: Set<SigningPublicKey> {
            guard let k = currentKey else { return [] }
            return (holders[k] ?? []).subtracting(memberTags.keys)
        }

        /// Members that lack a key that matters to them: the current key, and any other key of an
        /// epoch since they joined (sealed by a concurrent rekey they were not given).
        public var lacking: [(member: SigningPublicKey, key: KeyRef)] {
            var out: [(SigningPublicKey, KeyRef)] = []
            for m in memberTags.keys.sorted(by: SigningPublicKey.precedes) {
                let since = joined[m] ?? 0
                for (k, info) in keys.sorted(by: { $0.key < $1.key }) where info.epoch >= since && info.commitment != nil {
                    if !(holders[k]?.contains(m) ?? false) { out.append((m, k)) }
                }
            }
            return out
        }

        /// Applies an accepted change (changes must come in a causal order).
        mutating func apply(_ c: ControlChange) {
            func voidTags(_ tags: inout [SigningPublicKey: Set<ChangeID>], _ n: SigningPublicKey) {
                guard var t = tags[n] else { return }
                t = t.filter { !c.past.includes($0) }
                tags[n] = t.isEmpty ? nil : t
            }
            let epochNow = epoch ?? 0
            // A void change keeps only what opens what was sealed with its key.
            let isVoid = void.contains(c.id)
            for e in c.entries {
                if isVoid {
                    switch e {
                    case .rekey, .key: break
                    default: continue
                    }
                }
                switch e {
                case .genesis(let n, let commitment, _):
                    creator = n.publicKey
                    let k = KeyCommitment.ref(commitment)
                    keys[k] = KeyInfo(epoch: 0, commitment: commitment, parent: nil, by: c.id)
                    holders[k, default: []].insert(n.publicKey)
                    memberTags[n.publicKey, default: []].insert(c.id)
                    adminTags[n.publicKey, default: []].insert(c.id)
                    joined[n.publicKey] = 0
                case .genesisLegacy(let n, let epoch):
                    creator = n.publicKey
                    legacyEpoch = epoch
                    for e in 0...epoch {
                        keys[.legacy(e)] = KeyInfo(epoch: e, commitment: nil, parent: e == 0 ? nil : .legacy(e - 1), by: c.id)
                        holders[.legacy(e), default: []].insert(n.publicKey)
                    }
                    memberTags[n.publicKey, default: []].insert(c.id)
                    adminTags[n.publicKey, default: []].insert(c.id)
                    joined[n.publicKey] = 0
                case .add(let n, let admin, let ks):
                    if memberTags[n.publicKey] == nil { joined[n.publicKey] = epochNow }
                    memberTags[n.publicKey, default: []].insert(c.id)
                    if admin { adminTags[n.publicKey, default: []].insert(c.id) }
                    for k in ks { holders[k, default: []].insert(n.publicKey) }
                case .former(let n, let ks):
                    for k in ks { holders[k, default: []].insert(n.publicKey) }
                case .remove(let n):
                    voidTags(&memberTags, n.publicKey)
                    voidTags(&adminTags, n.publicKey)
                    if memberTags[n.publicKey] == nil { joined[n.publicKey] = nil }
                case .role(let n, let admin):
                    if admin { adminTags[n.publicKey, default: []].insert(c.id) } else { voidTags(&adminTags, n.publicKey) }
                case .rekey(let epoch, let parent, let commitment):
                    keys[KeyCommitment.ref(commitment)] = KeyInfo(epoch: epoch, commitment: commitment, parent: parent, by: c.id)
                case .key(_, let n, let box):
                    if let k = Self.rekeyRef(c) {
                        holders[k, default: []].insert(n.publicKey)
                        boxes.append(Box(key: k, member: n.publicKey, box: box, by: c.id))
                    }
                case .share(let k, let n, let box):
                    holders[k, default: []].insert(n.publicKey)
                    boxes.append(Box(key: k, member: n.publicKey, box: box, by: c.id))
                case .relay(let n, let add):
                    if add { relayTags[n.publicKey, default: []].insert(c.id) } else { voidTags(&relayTags, n.publicKey) }
                }
            }
            recomputeCanonical()
        }

        static func rekeyRef(_ c: ControlChange) -> KeyRef? {
            for e in c.entries { if case .rekey(_, _, let commitment) = e { return KeyCommitment.ref(commitment) } }
            return nil
        }

        mutating func recomputeCanonical() {
            canonical = []
            if let l = legacyEpoch {
                canonical = (0...l).map { .legacy($0) }
            } else if let g = keys.first(where: { $0.value.epoch == 0 && $0.value.parent == nil && $0.value.commitment != nil }) {
                canonical = [g.key]
            } else {
                return
            }
            while true {
                let next = UInt32(canonical.count)
                let parent = canonical.last!
                let best = keys.filter {
                    $0.value.epoch == next && $0.value.parent == parent && $0.value.by.map { !void.contains($0) } ?? false
                }
                    .min { ($0.value.by!.author, $0.value.by!.seq) < ($1.value.by!.author, $1.value.by!.seq) }
                guard let best else { return }
                canonical.append(best.key)
            }
        }
    }

    /// The space the roster belongs to (a genesis must bind to it).
    public let space: SpaceID
    /// For a space made before the log: the creator's replica (from the membership document's
    /// id), the only author whose legacy genesis is valid. nil: no legacy genesis is accepted
    /// unless ``trustFirstLegacyGenesis`` (a relay with no pin).
    public var legacyCreator: ReplicaID?
    public var trustFirstLegacyGenesis = false

    /// Accepted control changes, in the order applied (a causal order).
    public private(set) var accepted: [ControlChange] = []
    private var acceptedIDs = Set<ChangeID>()
    public private(set) var refused: [ChangeID: ControlRefusal] = [:]
    /// The roster of every accepted change.
    public private(set) var current = State()

    public init(space: SpaceID, legacyCreator: ReplicaID? = nil) {
        self.space = space
        self.legacyCreator = legacyCreator
    }

    /// The nodes `c` removes or demotes.
    static func ousts(_ c: ControlChange) -> Set<SigningPublicKey> {
        var out = Set<SigningPublicKey>()
        for e in c.entries {
            switch e {
            case .remove(let n): out.insert(n.publicKey)
            case .role(let n, let admin) where !admin: out.insert(n.publicKey)
            default: break
            }
        }
        return out
    }

    /// The changes of `changes` (accepted, in a causal order) that are void: taking authors by
    /// replica id, a change is void when a concurrent change not void, by an author with a
    /// smaller id, ousts its author.
    static func voided(_ changes: [ControlChange]) -> Set<ChangeID> {
        let ousting = changes.compactMap { c -> (ControlChange, Set<SigningPublicKey>)? in
            let o = ousts(c)
            return o.isEmpty ? nil : (c, o)
        }
        guard ousting.count > 1 else { return [] }
        let ordered = ousting.sorted { ($0.0.id.author, $0.0.id.seq) < ($1.0.id.author, $1.0.id.seq) }
        var void = Set<ChangeID>()
        var standing: [(ControlChange, Set<SigningPublicKey>)] = []
        for (c, o) in ordered {
            let beaten = standing.contains { d, ousted in
                d.id.author < c.id.author && ousted.contains(c.author) && !c.past.includes(d.id) && !d.past.includes(c.id)
            }
            if beaten { void.insert(c.id) } else { standing.append((c, o)) }
        }
        return void
    }

    /// The roster of `changes` (accepted, in a causal order).
    static func fold(_ changes: [ControlChange]) -> State {
        var s = State()
        s.void = voided(changes)
        for c in changes { s.apply(c) }
        return s
    }

    /// Records an accepted change: applied to ``current``, or everything folded again when it
    /// ousts someone (it may void, or be voided by, a change already applied).
    private mutating func append(_ c: ControlChange) {
        accepted.append(c)
        acceptedIDs.insert(c.id)
        if Self.ousts(c).isEmpty {
            current.apply(c)
        } else {
            current = Self.fold(accepted)
        }
    }

    /// Judges and, if valid, applies a control change. Changes must arrive in a causal order
    /// (a change after everything in its past); judging again a known change does nothing.
    @discardableResult
    public mutating func receive(_ c: ControlChange) -> ControlRefusal? {
        if let r = refused[c.id] { return r }
        if acceptedIDs.contains(c.id) { return nil }
        if let r = judge(c, past: state(inPastOf: c.past)) {
            refused[c.id] = r
            return r
        }
        append(c)
        return nil
    }

    /// Puts back a change judged earlier (a store reloading its log): no judging again.
    public mutating func restore(_ c: ControlChange, refusal: ControlRefusal?) {
        if let refusal {
            refused[c.id] = refusal
        } else {
            append(c)
        }
    }

    /// The roster in the causal past of `ctx` (the current one when that past holds every
    /// accepted change).
    public func state(inPastOf ctx: ChangeContext) -> State {
        if accepted.allSatisfy({ ctx.includes($0.id) }) { return current }
        return Self.fold(accepted.filter { ctx.includes($0.id) })
    }

    /// Why `c` is not a valid control change given the roster `p` of its causal past; nil if it is.
    public func judge(_ c: ControlChange, past p: State) -> ControlRefusal? {
        let author = c.author
        var adds: [SigningPublicKey: Bool] = [:]
        var removes = Set<SigningPublicKey>()
        var rekey: (epoch: UInt32, parent: KeyRef, commitment: [UInt8])?
        var keyEntries: [(epoch: UInt32, node: SigningPublicKey)] = []
        var roles: [(SigningPublicKey, Bool)] = []
        var genesis = false
        var genesisKeys = Set<KeyRef>()
        for e in c.entries {
            switch e {
            case .genesis(let n, let commitment, let salt):
                genesisKeys.insert(KeyCommitment.ref(commitment))
                guard !p.hasGenesis, !genesis else { return ControlRefusal("the space already has a genesis") }
                guard n.publicKey == author else { return ControlRefusal("a genesis must name its own author as creator") }
                guard SpaceBinding.spaceID(creator: author, salt: salt) == space else {
                    return ControlRefusal("the genesis does not bind to space \(space.hex): another node's genesis")
                }
                genesis = true
            case .genesisLegacy(let n, let epoch):
                for e in 0...epoch { genesisKeys.insert(.legacy(e)) }
                guard !p.hasGenesis, !genesis else { return ControlRefusal("the space already has a genesis") }
                guard n.publicKey == author else { return ControlRefusal("a genesis must name its own author as creator") }
                guard legacyCreator.map({ $0 == ReplicaID(bytes: author.rawRepresentation) }) ?? trustFirstLegacyGenesis else {
                    return ControlRefusal("only the space's creator may write its genesis")
                }
                genesis = true
            case .add(let n, let admin, let ks):
                guard !p.isMember(n.publicKey), adds[n.publicKey] == nil else {
                    return ControlRefusal("\(n) is already a member")
                }
                for k in ks where p.keys[k] == nil && !genesisKeys.contains(k) {
                    return ControlRefusal("\(n) is said to hold key \(k), which the space does not have")
                }
                adds[n.publicKey] = admin
            case .former(_, let ks):
                guard genesis, ks.allSatisfy({ $0.isLegacy && genesisKeys.contains($0) }) else {
                    return ControlRefusal("a former member is listed only in a legacy genesis, with legacy keys")
                }
            case .remove(let n):
                guard p.isMember(n.publicKey) else { return ControlRefusal("\(n) is not a member") }
                guard n.publicKey != author else { return ControlRefusal("an admin cannot remove itself") }
                removes.insert(n.publicKey)
            case .role(let n, let admin):
                guard p.isMember(n.publicKey) || adds[n.publicKey] != nil else { return ControlRefusal("\(n) is not a member") }
                roles.append((n.publicKey, admin))
            case .rekey(let epoch, let parent, let commitment):
                guard rekey == nil else { return ControlRefusal("one change makes at most one rekey") }
                rekey = (epoch, parent, commitment)
            case .key(let epoch, let n, _):
                keyEntries.append((epoch, n.publicKey))
            case .share(let k, let n, _):
                guard p.keys[k] != nil else { return ControlRefusal("key \(k) is not a key of the space") }
                guard p.holders[k]?.contains(author) ?? false else { return ControlRefusal("the author does not hold key \(k)") }
                guard p.isMember(n.publicKey) || adds[n.publicKey] != nil else { return ControlRefusal("\(n) is not a member") }
            case .relay:
                break
            }
        }
        if genesis {
            // The genesis change may also list the members and relays a legacy space already had.
            if rekey != nil || !removes.isEmpty || !keyEntries.isEmpty {
                return ControlRefusal("a genesis change may not rekey or remove")
            }
            return nil
        }
        guard p.hasGenesis else { return ControlRefusal("the space has no genesis yet in this change's past") }
        guard p.isAdmin(author) else {
            return ControlRefusal("\(author) was not an admin of the space in this change's past: only admins change membership")
        }
        if !removes.isEmpty && rekey == nil { return ControlRefusal("a removal must come with a rekey") }
        if !keyEntries.isEmpty && rekey == nil { return ControlRefusal("key entries come only with a rekey") }
        if let r = rekey {
            guard let current = p.currentKey, let epoch = p.epoch else { return ControlRefusal("the space has no key yet") }
            guard r.epoch == epoch + 1, r.parent == current else {
                return ControlRefusal(
                    "a rekey must make the epoch after its past's (\(epoch) → \(epoch + 1), after key \(current)); this one makes \(r.epoch) after \(r.parent)")
            }
            let recipients = p.members.union(adds.keys).subtracting(removes)
            let sealed = keyEntries.map(\.node)
            guard keyEntries.allSatisfy({ $0.epoch == r.epoch }), Set(sealed).count == sealed.count,
                Set(sealed) == recipients
            else {
                return ControlRefusal("a rekey must seal its key to exactly the remaining members, once each")
            }
        }
        var admins = p.admins.subtracting(removes)
        for (n, admin) in adds where admin { admins.insert(n) }
        for (n, admin) in roles { if admin { admins.insert(n) } else { admins.remove(n) } }
        if admins.isEmpty { return ControlRefusal("the space would be left without an admin") }
        return nil
    }
}

extension KeyRef {
    var isLegacy: Bool { if case .legacy = self { true } else { false } }
}
