import SarabanCore
import Testing

/// The one binary reader and writer (every format's fields): varints are minimal both ways,
/// counts are bounded, fixed-width integers are big-endian.
@Suite struct BinaryTests {
    /// Every power of two and its neighbours, 0 through UInt64.max.
    static let edges: [UInt64] = {
        var v: Set<UInt64> = [0, 1, UInt64.max, UInt64.max - 1]
        for k in 1..<64 {
            let p = UInt64(1) << UInt64(k)
            v.formUnion([p - 1, p, p + 1])
        }
        return v.sorted()
    }()

    static func encoded(_ v: UInt64) -> [UInt8] {
        var w = BinaryWriter()
        w.varint(v)
        return w.bytes
    }

    @Test func varintsRoundTripAtTheirMinimalLength() throws {
        for v in Self.edges {
            let b = Self.encoded(v)
            // Minimal: 7 bits a byte, at least one byte.
            #expect(b.count == max(1, (64 - v.leadingZeroBitCount + 6) / 7), "\(v)")
            var r = BinaryReader(b)
            #expect(try r.varint() == v)
            try r.expectEnd()
        }
    }

    @Test func nonMinimalVarintsAreRefused() {
        // Each value spelled one group longer (its last byte continued, then a zero group), where
        // that still fits in 10 bytes. The sync decoder always refused these; the core reader
        // accepted them before it became the one reader.
        var tried = 0
        for v in Self.edges {
            var b = Self.encoded(v)
            guard b.count < 10 else { continue }
            b[b.count - 1] |= 0x80
            b.append(0)
            var r = BinaryReader(b)
            #expect(throws: DecodingError(.overlongVarint, at: 0, "non-minimal varint")) { try r.varint() }
            tried += 1
        }
        #expect(tried > 100)
        // Zero in two and in ten bytes.
        var zero2 = BinaryReader([0x80, 0x00])
        #expect(throws: DecodingError.self) { try zero2.varint() }
        var zero10 = BinaryReader([UInt8](repeating: 0x80, count: 9) + [0])
        #expect(throws: DecodingError(.overlongVarint, at: 0, "non-minimal varint")) { try zero10.varint() }
    }

    @Test func varintsBeyondSixtyFourBitsAreRefused() {
        // Tenth byte above 1 (overflow), and an eleventh byte.
        var overflow = BinaryReader([UInt8](repeating: 0xFF, count: 9) + [0x02])
        #expect(throws: DecodingError(.overlongVarint, at: 0)) { try overflow.varint() }
        var eleven = BinaryReader([UInt8](repeating: 0xFF, count: 10) + [0x01])
        #expect(throws: DecodingError(.overlongVarint, at: 0)) { try eleven.varint() }
        var cut = BinaryReader([0x80, 0x80])
        #expect(throws: DecodingError(.truncated, at: 2, "varint")) { try cut.varint() }
    }

    @Test func countsAreBoundedOnBothSidesAndNamed() throws {
        var w = BinaryWriter()
        for v in [0, 1, 64, 65] { w.varint(v) }
        var r = BinaryReader(w.bytes)
        #expect(throws: DecodingError(.lengthOutOfRange, at: 0, "receive window 0 is outside 1…64")) {
            try r.count("receive window", min: 1, max: 64)
        }
        #expect(try r.count("receive window", min: 1, max: 64) == 1)
        #expect(try r.count(max: 64) == 64)
        #expect(throws: DecodingError(.lengthOutOfRange, at: 3, "count 65 is outside 0…64")) { try r.count(max: 64) }
        // A length prefix larger than the bytes left is refused before anything is read.
        var l = BinaryReader([5, 1, 2])
        #expect(throws: DecodingError.self) { try l.lengthPrefixed() }
        #expect(l.offset == 1)
    }

    @Test func fixedWidthIntegersAreBigEndian() throws {
        var w = BinaryWriter()
        w.raw([0, 0, 0, 0])
        w.fixed16(0x0102)
        w.fixed64(0x0304_0506_0708_090A)
        w.setFixed32(0x0B0C_0D0E, at: 0)
        #expect(w.bytes == [0x0B, 0x0C, 0x0D, 0x0E, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        var r = BinaryReader(w.bytes)
        _ = try r.raw(4)
        #expect(try r.fixed16() == 0x0102)
        #expect(try r.fixed64() == 0x0304_0506_0708_090A)
        #expect(throws: DecodingError(.truncated, at: 14, "need 2 bytes, 0 left")) { try r.fixed16() }
    }

    @Test func signedIntegersRoundTrip() throws {
        let values: [Int64] = [0, 1, -1, 63, -64, 64, -65, Int64.max, Int64.min]
        var w = BinaryWriter()
        for v in values { w.signed(v) }
        var r = BinaryReader(w.bytes)
        for v in values { #expect(try r.signed() == v) }
        try r.expectEnd()
    }
}
