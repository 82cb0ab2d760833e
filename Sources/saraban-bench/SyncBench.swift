import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanSync
import SarabanTransport
#if canImport(Glibc)
import Glibc
#endif

/// `saraban-bench sync`: two nodes on loopback in this process, each a real `NodeDaemon`
/// (listener, dialler, poller) over its own data directory.
///
/// 1. 100k changes with 200-byte payloads: written in B's space in transactions of 1,000 (sealed
///    into envelopes as they commit), pushed to A over Noise/TCP, verified, stored and applied.
///    Rows: end to end (first write to A holding all) and the transfer alone (B wrote first, then A dials).
/// 2. Wire bytes ÷ sealed envelope bytes for that transfer.
/// 3. One-shot sync of two up-to-date nodes sharing 10 spaces: wire bytes both ways.
/// 4. A week offline: A has 10k local changes, B 100k; a one-shot sync until both hold everything.
/// 5. Resident memory of a daemon holding 100k documents (a child process: `sync-rss DIR`).
func syncBench(_ args: [String]) async throws -> Int32 {
    let opts = try BenchOptions(args)
    let runs = min(opts.runs, 3)
    var report = BenchReport(suite: "sync")
    report.facts["changes"] = "100000 × 200-byte payloads, 1,000 changes per local transaction"
    report.facts["cores"] = "\(ProcessInfo.processInfo.activeProcessorCount)"

    var endToEnd: [Double] = []
    var transfer: [Double] = []
    var ratio: [Double] = []
    var upToDate: [Double] = []
    var weekOffline: [Double] = []
    var localWrites: [Double] = []
    var durableLocalWrites: [Double] = []
    var rssDir: URL?
    // `sync e2e transfer ten week`: run only the named parts (all when none is named). `local`
    // (never run by default) is week's 100k local writes alone, for profiling them by themselves.
    let parts = Set(opts.positional)
    let known: Set = ["e2e", "transfer", "ten", "week", "local"]
    guard parts.isSubset(of: known) else { throw BenchError("sync parts are \(known.sorted().joined(separator: ", "))") }
    func wanted(_ part: String) -> Bool { parts.isEmpty ? part != "local" : parts.contains(part) }
    for run in 0..<runs {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("saraban-bench-sync-\(getpid())-\(run)")
        try? FileManager.default.removeItem(at: root)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { if rssDir == nil || !rssDir!.path.hasPrefix(root.path) { try? FileManager.default.removeItem(at: root) } }

        // 1a. End to end: A and B connected, B writes 100k changes, until A holds all.
        if wanted("e2e") {
            let (a, b, space) = try makePair(root.appendingPathComponent("e2e"))
            let da = try await BenchDaemon.start(a)
            let db = try await BenchDaemon.start(b)
            try b.addPeer(nodeID: a.nodeID.text, address: "127.0.0.1:\(da.port)", name: "A")
            try await Task.sleep(for: .milliseconds(300))
            settleDisk()
            let t0 = now()
            try writeChanges(b, space: space, count: 100_000, payload: 200, documents: true)
            let target = try b.feedVector(space: space)
            try await waitUntil(seconds: 120) { try a.feedVector(space: space).dominates(target) }
            endToEnd.append(100_000 / (now() - t0))
            await da.stop()
            await db.stop()
            if run == runs - 1 {
                a.close()
                rssDir = root.appendingPathComponent("e2e").appendingPathComponent("A")
            } else {
                a.close()
            }
            b.close()
        }

        // 1b/2. Transfer alone: B wrote first; A dials once (one-shot) and receives everything.
        if wanted("transfer") {
            let (a, b, space) = try makePair(root.appendingPathComponent("xfer"))
            try writeChanges(b, space: space, count: 100_000, payload: 200, documents: false)
            let sealed = try b.envelopes(space: space, after: FeedVector(), limit: FetchLimit(envelopes: 1 << 20, bytes: 1 << 40))
                .envelopes.reduce(0) { $0 + $1.bytes.count }
            let db = try await BenchDaemon.start(b)
            try a.addPeer(nodeID: b.nodeID.text, address: "127.0.0.1:\(db.port)", name: "B")
            settleDisk()
            let t0 = now()
            let results = try await a.syncOnce(storage: a.envelopeStorage())
            let dt = now() - t0
            guard results.first?.synced == true else { throw BenchError("transfer did not sync: \(results)") }
            transfer.append(100_000 / dt)
            let wire = results[0].bytesSent + results[0].bytesReceived
            ratio.append(Double(wire) / Double(sealed))
            await db.stop()
            a.close()
            b.close()
        }

        // 3. Up-to-date nodes sharing 10 spaces: one-shot sync bytes.
        if wanted("ten") {
            let dir = root.appendingPathComponent("ten")
            let (a, b, first) = try makePair(dir)
            var spaces = [first]
            for i in 1..<10 {
                let s = try a.createSpace(name: "space-\(i)")
                _ = try b.join(Invitation.parse(a.invite(space: s.id, invitee: b.nodeID).text))
                spaces.append(s.id)
            }
            for s in spaces {
                try writeChanges(a, space: s, count: 10, payload: 200, documents: true)
                try writeChanges(b, space: s, count: 10, payload: 200, documents: true)
            }
            let db = try await BenchDaemon.start(b)
            try a.addPeer(nodeID: b.nodeID.text, address: "127.0.0.1:\(db.port)", name: "B")
            let initial = try await a.syncOnce(storage: a.envelopeStorage())
            guard initial.first?.synced == true else { throw BenchError("10-space sync failed: \(initial)") }
            let second = try await a.syncOnce(storage: a.envelopeStorage())
            guard second.first?.synced == true, second[0].sharedSpaces >= 10 else {
                throw BenchError("10-space up-to-date sync failed: \(second)")
            }
            upToDate.append(Double(second[0].bytesSent + second[0].bytesReceived))
            await db.stop()
            a.close()
            b.close()
        }

        // 4a. Only B's 100k local writes of part 4 (same row), on a pair of their own.
        if wanted("local") {
            let (a, b, space) = try makePair(root.appendingPathComponent("local"))
            settleDisk()
            let w0 = now()
            try writeChanges(b, space: space, count: 100_000, payload: 200, documents: true)
            localWrites.append(100_000 / (now() - w0))
            a.close()
            b.close()
        }

        // 4. A week offline: 10k local changes at A, 100k at B; one-shot sync both ways.
        //    B's 100k local writes, with no daemon running, are timed on their own as well.
        if wanted("week") {
            let (a, b, space) = try makePair(root.appendingPathComponent("week"))
            try writeChanges(a, space: space, count: 10_000, payload: 200, documents: true)
            settleDisk()
            let w0 = now()
            try writeChanges(b, space: space, count: 100_000, payload: 200, documents: true)
            localWrites.append(100_000 / (now() - w0))
            // The same on a node of its own, each transaction fsynced (as a write through Node is).
            let (c, _, other) = try makePair(root.appendingPathComponent("durable"))
            settleDisk()
            let d0 = now()
            try writeChanges(c, space: other, count: 100_000, payload: 200, documents: true, durable: true)
            durableLocalWrites.append(100_000 / (now() - d0))
            c.close()
            let db = try await BenchDaemon.start(b)
            try a.addPeer(nodeID: b.nodeID.text, address: "127.0.0.1:\(db.port)", name: "B")
            settleDisk()
            let t0 = now()
            let results = try await a.syncOnce(storage: a.envelopeStorage())
            guard results.first?.synced == true else { throw BenchError("catch-up did not sync: \(results)") }
            let target = try a.feedVector(space: space)
            try await waitUntil(seconds: 60) { try b.feedVector(space: space).dominates(target) }
            weekOffline.append(now() - t0)
            await db.stop()
            a.close()
            b.close()
        }
    }

    report.add("100k changes sealed, sent, verified, stored, applied (end to end)", endToEnd, unit: "changes/s", note: "target ≥ 50,000")
    report.add("100k changes transfer alone (verified, stored, applied)", transfer, unit: "changes/s")
    report.add("100k local writes alone (new documents, sealed, no daemon)", localWrites, unit: "changes/s")
    report.add(
        "100k local writes alone, each 1,000-change transaction fsynced", durableLocalWrites, unit: "changes/s")
    report.add("wire bytes ÷ sealed envelope bytes", ratio, unit: "×", note: "target ≤ 1.15")
    report.add("up-to-date sync, 10 shared spaces", upToDate, unit: "bytes", note: "target ≤ 2048")
    report.add("catch-up after a week offline (10k local + 100k remote)", weekOffline, unit: "s", note: "target ≤ 5")

    // 5. Resident memory of a daemon holding 100k documents, in a fresh process.
    if let rssDir {
        defer { try? FileManager.default.removeItem(at: rssDir.deletingLastPathComponent().deletingLastPathComponent()) }
        let p = Process()
        p.executableURL = URL(
            fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        p.arguments = ["sync-rss", rssDir.path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if let mb = Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) {
            report.add("daemon resident memory holding 100k documents", [mb], unit: "MB", note: "target ≤ 100")
        }
    }
    report.print(json: opts.json)
    return 0
}

/// `saraban-bench sync-rss DIR`: opens the node, runs its daemon for two seconds (listening,
/// polling), reads every document summary once, and prints VmRSS in MB.
func syncRSS(_ args: [String]) async throws -> Int32 {
    guard let dir = args.first else { throw BenchError("sync-rss DIR") }
    let node = try Node.open(dataDir: DataDirectory(path: dir))
    let d = try await BenchDaemon.start(node)
    let count = try node.store.documentSummaries().count
    try await Task.sleep(for: .seconds(2))
    let rss = residentMB()
    await d.stop()
    node.close()
    FileHandle.standardError.write("documents: \(count)\n")
    print(String(format: "%.1f", rss))
    return 0
}

func residentMB() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return .nan }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? .nan
        return kb / 1024
    }
    return .nan
}

/// Two member nodes (A creates the space, B joins), in `dir/A` and `dir/B`.
func makePair(_ dir: URL) throws -> (Node, Node, SpaceID) {
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let a = try Node.initialize(dataDir: DataDirectory(path: dir.appendingPathComponent("A").path), office: "อบต.บ้านใหม่")
    let b = try Node.initialize(dataDir: DataDirectory(path: dir.appendingPathComponent("B").path), office: "อบต.หนองบัว")
    let s = try a.createSpace(name: "สารบรรณ")
    _ = try b.join(Invitation.parse(a.invite(space: s.id, invitee: b.nodeID).text))
    return (a, b, s.id)
}

/// `count` changes of one 200-byte register write each, 1,000 per transaction. With `documents`,
/// each change creates its own document (so the node ends up holding `count` documents). A bulk
/// writer: each transaction fsyncs only when `durable` (its envelopes are made durable by the
/// daemon before they are pushed either way).
func writeChanges(_ node: Node, space: SpaceID, count: Int, payload: Int, documents: Bool, durable: Bool = false) throws {
    let value = String(repeating: "x", count: payload - 8)
    var shared: DocID?
    if !documents { shared = try node.createDocument(kind: "bench", space: space) }
    var i = 0
    while i < count {
        let end = min(count, i + 1_000)
        _ = try node.store.write(space: space, signer: node.identity, durable: durable) { w in
            for j in i..<end {
                _ = try w.change(time: Int64(j)) { tx, docs in
                    let doc: DocID
                    if let shared { doc = shared } else { doc = try tx.createDocument(kind: "bench", in: &docs) }
                    try tx.set(doc, field: documents ? "body" : "k\(j % 1000)", value: .string(value + zeroPadded(j, 8)), in: &docs)
                }
            }
        }
        i = end
    }
}

/// `n` in decimal, left-padded with zeros to `width` digits (what `String(format: "%08d", n)` gives
/// for width 8, without Foundation's formatter in the timed loop).
func zeroPadded(_ n: Int, _ width: Int) -> String {
    let digits = String(n)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

func waitUntil(seconds: Double, _ condition: () throws -> Bool) async throws {
    let deadline = now() + seconds
    while now() < deadline {
        if try condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    throw BenchError("timed out after \(seconds) s")
}

/// A daemon for one node on 127.0.0.1 (port 0), run in a task.
struct BenchDaemon {
    let daemon: NodeDaemon
    let task: Task<Void, any Error>
    let port: Int

    static func start(_ node: Node) async throws -> BenchDaemon {
        var o = ServeOptions(listen: PeerAddress(host: "127.0.0.1", port: 0))
        o.handleSignals = false
        o.pollInterval = .milliseconds(20)
        o.configInterval = .milliseconds(50)
        o.minimumBackoff = .milliseconds(50)
        o.transport.rateLimit = nil
        let daemon = try NodeDaemon(node: node, storage: node.envelopeStorage(), options: o)
        let (stream, c) = AsyncStream.makeStream(of: Int.self)
        let task = Task {
            try await daemon.run { r in
                c.yield(r.address.port)
                c.finish()
            }
        }
        var port = 0
        for await p in stream { port = p }
        return BenchDaemon(daemon: daemon, task: task, port: port)
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

/// Writes the kernel's dirty pages out before a timed part, so its flusher threads do not write
/// back the earlier parts' hundreds of megabytes on the same two cores while the part runs.
func settleDisk() {
    sync()
}
