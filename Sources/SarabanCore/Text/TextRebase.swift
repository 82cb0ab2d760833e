// Editing a text field from a copy made earlier (a web form, an offline editor): the edit is the
// difference between the copy and the text submitted, made as text operations against the copy
// and applied to the field as it is now, the way a concurrent replica's operations are. So
// whatever others wrote into the field since the copy was taken is kept beside the new words.

/// One difference between two texts, in Unicode scalars of the old one: delete `deleted`
/// scalars at `position`, then insert `inserted` there.
public struct TextHunk: Hashable, Sendable {
    public var position: Int
    public var deleted: Int
    public var inserted: String

    public init(position: Int, deleted: Int, inserted: String) {
        self.position = position
        self.deleted = deleted
        self.inserted = inserted
    }
}

public enum TextDiff {
    /// The hunks turning `old` into `new`, in increasing `position`: the common prefix and suffix
    /// kept, the middle compared scalar by scalar (Myers' O(ND) shortest edit script). When the
    /// middle differs in more than `maxEdits` scalars it becomes one hunk (bounded time and memory).
    public static func hunks(_ old: String, _ new: String, maxEdits: Int = 2000) -> [TextHunk] {
        let a = Array(old.unicodeScalars)
        let b = Array(new.unicodeScalars)
        let (p, s) = commonEnds(a, b)
        let am = Array(a[p..<(a.count - s)])
        let bm = Array(b[p..<(b.count - s)])
        if am.isEmpty && bm.isEmpty { return [] }
        func text(_ x: ArraySlice<Unicode.Scalar>) -> String {
            var v = String.UnicodeScalarView()
            v.append(contentsOf: x)
            return String(v)
        }
        guard let script = myers(am, bm, maxEdits: maxEdits) else {
            return [TextHunk(position: p, deleted: am.count, inserted: text(bm[...]))]
        }
        // Group the script (per scalar: keep, delete, insert) into hunks.
        var out: [TextHunk] = []
        var i = 0
        var j = 0
        var k = 0
        while k < script.count {
            if script[k] == .keep {
                i += 1
                j += 1
                k += 1
                continue
            }
            let start = i
            let insStart = j
            while k < script.count, script[k] != .keep {
                if script[k] == .delete { i += 1 } else { j += 1 }
                k += 1
            }
            out.append(TextHunk(position: p + start, deleted: i - start, inserted: text(bm[insStart..<j])))
        }
        return out
    }

    /// The length of the common prefix of `a` and `b`, and of their common suffix after it.
    public static func commonEnds(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar]) -> (prefix: Int, suffix: Int) {
        var p = 0
        while p < a.count, p < b.count, a[p] == b[p] { p += 1 }
        var s = 0
        while s < a.count - p, s < b.count - p, a[a.count - 1 - s] == b[b.count - 1 - s] { s += 1 }
        return (p, s)
    }

    enum Step { case keep, delete, insert }

    /// Myers' greedy shortest edit script from `a` to `b`, or nil past `maxEdits` edits.
    static func myers(_ a: [Unicode.Scalar], _ b: [Unicode.Scalar], maxEdits: Int) -> [Step]? {
        let n = a.count
        let m = b.count
        let limit = min(n + m, maxEdits)
        let offset = limit + 1
        var v = [Int](repeating: 0, count: 2 * limit + 3)
        var trace: [[Int]] = []
        var found = -1
        outer: for d in 0...limit {
            trace.append(v)
            var k = -d
            while k <= d {
                var x: Int
                if k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]) {
                    x = v[offset + k + 1]
                } else {
                    x = v[offset + k - 1] + 1
                }
                var y = x - k
                while x < n, y < m, a[x] == b[y] {
                    x += 1
                    y += 1
                }
                v[offset + k] = x
                if x >= n && y >= m {
                    found = d
                    break outer
                }
                k += 2
            }
        }
        guard found >= 0 else { return nil }
        // Walk back through the saved frontiers.
        var steps: [Step] = []
        var x = n
        var y = m
        for d in stride(from: found, to: 0, by: -1) {
            let vd = trace[d]
            let k = x - y
            let prevK = (k == -d || (k != d && vd[offset + k - 1] < vd[offset + k + 1])) ? k + 1 : k - 1
            let prevX = vd[offset + prevK]
            let prevY = prevX - prevK
            while x > prevX, y > prevY {
                steps.append(.keep)
                x -= 1
                y -= 1
            }
            steps.append(x == prevX ? .insert : .delete)
            x = prevX
            y = prevY
        }
        while x > 0, y > 0 {
            steps.append(.keep)
            x -= 1
            y -= 1
        }
        return steps.reversed()
    }
}

extension Transaction {
    /// Edits text field `field` of `docID` so that the words changed between `base` (a copy of
    /// the field taken earlier: ``TextCRDT/encode(into:)`` of it) and `text` are changed in the
    /// field as it is now: the differences (``TextDiff/hunks(_:_:maxEdits:)``) are made as local
    /// operations on the copy, then applied to the current field as a concurrent replica's
    /// operations would be. Text others wrote since the copy stays. Refused (nothing recorded)
    /// when the copy is not an earlier state of this field (its ids unknown here).
    /// Returns the number of operations recorded.
    @discardableResult
    public mutating func editText<S: DocumentStore>(
        _ docID: DocID, field: String, from base: TextCRDT, to text: String, in store: inout S
    ) throws -> Int {
        var copy = base
        var pending: [Operation] = []
        var shift = 0
        var counter = next
        for h in TextDiff.hunks(copy.string, text) {
            let at = h.position + shift
            if h.deleted > 0 {
                let del = copy.delete(at: at, count: h.deleted)
                if !del.spans.isEmpty { pending.append(.textDelete(doc: docID, field: field, del)) }
            }
            if !h.inserted.isEmpty {
                let ins = copy.insert(at: at, h.inserted, id: OpID(counter: counter, replica: author))
                let op = Operation.textInsert(doc: docID, field: field, ins)
                counter += UInt64(op.width)
                pending.append(op)
            }
            shift += h.inserted.unicodeScalars.count - h.deleted
        }
        if pending.isEmpty { return 0 }
        let ctx = context
        let first = OpID(counter: next, replica: author)
        try edit(docID, in: &store) { d in
            if let k = d.kind(of: field), k != .text { throw Document.kindMismatch(field, k, .text) }
            // Checked on a copy first: an op naming ids the field lacks would be ignored silently.
            var probe = d.texts[field] ?? TextCRDT()
            for op in pending {
                do {
                    switch op {
                    case .textInsert(_, _, let ins): try probe.tryApply(ins)
                    case .textDelete(_, _, let del): try probe.tryApply(del)
                    default: break
                    }
                } catch {
                    throw EditError(
                        .invalidValue,
                        "the text was not loaded from this document's field '\(field)' (\(error)): reload it and edit again")
                }
            }
            var id = first
            for op in pending {
                d.apply(op, id: id, context: ctx)
                id = OpID(counter: id.counter + UInt64(op.width), replica: author)
            }
        }
        for op in pending { _ = record(op) }
        return pending.count
    }
}
