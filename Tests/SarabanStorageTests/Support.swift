import Foundation
import SarabanCore
import SarabanStorage
@_exported import SarabanTestSupport

let replicaA = ReplicaID(hi: 0xA1A1_A1A1_0000_0001, lo: 1)
let replicaB = ReplicaID(hi: 0xB2B2_B2B2_0000_0002, lo: 2)

let thai = "หนังสือราชการ ด่วนที่สุด ที่ มท ๐๘๐๘.๒/ว ๑๒๓"

/// Overwrites a big-endian 32-bit field of the SQLite header (offset 60: user_version, 68: application_id).
func patchHeader(_ path: String, offset: Int, value: UInt32) throws {
    var data = try Data(contentsOf: URL(fileURLWithPath: path))
    for i in 0..<4 { data[offset + i] = UInt8(truncatingIfNeeded: value >> (24 - 8 * UInt32(i))) }
    try data.write(to: URL(fileURLWithPath: path))
}

func fileBytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }
