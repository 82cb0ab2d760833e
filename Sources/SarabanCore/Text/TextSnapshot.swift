// Snapshot encoding of a whole text replica: columnar, canonical.
//
// Runs are written in document order after merging neighbours that a replica happened to keep
// apart (same author, consecutive ids, the right one's origins implied by the left one, same
// deleted flag), and authors are sorted; so two replicas holding the same state write the same
// bytes. Deleted content is not kept: a tombstone needs its ids and origins only.
//
//   u8 version (1)
//   varint A, A × 16-byte replica ids (ascending)
//   varint N (runs)
//   replica column: (author index, repeat) pairs covering N runs
//   length column: N varints (≥ 1)
//   counter column: N zigzag deltas from the previous run's end (counter + length)
//   deleted column: alternating repeat counts, visible first, covering N runs
//   origin-left kinds: ⌈N/4⌉ bytes, 2 bits per run: 0 none, 1 the previous run's last id,
//       2 same author (zigzag counter delta follows), 3 other author (index, zigzag delta follow)
//   origin-left data
//   origin-right kinds (1 = the next run's first id) and data, the same way
//   content: length-prefixed UTF-8 of the visible runs, in order

extension TextEngine {
    static let snapshotVersion: UInt8 = 1

    @inline(__always)
    static func mergeable(_ a: TextRun, _ b: TextRun) -> Bool {
        a.replica == b.replica && a.counter &+ UInt64(a.len) == b.counter && a.deleted == b.deleted
            && b.olReplica == a.replica && b.olCounter == a.counter &+ UInt64(a.len - 1)
            && b.orReplica == a.orReplica && (a.orReplica < 0 || a.orCounter == b.orCounter)
    }

    func encodeSnapshot(into w: inout BinaryWriter) {
        // Runs in document order, merged; content as UTF-8 on the side.
        var all = ContiguousArray<TextRun>()
        var content = [UInt8]()
        content.reserveCapacity(vis + vis / 8)
        var used = [Bool](repeating: false, count: authors.count)
        var l: Int32 = 0
        while l >= 0 {
            let b = runs.base + Int(l) * Self.leafCap
            for s in 0..<Int(leafLen[Int(l)]) {
                let r = b[s]
                if !r.deleted {
                    let c = arena.base + Int(r.content)
                    for j in 0..<Int(r.len) { Self.putUTF8(c[j], &content) }
                }
                used[Int(r.replica)] = true
                if r.olReplica >= 0 { used[Int(r.olReplica)] = true }
                if r.orReplica >= 0 { used[Int(r.orReplica)] = true }
                if let last = all.last, Self.mergeable(last, r) {
                    all[all.count - 1].len += r.len
                } else {
                    all.append(r)
                }
            }
            l = leafNext[Int(l)]
        }
        // Canonical author numbering: ascending ReplicaID among those referenced.
        var order = authors.indices.filter { used[$0] }
        order.sort { authors[$0] < authors[$1] }
        var remap = [Int](repeating: -1, count: authors.count)
        for (k, a) in order.enumerated() { remap[a] = k }

        w.byte(Self.snapshotVersion)
        w.varint(order.count)
        for a in order { w.replica(authors[a]) }
        let n = all.count
        w.varint(n)
        // replica RLE
        var i = 0
        while i < n {
            let r = all[i].replica
            var j = i + 1
            while j < n && all[j].replica == r { j += 1 }
            w.varint(remap[Int(r)])
            w.varint(j - i)
            i = j
        }
        for r in all { w.varint(Int(r.len)) }
        var prevEnd: UInt64 = 0
        for r in all {
            w.signed(Int64(bitPattern: r.counter &- prevEnd))
            prevEnd = r.counter &+ UInt64(r.len)
        }
        // deleted RLE, visible first
        var state = false
        i = 0
        while i < n {
            var j = i
            while j < n && all[j].deleted == state { j += 1 }
            w.varint(j - i)
            state.toggle()
            i = j
        }
        if n > 0 && all[n - 1].deleted != state {
            // The loop above ended right after writing the last run's state; nothing more.
        }
        // origin-left
        var kinds = [UInt8](repeating: 0, count: (n + 3) / 4)
        var data = BinaryWriter(capacity: n)
        for (k, r) in all.enumerated() {
            var kind: UInt8 = 0
            if r.olReplica >= 0 {
                if k > 0, all[k - 1].replica == r.olReplica, all[k - 1].counter &+ UInt64(all[k - 1].len - 1) == r.olCounter {
                    kind = 1
                } else if r.olReplica == r.replica {
                    kind = 2
                    data.signed(Int64(bitPattern: r.olCounter &- r.counter))
                } else {
                    kind = 3
                    data.varint(remap[Int(r.olReplica)])
                    data.signed(Int64(bitPattern: r.olCounter &- r.counter))
                }
            }
            kinds[k >> 2] |= kind << (UInt8(k & 3) * 2)
        }
        w.raw(kinds)
        w.raw(data.bytes)
        // origin-right
        for k in kinds.indices { kinds[k] = 0 }
        data = BinaryWriter(capacity: n)
        for (k, r) in all.enumerated() {
            var kind: UInt8 = 0
            if r.orReplica >= 0 {
                if k + 1 < n, all[k + 1].replica == r.orReplica, all[k + 1].counter == r.orCounter {
                    kind = 1
                } else if r.orReplica == r.replica {
                    kind = 2
                    data.signed(Int64(bitPattern: r.orCounter &- r.counter))
                } else {
                    kind = 3
                    data.varint(remap[Int(r.orReplica)])
                    data.signed(Int64(bitPattern: r.orCounter &- r.counter))
                }
            }
            kinds[k >> 2] |= kind << (UInt8(k & 3) * 2)
        }
        w.raw(kinds)
        w.raw(data.bytes)
        w.lengthPrefixed(content)
    }

    static func decodeSnapshot(from r: inout BinaryReader) throws(DecodingError) -> TextEngine {
        let vat = r.offset
        let version = try r.byte()
        guard version == snapshotVersion else {
            throw DecodingError(.unsupportedVersion, at: vat, "text snapshot version \(version)")
        }
        let na = try r.count(max: r.remaining / 16)
        var authors: [ReplicaID] = []
        authors.reserveCapacity(na)
        var authorIndex: [ReplicaID: Int32] = [:]
        for k in 0..<na {
            let at = r.offset
            let a = try r.replica()
            if let p = authors.last, !(p < a) { throw DecodingError(.invalidValue, at: at, "authors not ascending") }
            authors.append(a)
            authorIndex[a] = Int32(k)
        }
        let n = try r.count(max: r.remaining)
        var all = ContiguousArray<TextRun>(repeating: .zero, count: n)
        // replicas
        var i = 0
        while i < n {
            let at = r.offset
            guard na > 0 else { throw DecodingError(.invalidReference, at: at, "runs without authors") }
            let a = try r.count(max: na - 1)
            let rep = try r.count(max: n - i)
            guard rep > 0 else { throw DecodingError(.invalidValue, at: at, "empty replica repeat") }
            for j in i..<i + rep { all[j].replica = Int32(a) }
            i += rep
        }
        var total = 0
        for j in 0..<n {
            let at = r.offset
            let len = try r.count(max: Int(Int32.max))
            guard len > 0 else { throw DecodingError(.invalidValue, at: at, "empty run") }
            all[j].len = Int32(len)
            total += len
        }
        var prevEnd: UInt64 = 0
        for j in 0..<n {
            let at = r.offset
            let c = prevEnd &+ UInt64(bitPattern: try r.signed())
            guard c <= UInt64.max - UInt64(all[j].len) else { throw DecodingError(.invalidValue, at: at, "id overflow") }
            all[j].counter = c
            prevEnd = c + UInt64(all[j].len)
        }
        var visTotal = 0
        var state = false
        i = 0
        while i < n {
            let rep = try r.count(max: n - i)
            if rep > 0 {
                for j in i..<i + rep {
                    all[j].deleted = state
                    if !state { visTotal += Int(all[j].len) }
                }
            }
            i += rep
            state.toggle()
            if rep == 0 && i < n && !state {
                // two zero repeats in a row would loop forever on hostile input
                throw DecodingError(.invalidValue, at: r.offset, "empty deleted repeats")
            }
        }
        for side in 0..<2 {
            let kat = r.offset
            let kinds = try r.raw((n + 3) / 4)
            let kb = kinds.startIndex
            for j in 0..<n {
                let kind = (kinds[kb + (j >> 2)] >> (UInt8(j & 3) * 2)) & 3
                var rep: Int32 = -1
                var c: UInt64 = 0
                switch kind {
                case 0: break
                case 1:
                    if side == 0 {
                        guard j > 0 else { throw DecodingError(.invalidReference, at: kat, "implied origin-left of the first run") }
                        rep = all[j - 1].replica
                        c = all[j - 1].counter &+ UInt64(all[j - 1].len - 1)
                    } else {
                        guard j + 1 < n else { throw DecodingError(.invalidReference, at: kat, "implied origin-right of the last run") }
                        rep = all[j + 1].replica
                        c = all[j + 1].counter
                    }
                case 2:
                    rep = all[j].replica
                    c = all[j].counter &+ UInt64(bitPattern: try r.signed())
                default:
                    rep = Int32(try r.count(max: na - 1))
                    c = all[j].counter &+ UInt64(bitPattern: try r.signed())
                }
                if side == 0 {
                    all[j].olReplica = rep
                    all[j].olCounter = c
                } else {
                    all[j].orReplica = rep
                    all[j].orCounter = c
                }
            }
        }
        let cat = r.offset
        let bytes = try r.lengthPrefixed()
        var e = TextEngine()
        e.authors = authors
        e.authorIndex = authorIndex
        // content → arena
        e.arena.reserve(bytes.count)
        let decoded = bytes.withUnsafeBufferPointer { u in Self.decodeUTF8(u, into: e.arena.base) }
        guard decoded >= 0 else { throw DecodingError(.invalidUTF8, at: cat) }
        e.arena.count = decoded
        guard e.arena.count == visTotal else {
            throw DecodingError(.invalidValue, at: cat, "content has \(e.arena.count) scalars, runs need \(visTotal)")
        }
        var off: Int32 = 0
        for j in 0..<n where !all[j].deleted {
            all[j].content = off
            off += all[j].len
        }
        e.bulkLoad(all)
        guard e.buildIndex() else { throw DecodingError(.invalidValue, at: vat, "duplicate ids in text snapshot") }
        for j in 0..<n {
            let x = all[j]
            if x.olReplica >= 0 && e.index[Int(x.olReplica)].find(x.olCounter) == nil {
                throw DecodingError(.invalidReference, at: vat, "origin-left of run \(j) is missing")
            }
            if x.orReplica >= 0 && e.index[Int(x.orReplica)].find(x.orCounter) == nil {
                throw DecodingError(.invalidReference, at: vat, "origin-right of run \(j) is missing")
            }
        }
        return e
    }

    /// Validates and decodes UTF-8 into `out` (room for u.count scalars); returns the scalar
    /// count, or -1 if the bytes are not valid UTF-8 (overlong forms and surrogates rejected).
    static func decodeUTF8(_ u: UnsafeBufferPointer<UInt8>, into out: UnsafeMutablePointer<UInt32>) -> Int {
        let n = u.count
        var i = 0
        var k = 0
        while i < n {
            let b0 = UInt32(u[i])
            if b0 < 0x80 {
                out[k] = b0
                i &+= 1
            } else if b0 < 0xC2 {
                return -1
            } else if b0 < 0xE0 {
                guard i + 1 < n else { return -1 }
                let c1 = UInt32(u[i + 1])
                guard c1 & 0xC0 == 0x80 else { return -1 }
                out[k] = (b0 & 0x1F) << 6 | (c1 & 0x3F)
                i &+= 2
            } else if b0 < 0xF0 {
                guard i + 2 < n else { return -1 }
                let c1 = UInt32(u[i + 1]), c2 = UInt32(u[i + 2])
                guard c1 & 0xC0 == 0x80, c2 & 0xC0 == 0x80 else { return -1 }
                let v = (b0 & 0x0F) << 12 | (c1 & 0x3F) << 6 | (c2 & 0x3F)
                guard v >= 0x800, v < 0xD800 || v > 0xDFFF else { return -1 }
                out[k] = v
                i &+= 3
            } else if b0 < 0xF5 {
                guard i + 3 < n else { return -1 }
                let c1 = UInt32(u[i + 1]), c2 = UInt32(u[i + 2]), c3 = UInt32(u[i + 3])
                guard c1 & 0xC0 == 0x80, c2 & 0xC0 == 0x80, c3 & 0xC0 == 0x80 else { return -1 }
                let v = (b0 & 0x07) << 18 | (c1 & 0x3F) << 12 | (c2 & 0x3F) << 6 | (c3 & 0x3F)
                guard v >= 0x10000, v <= 0x10FFFF else { return -1 }
                out[k] = v
                i &+= 4
            } else {
                return -1
            }
            k &+= 1
        }
        return k
    }

    /// Replaces the (fresh, empty) tree with `all`, leaves and nodes filled to 3/4.
    mutating func bulkLoad(_ all: ContiguousArray<TextRun>) {
        nodeChild.count = 0; nodeVis.count = 0; nodeTot.count = 0
        nodeLen.count = 0; nodeParent.count = 0; nodeHeight.count = 0; nodeSlot.count = 0
        let fill = Self.leafCap * 3 / 4
        var level: [Int32] = []
        var lv: [Int] = []
        var lt: [Int] = []
        var i = 0
        var prev: Int32 = -1
        let n = all.count
        repeat {
            let l = level.isEmpty ? 0 : newLeaf()
            let k = min(fill, n - i)
            var v = 0
            var t = 0
            let b = runs.base + Int(l) * Self.leafCap
            for j in 0..<k {
                let x = all[i + j]
                b[j] = x
                v += x.visLen
                t += Int(x.len)
            }
            leafLen[Int(l)] = Int32(k)
            leafVis[Int(l)] = v
            leafTot[Int(l)] = t
            if prev >= 0 { leafNext[Int(prev)] = l }
            prev = l
            level.append(l); lv.append(v); lt.append(t)
            vis += v
            tot += t
            i += k
        } while i < n
        let fillN = Self.fan * 3 / 4
        var height: Int32 = 1
        repeat {
            var next: [Int32] = []
            var nv: [Int] = []
            var nt: [Int] = []
            var j = 0
            while j < level.count {
                let node = newNode(height: height)
                let k = min(fillN, level.count - j)
                var v = 0
                var t = 0
                for x in 0..<k {
                    let c = level[j + x]
                    nodeChild[Int(node) * Self.fan + x] = c
                    nodeVis[Int(node) * Self.fan + x] = lv[j + x]
                    nodeTot[Int(node) * Self.fan + x] = lt[j + x]
                    v += lv[j + x]
                    t += lt[j + x]
                    if height == 1 {
                        leafParent[Int(c)] = node
                        leafSlot[Int(c)] = Int32(x)
                    } else {
                        nodeParent[Int(c)] = node
                        nodeSlot[Int(c)] = Int32(x)
                    }
                }
                nodeLen[Int(node)] = Int32(k)
                next.append(node); nv.append(v); nt.append(t)
                j += k
            }
            level = next; lv = nv; lt = nt
            height += 1
        } while level.count > 1
        root = level[0]
        nodeParent[Int(root)] = -1
    }
}
