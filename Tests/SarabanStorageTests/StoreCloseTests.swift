import Dispatch
import Foundation
import SarabanCore
@testable import SarabanStorage
import Testing

/// Closing a store while other tasks still use it (a daemon's services winding down, a web request
/// in flight). A read that had already picked its reader connection when GRDB's pool closed it went
/// on into a closed SQLite handle and crashed the process (once, in a full run: a relay's node
/// closed right after its daemon was cancelled). Now close waits for what is in flight, and what
/// starts afterwards gets a typed error.
@Suite struct StoreCloseTests {
    @Test func closeWaitsForAReadInFlightAndLaterOperationsAreRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true)
        let inside = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let readDone = ManagedFlag()
        let reader = Thread {
            let count = try? store.read { db -> Int in
                inside.signal()
                release.wait()
                return try Int.fetchOne(db, sql: "SELECT count(*) FROM documents") ?? -1
            }
            readDone.set(count == 0)
        }
        reader.start()
        inside.wait()
        let closed = ManagedFlag()
        let closer = Thread {
            do {
                try store.close()
                closed.set(true)
            } catch {}
        }
        closer.start()
        Thread.sleep(forTimeInterval: 0.2)
        #expect(!closed.value, "close returned while a read was still inside")
        release.signal()
        let deadline = Date(timeIntervalSinceNow: 10)
        while !closed.value && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(closed.value)
        #expect(readDone.value, "the read in flight finished with its result")
        #expect {
            _ = try store.documentSummaries()
        } throws: { ($0 as? StorageError)?.code == .closed }
        try store.close()  // closing twice is harmless
    }

    @Test func manyReadersRacingACloseEitherFinishOrAreRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let store = try Store.open(path: dir.file("s.db"), replica: replicaA, create: true)
        let outcomes = OutcomeCounter()
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread {
                defer { group.leave() }
                for _ in 0..<2_000 {
                    do {
                        _ = try store.documentSummaries()
                        outcomes.add(ok: true)
                    } catch let e as StorageError where e.code == .closed {
                        outcomes.add(ok: false)
                        return
                    } catch {
                        Issue.record("unexpected error: \(error)")
                        return
                    }
                }
            }.start()
        }
        Thread.sleep(forTimeInterval: 0.05)
        try store.close()
        group.wait()
        #expect(outcomes.ok > 0)
    }
}

private final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    var value: Bool { lock.withLock { flag } }
    func set(_ v: Bool) { lock.withLock { flag = v } }
}

private final class OutcomeCounter: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var ok = 0
    private(set) var refused = 0
    func add(ok isOK: Bool) { lock.withLock { if isOK { ok += 1 } else { refused += 1 } } }
}
