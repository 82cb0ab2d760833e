import Foundation
import SarabanCore
import SarabanCrypto
import SarabanStorage
import SarabanSync

/// What `saraban status` shows.
public struct NodeStatus: Sendable, Hashable, Codable {
    public var office: String
    public var letterCode: String?
    public var nodeID: String
    public var replica: String
    public var dataDirectory: String
    public var documents: Int
    public var deletedDocuments: Int
    public var changes: Int
    public var pendingChanges: Int
    public var databaseBytes: Int64
}

extension Node {
    // MARK: - Status

    public func status() throws(NodeError) -> NodeStatus {
        let s: StoreStats
        do { s = try store.stats() } catch { throw NodeError(error) }
        return NodeStatus(
            office: config.office, letterCode: config.letterCode, nodeID: nodeID.text, replica: replica.hex,
            dataDirectory: dataDirectory.path, documents: s.documents, deletedDocuments: s.deletedDocuments,
            changes: s.changes, pendingChanges: s.pendingChanges, databaseBytes: s.databaseBytes)
    }

    // MARK: - Finding documents

    /// The document named by `text`: its full id, or a prefix that matches exactly one document.
    public func resolveDocument(_ text: String) throws(NodeError) -> DocID {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { throw NodeError(.invalidArgument, "the document id is empty") }
        let matches: [DocID]
        do { matches = try store.documentIDs(withPrefix: text) } catch { throw NodeError(error) }
        if let exact = DocID(text), matches.contains(exact) { return exact }
        switch matches.count {
        case 0:
            throw NodeError(
                .unknownDocument, "no document \(text) in \(dataDirectory.path); `saraban doc list` shows the documents")
        case 1:
            return matches[0]
        default:
            let shown = matches.prefix(10).map { "  \($0)" }.joined(separator: "\n")
            let more = matches.count > 10 ? "\n  … and \(matches.count - 10) more" : ""
            throw NodeError(
                .ambiguousDocument,
                "\(text) matches \(matches.count) documents; give more of the id:\n\(shown)\(more)")
        }
    }

    /// The document, deleted or not.
    public func document(_ id: DocID) throws(NodeError) -> Document {
        let doc: Document?
        do { doc = try store.document(id) } catch { throw NodeError(error) }
        guard let doc else {
            throw NodeError(.unknownDocument, "no document \(id); `saraban doc list` shows the documents")
        }
        return doc
    }

    /// Every document, sorted by id.
    public func documents() throws(NodeError) -> [Document] {
        do { return try store.documents() } catch { throw NodeError(error) }
    }

    /// The documents of `kind` (deleted ones too), in `space` when given: only those are read.
    public func documents(ofKind kind: String, in space: SpaceID? = nil) throws(NodeError) -> [Document] {
        do { return try store.documents(kind: kind, space: space) } catch { throw NodeError(error) }
    }

    // MARK: - Local edits

    /// Makes one local change in `space` (nil: the default space): `body` edits through the core
    /// `Transaction`; the change is logged, the documents updated and the change sealed into a
    /// signed envelope, in one SQLite transaction. Returns the body's value and the change.
    @discardableResult
    public func edit<T>(
        in space: SpaceID? = nil,
        _ body: (inout Transaction, inout DocumentsInTransaction) throws -> T
    ) throws(NodeError) -> (value: T, change: Change?) {
        do {
            let r = try store.change(space: space, signer: identity, time: now(), body)
            if let c = r.change {
                logger.debug(
                    "local change", metadata: ["change": "\(c.id)", "ops": "\(c.ops.count)", "docs": "\(c.documents)"])
            }
            return r
        } catch let error as EditError {
            throw NodeError(error)
        } catch let error as StorageError {
            throw NodeError(error)
        } catch let error as NodeError {
            throw error
        } catch {
            throw NodeError(.io, "\(error)")
        }
    }

    /// Several local changes in `space` (nil: the default space) in ONE SQLite transaction: `body`
    /// makes each with ``LocalWriter/change(time:_:)``; they are logged, applied and sealed together.
    public func write<T>(in space: SpaceID? = nil, _ body: (inout LocalWriter) throws -> T) throws(NodeError) -> T {
        do {
            return try store.write(space: space, signer: identity, body).value
        } catch let error as EditError {
            throw NodeError(error)
        } catch let error as StorageError {
            throw NodeError(error)
        } catch let error as NodeError {
            throw error
        } catch {
            throw NodeError(.io, "\(error)")
        }
    }

    /// Creates a document of `kind` with string register fields, in one change, in `space`
    /// (nil: the default space).
    public func createDocument(
        kind: String = "document", fields: [(name: String, value: String)] = [], space: SpaceID? = nil
    ) throws(NodeError) -> DocID {
        for f in fields { try Self.checkFieldName(f.name) }
        if kind == SpaceDocument.kind {
            throw NodeError(.invalidArgument, "the kind \"space\" is reserved for membership documents; choose another")
        }
        return try edit(in: space) { tx, docs in
            let id = try tx.createDocument(kind: kind, in: &docs)
            for f in fields { try tx.set(id, field: f.name, value: .string(f.value), in: &docs) }
            return id
        }.value
    }

    /// Writes a register field (superseding, and so resolving, every value shown).
    public func set(_ id: DocID, field: String, value: Value) throws(NodeError) {
        try Self.checkFieldName(field)
        try edit(in: try space(ofDocument: id)) { tx, docs in try tx.set(id, field: field, value: value, in: &docs) }
    }

    public func insertText(_ id: DocID, field: String, at pos: Int, _ text: String) throws(NodeError) {
        try Self.checkFieldName(field)
        try edit(in: try space(ofDocument: id)) { tx, docs in try tx.insertText(id, field: field, at: pos, text, in: &docs) }
    }

    public func deleteText(_ id: DocID, field: String, at pos: Int, count: Int) throws(NodeError) {
        try Self.checkFieldName(field)
        try edit(in: try space(ofDocument: id)) { tx, docs in try tx.deleteText(id, field: field, at: pos, count: count, in: &docs) }
    }

    public func addToSet(_ id: DocID, field: String, value: String) throws(NodeError) {
        try Self.checkFieldName(field)
        try edit(in: try space(ofDocument: id)) { tx, docs in try tx.addToSet(id, field: field, value: value, in: &docs) }
    }

    public func removeFromSet(_ id: DocID, field: String, value: String) throws(NodeError) {
        try Self.checkFieldName(field)
        try edit(in: try space(ofDocument: id)) { tx, docs in try tx.removeFromSet(id, field: field, value: value, in: &docs) }
    }

    public func append(_ id: DocID, field: String, value: String) throws(NodeError) {
        try Self.checkFieldName(field)
        try edit(in: try space(ofDocument: id)) { tx, docs in try tx.append(id, field: field, value: value, in: &docs) }
    }

    public func deleteDocument(_ id: DocID) throws(NodeError) {
        try edit(in: try space(ofDocument: id)) { tx, docs in try tx.deleteDocument(id, in: &docs) }
    }

    public func restoreDocument(_ id: DocID) throws(NodeError) {
        try edit(in: try space(ofDocument: id)) { tx, docs in try tx.restoreDocument(id, in: &docs) }
    }

    /// Field names: non-empty, no control characters, at most 200 bytes.
    public static func checkFieldName(_ name: String) throws(NodeError) {
        guard !name.isEmpty else { throw NodeError(.invalidArgument, "a field name is empty") }
        guard name.utf8.count <= 200 else {
            throw NodeError(.invalidArgument, "the field name '\(name.prefix(40))…' is longer than 200 bytes")
        }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw NodeError(.invalidArgument, "the field name \(name.debugDescription) contains control characters")
        }
    }

    // MARK: - Remote changes

    /// Applies changes from elsewhere (a peer, a change file); see ``Store/apply(changes:receivedAt:)``.
    public func apply(changes: [Change]) throws(NodeError) -> ApplyReport {
        do {
            let r = try store.apply(changes: changes, receivedAt: now())
            logger.info(
                "applied remote changes",
                metadata: ["applied": "\(r.applied)", "duplicates": "\(r.duplicates)", "waiting": "\(r.waiting)"])
            return r
        } catch {
            throw NodeError(error)
        }
    }

    /// What ``exportDocument(_:to:)`` wrote.
    public struct ExportReport: Sendable {
        /// The changes the file carries (for a synced space, every change in its envelopes).
        public var changes: Int
        /// The signed envelopes it carries (0 for a default-space file, which carries changes).
        public var envelopes: Int
        /// The synced space the document belongs to; nil for the default space.
        public var space: SpaceID?
    }

    /// Writes the changes that touch `id`, with their causal past, to a new change file (see
    /// ``ChangeFile``): for a document of the default space the changes themselves; for one of
    /// a synced space the envelopes that hold them, as their authors signed them, each author's
    /// from its first. Never overwrites an existing file.
    @discardableResult
    public func exportDocument(_ id: DocID, to path: String) throws(NodeError) -> ExportReport {
        _ = try document(id)
        let space = try space(ofDocument: id)
        let changes: [Change]
        let isDefault: Bool
        do {
            changes = try store.changesForExport(id)
            isDefault = try store.defaultSpace() == space
        } catch { throw NodeError(error) }
        let bytes: [UInt8]
        let report: ExportReport
        if isDefault {
            bytes = ChangeFile.encode(changes)
            report = ExportReport(changes: changes.count, envelopes: 0, space: nil)
        } else {
            // Per author, the last change needed; whole envelopes up to it (an envelope is
            // signed as a whole, so its later changes come along).
            var upTo: [ReplicaID: UInt64] = [:]
            for c in changes { upTo[c.author] = max(upTo[c.author] ?? 0, c.seq) }
            let all = try envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: .max, bytes: .max))
            let needed = all.envelopes.filter { e in
                e.header.seqStart <= upTo[ReplicaID(bytes: e.header.author.rawRepresentation), default: 0]
            }
            bytes = ChangeFile.encode(space: space, envelopes: needed)
            report = ExportReport(
                changes: needed.reduce(0) { $0 + Int($1.header.changeCount) }, envelopes: needed.count, space: space)
        }
        do {
            try Node.writeNew(Data(bytes), to: path, mode: 0o644)
        } catch where error.code == .alreadyInitialized {
            throw NodeError(.invalidArgument, "\(path) already exists; choose another file name or remove it first")
        }
        logger.info(
            "exported document",
            metadata: ["doc": "\(id)", "changes": "\(report.changes)", "envelopes": "\(report.envelopes)", "file": "\(path)"])
        return report
    }

    /// Reads a change file and applies it (idempotent). A synced space's file is received like
    /// envelopes from a peer: verified, stored (to forward) and applied; if any is refused, the
    /// error says how many were and why, and the others stay applied.
    public func merge(file path: String) throws(NodeError) -> ApplyReport {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError(
                FileManager.default.fileExists(atPath: path) ? .readOnly : .invalidArgument,
                "cannot read \(path): \(FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file")")
        }
        switch try ChangeFile.read([UInt8](data), path: path) {
        case .changes(let changes):
            return try apply(changes: changes)
        case .envelopes(let space, let envelopes):
            let r = try receiveEnvelopes(space: space, envelopes)
            if let first = r.refused.first {
                throw NodeError(
                    .invalidFile,
                    "\(path): \(r.refused.count) of its \(envelopes.count) envelopes were refused (first: \(first.error.message)); "
                        + "the \(r.accepted.count) others were verified and applied")
            }
            var applied = r.applied
            // Envelopes already stored are duplicates as a whole: count their changes.
            applied.duplicates += r.duplicates.reduce(0) { $0 + Int($1.header.changeCount) }
            return applied
        }
    }
}

extension NodeError {
    /// A core edit refusal, with the core's message.
    public init(_ error: EditError) {
        switch error.code {
        case .unknownDocument: self.init(.unknownDocument, error.message)
        case .noSuchValue, .notInSet: self.init(.unknownField, error.message)
        default: self.init(.refused, error.message)
        }
    }
}
