import Foundation
import SarabanCore
#if canImport(Glibc)
import Glibc
#endif
import SarabanNode
import SarabanOffice
import SarabanStorage

/// `saraban-bench search`: search over 10,000 letters (Thai subjects, senders, numbers and bodies)
/// through the FTS5 trigram index (`Node.search`, what `GET /api/v1/search` runs), against the
/// same question answered by a plain `LIKE '%…%'` scan of the same rows. Reported: the median over
/// runs of each run's p50 and p99 over 200 searches for Thai words found in the middle of
/// subjects and bodies (no spaces between Thai words: any substring must be found), and the time
/// to index 10,000 new letters (the first search after they were written).
func searchBench(_ args: [String]) throws -> Int32 {
    let opts = try BenchOptions(args)
    var report = BenchReport(suite: "search")
    let letters = 10_000
    let queries = 200
    report.facts["letters"] = "\(letters) letters written in changes of 500, then indexed by the first search"
    report.facts["queries"] = "\(queries) searches per run for common Thai words inside subjects, senders and bodies (the newest 100 of many), and \(queries) for rare ones (ครั้งที่ N: one letter)"

    let subjects = [
        "ขอเชิญประชุมคณะกรรมการบริหารงานจังหวัด", "ขออนุมัติเดินทางไปราชการต่างจังหวัด", "รายงานผลการปฏิบัติงานประจำเดือน",
        "ขอความอนุเคราะห์ข้อมูลสถิติประชากร", "แจ้งกำหนดการตรวจราชการของผู้ตรวจราชการกระทรวง", "ขอส่งแผนปฏิบัติราชการประจำปีงบประมาณ",
        "ขอเชิญร่วมพิธีเปิดโครงการปลูกป่าชายเลน", "การเบิกจ่ายงบประมาณรายจ่ายลงทุน",
    ]
    let senders = ["สำนักงานจังหวัดน่าน", "สำนักงานจังหวัดแพร่", "กรมการปกครอง", "สำนักงานปลัดกระทรวงมหาดไทย", "อำเภอเมืองน่าน"]
    let words = ["ประชุม", "งบประมาณ", "ตรวจราชการ", "ป่าชายเลน", "สถิติ", "จังหวัดแพร่", "ปลัดกระทรวง", "เดินทาง"]

    var indexTimes: [Double] = []
    // p50, p99 of common words, then p50, p99 of rare ones.
    var ftsRows: [[Double]] = Array(repeating: [], count: 4)
    var scanRows: [[Double]] = Array(repeating: [], count: 4)
    for run in 0..<opts.runs {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("saraban-bench-search-\(getpid())-\(run)")
        try? FileManager.default.removeItem(at: root)
        defer { try? FileManager.default.removeItem(at: root) }
        let node = try Node.initialize(
            dataDir: DataDirectory(path: root.appendingPathComponent("node").path), office: "สำนักงานจังหวัดน่าน", letterCode: "นน 0017")
        defer { node.close() }
        var i = 0
        while i < letters {
            try node.write { w in
                for _ in 0..<10 {
                    try w.change(time: 1_796_000_000_000 + Int64(i)) { tx, docs in
                        for _ in 0..<50 {
                            let id = try tx.createDocument(kind: LetterDocument.kind, in: &docs)
                            try tx.set(id, field: LetterDocument.kindField, value: .string(LetterKind.external.rawValue), in: &docs)
                            try tx.set(id, field: LetterField.status.rawValue, value: .string(LetterStatus.sent.rawValue), in: &docs)
                            try tx.set(id, field: LetterField.subject.rawValue, value: .string("\(subjects[i % subjects.count]) ครั้งที่ \(i)"), in: &docs)
                            try tx.set(id, field: LetterField.sender.rawValue, value: .string(senders[i % senders.count]), in: &docs)
                            try tx.set(id, field: LetterField.number.rawValue, value: .string("นน 0017/\(i + 1)"), in: &docs)
                            try tx.set(id, field: LetterField.date.rawValue, value: .string("\(1 + i % 28) ธันวาคม 2569"), in: &docs)
                            try tx.insertText(
                                id, field: LetterField.body.rawValue, at: 0,
                                "ด้วย\(senders[(i + 2) % senders.count])ขอเรียนว่า \(subjects[(i + 3) % subjects.count]) จึงเรียนมาเพื่อโปรดทราบ",
                                in: &docs)
                            i += 1
                        }
                    }
                }
            }
        }
        var t0 = now()
        let first = try node.search(SearchQuery(text: "ประชุม", limit: 20))
        indexTimes.append((now() - t0) * 1000)
        guard !first.isEmpty else { throw BenchError("the index found nothing for ประชุม") }

        // Common words (hundreds to thousands of letters: the newest 100) and rare ones (one
        // letter: its running number, ครั้งที่ N, found inside the subject).
        for (rare, p50s, p99s, s50s, s99s) in [(false, 0, 1, 0, 1), (true, 2, 3, 2, 3)] {
            var fts: [Double] = []
            var scan: [Double] = []
            for q in 0..<queries {
                let word = rare ? "ครั้งที่ \((q * 7919) % letters)" : words[q % words.count]
                t0 = now()
                let hits = try node.search(SearchQuery(text: word, limit: 100))
                fts.append((now() - t0) * 1000)
                t0 = now()
                let n = try node.store.searchByScan(word, limit: 100)
                scan.append((now() - t0) * 1000)
                guard hits.count == n, hits.count > 0 else {
                    throw BenchError("\(word): the index found \(hits.count), the scan \(n)")
                }
            }
            ftsRows[p50s].append(percentile(fts, 0.50))
            ftsRows[p99s].append(percentile(fts, 0.99))
            scanRows[s50s].append(percentile(scan, 0.50))
            scanRows[s99s].append(percentile(scan, 0.99))
        }
    }
    report.add("index 10,000 new letters (first search)", indexTimes, unit: "ms")
    for (i, name) in ["common word, p50", "common word, p99", "rare word, p50", "rare word, p99"].enumerated() {
        report.add("search \(name), FTS5 trigram", ftsRows[i], unit: "ms")
        report.add("search \(name), LIKE scan", scanRows[i], unit: "ms")
    }
    report.print(json: opts.json)
    return 0
}
