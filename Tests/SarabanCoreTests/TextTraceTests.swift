import Foundation
import Testing
import SarabanCore

/// Loads a josephg/editing-traces file from Fixtures/traces (gunzipped with `gzip -dc`).
private func loadTrace(_ name: String) throws -> (edits: [(Int, Int, String)], end: String) {
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
    let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let txns = try #require(json["txns"] as? [[String: Any]])
    var edits: [(Int, Int, String)] = []
    for t in txns {
        for patch in try #require(t["patches"] as? [[Any]]) {
            edits.append((try #require(patch[0] as? Int), try #require(patch[1] as? Int), try #require(patch[2] as? String)))
        }
    }
    return (edits, try #require(json["endContent"] as? String))
}

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
}
