import Foundation
import Testing
import SarabanCore

private let ra = ReplicaID(hi: 0x0a, lo: 1)
private let rb = ReplicaID(hi: 0x0b, lo: 2)
private let rc = ReplicaID(hi: 0x0c, lo: 3)

private func snapshot(_ t: TextCRDT) -> [UInt8] {
    var w = BinaryWriter()
    t.encode(into: &w)
    return w.bytes
}

private func roundTrip(_ t: TextCRDT) throws -> TextCRDT {
    var r = BinaryReader(snapshot(t))
    let u = try TextCRDT.decode(from: &r)
    try r.expectEnd()
    return u
}

/// Types `word` one scalar at a time at `pos`, as an editor would, returning the ops.
private func type(_ word: String, at pos: Int, into t: inout TextCRDT, replica: ReplicaID, counter: inout UInt64) -> [TextInsert] {
    var ops: [TextInsert] = []
    for (k, s) in word.unicodeScalars.enumerated() {
        ops.append(t.insert(at: pos + k, String(s), id: OpID(counter: counter, replica: replica)))
        counter += 1
    }
    return ops
}

@Suite("Text CRDT")
struct TextCRDTTests {
    @Test func localEditsAndCounts() throws {
        var t = TextCRDT()
        #expect(t.count == 0 && t.string == "")
        _ = t.insert(at: 0, "หนังสือราชการ", id: OpID(counter: 1, replica: ra))
        #expect(t.count == "หนังสือราชการ".unicodeScalars.count)
        _ = t.insert(at: t.count, " ด่วนที่สุด", id: OpID(counter: 100, replica: ra))
        #expect(t.string == "หนังสือราชการ ด่วนที่สุด")
        let d = t.delete(at: 0, count: 7)
        #expect(d.length == 7)
        #expect(t.string == "ราชการ ด่วนที่สุด")
        #expect(t.delete(at: 3, count: 0).spans.isEmpty)
        #expect(t.contains(OpID(counter: 1, replica: ra)))  // tombstones keep their ids
        #expect(!t.contains(OpID(counter: 50, replica: ra)))
    }

    @Test func checkedVariantsThrowInsteadOfTrapping() {
        var t = TextCRDT()
        _ = t.insert(at: 0, "abc", id: OpID(counter: 1, replica: ra))
        #expect(throws: TextError.positionOutOfRange(position: 4, length: 3)) {
            try t.tryInsert(at: 4, "x", id: OpID(counter: 10, replica: ra))
        }
        #expect(throws: TextError.positionOutOfRange(position: -1, length: 3)) {
            try t.tryInsert(at: -1, "x", id: OpID(counter: 10, replica: ra))
        }
        #expect(throws: TextError.positionOutOfRange(position: 5, length: 3)) { try t.tryDelete(at: 2, count: 3) }
        #expect(throws: TextError.idInUse(OpID(counter: 2, replica: ra))) {
            try t.tryInsert(at: 0, "x", id: OpID(counter: 2, replica: ra))
        }
        #expect(throws: TextError.missingDependency(OpID(counter: 99, replica: rb))) {
            try t.tryApply(TextInsert(id: OpID(counter: 1, replica: rc), originLeft: OpID(counter: 99, replica: rb),
                                      originRight: nil, content: "z"))
        }
        #expect(throws: TextError.missingDependency(OpID(counter: 1, replica: rb))) {
            try t.tryApply(TextDelete(spans: [IDSpan(start: OpID(counter: 1, replica: rb), length: 1)]))
        }
        #expect(t.string == "abc")
        let ok = try? t.tryInsert(at: 3, "d", id: OpID(counter: 10, replica: ra))
        #expect(ok != nil && t.string == "abcd")
    }

    @Test func valueSemantics() {
        var a = TextCRDT()
        _ = a.insert(at: 0, "hello", id: OpID(counter: 1, replica: ra))
        var b = a
        _ = b.insert(at: 5, " world", id: OpID(counter: 6, replica: ra))
        _ = a.delete(at: 0, count: 1)
        #expect(a.string == "ello")
        #expect(b.string == "hello world")
    }

    /// The classic anomaly: two people type a word at the same place concurrently. The words
    /// must come out whole ("catdog" or "dogcat"), never interleaved ("cdaotg").
    @Test func concurrentWordsDoNotInterleave() throws {
        for (first, second) in [(ra, rb), (rb, ra)] {
            var x = TextCRDT()
            var y = TextCRDT()
            let base = x.insert(at: 0, "[]", id: OpID(counter: 1, replica: first))
            y.apply(base)
            var cx: UInt64 = 10
            var cy: UInt64 = 10
            let ox = type("cat", at: 1, into: &x, replica: first, counter: &cx)
            let oy = type("dog", at: 1, into: &y, replica: second, counter: &cy)
            for o in oy { x.apply(o) }
            for o in ox { y.apply(o) }
            #expect(x.string == y.string)
            #expect(x == y)
            #expect(x.string == "[catdog]" || x.string == "[dogcat]", "interleaved: \(x.string)")
            // Backwards typing (each char inserted before the previous) is also kept whole.
            var p = TextCRDT()
            var q = TextCRDT()
            p.apply(base)
            q.apply(base)
            var op: [TextInsert] = []
            var oq: [TextInsert] = []
            for (k, s) in "tac".unicodeScalars.enumerated() {
                op.append(p.insert(at: 1, String(s), id: OpID(counter: 20 + UInt64(k), replica: first)))
            }
            for (k, s) in "god".unicodeScalars.enumerated() {
                oq.append(q.insert(at: 1, String(s), id: OpID(counter: 20 + UInt64(k), replica: second)))
            }
            for o in oq { p.apply(o) }
            for o in op { q.apply(o) }
            #expect(p == q)
            #expect(p.string == "[catdog]" || p.string == "[dogcat]", "interleaved: \(p.string)")
        }
    }

    /// Remote inserts whose origins fall inside runs force splits; concurrent inserts at the same
    /// gap and a delete across the split all converge.
    @Test func remoteOriginsInsideRunsSplitThem() throws {
        var a = TextCRDT()
        let base = a.insert(at: 0, "hello world", id: OpID(counter: 1, replica: ra))
        var b = TextCRDT()
        b.apply(base)
        var c = TextCRDT()
        c.apply(base)
        let ia = a.insert(at: 3, "A", id: OpID(counter: 20, replica: ra))
        let ib = b.insert(at: 3, "BB", id: OpID(counter: 20, replica: rb))
        let ib2 = b.insert(at: 8, "b", id: OpID(counter: 22, replica: rb))
        let dc = c.delete(at: 2, count: 5)  // "llo w" across the future split point
        let ic = c.insert(at: 2, "C", id: OpID(counter: 30, replica: rc))
        #expect(ia.originLeft == OpID(counter: 3, replica: ra) && ia.originRight == OpID(counter: 4, replica: ra))
        let all: [(TextInsert?, TextDelete?)] = [(ia, nil), (ib, nil), (ib2, nil), (nil, dc), (ic, nil)]
        for (i, d) in all {
            if let i { a.apply(i); b.apply(i); c.apply(i) }
            if let d { a.apply(d); b.apply(d); c.apply(d) }
        }
        #expect(a.string == b.string && b.string == c.string)
        #expect(a == b && b == c)
        // Every inserted piece survives, the deleted range is gone.
        for piece in ["A", "BB", "C", "he", "orld"] { #expect(a.string.contains(piece)) }
        #expect(!a.string.contains("llo"))
        // A fresh replica taking the ops in another order agrees.
        var d = TextCRDT()
        d.apply(base)
        for (i, del) in all.reversed() { if let i { d.apply(i) }; if let del { d.apply(del) } }
        for (i, del) in all { if let i { d.apply(i) }; if let del { d.apply(del) } }
        #expect(d == a && d.string == a.string)
    }

    @Test func idempotentApply() {
        var a = TextCRDT()
        var ops: [TextInsert] = []
        ops.append(a.insert(at: 0, "สวัสดี", id: OpID(counter: 1, replica: ra)))
        ops.append(a.insert(at: 3, "xyz", id: OpID(counter: 10, replica: ra)))
        let d = a.delete(at: 1, count: 4)
        var b = TextCRDT()
        for _ in 0..<3 {
            for o in ops { b.apply(o) }
            b.apply(d)
        }
        #expect(b == a && b.string == a.string)
        let before = snapshot(b)
        for o in ops { b.apply(o) }
        b.apply(d)
        #expect(snapshot(b) == before)
    }

    @Test func snapshotRoundTripAndCanonical() throws {
        var a = TextCRDT()
        #expect(try roundTrip(a) == a)
        _ = a.insert(at: 0, "เรื่อง ขออนุมัติ", id: OpID(counter: 1, replica: ra))
        _ = a.insert(at: 3, "🙂e\u{301}", id: OpID(counter: 40, replica: rb))
        _ = a.delete(at: 1, count: 2)
        _ = a.insert(at: a.count, "!", id: OpID(counter: 50, replica: rc))
        let u = try roundTrip(a)
        #expect(u == a)
        #expect(u.string == a.string)
        #expect(snapshot(u) == snapshot(a))
        // The decoded replica keeps working, exactly like the original.
        var a2 = a
        var u2 = u
        let o1 = a2.insert(at: 2, "Q", id: OpID(counter: 60, replica: ra))
        let o2 = u2.insert(at: 2, "Q", id: OpID(counter: 60, replica: ra))
        #expect(o1 == o2)
        let d1 = a2.delete(at: 0, count: 3)
        let d2 = u2.delete(at: 0, count: 3)
        #expect(d1 == d2 && a2 == u2)
        var fresh = TextCRDT()
        fresh.apply(TextInsert(id: OpID(counter: 70, replica: rc), originLeft: nil, originRight: nil, content: "z"))
        #expect(fresh.contains(OpID(counter: 70, replica: rc)))
    }

    @Test func snapshotRejectsInvalidUTF8() throws {
        var t = TextCRDT()
        _ = t.insert(at: 0, "aé", id: OpID(counter: 1, replica: ra))
        let good = snapshot(t)
        #expect(Array(good.suffix(3)) == [0x61, 0xC3, 0xA9])
        for bad in [[0x61, 0xC0, 0xA9], [0x61, 0xC3, 0x29], [0x61, 0xFF, 0xA9], [0x61, 0xED, 0xA0], [0x61, 0xA9, 0xA9]] as [[UInt8]] {
            var b = good
            b.replaceSubrange(b.count - 3..<b.count, with: bad)
            var r = BinaryReader(b)
            #expect(throws: DecodingError.self) { _ = try TextCRDT.decode(from: &r) }
        }
        // A surrogate encoded in three bytes (ED A0 80) is not a scalar.
        var b = good
        b.replaceSubrange(b.count - 4..<b.count, with: [4, 0x61, 0xED, 0xA0, 0x80])
        var r = BinaryReader(b)
        #expect(throws: DecodingError.self) { _ = try TextCRDT.decode(from: &r) }
    }

    @Test func opEncodingRoundTrip() throws {
        let ops = [
            TextInsert(id: OpID(counter: 5, replica: ra), originLeft: nil, originRight: nil, content: "ด่วน"),
            TextInsert(id: OpID(counter: 5, replica: ra), originLeft: OpID(counter: 4, replica: ra),
                       originRight: OpID(counter: 2, replica: rb), content: "x"),
            TextInsert(id: OpID(counter: .max - 1, replica: rc), originLeft: OpID(counter: 9, replica: rb),
                       originRight: OpID(counter: 1, replica: rc), content: "y"),
        ]
        for op in ops {
            var w = BinaryWriter()
            op.encode(into: &w)
            var r = BinaryReader(w.bytes)
            #expect(try TextInsert.decode(from: &r) == op)
            #expect(r.isAtEnd)
            for cut in 0..<w.bytes.count {
                var t = BinaryReader(Array(w.bytes[0..<cut]))
                #expect(throws: DecodingError.self) { try TextInsert.decode(from: &t) }
            }
        }
        let del = TextDelete(spans: [IDSpan(start: OpID(counter: 1, replica: ra), length: 3),
                                     IDSpan(start: OpID(counter: 9, replica: ra), length: 1),
                                     IDSpan(start: OpID(counter: 2, replica: rb), length: 7)])
        var w = BinaryWriter()
        del.encode(into: &w)
        var r = BinaryReader(w.bytes)
        #expect(try TextDelete.decode(from: &r) == del)
        for cut in 0..<w.bytes.count {
            var t = BinaryReader(Array(w.bytes[0..<cut]))
            #expect(throws: DecodingError.self) { try TextDelete.decode(from: &t) }
        }
        // An insert whose ids would overflow is rejected.
        var bad = BinaryWriter()
        TextInsert(id: OpID(counter: .max, replica: ra), originLeft: nil, originRight: nil, content: "ab").encode(into: &bad)
        var br = BinaryReader(bad.bytes)
        #expect(throws: DecodingError.self) { try TextInsert.decode(from: &br) }
    }
}
