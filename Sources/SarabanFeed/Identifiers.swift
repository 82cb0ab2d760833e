import SarabanCore
import SarabanCrypto

/// The id of a space: the unit of replication and encryption (16 bytes).
///
/// Ordered by its big-endian bytes, so every node lists spaces in the same order on the wire.
public struct SpaceID: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// 16 bytes.
    public static let byteCount = 16

    public let hi: UInt64
    public let lo: UInt64

    public init(hi: UInt64, lo: UInt64) {
        self.hi = hi
        self.lo = lo
    }

    /// Wraps exactly 16 bytes; `nil` for any other length.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == Self.byteCount else { return nil }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { h = h << 8 | UInt64(b) } else { l = l << 8 | UInt64(b) }
        }
        self.init(hi: h, lo: l)
    }

    /// The space of an envelope header.
    public init?(_ header: EnvelopeHeader) { self.init(bytes: header.spaceID) }

    /// The 16 bytes, big-endian (what ``EnvelopeHeader/spaceID`` holds).
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(16)
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: hi >> (56 - 8 * UInt64(i)))) }
        for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: lo >> (56 - 8 * UInt64(i)))) }
        return out
    }

    /// 32 lowercase hex digits.
    public var hex: String { Hex.encode(bytes) }

    /// Parses 32 hex digits.
    public init?(hex: String) {
        guard let b = Hex.decode(hex) else { return nil }
        self.init(bytes: b)
    }

    /// The first 8 hex digits.
    public var description: String { String(hex.prefix(8)) }

    public static func < (a: SpaceID, b: SpaceID) -> Bool { a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo }
}

/// The role a node announces in its hello.
///
/// A member belongs to the spaces it carries (it holds their keys and applies changes); a relay
/// stores and forwards envelopes of the spaces it is configured for and never holds a key. The
/// sync protocol itself treats both alike: the role is for status displays and policy in the node.
public enum NodeRole: UInt8, Sendable, Hashable, CustomStringConvertible {
    case member = 0
    case relay = 1

    public var description: String { self == .member ? "member" : "relay" }
}

extension SigningPublicKey {
    /// Lexicographic order of the key bytes: the canonical order of authors on the wire.
    public static func precedes(_ a: SigningPublicKey, _ b: SigningPublicKey) -> Bool {
        a.rawRepresentation.lexicographicallyPrecedes(b.rawRepresentation)
    }
}
