import Foundation
import GRDB
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Power loss with real processes (issue 17): `saraban serve` daemons and CLI writers, a power cut
// modelled by libSarabanPowerLoss (Tests/CPowerLoss), which keeps each database file as of its
// last fsync; and a node whose database is restored from an older copy.

/// `libSarabanPowerLoss.so`, built next to the `saraban` binary by `swift build`.
let powerLossLibrary: String = URL(fileURLWithPath: sarabanBinary).deletingLastPathComponent()
    .appendingPathComponent("libSarabanPowerLoss.so").path

/// A node's files as a power cut would leave them: its processes run with libSarabanPowerLoss
/// preloaded (``environment``), which copies each watched file (the database, its WAL, every
/// file under `attachments/`) to `FILE.synced` just before every fsync of it; ``cut()`` puts those
/// copies back.
struct PowerLossDisk {
    let data: String
    var database: [String] { [data + "/saraban.db", data + "/saraban.db-wal"] }
    var attachments: String { data + "/attachments" }
    var environment: [String: String] {
        ["LD_PRELOAD": powerLossLibrary, "SARABAN_POWERLOSS_FILES": (database + [attachments + "/"]).joined(separator: ":")]
    }

    /// The watched files now: the database's and every file under `attachments/` (not the copies).
    var files: [String] {
        let under = (FileManager.default.enumerator(atPath: attachments)?.allObjects as? [String] ?? [])
            .map { attachments + "/" + $0 }
            .filter { path in
                var isDir: ObjCBool = false
                return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
                    && !path.hasSuffix(".synced") && !path.hasSuffix(".synced.lock")
            }
        return database + under
    }

    /// Every process of the node stopped cleanly: what the files hold now is on the disk.
    func markDurable() throws {
        let fm = FileManager.default
        for f in files {
            try? fm.removeItem(atPath: f + ".synced")
            if fm.fileExists(atPath: f) { try fm.copyItem(atPath: f, toPath: f + ".synced") }
        }
    }

    /// The bytes of `file` as of its last fsync.
    func synced(_ file: String) -> Data? { FileManager.default.contents(atPath: file + ".synced") }

    /// The cut, once every process of the node is dead: each file goes back to its content at
    /// its last fsync (a file never synced is lost), SQLite's shared-memory index goes (it is
    /// rebuilt from the files on the next open).
    func cut() throws {
        let fm = FileManager.default
        for f in Set(files + database) {
            try? fm.removeItem(atPath: f)
            if fm.fileExists(atPath: f + ".synced") { try fm.moveItem(atPath: f + ".synced", toPath: f) }
            try? fm.removeItem(atPath: f + ".synced.lock")
        }
        try? fm.removeItem(atPath: data + "/saraban.db-shm")
    }
}

/// A read transaction held open on a database from another connection (as a backup or a long
/// export would hold one) until ``release()``: while it holds a snapshot taken when the WAL was
/// all checkpointed, no checkpoint can copy the WAL into the database or sync it, so what reaches
/// the disk is what each commit syncs itself. (The CLI's closing checkpoint would otherwise sync a
/// write a few milliseconds after it: the pin stands for a cut that comes before it.)
final class SnapshotPin: @unchecked Sendable {
    private let taken = DispatchSemaphore(value: 0)
    private let released = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private var failure: (any Error)?

    init(_ path: String) throws {
        var config = Configuration()
        config.readonly = true
        _ = Store.processWideSettings
        let queue = try DatabaseQueue(path: path, configuration: config)
        let t = Thread { [self] in
            do {
                try queue.read { db in
                    _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM changes")
                    taken.signal()
                    released.wait()
                }
            } catch {
                failure = error
                taken.signal()
            }
            try? queue.close()
            done.signal()
        }
        t.start()
        taken.wait()
        if let failure { throw failure }
    }

    private var isReleased = false

    /// Ends the read transaction (once; later calls do nothing).
    func release() {
        guard !isReleased else { return }
        isReleased = true
        released.signal()
        done.wait()
    }
}

/// Checks made on a thread of its own (where `#expect` cannot name the test): each failure is
/// kept, and ``finish()`` throws them all at once.
final class Checks {
    private var failures: [String] = []

    func that(_ ok: Bool, _ what: @autoclosure () -> String, line: Int = #line) {
        if !ok { failures.append("line \(line): \(what())") }
    }

    func finish() throws {
        if !failures.isEmpty { throw TestFailure(failures.joined(separator: "\n")) }
    }
}

/// Opens the node in `data` (as a CLI command would), runs `body`, closes it.
func withNodeAt<T>(_ data: String, _ body: (Node) throws -> T) throws -> T {
    let node = try Node.open(dataDir: DataDirectory(path: data), logger: testLogger("saraban.powerloss"))
    defer { node.close() }
    return try body(node)
}

/// Two offices (letter codes นว and ชม) sharing the space `จังหวัด`, each with its `saraban serve`,
/// peers of each other.
func powerLossPair(root: URL, reaper: DaemonReaper) throws -> (a: CrashDaemon, b: CrashDaemon, space: String) {
    var daemons: [CrashDaemon] = []
    for (name, office, code) in [("A", "สำนักงานจังหวัดนครสวรรค์", "นว"), ("B", "ศาลากลางจังหวัดเชียงใหม่", "ชม")] {
        let data = root.appendingPathComponent(name).path
        let id = try crashCLI(["init", "--data", data, "--office", office, "--code", code], seed: 0)
        daemons.append(CrashDaemon(name: name, data: data, nodeID: id))
    }
    let (a, b) = (daemons[0], daemons[1])
    try crashCLI(["space", "create", "--data", a.data, "จังหวัด"], seed: 0)
    let invite = try crashCLI(["space", "invite", "--data", a.data, "จังหวัด", b.nodeID], seed: 0)
    try crashCLI(["space", "join", "--data", b.data, invite], seed: 0)
    for d in daemons {
        reaper.add(d)
        try d.start(seed: 0)
    }
    try crashCLI(["peer", "add", "--data", a.data, b.nodeID, "127.0.0.1:\(b.port)", "--name", "B"], seed: 0)
    try crashCLI(["peer", "add", "--data", b.data, a.nodeID, "127.0.0.1:\(a.port)", "--name", "A"], seed: 0)
    return (a, b, "จังหวัด")
}

/// SIGTERM, and the daemon must exit 0.
func stopCleanly(_ d: CrashDaemon) throws {
    guard d.terminate() == .exited(0) else { throw TestFailure("\(d.name)'s daemon did not stop cleanly:\n\(d.logTail())") }
}

/// Prepares a cut of `a`: it stops cleanly (what its files hold now is the durable state), a
/// snapshot is pinned on its database, and it starts again with libSarabanPowerLoss. Release the
/// pin before the cut.
func armPowerCut(_ a: CrashDaemon, peer b: CrashDaemon) throws -> (disk: PowerLossDisk, pin: SnapshotPin) {
    try requirePowerLossLibrary()
    try stopCleanly(a)
    let disk = PowerLossDisk(data: a.data)
    try disk.markDurable()
    let pin = try SnapshotPin(a.database)
    a.environment = disk.environment
    do { try restart(a, peer: b) } catch {
        pin.release()
        throw error
    }
    return (disk, pin)
}

/// The cut of `a`, once every process of it is dead and its pin released: its files go back to
/// their last fsync and must pass `PRAGMA integrity_check`; then `b` stops (out of reach) and `a`
/// starts again alone, without the library.
func cutAndRestartAlone(_ a: CrashDaemon, disk: PowerLossDisk, away b: CrashDaemon) throws {
    try disk.cut()
    let integrity = try integrityCheck(a.database)
    guard integrity == "ok" else { throw TestFailure("after the cut, A's PRAGMA integrity_check: \(integrity)") }
    try stopCleanly(b)
    a.environment = [:]
    try a.start(seed: 0)
}

/// Starts `d` again; when its port changed, tells `peer`.
func restart(_ d: CrashDaemon, peer: CrashDaemon) throws {
    if try d.start(seed: 0) {
        try crashCLI(["peer", "add", "--data", peer.data, d.nodeID, "127.0.0.1:\(d.port)", "--name", d.name], seed: 0)
    }
}

/// `saraban status --json`'s `forks`, or nil when the key is missing (a build that predates it).
func statusForks(_ data: String) throws -> [[String: Any]]? {
    let out = try crashCLI(["status", "--data", data, "--json"], seed: 0)
    let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
    return object?["forks"] as? [[String: Any]]
}

/// The register number in `letter send`'s line (`… (ทะเบียนหนังสือส่ง 2569 เลข 1)  ส่งแล้ว`).
func registerNumber(_ line: String) -> Int? {
    guard let r = line.range(of: #"เลข (\d+)\)"#, options: .regularExpression) else { return nil }
    return Int(line[r].dropFirst(4).dropLast())
}

/// An internal letter with every field `letter send` needs, in `space`; returns its id.
func draftLetter(_ data: String, space: String, subject: String) throws -> String {
    try crashCLI(
        [
            "letter", "new", "--data", data, "--kind", "ภายใน", "--space", space, "--subject", subject,
            "--to", "ผู้ว่าราชการจังหวัด", "--set", "ส่วนราชการ=สำนักงานจังหวัด", "--set", "ข้อความ=\(subject)",
            "--set", "ผู้ลงนาม=นายสมมติ ใจดี", "--set", "ตำแหน่ง=ปลัดจังหวัด",
        ], seed: 0
    ).split(separator: "\n").last.map(String.init) ?? ""
}

@Suite(.serialized, .timeLimit(.minutes(6)))
struct PowerLossTests {
    /// The acceptance test of issue 17's power-loss part: A sends a letter (a register number is
    /// printed), its daemon pushes it to B, and A loses power before anything else syncs its disk
    /// (a reader holds a snapshot, so no checkpoint syncs the WAL on the writer's behalf);
    /// its files go back to their last fsync. With B out of reach A sends the next letter; then
    /// they meet. The sent letter survived the cut, the next number is new, and B sees no fork.
    ///
    /// On the old code (local writes at `synchronous=NORMAL`) the cut lost the sent letter: the
    /// next letter took number 1 again and A's next change reused the sequence number B held.
    @Test func aLetterPushedBeforeAPowerCutSurvivesIt() async throws {
        try await withRealProcesses("powercut", failure: "PowerLossTests", runPowerCut)
    }

    /// A bulk writer (an import: `Store.write(durable: false)`, no fsync per transaction) writes
    /// while the daemon runs; the daemon pushes its envelopes to B; A loses power. The daemon made
    /// them durable before it pushed them (it fsyncs the WAL before this node's own envelopes
    /// leave), so they survive, and A's next write reuses nothing. Without that fsync the cut
    /// lost them and A forked its feed.
    @Test func aBulkWritePushedBeforeAPowerCutSurvivesIt() async throws {
        try await withRealProcesses("bulkcut", failure: "PowerLossTests", runBulkCut)
    }

    /// Issue 17's measured scenario as a restored backup: A's database goes back to a copy taken
    /// before document D4 (already pushed to B) and, with B out of reach, A writes D5 at the
    /// position D4 holds. When they meet the two feed vectors are equal, so nothing moves, but the
    /// head tags of the summaries differ: both report the fork (status text and JSON, the
    /// daemons' logs) naming the author, the sequence number and both envelopes.
    ///
    /// On the old code nothing was reported: silent, permanent divergence.
    @Test func aRestoredBackupThatWritesAgainIsReportedAsAFork() async throws {
        try await withRealProcesses("restored", failure: "PowerLossTests", runRestoredBackup)
    }
}

/// Throws unless libSarabanPowerLoss was built (without it a cut would keep every write).
func requirePowerLossLibrary() throws {
    guard FileManager.default.fileExists(atPath: powerLossLibrary) else {
        throw TestFailure("\(powerLossLibrary) is missing: build it with `swift build` (product SarabanPowerLoss)")
    }
}

func runPowerCut(root: URL, reaper: DaemonReaper) throws {
    let check = Checks()
    let (a, b, space) = try powerLossPair(root: root, reaper: reaper)
    let spaceID = try withNodeAt(a.data) { try $0.resolveSpace(space).id }
    let first = try draftLetter(a.data, space: space, subject: "รายงานผลการประชุม")
    let second = try draftLetter(a.data, space: space, subject: "ขอเชิญประชุมครั้งต่อไป")
    try crashEventually("B holds both drafts", seed: 0, timeout: 60) {
        try withNodeAt(b.data) { n in [first, second].allSatisfy { (try? n.letter(n.resolveDocument($0))) != nil } }
    }

    // Everything so far is on the disk: A stops cleanly, and that is the durable state.
    let (disk, pin) = try armPowerCut(a, peer: b)
    defer { pin.release() }
    let walBefore = disk.synced(a.database + "-wal")

    // The clerk attaches a scan to the first letter and sends it: its number is printed; A's
    // daemon pushes it to B. (Each command prints, then waits for its closing checkpoint, which
    // the pinned snapshot holds off: it is killed at the cut, or at once for the attach.)
    let scan = root.appendingPathComponent("scan.pdf")
    var rng = CrashRNG(17)
    try Data((0..<600_000).map { _ in UInt8.random(in: 0...255, using: &rng) }).write(to: scan)
    let attach = try Child.spawn(["letter", "attach", "--data", a.data, first, scan.path], environment: disk.environment)
    guard let attached = attach.readLine(timeout: 30), attached.contains("scan.pdf") else {
        throw TestFailure("`letter attach` printed no attachment: \(attach.collect(deadline: 5))")
    }
    attach.killNow()
    let send = try Child.spawn(["letter", "send", "--data", a.data, first], environment: disk.environment)
    defer { send.killNow() }
    guard let line = send.readLine(timeout: 30), let number = registerNumber(line) else {
        throw TestFailure("`letter send` printed no number: \(send.collect(deadline: 5))")
    }
    check.that(number == 1, "the first letter's number is \(number), not 1")
    try crashEventually("B holds the sent letter with its number", seed: 0, timeout: 30) {
        try withNodeAt(b.data) { try $0.letter($0.resolveDocument(first)).fields["ที่"] == "นว/1" }
    }
    // The send synced A's WAL before it returned (the library copied it at that fsync).
    check.that(disk.synced(a.database + "-wal") != walBefore, "the letter's commit did not fsync the WAL")

    // The cut: every process of A dies at once and its files go back to their last fsync.
    try a.kill9(seed: 0)
    send.killNow()
    pin.release()
    // B is out of reach; A comes back and the clerk sends the next letter.
    try cutAndRestartAlone(a, disk: disk, away: b)
    let next = try crashCLI(["letter", "send", "--data", a.data, second], seed: 0)
    check.that(registerNumber(next) == 2, "the next letter's number: \(next)")
    let firstAtA = try withNodeAt(a.data) { try $0.letter($0.resolveDocument(first)).fields["ที่"] }
    check.that(firstAtA == "นว/1", "after the cut A holds the first letter as \(firstAtA ?? "unnumbered"), not นว/1")
    // The scan it names survived too (its chunks were on disk before the letter named them).
    let extracted = root.appendingPathComponent("extracted.pdf").path
    let extract = try Child.spawn(["letter", "extract", "--data", a.data, first, "scan.pdf", extracted]).collect(deadline: 60)
    let original = try Data(contentsOf: scan)
    check.that(
        extract.end == .exited(0) && FileManager.default.contents(atPath: extracted) == original,
        "after the cut A cannot give back the scan it sent (\(extract.end)): \(extract.err)")

    // B returns: the two converge, with no fork on either side.
    try check.finish()
    try restart(b, peer: a)
    try crashEventually("A and B converge after the cut", seed: 0, timeout: 60) {
        let va = try withNodeAt(a.data) { try $0.feedVector(space: spaceID) }
        let vb = try withNodeAt(b.data) { try $0.feedVector(space: spaceID) }
        return va == vb
    }
    let secondAtB = try withNodeAt(b.data) { try $0.letter($0.resolveDocument(second)).fields["ที่"] }
    check.that(secondAtB == "นว/2", "B holds the second letter as \(secondAtB ?? "unnumbered"), not นว/2")
    let forks = (try statusForks(a.data), try statusForks(b.data))
    check.that(forks.0?.isEmpty == true && forks.1?.isEmpty == true, "forks reported: A \(forks.0 ?? []), B \(forks.1 ?? [])")
    for d in [a, b] { try stopCleanly(d) }
    let logB = (try? String(contentsOfFile: b.log, encoding: .utf8)) ?? ""
    check.that(!logB.contains("fork"), "B logged a fork:\n\(b.logTail())")
    try check.finish()
}

func runRestoredBackup(root: URL, reaper: DaemonReaper) throws {
    let fm = FileManager.default
    let check = Checks()
    let (a, b, space) = try powerLossPair(root: root, reaper: reaper)
    let spaceID = try withNodeAt(a.data) { try $0.resolveSpace(space).id }
    func write(_ value: String) throws -> String {
        try crashCLI(["doc", "new", "--data", a.data, "--space", space, "--kind", "memo", "--set", "w=\(value)"], seed: 0)
    }
    func bHolds(_ doc: String) throws -> Bool {
        try withNodeAt(b.data) { n in (try? n.document(n.resolveDocument(doc))) != nil }
    }
    for v in ["FIRST", "SECOND", "THIRD"] {
        let d = try write(v)
        try crashEventually("B holds \(v)", seed: 0, timeout: 60) { try bHolds(d) }
    }

    // The backup: A stopped, its database copied.
    try stopCleanly(a)
    let backup = root.appendingPathComponent("backup").path
    try fm.createDirectory(atPath: backup, withIntermediateDirectories: true)
    for suffix in ["", "-wal"] where fm.fileExists(atPath: a.database + suffix) {
        try fm.copyItem(atPath: a.database + suffix, toPath: backup + "/saraban.db" + suffix)
    }

    // D4, pushed to B.
    try restart(a, peer: b)
    let d4 = try write("FOURTH")
    try crashEventually("B holds D4", seed: 0, timeout: 60) { try bHolds(d4) }

    // A's database goes back to the backup; B is out of reach; A writes D5.
    for d in [a, b] { try stopCleanly(d) }
    for suffix in ["", "-wal", "-shm"] {
        try? fm.removeItem(atPath: a.database + suffix)
        if fm.fileExists(atPath: backup + "/saraban.db" + suffix) {
            try fm.copyItem(atPath: backup + "/saraban.db" + suffix, toPath: a.database + suffix)
        }
    }
    try a.start(seed: 0)
    _ = try write("FIFTH")

    // They meet: equal vectors, and a fork reported on both sides.
    try restart(b, peer: a)
    var forksB: [[String: Any]] = []
    var forksA: [[String: Any]] = []
    try crashEventually("both report the fork", seed: 0, timeout: 60) {
        forksB = try statusForks(b.data) ?? []
        forksA = try statusForks(a.data) ?? []
        return !forksB.isEmpty && !forksA.isEmpty
    }
    let textB = try crashCLI(["status", "--data", b.data], seed: 0)
    for d in [a, b] { try stopCleanly(d) }

    let author = try NodeID(parsing: a.nodeID).publicKey
    let (vectorA, vectorB) = (
        try withNodeAt(a.data) { try $0.feedVector(space: spaceID) }, try withNodeAt(b.data) { try $0.feedVector(space: spaceID) }
    )
    check.that(vectorA == vectorB, "the vectors are equal: nothing to exchange")
    let seq = vectorA[author]
    guard let heldByA = try withNodeAt(a.data, { try $0.store.storedEnvelope(space: spaceID, author: author, covering: seq) }),
        let heldByB = try withNodeAt(b.data, { try $0.store.storedEnvelope(space: spaceID, author: author, covering: seq) })
    else { throw TestFailure("A or B holds no envelope at seq \(seq) of A's feed") }
    check.that(heldByA.id != heldByB.id, "A and B hold the same envelope at seq \(seq): no fork was made")

    check.that(forksB.count == 1 && forksA.count == 1, "one fork on each side; B: \(forksB), A: \(forksA)")
    // B names A's feed, the position, its envelope and A's tag; A names its own feed.
    for (f, own, peer, held, other) in [(forksB.first, false, a, heldByB.id, heldByA.id), (forksA.first, true, b, heldByA.id, heldByB.id)] {
        let names: Bool = f?["author"] as? String == a.nodeID && f?["peer"] as? String == peer.nodeID
        let flags: Bool = f?["ownFeed"] as? Bool == own && f?["via"] as? String == "summary"
        let position: Bool = (f?["sequence"] as? NSNumber)?.uint64Value == seq
        let ids: Bool =
            f?["held"] as? String == held.hex && (f?["peerHolds"] as? String).map { other.hex.hasPrefix($0) } == true
        check.that(names && flags && position && ids, "fork as \(peer === a ? "B" : "A") reports it: \(f ?? [:]); expected A's feed at seq \(seq), held \(held.hex), peer holds \(other)")
    }

    // The text status and B's log name the position and both envelopes.
    check.that(textB.contains("forks:") && textB.contains(heldByB.id.description) && textB.contains(heldByA.id.description),
        "`status` does not name the fork with both envelopes:\n\(textB)")
    let logB = (try? String(contentsOfFile: b.log, encoding: .utf8)) ?? ""
    let forkLines = logB.split(separator: "\n").filter { $0.contains("fork:") }
    check.that(
        forkLines.contains { $0.contains(a.nodeID) && $0.contains("seq \(seq)") && $0.contains(heldByB.id.hex) && $0.contains(heldByA.id.description) },
        "B's log names no fork with A's feed, seq \(seq) and both envelopes: \(forkLines)")
    try check.finish()
}

func runBulkCut(root: URL, reaper: DaemonReaper) throws {
    let check = Checks()
    let (a, b, space) = try powerLossPair(root: root, reaper: reaper)
    let spaceID = try withNodeAt(a.data) { try $0.resolveSpace(space).id }
    let (disk, pin) = try armPowerCut(a, peer: b)
    defer { pin.release() }

    // The import: 50 documents in one transaction, committed without an fsync, in this process.
    let importer = try Node.open(dataDir: DataDirectory(path: a.data), logger: testLogger("saraban.powerloss"))
    var imported: [DocID] = []
    _ = try importer.store.write(space: spaceID, signer: importer.identity, durable: false) { w in
        for i in 0..<50 {
            _ = try w.change(time: Int64(i)) { tx, docs in
                let d = try tx.createDocument(kind: "memo", in: &docs)
                try tx.set(d, field: "w", value: .string("IMPORTED-\(i)"), in: &docs)
                imported.append(d)
            }
        }
    }
    try crashEventually("B holds the import", seed: 0, timeout: 30) {
        try withNodeAt(b.data) { n in imported.allSatisfy { (try? n.document($0)) != nil } }
    }

    // The cut (the importer's connections close first: they must not touch the restored files).
    try a.kill9(seed: 0)
    pin.release()
    importer.close()
    try cutAndRestartAlone(a, disk: disk, away: b)
    let held = try withNodeAt(a.data) { n in imported.filter { (try? n.document($0)) != nil }.count }
    check.that(held == imported.count, "after the cut A holds \(held) of the \(imported.count) documents it pushed")
    _ = try crashCLI(["doc", "new", "--data", a.data, "--space", space, "--kind", "memo", "--set", "w=AFTER"], seed: 0)

    try check.finish()
    try restart(b, peer: a)
    try crashEventually("A and B converge after the cut", seed: 0, timeout: 60) {
        try withNodeAt(a.data) { try $0.feedVector(space: spaceID) } == withNodeAt(b.data) { try $0.feedVector(space: spaceID) }
    }
    let forks = (try statusForks(a.data), try statusForks(b.data))
    check.that(forks.0?.isEmpty == true && forks.1?.isEmpty == true, "forks reported: A \(forks.0 ?? []), B \(forks.1 ?? [])")
    for d in [a, b] { try stopCleanly(d) }
    try check.finish()
}
