import Foundation
import Testing

// Helpers shared by the test targets (never linked by a production target: see Package.swift).
// A helper that cannot do its job records an issue and throws; it never stops the test process.

/// A test's failure with what went wrong, for helpers that throw.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Records `description` as an issue of the running test and returns it as an error to throw.
public func testFailure(
    _ description: String, sourceLocation: SourceLocation = #_sourceLocation
) -> TestFailure {
    Issue.record(Comment(rawValue: description), sourceLocation: sourceLocation)
    return TestFailure(description)
}

/// A thread-safe box (NSLock keeps the package's macOS 14 floor).
public final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
    public var current: Value { withLock { $0 } }
}

/// A fresh temporary directory per test, named after the test module and function, removed by
/// `cleanup()` (which first makes every directory in it writable, so a test may take modes away).
public struct TempDir: Sendable {
    public let path: String

    public init(_ name: String = #function, fileID: String = #fileID) {
        let module = fileID.prefix { $0 != "/" }.replacingOccurrences(of: "Saraban", with: "")
            .replacingOccurrences(of: "Tests", with: "").lowercased()
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = FileManager.default.temporaryDirectory.path
            + "/saraban-\(module)-\(safe)-\(UUID().uuidString.prefix(8))"
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            Issue.record(Comment(rawValue: "cannot create the test directory \(path): \(error)"))
        }
    }

    public func file(_ name: String) -> String { path + "/" + name }

    public func cleanup() {
        Self.makeWritable(path)
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func makeWritable(_ dir: String) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else { return }
        chmod(dir, 0o700)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
            makeWritable(dir + "/" + name)
        }
    }
}

/// Polls `condition` every `interval` until it holds, throwing ``TestFailure`` (with the last error
/// the condition threw, if any) once `timeout` has passed. The condition is tried once more at the deadline.
public func eventually(
    _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws {
    var poll = Polling(what, timeout: timeout)
    while true {
        let last = poll.expired
        do {
            if try await condition() { return }
        } catch { poll.lastError = error }
        if last { throw poll.failure }
        try await Task.sleep(for: interval)
    }
}

/// ``eventually(_:timeout:every:_:)`` for synchronous tests: blocks the calling thread between polls.
public func eventuallyBlocking(
    _ what: String, timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(200),
    _ condition: () throws -> Bool
) throws {
    var poll = Polling(what, timeout: timeout)
    while true {
        let last = poll.expired
        do {
            if try condition() { return }
        } catch { poll.lastError = error }
        if last { throw poll.failure }
        let (seconds, attoseconds) = interval.components
        Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
    }
}

/// The deadline and last error of one ``eventually(_:timeout:every:_:)``.
private struct Polling {
    let what: String
    let deadline: ContinuousClock.Instant
    var lastError: (any Error)?

    init(_ what: String, timeout: Duration) {
        self.what = what
        deadline = ContinuousClock.now + timeout
    }

    var expired: Bool { ContinuousClock.now >= deadline }
    var failure: TestFailure {
        TestFailure("timed out waiting for \(what)\(lastError.map { " (last error: \($0))" } ?? "")")
    }
}

/// The built `saraban` executable: `$SARABAN_BIN`, else next to the test bundle (the products
/// directory, whatever --scratch-path was used), else the package's default build directory.
public let sarabanBinary: String = {
    let fm = FileManager.default
    var candidates: [String] = []
    if let bin = ProcessInfo.processInfo.environment["SARABAN_BIN"] { candidates.append(bin) }
    if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("saraban").path)
    }
    candidates.append(Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("saraban").path)
    candidates.append(Bundle.main.bundleURL.appendingPathComponent("saraban").path)
    candidates.append(
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("saraban").path)
    // Last resort: the package's default build directory, from this file's location.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    candidates.append(root.appendingPathComponent(".build/debug/saraban").path)
    return candidates.first { fm.isExecutableFile(atPath: $0) } ?? candidates.last!
}()
