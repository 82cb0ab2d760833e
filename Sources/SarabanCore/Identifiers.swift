// SarabanCore imports nothing: it is the pure CRDT core. Clock and randomness are parameters.

/// A 16-byte identifier held as two big-endian halves: ordered by its bytes, written as 32 hex
/// digits, shown by its first 8. ``ReplicaID`` and `SpaceID` (SarabanFeed) are the two; each stays
/// its own type, so one can never be passed for the other.
public protocol Identifier128: Hashable, Comparable, Sendable, CustomStringConvertible {
    var hi: UInt64 { get }
    var lo: UInt64 { get }
    init(hi: UInt64, lo: UInt64)
}

extension Identifier128 {
    /// 16 bytes.
    @inlinable public static var byteCount: Int { 16 }

    /// Builds an id from the first 16 bytes of `bytes` (shorter input is zero-padded).
    @inlinable
    public init<C: Collection>(prefixOf bytes: C) where C.Element == UInt8 {
        var h: UInt64 = 0
        var l: UInt64 = 0
        for (i, b) in bytes.prefix(16).enumerated() {
            if i < 8 { h |= UInt64(b) << (56 - 8 * UInt64(i)) } else { l |= UInt64(b) << (56 - 8 * UInt64(i - 8)) }
        }
        self.init(hi: h, lo: l)
    }

    /// The 16 bytes, big-endian.
    @inlinable
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
        guard let b = Hex.decode(hex), b.count == 16 else { return nil }
        self.init(prefixOf: b)
    }

    /// The first 8 hex digits, for tables.
    public var short: String { String(hex.prefix(8)) }

    public var description: String { short }

    @inlinable
    public static func < (a: Self, b: Self) -> Bool { a.hi != b.hi ? a.hi < b.hi : a.lo < b.lo }
}

/// The identity of one replica (one office node) inside the CRDT core.
///
/// It is the first 16 bytes of the node's Ed25519 public key; the crypto layer owns the full key.
/// Ordering is by the big-endian bytes, so every replica sorts authors the same way.
public struct ReplicaID: Identifier128 {
    public let hi: UInt64
    public let lo: UInt64

    public init(hi: UInt64, lo: UInt64) {
        self.hi = hi
        self.lo = lo
    }

    /// Builds an id from the first 16 bytes of `bytes` (shorter input is zero-padded).
    public init<C: Collection>(bytes: C) where C.Element == UInt8 { self.init(prefixOf: bytes) }

    /// A random id, from the caller's generator (tests and simulators pass a seeded one).
    public static func random<R: RandomNumberGenerator>(using rng: inout R) -> ReplicaID {
        ReplicaID(hi: rng.next(), lo: rng.next())
    }
}

/// The id of one operation: a Lamport counter and the replica that made it.
///
/// Ordered by counter, then replica, which is a total order consistent with causality:
/// the greatest id among concurrent writes is the deterministic winner.
public struct OpID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var counter: UInt64
    public var replica: ReplicaID

    public init(counter: UInt64, replica: ReplicaID) {
        self.counter = counter
        self.replica = replica
    }

    public static func < (a: OpID, b: OpID) -> Bool {
        a.counter != b.counter ? a.counter < b.counter : a.replica < b.replica
    }

    public var description: String { "\(counter)@\(replica.short)" }
}

/// The id of a document: the id of the operation that created it.
///
/// Its text form is `COUNTER-REPLICAHEX` (for example `12-3f2a9c1e…`), so a short unique prefix
/// is enough to name it on the command line.
public struct DocID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var op: OpID

    public init(_ op: OpID) { self.op = op }

    public var description: String { "\(op.counter)-\(op.replica.hex)" }

    /// Parses the canonical text form.
    public init?(_ text: String) {
        guard let dash = text.firstIndex(of: "-"),
              let counter = UInt64(text[..<dash]),
              let replica = ReplicaID(hex: String(text[text.index(after: dash)...]))
        else { return nil }
        self.init(OpID(counter: counter, replica: replica))
    }

    public static func < (a: DocID, b: DocID) -> Bool { a.op < b.op }
}

/// The id of a change: its author and the author's gapless sequence number (from 1).
public struct ChangeID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var author: ReplicaID
    public var seq: UInt64

    public init(author: ReplicaID, seq: UInt64) {
        self.author = author
        self.seq = seq
    }

    /// `AUTHORSHORT/SEQ`, for example `3f2a9c1e/17`.
    public var description: String { "\(author.short)/\(seq)" }

    public static func < (a: ChangeID, b: ChangeID) -> Bool {
        a.author != b.author ? a.author < b.author : a.seq < b.seq
    }
}

/// Lowercase hexadecimal without Foundation.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(u.count / 2)
        var i = 0
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
