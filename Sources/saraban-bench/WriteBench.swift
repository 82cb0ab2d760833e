import Foundation
import SarabanCore
#if canImport(Glibc)
import Glibc
#endif
import SarabanNode
import SarabanOffice

/// `saraban-bench write`: the latency of one local write as a clerk makes it, through `Node` (what
/// the CLI runs, without the process start), on a node in a fresh data directory:
///
/// - `doc set`: one register field of one document, one change and one transaction each;
/// - `letter send`: register and send one drafted internal letter (the register number is
///   allocated, then the letter's number, date and status are written: two transactions).
///
/// Each local write transaction fsyncs the WAL before it returns (Docs/ARCHITECTURE.md,
/// "Durability"), so these rows carry that cost. Reported: the median over runs of each run's
/// p50 and p99.
func writeBench(_ args: [String]) throws -> Int32 {
    let opts = try BenchOptions(args)
    var report = BenchReport(suite: "write")
    let sets = 1_000
    let letters = 200
    report.facts["doc set"] = "\(sets) writes of one 40-byte field per run, after 50 not timed"
    report.facts["letter send"] = "\(letters) drafted internal letters sent one by one per run"

    var syncP50: [Double] = []
    var syncP99: [Double] = []
    var setP50: [Double] = []
    var setP99: [Double] = []
    var sendP50: [Double] = []
    var sendP99: [Double] = []
    for run in 0..<opts.runs {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("saraban-bench-write-\(getpid())-\(run)")
        try? FileManager.default.removeItem(at: root)
        defer { try? FileManager.default.removeItem(at: root) }
        let node = try Node.initialize(
            dataDir: DataDirectory(path: root.appendingPathComponent("node").path), office: "สำนักงานจังหวัดนครสวรรค์",
            letterCode: "นว 0017")
        defer { node.close() }

        // What one fsync costs on this disk now (the rows below pay it once per transaction).
        let probe = try fsyncLatencies(root.appendingPathComponent("fsync-probe").path, count: 200)
        syncP50.append(percentile(probe, 0.50))
        syncP99.append(percentile(probe, 0.99))

        let doc = try node.createDocument(kind: "memo", fields: [("เรื่อง", "ขออนุมัติเดินทางไปราชการ")])
        let value = String(repeating: "ก", count: 40)
        for i in 0..<50 { try node.set(doc, field: "note", value: .string(value + String(i))) }
        settleDisk()
        var times: [Double] = []
        times.reserveCapacity(sets)
        for i in 0..<sets {
            let t0 = now()
            try node.set(doc, field: "note", value: .string(value + String(i)))
            times.append((now() - t0) * 1000)
        }
        setP50.append(percentile(times, 0.50))
        setP99.append(percentile(times, 0.99))

        var drafts: [DocID] = []
        for i in 0..<letters {
            drafts.append(
                try node.createLetter(
                    kind: .internal,
                    fields: [
                        ("เรื่อง", "รายงานผลการปฏิบัติงาน ฉบับที่ \(i)"), ("เรียน", "ผู้ว่าราชการจังหวัด"),
                        ("ส่วนราชการ", "สำนักงานจังหวัดนครสวรรค์"), ("ข้อความ", "ขอรายงานผลการปฏิบัติงานประจำเดือน"),
                        ("ผู้ลงนาม", "นายสมมติ ใจดี"), ("ตำแหน่ง", "ปลัดจังหวัด"),
                    ]))
        }
        settleDisk()
        times.removeAll()
        for (i, id) in drafts.enumerated() {
            let t0 = now()
            let sent = try node.sendLetter(id)
            times.append((now() - t0) * 1000)
            guard sent.allocation.number == i + 1 else {
                throw BenchError("letter \(i) got number \(sent.allocation.number), not \(i + 1)")
            }
        }
        sendP50.append(percentile(times, 0.50))
        sendP99.append(percentile(times, 0.99))
    }
    report.add("fdatasync of a 4 KiB write on this disk, p50", syncP50, unit: "ms")
    report.add("fdatasync of a 4 KiB write on this disk, p99", syncP99, unit: "ms")
    report.add("doc set (one change, one transaction), p50", setP50, unit: "ms")
    report.add("doc set (one change, one transaction), p99", setP99, unit: "ms")
    report.add("letter send (allocate + number, date, status), p50", sendP50, unit: "ms")
    report.add("letter send (allocate + number, date, status), p99", sendP99, unit: "ms")
    report.print(json: opts.json)
    return 0
}

/// `count` times: write 4 KiB at the next offset of a 4 KiB-aligned file at `path` and time the
/// fdatasync that follows (ms each).
func fsyncLatencies(_ path: String, count: Int) throws -> [Double] {
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw BenchError("cannot create \(path): \(String(cString: strerror(errno)))") }
    defer {
        close(fd)
        unlink(path)
    }
    let page = [UInt8](repeating: 0x5A, count: 4096)
    var out: [Double] = []
    for i in 0..<count {
        guard page.withUnsafeBytes({ pwrite(fd, $0.baseAddress, $0.count, off_t(i * 4096)) }) == 4096 else {
            throw BenchError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let t0 = now()
        guard fdatasync(fd) == 0 else { throw BenchError("fdatasync \(path): \(String(cString: strerror(errno)))") }
        out.append((now() - t0) * 1000)
    }
    return out
}

/// The `q` quantile of `xs` (nearest rank).
func percentile(_ xs: [Double], _ q: Double) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    return s[min(s.count - 1, max(0, Int((q * Double(s.count)).rounded(.up)) - 1))]
}
