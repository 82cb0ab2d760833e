/// Errors from decoding Saraban's binary formats. Decoders throw these; they never trap.
public struct DecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case truncated
        case overlongVarint
        case invalidUTF8
        case unknownTag
        case unsupportedVersion
        case lengthOutOfRange
        case invalidReference
        case trailingBytes
        case invalidValue
    }

    public let code: Code
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

/// Appends LEB128 varints, zigzag integers, length-prefixed bytes and strings.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    public mutating func byte(_ b: UInt8) { bytes.append(b) }

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

    public mutating func fixed64(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Reads what ``BinaryWriter`` writes; every read is bounds-checked and throws ``DecodingError``.
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
        guard offset < bytes.count else { throw DecodingError(.truncated, at: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }

    @inline(__always)
    public mutating func varint() throws(DecodingError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        let start = offset
        while true {
            guard offset < bytes.count else { throw DecodingError(.truncated, at: offset) }
            let b = bytes[offset]
            offset += 1
            if shift == 63 && b > 1 { throw DecodingError(.overlongVarint, at: start) }
            result |= UInt64(b & 0x7f) << shift
            if b & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw DecodingError(.overlongVarint, at: start) }
        }
    }

    /// A varint that must fit in `0...limit` (counts and lengths).
    @inline(__always)
    public mutating func count(max limit: Int) throws(DecodingError) -> Int {
        let at = offset
        let v = try varint()
        guard v <= UInt64(limit) else {
            throw DecodingError(.lengthOutOfRange, at: at, "\(v) exceeds \(limit)")
        }
        return Int(v)
    }

    public mutating func signed() throws(DecodingError) -> Int64 {
        let v = try varint()
        return Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1)
    }

    public mutating func raw(_ n: Int) throws(DecodingError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw DecodingError(.truncated, at: offset, "need \(n) bytes") }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    public mutating func lengthPrefixed() throws(DecodingError) -> ArraySlice<UInt8> {
        let n = try count(max: min(maxLength, remaining))
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
