import Foundation
import SarabanCore
import SarabanStorage

/// `saraban-bench crdt`: register writes in memory and persisted; concurrent edits merged both ways.
///
/// Mirrors the peers' T1 and T3 tests (`../shared/bench/peers/crdt_peers.py`) so the figures
/// can be put side by side: 100k register writes over distinct keys; two replicas making 10k
/// concurrent edits each (40% conflicting register writes on 100 shared keys, 40% text inserts,
/// 20% text deletes) from a shared base, then merged A→B and B→A.
func crdtBench(_ args: [String]) throws -> Int32 {
    let opts = try BenchOptions(args)
    let n = 100_000
    var report = BenchReport(suite: "crdt")
    report.facts["writes"] = String(n)

    // 1. In memory, one change per write (what a clerk's edit costs) and one change for all.
    var perChange: [Double] = []
    var perChangeCPU: [Double] = []
    var batched: [Double] = []
    for _ in 0..<opts.runs {
        var r = Replica(id: ReplicaID(hi: 1, lo: 1))
        var doc: DocID!
        try r.edit(time: 0) { tx, s in doc = try tx.createDocument(kind: "bench", in: &s) }
        let keys = (0..<n).map { "k\($0)" }
        let t0 = now()
        let c0 = cpuTime()
        for i in 0..<n {
            try r.edit(time: Int64(i)) { tx, s in try tx.set(doc, field: keys[i], value: .int(Int64(i)), in: &s) }
        }
        perChange.append(Double(n) / (now() - t0))
        perChangeCPU.append(Double(n) / (cpuTime() - c0))
        guard r.log.count == n + 1 else { throw BenchError("the log holds \(r.log.count) changes, not \(n + 1)") }

        var r2 = Replica(id: ReplicaID(hi: 2, lo: 2))
        let t1 = now()
        try r2.edit(time: 0) { tx, s in
            let d = try tx.createDocument(kind: "bench", in: &s)
            for i in 0..<n { try tx.set(d, field: keys[i], value: .int(Int64(i)), in: &s) }
        }
        batched.append(Double(n) / (now() - t1))
    }
    report.add("register writes in memory, one change each", perChange, unit: "ops/s", note: "target ≥ 1,000,000")
    report.add("register writes in memory, one change each, CPU time", perChangeCPU, unit: "ops/s", note: "wall time above is lower when the machine is shared")
    report.add("register writes in memory, one change", batched, unit: "ops/s")

    // 2. Persisted through SQLite (WAL), in batches of 1,000 changes per transaction: without an
    //    fsync per transaction (a bulk writer, synchronous=NORMAL), and with one (durable).
    var persisted: [Double] = []
    var persistedCPU: [Double] = []
    var durable: [Double] = []
    let batch = 1_000
    for run in 0..<opts.runs {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("saraban-bench-\(getpid())-\(run)")
        try? FileManager.default.removeItem(at: dir)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try Store.open(path: dir.appendingPathComponent("bench.db").path, replica: ReplicaID(hi: 3, lo: 3), create: true)
        let (docID, _) = try store.change(time: 0) { tx, s in try tx.createDocument(kind: "bench", in: &s) }
        func writeAll(durable: Bool) throws {
            var i = 0
            while i < n {
                let end = min(n, i + batch)
                _ = try store.write(durable: durable) { w in
                    for j in i..<end {
                        _ = try w.change(time: Int64(j)) { tx, s in
                            try tx.set(docID, field: "k\(j % 1000)", value: .int(Int64(j)), in: &s)
                        }
                    }
                }
                i = end
            }
        }
        let t0 = now()
        let c0 = cpuTime()
        try writeAll(durable: false)
        persisted.append(Double(n) / (now() - t0))
        persistedCPU.append(Double(n) / (cpuTime() - c0))
        let t1 = now()
        try writeAll(durable: true)
        durable.append(Double(n) / (now() - t1))
        try store.close()
    }
    report.add("register changes persisted, 1,000 per transaction", persisted, unit: "changes/s", note: "target ≥ 200,000")
    report.add("register changes persisted, CPU time", persistedCPU, unit: "changes/s", note: "wall time above is lower when the machine is shared")
    report.add("register changes persisted, each transaction fsynced", durable, unit: "changes/s")

    // 3. Concurrent edits: 10k + 10k from a shared base, merged both ways.
    let m = 10_000
    var editA: [Double] = []
    var mergeAB: [Double] = []
    var mergeBA: [Double] = []
    var converged = true
    for run in 0..<opts.runs {
        var rng = SplitMix64(seed: UInt64(42 + run))
        var a = Replica(id: ReplicaID(hi: 0xA, lo: 0))
        var doc: DocID!
        try a.edit(time: 0) { tx, s in
            doc = try tx.createDocument(kind: "bench", in: &s)
            try tx.insertText(doc, field: "body", at: 0, "เรียน ผู้ว่าราชการจังหวัด", in: &s)
        }
        var b = Replica(id: ReplicaID(hi: 0xB, lo: 0))
        for c in a.log { try b.receive(c) }
        let base = a.clock
        func edits(_ r: inout Replica, _ rng: inout SplitMix64) throws {
            for i in 0..<m {
                let roll = rng.next() % 10
                let x = rng.next()
                try r.edit(time: Int64(i)) { tx, s in
                    let len = s.documents[doc]!.texts["body"]!.count
                    if roll < 4 {
                        try tx.set(doc, field: "key\(x % 100)", value: .int(Int64(i)), in: &s)
                    } else if roll < 8 || len < 2 {
                        try tx.insertText(doc, field: "body", at: Int(x % UInt64(len + 1)), "ก", in: &s)
                    } else {
                        try tx.deleteText(doc, field: "body", at: Int(x % UInt64(len)), count: 1, in: &s)
                    }
                }
            }
        }
        let t0 = now()
        try edits(&a, &rng)
        editA.append((now() - t0) * 1000)
        try edits(&b, &rng)
        let fromA = a.changes(missingFrom: base)
        let fromB = b.changes(missingFrom: base)
        let wireA = fromA.map { $0.encoded() }
        let wireB = fromB.map { $0.encoded() }
        report.facts["concurrent delta A→B bytes"] = String(wireA.reduce(0) { $0 + $1.count })
        let t1 = now()
        for w in wireA { try b.receive(try Change.decode(w)) }
        mergeAB.append((now() - t1) * 1000)
        let t2 = now()
        for w in wireB { try a.receive(try Change.decode(w)) }
        mergeBA.append((now() - t2) * 1000)
        converged = converged && a.views == b.views
    }
    report.add("10k local edits on A (40% register, 40% insert, 20% delete)", editA, unit: "ms")
    report.add("merge A→B (decode + apply 10k changes)", mergeAB, unit: "ms")
    report.add("merge B→A", mergeBA, unit: "ms")
    report.facts["converged"] = converged ? "yes" : "NO"
    report.print(json: opts.json)
    return converged ? 0 : 1
}
