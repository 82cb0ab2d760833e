import Foundation
import SarabanCore
import SarabanStorage
import Testing

@Suite struct MigrationTests {
    @Test func migratesAFreshDatabase() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true)
        let info = try store.schemaInfo()
        #expect(info.applicationID == Store.applicationID)
        #expect(info.userVersion == Store.schemaVersion)
        #expect(info.migrations == ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10"])
        #expect(info.journalMode == "wal")
        #expect(info.synchronous == 1)  // NORMAL
        // Off before the first connection opened: no process-wide mutex around SQLite's allocations.
        #expect(!info.memoryStatistics)
        for t in ["meta", "changes", "documents", "clock", "pending", "peer_status", "peer_cursors"] { #expect(info.tables.contains(t)) }
        try store.close()
    }

    @Test func migratesAnEmptyDatabaseFile() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        _ = FileManager.default.createFile(atPath: dir.file("s.db"), contents: Data())
        let store = try Store.open(path: dir.file("s.db"), replica: replicaA)
        #expect(try store.schemaInfo().userVersion == Store.schemaVersion)
        try store.close()
        // Reopening runs no migration again and keeps the identity.
        let again = try Store.open(path: dir.file("s.db"), replica: replicaA)
        #expect(try again.schemaInfo().migrations == ["v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10"])
        try again.close()
    }

    @Test func refusesAFileThatIsNotSQLite() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let text = Data(String(repeating: "not a database\n", count: 20).utf8)
        _ = FileManager.default.createFile(atPath: dir.file("s.db"), contents: text)
        let error = #expect(throws: StorageError.self) { try Store.open(path: dir.file("s.db"), replica: replicaA) }
        #expect(error?.code == .notSQLite)
        #expect(fileBytes(dir.file("s.db")) == text)
    }

    @Test(arguments: [UInt32(0), 0x1234_5678])
    func refusesAForeignSQLiteDatabase(appID: UInt32) throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let path = dir.file("s.db")
        try Store.open(path: path, replica: replicaA, create: true).close()
        // Close checkpointed everything into the main file; drop the WAL so the file stands alone.
        try? FileManager.default.removeItem(atPath: path + "-wal")
        try? FileManager.default.removeItem(atPath: path + "-shm")
        try patchHeader(path, offset: 68, value: appID)
        let before = fileBytes(path)
        let error = #expect(throws: StorageError.self) { try Store.open(path: path, replica: replicaA) }
        #expect(error?.code == .foreignDatabase)
        #expect(error?.message.contains("not a Saraban database") == true)
        #expect(fileBytes(path) == before)
        #expect(fileBytes(path + "-wal") ?? Data() == Data())
    }

    @Test func refusesANewerSchema() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let path = dir.file("s.db")
        try Store.open(path: path, replica: replicaA, create: true).close()
        try patchHeader(path, offset: 60, value: UInt32(Store.schemaVersion + 1))
        let before = fileBytes(path)
        let error = #expect(throws: StorageError.self) { try Store.open(path: path, replica: replicaA) }
        #expect(error?.code == .newerSchema)
        #expect(error?.message.contains("upgrade saraban") == true)
        #expect(fileBytes(path) == before)
    }

    @Test func refusesTheDatabaseOfAnotherReplica() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try Store.open(path: dir.file("s.db"), replica: replicaA, create: true).close()
        let error = #expect(throws: StorageError.self) { try Store.open(path: dir.file("s.db"), replica: replicaB) }
        #expect(error?.code == .wrongReplica)
    }

    @Test func missingDatabaseIsNotCreatedImplicitly() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let error = #expect(throws: StorageError.self) { try Store.open(path: dir.file("s.db"), replica: replicaA) }
        #expect(error?.code == .notFound)
        #expect(!FileManager.default.fileExists(atPath: dir.file("s.db")))
    }
}

@Suite struct LocalWriteTests {
    @Test func thaiRoundTripsByteForByteAcrossReopen() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let path = dir.file("s.db")
        var store = try Store.open(path: path, replica: replicaA, create: true)
        let (id, change) = try store.change(time: 1_700_000_000_000) { tx, docs in
            let id = try tx.createDocument(kind: "letter", in: &docs)
            try tx.set(id, field: "เรื่อง", value: .string(thai), in: &docs)
            return id
        }
        #expect(change?.seq == 1)
        try store.close()
        store = try Store.open(path: path, replica: replicaA)
        let doc = try #require(try store.document(id))
        let value = try #require(doc.registers["เรื่อง"]?.winner?.value.string)
        #expect(Array(value.utf8) == Array(thai.utf8))
        #expect(doc.kind == "letter")
        let stats = try store.stats()
        #expect(stats.documents == 1)
        #expect(stats.changes == 1)
        #expect(stats.databaseBytes > 0)
        try store.close()
    }

    @Test func sequenceNumbersAndOpCountersAdvance() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true)
        let id = try store.change(time: 1) { tx, docs in try tx.createDocument(kind: "memo", in: &docs) }.value
        var last: Change?
        for i in 0..<5 {
            last = try store.change(time: Int64(i)) { tx, docs in
                try tx.set(id, field: "n", value: .int(Int64(i)), in: &docs)
            }.change
        }
        #expect(last?.seq == 6)
        #expect(last?.startOp == 6)  // create took op 1, the sets ops 2...6
        #expect(try store.clock()[replicaA] == 6)
        #expect(try store.document(id)?.registers["n"]?.winner?.value == .int(4))
        // A body that edits nothing makes no change.
        let none = try store.change(time: 9) { _, _ in 42 }
        #expect(none.value == 42 && none.change == nil)
        #expect(try store.stats().changes == 6)
        try store.close()
    }

    @Test func aFailingEditWritesNothing() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true)
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try store.write { w in
                _ = try w.change(time: 1) { tx, docs in try tx.createDocument(kind: "memo", in: &docs) }
                throw Boom()
            }
        }
        #expect(try store.stats().changes == 0)
        #expect(try store.stats().documents == 0)
        #expect(try store.clock()[replicaA] == 0)
        try store.close()
    }

    @Test func batchedLocalWritesShareOneTransaction() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true)
        let r = try store.write { w in
            let id = try w.change(time: 1) { tx, docs in try tx.createDocument(kind: "memo", in: &docs) }.value
            for i in 0..<100 {
                _ = try w.change(time: Int64(i)) { tx, docs in try tx.set(id, field: "f", value: .int(Int64(i)), in: &docs) }
            }
            return id
        }
        #expect(r.changes.count == 101)
        #expect(r.changes.map(\.seq) == Array(1...101))
        #expect(try store.document(r.value)?.registers["f"]?.winner?.value == .int(99))
        try store.close()
    }
}

@Suite struct RemoteApplyTests {
    /// Three changes by A: create, set title, set title again.
    func makeChanges(_ dir: TempDir) throws -> (DocID, [Change]) {
        let a = try Store.open(path: dir.file("a.db"), replica: replicaA, create: true)
        defer { try? a.close() }
        let r = try a.write { w in
            let id = try w.change(time: 1) { tx, docs in try tx.createDocument(kind: "letter", in: &docs) }.value
            _ = try w.change(time: 2) { tx, docs in try tx.set(id, field: "title", value: .string("ร่าง"), in: &docs) }
            _ = try w.change(time: 3) { tx, docs in try tx.set(id, field: "title", value: .string(thai), in: &docs) }
            return id
        }
        return (r.value, r.changes)
    }

    @Test func applyIsIdempotent() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (id, changes) = try makeChanges(dir)
        let b = try Store.open(path: dir.file("b.db"), replica: replicaB, create: true)
        let first = try b.apply(changes: changes)
        #expect(first.applied == 3 && first.duplicates == 0 && first.waiting == 0)
        #expect(first.documents == [id.description])
        let second = try b.apply(changes: changes + changes)
        #expect(second.applied == 0 && second.duplicates == 6 && second.waiting == 0)
        #expect(try b.document(id)?.registers["title"]?.winner?.value.string == thai)
        #expect(try b.stats().changes == 3)
        try b.close()
    }

    @Test func changesNotInAVectorAreWhatAPeerMisses() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (_, changes) = try makeChanges(dir)
        let a = try Store.open(path: dir.file("a.db"), replica: replicaA)
        defer { try? a.close() }
        #expect(try a.changes().map(\.seq) == [1, 2, 3])
        let missing = try a.changes(notIn: VersionVector([replicaA: 1]))
        #expect(missing == Array(changes[1...]))
        let encoded = try a.encodedChanges(notIn: VersionVector([replicaA: 2]))
        #expect(encoded.map(\.id) == [changes[2].id])
        #expect(encoded.first?.bytes == changes[2].encoded())
        #expect(try a.change(changes[0].id) == changes[0])
    }

    @Test func outOfOrderChangesWaitThenApply() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (id, changes) = try makeChanges(dir)
        let b = try Store.open(path: dir.file("b.db"), replica: replicaB, create: true)
        let r1 = try b.apply(changes: [changes[2]])
        #expect(r1.applied == 0 && r1.waiting == 1)
        let r2 = try b.apply(changes: [changes[1], changes[2]])
        #expect(r2.applied == 0 && r2.duplicates == 1 && r2.waiting == 2)
        #expect(try b.stats().pendingChanges == 2)
        #expect(try b.document(id) == nil)
        // Survives a reopen: the pending buffer is in the database.
        try b.close()
        let b2 = try Store.open(path: dir.file("b.db"), replica: replicaB)
        let r3 = try b2.apply(changes: [changes[0]])
        #expect(r3.applied == 3 && r3.waiting == 0)
        #expect(try b2.stats().pendingChanges == 0)
        #expect(try b2.document(id)?.registers["title"]?.winner?.value.string == thai)
        try b2.close()
    }

    /// Two authors edit shared documents, each seeing some of the other's changes, so changes
    /// depend across authors. Delivered to a third store in random batches (runs in order, runs
    /// shuffled, repeats), the store ends exactly as one that received everything in order:
    /// changes ready as they come are applied at once, the rest wait in the buffer.
    @Test func anyDeliveryOrderEndsInTheSameState() throws {
        let seeds: [UInt64] =
            ProcessInfo.processInfo.environment["SARABAN_SEED"].flatMap { UInt64($0) }.map { [$0] } ?? Array(1...20)
        for seed in seeds {
            print("StoreTests.anyDeliveryOrderEndsInTheSameState: seed \(seed) (replay: SARABAN_SEED=\(seed))")
            var rng = SplitMix64(seed: seed)
            let dir = TempDir()
            defer { dir.cleanup() }
            let a = try Store.open(path: dir.file("a.db"), replica: replicaA, create: true)
            let b = try Store.open(path: dir.file("b.db"), replica: replicaB, create: true)
            var docs: [DocID] = []
            var logs: [[Change]] = [[], []]
            for step in 0..<120 {
                let (store, k) = Bool.random(using: &rng) ? (a, 0) : (b, 1)
                let pick = docs.isEmpty ? nil : docs[Int.random(in: 0..<docs.count, using: &rng)]
                let value = Int64.random(in: 0..<1000, using: &rng)
                let r = try store.change(time: Int64(step)) { tx, d -> DocID? in
                    // The picked document may not have reached this author yet: then make a new one.
                    if let pick, (try? tx.set(pick, field: "n", value: .int(value), in: &d)) != nil { return nil }
                    let id = try tx.createDocument(kind: "memo", in: &d)
                    try tx.set(id, field: "n", value: .int(value), in: &d)
                    return id
                }
                if let id = r.value { docs.append(id) }
                if let c = r.change { logs[k].append(c) }
                // Now and then one side catches up with the other, so later changes depend on it.
                if Int.random(in: 0..<8, using: &rng) == 0 {
                    _ = try (k == 0 ? b : a).apply(changes: logs[k])
                    _ = try (k == 0 ? a : b).apply(changes: logs[1 - k])
                }
            }
            _ = try a.apply(changes: logs[1])
            let all = logs[0] + logs[1]
            var delivery = all
            delivery.shuffle(using: &rng)
            // Keep some runs in order (the direct path), repeat a few changes.
            delivery += (0..<10).map { _ in all[Int.random(in: 0..<all.count, using: &rng)] }
            let c = try Store.open(path: dir.file("c.db"), replica: ReplicaID(hi: 0xC3, lo: 3), create: true)
            var applied = 0
            var rest = Bool.random(using: &rng) ? logs[0] + delivery : delivery
            while !rest.isEmpty {
                let n = min(rest.count, Int.random(in: 1...40, using: &rng))
                let batch = Array(rest.prefix(n))
                rest.removeFirst(n)
                applied += try c.apply(changes: batch).applied
            }
            #expect(applied == all.count, "seed \(seed)")
            #expect(try c.stats().pendingChanges == 0, "seed \(seed)")
            #expect(try c.clock() == a.clock(), "seed \(seed)")
            #expect(try c.documents().map(\.view) == a.documents().map(\.view), "seed \(seed)")
            try a.close()
            try b.close()
            try c.close()
        }
    }

    @Test func concurrentWritesAreKeptAsAConflictOnBothSides() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (id, changes) = try makeChanges(dir)
        let a = try Store.open(path: dir.file("a.db"), replica: replicaA)
        let b = try Store.open(path: dir.file("b.db"), replica: replicaB, create: true)
        _ = try b.apply(changes: changes)
        let ca = try a.change(time: 10) { tx, docs in try tx.set(id, field: "title", value: .string("ก"), in: &docs) }.change!
        let cb = try b.change(time: 11) { tx, docs in try tx.set(id, field: "title", value: .string("ข"), in: &docs) }.change!
        _ = try a.apply(changes: [cb])
        _ = try b.apply(changes: [ca])
        let da = try #require(try a.document(id))
        let db = try #require(try b.document(id))
        #expect(da.view == db.view)
        #expect(da.registers["title"]?.entries.count == 2)
        #expect(da.conflicts.count == 1)
        // Our own changes handed back to us are duplicates.
        #expect(try a.apply(changes: [ca]).duplicates == 1)
        try a.close()
        try b.close()
    }

    @Test func exportCarriesTheCausalPast() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let a = try Store.open(path: dir.file("a.db"), replica: replicaA, create: true)
        let other = try a.change(time: 1) { tx, docs in try tx.createDocument(kind: "memo", in: &docs) }.value
        let letter = try a.change(time: 2) { tx, docs in try tx.createDocument(kind: "letter", in: &docs) }.value
        _ = try a.change(time: 3) { tx, docs in try tx.set(other, field: "x", value: .string("later"), in: &docs) }
        let export = try a.changesForExport(letter)
        // The letter's creation is seq 2, whose past includes seq 1 (gapless): 2 changes, not the later one.
        #expect(export.map(\.seq) == [1, 2])
        let b = try Store.open(path: dir.file("b.db"), replica: replicaB, create: true)
        let r = try b.apply(changes: export)
        #expect(r.applied == 2 && r.waiting == 0)
        #expect(try b.document(letter)?.kind == "letter")
        try a.close()
        try b.close()
    }
}
