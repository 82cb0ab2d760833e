import Foundation
import Logging
import SarabanNode
@_exported import SarabanTestSupport

extension TempDir {
    /// The data directory inside it (not yet created).
    var data: DataDirectory { DataDirectory(path: path + "/data") }
}

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
