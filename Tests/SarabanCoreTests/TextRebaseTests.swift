import Testing
@testable import SarabanCore

private let office = ReplicaID(hi: 0x0FF1CE, lo: 1)
private let branch = ReplicaID(hi: 0xB2A4C4, lo: 2)

private func sync(_ a: inout Replica, _ b: inout Replica) throws {
    for c in a.changes(missingFrom: b.clock) { try b.receive(c) }
    for c in b.changes(missingFrom: a.clock) { try a.receive(c) }
}

/// Editing a text field from a copy taken earlier (a web form): what others wrote meanwhile stays.
@Suite struct TextRebaseTests {
    @Test func hunksTurnTheOldTextIntoTheNew() throws {
        let seed = Seeds.env("SARABAN_SEED") ?? UInt64.random(in: 1...UInt64.max)
        print("TextRebaseTests seed \(seed) (replay with SARABAN_SEED=\(seed))")
        var rng = SplitMix64(seed: seed)
        let alphabet = Array("กขคงจฉ ะาิีเแโ่้abc\n".unicodeScalars)
        for _ in 0..<300 {
            let old = String(String.UnicodeScalarView((0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }))
            var new = Array(old.unicodeScalars)
            for _ in 0..<Int(rng.next() % 5) {
                if !new.isEmpty && rng.next() % 2 == 0 {
                    let at = Int(rng.next() % UInt64(new.count))
                    new.remove(at: at)
                } else {
                    new.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: Int(rng.next() % UInt64(new.count + 1)))
                }
            }
            let target = String(String.UnicodeScalarView(new))
            var text = Array(old.unicodeScalars)
            var shift = 0
            for h in TextDiff.hunks(old, target) {
                text.replaceSubrange((h.position + shift)..<(h.position + shift + h.deleted), with: Array(h.inserted.unicodeScalars))
                shift += h.inserted.unicodeScalars.count - h.deleted
            }
            #expect(String(String.UnicodeScalarView(text)) == target, "seed \(seed): \(old.debugDescription) → \(target.debugDescription)")
        }
        // Separate edits stay separate hunks (a changed start and end do not rewrite the middle).
        #expect(TextDiff.hunks("เรียน ผู้ว่า ขอเชิญ", "เรียน ท่านผู้ว่า ขอเชิญประชุม").count == 2)
    }

    @Test func twoClerksEditingOneDraftBothKeepTheirWords() throws {
        var a = Replica(id: office)
        var b = Replica(id: branch)
        var doc: DocID?
        try a.edit(time: 1000) { tx, s in
            let d = try tx.createDocument(kind: "letter", in: &s)
            try tx.insertText(d, field: "ข้อความ", at: 0, "ขอเชิญประชุมคณะกรรมการ วันจันทร์", in: &s)
            doc = d
        }
        try sync(&a, &b)
        let d = try #require(doc)
        // Both forms are loaded from the same state.
        let copy = try #require(a.documents[d]?.texts["ข้อความ"])
        // Clerk A (on node a) appends a time; clerk B (on node a too, later) changes the meeting's subject.
        try a.edit(time: 2000) { tx, s in
            try tx.editText(d, field: "ข้อความ", from: copy, to: "ขอเชิญประชุมคณะกรรมการ วันจันทร์ เวลา ๙ นาฬิกา", in: &s)
        }
        try a.edit(time: 2100) { tx, s in
            try tx.editText(d, field: "ข้อความ", from: copy, to: "ขอเชิญประชุมคณะทำงาน วันจันทร์", in: &s)
        }
        #expect(a.documents[d]?.texts["ข้อความ"]?.string == "ขอเชิญประชุมคณะทำงาน วันจันทร์ เวลา ๙ นาฬิกา")
        // The edits are ordinary text operations: another replica reaches the same text.
        try sync(&a, &b)
        #expect(b.documents[d]?.texts["ข้อความ"]?.string == "ขอเชิญประชุมคณะทำงาน วันจันทร์ เวลา ๙ นาฬิกา")
        #expect(a.views == b.views)
        // The naive way, writing the submitted text over the current one, loses A's words.
        var naive = try #require(a.documents[d]?.texts["ข้อความ"])
        _ = naive.delete(at: 0, count: naive.count)
        #expect(!naive.string.contains("เวลา"))
    }

    @Test func aCopyOfAnotherFieldIsRefusedAndNothingIsRecorded() throws {
        var a = Replica(id: office)
        var other = Replica(id: branch)
        var doc: DocID?
        try a.edit(time: 1000) { tx, s in
            let d = try tx.createDocument(kind: "letter", in: &s)
            try tx.insertText(d, field: "ข้อความ", at: 0, "ข้อความเดิม", in: &s)
            doc = d
        }
        var foreign: DocID?
        try other.edit(time: 1000) { tx, s in
            let d = try tx.createDocument(kind: "letter", in: &s)
            try tx.insertText(d, field: "ข้อความ", at: 0, "ของสำนักงานอื่น", in: &s)
            foreign = d
        }
        let copy = try #require(other.documents[foreign!]?.texts["ข้อความ"])
        let before = a.clock
        #expect(throws: EditError.self) {
            try a.edit(time: 2000) { tx, s in try tx.editText(doc!, field: "ข้อความ", from: copy, to: "ของสำนักงานอื่น แก้", in: &s) }
        }
        #expect(a.clock == before)
        #expect(a.documents[doc!]?.texts["ข้อความ"]?.string == "ข้อความเดิม")
    }
}
