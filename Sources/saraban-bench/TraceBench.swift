import Foundation
import SarabanCore

/// `saraban-bench trace FILE [--json] [--runs N] [--peers]`: replays an editing trace
/// (josephg/editing-traces format, .json or .json.gz) through TextCRDT.
///
/// A sequential trace ({startContent, endContent, txns: [{patches: [[pos, del, ins]]}]}) is
/// replayed as one replica's local edits; a concurrent one (`kind: "concurrent"`, txns with
/// `parents` and `agent`) by `concurrentTraceBench`. Reports the replay time, the snapshot size
/// and load time, and the time to merge the whole history into a fresh replica. Exits 1 if any
/// final text differs from endContent; a malformed trace is an error naming what is wrong.
/// `--peers` also runs Loro (and, for a concurrent trace, Yrs through pycrdt) via the Python
/// scripts in ../shared/bench/peers on the same file, in the same run, for comparison.
func traceBench(_ args: [String]) throws -> Int32 {
    let opts = try BenchOptions(args)
    let peers = opts.positional.contains("--peers")
    guard let path = opts.positional.first(where: { !$0.hasPrefix("--") }) else {
        throw BenchError("usage: saraban-bench trace FILE [--json] [--runs N] [--peers]")
    }
    let root = try readTraceJSON(path)
    if isConcurrentTrace(root) { return try concurrentTraceBench(root, path: path, opts: opts, peers: peers) }
    let trace: Trace
    do { trace = try sequentialTrace(root) } catch { throw BenchError("\(path): \(error)") }
    var report = BenchReport(suite: "trace")
    report.facts["trace"] = (path as NSString).lastPathComponent
    report.facts["edits"] = String(trace.edits.count)
    report.facts["final length (scalars)"] = String(trace.endContent.unicodeScalars.count)

    let replica = ReplicaID(hi: 0x5a5a_0000_0000_0001, lo: 1)
    var ok = true

    // 1. Replay: every patch as a local delete and/or insert.
    var replay: [Double] = []
    var replayCPU: [Double] = []
    var final = TextCRDT()
    for _ in 0..<opts.runs {
        var t = TextCRDT()
        var counter: UInt64 = 0
        let t0 = now()
        let c0 = cpuTime()
        for e in trace.edits {
            if e.del > 0 { _ = t.delete(at: e.pos, count: e.del) }
            if e.n > 0 {
                _ = t.insert(at: e.pos, e.ins, id: OpID(counter: counter, replica: replica))
                counter &+= UInt64(e.n)
            }
        }
        replay.append((now() - t0) * 1e3)
        replayCPU.append((cpuTime() - c0) * 1e3)
        final = t
    }
    let replayOK = final.string == trace.endContent
    ok = ok && replayOK
    report.add("replay (local edits)", replay, unit: "ms", note: replayOK ? "text ok" : "TEXT MISMATCH")
    report.add("replay (local edits), CPU time", replayCPU, unit: "ms", note: "wall time above is inflated when the machine is shared")
    report.facts["runs held after replay"] = String(final.runCount)

    // 2. Snapshot size and load.
    var w = BinaryWriter(capacity: 1 << 18)
    final.encode(into: &w)
    let snapshot = w.bytes
    var load: [Double] = []
    var loadCPU: [Double] = []
    var loaded = TextCRDT()
    for _ in 0..<opts.runs {
        let t0 = now()
        let c0 = cpuTime()
        var r = BinaryReader(snapshot)
        loaded = try TextCRDT.decode(from: &r)
        load.append((now() - t0) * 1e3)
        loadCPU.append((cpuTime() - c0) * 1e3)
    }
    let loadOK = loaded.string == trace.endContent && loaded == final
    ok = ok && loadOK
    report.add("snapshot size", [Double(snapshot.count)], unit: "bytes")
    report.add("snapshot load", load, unit: "ms", note: loadOK ? "text ok" : "TEXT MISMATCH")
    report.add("snapshot load, CPU time", loadCPU, unit: "ms")

    // 3. Merge the full history into a fresh replica: record the ops (coalescing typing), apply all.
    var ops: [TraceOp] = []
    do {
        var t = TextCRDT()
        var counter: UInt64 = 0
        for e in trace.edits {
            if e.del > 0 { TraceOp.push(.del(t.delete(at: e.pos, count: e.del)), into: &ops) }
            if e.n > 0 {
                TraceOp.push(.ins(t.insert(at: e.pos, e.ins, id: OpID(counter: counter, replica: replica))), into: &ops)
                counter &+= UInt64(e.n)
            }
        }
    }
    report.facts["ops after coalescing"] = String(ops.count)
    var opBytes = BinaryWriter(capacity: 1 << 20)
    for op in ops {
        switch op {
        case .ins(let i): i.encode(into: &opBytes)
        case .del(let d): d.encode(into: &opBytes)
        }
    }
    report.facts["ops encoded (bytes)"] = String(opBytes.bytes.count)
    var merge: [Double] = []
    var mergeCPU: [Double] = []
    var merged = TextCRDT()
    for _ in 0..<opts.runs {
        var t = TextCRDT()
        let t0 = now()
        let c0 = cpuTime()
        for op in ops {
            switch op {
            case .ins(let i): t.apply(i)
            case .del(let d): t.apply(d)
            }
        }
        merge.append((now() - t0) * 1e3)
        mergeCPU.append((cpuTime() - c0) * 1e3)
        merged = t
    }
    let mergeOK = merged.string == trace.endContent && merged == final
    ok = ok && mergeOK
    report.add("merge full history into fresh replica", merge, unit: "ms", note: mergeOK ? "text ok" : "TEXT MISMATCH")
    report.add("merge full history, CPU time", mergeCPU, unit: "ms")

    // 4. Peers (Loro through Python), same file, same run.
    if peers { runPeers(script: "trace_replay.py", libs: ["loro"], path: path, report: &report) }

    report.facts["load average"] = loadAverage()
    report.print(json: opts.json)
    return ok ? 0 : 1
}

enum TraceOp {
    case ins(TextInsert)
    case del(TextDelete)

    /// Appends, merging consecutive typing into the previous insert and backspaces into the previous delete.
    static func push(_ op: TraceOp, into ops: inout [TraceOp]) {
        switch op {
        case .ins(let i):
            // Merge into the latest insert when the new text continues it with the same right origin.
            if let k = ops.lastIndex(where: { if case .ins = $0 { return true } else { return false } }),
               case .ins(var p) = ops[k]
            {
                let n = UInt64(p.content.unicodeScalars.count)
                if p.id.replica == i.id.replica, p.id.counter &+ n == i.id.counter,
                   i.originLeft == OpID(counter: i.id.counter &- 1, replica: i.id.replica),
                   i.originRight == p.originRight
                {
                    p.content += i.content
                    ops[k] = .ins(p)
                    return
                }
            }
        case .del(let d):
            if case .del(var p)? = ops.last, d.spans.count == 1, let s = d.spans.first, let last = p.spans.last,
               last.start.replica == s.start.replica
            {
                if last.start.counter &+ UInt64(last.length) == s.start.counter {
                    p.spans[p.spans.count - 1].length += s.length
                    ops[ops.count - 1] = .del(p)
                    return
                }
                if s.start.counter &+ UInt64(s.length) == last.start.counter {
                    p.spans[p.spans.count - 1] = IDSpan(start: s.start, length: s.length + last.length)
                    ops[ops.count - 1] = .del(p)
                    return
                }
            }
        }
        ops.append(op)
    }
}

struct TraceEdit {
    var pos: Int
    var del: Int
    var ins: String
    var n: Int
}

struct Trace {
    var edits: [TraceEdit]
    var endContent: String
}

/// The trace file's JSON object (gunzipped first if the name ends in .gz).
func readTraceJSON(_ path: String) throws -> [String: Any] {
    let data: Data
    if path.hasSuffix(".gz") {
        guard FileManager.default.isReadableFile(atPath: path) else { throw BenchError("\(path): cannot read the file") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["gzip", "-dc", path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw BenchError("\(path): not a gzip file (gzip -dc failed)") }
    } else {
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw BenchError("\(path): cannot read the file (\(error.localizedDescription))")
        }
    }
    let json: Any
    do { json = try JSONSerialization.jsonObject(with: data) } catch {
        throw BenchError("\(path): not JSON (\(error.localizedDescription))")
    }
    guard let root = json as? [String: Any] else { throw BenchError("\(path): not an editing trace (no JSON object)") }
    guard root["txns"] is [Any], root["endContent"] is String else {
        throw BenchError("\(path): not an editing trace (needs txns and endContent)")
    }
    return root
}

/// The patches of a txn, as (position, delete count, inserted text).
func tracePatches(_ txn: [String: Any], _ i: Int) throws -> [(Int, Int, String)] {
    guard let patches = txn["patches"] as? [Any] else { throw BenchError("txn \(i): no patches array") }
    return try patches.enumerated().map { k, any in
        guard let p = any as? [Any], p.count == 3, let pos = p[0] as? Int, let del = p[1] as? Int,
              let ins = p[2] as? String, pos >= 0, del >= 0
        else { throw BenchError("txn \(i), patch \(k): not [position ≥ 0, delete count ≥ 0, text]: \(any)") }
        return (pos, del, ins)
    }
}

/// A sequential trace's edits, each checked against the length the previous ones leave.
func sequentialTrace(_ root: [String: Any]) throws -> Trace {
    if let start = root["startContent"] as? String, !start.isEmpty { throw BenchError("non-empty startContent is not supported") }
    let txns = root["txns"] as! [Any]
    var edits: [TraceEdit] = []
    edits.reserveCapacity(txns.count)
    var length = 0
    for (i, any) in txns.enumerated() {
        guard let t = any as? [String: Any] else { throw BenchError("txn \(i): not an object") }
        for (k, (pos, del, ins)) in try tracePatches(t, i).enumerated() {
            guard pos <= length, del <= length - pos else {
                throw BenchError("txn \(i), patch \(k): position \(pos) delete \(del) is outside the text of length \(length)")
            }
            let n = ins.unicodeScalars.count
            length += n - del
            edits.append(TraceEdit(pos: pos, del: del, ins: ins, n: n))
        }
    }
    return Trace(edits: edits, endContent: root["endContent"] as! String)
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
        .split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

/// Runs one of the peer scripts in ../shared/bench/peers (python3 on PATH, e.g. a venv made from
/// its requirements.txt) for `libs` on the same file and adds their medians to the report.
func runPeers(script name: String, libs: [String], path: String, report: inout BenchReport) {
    let check = Process()
    check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    check.arguments = ["python3", "-c", libs.map { "import \($0)" }.joined(separator: "; ")]
    check.standardError = FileHandle.nullDevice
    guard (try? check.run()) != nil else { report.facts["peers"] = "python3 not runnable"; return }
    check.waitUntilExit()
    guard check.terminationStatus == 0 else {
        report.facts["peers"] = "not installed (pip install -r ../shared/bench/peers/requirements.txt)"
        return
    }
    let candidates = ["../shared/bench/peers/\(name)", "/work/shared/bench/peers/\(name)"]
    guard let script = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
        report.facts["peers"] = "\(name) not found"
        return
    }
    let out = FileManager.default.temporaryDirectory.appendingPathComponent("saraban-peers-\(getpid()).json").path
    defer { try? FileManager.default.removeItem(atPath: out) }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", script, path, "--libs", libs.joined(separator: ","), "--runs", "3", "--json", out]
    p.standardOutput = FileHandle.nullDevice
    guard (try? p.run()) != nil else { report.facts["peers"] = "failed to start"; return }
    p.waitUntilExit()
    guard let d = FileManager.default.contents(atPath: out),
          let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any]
    else { report.facts["peers"] = "no result (exit \(p.terminationStatus))"; return }
    for lib in libs {
        let name = lib == "pycrdt" ? "yrs (pycrdt)" : "\(lib) (python)"
        guard let l = j[lib] as? [String: Any] else { report.facts[name] = "no result"; continue }
        func num(_ k: String) -> Double { (l[k] as? NSNumber)?.doubleValue ?? .nan }
        report.add("\(name) replay", [num("replay_ms")], unit: "ms", note: "median of 3 inside the script")
        report.add("\(name) snapshot size", [num("bytes")], unit: "bytes")
        report.add("\(name) snapshot load", [num("load_ms")], unit: "ms")
        if l["merge_ms"] != nil { report.add("\(name) merge update log into fresh doc", [num("merge_ms")], unit: "ms") }
        report.facts["\(name) final text"] = (l["ok"] as? Bool) == true ? "ok" : "MISMATCH"
    }
}
