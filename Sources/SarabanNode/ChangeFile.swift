import SarabanCore
import SarabanCrypto
import SarabanSync

/// The change file that `saraban doc export` writes and `saraban doc merge` reads (carried
/// between offices on a USB stick).
///
/// Both formats start with the magic `SRBNCHGS` (8 bytes) and a format version byte; nothing
/// may follow the last item.
/// - Version 1, for a document of the node's default space (which never syncs): a varint count,
///   then each change as a varint length followed by the change's own encoding
///   (``Change/encoded()``).
/// - Version 2, for a document of a synced space: the space id (16 bytes), a varint count, then
///   each envelope as a varint length followed by its bytes, as its author signed and encrypted
///   it. The receiving office verifies them exactly as it verifies envelopes received by sync
///   (signature, hash chain, membership) and keeps them to forward, so nothing unsigned enters a
///   synced space and the file reveals nothing without the space key.
public enum ChangeFile {
    public static let magic: [UInt8] = Array("SRBNCHGS".utf8)
    /// The format of a default-space change file.
    public static let version: UInt8 = 1
    /// The format of a synced space's change file (sealed envelopes).
    public static let envelopeVersion: UInt8 = 2

    /// What a change file holds.
    public enum Contents: Sendable {
        /// Default-space changes (version 1).
        case changes([Change])
        /// A synced space's envelopes, in the order they apply (version 2).
        case envelopes(space: SpaceID, [Envelope])
    }

    public static func encode(_ changes: [Change]) -> [UInt8] {
        var w = BinaryWriter(capacity: 64 * changes.count + 16)
        w.raw(magic)
        w.byte(version)
        w.varint(changes.count)
        for c in changes { w.lengthPrefixed(c.encoded()) }
        return w.bytes
    }

    public static func encode(space: SpaceID, envelopes: [Envelope]) -> [UInt8] {
        var w = BinaryWriter(capacity: envelopes.reduce(32) { $0 + $1.bytes.count + 5 })
        w.raw(envelopeHeader(space: space, count: envelopes.count))
        for e in envelopes { w.raw(envelopeItem(e.bytes)) }
        return w.bytes
    }

    /// The start of a synced space's change file holding `count` envelopes, for a writer that
    /// streams them (a relay's archive of a retired month): then each as ``envelopeItem(_:)``.
    public static func envelopeHeader(space: SpaceID, count: Int) -> [UInt8] {
        var w = BinaryWriter(capacity: 32)
        w.raw(magic)
        w.byte(envelopeVersion)
        w.raw(space.bytes)
        w.varint(count)
        return w.bytes
    }

    /// One envelope of a synced space's change file (its bytes, length-prefixed).
    public static func envelopeItem<C: Collection>(_ bytes: C) -> [UInt8] where C.Element == UInt8 {
        var w = BinaryWriter(capacity: bytes.count + 5)
        w.lengthPrefixed(bytes)
        return w.bytes
    }

    /// Decodes either format (envelopes are decoded strictly; their signatures are checked when
    /// they are received). Damaged or unknown files throw ``NodeError/Code/invalidFile``.
    public static func read(_ bytes: [UInt8], path: String = "the change file") throws(NodeError) -> Contents {
        guard bytes.count >= magic.count + 1, Array(bytes[0..<magic.count]) == magic else {
            throw NodeError(.invalidFile, "\(path) is not a saraban change file (made by `saraban doc export`)")
        }
        let format = bytes[magic.count]
        guard format == version || format == envelopeVersion else {
            throw NodeError(
                .invalidFile,
                "\(path) is a change file of format \(format); this build reads \(version) and \(envelopeVersion): "
                    + "upgrade saraban")
        }
        var r = BinaryReader(Array(bytes[(magic.count + 1)...]))
        do {
            if format == version {
                let n = try r.count(max: r.remaining)
                var out: [Change] = []
                out.reserveCapacity(n)
                for _ in 0..<n { out.append(try Change.decode(Array(try r.lengthPrefixed()))) }
                try r.expectEnd()
                return .changes(out)
            }
            guard let space = SpaceID(bytes: try r.raw(SpaceID.byteCount)) else {
                throw NodeError(.invalidFile, "\(path) names no space; nothing was applied")
            }
            let n = try r.count(max: r.remaining)
            var out: [Envelope] = []
            out.reserveCapacity(n)
            for _ in 0..<n { out.append(try Envelope.decode(Array(try r.lengthPrefixed()))) }
            try r.expectEnd()
            return .envelopes(space: space, out)
        } catch {
            throw NodeError(.invalidFile, "\(path) is damaged: \(error); nothing was applied")
        }
    }
}
