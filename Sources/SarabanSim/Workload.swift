import SarabanCore
import SarabanOffice

/// Random client operations of every field type, with Thai text and plaintext markers.
///
/// Every string written carries ``marker`` (ASCII) or ``thaiMarker`` so the relay check can look
/// for them; list appends carry a unique value so the set-full check can find each one.
public enum Workload {
    /// An ASCII marker put into every string value (searched for in the relay's bytes).
    public static let marker = "SRBPLAIN"
    /// A Thai marker ("ลับมาก", top secret) put into texts and register values.
    public static let thaiMarker = "ลับมาก"

    static let kinds = ["หนังสือรับ", "หนังสือส่ง", "บันทึกข้อความ", "memo"]
    static let registerFields = ["เรื่อง", "เรียน", "ชั้นความเร็ว", "status"]
    static let textFields = ["เนื้อหา", "body"]
    static let setFields = ["แท็ก", "cc"]
    static let listFields = ["เส้นทาง", "comments"]
    static let words = [
        "สวัสดี", "ครับ", "ด่วนที่สุด", "กรมการปกครอง", "ที่", "น้ำ", "ผู้ว่าราชการจังหวัด", "e-Office", " ", "\n",
        "เรื่อง", "ขอความอนุเคราะห์", "๑๒๓", "ฯลฯ", "ไม้ไต่คู้", "ก็", "แล้ว", "é", "👩‍💻", "abc",
    ]

    /// What one random edit made, for the client's bookkeeping once it is committed.
    struct Made {
        /// Documents created.
        var documents: [DocID] = []
        /// List appends: document, field, value.
        var appends: [(doc: DocID, field: String, value: String)] = []
    }

    /// One random change's edits, made through `tx` on `st` (the documents of the write's
    /// transaction) among the documents `docs` the client knows of (those the node does not hold
    /// yet are skipped). The choices depend only on `rng` and the documents' state, so the edit
    /// is deterministic. Throws only when the core refuses an edit, which rolls the write back.
    static func randomEdit<S: DocumentStore>(
        _ tx: inout Transaction, _ st: inout S, docs: [DocID], rng: inout SplitMix64, tag: String, made: inout Made
    ) throws {
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        // Registers are written only by their owner's numbering (Registers.swift), never by random edits.
        var live = docs
        let opCount = 1 + Int(rng.next() % 3)
        for k in 0..<opCount {
            let r = rng.next() % 100
            if live.isEmpty || r < 12 {
                let d = try tx.createDocument(kind: pick(kinds), in: &st)
                try tx.set(d, field: "เรื่อง", value: .string("\(thaiMarker) \(marker)-\(tag)-\(k) ขอเชิญประชุม"), in: &st)
                live.append(d)
                made.documents.append(d)
                continue
            }
            let d = pick(live)
            guard let doc = try st.withExistingDocument(d, { $0 }) else { continue }
            if doc.isDeleted {
                if r < 60 { try tx.restoreDocument(d, in: &st) } else { try tx.deleteDocument(d, in: &st) }
                continue
            }
            switch r {
            case 12..<30:
                let f = pick(registerFields)
                guard doc.kind(of: f) == nil || doc.kind(of: f) == .register else { continue }
                let v: Value
                switch rng.next() % 4 {
                case 0: v = .int(Int64(bitPattern: rng.next()) % 100_000)
                case 1: v = .bool(rng.next() % 2 == 0)
                case 2: v = .bytes(SimKeys.bytes(rng.next(), Int(rng.next() % 6)))
                default: v = .string("\(marker)-\(tag)-\(k) \(pick(words))\(thaiMarker)")
                }
                try tx.set(d, field: f, value: v, in: &st)
            case 30..<34:
                // Resolve a conflict by keeping one of its values.
                guard let e = doc.registers.sorted(by: { $0.key < $1.key }).first(where: { $0.value.isConflicted })
                else { continue }
                let (f, reg) = (e.key, e.value)
                let keep = reg.entries[Int(rng.next() % UInt64(reg.entries.count))].stamp.op
                try tx.resolve(d, field: f, keep: keep, in: &st)
            case 34..<52:
                let f = pick(textFields)
                guard doc.kind(of: f) == nil || doc.kind(of: f) == .text else { continue }
                let len = doc.texts[f]?.count ?? 0
                let pos = Int(rng.next() % UInt64(len + 1))
                let text = rng.next() % 5 == 0 ? "\(thaiMarker)\(marker)" : pick(words) + pick(words)
                try tx.insertText(d, field: f, at: pos, text, in: &st)
            case 52..<62:
                let f = pick(textFields)
                guard doc.kind(of: f) == .text, let len = doc.texts[f]?.count, len > 0 else { continue }
                let pos = Int(rng.next() % UInt64(len))
                let n = 1 + Int(rng.next() % UInt64(min(len - pos, 6)))
                try tx.deleteText(d, field: f, at: pos, count: n, in: &st)
            case 62..<72:
                let f = pick(setFields)
                guard doc.kind(of: f) == nil || doc.kind(of: f) == .set else { continue }
                try tx.addToSet(d, field: f, value: pick(["กองคลัง", "กองช่าง", "สำนักปลัด", "\(marker)-x"]), in: &st)
            case 72..<80:
                let f = pick(setFields)
                guard doc.kind(of: f) == .set, let s = doc.sets[f], !s.values.isEmpty else { continue }
                try tx.removeFromSet(d, field: f, value: pick(s.values), in: &st)
            case 80..<92:
                let f = pick(listFields)
                guard doc.kind(of: f) == nil || doc.kind(of: f) == .list else { continue }
                let v = "\(marker)-\(tag)-\(k) ส่งต่อ \(pick(words))"
                try tx.append(d, field: f, value: v, in: &st)
                made.appends.append((d, f, v))
            case 92..<97:
                try tx.deleteDocument(d, in: &st)
            default:
                try tx.restoreDocument(d, in: &st)
            }
        }
    }
}
