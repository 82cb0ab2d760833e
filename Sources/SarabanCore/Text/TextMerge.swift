// State-based merge: bring another replica's whole state (inserts, tombstones) into this one.
//
// The other replica's runs are inserted as remote inserts in an order that respects their
// origins (a run goes in after the runs holding its origins), then its tombstones are applied.
// Within a run, scalar k > 0 has origin-left k-1, so the part of a run this replica already
// holds is always a prefix; only the rest is inserted. Tombstones whose content the other
// replica no longer has (loaded from a snapshot) are inserted with placeholder scalars and
// deleted at once; their content is never shown and never written to a snapshot.

extension TextCRDT {
    /// Merges `other`'s state into this replica: afterwards it holds every id either held, and
    /// every tombstone. Idempotent and commutative (`a.merge(b)` and `b.merge(a)` give equal
    /// replicas). Throws only if `other` is not a consistent state (an origin it lacks itself,
    /// a cycle of origins), leaving what it had merged so far.
    public mutating func merge(_ other: TextCRDT) throws(TextError) {
        if other.box === box { return }
        makeUnique()
        try box.e.mergeState(from: other.box.e)
    }
}

extension TextEngine {
    mutating func mergeState(from o: TextEngine) throws(TextError) {
        // The other replica's runs, in document order, with its author numbering.
        var all = ContiguousArray<TextRun>()
        all.reserveCapacity(o.runs.count)
        var l: Int32 = 0
        while l >= 0 {
            let b = o.runs.base + Int(l) * Self.leafCap
            for s in 0..<Int(o.leafLen[Int(l)]) { all.append(b[s]) }
            l = o.leafNext[Int(l)]
        }
        let n = all.count
        if n == 0 { return }
        // (author, counter) order, for finding the run that holds an origin.
        var byID = ContiguousArray<Int32>((0..<n).map { Int32($0) })
        byID.sort {
            let x = all[Int($0)], y = all[Int($1)]
            return x.replica != y.replica ? x.replica < y.replica : x.counter < y.counter
        }
        func holder(_ replica: Int32, _ counter: UInt64) -> Int? {
            var lo = 0
            var hi = n
            while lo < hi {
                let mid = (lo + hi) >> 1
                let x = all[Int(byID[mid])]
                if x.replica < replica || (x.replica == replica && x.counter <= counter) { lo = mid + 1 } else { hi = mid }
            }
            guard lo > 0 else { return nil }
            let j = Int(byID[lo - 1])
            let x = all[j]
            return x.replica == replica && counter - x.counter < UInt64(x.len) ? j : nil
        }
        // This replica's author numbers for the other's authors.
        let mine = o.authors.map { intern($0) }
        ensureIndex()
        curLeaf = -1

        func present(_ oReplica: Int32, _ counter: UInt64) -> Bool {
            index[Int(mine[Int(oReplica)])].find(counter) != nil
        }

        // Depth-first over origins with an explicit stack: 0 to do, 1 waiting for an origin, 2 done.
        var state = [UInt8](repeating: 0, count: n)
        var stack: [Int] = []
        for start in 0..<n where state[start] == 0 {
            stack.append(start)
            while let j = stack.last {
                if state[j] == 2 {
                    stack.removeLast()
                    continue
                }
                let x = all[j]
                let r = mine[Int(x.replica)]
                let end = x.counter &+ UInt64(x.len)
                let have = Int(index[Int(r)].presentEnd(from: x.counter, upTo: end) &- x.counter)
                if have == Int(x.len) {
                    state[j] = 2
                    stack.removeLast()
                    continue
                }
                // Origins still missing here come first.
                var wait = -1
                if have == 0 && x.olReplica >= 0 && !present(x.olReplica, x.olCounter) {
                    guard let d = holder(x.olReplica, x.olCounter) else {
                        throw .missingDependency(o.opID(x.olReplica, x.olCounter))
                    }
                    wait = d
                } else if x.orReplica >= 0 && !present(x.orReplica, x.orCounter) {
                    guard let d = holder(x.orReplica, x.orCounter) else {
                        throw .missingDependency(o.opID(x.orReplica, x.orCounter))
                    }
                    wait = d
                }
                if wait >= 0 {
                    guard state[wait] == 0 else { throw .invalidOperation("origins form a cycle") }
                    state[j] = 1
                    stack.append(wait)
                    continue
                }
                var text = String.UnicodeScalarView()
                for k in have..<Int(x.len) {
                    let v: UInt32 = x.content >= 0 ? o.arena[Int(x.content) + k] : 0xFFFD
                    text.append(Unicode.Scalar(v) ?? "\u{FFFD}")
                }
                let c = x.counter &+ UInt64(have)
                let left: OpID? = have > 0 ? o.opID(x.replica, c &- 1)
                    : (x.olReplica >= 0 ? o.opID(x.olReplica, x.olCounter) : nil)
                let right: OpID? = x.orReplica >= 0 ? o.opID(x.orReplica, x.orCounter) : nil
                try applyInsert(TextInsert(id: o.opID(x.replica, c), originLeft: left, originRight: right,
                                           content: String(text)))
                state[j] = 2
                stack.removeLast()
            }
        }
        var spans: [IDSpan] = []
        for x in all where x.deleted { spans.append(IDSpan(start: o.opID(x.replica, x.counter), length: Int(x.len))) }
        if !spans.isEmpty { try applyDelete(TextDelete(spans: spans)) }
    }
}

extension TextReplicaIndex {
    /// The first counter in `start ..< end` that is not present (`end` if all are).
    func presentEnd(from start: UInt64, upTo end: UInt64) -> UInt64 {
        guard var (ci, ei) = locate(start) else { return start }
        var reach = chunks[ci][ei].end
        if reach <= start { return start }
        while reach < end {
            if ei + 1 < chunks[ci].count {
                ei += 1
            } else if ci + 1 < chunks.count {
                ci += 1
                ei = 0
            } else {
                break
            }
            let e = chunks[ci][ei]
            guard e.start == reach else { break }
            reach = e.end
        }
        return min(reach, end)
    }
}
