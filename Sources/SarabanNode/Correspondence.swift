import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
import SarabanSync

// Correspondence between offices (issue 14; Docs/ESARABAN.md): a letter is drafted, registered and
// signed in the office's own space (its workspace, the node's default space); `send` publishes a
// sealed DISPATCH in an exchange space shared with the recipients; they see it in their inbox,
// take it in (`receive`: their own record and receive number) or send it back (`returnDispatch`),
// and a sealed RECEIPT goes back, which the sender's record shows. Nobody can change or delete a
// dispatch or a receipt (SarabanCore/Ownership.swift: created with no owner), and each office's
// record of a letter lives in its own workspace, which no other office holds.

/// An office known to this node (`saraban office list`): from the rosters of the exchange spaces it
/// shares with this node and from the dispatches it sent.
public struct OfficeEntry: Sendable, Hashable {
    /// The office's name, as the rosters or its dispatches give it ("" when no one named it).
    public var office: String
    /// Its letter code, when a letter from it gave it.
    public var code: String
    public var nodes: [NodeID]
    /// The exchange spaces this node shares with it, and its active member nodes in each.
    public var spaces: [SharedSpace]

    public struct SharedSpace: Sendable, Hashable {
        public var id: SpaceID
        public var name: String
        public var nodes: [NodeID]
    }

    /// The office's name, or its first node's id when unnamed.
    public var label: String { office.isEmpty ? (nodes.first?.text ?? "?") : office }
}

/// A dispatch this node opened with its box: the letter as sent.
public struct OpenedDispatch: Sendable {
    public var id: DocID
    public var space: SpaceID
    public var from: NodeID
    public var office: String
    public var to: [NodeID]
    /// Every node the dispatch key was sealed to.
    public var boxes: [NodeID]
    public var sent: Int64
    public var urgency: Urgency
    public var letter: SentLetter
}

/// A dispatch waiting for this office (`saraban letter inbox`).
public struct InboxItem: Sendable {
    public var dispatch: OpenedDispatch
    public var spaceName: String

    public init(dispatch: OpenedDispatch, spaceName: String) {
        self.dispatch = dispatch
        self.spaceName = spaceName
    }
}

/// One dispatch written by ``Correspondence/send(_:to:circular:reserved:)``.
public struct DispatchSent: Sendable, Hashable {
    public var id: DocID
    public var space: SpaceID
    public var spaceName: String
    public var offices: [String]
    /// Found already published (a repeated send): nothing new was written.
    public var existing: Bool
}

/// What ``Correspondence/send(_:to:circular:reserved:)`` did.
public struct SendResult: Sendable {
    public var allocation: Allocation
    public var letterNumber: String
    public var status: LetterStatus
    public var dispatches: [DispatchSent]
}

/// What `letter receive` or `letter intake` did.
public struct ReceiveResult: Sendable {
    /// This office's record of the letter (in its workspace).
    public var record: DocID
    public var allocation: Allocation
    /// True when the dispatch had been received before: nothing new was written.
    public var existing: Bool
    /// The receipt this call published (nil when none was written: paper intake, or received before).
    public var receipt: DocID? = nil
}

/// Where a dispatched letter stands at one recipient office, from its receipt.
public struct DeliveryStatus: Sendable, Hashable {
    public enum State: Sendable, Hashable {
        case pending
        case received(number: Int, year: Int, date: String, time: String)
        case returned(reason: String, date: String, time: String)
    }

    public var delivery: Delivery
    public var state: State
    /// The receiving node's signature on its receipt verified (false: a receipt that failed its checks).
    public var receiptValid: Bool
}

/// Correspondence between offices over one node: the office directory, dispatch, inbox, receive,
/// return and paper intake.
public struct Correspondence: Sendable {
    public let node: Node

    public init(_ node: Node) { self.node = node }

    static let minimumNodePrefix = 6

    // MARK: - This office

    /// This office's own nodes: the active members of its workspace (this node included).
    func ownNodes() throws(NodeError) -> Set<NodeID> {
        var out: Set<NodeID> = [node.nodeID]
        let def: SpaceID?
        do { def = try node.store.defaultSpace() } catch { throw NodeError(error) }
        if let def, let info = try node.spaceInfo(def) {
            for m in info.members where m.isActive { out.insert(m.nodeID) }
        }
        return out
    }

    /// The exchange spaces this node may write to: spaces it is an active member of, but its own.
    func exchangeSpaces() throws(NodeError) -> [SpaceInfo] {
        try node.spaces().filter { s in
            s.role == .member && !s.isDefault && s.members.contains { $0.key == node.identity.publicKey && $0.isActive }
        }.sorted { ($0.name, $0.id.hex) < ($1.name, $1.id.hex) }
    }

    // MARK: - Office directory

    /// Every office known to this node but its own, by name.
    public func offices() throws(NodeError) -> [OfficeEntry] { try directory(history: true) }

    /// The office directory: from the exchange spaces' rosters, and with `history` also from the
    /// dispatches received (their senders' names) and the letters taken in (their codes), which
    /// means reading every one of them.
    func directory(history: Bool) throws(NodeError) -> [OfficeEntry] {
        let mine = try ownNodes()
        let spaces = try exchangeSpaces()
        var names: [NodeID: String] = [:]
        var codes: [String: String] = [:]
        var known = Set<NodeID>()
        for s in spaces {
            for m in s.members where m.isActive && !mine.contains(m.nodeID) {
                known.insert(m.nodeID)
                if !m.office.isEmpty { names[m.nodeID] = m.office }
            }
        }
        // Dispatches name their sender's office; letters taken in name its code.
        for d in history ? try node.documents(ofKind: DispatchDocument.kind) : [] {
            guard let f = d.display(DispatchDocument.from).flatMap({ try? NodeID(parsing: $0) }), !mine.contains(f),
                Self.authored(d, by: f)
            else { continue }
            known.insert(f)
            if names[f] == nil, let o = d.display(DispatchDocument.office), !o.isEmpty { names[f] = o }
        }
        for v in history ? try node.letters() : [] {
            if let o = v.origin, !o.code.isEmpty { codes[o.office] = o.code }
        }
        var groups: [String: Set<NodeID>] = [:]
        for n in known {
            groups[names[n] ?? "\u{1}" + n.text, default: []].insert(n)
        }
        var out: [OfficeEntry] = []
        for (key, nodes) in groups {
            let name = key.hasPrefix("\u{1}") ? "" : key
            var shared: [OfficeEntry.SharedSpace] = []
            for s in spaces {
                let here = s.members.filter { $0.isActive && nodes.contains($0.nodeID) }.map(\.nodeID)
                if !here.isEmpty { shared.append(.init(id: s.id, name: s.name, nodes: here.sorted { $0.text < $1.text })) }
            }
            out.append(
                OfficeEntry(
                    office: name, code: codes[name] ?? "", nodes: nodes.sorted { $0.text < $1.text }, spaces: shared))
        }
        return out.sorted { ($0.office.isEmpty ? 1 : 0, $0.label) < ($1.office.isEmpty ? 1 : 0, $1.label) }
    }

    /// The office `text` names: its name, its letter code, or one of its node ids (or a unique
    /// prefix of at least six characters). Unknown: exit 67; several: exit 64 listing them.
    public func resolveOffice(_ text: String, among all: [OfficeEntry]) throws(NodeError) -> OfficeEntry {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty else { throw NodeError(.invalidArgument, "ต้องระบุสำนักงานผู้รับ / --to is empty: give an office name, code or node id") }
        var found = all.filter { $0.office == t }
        if found.isEmpty { found = all.filter { !$0.code.isEmpty && $0.code == t } }
        if found.isEmpty, let id = try? NodeID(parsing: t) { found = all.filter { $0.nodes.contains(id) } }
        if found.isEmpty, t.count >= Self.minimumNodePrefix {
            let lower = t.lowercased()
            found = all.filter { $0.nodes.contains { $0.text.hasPrefix(lower) } }
        }
        switch found.count {
        case 1:
            return found[0]
        case 0:
            throw NodeError(
                .unknownDocument,
                "ไม่รู้จักสำนักงาน \(t) / no office \(t) is known to this node: `saraban office list` shows the offices it "
                    + "shares a space with (give a name, a letter code or a node id)")
        default:
            let shown = found.map { "  \($0.label)  \($0.nodes.map { String($0.text.prefix(16)) + "…" }.joined(separator: ", "))" }
            throw NodeError(
                .invalidArgument,
                "\(t) ตรงกับหลายสำนักงาน / \(t) names \(found.count) offices; give a node id:\n" + shown.joined(separator: "\n"))
        }
    }

    // MARK: - Dispatch

    /// Sends the letter to `recipients` (office names, codes or node ids): registers it if needed
    /// (its number and the registry's stamp), then publishes one sealed dispatch per exchange space
    /// needed (one space shared with every recipient when there is one), and records each on the
    /// letter (`การส่ง`) with its status ส่งแล้ว (or เวียน). Nothing is numbered when a recipient
    /// cannot be reached: unknown office (exit 67), no shared space (exit 68). Repeating it sends
    /// nothing twice.
    public func send(_ id: DocID, to recipients: [String], circular: Bool = false, reserved: Int? = nil) throws(NodeError)
        -> SendResult
    {
        guard !recipients.isEmpty else {
            throw NodeError(
                .invalidArgument,
                "ต้องระบุสำนักงานผู้รับ / name the recipients: `saraban letter send \(id) --to OFFICE` (`saraban office list` "
                    + "shows the offices); a letter kept inside the office is numbered with `saraban letter register`")
        }
        let v0 = try node.letter(id)
        if v0.origin != nil || v0.receiveEntry != nil {
            throw NodeError(
                .refused,
                "หนังสือนี้รับมาจากสำนักงานอื่น / this letter was received from another office; to pass it on, make a new letter")
        }
        switch v0.status {
        case .draft, .registered, .sent, .circulating: break
        default:
            throw NodeError(.refused, "ส่งไม่ได้ สถานะ \(v0.status.rawValue) / a \(v0.status.english) letter cannot be sent")
        }
        // The rosters name every office a dispatch can reach; the whole directory (every dispatch
        // and letter read) only when a recipient is not found there: named by a letter code, or
        // known only from dispatches (then refused below: no shared space).
        func resolveAll(_ all: [OfficeEntry]) throws(NodeError) -> [OfficeEntry] {
            var out: [OfficeEntry] = []
            for r in recipients {
                let e = try resolveOffice(r, among: all)
                if !out.contains(e) { out.append(e) }
            }
            return out
        }
        // An office whose roster entry has no name may be named by its dispatches: then the whole
        // directory too, so the delivery is labelled as `office list` shows it.
        var targets: [OfficeEntry]
        do {
            targets = try resolveAll(try directory(history: false))
            if targets.contains(where: { $0.office.isEmpty }) { targets = try resolveAll(try offices()) }
        } catch where error.code == .unknownDocument {
            targets = try resolveAll(try offices())
        }
        let secrecy = v0.fields[LetterField.secrecy.rawValue].flatMap { try? Secrecy(parsing: $0) } ?? .none
        let plan = try plan(targets, secrecy: secrecy)
        // Numbered only now that every recipient is reachable.
        let allocation: Allocation
        if v0.status == .draft || v0.status == .registered {
            allocation = try node.registerLetter(id, circular: circular, reserved: reserved)
        } else {
            guard let s = v0.stamp else {
                throw NodeError(.refused, "the letter is marked sent but has no registry stamp; it was sent before dispatches existed")
            }
            allocation = try node.allocate(s.book, letter: id, summary: v0.fields[LetterField.subject.rawValue] ?? "")
        }
        let v = try node.letter(id)
        guard let old = v.stamp, let number = v.fields[LetterField.number.rawValue], let date = v.fields[LetterField.date.rawValue]
        else { throw NodeError(.storage, "the letter \(id) was registered but carries no stamp; repeat the command") }
        let stamp = try node.registryStamp(
            v, book: old.book, number: old.number, year: old.year, letterNumber: number, date: date)
        let own = try ownNodes()
        var sent: [DispatchSent] = []
        var newDeliveries: [Delivery] = []
        for (space, offices) in plan {
            let already = Set(v.deliveries.filter { $0.space == space.id.hex }.map(\.office))
            let pending = offices.filter { !already.contains($0.label) }
            if pending.isEmpty {
                let ds = v.deliveries.filter { $0.space == space.id.hex && offices.map(\.label).contains($0.office) }
                if let first = ds.first, let did = DocID(first.dispatch) {
                    sent.append(DispatchSent(id: did, space: space.id, spaceName: space.name, offices: ds.map(\.office), existing: true))
                }
                continue
            }
            // A dispatch published before a crash kept the letter from recording it: record it now.
            // (A letter that was a draft when this send began was numbered by it: nothing of it can
            // have been published, so the scan, which opens every dispatch this node sent, is skipped.)
            if v0.status != .draft, let found = try publishedDispatch(of: id, in: space.id, covering: pending.map(\.label)) {
                sent.append(DispatchSent(id: found, space: space.id, spaceName: space.name, offices: pending.map(\.label), existing: true))
                newDeliveries += pending.map { Delivery(office: $0.label, nodes: nodes(of: $0, in: space.id), dispatch: found.description, space: space.id.hex) }
                continue
            }
            let did = try publish(
                v, stamp: stamp, in: space, to: pending, allRecipients: targets, circular: allocation.book == .circular, own: own)
            sent.append(DispatchSent(id: did, space: space.id, spaceName: space.name, offices: pending.map(\.label), existing: false))
            newDeliveries += pending.map {
                Delivery(office: $0.label, nodes: nodes(of: $0, in: space.id), dispatch: did.description, space: space.id.hex)
            }
        }
        let to: LetterStatus = allocation.book == .circular ? .circulating : .sent
        let status = v.status == .sent || v.status == .circulating ? v.status : to
        let restamp = v.stamp?.contentHash != stamp.contentHash
        if !newDeliveries.isEmpty || restamp || status != v.status {
            try node.editLetterDocument(id) { tx, docs in
                if restamp { try tx.set(id, field: LetterDocument.stamp, value: .bytes(stamp.encoded()), in: &docs) }
                for d in newDeliveries { try tx.append(id, field: LetterDocument.deliveries, value: d.encoded, in: &docs) }
                if status != v.status {
                    try tx.set(id, field: LetterField.status.rawValue, value: .string(status.rawValue), in: &docs)
                }
            }
        }
        node.logger.info("sent a letter", metadata: ["letter": "\(id)", "dispatches": "\(sent.count)"])
        return SendResult(allocation: allocation, letterNumber: number, status: status, dispatches: sent)
    }

    func nodes(of office: OfficeEntry, in space: SpaceID) -> [String] {
        office.spaces.first { $0.id == space }?.nodes.map(\.text) ?? []
    }

    /// The exchange spaces to send through: one shared with every recipient when there is one (the
    /// first by name), else, greedily, the space shared with most of the recipients left. For a
    /// secret letter only spaces cleared for its class (members included) count.
    func plan(_ targets: [OfficeEntry], secrecy: Secrecy) throws(NodeError) -> [(SpaceInfo, [OfficeEntry])] {
        let spaces = try exchangeSpaces()
        var cleared: [SpaceInfo] = []
        for s in spaces {
            if secrecy == .none {
                cleared.append(s)
            } else if try node.effectiveClearance(of: s.id).0 >= secrecy {
                cleared.append(s)
            }
        }
        for t in targets where !t.spaces.contains(where: { sh in cleared.contains { $0.id == sh.id } }) {
            if secrecy > .none && !t.spaces.isEmpty {
                throw NodeError(
                    .refused,
                    "ไม่มีพื้นที่ที่ได้รับอนุญาตชั้น\(secrecy.rawValue)ร่วมกับ \(t.label) / no space shared with \(t.label) is cleared "
                        + "for \(secrecy.english) letters (spaces shared: \(t.spaces.map(\.name).joined(separator: ", "))); an admin "
                        + "clears one (`saraban space clearance SPACE \(secrecy.rawValue)`, every member cleared)")
            }
            throw NodeError(
                .refused,
                "ไม่มีพื้นที่ร่วมกับ \(t.label) / this office shares no exchange space with \(t.label): join a space it is a member "
                    + "of (ask its admin for an invitation: `saraban space join`) or invite it into one of yours "
                    + "(`saraban space invite SPACE NODE_ID --office NAME`)")
        }
        var left = targets
        var out: [(SpaceInfo, [OfficeEntry])] = []
        while !left.isEmpty {
            var best: (SpaceInfo, [OfficeEntry])?
            for s in cleared {
                let covered = left.filter { t in t.spaces.contains { $0.id == s.id } }
                if covered.count > (best?.1.count ?? 0) { best = (s, covered) }
            }
            guard let b = best else { break }
            out.append(b)
            left.removeAll { t in b.1.contains(t) }
        }
        return out
    }

    /// A dispatch of letter `id` this node already published in `space` to all of `offices`.
    func publishedDispatch(of id: DocID, in space: SpaceID, covering offices: [String]) throws(NodeError) -> DocID? {
        for d in try node.documents(ofKind: DispatchDocument.kind, in: space)
        where d.display(DispatchDocument.from) == node.nodeID.text {
            guard let o = try? open(d, space: space), o.letter.stamp.letter == id.description else { continue }
            let named = Set(o.letter.recipients.map { $0.office.isEmpty ? ($0.nodes.first ?? "") : $0.office })
            if Set(offices).isSubset(of: named) { return d.id }
        }
        return nil
    }

    /// Writes one dispatch in `space`: the letter as sent, sealed under a fresh key, a box of the
    /// key for each recipient node there and each of this office's nodes there, in ONE change that
    /// creates the document sealed (no owner).
    func publish(
        _ v: LetterView, stamp: RegistryStamp, in space: SpaceInfo, to offices: [OfficeEntry], allRecipients: [OfficeEntry],
        circular: Bool, own: Set<NodeID>
    ) throws(NodeError) -> DocID {
        let key = try node.newSymmetricKey()
        var attachments: [SentAttachment] = []
        for a in v.attachments {
            let bytes = try node.readAttachment(a)
            guard let hash = Hex.decode(a.hash) else { throw NodeError(.invalidFile, "bad attachment hash \(a.hash)") }
            let (root, chunks) = try node.storeSealedAttachment(bytes, hash: hash, key: key, space: space.id)
            attachments.append(SentAttachment(hash: a.hash, name: a.name, size: a.size, chunks: chunks, root: root))
        }
        var fields = v.fields
        fields[LetterField.status.rawValue] = nil
        let members = Set(space.members.filter(\.isActive).map(\.nodeID))
        let senderNodes = [node.nodeID] + own.filter { $0 != node.nodeID && members.contains($0) }.sorted { $0.text < $1.text }
        let letter = SentLetter(
            kind: v.kind, fields: fields, attachments: attachments, signatures: v.signatures,
            sender: OfficeAddress(office: node.config.office, code: node.config.letterCode ?? "", nodes: senderNodes.map(\.text)),
            recipients: allRecipients.map { OfficeAddress(office: $0.office, nodes: $0.nodes.map(\.text)) },
            circular: circular, stamp: stamp)
        let to = offices.flatMap { nodes(of: $0, in: space.id) }
        var boxed: [NodeID] = senderNodes
        for t in to { if let n = try? NodeID(parsing: t), !boxed.contains(n) { boxed.append(n) } }
        let plaintext = letter.encoded()
        let me = node.nodeID.text
        let urgency = v.fields[LetterField.urgency.rawValue] ?? Urgency.normal.rawValue
        let t = node.currentMillis
        var boxes: [(String, [UInt8])] = []
        for n in boxed {
            do {
                let b = try key.secret.withUnsafeBytes { k throws(CryptoError) in
                    try SealedBox.seal(Array(k), to: n.publicKey, ephemeralSeed: node.random(32))
                }
                boxes.append((n.text, b))
            } catch { throw NodeError(.io, "cannot seal the dispatch key to \(n.text): \(error.message)") }
        }
        return try node.edit(in: space.id) { tx, docs in
            let d = try tx.createDocument(kind: DispatchDocument.kind, owners: [], in: &docs)
            let nonce = node.random(XChaCha20Poly1305.nonceByteCount)
            let sealed = try XChaCha20Poly1305.seal(
                plaintext, key: key, nonce: nonce, associatedData: DispatchDocument.payloadAD(dispatch: d.description, from: me))
            try tx.set(d, field: DispatchDocument.from, value: .string(me), in: &docs)
            try tx.set(d, field: DispatchDocument.office, value: .string(node.config.office), in: &docs)
            try tx.set(d, field: DispatchDocument.to, value: .string(to.joined(separator: " ")), in: &docs)
            try tx.set(d, field: DispatchDocument.sent, value: .int(t), in: &docs)
            try tx.set(d, field: DispatchDocument.urgency, value: .string(urgency), in: &docs)
            for (n, b) in boxes { try tx.set(d, field: DispatchDocument.box(n), value: .bytes(b), in: &docs) }
            try tx.set(d, field: DispatchDocument.payload, value: .bytes(nonce + sealed), in: &docs)
            return d
        }.value
    }

    // MARK: - Opening

    /// Whether `d` was created by the node `n` (its clear `from` must name its author).
    static func authored(_ d: Document, by n: NodeID) -> Bool {
        d.created.change.author == ReplicaID(bytes: n.replicaBytes)
    }

    /// The dispatch key of `d`, from this node's box.
    func dispatchKey(_ d: Document) throws(NodeError) -> SymmetricKey {
        guard case .bytes(let box)? = d.registers[DispatchDocument.box(node.nodeID.text)]?.winner?.value else {
            throw NodeError(
                .refused, "หนังสือนี้ไม่ได้ส่งถึงสำนักงานนี้ / dispatch \(d.id) is not addressed to this node: it holds no key for it")
        }
        do { return try SymmetricKey(SecureBytes(try SealedBox.open(box, with: node.identity))) } catch {
            throw NodeError(.invalidFile, "dispatch \(d.id): this node's box does not open (\(error.message)); it is damaged")
        }
    }

    /// Opens dispatch `d` (of `space`) with this node's box: checks its sender is its author and
    /// decrypts and decodes the letter as sent. Typed errors for everything malformed.
    func open(_ d: Document, space: SpaceID) throws(NodeError) -> OpenedDispatch {
        guard d.kind == DispatchDocument.kind else { throw NodeError(.unknownDocument, "\(d.id) is a \(d.kind), not a dispatch") }
        guard let fromText = d.display(DispatchDocument.from), let from = try? NodeID(parsing: fromText), Self.authored(d, by: from)
        else {
            throw NodeError(
                .invalidFile, "dispatch \(d.id) does not name the node that made it as its sender; it is forged or damaged: ignored")
        }
        let key = try dispatchKey(d)
        guard case .bytes(let p)? = d.registers[DispatchDocument.payload]?.winner?.value, p.count > XChaCha20Poly1305.nonceByteCount
        else { throw NodeError(.invalidFile, "dispatch \(d.id) has no payload; it is damaged") }
        let plain: [UInt8]
        do {
            plain = try XChaCha20Poly1305.open(
                Array(p[XChaCha20Poly1305.nonceByteCount...]), key: key, nonce: Array(p[..<XChaCha20Poly1305.nonceByteCount]),
                associatedData: DispatchDocument.payloadAD(dispatch: d.id.description, from: fromText))
        } catch { throw NodeError(.invalidFile, "dispatch \(d.id) does not open: \(error.message)") }
        let letter: SentLetter
        do { letter = try SentLetter(decoding: plain) } catch {
            throw NodeError(.invalidFile, "หนังสือ \(d.id) อ่านไม่ได้ / dispatch \(d.id) holds a malformed letter (\(error)); ignored")
        }
        var boxes: [NodeID] = []
        for name in d.registers.keys where name.hasPrefix(DispatchDocument.boxPrefix) {
            if let n = try? NodeID(parsing: String(name.dropFirst(DispatchDocument.boxPrefix.count))) { boxes.append(n) }
        }
        let to = DispatchDocument.recipients(d.display(DispatchDocument.to) ?? "").compactMap { try? NodeID(parsing: $0) }
        let sent: Int64
        if case .int(let t)? = d.registers[DispatchDocument.sent]?.winner?.value { sent = t } else { sent = d.created.time }
        return OpenedDispatch(
            id: d.id, space: space, from: from, office: d.display(DispatchDocument.office) ?? "", to: to,
            boxes: boxes.sorted { $0.text < $1.text }, sent: sent,
            urgency: d.display(DispatchDocument.urgency).flatMap { try? Urgency(parsing: $0) } ?? .normal, letter: letter)
    }

    /// Opens the dispatch `id`.
    public func openDispatch(_ id: DocID) throws(NodeError) -> OpenedDispatch {
        let d = try node.document(id)
        return try open(d, space: try node.space(ofDocument: id))
    }

    // MARK: - Inbox

    /// The workspace records of letters received by dispatch, by dispatch id.
    func receivedRecords() throws(NodeError) -> [String: LetterView] {
        var out: [String: LetterView] = [:]
        let def: SpaceID?
        do { def = try node.store.defaultSpace() } catch { throw NodeError(error) }
        for d in try node.documents(ofKind: LetterDocument.kind, in: def) where !d.isDeleted {
            if let v = Node.letterView(d), let o = v.origin { out[o.dispatch] = v }
        }
        return out
    }

    /// The receipts of `space` by dispatch id, each with its receiving node.
    func receipts(in space: SpaceID) throws(NodeError) -> [String: [Document]] {
        var out: [String: [Document]] = [:]
        for d in try node.documents(ofKind: ReceiptDocument.kind, in: space) {
            if let dispatch = d.display(ReceiptDocument.dispatch) { out[dispatch, default: []].append(d) }
        }
        return out
    }

    /// Dispatches addressed to this node that this office has neither received nor returned, most
    /// urgent first, then oldest first.
    public func inbox() throws(NodeError) -> [InboxItem] {
        let mine = try ownNodes()
        let records = try receivedRecords()
        var out: [InboxItem] = []
        for s in try exchangeSpaces() {
            let answered = try receipts(in: s.id)
            for d in try node.documents(ofKind: DispatchDocument.kind, in: s.id) where !d.isDeleted {
                guard d.registers[DispatchDocument.box(node.nodeID.text)] != nil, records[d.id.description] == nil,
                    let f = d.display(DispatchDocument.from).flatMap({ try? NodeID(parsing: $0) }), !mine.contains(f)
                else { continue }
                let ours = (answered[d.id.description] ?? []).contains { r in
                    r.display(ReceiptDocument.from).flatMap { try? NodeID(parsing: $0) }.map { mine.contains($0) && Self.authored(r, by: $0) }
                        ?? false
                }
                if ours { continue }
                guard let o = try? open(d, space: s.id) else {
                    node.logger.warning("a dispatch addressed to this node does not open; skipped", metadata: ["dispatch": "\(d.id)"])
                    continue
                }
                out.append(InboxItem(dispatch: o, spaceName: s.name))
            }
        }
        return out.sorted { a, b in
            (a.dispatch.urgency, b.dispatch.sent, b.dispatch.id) > (b.dispatch.urgency, a.dispatch.sent, a.dispatch.id)
        }
    }

    // MARK: - Receive and return

    /// This office's receipt for dispatch `id` among `receipts` (of its space), if it wrote one
    /// (opened when it can be: `nil` body for one sealed to another node of this office).
    func ownReceipt(_ id: DocID, among receipts: [String: [Document]], mine: Set<NodeID>) -> (found: Bool, body: ReceiptBody?) {
        var found = false
        for r in receipts[id.description] ?? [] {
            guard let from = r.display(ReceiptDocument.from).flatMap({ try? NodeID(parsing: $0) }), mine.contains(from),
                Self.authored(r, by: from)
            else { continue }
            found = true
            if let body = try? openReceipt(r, from: from) { return (true, body) }
        }
        return (found, nil)
    }

    /// Takes dispatch `id` in: this office's own record of the letter (in its workspace, status
    /// รับแล้ว, linked to the dispatch), its number in the receive book (in the same change), then
    /// the receipt back to the sender. Receiving again writes nothing new (a missing receipt is
    /// written: the repair after a crash between the two writes).
    public func receive(_ id: DocID) throws(NodeError) -> ReceiveResult {
        try receive([id])[0]
    }

    /// Takes several dispatches in, in the order given: every record and receive number in ONE
    /// write of this office's space (one change per letter), then every receipt in one write per
    /// exchange space. Each dispatch is checked first; nothing is written if one is refused.
    public func receive(_ ids: [DocID]) throws(NodeError) -> [ReceiveResult] {
        let mine = try ownNodes()
        let records = node.store.testHooks?.forgetsReceivedRecords == true ? [:] : try receivedRecords()
        var receiptsBySpace: [SpaceID: [String: [Document]]] = [:]
        var opened: [(OpenedDispatch, LetterView?, answered: Bool)] = []
        for id in ids {
            let d = try node.document(id)
            let space = try node.space(ofDocument: id)
            let o = try open(d, space: space)
            if mine.contains(o.from) {
                throw NodeError(.refused, "หนังสือนี้ส่งจากสำนักงานนี้เอง / this office sent dispatch \(id); only its recipients receive it")
            }
            if receiptsBySpace[space] == nil { receiptsBySpace[space] = try receipts(in: space) }
            let own = ownReceipt(id, among: receiptsBySpace[space]!, mine: mine)
            if let r = own.body, r.status == .returned {
                throw NodeError(
                    .refused, "หนังสือนี้ส่งคืนไปแล้ว (\(r.reason)) / this office returned dispatch \(id) (\(r.reason)); it cannot be received")
            }
            let record = records[id.description].flatMap { $0.receiveEntry == nil ? nil : $0 }
            opened.append((o, record, own.found))
        }
        // The records and receive numbers, in one write of this office's space.
        let t = node.currentMillis
        let fresh = opened.filter { $0.1 == nil }.map(\.0)
        var taken: [String: (DocID, Allocation)] = [:]
        if !fresh.isEmpty {
            let regID = try node.ensureRegister(.receive, year: node.registerYear(at: t))
            let prepared = fresh.map(RecordContent.init)
            var folded: RegisterState?  // the receive book, folded once for the whole batch
            let made = try node.write { w throws -> [(DocID, Allocation)] in
                try prepared.map { p in
                    try w.change(time: t) { tx, docs in
                        try takeIn(p, register: regID, at: t, folded: &folded, tx: &tx, docs: &docs)
                    }.value
                }
            }
            for (o, r) in zip(fresh, made) { taken[o.id.description] = r }
        }
        var results: [ReceiveResult] = []
        var answers: [SpaceID: [(Int, PreparedReceipt)]] = [:]
        for (i, (o, record, answered)) in opened.enumerated() {
            let result: ReceiveResult
            if let r = record, let e = r.receiveEntry {
                let a = Allocation(
                    register: try node.ensureRegister(.receive, year: e.year), book: .receive, year: e.year, number: e.number,
                    date: e.date, time: e.time, existing: true)
                result = ReceiveResult(record: r.id, allocation: a, existing: true)
            } else {
                let (rid, a) = taken[o.id.description]!
                result = ReceiveResult(record: rid, allocation: a, existing: false)
            }
            results.append(result)
            if !answered {
                let a = result.allocation
                answers[o.space, default: []].append(
                    (i, try prepareReceipt(o, status: .received, number: a.number, year: a.year, date: a.date, time: a.time, reason: "")))
            }
        }
        // The receipts, in one write per exchange space.
        for (space, list) in answers {
            let ids = try node.write(in: space) { w throws -> [DocID] in
                try list.map { (_, p) in try w.change(time: t) { tx, docs in try writeReceipt(p, tx: &tx, docs: &docs) }.value }
            }
            for ((i, _), rid) in zip(list, ids) { results[i].receipt = rid }
        }
        return results
    }

    /// What this office's record of a dispatched letter holds, prepared outside the write.
    struct RecordContent {
        var letter: SentLetter
        var origin: Origin
        var signatures: [String]
        var attachments: [String]

        init(_ o: OpenedDispatch) {
            letter = o.letter
            origin = Origin(
                dispatch: o.id.description, space: o.space.hex, node: o.from.text, office: o.letter.sender.office,
                code: o.letter.sender.code)
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            signatures = o.letter.signatures.compactMap { s in (try? enc.encode(s)).map { String(decoding: $0, as: UTF8.self) } }
            let keyRef = "dispatch:\(o.space.hex):\(o.id)"
            attachments = o.letter.attachments.map {
                TabFields.join([$0.hash, $0.name, String($0.size), String($0.chunks), keyRef, $0.root])
            }
        }
    }

    /// This office's record of a dispatched letter and its receive number, in the open change.
    func takeIn(
        _ p: RecordContent, register regID: DocID, at t: Int64, folded: inout RegisterState?, tx: inout Transaction,
        docs: inout DocumentsInTransaction
    ) throws -> (DocID, Allocation) {
        let l = p.letter
        let rid = try tx.createDocument(kind: LetterDocument.kind, in: &docs)
        try tx.set(rid, field: LetterDocument.kindField, value: .string(l.kind.rawValue), in: &docs)
        for f in LetterField.allCases where f != .status {
            guard let value = l.fields[f.rawValue] else { continue }
            if f == .body {
                if !value.isEmpty { try tx.insertText(rid, field: f.rawValue, at: 0, value, in: &docs) }
            } else {
                try tx.set(rid, field: f.rawValue, value: .string(value), in: &docs)
            }
        }
        try tx.set(rid, field: LetterField.status.rawValue, value: .string(LetterStatus.received.rawValue), in: &docs)
        try tx.set(rid, field: LetterDocument.origin, value: .string(p.origin.encoded), in: &docs)
        try tx.set(rid, field: LetterDocument.stamp, value: .bytes(l.stamp.encoded()), in: &docs)
        for s in p.signatures { try tx.append(rid, field: LetterDocument.signatures, value: s, in: &docs) }
        for a in p.attachments { try tx.append(rid, field: LetterDocument.attachments, value: a, in: &docs) }
        let subject = l.fields[LetterField.subject.rawValue] ?? ""
        let a = try node.allocate(
            .receive, in: regID, letter: rid, summary: subject, reserved: nil, at: t, folded: &folded, tx: &tx, docs: &docs)
        let entry = ReceiveEntry(number: a.number, year: a.year, date: a.date, time: a.time)
        try tx.set(rid, field: LetterDocument.receiveEntry, value: .string(entry.encoded), in: &docs)
        return (rid, a)
    }

    /// A receipt ready to write: its clear fields and the signed body sealed to each node.
    struct PreparedReceipt {
        var dispatch: String
        var to: [String]
        var boxes: [(String, [UInt8])]
    }

    /// This office's answer to dispatch `o`, the body signed by this node and sealed to the
    /// sender's nodes (the sender and the other boxes that are not recipients) and to this node.
    func prepareReceipt(
        _ o: OpenedDispatch, status: ReceiptBody.Status, number: Int, year: Int, date: ThaiDate, time: String, reason: String
    ) throws(NodeError) -> PreparedReceipt {
        var body = ReceiptBody(
            status: status, dispatch: o.id.description, office: node.config.office, code: node.config.letterCode ?? "",
            node: node.nodeID.text, number: number, year: year, date: date.iso, time: time, reason: reason,
            at: node.currentMillis)
        body.signature = node.identity.sign(body.signedBytes)
        let bytes = body.encoded()
        let recipients = Set(o.to)
        var to = [o.from] + o.boxes.filter { $0 != o.from && !recipients.contains($0) && $0 != node.nodeID }
        to = to.reduce(into: []) { if !$0.contains($1) { $0.append($1) } }
        var boxes: [(String, [UInt8])] = []
        for n in to + [node.nodeID] {
            do { boxes.append((n.text, try SealedBox.seal(bytes, to: n.publicKey, ephemeralSeed: node.random(32)))) } catch {
                throw NodeError(.io, "cannot seal the receipt to \(n.text): \(error.message)")
            }
        }
        return PreparedReceipt(dispatch: o.id.description, to: to.map(\.text), boxes: boxes)
    }

    /// Writes a prepared receipt: a sealed document (no owner) in the open change.
    func writeReceipt(_ p: PreparedReceipt, tx: inout Transaction, docs: inout DocumentsInTransaction) throws -> DocID {
        let r = try tx.createDocument(kind: ReceiptDocument.kind, owners: [], in: &docs)
        try tx.set(r, field: ReceiptDocument.dispatch, value: .string(p.dispatch), in: &docs)
        try tx.set(r, field: ReceiptDocument.from, value: .string(node.nodeID.text), in: &docs)
        try tx.set(r, field: ReceiptDocument.to, value: .string(p.to.joined(separator: " ")), in: &docs)
        for (n, b) in p.boxes { try tx.set(r, field: ReceiptDocument.box(n), value: .bytes(b), in: &docs) }
        return r
    }

    /// Sends dispatch `id` back (ส่งคืน) with `reason`: a receipt saying so, no receive number.
    /// Refused once the letter was received; repeating it writes nothing new.
    @discardableResult
    public func returnDispatch(_ id: DocID, reason: String) throws(NodeError) -> DocID? {
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else {
            throw NodeError(.invalidArgument, "ต้องระบุเหตุผลที่ส่งคืน / give the reason: --reason TEXT")
        }
        let d = try node.document(id)
        let space = try node.space(ofDocument: id)
        let o = try open(d, space: space)
        let mine = try ownNodes()
        if mine.contains(o.from) {
            throw NodeError(.refused, "หนังสือนี้ส่งจากสำนักงานนี้เอง / this office sent dispatch \(id); only its recipients return it")
        }
        if let r = try receivedRecords()[id.description] {
            let n = r.receiveEntry.map { " เลขรับ \($0.number)" } ?? ""
            throw NodeError(
                .refused,
                "รับหนังสือนี้แล้ว\(n) ส่งคืนไม่ได้ / this office already received dispatch \(id)\(n); a received letter is not "
                    + "returned (write to the sender instead)")
        }
        if ownReceipt(id, among: try receipts(in: space), mine: mine).found { return nil }
        let t = node.currentMillis
        let p = try prepareReceipt(
            o, status: .returned, number: 0, year: 0, date: ThaiDate(unixMillis: t), time: Node.thaiTime(t), reason: reason)
        return try node.edit(in: space) { tx, docs in try writeReceipt(p, tx: &tx, docs: &docs) }.value
    }

    /// Opens a receipt's body with this node's box and checks it: signed by the node it names,
    /// which made the receipt.
    func openReceipt(_ r: Document, from: NodeID) throws(NodeError) -> ReceiptBody {
        guard case .bytes(let box)? = r.registers[ReceiptDocument.box(node.nodeID.text)]?.winner?.value else {
            throw NodeError(.refused, "receipt \(r.id) is not sealed to this node")
        }
        let body: ReceiptBody
        do { body = try ReceiptBody(decoding: try SealedBox.open(box, with: node.identity)) } catch let e as CryptoError {
            throw NodeError(.invalidFile, "receipt \(r.id) does not open: \(e.message)")
        } catch { throw NodeError(.invalidFile, "receipt \(r.id) is malformed: \(error)") }
        guard body.node == from.text, body.dispatch == r.display(ReceiptDocument.dispatch),
            from.publicKey.isValidSignature(body.signature, for: body.signedBytes)
        else { throw NodeError(.invalidFile, "receipt \(r.id) is not signed by the node that wrote it; ignored") }
        return body
    }

    /// Where each dispatch of this office's letter `v` stands, from the receipts that came back.
    public func deliveryStatus(_ v: LetterView) throws(NodeError) -> [DeliveryStatus] {
        var bySpace: [String: [String: [Document]]] = [:]
        var out: [DeliveryStatus] = []
        for dl in v.deliveries {
            if bySpace[dl.space] == nil {
                let sp = Hex.decode(dl.space).flatMap { SpaceID(bytes: $0) }
                bySpace[dl.space] = try sp.map { s throws(NodeError) in try receipts(in: s) } ?? [:]
            }
            var status = DeliveryStatus(delivery: dl, state: .pending, receiptValid: true)
            // A letter of the shared-letter model: its acknowledgements are its receipts.
            if let legacy = DocID(dl.dispatch), let shared = try? node.document(legacy), let lv = Node.letterView(shared) {
                let replicas = Set(dl.nodes.compactMap { try? NodeID(parsing: $0) }.map { ReplicaID(bytes: $0.replicaBytes).hex })
                if let ack = lv.acknowledgements.first(where: { replicas.contains($0.node) }) {
                    let date = (try? ThaiDate(parsing: ack.date))?.formatted() ?? ack.date
                    status.state = .received(number: ack.number, year: ack.year, date: date, time: ack.time)
                }
                out.append(status)
                continue
            }
            for r in bySpace[dl.space]?[dl.dispatch] ?? [] {
                guard let fromText = r.display(ReceiptDocument.from), dl.nodes.contains(fromText),
                    let from = try? NodeID(parsing: fromText), Self.authored(r, by: from)
                else { continue }
                guard let body = try? openReceipt(r, from: from) else {
                    status.receiptValid = false
                    continue
                }
                let date = (try? ThaiDate(parsing: body.date))?.formatted() ?? body.date
                status.state =
                    body.status == .received
                    ? .received(number: body.number, year: body.year, date: date, time: body.time)
                    : .returned(reason: body.reason, date: date, time: body.time)
                status.receiptValid = true
                break
            }
            out.append(status)
        }
        return out
    }

    // MARK: - Paper intake

    /// A letter that came outside Saraban (post, by hand, e-mail), straight into the receive book:
    /// this office's record with the letter's own ที่ (another agency's number: free text),
    /// ลงวันที่, จาก, ถึง and เรื่อง, status รับแล้ว, and its receive number, in one change; then
    /// the scan, if given, as an attachment.
    public func intake(
        kind: LetterKind = .external, from: String, number: String, date: String, subject: String, to: String? = nil,
        via: String? = nil, secrecy: Secrecy = .none, scan: String? = nil
    ) throws(NodeError) -> ReceiveResult {
        func need(_ s: String, _ th: String, _ en: String) throws(NodeError) -> String {
            let t = s.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !t.isEmpty else { throw NodeError(.invalidArgument, "ต้องระบุ\(th) / \(en) is empty") }
            return t
        }
        let from = try need(from, "ผู้ส่ง (จาก)", "--from")
        let number = try need(number, "ที่ของหนังสือ", "--number")
        let subject = try need(subject, "เรื่อง", "--subject")
        let dated: String
        do { dated = try ThaiDate(parsing: date.trimmingCharacters(in: .whitespaces)).formatted() } catch { throw NodeError(error) }
        try node.checkClearance(secrecy, space: nil, action: "register")
        if let scan, !FileManager.default.isReadableFile(atPath: scan) {
            throw NodeError(.invalidArgument, "cannot read \(scan): no such file or permission denied; nothing was registered")
        }
        let t = node.currentMillis
        let regID = try node.ensureRegister(.receive, year: node.registerYear(at: t))
        let recipient = to?.trimmingCharacters(in: .whitespacesAndNewlines)
        let channel = via?.trimmingCharacters(in: .whitespacesAndNewlines)
        let (rid, a) = try node.edit { tx, docs throws -> (DocID, Allocation) in
            let rid = try tx.createDocument(kind: LetterDocument.kind, in: &docs)
            try tx.set(rid, field: LetterDocument.kindField, value: .string(kind.rawValue), in: &docs)
            try tx.set(rid, field: LetterField.number.rawValue, value: .string(number), in: &docs)
            try tx.set(rid, field: LetterField.date.rawValue, value: .string(dated), in: &docs)
            try tx.set(rid, field: LetterField.sender.rawValue, value: .string(from), in: &docs)
            try tx.set(rid, field: LetterField.subject.rawValue, value: .string(subject), in: &docs)
            if let recipient, !recipient.isEmpty {
                try tx.set(rid, field: LetterField.recipient.rawValue, value: .string(recipient), in: &docs)
            }
            if let channel, !channel.isEmpty { try tx.set(rid, field: LetterDocument.channel, value: .string(channel), in: &docs) }
            if secrecy > .none {
                try tx.set(rid, field: LetterField.secrecy.rawValue, value: .string(secrecy.rawValue), in: &docs)
            }
            try tx.set(rid, field: LetterField.status.rawValue, value: .string(LetterStatus.received.rawValue), in: &docs)
            let a = try node.allocate(.receive, in: regID, letter: rid, summary: subject, reserved: nil, at: t, tx: &tx, docs: &docs)
            let entry = ReceiveEntry(number: a.number, year: a.year, date: a.date, time: a.time)
            try tx.set(rid, field: LetterDocument.receiveEntry, value: .string(entry.encoded), in: &docs)
            return (rid, a)
        }.value
        if let scan { try node.attach(rid, file: scan, allowReceived: true) }
        return ReceiveResult(record: rid, allocation: a, existing: false)
    }
}

extension Node {
    /// Correspondence between offices through this node.
    public var correspondence: Correspondence { Correspondence(self) }
}
