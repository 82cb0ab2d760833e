import Foundation
import Testing
import SarabanCore

/// Seeds: SARABAN_SEED replays one seed; otherwise `TextProperty.seedCount` seeds from 1.
private enum TextSeeds {
    static var list: [UInt64] {
        if let s = ProcessInfo.processInfo.environment["SARABAN_SEED"], let one = UInt64(s) { return [one] }
        return Array(1...300)
    }
}

private let pieces = ["หนังสือราชการ ด่วนที่สุด", "หนังสือ", "ราชการ", "ด่วนที่สุด", "\u{0E31}\u{0E48}", "เรียน", "a", "bc",
                      "xyz ", "é", "🙂", "\n", "๐๘๐๘"]

private enum TextOp {
    case ins(TextInsert)
    case del(TextDelete)
}

private func apply(_ op: TextOp, to t: inout TextCRDT) throws(TextError) {
    switch op {
    case .ins(let i): try t.tryApply(i)
    case .del(let d): try t.tryApply(d)
    }
}

private func bytes(_ t: TextCRDT) -> [UInt8] {
    var w = BinaryWriter()
    t.encode(into: &w)
    return w.bytes
}

/// Applies `ops` in a random causal order: repeatedly shuffle what is left and apply what is ready.
private func applyRandomCausal(_ ops: [TextOp], to t: inout TextCRDT, rng: inout SplitMix64) {
    var left = ops
    while !left.isEmpty {
        left.shuffle(using: &rng)
        var keep: [TextOp] = []
        for op in left {
            do { try apply(op, to: &t) } catch { keep.append(op) }
        }
        guard keep.count < left.count else {
            Issue.record("no op applicable: the ops are not causal (\(keep.count) left)")
            return
        }
        left = keep
    }
}

@Suite("Text CRDT properties")
struct TextPropertyTests {
    /// 3–5 replicas make random inserts and deletes (Thai included) while ops are delivered in
    /// random orders with duplicates. Then everyone gets everything: all converge to the same
    /// string and the same canonical snapshot, equal to applying the log in any causal order and
    /// to merging the replicas' states (`merge`) as they stood before the healing.
    @Test func randomReplicasConverge() throws {
        for seed in TextSeeds.list { try scenario(seed: seed, steps: 20...60) }
    }

    /// Fewer seeds, long histories: thousands of runs, so leaves and inner nodes split while
    /// concurrent ops integrate and the id index follows moved runs.
    @Test func longHistoriesConverge() throws {
        let seeds: [UInt64] = ProcessInfo.processInfo.environment["SARABAN_SEED"].flatMap { UInt64($0) }.map { [$0] } ?? [1001, 1002, 1003]
        for seed in seeds { try scenario(seed: seed, steps: 2500...3000) }
    }

    func scenario(seed: UInt64, steps stepRange: ClosedRange<Int>) throws {
        do {
            var rng = SplitMix64(seed: seed)
            let n = Int.random(in: 3...5, using: &rng)
            let ids = (0..<n).map { _ in ReplicaID.random(using: &rng) }
            var reps = [TextCRDT](repeating: TextCRDT(), count: n)
            var clock = [UInt64](repeating: 0, count: n)
            var inbox = [[TextOp]](repeating: [], count: n)
            var log: [TextOp] = []
            let steps = Int.random(in: stepRange, using: &rng)
            for _ in 0..<steps {
                let i = Int.random(in: 0..<n, using: &rng)
                let roll = Int.random(in: 0..<10, using: &rng)
                var op: TextOp? = nil
                if roll < 4 || reps[i].count == 0 {
                    let text = pieces.randomElement(using: &rng)!
                    let pos = Int.random(in: 0...reps[i].count, using: &rng)
                    let id = OpID(counter: clock[i] + 1, replica: ids[i])
                    clock[i] += UInt64(text.unicodeScalars.count)
                    op = .ins(try reps[i].tryInsert(at: pos, text, id: id))
                } else if roll < 6 {
                    let pos = Int.random(in: 0..<reps[i].count, using: &rng)
                    let len = Int.random(in: 1...min(6, reps[i].count - pos), using: &rng)
                    op = .del(try reps[i].tryDelete(at: pos, count: len))
                } else if !inbox[i].isEmpty {
                    // Deliver a random pending op; sometimes keep it to deliver again (duplicate).
                    let k = Int.random(in: 0..<inbox[i].count, using: &rng)
                    let o = inbox[i][k]
                    if (try? apply(o, to: &reps[i])) != nil, Int.random(in: 0..<5, using: &rng) != 0 {
                        inbox[i].remove(at: k)
                    }
                }
                if let op {
                    log.append(op)
                    for j in 0..<n where j != i { inbox[j].append(op) }
                    if Int.random(in: 0..<4, using: &rng) == 0 { inbox[i].append(op) }  // echo to self
                }
            }
            // State merge: the replicas as they stand (partly synced), merged in a random order
            // into a fresh one, every other one through a snapshot (tombstones without content).
            var fromStates = TextCRDT()
            for (k, p) in reps.shuffled(using: &rng).enumerated() {
                if k % 2 == 1 {
                    var r = BinaryReader(bytes(p))
                    try fromStates.merge(try TextCRDT.decode(from: &r))
                } else {
                    try fromStates.merge(p)
                }
            }
            var intoOne = reps[1]
            for p in reps { try intoOne.merge(p) }
            // Heal: deliver everything (random order, causal readiness).
            for i in 0..<n { applyRandomCausal(inbox[i], to: &reps[i], rng: &rng) }
            let want = reps[0].string
            #expect(fromStates == reps[0] && fromStates.string == want, "seed \(seed): merged states differ")
            #expect(intoOne == reps[0], "seed \(seed): merging into a replica differs")
            try intoOne.merge(fromStates)
            #expect(intoOne == reps[0], "seed \(seed): merging twice changed the state")
            let snap = bytes(reps[0])
            for i in 1..<n {
                #expect(reps[i].string == want, "seed \(seed): replica \(i) differs")
                #expect(bytes(reps[i]) == snap, "seed \(seed): replica \(i) snapshot differs")
            }
            // The log in generation order, and in a random causal order, give the same.
            var inOrder = TextCRDT()
            for op in log { try apply(op, to: &inOrder) }
            #expect(inOrder.string == want, "seed \(seed): log replay differs")
            var shuffled = TextCRDT()
            applyRandomCausal(log, to: &shuffled, rng: &rng)
            #expect(shuffled.string == want && shuffled == reps[0], "seed \(seed): causal shuffle differs")
            // Idempotence.
            var again = reps[1]
            for op in log { try apply(op, to: &again) }
            #expect(bytes(again) == snap, "seed \(seed): re-applying changed the state")
            // Snapshot round trip, and the decoded replica keeps merging.
            var r = BinaryReader(snap)
            var loaded = try TextCRDT.decode(from: &r)
            #expect(r.isAtEnd && loaded == reps[0] && loaded.string == want, "seed \(seed): round trip")
            let extra = try reps[2].tryInsert(at: reps[2].count / 2, "ก", id: OpID(counter: 1 << 40, replica: ids[2]))
            try loaded.tryApply(extra)
            #expect(loaded == reps[2], "seed \(seed): decoded replica merged differently")
            // Every strict prefix of a snapshot throws.
            for _ in 0..<4 where !snap.isEmpty {
                let cut = Int.random(in: 0..<snap.count, using: &rng)
                var t = BinaryReader(Array(snap[0..<cut]))
                #expect(throws: DecodingError.self, "seed \(seed): prefix \(cut) decoded") { _ = try TextCRDT.decode(from: &t) }
            }
            // Corrupted snapshots and random bytes may fail, but never crash; if they load, they work.
            for _ in 0..<4 {
                var bad = snap
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    bad[Int.random(in: 0..<bad.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                if Int.random(in: 0..<3, using: &rng) == 0 {
                    bad = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                }
                var t = BinaryReader(bad)
                if var x = try? TextCRDT.decode(from: &t) {
                    _ = x.string
                    _ = bytes(x)
                    if x.count > 0 { _ = x.delete(at: 0, count: 1) }
                    _ = x.insert(at: x.count, "z", id: OpID(counter: 1 << 50, replica: ids[0]))
                    x.apply(extra)
                }
            }
        }
    }
}
