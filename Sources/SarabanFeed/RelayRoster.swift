import SarabanCore
import SarabanCrypto

extension ControlChange {
    /// `c` as a control change of `document` written by `author`: nil unless it appends control
    /// entries that all parse and holds nothing else (the only shape a control change may take).
    public static func parse(_ c: Change, document: DocID, author: SigningPublicKey) -> ControlChange? {
        guard let (entries, malformed) = entries(of: c, document: document), !malformed, onlyControl(c, document: document)
        else { return nil }
        return ControlChange(author: author, past: ChangeContext(c), entries: entries)
    }

    /// The membership document a genesis change creates (the document of its `genesis` or
    /// `genesis-legacy` entry), nil for any other change.
    public static func genesisDocument(_ c: Change) -> DocID? {
        for op in c.ops {
            if case .listAppend(let d, ControlEntry.field, let v) = op, v.hasPrefix("genesis") { return d }
        }
        return nil
    }

    /// Whether `c` holds nothing but control entries of `document` (and, in a genesis, the
    /// document's creation): the only shape a control change may take.
    public static func onlyControl(_ c: Change, document: DocID) -> Bool {
        c.identifiedOps.allSatisfy { id, op in
            switch op {
            case .createDocument(let kind): DocID(id) == document && kind == "space"
            case .listAppend(let d, let f, _): d == document && f == ControlEntry.field
            default: false
            }
        }
    }
}

extension ControlEntry {
    /// A `genesis` or `genesis-legacy` entry.
    public var isGenesis: Bool {
        switch self {
        case .genesis, .genesisLegacy: true
        default: false
        }
    }
}

extension Roster.State {
    /// Why this roster does not admit an envelope with header `h` in `space` (nil: it does, or
    /// there is no genesis yet). A control envelope only from someone who has been a member,
    /// any other only from a holder of its epoch's key (a node removed at a rekey holds no
    /// later key). Members and relays apply the same rule.
    public func refusal(of h: EnvelopeHeader, in space: SpaceID) -> String? {
        guard hasGenesis else { return nil }
        if h.epoch == ControlEntry.publicEpoch {
            return creator == h.author || !rights(of: h.author).isEmpty
                ? nil : "\(h.author) has never been a member of space \(space.hex)"
        }
        return mayWrite(h.author, epoch: h.epoch)
            ? nil : "\(h.author) received no key of epoch \(h.epoch) of space \(space.hex) from an admin"
    }
}

extension Roster {
    /// Judges, in a causal order, every change of `pending` whose whole causal past is held
    /// (`held(replica)`: the last sequence held of that replica) and no other pending change is in
    /// its past; removes them from `pending` and returns each with its verdict (nil: accepted).
    /// The rest wait for their past. A relay judges this way, so it judges each change from the
    /// same past as the members.
    public mutating func receiveReady(
        _ pending: inout [ControlChange], held: (ReplicaID) -> UInt64
    ) -> [(change: ControlChange, refusal: ControlRefusal?)] {
        var out: [(ControlChange, ControlRefusal?)] = []
        var progress = true
        while progress {
            progress = false
            for (i, c) in pending.enumerated().reversed() {
                let ready = c.past.deps.entries.allSatisfy { held($0.key) >= $0.value }
                    && !pending.contains { $0.id != c.id && c.past.includes($0.id) }
                guard ready else { continue }
                out.append((c, receive(c)))
                pending.remove(at: i)
                progress = true
            }
        }
        return out
    }
}

/// One space's membership as a relay knows it, folded from the control envelopes it stores, and
/// the two decisions a relay makes from it (Docs/SECURITY.md, "Relays"): whose envelopes it
/// stores (``refusal(_:)``) and to whom it serves the space (``serves(_:)``).
///
/// A relay holds no key of the space, but control envelopes are sealed with the space's public
/// ``ControlKey``: it opens them, reads their control changes and judges each with ``Roster``
/// once it holds the change's whole causal past, so it judges from the same past as every member
/// and reaches the same roster from the same envelopes, in any order. Reading an envelope again
/// changes nothing. Until a genesis arrives the space is open (served to every trusted peer,
/// every verified envelope stored), as for a space made before membership logs.
public struct RelayRoster: Sendable {
    public let space: SpaceID
    public private(set) var roster: Roster
    /// The space's membership document (named by its accepted genesis), nil before one is accepted.
    public private(set) var document: DocID?
    /// Control changes read whose causal past is not all held yet.
    public private(set) var pending: [ControlChange] = []
    private var seen: Set<ChangeID> = []
    /// Changes of control envelopes read before a genesis was accepted (which names the
    /// membership document).
    private var unplaced: [(Change, SigningPublicKey)] = []
    /// The document each queued, not yet judged genesis names.
    private var genesisDocuments: [ChangeID: DocID] = [:]
    /// At most this many changes are kept aside before a genesis (the rest are ignored: only a
    /// member could have written them, and it needs the genesis first).
    public static let maximumUnplaced = 4096

    public init(space: SpaceID) {
        self.space = space
        roster = Roster(space: space)
        // No operator pin on this path: the first legacy genesis a trusted peer brings is taken,
        // as a relay on SQLite without `space carry --creator` takes it.
        roster.trustFirstLegacyGenesis = true
    }

    /// Reads the control changes of `e` (an envelope the store holds, signature and chain
    /// verified) and judges every waiting change whose causal past `held` covers. Envelopes of
    /// other epochs, and control changes that do not parse, are ignored (members refuse them).
    /// Returns whether the roster changed.
    ///
    /// `held` must not cover a control envelope not read yet: a change is judged against the
    /// control changes read, so one judged before a change of its past is read would be judged
    /// from a past without it. Read every control envelope of a batch (``queue(_:)``) before
    /// judging with the vector that covers the batch.
    @discardableResult
    public mutating func read(_ e: Envelope, held: FeedVector) -> Bool {
        queue(e)
        return judgeReady(held: held)
    }

    /// Reads the control changes of `e` without judging them (``judgeReady(held:)`` does).
    public mutating func queue(_ e: Envelope) {
        guard e.header.epoch == ControlEntry.publicEpoch, e.header.spaceID == space.bytes,
            let opened = try? EnvelopePayload.open(e, key: ControlKey.key(for: space))
        else { return }
        for c in opened.changes where !seen.contains(c.id) {
            seen.insert(c.id)
            place(c, author: e.header.author)
        }
    }

    /// Queues `c` when it is a control change of the space's membership document. Before a
    /// genesis is accepted the document is unknown: a genesis is queued under the document it
    /// names (it becomes the space's only if the roster accepts it, so an outsider's forged
    /// genesis, refused, cannot capture the space), and any other change is kept aside.
    private mutating func place(_ c: Change, author: SigningPublicKey) {
        if let document {
            if let cc = ControlChange.parse(c, document: document, author: author) { pending.append(cc) }
            return
        }
        if let doc = ControlChange.genesisDocument(c), let cc = ControlChange.parse(c, document: doc, author: author),
            cc.entries.contains(where: \.isGenesis)
        {
            pending.append(cc)
            genesisDocuments[cc.id] = doc
            return
        }
        if unplaced.count < Self.maximumUnplaced { unplaced.append((c, author)) }
    }

    /// Judges the waiting changes whose causal past `held` now covers; returns whether the roster
    /// changed. Once a genesis is accepted, the changes kept aside are placed and judged too.
    @discardableResult
    public mutating func judgeReady(held: FeedVector) -> Bool {
        var byReplica: [ReplicaID: UInt64] = [:]
        for (author, seq) in held.entries { byReplica[ReplicaID(bytes: author.rawRepresentation)] = seq }
        var changed = false
        while !pending.isEmpty {
            let judged = roster.receiveReady(&pending) { byReplica[$0] ?? 0 }
            changed = changed || judged.contains { $0.refusal == nil }
            guard document == nil,
                let accepted = judged.first(where: { $0.refusal == nil && genesisDocuments[$0.change.id] != nil })
            else { break }
            document = genesisDocuments[accepted.change.id]
            genesisDocuments = [:]
            // Other genesis changes still waiting (under other documents) cannot be the space's.
            pending.removeAll { $0.entries.contains(where: \.isGenesis) }
            let waiting = unplaced
            unplaced = []
            for (c, author) in waiting { place(c, author: author) }
        }
        return changed
    }

    /// Why the roster does not admit an envelope with header `h` (nil: it does). With a genesis:
    /// a control envelope only from someone who has been a member, any other only from a holder
    /// of its epoch's key (a node removed at a rekey holds no later key).
    public func refusal(_ h: EnvelopeHeader) -> String? { roster.current.refusal(of: h, in: space) }

    /// Whether the space may be served to `peer`: before a genesis, to every trusted peer; after,
    /// only to its active members and the relays its admins designated.
    public func serves(_ peer: SigningPublicKey) -> Bool {
        let r = roster.current
        guard r.hasGenesis else { return true }
        return r.isMember(peer) || r.relays.contains(peer)
    }
}
