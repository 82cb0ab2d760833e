/// Whether a received change can be applied now.
public enum Readiness: Hashable, Sendable {
    /// Already applied: applying again is a no-op.
    case duplicate
    /// Its whole causal past is present.
    case ready
    /// Something it depends on has not arrived; it waits in the buffer.
    case waiting
}

/// Holds received changes until their causal past has arrived, then releases them in causal order.
public struct CausalBuffer: Sendable {
    public private(set) var pending: [ChangeID: Change] = [:]

    public init() {}

    public var count: Int { pending.count }
    public var isEmpty: Bool { pending.isEmpty }

    public static func readiness(of c: Change, given clock: VersionVector) -> Readiness {
        let have = clock[c.author]
        if have >= c.seq { return .duplicate }
        if have + 1 != c.seq { return .waiting }
        return clock.dominates(c.deps) ? .ready : .waiting
    }

    /// Keeps a change for later (a duplicate of a pending one is ignored).
    public mutating func hold(_ c: Change) {
        if pending[c.id] == nil { pending[c.id] = c }
    }

    /// Removes and returns, in a causal order, every pending change that `clock` now lets apply,
    /// advancing `clock` past each. Changes found to be duplicates are dropped.
    public mutating func release(advancing clock: inout VersionVector) -> [Change] {
        var out: [Change] = []
        var progress = true
        while progress && !pending.isEmpty {
            progress = false
            // Deterministic order: by author, then seq.
            for id in pending.keys.sorted() {
                guard let c = pending[id] else { continue }
                switch CausalBuffer.readiness(of: c, given: clock) {
                case .duplicate:
                    pending[id] = nil
                case .ready:
                    pending[id] = nil
                    clock[c.author] = c.seq
                    out.append(c)
                    progress = true
                case .waiting:
                    break
                }
            }
        }
        return out
    }
}

/// Documents held in memory.
public struct MemoryStore: DocumentStore, Sendable {
    public var documents: [DocID: Document] = [:]

    public init() {}

    public mutating func withDocument<T>(_ id: DocID, _ body: (inout Document?) throws -> T) throws -> T {
        try body(&documents[id])
    }

    public mutating func withExistingDocument<T>(_ id: DocID, _ body: (inout Document) throws -> T) throws -> T? {
        guard let i = documents.index(forKey: id) else { return nil }
        return try body(&documents.values[i])
    }
}

/// A whole replica in memory: documents, version vector, causal buffer and change log.
/// The node keeps the same state in SQLite; tests and the simulator use this one.
public struct Replica: Sendable {
    public let id: ReplicaID
    public private(set) var clock = VersionVector()
    /// ``clock`` without this replica's own entry: the `deps` of its next change.
    private var deps = VersionVector()
    /// The greatest Lamport counter seen.
    public private(set) var maxOp: UInt64 = 0
    public var store = MemoryStore()
    public private(set) var buffer = CausalBuffer()
    /// Every applied change, in the order applied (a causal order).
    public private(set) var log: [Change] = []
    /// Changes received but refused by ``Ownership`` (counted as received; nothing applied).
    public private(set) var refused: [ChangeID: ChangeRefusal] = [:]

    public init(id: ReplicaID) {
        self.id = id
    }

    public var documents: [DocID: Document] { store.documents }

    /// A transaction for this replica's next change.
    public func transaction(time: Int64) -> Transaction {
        Transaction(author: id, seq: clock[id] + 1, startOp: maxOp + 1, time: time, deps: deps)
    }

    /// Makes one local change atomically: if `body` throws, nothing changes.
    /// Edits are applied in place as `body` runs, so a large document is never copied.
    @discardableResult
    public mutating func edit(time: Int64, _ body: (inout Transaction, inout MemoryStore) throws -> Void) throws -> Change? {
        var tx = transaction(time: time)
        do {
            try body(&tx, &store)
        } catch {
            // Edits already applied by the failed body are undone by rebuilding from the log:
            // a rare path, which keeps the common one free of copies.
            var rebuilt = MemoryStore()
            for c in log { try c.apply(to: &rebuilt) }
            store = rebuilt
            throw error
        }
        guard let c = tx.finish() else { return nil }
        clock[id] = c.seq
        maxOp = max(maxOp, c.maxOp)
        log.append(c)
        return c
    }

    /// Receives a change from anywhere: applies it and everything it unblocks, or buffers it.
    /// Returns the ids applied now, in order. Duplicates are no-ops.
    @discardableResult
    public mutating func receive(_ c: Change) throws -> [ChangeID] {
        switch CausalBuffer.readiness(of: c, given: clock) {
        case .duplicate: return []
        case .waiting:
            buffer.hold(c)
            return []
        case .ready:
            buffer.hold(c)
            var applied: [ChangeID] = []
            var next = clock
            for r in buffer.release(advancing: &next) {
                if let refusal = try r.apply(to: &store) { refused[r.id] = refusal }
                clock[r.author] = r.seq
                if r.author != id { deps[r.author] = r.seq }
                maxOp = max(maxOp, r.maxOp)
                log.append(r)
                applied.append(r.id)
            }
            return applied
        }
    }

    /// Changes this replica holds that a replica at `clock` lacks, in causal order.
    public func changes(missingFrom other: VersionVector) -> [Change] {
        log.filter { !other.includes($0.id) }
    }

    /// The observable state of every live or conflicted document, for comparing replicas.
    public var views: [DocID: DocumentView] { store.documents.mapValues(\.view) }
}
