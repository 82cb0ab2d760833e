import Foundation
@testable import SarabanNode
import Testing

/// The chunk files under `attachments/<root>/`.
@Suite struct AttachmentFileTests {
    /// Two sessions of one node can pull the same chunk at once (a relay and a member that dial
    /// each other run two sessions, and both pull what is offered). Every write must succeed and
    /// leave the whole file: the temporary files of concurrent writes of one path used to share
    /// one name, so one write renamed the other's file away and failed ("No such file"), the
    /// session refused the chunk and gave up the pull.
    @Test func concurrentWritesOfOneChunkAllSucceed() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/saraban-chunks-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bytes = (0..<(256 * 1024 + 40)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let failures = Counter()
        for round in 0..<50 {
            let path = dir + "/\(round)"
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                do { try Node.writeAtomically(bytes, to: path) } catch { failures.add("\(error)") }
            }
            #expect(FileManager.default.contents(atPath: path).map { [UInt8]($0) } == bytes)
        }
        #expect(failures.errors.isEmpty, "\(failures.errors.count) writes failed, first: \(failures.errors.first ?? "")")
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.contains(".tmp") })
    }
}

private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ e: String) { lock.withLock { list.append(e) } }
    var errors: [String] { lock.withLock { list } }
}
