import Foundation
import Logging
import SarabanNode

/// A fresh temporary directory per test; the data directory is `path/data` (not yet created).
struct TempDir {
    let path: String

    init(_ name: String = #function) {
        let base = FileManager.default.temporaryDirectory.path
        let safe = name.filter { $0.isLetter || $0.isNumber }
        path = "\(base)/saraban-node-\(safe)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    var data: DataDirectory { DataDirectory(path: path + "/data") }
    func file(_ name: String) -> String { path + "/" + name }
    func cleanup() {
        _ = chmodTree(path, 0o755)
        try? FileManager.default.removeItem(atPath: path)
    }
}

@discardableResult
func chmodTree(_ path: String, _ mode: mode_t) -> Int32 { chmod(path, mode) }

let quiet: Logger = {
    var l = Logger(label: "saraban.test")
    l.logLevel = .critical
    return l
}()

let thai = "หนังสือราชการ ด่วนที่สุด ที่ มท ๐๘๐๘.๒/ว ๑๒๓"

/// Every file of a directory with its bytes and modification time, to prove nothing changed.
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

func mode(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

func patchHeader(_ path: String, offset: Int, value: UInt32) throws {
    var data = try Data(contentsOf: URL(fileURLWithPath: path))
    for i in 0..<4 { data[offset + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(i))) }
    try data.write(to: URL(fileURLWithPath: path))
}
