import ArgumentParser
import Foundation
import SarabanCore
import SarabanNode

/// Exit statuses besides those of `NodeError.Code.exitCode` (see Docs/CLI.md).
enum ExitStatus {
    static let invalidUTF8: Int32 = 65
}

/// Checks the process arguments as the kernel passed them.
enum RawArguments {
    static func firstInvalidUTF8() -> (index: Int, hex: String)? {
        let argc = Int(CommandLine.argc)
        for i in 1..<max(argc, 1) {
            guard let p = CommandLine.unsafeArgv[i] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(p).assumingMemoryBound(to: UInt8.self), count: strlen(p))
            if String(validating: bytes, as: UTF8.self) == nil {
                return (i, bytes.prefix(32).map { String(format: "%02x", $0) }.joined(separator: " "))
            }
        }
        return nil
    }
}

/// Everything the CLI prints goes through here: data on stdout, messages on stderr.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("saraban: error: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("saraban: \(message)\n".utf8))
    }

    static func json<T: Encodable>(_ value: T) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try enc.encode(value)
        FileHandle.standardOutput.write(data + Data("\n".utf8))
    }

    /// `2025-01-31T09:15:02.123Z` from milliseconds since 1970.
    static func time(_ ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }

    static func bytes(_ n: Int64) -> String {
        if n < 1024 { return "\(n) B" }
        if n < 1 << 20 { return String(format: "%.1f KiB", Double(n) / 1024) }
        return String(format: "%.1f MiB", Double(n) / 1048576)
    }
}

/// An optional that encodes as JSON `null` instead of leaving its key out, so that a documented
/// `--json` shape has every key whatever is known. Also a property wrapper: `@OrNull var office: String?`
/// in a struct whose `Encodable` conformance is synthesized.
@propertyWrapper
struct OrNull<Wrapped: Encodable>: Encodable {
    var value: Wrapped?
    init(_ value: Wrapped?) { self.value = value }
    init(wrappedValue: Wrapped?) { value = wrappedValue }
    var wrappedValue: Wrapped? {
        get { value }
        set { value = newValue }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        if let value { try c.encode(value) } else { try c.encodeNil() }
    }
}

/// `--data DIR`, shared by every command.
struct DataOptions: ParsableArguments {
    @Option(
        name: .long, help: ArgumentHelp("The data directory (default: $SARABAN_HOME, else ./saraban-data).", valueName: "DIR"))
    var data: String?

    var directory: DataDirectory { DataDirectory.resolve(flag: data) }

    func openNode() throws(NodeError) -> Node {
        try Node.open(dataDir: directory, now: FakeClock.now ?? Node.systemClock)
    }

    /// Opens the node, runs `body` with it and closes it (whatever `body` throws): the one
    /// open/close preamble of the commands.
    func withNode<T>(_ body: (Node) throws -> T) throws -> T {
        let node = try openNode()
        defer { node.close() }
        return try body(node)
    }

    /// ``withNode(_:)`` for a body that awaits (sync, serve, fetch, inspect-sync).
    func withNode<T>(_ body: (Node) async throws -> T) async throws -> T {
        let node = try openNode()
        defer { node.close() }
        return try await body(node)
    }
}

/// `--json`, wherever a command prints data.
struct JSONOption: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false
}

/// Parses `FIELD=VALUE` (the value may contain `=`; the field may not be empty).
func parseAssignment(_ text: String) throws(NodeError) -> (name: String, value: String) {
    guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
        throw NodeError(
            .invalidArgument,
            "malformed --set \(text.debugDescription): expected FIELD=VALUE, for example --set subject=ขออนุมัติเดินทาง")
    }
    let name = String(text[..<eq])
    try Node.checkFieldName(name)
    return (name, String(text[text.index(after: eq)...]))
}

/// Parses a non-negative integer argument.
func parseCount(_ text: String, _ what: String) throws(NodeError) -> Int {
    guard let n = Int(text), n >= 0 else {
        throw NodeError(.invalidArgument, "\(what) must be a whole number ≥ 0, got \(text.debugDescription)")
    }
    return n
}

/// Runs a parsed command's async `run()` (opening the existential picks the async overload).
func runAsync<C: AsyncParsableCommand>(_ command: C) async throws {
    var command = command
    try await command.run()
}
