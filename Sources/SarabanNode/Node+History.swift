import Foundation
import SarabanCore
import SarabanCrypto
import SarabanStorage
import SarabanSync

// Conflict inspection, history, past states, diffs and resolution (issue 7). The CLI renders
// what these return; nothing here prints.

/// Who wrote something, as far as this node knows.
public struct AuthorInfo: Sendable, Hashable {
    public var replica: ReplicaID
    /// The office name: this node's own office, or a configured peer's name; nil when unknown.
    public var office: String?
    /// The full node id when known (this node, or a peer configured with its node id).
    public var nodeID: String?
    /// Whether this node wrote it.
    public var isSelf: Bool

    /// The office when known, else the short form of the replica (first 8 hex digits).
    public var label: String { office ?? replica.short }
}

/// Maps replica ids to office names: the node's own config for itself, then the member tables of
/// the spaces it carries (the office each member was invited as), then `config.json` peers that
/// carry a node id and a name; else nothing (the caller falls back to the short id).
public struct AuthorDirectory: Sendable {
    public private(set) var known: [ReplicaID: AuthorInfo] = [:]

    public init(_ node: Node) {
        known[node.replica] = AuthorInfo(
            replica: node.replica, office: node.config.office, nodeID: node.nodeID.text, isSelf: true)
        for space in (try? node.spaces()) ?? [] {
            for m in space.members {
                let r = ReplicaID(bytes: m.key.rawRepresentation.prefix(16))
                if known[r] == nil || known[r]?.office == nil {
                    if known[r]?.isSelf == true { continue }
                    known[r] = AuthorInfo(
                        replica: r, office: m.office.isEmpty ? nil : m.office, nodeID: m.nodeID.text, isSelf: false)
                }
            }
        }
        for peer in node.config.peers {
            guard let text = peer.nodeID, let id = try? NodeID(parsing: text) else { continue }
            let r = ReplicaID(bytes: id.replicaBytes)
            if known[r] == nil || (known[r]?.office == nil && !(known[r]?.isSelf ?? false)) {
                known[r] = AuthorInfo(replica: r, office: peer.name, nodeID: id.text, isSelf: false)
            }
        }
    }

    /// Registers a name learnt elsewhere (for example a space's member table).
    public mutating func learn(_ info: AuthorInfo) {
        if known[info.replica]?.isSelf == true { return }
        known[info.replica] = info
    }

    public subscript(_ r: ReplicaID) -> AuthorInfo {
        known[r] ?? AuthorInfo(replica: r, office: nil, nodeID: nil, isSelf: false)
    }
}

/// Whether a change's origin was cryptographically checked.
public enum SignatureStatus: String, Sendable, Hashable, Codable {
    /// It arrived inside a signed envelope whose signature verified (or this node signed it).
    case verified
    /// Only the local change log holds it: no envelope signature was recorded for it.
    case unsigned
}

/// One operation of a change, as an auditor reads it.
public struct OperationSummary: Sendable, Hashable {
    public enum Action: String, Sendable, Hashable {
        case create, delete, restore, set, insertText, deleteText, add, remove, append
        /// Ownership granted or revoked (``SarabanCore/Ownership``); `value` lists the changes.
        case own
    }

    public var action: Action
    public var field: String?
    /// The value written, inserted, added, removed or appended; the kind for `create`.
    public var value: String?
    /// Scalars inserted or deleted (text operations).
    public var count: Int?

    /// Short text form: `set subject = "…"`, `insert 5 in body: "…"`, `add tags "ด่วน"`.
    public var description: String {
        func q(_ s: String?) -> String { (s ?? "").debugDescription }
        switch action {
        case .create: return "create \(value ?? "")"
        case .delete: return "delete document"
        case .restore: return "restore document"
        case .set: return "set \(field ?? "") = \(q(value))"
        case .insertText: return "insert \(count ?? 0) in \(field ?? ""): \(q(value))"
        case .deleteText: return "delete \(count ?? 0) from \(field ?? "")"
        case .add: return "add \(field ?? "") \(q(value))"
        case .remove: return "remove \(field ?? "") \(q(value))"
        case .append: return "append \(field ?? "") \(q(value))"
        case .own: return "owners \(value ?? "")"
        }
    }
}

/// One change that touched a document.
public struct HistoryEntry: Sendable {
    public var change: Change
    public var author: AuthorInfo
    /// The document's fields it touched, sorted.
    public var fields: [String]
    /// Its operations on this document, in order.
    public var operations: [OperationSummary]
    public var signature: SignatureStatus
}

/// How one field (or the lifecycle) differs between two states of a document.
public enum FieldDiff: Sendable, Hashable {
    /// Register values shown (winner first; several while in conflict); empty when absent.
    case register(field: String, old: [Value], new: [Value])
    case text(field: String, old: String, new: String, lines: [DiffLine])
    case set(field: String, added: [String], removed: [String])
    /// List entries present only in the later (appended) or only in the earlier state.
    case list(field: String, appended: [RegisterEntry], missing: [RegisterEntry])
    case lifecycle(oldDeleted: Bool, newDeleted: Bool)

    public var field: String? {
        switch self {
        case .register(let f, _, _), .text(let f, _, _, _), .set(let f, _, _), .list(let f, _, _): return f
        case .lifecycle: return nil
        }
    }
}

/// One line of a line-level text diff.
public struct DiffLine: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable { case same, removed, added }
    public var kind: Kind
    public var text: String
}

extension Node {
    // MARK: - Conflicts

    /// Every document holding conflicts (only those of `space` when given), with them, sorted by
    /// document id.
    public func conflictedDocuments(space: SpaceID? = nil) throws(NodeError)
        -> [(document: Document, conflicts: [Conflict])]
    {
        var out: [(document: Document, conflicts: [Conflict])] = []
        for d in try documents() {
            let c = d.conflicts
            if c.isEmpty { continue }
            if let space, try self.space(ofDocument: d.id) != space { continue }
            out.append((d, c))
        }
        return out
    }

    // MARK: - Changes

    /// The change named by `text` (`AUTHORSHORT/SEQ` as ``ChangeID/description`` prints it, where
    /// the author may be any prefix of the 32-digit replica hex that names exactly one author).
    /// With `among`, only those changes are candidates; otherwise any change this node holds in
    /// `space` (nil: the default space; a document's changes live in the document's space).
    public func resolveChange(_ text: String, among candidates: [ChangeID]? = nil, space: SpaceID? = nil)
        throws(NodeError) -> ChangeID
    {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = t.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let seq = UInt64(parts[1]), seq >= 1,
            parts[0].allSatisfy({ $0.isHexDigit })
        else {
            throw NodeError(
                .invalidArgument,
                "\(text.debugDescription) is not a change id: write AUTHOR/SEQ as `saraban history DOC` prints it, "
                    + "for example 8872055f/3")
        }
        let prefix = String(parts[0])
        let clock: VersionVector
        do { clock = try store.clock(space: space) } catch { throw NodeError(error) }
        let pool: [ChangeID] =
            candidates ?? clock.sortedEntries.map { ChangeID(author: $0.author, seq: $0.seq) }
        let authors = Set(pool.map(\.author)).filter { $0.hex.hasPrefix(prefix) }.sorted()
        guard !authors.isEmpty else {
            throw NodeError(
                .unknownDocument,
                candidates == nil
                    ? "no change by an author starting with \(prefix) here; `saraban history DOC` lists the changes"
                    : "\(text) is not one of the values in conflict; choose one of: "
                        + Set(pool).sorted().map(\.description).joined(separator: ", "))
        }
        guard authors.count == 1 else {
            throw NodeError(
                .ambiguousDocument,
                "the author prefix \(prefix) matches \(authors.count) authors; give more digits: "
                    + authors.map(\.hex).joined(separator: ", "))
        }
        let id = ChangeID(author: authors[0], seq: seq)
        if let candidates {
            guard candidates.contains(id) else {
                throw NodeError(
                    .unknownDocument,
                    "\(id) is not one of the values in conflict; choose one of: "
                        + Set(candidates).sorted().map(\.description).joined(separator: ", "))
            }
        } else {
            guard clock.includes(id) else {
                throw NodeError(
                    .unknownDocument,
                    "this node holds changes \(authors[0].short)/1…\(clock[authors[0]]), not \(id); "
                        + "`saraban history DOC` lists the changes")
            }
        }
        return id
    }

    /// Which changes of `space` arrived in (or were sealed into) a stored envelope: every stored
    /// envelope had its signature and hash chain verified on receipt, or was signed here.
    public func signatureStatuses(space: SpaceID) throws(NodeError) -> (Change) -> SignatureStatus {
        let coverage: [ReplicaID: [ClosedRange<UInt64>]]
        do { coverage = try store.envelopeCoverage(space: space) } catch { throw NodeError(error) }
        return { c in coverage[c.author]?.contains { $0.contains(c.seq) } == true ? .verified : .unsigned }
    }

    /// Every logged change of the document's space, with the ones touching `id` in causal order
    /// (see ``causalOrder(_:)``).
    func changes(touching id: DocID) throws(NodeError) -> (space: SpaceID, all: [Change], touching: [Change]) {
        let space = try space(ofDocument: id)
        let all: [Change]
        do { all = try store.changes(space: space) } catch { throw NodeError(error) }
        return (space, all, Self.causalOrder(all.filter { $0.documents.contains(id) }))
    }

    /// Sorts changes into a causal order that every node computes alike: by `startOp`, then
    /// author. A change starts at one more than the greatest op counter its author had seen,
    /// so everything in its causal past has a smaller `startOp`.
    public static func causalOrder(_ changes: [Change]) -> [Change] {
        changes.sorted { a, b in a.startOp != b.startOp ? a.startOp < b.startOp : a.author < b.author }
    }

    /// Every change that touched the document, in causal order; with `field`, only those that
    /// touched that field.
    public func history(of id: DocID, field: String? = nil) throws(NodeError) -> [HistoryEntry] {
        let dir = AuthorDirectory(self)
        let (space, _, touching) = try changes(touching: id)
        let signature = try signatureStatuses(space: space)
        return touching.compactMap { c in
            var ops: [OperationSummary] = []
            var fields = Set<String>()
            for (_, op) in c.operations(on: id) {
                ops.append(Self.summary(op))
                if let f = op.field { fields.insert(f) }
            }
            if let field, !fields.contains(field) { return nil }
            return HistoryEntry(
                change: c, author: dir[c.author], fields: fields.sorted(), operations: ops,
                signature: signature(c))
        }
    }

    static func summary(_ op: SarabanCore.Operation) -> OperationSummary {
        switch op {
        case .createDocument(let kind): return .init(action: .create, value: kind)
        case .deleteDocument: return .init(action: .delete)
        case .restoreDocument: return .init(action: .restore)
        case .set(_, let f, let v, _): return .init(action: .set, field: f, value: v.description)
        case .textInsert(_, let f, let ins):
            return .init(action: .insertText, field: f, value: ins.content, count: ins.content.unicodeScalars.count)
        case .textDelete(_, let f, let del): return .init(action: .deleteText, field: f, count: del.length)
        case .setAdd(_, let f, let v, _): return .init(action: .add, field: f, value: v)
        case .setRemove(_, let f, let v, _): return .init(action: .remove, field: f, value: v)
        case .listAppend(_, let f, let v): return .init(action: .append, field: f, value: v)
        case .own(_, let grant, let revoke):
            let text = grant.map { "+\($0)" } + revoke.map { "-\($0)" }
            return .init(action: .own, value: text.joined(separator: " "))
        }
    }

    /// The document as it stood right after change `at` on the node that made it: the changes
    /// in that change's causal past (and itself) that touch the document, applied in causal
    /// order to a fresh in-memory store. The stored document is not touched.
    public func document(_ id: DocID, at target: ChangeID) throws(NodeError) -> Document {
        let (_, all, touching) = try changes(touching: id)
        guard let c = all.first(where: { $0.id == target }) else {
            throw NodeError(.unknownDocument, "this node holds no change \(target); `saraban history \(id)` lists them")
        }
        let past = c.clock
        var mem = MemoryStore()
        do {
            for x in touching where past.includes(x.id) { try x.apply(to: &mem) }
        } catch {
            throw NodeError(.storage, "cannot rebuild \(id) at \(target): \(error)")
        }
        guard let d = mem.documents[id] else {
            throw NodeError(
                .unknownDocument, "document \(id) did not exist yet at change \(target) (it was created later)")
        }
        return d
    }

    // MARK: - Diff

    /// Field-level differences from `old` to `new` (two states of one document), sorted by field.
    public static func diff(_ old: Document, _ new: Document) -> [FieldDiff] {
        var out: [FieldDiff] = []
        if old.isDeleted != new.isDeleted { out.append(.lifecycle(oldDeleted: old.isDeleted, newDeleted: new.isDeleted)) }
        let names = Set(old.fields.map(\.name)).union(new.fields.map(\.name)).sorted()
        for f in names {
            switch new.kind(of: f) ?? old.kind(of: f)! {
            case .register:
                let a = old.registers[f]?.entries ?? []
                let b = new.registers[f]?.entries ?? []
                if a.map(\.stamp.op) != b.map(\.stamp.op) {
                    out.append(.register(field: f, old: a.map(\.value), new: b.map(\.value)))
                }
            case .text:
                let a = old.texts[f]?.string ?? ""
                let b = new.texts[f]?.string ?? ""
                if a != b || (old.texts[f] == nil) != (new.texts[f] == nil) {
                    out.append(.text(field: f, old: a, new: b, lines: lineDiff(a, b)))
                }
            case .set:
                let a = Set(old.sets[f]?.values ?? [])
                let b = Set(new.sets[f]?.values ?? [])
                if a != b { out.append(.set(field: f, added: b.subtracting(a).sorted(), removed: a.subtracting(b).sorted())) }
            case .list:
                let a = old.lists[f]?.entries ?? []
                let b = new.lists[f]?.entries ?? []
                let aIDs = Set(a.map(\.stamp.op))
                let bIDs = Set(b.map(\.stamp.op))
                let appended = b.filter { !aIDs.contains($0.stamp.op) }
                let missing = a.filter { !bIDs.contains($0.stamp.op) }
                if !appended.isEmpty || !missing.isEmpty { out.append(.list(field: f, appended: appended, missing: missing)) }
            }
        }
        return out
    }

    /// A line-level diff (longest common subsequence; texts here are letters, not source trees).
    public static func lineDiff(_ old: String, _ new: String) -> [DiffLine] {
        let a = old.isEmpty ? [] : old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let b = new.isEmpty ? [] : new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard a.count * b.count <= 4_000_000 else {
            return a.map { DiffLine(kind: .removed, text: $0) } + b.map { DiffLine(kind: .added, text: $0) }
        }
        // lcs[i][j]: LCS length of a[i...] and b[j...].
        var lcs = Array(repeating: Array(repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in stride(from: a.count - 1, through: 0, by: -1) {
            for j in stride(from: b.count - 1, through: 0, by: -1) {
                lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var out: [DiffLine] = []
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            if i < a.count, j < b.count, a[i] == b[j] {
                out.append(DiffLine(kind: .same, text: a[i]))
                i += 1
                j += 1
            } else if j < b.count, i == a.count || lcs[i][j + 1] > lcs[i + 1][j] {
                out.append(DiffLine(kind: .added, text: b[j]))
                j += 1
            } else {
                out.append(DiffLine(kind: .removed, text: a[i]))
                i += 1
            }
        }
        return out
    }

    // MARK: - Resolving

    /// Resolves a register conflict by writing, in one new change, the value of change `keep`
    /// again: it supersedes every value this node shows, so every node that receives it shows
    /// one value. Returns the new change, or nil if the field already held only that value.
    @discardableResult
    public func resolveRegister(_ id: DocID, field: String, keep: ChangeID) throws(NodeError) -> Change? {
        let d = try document(id)
        guard let r = d.registers[field] else { throw Self.noRegister(d, field) }
        guard let entry = r.entries.first(where: { $0.stamp.change == keep }) else {
            throw NodeError(
                .unknownField,
                "field '\(field)' holds no value from change \(keep); its values come from: "
                    + r.entries.map(\.stamp.change.description).joined(separator: ", "))
        }
        if !r.isConflicted { return nil }
        return try edit(in: try space(ofDocument: id)) { tx, docs in try tx.resolve(id, field: field, keep: entry.stamp.op, in: &docs) }.change
    }

    /// Resolves a register conflict by writing a new value (an ordinary write: it supersedes
    /// every value shown). Refuses a field that holds no conflict.
    @discardableResult
    public func resolveRegister(_ id: DocID, field: String, value: Value) throws(NodeError) -> Change? {
        let d = try document(id)
        guard let r = d.registers[field] else { throw Self.noRegister(d, field) }
        guard r.isConflicted else {
            throw NodeError(
                .refused,
                "field '\(field)' of \(id) holds no conflict (perhaps it was resolved already); "
                    + "to change it use `saraban doc set \(id) \(field) VALUE`")
        }
        return try edit(in: try space(ofDocument: id)) { tx, docs in try tx.set(id, field: field, value: value, in: &docs) }.change
    }

    /// Settles a contested set removal: `keep` adds the element again (an add that clears every
    /// contested removal of it this node sees); otherwise removes it (a removal that has now seen
    /// the concurrent adds). Refuses an element whose removal is not contested.
    @discardableResult
    public func resolveSetRemoval(_ id: DocID, field: String, element: String, keep: Bool) throws(NodeError) -> Change? {
        let d = try document(id)
        guard let s = d.sets[field] else {
            throw NodeError(.unknownField, "document \(id) has no set field '\(field)'")
        }
        guard !s.contested(element).isEmpty else {
            let contested = s.contestedValues
            throw NodeError(
                .unknownField,
                "the set '\(field)' holds no contested removal of \(element.debugDescription)"
                    + (contested.isEmpty ? "" : "; contested: " + contested.map(\.debugDescription).joined(separator: ", ")))
        }
        if keep {
            return try edit(in: try space(ofDocument: id)) { tx, docs in try tx.addToSet(id, field: field, value: element, in: &docs) }.change
        }
        return try edit(in: try space(ofDocument: id)) { tx, docs in try tx.removeFromSet(id, field: field, value: element, in: &docs) }.change
    }

    static func noRegister(_ d: Document, _ field: String) -> NodeError {
        if let k = d.kind(of: field) {
            return NodeError(
                .refused,
                k == .text
                    ? "field '\(field)' is text: concurrent text edits merge and never conflict"
                    : "field '\(field)' holds a \(k.rawValue), not a register")
        }
        let known = d.fields.map(\.name)
        return NodeError(
            .unknownField,
            "document \(d.id) has no field '\(field)'" + (known.isEmpty ? "" : "; its fields are: \(known.joined(separator: ", "))"))
    }
}
