import Foundation
import Testing
import SarabanCore

/// Reads a josephg/editing-traces file from Fixtures/traces (gunzipped with `gzip -dc`).
private func readTrace(_ name: String) throws -> [String: Any] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let path = root.appendingPathComponent("Fixtures/traces/\(name)").path
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["gzip", "-dc", path]
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
}

private func patches(_ txn: [String: Any]) throws -> [(Int, Int, String)] {
    try #require(txn["patches"] as? [[Any]]).map {
        (try #require($0[0] as? Int), try #require($0[1] as? Int), try #require($0[2] as? String))
    }
}

/// A sequential trace's edits and final text.
private func loadTrace(_ name: String) throws -> (edits: [(Int, Int, String)], end: String) {
    let json = try readTrace(name)
    var edits: [(Int, Int, String)] = []
    for t in try #require(json["txns"] as? [[String: Any]]) { edits += try patches(t) }
    return (edits, try #require(json["endContent"] as? String))
}

/// A concurrent trace ({kind: "concurrent", numAgents, txns: [{parents, agent, patches}]}) and its final text.
private func loadConcurrentTrace(_ name: String) throws -> (trace: ConcurrentTextTrace, end: String) {
    let json = try readTrace(name)
    #expect(json["kind"] as? String == "concurrent")
    let txns = try #require(json["txns"] as? [[String: Any]]).map { t in
        ConcurrentTextTrace.Transaction(
            parents: try #require(t["parents"] as? [Int]), agent: try #require(t["agent"] as? Int),
            patches: try patches(t).map { .init(position: $0.0, deleteCount: $0.1, insert: $0.2) })
    }
    let trace = try ConcurrentTextTrace(agents: try #require(json["numAgents"] as? Int), transactions: txns)
    return (trace, try #require(json["endContent"] as? String))
}

private func agentReplica(_ a: Int) -> ReplicaID { ReplicaID(hi: 0x0c10, lo: UInt64(a)) }

@Suite("Text CRDT editing traces")
struct TextTraceTests {
    @Test(arguments: ["automerge-paper.json.gz", "seph-blog1.json.gz"])
    func traceReproducesEndContent(_ name: String) throws {
        let trace = try loadTrace(name)
        let me = ReplicaID(hi: 7, lo: 7)
        var t = TextCRDT()
        var counter: UInt64 = 0
        var inserts: [TextInsert] = []
        var deletes: [(Int, TextDelete)] = []
        for (pos, del, ins) in trace.edits {
            if del > 0 { deletes.append((inserts.count, t.delete(at: pos, count: del))) }
            if !ins.isEmpty {
                inserts.append(t.insert(at: pos, ins, id: OpID(counter: counter, replica: me)))
                counter += UInt64(ins.unicodeScalars.count)
            }
        }
        #expect(t.string == trace.end)
        // The full history merged into a fresh replica, in the original order.
        var fresh = TextCRDT()
        var k = 0
        for (i, op) in inserts.enumerated() {
            while k < deletes.count && deletes[k].0 == i { fresh.apply(deletes[k].1); k += 1 }
            fresh.apply(op)
        }
        while k < deletes.count { fresh.apply(deletes[k].1); k += 1 }
        #expect(fresh.string == trace.end)
        #expect(fresh == t)
        // Snapshot round trip.
        var w = BinaryWriter()
        t.encode(into: &w)
        var r = BinaryReader(w.bytes)
        let loaded = try TextCRDT.decode(from: &r)
        #expect(loaded.string == trace.end)
        #expect(loaded == t)
    }

    /// clownschool: 3 agents, 23,136 txns of which 3,628 merge concurrent branches. One replica per
    /// agent, each txn at the merged state of its parents; the end text must come out by replay,
    /// by snapshot reload, and by merging each agent's replica (state-based) into a fresh one.
    @Test func concurrentTraceReproducesEndContent() throws {
        let (trace, end) = try loadConcurrentTrace("clownschool.json.gz")
        #expect(trace.agents == 3)
        let replay = try trace.replay(replica: agentReplica)
        #expect(replay.merged.string == end)
        // The agents' own replicas end at different states: the merge below has work to do.
        #expect(replay.replicas.count == 3)
        #expect(replay.replicas.filter { $0 != replay.merged }.count >= 2)

        var w = BinaryWriter()
        replay.merged.encode(into: &w)
        var r = BinaryReader(w.bytes)
        let loaded = try TextCRDT.decode(from: &r)
        #expect(loaded.string == end)
        #expect(loaded == replay.merged)

        var fresh = TextCRDT()
        for replica in replay.replicas { try fresh.merge(replica) }
        #expect(fresh.string == end)
        #expect(fresh == replay.merged)
        // Any order, and from snapshots (tombstones without their content) as well.
        var reversed = TextCRDT()
        for replica in replay.replicas.reversed() {
            var w = BinaryWriter()
            replica.encode(into: &w)
            var r = BinaryReader(w.bytes)
            try reversed.merge(try TextCRDT.decode(from: &r))
        }
        #expect(reversed == replay.merged)
        try reversed.merge(fresh)
        #expect(reversed == replay.merged)
    }

    @Test func malformedConcurrentTracesAreTypedErrors() throws {
        typealias T = ConcurrentTextTrace
        let ins = T.Patch(position: 0, deleteCount: 0, insert: "ab")
        #expect(throws: TextTraceError.agentOutOfRange(transaction: 0, agent: 2, agents: 2)) {
            try T(agents: 2, transactions: [.init(parents: [], agent: 2, patches: [ins])])
        }
        #expect(throws: TextTraceError.parentNotEarlier(transaction: 1, parent: 1)) {
            try T(agents: 1, transactions: [.init(parents: [], agent: 0, patches: [ins]), .init(parents: [1], agent: 0, patches: [])])
        }
        // Agent 0 edits twice from the empty text: its second txn does not follow its first.
        #expect(throws: TextTraceError.agentNotSequential(transaction: 1, agent: 0)) {
            try T(agents: 1, transactions: [.init(parents: [], agent: 0, patches: [ins]), .init(parents: [], agent: 0, patches: [ins])])
        }
        #expect(throws: TextTraceError.patchOutOfRange(transaction: 0, patch: 0, position: -1, deleteCount: 0, length: -1)) {
            try T(agents: 1, transactions: [.init(parents: [], agent: 0, patches: [.init(position: -1, deleteCount: 0, insert: "x")])])
        }
        // Agent 1 sees only txn 0 ("ab"); deleting 3 at 0 is outside it, even though agent 0 typed more.
        let t = try T(agents: 2, transactions: [
            .init(parents: [], agent: 0, patches: [ins]),
            .init(parents: [0], agent: 0, patches: [.init(position: 2, deleteCount: 0, insert: "cd")]),
            .init(parents: [0], agent: 1, patches: [.init(position: 0, deleteCount: 3, insert: "")]),
        ])
        #expect(throws: TextTraceError.patchOutOfRange(transaction: 2, patch: 0, position: 0, deleteCount: 3, length: 2)) {
            try t.replay(replica: agentReplica)
        }
    }

    @Test func concurrentBranchesMergeAtTheirParents() throws {
        // "ab" by agent 0; agent 1 and agent 0 each insert at 1 concurrently; txn 3 merges both and appends.
        let t = try ConcurrentTextTrace(agents: 2, transactions: [
            .init(parents: [], agent: 0, patches: [.init(position: 0, deleteCount: 0, insert: "ab")]),
            .init(parents: [0], agent: 1, patches: [.init(position: 1, deleteCount: 1, insert: "XY")]),
            .init(parents: [0], agent: 0, patches: [.init(position: 1, deleteCount: 0, insert: "12")]),
            .init(parents: [1, 2], agent: 0, patches: [.init(position: 0, deleteCount: 0, insert: ">")]),
        ])
        let r = try t.replay(replica: agentReplica)
        #expect(r.merged.string == ">a12XY")
        #expect(r.replicas[1].string == "aXY")
        #expect(r.replicas[0].string == ">a12XY")
        #expect(r.operations == 5)
    }
}
