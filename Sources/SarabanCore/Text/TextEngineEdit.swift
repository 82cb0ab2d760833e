// Local edits and remote integration on `TextEngine`.

extension TextEngine {
    // MARK: - Local edits

    /// Inserts `text` so that it starts at visible position `pos` (0 ≤ pos ≤ vis).
    mutating func localInsert(at pos: Int, _ text: String, id: OpID) -> TextInsert {
        let start = arena.count
        let n = appendScalars(text)
        if n == 0 { return TextInsert(id: id, originLeft: nil, originRight: nil, content: text) }
        let r = intern(id.replica)
        var run = TextRun(counter: id.counter, olCounter: 0, orCounter: 0, content: Int32(start), len: Int32(n),
                          replica: r, olReplica: -1, orReplica: -1, deleted: false)
        if pos == 0 {
            var right: OpID? = nil
            if leafLen[0] > 0 {
                let f = runs[0]
                run.orReplica = f.replica
                run.orCounter = f.counter
                right = opID(f.replica, f.counter)
            }
            insertNewRun(0, 0, run)
            curLeaf = 0
            curStart = 0
            curSlot = 0
            curSlotStart = 0
            return TextInsert(id: id, originLeft: nil, originRight: right, content: text)
        }
        let (leaf, slot, off) = findVisible(pos - 1)
        let i = Int(leaf) * Self.leafCap + slot
        let left = runs[i]
        let olC = left.counter &+ UInt64(off)
        run.olReplica = left.replica
        run.olCounter = olC
        let nr: Int32
        let nc: UInt64
        if off + 1 < Int(left.len) {
            // Inside a run: split it after the origin and insert before the right piece.
            nr = left.replica
            nc = olC &+ 1
            run.orReplica = nr
            run.orCounter = nc
            let sp = splitRun(leaf, slot, off + 1)
            insertNewRun(sp.right.leaf, sp.right.slot, run)
        } else {
            (nr, nc) = nextID(leaf, slot)
            run.orReplica = nr
            run.orCounter = nc
            if left.replica == r && left.counter &+ UInt64(left.len) == id.counter && left.orReplica == nr
                && (nr < 0 || left.orCounter == nc) && left.content >= 0 && Int(left.content) + Int(left.len) == start
            {
                // Typing on: extend the run.
                runs[i].len += Int32(n)
                propagate(leaf, n, n)
                if indexBuilt { index[Int(r)].add(id.counter, id.counter &+ UInt64(n), leaf) }
            } else {
                insertNewRun(leaf, slot + 1, run)
            }
        }
        return TextInsert(id: id, originLeft: opID(left.replica, olC),
                          originRight: nr < 0 ? nil : opID(nr, nc), content: text)
    }

    /// Deletes `count` visible characters starting at `pos` (pos + count ≤ vis).
    mutating func localDelete(at pos: Int, count: Int) -> TextDelete {
        var spans: [IDSpan] = []
        if count <= 0 { return TextDelete(spans: spans) }
        let (leaf0, slot0, off0) = findVisible(pos)
        var off = off0
        var loc = TextLoc(leaf: leaf0, slot: slot0)
        var remaining = count
        var lastR: Int32 = -1
        while remaining > 0 {
            let r = runs[Int(loc.leaf) * Self.leafCap + loc.slot]
            if r.deleted {
                advance(&loc)
                continue
            }
            let take = min(Int(r.len) - off, remaining)
            let c = r.counter &+ UInt64(off)
            if r.replica == lastR, let last = spans.last, last.start.counter &+ UInt64(last.length) == c {
                spans[spans.count - 1].length += take
            } else {
                spans.append(IDSpan(start: opID(r.replica, c), length: take))
                lastR = r.replica
            }
            loc = markDeleted(loc.leaf, loc.slot, off, take)
            remaining -= take
            off = 0
            if remaining > 0 { advance(&loc) }
        }
        return TextDelete(spans: spans)
    }

    // MARK: - Remote integration

    /// Integrates a remote insert (YjsMod / FugueMax rule). Idempotent.
    mutating func applyInsert(_ op: TextInsert) throws(TextError) {
        ensureIndex()
        curLeaf = -1
        let c = op.id.counter
        if let r0 = authorIndex[op.id.replica], index[Int(r0)].find(c) != nil { return }  // already applied
        // Validate before touching anything.
        var n = 0
        for _ in op.content.unicodeScalars { n += 1 }
        if n == 0 { return }
        guard c <= UInt64.max - UInt64(n) else { throw .invalidOperation("id range overflows") }
        if let r0 = authorIndex[op.id.replica], index[Int(r0)].overlaps(c, c + UInt64(n)) {
            throw .invalidOperation("ids \(op.id) +\(n) partly present")
        }
        var olR: Int32 = -1
        var orR: Int32 = -1
        if let ol = op.originLeft {
            guard let r = authorIndex[ol.replica], index[Int(r)].find(ol.counter) != nil else {
                throw .missingDependency(ol)
            }
            olR = r
        }
        if let or = op.originRight {
            guard let r = authorIndex[or.replica], index[Int(r)].find(or.counter) != nil else {
                throw .missingDependency(or)
            }
            orR = r
        }
        let r = intern(op.id.replica)
        let start = arena.count
        _ = appendScalars(op.content)
        var run = TextRun(counter: c, olCounter: op.originLeft?.counter ?? 0, orCounter: op.originRight?.counter ?? 0,
                          content: Int32(start), len: Int32(n), replica: r, olReplica: olR, orReplica: orR,
                          deleted: false)
        if olR < 0 { run.olCounter = 0 }
        if orR < 0 { run.orCounter = 0 }

        // Fast path: nothing concurrent between the origins.
        if olR < 0 {
            let (fr, fc) = leafLen[0] > 0 ? (runs[0].replica, runs[0].counter) : (-1, 0)
            if fr == orR && (orR < 0 || fc == run.orCounter) {
                insertNewRun(0, 0, run)
                return
            }
        } else {
            let (lloc, off) = locate(olR, run.olCounter)!
            let li = Int(lloc.leaf) * Self.leafCap + lloc.slot
            let left = runs[li]
            if off + 1 < Int(left.len) {
                if orR == left.replica && run.orCounter == left.counter &+ UInt64(off + 1) {
                    let sp = splitRun(lloc.leaf, lloc.slot, off + 1)
                    insertNewRun(sp.right.leaf, sp.right.slot, run)
                    return
                }
            } else {
                let (nr, nc) = nextID(lloc.leaf, lloc.slot)
                if nr == orR && (nr < 0 || nc == run.orCounter) {
                    if left.replica == r && left.counter &+ UInt64(left.len) == c && left.orReplica == orR
                        && (orR < 0 || left.orCounter == run.orCounter) && !left.deleted && left.content >= 0
                        && Int(left.content) + Int(left.len) == start
                    {
                        runs[li].len += Int32(n)
                        propagate(lloc.leaf, n, n)
                        index[Int(r)].add(c, c &+ UInt64(n), lloc.leaf)
                    } else {
                        insertNewRun(lloc.leaf, lloc.slot + 1, run)
                    }
                    return
                }
            }
        }
        integrateSlow(run)
    }

    /// The general YjsMod scan over concurrent items between the origins.
    mutating func integrateSlow(_ run: TextRun) {
        // Make both origins fall on run boundaries so the scan can step run by run.
        if run.orReplica >= 0, let (loc, off) = locate(run.orReplica, run.orCounter), off > 0 {
            _ = splitRun(loc.leaf, loc.slot, off)
        }
        var cur = TextLoc(leaf: 0, slot: 0)
        var leftPos = -1
        if run.olReplica >= 0 {
            let (loc, off) = locate(run.olReplica, run.olCounter)!
            if off + 1 < Int(runs[Int(loc.leaf) * Self.leafCap + loc.slot].len) {
                cur = splitRun(loc.leaf, loc.slot, off + 1).right
            } else {
                cur = loc
                advanceOrEnd(&cur)
            }
            leftPos = absPos(run.olReplica, run.olCounter)!
        } else if leafLen[0] == 0 {
            cur = TextLoc(leaf: 0, slot: 0)
        }
        let rightPos = run.orReplica < 0 ? tot : (absPos(run.orReplica, run.orCounter) ?? tot)
        let me = authors[Int(run.replica)]
        var i = leftPos + 1
        var dest = cur
        var scanning = false
        while true {
            if !scanning { dest = cur }
            if i >= tot || cur.slot >= Int(leafLen[Int(cur.leaf)]) { break }
            if i == rightPos { break }
            let o = runs[Int(cur.leaf) * Self.leafCap + cur.slot]
            let oleft = o.olReplica < 0 ? -1 : (absPos(o.olReplica, o.olCounter) ?? -1)
            if oleft < leftPos { break }
            if oleft == leftPos {
                let oright = o.orReplica < 0 ? tot : (absPos(o.orReplica, o.orCounter) ?? tot)
                if oright < rightPos {
                    scanning = true
                } else if oright == rightPos {
                    if me < authors[Int(o.replica)] { break }
                    scanning = false
                } else {
                    scanning = false
                }
            }
            i += Int(o.len)
            advanceOrEnd(&cur)
        }
        insertNewRun(dest.leaf, dest.slot, run)
    }

    /// Like `advance`, but past the last run it stops at (last leaf, its length).
    @inline(__always)
    func advanceOrEnd(_ loc: inout TextLoc) {
        loc.slot += 1
        while loc.slot >= Int(leafLen[Int(loc.leaf)]) {
            let n = leafNext[Int(loc.leaf)]
            if n < 0 { loc.slot = Int(leafLen[Int(loc.leaf)]); return }
            loc.leaf = n
            loc.slot = 0
        }
    }

    /// Marks the listed ids deleted. Idempotent; ids must be present (checked first, atomically).
    mutating func applyDelete(_ op: TextDelete) throws(TextError) {
        ensureIndex()
        curLeaf = -1
        for sp in op.spans {
            guard sp.length > 0 else { continue }
            guard sp.start.counter <= UInt64.max - UInt64(sp.length) else { throw .invalidOperation("span overflows") }
            guard let r = authorIndex[sp.start.replica] else { throw .missingDependency(sp.start) }
            var c = sp.start.counter
            var remaining = sp.length
            while remaining > 0 {
                guard let (loc, off) = locate(r, c) else { throw .missingDependency(opID(r, c)) }
                let take = min(Int(runs[Int(loc.leaf) * Self.leafCap + loc.slot].len) - off, remaining)
                c &+= UInt64(take)
                remaining -= take
            }
        }
        for sp in op.spans where sp.length > 0 {
            let r = authorIndex[sp.start.replica]!
            var c = sp.start.counter
            var remaining = sp.length
            while remaining > 0 {
                let (loc, off) = locate(r, c)!
                let x = runs[Int(loc.leaf) * Self.leafCap + loc.slot]
                let take = min(Int(x.len) - off, remaining)
                if !x.deleted { _ = markDeleted(loc.leaf, loc.slot, off, take) }
                c &+= UInt64(take)
                remaining -= take
            }
        }
    }
}
