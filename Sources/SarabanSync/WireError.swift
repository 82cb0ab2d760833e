/// Why a frame payload is not a valid sync message. The decoder throws these; it never traps.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The message ends before a field it announces.
        case truncated
        /// The version byte is not ``SyncMessage/protocolVersion``.
        case unsupportedVersion
        /// The tag byte names no message of this version.
        case unknownTag
        /// A count or length is outside its allowed range (or larger than the bytes left could hold).
        case countOutOfRange
        /// A varint is longer than 10 bytes or overflows 64 bits.
        case malformedVarint
        /// A field holds a value the format forbids (unknown role, sequence 0, duplicate or unsorted
        /// keys, invalid UTF-8, …).
        case invalidValue
        /// An envelope in an `envelopes` message is malformed or belongs to another space.
        case invalidEnvelope
        /// Bytes are left after the message.
        case trailingBytes
    }

    public let code: Code
    /// Offset in the frame payload where the problem was found.
    public let offset: Int
    public let detail: String

    public init(_ code: Code, at offset: Int, _ detail: String = "") {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    public var description: String {
        "malformed sync message (\(code.rawValue)) at byte \(offset)\(detail.isEmpty ? "" : ": \(detail)")"
    }
}

/// A bounds-checked reader over one frame payload.
struct WireReader {
    let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func byte() throws(WireError) -> UInt8 {
        guard offset < bytes.count else { throw WireError(.truncated, at: offset, "need 1 byte") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func varint() throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            guard offset < bytes.count else { throw WireError(.truncated, at: offset, "varint") }
            let b = bytes[offset]
            offset += 1
            if shift == 63 && b > 1 { throw WireError(.malformedVarint, at: start) }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 {
                // Canonical: no redundant trailing zero groups (so every value has one encoding).
                if b == 0 && shift > 0 { throw WireError(.malformedVarint, at: start, "non-minimal varint") }
                return result
            }
            shift += 7
        }
    }

    /// A varint count in `minimum...maximum`.
    mutating func count(_ what: String, minimum: Int = 0, maximum: Int) throws(WireError) -> Int {
        let at = offset
        let v = try varint()
        guard v >= UInt64(max(minimum, 0)), v <= UInt64(max(maximum, 0)) else {
            throw WireError(.countOutOfRange, at: at, "\(what) \(v) is outside \(minimum)…\(max(maximum, 0))")
        }
        return Int(v)
    }

    mutating func raw(_ n: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw WireError(.truncated, at: offset, "need \(n) bytes, \(remaining) left") }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    mutating func u16() throws(WireError) -> UInt16 {
        let s = try raw(2)
        return UInt16(s[s.startIndex]) << 8 | UInt16(s[s.startIndex + 1])
    }

    mutating func u64() throws(WireError) -> UInt64 {
        try raw(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    func expectEnd() throws(WireError) {
        guard offset == bytes.count else { throw WireError(.trailingBytes, at: offset, "\(remaining) unread bytes") }
    }
}

/// Appends wire fields.
struct WireWriter {
    var bytes: [UInt8]

    init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func byte(_ b: UInt8) { bytes.append(b) }

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func varint(_ value: Int) { varint(UInt64(value)) }

    mutating func raw<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }

    mutating func u16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    mutating func u64(_ v: UInt64) {
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64(i)))) }
    }
}

/// The bytes a varint of `v` takes.
func varintSize(_ v: UInt64) -> Int {
    var n = 1
    var x = v
    while x >= 0x80 {
        x >>= 7
        n += 1
    }
    return n
}
