// Replaying a concurrent editing history (josephg/editing-traces "concurrent" format) through
// TextCRDT: one replica per agent, each transaction applied as local edits on its agent's replica
// once that replica holds exactly the merged state of the transaction's parents.
//
// The benchmark (`saraban-bench trace`) and the trace tests parse the JSON and call this; the
// replay itself is pure.

/// A concurrent editing trace: transactions in an order where every parent comes first.
public struct ConcurrentTextTrace: Sendable {
    /// `[position, deleteCount, insert]`: delete, then insert, at a position in Unicode scalars
    /// of the text as the previous patch of the same transaction left it.
    public struct Patch: Sendable, Equatable {
        public var position: Int
        public var deleteCount: Int
        public var insert: String

        public init(position: Int, deleteCount: Int, insert: String) {
            self.position = position
            self.deleteCount = deleteCount
            self.insert = insert
        }
    }

    public struct Transaction: Sendable, Equatable {
        /// Indexes of earlier transactions whose merged state this one edits ([] = the empty text).
        public var parents: [Int]
        public var agent: Int
        public var patches: [Patch]

        public init(parents: [Int], agent: Int, patches: [Patch]) {
            self.parents = parents
            self.agent = agent
            self.patches = patches
        }
    }

    public let agents: Int
    public let transactions: [Transaction]
    /// clocks[i * agents + b]: how many of agent b's transactions are in transaction i's causal
    /// past, i included.
    let clocks: [Int32]

    /// Checks the history's shape: agents in range, parents earlier, and each agent's
    /// transactions totally ordered (each one's past holds the agent's previous one), which is
    /// what a replica per agent needs.
    public init(agents: Int, transactions: [Transaction]) throws(TextTraceError) {
        guard agents > 0 else { throw .noAgents }
        guard agents <= Int(Int32.max), transactions.count <= Int(Int32.max) else { throw .tooLarge }
        var clocks = [Int32](repeating: 0, count: transactions.count * agents)
        var count = [Int32](repeating: 0, count: agents)
        for (i, t) in transactions.enumerated() {
            guard t.agent >= 0 && t.agent < agents else { throw .agentOutOfRange(transaction: i, agent: t.agent, agents: agents) }
            let base = i * agents
            for p in t.parents {
                guard p >= 0 && p < i else { throw .parentNotEarlier(transaction: i, parent: p) }
                for b in 0..<agents { clocks[base + b] = max(clocks[base + b], clocks[p * agents + b]) }
            }
            guard clocks[base + t.agent] == count[t.agent] else {
                throw .agentNotSequential(transaction: i, agent: t.agent)
            }
            count[t.agent] += 1
            clocks[base + t.agent] += 1
            for (k, p) in t.patches.enumerated() where p.position < 0 || p.deleteCount < 0 {
                throw .patchOutOfRange(transaction: i, patch: k, position: p.position, deleteCount: p.deleteCount, length: -1)
            }
        }
        self.agents = agents
        self.transactions = transactions
        self.clocks = clocks
    }

    /// The result of a replay.
    public struct Replay: Sendable {
        /// Each agent's replica as it was after the agent's last transaction.
        public var replicas: [TextCRDT]
        /// Agent 0's replica after it applied every transaction of the others: the final state.
        public var merged: TextCRDT
        /// Operations produced by the local edits (each one applied again on every replica that pulls it).
        public var operations: Int
    }

    /// Replays every transaction; agent a edits as replica `replica(a)` (distinct per agent).
    /// Throws if a patch names a position outside the text its transaction sees.
    public func replay(replica: (Int) -> ReplicaID) throws(TextTraceError) -> Replay {
        let ids = (0..<agents).map(replica)
        var replicas = (0..<agents).map { _ in TextCRDT() }
        var log = [[TextTraceOp]](repeating: [], count: agents)
        var starts = [[Int]](repeating: [0], count: agents)   // starts[b][k]: b's k-th transaction's first op
        var order = [[Int32]](repeating: [], count: agents)  // order[b][k]: its index in the trace
        var have = [Int32](repeating: 0, count: agents * agents)  // have[a * agents + b]
        var counter = [UInt64](repeating: 0, count: agents)
        var operations = 0

        /// Brings `t` up to `want` (a clock) from `held`, applying the others' transactions in trace order.
        func pull(_ t: inout TextCRDT, _ held: inout ArraySlice<Int32>, want: (Int) -> Int32, skip: Int,
                  trace i: Int) throws(TextTraceError) {
            let h0 = held.startIndex
            while true {
                var next = -1
                var nextAt = Int32.max
                for b in 0..<agents where b != skip && held[h0 + b] < want(b) {
                    let at = order[b][Int(held[h0 + b])]
                    if at < nextAt { nextAt = at; next = b }
                }
                if next < 0 { return }
                let k = Int(held[h0 + next])
                for op in log[next][starts[next][k]..<starts[next][k + 1]] {
                    do {
                        switch op {
                        case .insert(let x): try t.tryApply(x)
                        case .delete(let x): try t.tryApply(x)
                        }
                    } catch {
                        throw .remoteFailed(transaction: i, from: Int(nextAt), error)
                    }
                }
                held[h0 + next] += 1
            }
        }

        for (i, t) in transactions.enumerated() {
            let a = t.agent
            let clock = clocks[i * agents ..< (i + 1) * agents]
            var held = have[a * agents ..< (a + 1) * agents]
            try pull(&replicas[a], &held, want: { clock[clock.startIndex + $0] }, skip: a, trace: i)
            held[held.startIndex + a] += 1
            have[a * agents ..< (a + 1) * agents] = held
            for (k, p) in t.patches.enumerated() {
                let len = replicas[a].count
                guard p.position <= len && p.deleteCount <= len - p.position else {
                    throw .patchOutOfRange(transaction: i, patch: k, position: p.position,
                                           deleteCount: p.deleteCount, length: len)
                }
                if p.deleteCount > 0 { log[a].append(.delete(replicas[a].delete(at: p.position, count: p.deleteCount))) }
                let n = p.insert.unicodeScalars.count
                if n > 0 {
                    log[a].append(.insert(replicas[a].insert(at: p.position, p.insert,
                                                              id: OpID(counter: counter[a], replica: ids[a]))))
                    counter[a] += UInt64(n)
                }
            }
            starts[a].append(log[a].count)
            order[a].append(Int32(i))
        }
        for a in 0..<agents { operations += log[a].count }
        var merged = replicas[0]
        var held = have[0 ..< agents]
        try pull(&merged, &held, want: { Int32(order[$0].count) }, skip: 0, trace: transactions.count)
        return Replay(replicas: replicas, merged: merged, operations: operations)
    }
}

enum TextTraceOp {
    case insert(TextInsert)
    case delete(TextDelete)
}

public enum TextTraceError: Error, Equatable, Sendable, CustomStringConvertible {
    case noAgents
    case tooLarge
    case agentOutOfRange(transaction: Int, agent: Int, agents: Int)
    case parentNotEarlier(transaction: Int, parent: Int)
    /// The agent's previous transaction is not in this one's past: one replica per agent cannot replay it.
    case agentNotSequential(transaction: Int, agent: Int)
    /// A patch outside the text its transaction sees (`length` -1: negative numbers).
    case patchOutOfRange(transaction: Int, patch: Int, position: Int, deleteCount: Int, length: Int)
    /// Another agent's edits did not apply (a bug in the replica, not in the trace).
    case remoteFailed(transaction: Int, from: Int, TextError)

    public var description: String {
        switch self {
        case .noAgents: return "the trace has no agents"
        case .tooLarge: return "the trace is too large"
        case let .agentOutOfRange(t, a, n): return "transaction \(t): agent \(a) is not in 0..<\(n)"
        case let .parentNotEarlier(t, p): return "transaction \(t): parent \(p) is not an earlier transaction"
        case let .agentNotSequential(t, a):
            return "transaction \(t): agent \(a)'s previous transaction is not among its parents' past (an agent's transactions must be totally ordered)"
        case let .patchOutOfRange(t, k, pos, del, len):
            if len < 0 { return "transaction \(t), patch \(k): negative position \(pos) or delete count \(del)" }
            return "transaction \(t), patch \(k): position \(pos) delete \(del) is outside the text of length \(len)"
        case let .remoteFailed(t, from, e):
            return "transaction \(t): applying transaction \(from) from another agent failed: \(e)"
        }
    }
}
