/// Errors from decoding Saraban's binary formats (changes, snapshots, sync messages, stored rows,
/// change files). Decoders throw these; they never trap.
public struct DecodingError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The input ends before a field it announces.
        case truncated
        /// A varint is longer than 10 bytes, overflows 64 bits, or is longer than its value needs
        /// (a trailing `0x00` group: every value has exactly one encoding).
        case overlongVarint
        /// A string is not valid UTF-8.
        case invalidUTF8
        /// A tag byte names nothing this version knows.
        case unknownTag
        /// The format version is not one this build reads.
        case unsupportedVersion
        /// A count, length or bounded number is outside its range (or larger than the bytes left
        /// could hold).
        case lengthOutOfRange
        /// An index names no entry of its table.
        case invalidReference
        /// Bytes are left after the last field.
        case trailingBytes
        /// A field holds a value the format forbids (an unknown role, sequence 0, unsorted or
        /// duplicate keys, …).
        case invalidValue
        /// An envelope carried inside the input (a sync batch) does not decode or belongs
        /// elsewhere; the detail names the envelope's own error.
        case invalidEnvelope
    }

    public let code: Code
    /// Offset in the input where the problem was found.
    public let offset: Int
    public let detail: String

    public init(_ code: Code, at offset: Int, _ detail: String = "") {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    public var description: String {
        "malformed input (\(code.rawValue)) at byte \(offset)\(detail.isEmpty ? "" : ": \(detail)"); "
            + "the data is corrupt or from an incompatible version, and was not applied"
    }
}

/// Appends the fields of Saraban's binary formats: minimal unsigned LEB128 varints, zigzag
/// integers, big-endian fixed-width integers, length-prefixed bytes and strings.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    public mutating func byte(_ b: UInt8) { bytes.append(b) }

    /// Unsigned LEB128, always minimal (what ``BinaryReader/varint()`` requires).
    @inline(__always)
    public mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    @inline(__always)
    public mutating func varint(_ value: Int) { varint(UInt64(value)) }

    /// Zigzag-encoded signed integer.
    @inline(__always)
    public mutating func signed(_ value: Int64) {
        varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    public mutating func raw<C: Collection>(_ data: C) where C.Element == UInt8 { bytes.append(contentsOf: data) }

    public mutating func lengthPrefixed<C: Collection>(_ data: C) where C.Element == UInt8 {
        varint(UInt64(data.count))
        bytes.append(contentsOf: data)
    }

    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { lengthPrefixed($0) }
    }

    public mutating func replica(_ r: ReplicaID) {
        fixed64(r.hi)
        fixed64(r.lo)
    }

    /// 2 bytes, big-endian.
    public mutating func fixed16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    /// 8 bytes, big-endian.
    public mutating func fixed64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// Overwrites the 4 bytes written at `offset` with `v`, big-endian: for a length that is known
    /// only once what follows it is written (a frame header).
    ///
    /// - Precondition: `offset + 4 <= bytes.count` (a programming error, never input).
    public mutating func setFixed32(_ v: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "setFixed32 at \(offset) of \(bytes.count) bytes")
        bytes[offset] = UInt8(truncatingIfNeeded: v >> 24)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v >> 16)
        bytes[offset + 2] = UInt8(truncatingIfNeeded: v >> 8)
        bytes[offset + 3] = UInt8(truncatingIfNeeded: v)
    }
}

/// Reads what ``BinaryWriter`` writes; every read is bounds-checked and throws ``DecodingError``.
///
/// The one reader of every Saraban binary format (Core, the feed, the store, the sync protocol,
/// the office formats). It is strict: a varint must be minimal, so every value has one encoding
/// (Sync/PROTOCOL.md, "Encoding"; Docs/ARCHITECTURE.md).
public struct BinaryReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    /// The largest length prefix accepted (guards allocations on hostile input).
    public var maxLength: Int

    public init(_ bytes: [UInt8], maxLength: Int = 64 << 20) {
        self.bytes = bytes
        self.offset = 0
        self.maxLength = maxLength
    }

    public var isAtEnd: Bool { offset >= bytes.count }
    public var remaining: Int { bytes.count - offset }

    @inline(__always)
    public mutating func byte() throws(DecodingError) -> UInt8 {
        guard offset < bytes.count else { throw DecodingError(.truncated, at: offset, "need 1 byte") }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// An unsigned LEB128 varint: at most 10 bytes, at most 64 bits, and minimal (no trailing
    /// `0x00` group), else ``DecodingError/Code/overlongVarint``.
    @inline(__always)
    public mutating func varint() throws(DecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            guard offset < bytes.count else { throw DecodingError(.truncated, at: offset, "varint") }
            let b = bytes[offset]
            offset += 1
            if shift == 63 && b > 1 { throw DecodingError(.overlongVarint, at: start) }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 {
                // A last group of zero after others is a longer spelling of a shorter varint.
                if b == 0 && shift > 0 { throw DecodingError(.overlongVarint, at: start, "non-minimal varint") }
                return result
            }
            shift += 7
        }
    }

    /// A varint count, length or bounded number that must lie in `minimum...limit`, else
    /// ``DecodingError/Code/lengthOutOfRange`` naming `what`.
    @inline(__always)
    public mutating func count(
        _ what: StaticString = "count", min minimum: Int = 0, max limit: Int
    ) throws(DecodingError) -> Int {
        let at = offset
        let v = try varint()
        guard v >= UInt64(Swift.max(minimum, 0)), v <= UInt64(Swift.max(limit, 0)) else {
            throw DecodingError(.lengthOutOfRange, at: at, "\(what) \(v) is outside \(minimum)…\(Swift.max(limit, 0))")
        }
        return Int(v)
    }

    public mutating func signed() throws(DecodingError) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }

    public mutating func raw(_ n: Int) throws(DecodingError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw DecodingError(.truncated, at: offset, "need \(n) bytes, \(remaining) left") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    public mutating func lengthPrefixed() throws(DecodingError) -> ArraySlice<UInt8> {
        let n = try count("length", max: Swift.min(maxLength, remaining))
        return try raw(n)
    }

    public mutating func string() throws(DecodingError) -> String {
        let at = offset
        let slice = try lengthPrefixed()
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw DecodingError(.invalidUTF8, at: at)
        }
        return s
    }

    /// 2 bytes, big-endian.
    public mutating func fixed16() throws(DecodingError) -> UInt16 {
        let s = try raw(2)
        return UInt16(s[s.startIndex]) << 8 | UInt16(s[s.startIndex + 1])
    }

    /// 8 bytes, big-endian.
    public mutating func fixed64() throws(DecodingError) -> UInt64 {
        let s = try raw(8)
        var v: UInt64 = 0
        for b in s { v = v << 8 | UInt64(b) }
        return v
    }

    public mutating func replica() throws(DecodingError) -> ReplicaID {
        let h = try fixed64()
        let l = try fixed64()
        return ReplicaID(hi: h, lo: l)
    }

    public func expectEnd() throws(DecodingError) {
        guard isAtEnd else { throw DecodingError(.trailingBytes, at: offset, "\(remaining) unread bytes") }
    }
}
