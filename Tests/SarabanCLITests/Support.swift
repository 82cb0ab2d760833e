import Foundation
@_exported import SarabanTestSupport

struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
    var stdoutBytes: Data
}

/// Runs `saraban ARGS` (or, with `shell`, `/bin/sh -c SCRIPT` with $SARABAN naming the binary).
func run(_ args: [String], shell: String? = nil, env extra: [String: String] = [:], cwd: String? = nil) throws -> Result {
    let p = Process()
    var env = ProcessInfo.processInfo.environment
    env["SARABAN_HOME"] = nil
    env["SARABAN"] = sarabanBinary
    for (k, v) in extra { env[k] = v }
    p.environment = env
    if let shell {
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", shell]
    } else {
        p.executableURL = URL(fileURLWithPath: sarabanBinary)
        p.arguments = args
    }
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    let tmp = FileManager.default.temporaryDirectory.path + "/saraban-cli-out-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: tmp + ".out", contents: nil)
    _ = FileManager.default.createFile(atPath: tmp + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: tmp + ".out")
        try? FileManager.default.removeItem(atPath: tmp + ".err")
    }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp + ".out"))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: tmp + ".err"))
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    try out.close()
    try err.close()
    let o = FileManager.default.contents(atPath: tmp + ".out") ?? Data()
    let e = FileManager.default.contents(atPath: tmp + ".err") ?? Data()
    return Result(
        status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self),
        stdoutBytes: o)
}

extension TempDir {
    /// The data directory inside it (not yet created).
    var data: String { path + "/data" }
}

/// Every file of a directory with its bytes and modification time.
struct Snapshot: Equatable {
    var files: [String: Data] = [:]
    var mtimes: [String: Date] = [:]

    init(_ dir: String) {
        let fm = FileManager.default
        // The -shm file is SQLite's shared-memory index, rewritten by every reader: not data.
        for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where !name.hasSuffix("-shm") {
            let p = dir + "/" + name
            files[name] = fm.contents(atPath: p)
            mtimes[name] = (try? fm.attributesOfItem(atPath: p))?[.modificationDate] as? Date
        }
    }
}

func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}

let thai = "หนังสือราชการ ด่วนที่สุด ที่ มท ๐๘๐๘.๒/ว ๑๒๓"
