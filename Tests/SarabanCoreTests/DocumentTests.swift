import Testing
@testable import SarabanCore

private let alice = ReplicaID(hi: 0xA11CE, lo: 1)
private let bob = ReplicaID(hi: 0xB0B, lo: 2)

/// Two replicas that exchange every change both ways.
private func sync(_ a: inout Replica, _ b: inout Replica) throws {
    for c in a.changes(missingFrom: b.clock) { try b.receive(c) }
    for c in b.changes(missingFrom: a.clock) { try a.receive(c) }
}

@Suite struct RegisterTests {
    @Test func concurrentWritesAreKeptWithAWinnerAndResolved() throws {
        var a = Replica(id: alice)
        var b = Replica(id: bob)
        var doc: DocID?
        try a.edit(time: 1000) { tx, s in doc = try tx.createDocument(kind: "letter", in: &s) }
        try sync(&a, &b)
        let d = try #require(doc)
        try a.edit(time: 2000) { tx, s in try tx.set(d, field: "เรื่อง", value: .string("ขอเชิญประชุม"), in: &s) }
        try b.edit(time: 2001) { tx, s in try tx.set(d, field: "เรื่อง", value: .string("ขอเลื่อนการประชุม"), in: &s) }
        try sync(&a, &b)
        let ra = try #require(a.documents[d]?.registers["เรื่อง"])
        #expect(ra.entries.count == 2)
        #expect(a.views == b.views)
        // The winner is the greatest op id: equal counters, so the greater replica id (alice's hi is larger).
        #expect(ra.winner?.value == .string("ขอเชิญประชุม"))
        #expect(ra.conflicts.map(\.stamp.change.author) == [bob])
        #expect(a.documents[d]!.conflicts.count == 1)
        // Resolving keeps bob's value and supersedes both.
        let keep = ra.conflicts.first!.stamp.op
        try a.edit(time: 3000) { tx, s in try tx.resolve(d, field: "เรื่อง", keep: keep, in: &s) }
        try sync(&a, &b)
        #expect(b.documents[d]!.registers["เรื่อง"]!.entries.map(\.value) == [.string("ขอเลื่อนการประชุม")])
        #expect(b.documents[d]!.conflicts.isEmpty)
        #expect(a.views == b.views)
    }

    @Test func aWriteSupersedesOnlyWhatItSaw() throws {
        var a = Replica(id: alice)
        var doc: DocID?
        try a.edit(time: 1) { tx, s in
            doc = try tx.createDocument(kind: "memo", in: &s)
            try tx.set(doc!, field: "to", value: .string("x"), in: &s)
            try tx.set(doc!, field: "to", value: .string("y"), in: &s)
        }
        #expect(a.documents[doc!]!.registers["to"]!.entries.map(\.value) == [.string("y")])
    }
}

@Suite struct SetAndListTests {
    @Test func addWinsOverAConcurrentRemoveAndTheRemovalIsShown() throws {
        var a = Replica(id: alice)
        var b = Replica(id: bob)
        var doc: DocID?
        try a.edit(time: 1) { tx, s in
            doc = try tx.createDocument(kind: "letter", in: &s)
            try tx.addToSet(doc!, field: "cc", value: "กองคลัง", in: &s)
        }
        try sync(&a, &b)
        let d = doc!
        try a.edit(time: 2) { tx, s in try tx.removeFromSet(d, field: "cc", value: "กองคลัง", in: &s) }
        try b.edit(time: 3) { tx, s in try tx.addToSet(d, field: "cc", value: "กองคลัง", in: &s) }
        try sync(&a, &b)
        #expect(a.documents[d]!.sets["cc"]!.values == ["กองคลัง"])
        #expect(a.views == b.views)
        let conflicts = a.documents[d]!.conflicts
        #expect(conflicts.count == 1)
        if case .setRemoval(let f, let v, let removal, let kept) = conflicts.first {
            #expect(f == "cc" && v == "กองคลัง")
            #expect(removal.change.author == alice)
            #expect(kept.map(\.change.author) == [bob])
        } else {
            Issue.record("expected a set removal conflict, got \(conflicts)")
        }
        // Adding again settles it; removing again takes the element away.
        try b.edit(time: 4) { tx, s in try tx.addToSet(d, field: "cc", value: "กองคลัง", in: &s) }
        try sync(&a, &b)
        #expect(a.documents[d]!.conflicts.isEmpty && b.documents[d]!.conflicts.isEmpty)
    }

    @Test func concurrentAppendsAreAllKeptInTheSameOrder() throws {
        var a = Replica(id: alice)
        var b = Replica(id: bob)
        var doc: DocID?
        try a.edit(time: 1) { tx, s in doc = try tx.createDocument(kind: "letter", in: &s) }
        try sync(&a, &b)
        try a.edit(time: 2) { tx, s in try tx.append(doc!, field: "routing", value: "ผอ.กอง → หัวหน้าฝ่าย", in: &s) }
        try b.edit(time: 2) { tx, s in try tx.append(doc!, field: "routing", value: "ปลัด → ผอ.กอง", in: &s) }
        try sync(&a, &b)
        #expect(a.documents[doc!]!.lists["routing"]!.entries.count == 2)
        #expect(a.views == b.views)
    }
}

@Suite struct DeletionTests {
    @Test func deleteAgainstAConcurrentEditKeepsTheEditVisible() throws {
        var a = Replica(id: alice)
        var b = Replica(id: bob)
        var doc: DocID?
        try a.edit(time: 1) { tx, s in
            doc = try tx.createDocument(kind: "letter", in: &s)
            try tx.set(doc!, field: "เรื่อง", value: .string("ร่าง"), in: &s)
        }
        try sync(&a, &b)
        let d = doc!
        try a.edit(time: 2) { tx, s in try tx.deleteDocument(d, in: &s) }
        try b.edit(time: 3) { tx, s in try tx.set(d, field: "เรื่อง", value: .string("ฉบับแก้ไข"), in: &s) }
        try sync(&a, &b)
        #expect(a.documents[d]!.isDeleted)
        #expect(a.views == b.views)
        guard case .deletion(let dels, let edits) = a.documents[d]!.conflicts.first else {
            Issue.record("expected a deletion conflict")
            return
        }
        #expect(dels.map(\.stamp.change.author) == [alice])
        #expect(edits[bob]?.fields == ["เรื่อง"])
        #expect(a.documents[d]!.registers["เรื่อง"]!.winner?.value == .string("ฉบับแก้ไข"))
        // Restoring settles it.
        try b.edit(time: 4) { tx, s in try tx.restoreDocument(d, in: &s) }
        try sync(&a, &b)
        #expect(!a.documents[d]!.isDeleted && a.documents[d]!.conflicts.isEmpty)
        #expect(a.views == b.views)
    }

    @Test func editingADeletedDocumentLocallyIsRefused() throws {
        var a = Replica(id: alice)
        var doc: DocID?
        try a.edit(time: 1) { tx, s in doc = try tx.createDocument(kind: "letter", in: &s) }
        try a.edit(time: 2) { tx, s in try tx.deleteDocument(doc!, in: &s) }
        let before = a.views
        #expect(throws: EditError.self) {
            try a.edit(time: 3) { tx, s in try tx.set(doc!, field: "x", value: .string("y"), in: &s) }
        }
        #expect(a.views == before)
    }
}

@Suite struct AtomicityTests {
    @Test func aFailedEditLeavesNothingBehind() throws {
        var a = Replica(id: alice)
        var doc: DocID?
        try a.edit(time: 1) { tx, s in
            doc = try tx.createDocument(kind: "letter", in: &s)
            try tx.set(doc!, field: "เรื่อง", value: .string("เดิม"), in: &s)
        }
        let before = a.views
        let clock = a.clock
        #expect(throws: EditError.self) {
            try a.edit(time: 2) { tx, s in
                try tx.set(doc!, field: "เรื่อง", value: .string("ใหม่"), in: &s)
                try tx.insertText(doc!, field: "เรื่อง", at: 0, "x", in: &s)  // a register, not a text
            }
        }
        #expect(a.views == before)
        #expect(a.clock == clock)
        // The next edit takes the next sequence number as if nothing had happened.
        let c = try a.edit(time: 3) { tx, s in try tx.set(doc!, field: "เรื่อง", value: .string("ใหม่"), in: &s) }
        #expect(c?.seq == 2)
    }
}

@Suite struct ChangeDocumentsTests {
    @Test func operationsOnADocumentAreThoseNamingItOrCreatingIt() throws {
        var a = Replica(id: alice)
        var first: DocID?
        try a.edit(time: 1) { tx, s in first = try tx.createDocument(kind: "k", in: &s) }
        let d1 = try #require(first)
        var second: DocID?
        let c = try #require(
            try a.edit(time: 2) { tx, s in
                try tx.set(d1, field: "f", value: .int(1), in: &s)
                second = try tx.createDocument(kind: "k", in: &s)
                try tx.set(second!, field: "g", value: .int(2), in: &s)
                try tx.addToSet(d1, field: "h", value: "x", in: &s)
            })
        let d2 = try #require(second)
        #expect(c.documents == [d1, d2])
        #expect(c.operations(on: d1).map(\.op.field) == ["f", "h"])
        #expect(c.operations(on: d2).map(\.op.field) == [nil, "g"])
        #expect(c.operations(on: d2).first?.id == d2.op)
        #expect(c.operations(on: DocID(OpID(counter: 99, replica: alice))).isEmpty)
    }
}

@Suite struct CausalityTests {
    @Test func changesWaitForTheirCausalPastAndDuplicatesAreNoOps() throws {
        var a = Replica(id: alice)
        var doc: DocID?
        try a.edit(time: 1) { tx, s in doc = try tx.createDocument(kind: "k", in: &s) }
        try a.edit(time: 2) { tx, s in try tx.set(doc!, field: "f", value: .int(1), in: &s) }
        try a.edit(time: 3) { tx, s in try tx.set(doc!, field: "f", value: .int(2), in: &s) }
        var b = Replica(id: bob)
        #expect(try b.receive(a.log[2]).isEmpty)
        #expect(try b.receive(a.log[1]).isEmpty)
        #expect(b.buffer.count == 2)
        #expect(try b.receive(a.log[0]).count == 3)
        #expect(try b.receive(a.log[1]).isEmpty)
        #expect(b.views == a.views)
        #expect(b.buffer.isEmpty)
    }
}

@Suite struct EncodingTests {
    @Test func changesAndSnapshotsRoundTrip() throws {
        var a = Replica(id: alice)
        var doc: DocID?
        try a.edit(time: -5) { tx, s in
            doc = try tx.createDocument(kind: "หนังสือภายนอก", in: &s)
            try tx.set(doc!, field: "ที่", value: .string("มท ๐๘๐๘.๒/ว ๑๒๓"), in: &s)
            try tx.set(doc!, field: "n", value: .int(-42), in: &s)
            try tx.set(doc!, field: "ok", value: .bool(true), in: &s)
            try tx.set(doc!, field: "raw", value: .bytes([0, 255]), in: &s)
            try tx.addToSet(doc!, field: "tags", value: "ด่วนที่สุด", in: &s)
            try tx.append(doc!, field: "log", value: "รับ", in: &s)
        }
        for c in a.log {
            #expect(try Change.decode(c.encoded()) == c)
        }
        let d = a.documents[doc!]!
        #expect(try Document.decode(d.encoded()).view == d.view)
        let v = VersionVector([alice: 3, bob: 9])
        #expect(try VersionVector.decode(v.encoded()) == v)
    }

    /// The one-buffer encoder writes exactly the bytes of the two-pass one (the format's
    /// reference), for changes of every operation kind, from several authors, with deps, with
    /// more than eight replicas and field names (past the tables' linear scans) and in batches.
    @Test func oneBufferEncodingMatchesTheTwoPassForm() throws {
        let seed = UInt64(0x5eed_0e1c)
        print("oneBufferEncodingMatchesTheTwoPassForm seed \(seed)")
        var rng = SplitMix64(seed: seed)
        var replicas = (0..<12).map { Replica(id: ReplicaID(hi: UInt64($0) * 0x1111, lo: UInt64($0))) }
        var doc: DocID?
        try replicas[0].edit(time: 1) { tx, s in
            doc = try tx.createDocument(kind: "หนังสือ", in: &s)
            try tx.insertText(doc!, field: "body", at: 0, "เรียน", in: &s)
        }
        let d = try #require(doc)
        var all: [Change] = replicas[0].log
        for step in 0..<600 {
            let i = Int(rng.next() % UInt64(replicas.count))
            for c in all { try replicas[i].receive(c) }
            let roll = rng.next() % 8
            let x = rng.next()
            let c = try replicas[i].edit(time: Int64(step)) { tx, s in
                let len = s.documents[d]!.texts["body"]?.count ?? 0
                let batch = roll == 7 ? Int(x % 12) + 1 : 1
                for b in 0..<batch {
                    let f = "f\((x >> 8 &+ UInt64(b)) % 20)"
                    switch roll {
                    case 0: try tx.set(d, field: f, value: .string("ค่า \(step)"), in: &s)
                    case 1: try tx.insertText(d, field: "body", at: Int(x % UInt64(len + 1)), "ก\(step)", in: &s)
                    case 2 where len > 2: try tx.deleteText(d, field: "body", at: 0, count: 2, in: &s)
                    case 3: try tx.addToSet(d, field: "s\(x % 3)", value: "v\(x % 5)", in: &s)
                    case 4: try tx.append(d, field: "log", value: "e\(step)", in: &s)
                    case 5: _ = try tx.createDocument(kind: "k\(x % 4)", in: &s)
                    default: try tx.set(d, field: f, value: .int(Int64(step)), in: &s)
                    }
                }
            }
            if let c { all.append(c) }
        }
        #expect(all.count > 500)
        for c in all {
            let bytes = c.encoded()
            #expect(bytes == c.encodedInTwoPasses(), "seed \(seed): change \(c.id)")
            #expect(try Change.decode(bytes) == c)
        }
    }

    @Test func malformedChangesAreRejectedWithTypedErrors() throws {
        var a = Replica(id: alice)
        try a.edit(time: 1) { tx, s in
            let d = try tx.createDocument(kind: "k", in: &s)
            try tx.set(d, field: "f", value: .string("ข้อความ"), in: &s)
        }
        let bytes = a.log[0].encoded()
        // Every truncation fails cleanly.
        for n in 0..<bytes.count {
            #expect(throws: DecodingError.self) { try Change.decode(Array(bytes.prefix(n))) }
        }
        // Wrong version, trailing bytes.
        var wrong = bytes
        wrong[0] = 99
        #expect(throws: DecodingError(.unsupportedVersion, at: 0, "change format 99; this build reads 1")) {
            try Change.decode(wrong)
        }
        #expect(throws: DecodingError.self) { try Change.decode(bytes + [0]) }
        // Random bytes never crash.
        var rng = SplitMix64(seed: 7)
        for _ in 0..<2000 {
            let n = Int(rng.next() % 64)
            var junk = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if !junk.isEmpty { junk[0] = 1 }
            _ = try? Change.decode(junk)
            _ = try? Document.decode(junk)
        }
        // Flipping any byte either fails or yields a change that re-encodes to those same bytes.
        for i in 0..<bytes.count {
            var m = bytes
            m[i] ^= 0x5a
            if let c = try? Change.decode(m) { #expect(c.encoded() == m) }
        }
    }
}

extension Change {
    /// The reference for ``Change/encoded()``: the body written first, growing the tables as it
    /// refers to replicas and strings, then the tables and the body copied after them.
    fileprivate func encodedInTwoPasses() -> [UInt8] {
        var t = ReplicaTable()
        _ = t.index(author)
        var strings = StringTable()
        var body = BinaryWriter(capacity: 32 + ops.count * 16)
        body.varint(seq)
        body.varint(startOp)
        body.signed(time)
        deps.encode(into: &body, &t)
        body.varint(ops.count)
        for op in ops { op.encode(into: &body, &t, &strings) }
        var w = BinaryWriter(capacity: body.bytes.count + 16 * t.list.count + 16)
        w.byte(Change.formatVersion)
        t.encode(into: &w)
        w.varint(strings.list.count)
        for s in strings.list { w.string(s) }
        w.raw(body.bytes)
        return w.bytes
    }
}
