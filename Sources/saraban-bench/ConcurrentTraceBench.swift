import Foundation
import SarabanCore

/// True for the editing-traces "concurrent" format (`kind: "concurrent"`, or txns with `parents`).
func isConcurrentTrace(_ root: [String: Any]) -> Bool {
    if let kind = root["kind"] as? String { return kind == "concurrent" }
    return ((root["txns"] as? [Any])?.first as? [String: Any])?["parents"] != nil
}

/// Parses a concurrent trace ({kind, numAgents, endContent, txns: [{parents, agent, patches}]}).
func concurrentTrace(_ root: [String: Any]) throws -> ConcurrentTextTrace {
    if let start = root["startContent"] as? String, !start.isEmpty { throw BenchError("non-empty startContent is not supported") }
    let raw = root["txns"] as! [Any]
    var txns: [ConcurrentTextTrace.Transaction] = []
    txns.reserveCapacity(raw.count)
    var maxAgent = -1
    for (i, any) in raw.enumerated() {
        guard let t = any as? [String: Any] else { throw BenchError("txn \(i): not an object") }
        guard let parents = t["parents"] as? [Int] else { throw BenchError("txn \(i): parents is not a list of txn indexes") }
        guard let agent = t["agent"] as? Int else { throw BenchError("txn \(i): agent is not a number") }
        let patches = try tracePatches(t, i).map { ConcurrentTextTrace.Patch(position: $0.0, deleteCount: $0.1, insert: $0.2) }
        maxAgent = max(maxAgent, agent)
        txns.append(.init(parents: parents, agent: agent, patches: patches))
    }
    let agents: Int
    if let n = root["numAgents"] {
        guard let n = n as? Int, n > 0 else { throw BenchError("numAgents is not a positive number") }
        agents = n
    } else {
        agents = maxAgent + 1
    }
    return try ConcurrentTextTrace(agents: agents, transactions: txns)
}

/// The agent's replica id in the replay: agents sort in their trace order.
func traceAgentReplica(_ agent: Int) -> ReplicaID { ReplicaID(hi: 0x5a5a_0000_0000_0002, lo: UInt64(agent)) }

/// Replays a concurrent trace (one replica per agent, each txn at the merged state of its
/// parents) and reports, beside the peers when asked: the replay (final pull included, as the
/// peers do), the final snapshot's size and load, and merging every agent's replica into a fresh one.
func concurrentTraceBench(_ root: [String: Any], path: String, opts: BenchOptions, peers: Bool) throws -> Int32 {
    let trace: ConcurrentTextTrace
    do { trace = try concurrentTrace(root) } catch { throw BenchError("\(path): \(error)") }
    let end = root["endContent"] as! String
    var report = BenchReport(suite: "trace")
    report.facts["trace"] = (path as NSString).lastPathComponent + " (concurrent)"
    report.facts["txns"] = String(trace.transactions.count)
    report.facts["patches"] = String(trace.transactions.reduce(0) { $0 + $1.patches.count })
    report.facts["agents"] = String(trace.agents)
    report.facts["merge txns"] = String(trace.transactions.count(where: { $0.parents.count > 1 }))
    report.facts["final length (scalars)"] = String(end.unicodeScalars.count)

    // 1. Replay.
    var replay: [Double] = []
    var replayCPU: [Double] = []
    var result: ConcurrentTextTrace.Replay? = nil
    for _ in 0..<opts.runs {
        result = nil  // free the previous run's replicas outside the timed part
        let t0 = now()
        let c0 = cpuTime()
        let r: ConcurrentTextTrace.Replay
        do { r = try trace.replay(replica: traceAgentReplica) } catch { throw BenchError("\(path): \(error)") }
        replay.append((now() - t0) * 1e3)
        replayCPU.append((cpuTime() - c0) * 1e3)
        result = r
    }
    let final = result!.merged
    let replayOK = final.string == end
    var ok = replayOK
    report.add("concurrent replay (one replica per agent)", replay, unit: "ms", note: replayOK ? "text ok" : "TEXT MISMATCH")
    report.add("concurrent replay, CPU time", replayCPU, unit: "ms", note: "wall time above is inflated when the machine is shared")
    report.facts["operations"] = String(result!.operations)
    report.facts["runs held after replay"] = String(final.runCount)

    // 2. Snapshot size and load.
    var w = BinaryWriter(capacity: 1 << 16)
    final.encode(into: &w)
    let snapshot = w.bytes
    var load: [Double] = []
    var loaded = TextCRDT()
    for _ in 0..<opts.runs {
        let t0 = now()
        var r = BinaryReader(snapshot)
        loaded = try TextCRDT.decode(from: &r)
        _ = loaded.string
        load.append((now() - t0) * 1e3)
    }
    let loadOK = loaded.string == end && loaded == final
    ok = ok && loadOK
    report.add("snapshot size", [Double(snapshot.count)], unit: "bytes")
    report.add("snapshot load (and read the text)", load, unit: "ms", note: loadOK ? "text ok" : "TEXT MISMATCH")

    // 3. Every agent's replica merged into a fresh one.
    var merge: [Double] = []
    var merged = TextCRDT()
    for _ in 0..<opts.runs {
        var t = TextCRDT()
        let t0 = now()
        for replica in result!.replicas { try t.merge(replica) }
        _ = t.string
        merge.append((now() - t0) * 1e3)
        merged = t
    }
    let mergeOK = merged.string == end && merged == final
    ok = ok && mergeOK
    report.add("merge each agent's replica into a fresh one", merge, unit: "ms", note: mergeOK ? "text ok" : "TEXT MISMATCH")

    // 4. Peers (Loro and Yrs through Python), same file, same run.
    if peers {
        runPeers(script: "concurrent_replay.py", libs: ["loro", "pycrdt"], path: path, report: &report)
        func best(_ suffix: String) -> Double? {
            report.rows.filter { $0.name.hasSuffix(suffix) && $0.name.contains("(p") && $0.median.isFinite }.map(\.median).min()
        }
        if let fastest = best(" replay") {
            report.facts["replay / faster peer's"] = String(format: "%.3f", median(replay) / fastest)
        }
        if let smallest = best(" snapshot size") {
            report.facts["snapshot / smaller peer's"] = String(format: "%.3f", Double(snapshot.count) / smallest)
        }
    }
    report.facts["load average"] = loadAverage()
    report.print(json: opts.json)
    return ok ? 0 : 1
}
