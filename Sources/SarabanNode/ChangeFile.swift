import SarabanCore

/// The change file that `saraban doc export` writes and `saraban doc merge` reads (carried
/// between offices on a USB stick).
///
/// Layout: the magic `SRBNCHGS` (8 bytes), a format version byte (1), a varint count, then
/// each change as a varint length followed by the change's own encoding (``Change/encoded()``).
/// Nothing may follow the last change.
public enum ChangeFile {
    public static let magic: [UInt8] = Array("SRBNCHGS".utf8)
    public static let version: UInt8 = 1

    public static func encode(_ changes: [Change]) -> [UInt8] {
        var w = BinaryWriter(capacity: 64 * changes.count + 16)
        w.raw(magic)
        w.byte(version)
        w.varint(changes.count)
        for c in changes { w.lengthPrefixed(c.encoded()) }
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], path: String = "the change file") throws(NodeError) -> [Change] {
        guard bytes.count >= magic.count + 1, Array(bytes[0..<magic.count]) == magic else {
            throw NodeError(.invalidFile, "\(path) is not a saraban change file (made by `saraban doc export`)")
        }
        guard bytes[magic.count] == version else {
            throw NodeError(
                .invalidFile,
                "\(path) is a change file of format \(bytes[magic.count]); this build reads \(version): upgrade saraban")
        }
        var r = BinaryReader(Array(bytes[(magic.count + 1)...]))
        do {
            let n = try r.count(max: r.remaining)
            var out: [Change] = []
            out.reserveCapacity(n)
            for _ in 0..<n {
                out.append(try Change.decode(Array(try r.lengthPrefixed())))
            }
            try r.expectEnd()
            return out
        } catch {
            throw NodeError(.invalidFile, "\(path) is damaged: \(error); nothing was applied")
        }
    }
}
