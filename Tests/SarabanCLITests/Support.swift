import Foundation
@_exported import SarabanTestSupport

struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
    var stdoutBytes: Data
}

/// Runs `saraban ARGS` (or, with `shell`, `/bin/sh -c SCRIPT` with $SARABAN naming the binary):
/// ``runProcess(_:_:stdin:env:cwd:)`` with this suite's field names.
func run(_ args: [String], shell: String? = nil, env extra: [String: String] = [:], cwd: String? = nil) throws -> Result {
    let r = try shell.map { try runProcess("/bin/sh", ["-c", $0], env: extra, cwd: cwd) } ?? saraban(args, env: extra, cwd: cwd)
    return Result(status: r.status, stdout: r.out, stderr: r.err, stdoutBytes: r.outBytes)
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
