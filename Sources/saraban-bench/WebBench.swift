import Foundation
import SarabanCore
import SarabanNode
import SarabanOffice

/// `saraban-bench web-seed DIR`: a node at DIR holding 10,000 letters over two register years
/// (2568 and 2569, 5,000 each; half received, half sent) and 20,000 register lines: each letter has
/// a line in the year's receive book and one in its send book (an office that takes a letter in and
/// sends it on, ส่งต่อ). Written in bulk (500 letters and their lines per change, one SQLite
/// transaction per 2,500), for `Scripts/web-bench.sh`, which serves it and runs `wrk`.
func webSeed(_ args: [String]) throws -> Int32 {
    guard let path = args.first else { throw BenchError("usage: saraban-bench web-seed DIR") }
    let started = now()
    let node = try Node.initialize(dataDir: DataDirectory(path: path), office: "สำนักงานจังหวัดน่าน", letterCode: "นน 0017")
    defer { node.close() }
    let subjects = [
        "ขอเชิญประชุมคณะกรรมการบริหารงานจังหวัด", "ขออนุมัติเดินทางไปราชการต่างจังหวัด", "รายงานผลการปฏิบัติงานประจำเดือน",
        "ขอความอนุเคราะห์ข้อมูลสถิติประชากร", "แจ้งกำหนดการตรวจราชการของผู้ตรวจราชการกระทรวง", "ขอส่งแผนปฏิบัติราชการประจำปีงบประมาณ",
        "ขอเชิญร่วมพิธีเปิดโครงการปลูกป่าชายเลน", "การเบิกจ่ายงบประมาณรายจ่ายลงทุน",
    ]
    let senders = ["สำนักงานจังหวัดแพร่", "กรมการปกครอง", "สำนักงานปลัดกระทรวงมหาดไทย", "อำเภอเมืองน่าน"]
    let perYear = 5_000
    // 1 January 2025 and 2026 (BE 2568, 2569), 07:00 Bangkok; a letter every 30 minutes.
    let yearStarts: [(Int, Int64)] = [(2568, 1_735_689_600_000), (2569, 1_767_225_600_000)]
    for (year, start) in yearStarts {
        var registers: [RegisterBook: DocID] = [:]
        _ = try node.write { w in
            _ = try w.change(time: start) { tx, docs in
                for book in [RegisterBook.receive, .send] {
                    let id = try tx.createDocument(kind: RegisterDocument.kind, in: &docs)
                    try tx.set(id, field: RegisterDocument.book, value: .string(book.rawValue), in: &docs)
                    try tx.set(id, field: RegisterDocument.year, value: .string(String(year)), in: &docs)
                    try tx.set(id, field: RegisterDocument.owner, value: .string(node.replica.hex), in: &docs)
                    try tx.set(id, field: RegisterDocument.office, value: .string(node.config.office), in: &docs)
                    try tx.set(id, field: RegisterDocument.code, value: .string(node.config.letterCode ?? ""), in: &docs)
                    registers[book] = id
                }
            }
        }
        var i = 0
        while i < perYear {
            _ = try node.write { w in
                for _ in 0..<5 {
                    _ = try w.change(time: start + Int64(i) * 1_800_000) { tx, docs in
                        for _ in 0..<500 {
                            let t = start + Int64(i) * 1_800_000
                            let date = ThaiDate(unixMillis: t)
                            let received = i % 2 == 0
                            let id = try tx.createDocument(kind: LetterDocument.kind, in: &docs)
                            func set(_ f: String, _ v: String) throws { try tx.set(id, field: f, value: .string(v), in: &docs) }
                            try set(LetterDocument.kindField, LetterKind.external.rawValue)
                            try set(LetterField.status.rawValue, (received ? LetterStatus.received : .sent).rawValue)
                            try set(LetterField.subject.rawValue, "\(subjects[i % subjects.count]) ครั้งที่ \(year)-\(i)")
                            try set(LetterField.sender.rawValue, received ? senders[i % senders.count] : node.config.office)
                            try set(LetterField.recipient.rawValue, received ? "ผู้ว่าราชการจังหวัดน่าน" : senders[i % senders.count])
                            try set(LetterField.number.rawValue, received ? "มท 0\(300 + i % 50)/\(i + 1)" : "นน 0017/\(i / 2 + 1)")
                            try set(LetterField.date.rawValue, date.formatted())
                            try tx.insertText(
                                id, field: LetterField.body.rawValue, at: 0,
                                "ด้วย\(senders[(i + 2) % senders.count])ขอเรียนว่า \(subjects[(i + 3) % subjects.count]) จึงเรียนมาเพื่อโปรดทราบ",
                                in: &docs)
                            for book in [RegisterBook.receive, .send] {
                                let event = RegisterEvent.allocate(
                                    number: i + 1, letter: id.description, date: date, time: ThaiDate.clock(unixMillis: t),
                                    summary: subjects[i % subjects.count])
                                try tx.append(registers[book]!, field: RegisterDocument.events, value: event.encoded, in: &docs)
                            }
                            i += 1
                        }
                    }
                }
            }
        }
    }
    print(String(format: "web-seed: 10,000 letters, 20,000 register lines at %@ in %.1f s", path, now() - started))
    return 0
}
