import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C (SIGINT) and SIGTERM for a command that stops cleanly: while `body` runs, the first
/// signal cancels it (the command then says where it stopped), a second one ends the process at
/// once, as the default action would.
final class Interruption: @unchecked Sendable {
    private let lock = NSLock()
    private var caught: Int32?
    private var sources: [any DispatchSourceSignal] = []

    /// The signal that interrupted the body, if one did.
    var signal: Int32? { lock.withLock { caught } }

    /// The conventional exit status after `signal`: 128 + its number (130 for SIGINT, 143 for SIGTERM).
    static func exitStatus(_ signal: Int32) -> Int32 { 128 + signal }

    static func name(_ signal: Int32) -> String { signal == SIGINT ? "SIGINT (Ctrl-C)" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)" }

    /// Runs `body` in a task that the first SIGINT or SIGTERM cancels.
    func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let task = Task { try await body() }
        for s in [SIGINT, SIGTERM] {
            Glibc.signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler { [self] in
                let first = lock.withLock { () -> Bool in
                    if caught != nil { return false }
                    caught = s
                    return true
                }
                if first {
                    task.cancel()
                    // A second signal takes the default action: the process ends at once.
                    for x in [SIGINT, SIGTERM] { Glibc.signal(x, SIG_DFL) }
                }
            }
            source.resume()
            sources.append(source)
        }
        defer {
            for s in sources { s.cancel() }
            for x in [SIGINT, SIGTERM] { Glibc.signal(x, SIG_DFL) }
        }
        return try await task.value
    }
}
