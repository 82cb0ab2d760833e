import SarabanCore
import SarabanCrypto

/// The id of a space: the unit of replication and encryption (16 bytes; bytes, hex, order and
/// display from ``Identifier128``).
///
/// Ordered by its big-endian bytes, so every node lists spaces in the same order on the wire.
public struct SpaceID: Identifier128 {
    public let hi: UInt64
    public let lo: UInt64

    public init(hi: UInt64, lo: UInt64) {
        self.hi = hi
        self.lo = lo
    }

    /// Wraps exactly 16 bytes; `nil` for any other length.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == Self.byteCount else { return nil }
        self.init(prefixOf: bytes)
    }

    /// The space of an envelope header.
    public init?(_ header: EnvelopeHeader) { self.init(bytes: header.spaceID) }
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
