// The text CRDT engine: YjsMod / FugueMax integration over run-length items kept in a B+ tree.
//
// Layout (all in flat buffers, no per-node objects):
//   * Leaves hold up to `leafCap` runs in document order (`runs[leaf * leafCap + slot]`),
//     linked left to right by `leafNext`; leaf 0 is always the first leaf.
//   * Inner nodes hold up to `fan` children with the visible and total (incl. tombstones)
//     length of each child's subtree; `nodeHeight == 1` means the children are leaves.
//   * `arena` holds every inserted scalar once; a run points at its first scalar.
//   * A cursor (leaf, visible start of that leaf) serves edits near the previous one.
//   * `index` maps (replica, counter) to the leaf holding it; built on the first remote op.
//
// A run covers ids counter ..< counter+len of one replica. Its first character has origins
// (ol, or); every later character has originLeft = the previous character and the same
// originRight — exactly the per-character origins of YjsMod, so splitting a run is free.

@usableFromInline
struct TextRun: BitwiseCopyable, Sendable {
    var counter: UInt64
    var olCounter: UInt64
    var orCounter: UInt64
    var content: Int32     // offset into the arena, -1 if the content is gone (loaded tombstone)
    var len: Int32
    var replica: Int32
    var olReplica: Int32   // -1: no origin (document start)
    var orReplica: Int32   // -1: no origin (document end)
    var deleted: Bool

    static let zero = TextRun(counter: 0, olCounter: 0, orCounter: 0, content: -1, len: 0, replica: 0,
                              olReplica: -1, orReplica: -1, deleted: false)

    @inline(__always) var visLen: Int { deleted ? 0 : Int(len) }
}

struct TextLoc {
    var leaf: Int32
    var slot: Int
}

@usableFromInline
struct TextEngine {
    static let leafCap = 32
    static let fan = 16

    var runs = TextBuffer<TextRun>(capacity: 32)
    var leafLen = TextBuffer<Int32>(capacity: 4)
    var leafVis = TextBuffer<Int>(capacity: 4)
    var leafTot = TextBuffer<Int>(capacity: 4)
    var leafParent = TextBuffer<Int32>(capacity: 4)
    var leafNext = TextBuffer<Int32>(capacity: 4)
    var leafSlot = TextBuffer<Int32>(capacity: 4)     // index of the leaf among its parent's children
    var nodeChild = TextBuffer<Int32>(capacity: 16)
    var nodeVis = TextBuffer<Int>(capacity: 16)
    var nodeTot = TextBuffer<Int>(capacity: 16)
    var nodeLen = TextBuffer<Int32>(capacity: 4)
    var nodeParent = TextBuffer<Int32>(capacity: 4)
    var nodeHeight = TextBuffer<Int32>(capacity: 4)
    var nodeSlot = TextBuffer<Int32>(capacity: 4)
    var root: Int32 = 0
    var vis = 0
    var tot = 0
    var arena = TextBuffer<UInt32>(capacity: 16)
    var curLeaf: Int32 = -1
    var curStart = 0
    var curSlot = 0          // a run of curLeaf whose start is known: curSlotStart visible chars into the leaf
    var curSlotStart = 0
    var authors: [ReplicaID] = []
    var authorIndex: [ReplicaID: Int32] = [:]
    var lastReplica = ReplicaID(hi: 0, lo: 0)
    var lastReplicaIndex: Int32 = -1
    var indexBuilt = false
    var index: [TextReplicaIndex] = []

    init() {
        _ = newLeaf()
        _ = newNode(height: 1)
        nodeChild[0] = 0
        nodeLen[0] = 1
        leafParent[0] = 0
        root = 0
    }

    func free() {
        runs.free(); leafLen.free(); leafVis.free(); leafTot.free(); leafParent.free(); leafNext.free(); leafSlot.free(); nodeSlot.free()
        nodeChild.free(); nodeVis.free(); nodeTot.free(); nodeLen.free(); nodeParent.free(); nodeHeight.free()
        arena.free()
    }

    func clone() -> TextEngine {
        var e = self
        e.runs = runs.clone(); e.leafLen = leafLen.clone(); e.leafVis = leafVis.clone(); e.leafTot = leafTot.clone()
        e.leafParent = leafParent.clone(); e.leafNext = leafNext.clone(); e.leafSlot = leafSlot.clone()
        e.nodeSlot = nodeSlot.clone()
        e.nodeChild = nodeChild.clone(); e.nodeVis = nodeVis.clone(); e.nodeTot = nodeTot.clone()
        e.nodeLen = nodeLen.clone(); e.nodeParent = nodeParent.clone(); e.nodeHeight = nodeHeight.clone()
        e.arena = arena.clone()
        return e
    }

    // MARK: - Allocation

    mutating func newLeaf() -> Int32 {
        let l = leafLen.count
        leafLen.append(0); leafVis.append(0); leafTot.append(0); leafParent.append(-1); leafNext.append(-1); leafSlot.append(0)
        runs.append(repeating: .zero, count: Self.leafCap)
        return Int32(l)
    }

    mutating func newNode(height: Int32) -> Int32 {
        let n = nodeLen.count
        nodeLen.append(0); nodeParent.append(-1); nodeHeight.append(height); nodeSlot.append(0)
        nodeChild.append(repeating: -1, count: Self.fan)
        nodeVis.append(repeating: 0, count: Self.fan)
        nodeTot.append(repeating: 0, count: Self.fan)
        return Int32(n)
    }

    @inline(__always)
    mutating func intern(_ r: ReplicaID) -> Int32 {
        if lastReplicaIndex >= 0 && r == lastReplica { return lastReplicaIndex }
        let i = internSlow(r)
        lastReplica = r
        lastReplicaIndex = i
        return i
    }

    mutating func internSlow(_ r: ReplicaID) -> Int32 {
        if let i = authorIndex[r] { return i }
        let i = Int32(authors.count)
        authors.append(r)
        authorIndex[r] = i
        if indexBuilt { index.append(TextReplicaIndex()) }
        return i
    }

    @inline(__always)
    func opID(_ replica: Int32, _ counter: UInt64) -> OpID {
        OpID(counter: counter, replica: authors[Int(replica)])
    }

    // MARK: - Counts

    /// Adds (dv, dt) to a leaf and every ancestor.
    @inline(__always)
    mutating func propagate(_ leaf: Int32, _ dv: Int, _ dt: Int) {
        leafVis[Int(leaf)] += dv
        leafTot[Int(leaf)] += dt
        vis += dv
        tot += dt
        var k = Int(leafParent[Int(leaf)]) &* Self.fan &+ Int(leafSlot[Int(leaf)])
        var p = leafParent[Int(leaf)]
        while true {
            nodeVis.base[k] &+= dv
            nodeTot.base[k] &+= dt
            let up = nodeParent[Int(p)]
            if up < 0 { break }
            k = Int(up) &* Self.fan &+ Int(nodeSlot[Int(p)])
            p = up
        }
    }

    /// Total (incl. tombstones) length before the first character of `leaf`.
    func leafAbsStart(_ leaf: Int32) -> Int {
        var pos = 0
        var p = leafParent[Int(leaf)]
        var slot = Int(leafSlot[Int(leaf)])
        while p >= 0 {
            let base = Int(p) * Self.fan
            for k in base..<base + slot { pos += nodeTot[k] }
            slot = Int(nodeSlot[Int(p)])
            p = nodeParent[Int(p)]
        }
        return pos
    }

    // MARK: - Tree surgery

    /// Places `run` at `slot` of `leaf`, splitting the leaf if full. Does not touch counts or the
    /// index except for runs moved by a split. Returns where the run went and the new leaf, if any.
    mutating func place(_ leaf: Int32, _ slot: Int, _ run: TextRun) -> (TextLoc, Int32) {
        var l = leaf
        var s = slot
        var split: Int32 = -1
        if Int(leafLen[Int(l)]) == Self.leafCap {
            split = splitLeaf(l)
            let half = Self.leafCap / 2
            if s > half {
                l = split
                s -= half
            }
        }
        let n = Int(leafLen[Int(l)])
        let b = runs.base + Int(l) * Self.leafCap
        if s < n {
            UnsafeMutableRawPointer(b + s + 1).copyMemory(from: b + s, byteCount: (n - s) * MemoryLayout<TextRun>.stride)
        }
        b[s] = run
        leafLen[Int(l)] = Int32(n + 1)
        return (TextLoc(leaf: l, slot: s), split)
    }

    /// Moves the upper half of a full leaf into a new leaf placed right after it.
    mutating func splitLeaf(_ l: Int32) -> Int32 {
        let l2 = newLeaf()
        let half = Self.leafCap / 2
        let moved = Self.leafCap - half
        let src = runs.base + Int(l) * Self.leafCap + half
        let dst = runs.base + Int(l2) * Self.leafCap
        dst.update(from: src, count: moved)
        var v = 0
        var t = 0
        for i in 0..<moved {
            t += Int(dst[i].len)
            v += dst[i].visLen
        }
        leafLen[Int(l)] = Int32(half)
        leafLen[Int(l2)] = Int32(moved)
        leafVis[Int(l)] -= v
        leafTot[Int(l)] -= t
        leafVis[Int(l2)] = v
        leafTot[Int(l2)] = t
        leafNext[Int(l2)] = leafNext[Int(l)]
        leafNext[Int(l)] = l2
        if l == curLeaf {
            curSlot = 0
            curSlotStart = 0
        }
        insertChild(leafParent[Int(l)], after: l, new: l2, v, t)
        if indexBuilt {
            for i in 0..<moved {
                let r = dst[i]
                index[Int(r.replica)].setLeaf(r.counter, r.counter + UInt64(r.len), l2)
            }
        }
        return l2
    }

    /// Inserts child `n` (with counts v, t taken from child `c`) right after `c` in node `p`.
    mutating func insertChild(_ p0: Int32, after c: Int32, new n: Int32, _ v: Int, _ t: Int) {
        var p = p0
        if Int(nodeLen[Int(p)]) == Self.fan {
            let p2 = splitNode(p)
            if !nodeHolds(p, c) { p = p2 }
        }
        let base = Int(p) * Self.fan
        let len = Int(nodeLen[Int(p)])
        let leaves = nodeHeight[Int(p)] == 1
        let k = base + Int(leaves ? leafSlot[Int(c)] : nodeSlot[Int(c)])
        nodeVis[k] -= v
        nodeTot[k] -= t
        let end = base + len
        var j = end
        while j > k + 1 {
            nodeChild[j] = nodeChild[j - 1]
            nodeVis[j] = nodeVis[j - 1]
            nodeTot[j] = nodeTot[j - 1]
            j -= 1
        }
        nodeChild[k + 1] = n
        nodeVis[k + 1] = v
        nodeTot[k + 1] = t
        nodeLen[Int(p)] = Int32(len + 1)
        if leaves { leafParent[Int(n)] = p } else { nodeParent[Int(n)] = p }
        for j in k + 1...end {
            let x = Int(nodeChild[j])
            if leaves { leafSlot[x] = Int32(j - base) } else { nodeSlot[x] = Int32(j - base) }
        }
    }

    func nodeHolds(_ p: Int32, _ c: Int32) -> Bool {
        let base = Int(p) * Self.fan
        for k in base..<base + Int(nodeLen[Int(p)]) where nodeChild[k] == c { return true }
        return false
    }

    mutating func splitNode(_ p: Int32) -> Int32 {
        let h = nodeHeight[Int(p)]
        let p2 = newNode(height: h)
        let half = Self.fan / 2
        let moved = Self.fan - half
        let a = Int(p) * Self.fan
        let b = Int(p2) * Self.fan
        var v = 0
        var t = 0
        for i in 0..<moved {
            let c = nodeChild[a + half + i]
            nodeChild[b + i] = c
            nodeVis[b + i] = nodeVis[a + half + i]
            nodeTot[b + i] = nodeTot[a + half + i]
            v += nodeVis[b + i]
            t += nodeTot[b + i]
            if h == 1 {
                leafParent[Int(c)] = p2
                leafSlot[Int(c)] = Int32(i)
            } else {
                nodeParent[Int(c)] = p2
                nodeSlot[Int(c)] = Int32(i)
            }
        }
        nodeLen[Int(p)] = Int32(half)
        nodeLen[Int(p2)] = Int32(moved)
        if p == root {
            let r = newNode(height: h + 1)
            var pv = 0
            var pt = 0
            for i in 0..<half {
                pv += nodeVis[a + i]
                pt += nodeTot[a + i]
            }
            let rb = Int(r) * Self.fan
            nodeChild[rb] = p; nodeVis[rb] = pv; nodeTot[rb] = pt
            nodeChild[rb + 1] = p2; nodeVis[rb + 1] = v; nodeTot[rb + 1] = t
            nodeLen[Int(r)] = 2
            nodeParent[Int(p)] = r
            nodeParent[Int(p2)] = r
            nodeSlot[Int(p)] = 0
            nodeSlot[Int(p2)] = 1
            root = r
        } else {
            insertChild(nodeParent[Int(p)], after: p, new: p2, v, t)
        }
        return p2
    }

    /// Inserts a run with fresh ids at (leaf, slot) and accounts for it.
    @discardableResult
    mutating func insertNewRun(_ leaf: Int32, _ slot: Int, _ run: TextRun) -> TextLoc {
        let (loc, _) = place(leaf, slot, run)
        propagate(loc.leaf, run.visLen, Int(run.len))
        if indexBuilt {
            index[Int(run.replica)].add(run.counter, run.counter + UInt64(run.len), loc.leaf)
        }
        return loc
    }

    /// Splits the run at (leaf, slot) so that its first `k` characters stay; returns the
    /// locations of the left and right pieces.
    mutating func splitRun(_ leaf: Int32, _ slot: Int, _ k: Int) -> (left: TextLoc, right: TextLoc) {
        let i = Int(leaf) * Self.leafCap + slot
        let left = runs[i]
        var right = left
        right.counter &+= UInt64(k)
        right.len -= Int32(k)
        if right.content >= 0 { right.content += Int32(k) }
        right.olReplica = left.replica
        right.olCounter = left.counter &+ UInt64(k - 1)
        runs[i].len = Int32(k)
        let (loc, split) = place(leaf, slot + 1, right)
        if loc.leaf != leaf {
            propagate(leaf, -right.visLen, -Int(right.len))
            propagate(loc.leaf, right.visLen, Int(right.len))
            if indexBuilt {
                index[Int(right.replica)].setLeaf(right.counter, right.counter + UInt64(right.len), loc.leaf)
            }
        }
        var leftLoc = TextLoc(leaf: leaf, slot: slot)
        if split >= 0 && slot >= Self.leafCap / 2 { leftLoc = TextLoc(leaf: split, slot: slot - Self.leafCap / 2) }
        return (leftLoc, loc)
    }

    /// Marks characters off ..< off+n of the run at (leaf, slot) deleted; returns the location
    /// of the deleted piece.
    mutating func markDeleted(_ leaf: Int32, _ slot: Int, _ off: Int, _ n: Int) -> TextLoc {
        var loc = TextLoc(leaf: leaf, slot: slot)
        if off > 0 { loc = splitRun(loc.leaf, loc.slot, off).right }
        if Int(runs[Int(loc.leaf) * Self.leafCap + loc.slot].len) > n { loc = splitRun(loc.leaf, loc.slot, n).left }
        runs[Int(loc.leaf) * Self.leafCap + loc.slot].deleted = true
        propagate(loc.leaf, -n, 0)
        return loc
    }

    // MARK: - Navigation

    /// The run holding visible character `q` (0 ≤ q < vis) and the offset inside it.
    @inline(__always)
    mutating func findVisible(_ q: Int) -> (Int32, Int, Int) {
        var leaf: Int32
        var rem: Int
        var s = 0
        if curLeaf >= 0 && q >= curStart && q < curStart &+ leafVis[Int(curLeaf)] {
            leaf = curLeaf
            rem = q &- curStart
            if rem >= curSlotStart {
                s = curSlot
                rem &-= curSlotStart
            }
        } else {
            var node = root
            rem = q
            while true {
                var k = Int(node) * Self.fan
                while rem >= nodeVis[k] {
                    rem -= nodeVis[k]
                    k += 1
                }
                if nodeHeight[Int(node)] == 1 {
                    leaf = nodeChild[k]
                    break
                }
                node = nodeChild[k]
            }
            curLeaf = leaf
            curStart = q &- rem
        }
        let b = runs.base + Int(leaf) * Self.leafCap
        while true {
            let r = b[s]
            if !r.deleted {
                if rem < Int(r.len) {
                    curSlot = s
                    curSlotStart = q &- curStart &- rem
                    return (leaf, s, rem)
                }
                rem &-= Int(r.len)
            }
            s &+= 1
        }
    }

    /// The id of the first character after the run at (leaf, slot), or (-1, 0) at the end.
    @inline(__always)
    func nextID(_ leaf: Int32, _ slot: Int) -> (Int32, UInt64) {
        if slot + 1 < Int(leafLen[Int(leaf)]) {
            let r = runs[Int(leaf) * Self.leafCap + slot + 1]
            return (r.replica, r.counter)
        }
        var l = leafNext[Int(leaf)]
        while l >= 0 {
            if leafLen[Int(l)] > 0 {
                let r = runs[Int(l) * Self.leafCap]
                return (r.replica, r.counter)
            }
            l = leafNext[Int(l)]
        }
        return (-1, 0)
    }

    /// Moves to the next run in document order; stays at (last leaf, its length) at the end.
    @inline(__always)
    func advance(_ loc: inout TextLoc) {
        loc.slot += 1
        while loc.slot >= Int(leafLen[Int(loc.leaf)]) {
            let n = leafNext[Int(loc.leaf)]
            if n < 0 { return }
            loc.leaf = n
            loc.slot = 0
        }
    }

    /// Where the run holding id (replica, counter) is, via the index.
    func locate(_ replica: Int32, _ counter: UInt64) -> (TextLoc, Int)? {
        guard let leaf = index[Int(replica)].find(counter) else { return nil }
        let b = runs.base + Int(leaf) * Self.leafCap
        for s in 0..<Int(leafLen[Int(leaf)]) {
            let r = b[s]
            if r.replica == replica && counter >= r.counter && counter - r.counter < UInt64(r.len) {
                return (TextLoc(leaf: leaf, slot: s), Int(counter - r.counter))
            }
        }
        return nil
    }

    /// The position (counting tombstones) of id (replica, counter), or nil if absent.
    func absPos(_ replica: Int32, _ counter: UInt64) -> Int? {
        guard let leaf = index[Int(replica)].find(counter) else { return nil }
        var pos = leafAbsStart(leaf)
        let b = runs.base + Int(leaf) * Self.leafCap
        for s in 0..<Int(leafLen[Int(leaf)]) {
            let r = b[s]
            if r.replica == replica && counter >= r.counter && counter - r.counter < UInt64(r.len) {
                return pos + Int(counter - r.counter)
            }
            pos += Int(r.len)
        }
        return nil
    }

    // MARK: - Index

    mutating func ensureIndex() {
        if !indexBuilt { _ = buildIndex() }
    }

    /// Builds the id index from the runs; returns false if two runs share an id.
    mutating func buildIndex() -> Bool {
        var per = [ContiguousArray<TextIDEntry>](repeating: [], count: authors.count)
        for l in 0..<leafLen.count {
            let b = runs.base + l * Self.leafCap
            for s in 0..<Int(leafLen[l]) {
                let r = b[s]
                per[Int(r.replica)].append(TextIDEntry(start: r.counter, end: r.counter + UInt64(r.len), leaf: Int32(l)))
            }
        }
        var out: [TextReplicaIndex] = []
        out.reserveCapacity(per.count)
        for i in per.indices {
            guard let ix = TextReplicaIndex.build(&per[i]) else { return false }
            out.append(ix)
        }
        index = out
        indexBuilt = true
        return true
    }

    func containsID(_ id: OpID) -> Bool {
        guard let r = authorIndex[id.replica] else { return false }
        if indexBuilt { return index[Int(r)].find(id.counter) != nil }
        for l in 0..<leafLen.count {
            let b = runs.base + l * Self.leafCap
            for s in 0..<Int(leafLen[l]) {
                let x = b[s]
                if x.replica == r && id.counter >= x.counter && id.counter - x.counter < UInt64(x.len) { return true }
            }
        }
        return false
    }

    // MARK: - Content

    /// Appends the scalars of `text` to the arena; returns how many.
    @inline(__always)
    mutating func appendScalars(_ text: String) -> Int {
        let before = arena.count
        var t = text
        t.withUTF8 { u in
            var i = 0
            let n = u.count
            while i < n {
                let b0 = UInt32(u[i])
                if b0 < 0x80 {
                    arena.append(b0); i += 1
                } else if b0 < 0xE0 {
                    arena.append((b0 & 0x1F) << 6 | UInt32(u[i + 1] & 0x3F)); i += 2
                } else if b0 < 0xF0 {
                    arena.append((b0 & 0x0F) << 12 | UInt32(u[i + 1] & 0x3F) << 6 | UInt32(u[i + 2] & 0x3F)); i += 3
                } else {
                    arena.append((b0 & 0x07) << 18 | UInt32(u[i + 1] & 0x3F) << 12 | UInt32(u[i + 2] & 0x3F) << 6
                        | UInt32(u[i + 3] & 0x3F)); i += 4
                }
            }
        }
        return arena.count - before
    }

    /// The visible text, as UTF-8.
    func utf8() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(vis + vis / 4)
        var l: Int32 = 0
        while l >= 0 {
            let b = runs.base + Int(l) * Self.leafCap
            for s in 0..<Int(leafLen[Int(l)]) {
                let r = b[s]
                if r.deleted || r.content < 0 { continue }
                let c = arena.base + Int(r.content)
                for j in 0..<Int(r.len) { Self.putUTF8(c[j], &out) }
            }
            l = leafNext[Int(l)]
        }
        return out
    }

    @inline(__always)
    static func putUTF8(_ v: UInt32, _ out: inout [UInt8]) {
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        } else {
            out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | v >> 12 & 0x3F))
            out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        }
    }
}
