// The id → leaf index: for one replica, which leaf holds the run containing a given counter.
//
// Entries cover disjoint counter ranges [start, end) of one replica; every run's id range lies
// inside exactly one entry. Entries live in sorted chunks of at most `maxChunk`, so an insert in
// the middle moves at most a few KB (a two-level B-tree in effect). Only remote operations need
// the index, so the engine builds it lazily on the first one and maintains it from then on.

struct TextIDEntry: BitwiseCopyable {
    var start: UInt64
    var end: UInt64
    var leaf: Int32
}

struct TextReplicaIndex {
    static let maxChunk = 128
    var chunks: [ContiguousArray<TextIDEntry>] = []
    var firsts: [UInt64] = []

    /// The chunk and slot of the last entry with `start <= c`, or nil if there is none.
    @inline(__always)
    func locate(_ c: UInt64) -> (Int, Int)? {
        var lo = 0
        var hi = firsts.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if firsts[mid] <= c { lo = mid + 1 } else { hi = mid }
        }
        let ci = lo - 1
        if ci < 0 { return nil }
        return chunks[ci].withUnsafeBufferPointer { ch -> (Int, Int) in
            var lo = 0
            var hi = ch.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if ch[mid].start <= c { lo = mid + 1 } else { hi = mid }
            }
            return (ci, lo - 1)
        }
    }

    @inline(__always)
    func find(_ c: UInt64) -> Int32? {
        guard let (ci, ei) = locate(c) else { return nil }
        let e = chunks[ci][ei]
        return c < e.end ? e.leaf : nil
    }

    /// True if any id in [start, end) is present.
    func overlaps(_ start: UInt64, _ end: UInt64) -> Bool {
        if let (ci, ei) = locate(start) {
            if chunks[ci][ei].end > start { return true }
            if let n = next(ci, ei) { return chunks[n.0][n.1].start < end }
            return false
        }
        guard let first = firsts.first else { return false }
        return first < end
    }

    private func next(_ ci: Int, _ ei: Int) -> (Int, Int)? {
        if ei + 1 < chunks[ci].count { return (ci, ei + 1) }
        if ci + 1 < chunks.count { return (ci + 1, 0) }
        return nil
    }

    /// Records that ids [start, end) (new, unused) live in `leaf`. Returns false on overlap.
    @discardableResult
    mutating func add(_ start: UInt64, _ end: UInt64, _ leaf: Int32) -> Bool {
        if let (ci, ei) = locate(start) {
            let e = chunks[ci][ei]
            if e.end > start { return false }
            if let n = next(ci, ei), chunks[n.0][n.1].start < end { return false }
            if e.end == start && e.leaf == leaf {
                chunks[ci][ei].end = end
                return true
            }
            insert(TextIDEntry(start: start, end: end, leaf: leaf), chunk: ci, at: ei + 1)
        } else {
            if let first = firsts.first, first < end { return false }
            if chunks.isEmpty {
                chunks.append([TextIDEntry(start: start, end: end, leaf: leaf)])
                firsts.append(start)
            } else {
                insert(TextIDEntry(start: start, end: end, leaf: leaf), chunk: 0, at: 0)
            }
        }
        return true
    }

    /// Points ids [start, end), all inside one existing entry, at `leaf`.
    mutating func setLeaf(_ start: UInt64, _ end: UInt64, _ leaf: Int32) {
        guard let (ci, ei) = locate(start) else { return }
        let e = chunks[ci][ei]
        guard e.end >= end, e.leaf != leaf else { return }
        if e.start == start && e.end == end {
            chunks[ci][ei].leaf = leaf
            return
        }
        var slot = ei
        if e.start < start {
            chunks[ci][ei].end = start
            slot += 1
            insert(TextIDEntry(start: start, end: end, leaf: leaf), chunk: ci, at: slot)
        } else {
            chunks[ci][ei].start = end  // e.start == start, e.end > end: the tail keeps the old leaf
            chunks[ci][ei].end = e.end
            insert(TextIDEntry(start: start, end: end, leaf: leaf), chunk: ci, at: ei)
            return
        }
        if e.end > end {
            // The middle went in at `slot` (possibly in a split chunk); add the tail after it.
            guard let (cj, ej) = locate(start) else { return }
            insert(TextIDEntry(start: end, end: e.end, leaf: e.leaf), chunk: cj, at: ej + 1)
        }
    }

    private mutating func insert(_ e: TextIDEntry, chunk ci: Int, at ei: Int) {
        chunks[ci].insert(e, at: ei)
        if ei == 0 { firsts[ci] = e.start }
        if chunks[ci].count > Self.maxChunk {
            let half = chunks[ci].count / 2
            let tail = ContiguousArray(chunks[ci][half...])
            chunks[ci].removeSubrange(half...)
            chunks.insert(tail, at: ci + 1)
            firsts.insert(tail[0].start, at: ci + 1)
        }
    }

    /// Builds from unsorted entries; returns nil if two entries overlap.
    static func build(_ entries: inout ContiguousArray<TextIDEntry>) -> TextReplicaIndex? {
        entries.sort { $0.start < $1.start }
        var out = TextReplicaIndex()
        var chunk = ContiguousArray<TextIDEntry>()
        chunk.reserveCapacity(maxChunk)
        var last: TextIDEntry? = nil
        for e in entries {
            if var l = last {
                if e.start < l.end { return nil }
                if e.start == l.end && e.leaf == l.leaf {
                    l.end = e.end
                    last = l
                    continue
                }
                chunk.append(l)
                if chunk.count == maxChunk / 2 {
                    out.firsts.append(chunk[0].start)
                    out.chunks.append(chunk)
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            last = e
        }
        if let l = last { chunk.append(l) }
        if !chunk.isEmpty {
            out.firsts.append(chunk[0].start)
            out.chunks.append(chunk)
        }
        return out
    }
}
