import Foundation
import SarabanCore
import SarabanCrypto
@testable import SarabanSync
import Testing

private let fixtures = repositoryRoot.appendingPathComponent("Fixtures/wire")

private func readHex(_ name: String) throws -> [UInt8] {
    let text = try String(contentsOf: fixtures.appendingPathComponent(name), encoding: .utf8)
    let clean = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined().filter { !$0.isWhitespace }
    return try #require(Hex.decode(clean), "\(name) is not hex")
}

/// Hex in lines of 32 bytes, after a comment line.
private func writeHex(_ name: String, _ bytes: [UInt8], comment: String) throws {
    var lines = ["# \(comment)"]
    var i = 0
    while i < bytes.count {
        lines.append(Hex.encode(bytes[i..<min(i + 32, bytes.count)]))
        i += 32
    }
    try FileManager.default.createDirectory(at: fixtures, withIntermediateDirectories: true)
    try (lines.joined(separator: "\n") + "\n").write(to: fixtures.appendingPathComponent(name), atomically: true, encoding: .utf8)
}

private let updating = ProcessInfo.processInfo.environment["SARABAN_UPDATE_FIXTURES"] == "1"

/// The deterministic sample messages whose encodings are pinned in Fixtures/wire.
private func samples() throws -> [(name: String, comment: String, message: SyncMessage)] {
    let a = deterministicKeys(1).publicKey
    let b = deterministicKeys(2).publicKey
    let c = deterministicKeys(3).publicKey
    let sp1 = SpaceID(hi: 0x0011_2233_4455_6677, lo: 0x8899_aabb_ccdd_eeff)
    let sp2 = SpaceID(hi: 0x0102_0304_0506_0708, lo: 0x090a_0b0c_0d0e_0f10)
    let envelope = try Envelope.decode(try readHex("envelope-sample.hex"))
    return [
        ("hello.hex", "hello: member, receive window 2, spaces [0011…ff, 0102…10]",
         .hello(Hello(role: .member, receiveWindow: 2, spaces: [sp1, sp2]))),
        ("hello-relay.hex", "hello: relay, window 8, no spaces", .hello(Hello(role: .relay, receiveWindow: 8, spaces: []))),
        ("summary.hex", "summary: 2 spaces, authors a(1) b(2) c(3): sp1 {a:3, b:200}, sp2 {c:1, a:70000}",
         .summary([
            SpaceVector(space: sp1, vector: FeedVector([a: 3, b: 200])),
            SpaceVector(space: sp2, vector: FeedVector([c: 1, a: 70_000])),
         ])),
        ("summary-empty-vector.hex", "summary: one space, empty vector", .summary([SpaceVector(space: sp1, vector: FeedVector())])),
        ("hello-head-tags.hex", "hello: member, window 2, spaces [0011…ff], reads head tags (flags 1)",
         .hello(Hello(role: .member, receiveWindow: 2, spaces: [sp1], features: .headTags))),
        ("summary-head-tags.hex",
         "summary with head tags: authors a(1) b(2) c(3): sp1 {a:3 #0102…08, b:200 #a0a1…a7}, sp2 {c:1 no tag, a:70000 #f0f1…f7}",
         .summary([
            SpaceVector(
                space: sp1, vector: FeedVector([a: 3, b: 200]),
                heads: [a: HeadTag(bytes: Array(1...8))!, b: HeadTag(bytes: Array(0xA0...0xA7))!]),
            SpaceVector(space: sp2, vector: FeedVector([c: 1, a: 70_000]), heads: [a: HeadTag(bytes: Array(0xF0...0xF7))!]),
         ])),
        ("envelopes.hex", "envelopes: the sample envelope in its space",
         .envelopes(space: SpaceID(envelope.header)!, envelopes: [envelope])),
        ("ack.hex", "ack: sp1 holds {a:4, b:200}", .ack(space: sp1, holds: FeedVector([a: 4, b: 200]))),
        ("ping.hex", "ping nonce 1", .ping(nonce: 1)),
        ("pong.hex", "pong nonce 300", .pong(nonce: 300)),
        ("error.hex", "error flowControl with a Thai text", .error(code: .flowControl, message: "เกินหน้าต่าง: too many batches")),
        ("bye.hex", "bye", .bye),
        ("hello-head-claims.hex", "hello: member, window 2, spaces [0011…ff], reads head tags, exchanges head claims (flags 3)",
         .hello(Hello(role: .member, receiveWindow: 2, spaces: [sp1], features: [.headTags, .headClaims]))),
        ("claims-digest.hex", "claimsDigest: combined 0x0123456789abcdef, no per-space list",
         .claimsDigest(combined: 0x0123_4567_89ab_cdef, spaces: nil)),
        ("claims-digest-spaces.hex", "claimsDigest: combined 0x0123456789abcdef, sp1 0x1111111111111111, sp2 0xfedcba9876543210",
         .claimsDigest(combined: 0x0123_4567_89ab_cdef, spaces: [sp1: 0x1111_1111_1111_1111, sp2: 0xfedc_ba98_7654_3210])),
        ("claims.hex",
         "claims: sp1, last; one claim by a(1) at 1700000000000 ms: a:3 #0102…08, b:200 #a0a1…a7 (Ed25519, deterministic)",
         .claims(space: sp1, claims: [sampleClaim(sp1)], last: true)),
        ("hello-head-digest.hex", "hello: member, window 2, spaces [0011…ff], head tags, head claims, head digest (flags 7)",
         .hello(Hello(role: .member, receiveWindow: 2, spaces: [sp1], features: [.headTags, .headClaims, .headDigest]))),
        ("heads-digest.hex", "headsDigest 0x0123456789abcdef", .headsDigest(0x0123_4567_89ab_cdef)),
        ("heads.hex", "heads, last: authors a(1) b(2): sp1 {a:3 #0102…08, b:200 #a0a1…a7}",
         .heads([
            SpaceVector(
                space: sp1, vector: FeedVector([a: 3, b: 200]),
                heads: [a: HeadTag(bytes: Array(1...8))!, b: HeadTag(bytes: Array(0xA0...0xA7))!]),
         ], last: true)),
        ("heads-empty.hex", "heads, last, no space (no tag the peer can check)", .heads([], last: true)),
        ("hello-horizons.hex", "hello: relay, window 2, spaces [0011…ff], head tags, head claims, head digest, horizons (flags 15)",
         .hello(Hello(role: .relay, receiveWindow: 2, spaces: [sp1], features: [.headTags, .headClaims, .headDigest, .horizons]))),
        ("horizons.hex", "horizons: authors a(1) b(2): sp1 {a: first held 120, b: first held 2}",
         .horizons([SpaceVector(space: sp1, vector: FeedVector([a: 120, b: 2]))])),
    ]
}

/// A head claim of deterministicKeys(1) over sp1 (Ed25519 signatures are deterministic, so it is pinned).
func sampleClaim(_ space: SpaceID) -> HeadClaim {
    func id(_ first: [UInt8]) -> EnvelopeID { try! EnvelopeID(bytes: first + [UInt8](repeating: 0x55, count: 24)) }
    return HeadClaim.make(
        space: space, signer: deterministicKeys(1), time: 1_700_000_000_000,
        heads: [
            deterministicKeys(1).publicKey: FeedHead(lastSequence: 3, lastID: id(Array(1...8))),
            deterministicKeys(2).publicKey: FeedHead(lastSequence: 200, lastID: id(Array(0xA0...0xA7))),
        ])
}

@Suite struct GoldenWireTests {
    /// A real sealed envelope (deterministic key; its nonce was random once and is now pinned).
    @Test func sampleEnvelopeIsPinned() throws {
        let name = "envelope-sample.hex"
        if updating || !FileManager.default.fileExists(atPath: fixtures.appendingPathComponent(name).path) {
            let k = deterministicKeys(1)
            let key = try SymmetricKey(SecureBytes([UInt8](repeating: 7, count: 32)))
            let h = EnvelopeHeader(
                spaceID: SpaceID(hi: 0x5341_5241_4241_4e00, lo: 1).bytes, author: k.publicKey, seqStart: 1, seqEnd: 2,
                epoch: 1, previousHash: .zero)
            let e = try Envelope.seal(plaintext: Array("two changes".utf8), header: h, key: key, signer: k)
            try writeHex(name, e.bytes, comment: "an envelope sealed by deterministicKeys(1) with key 0x07×32: seq 1…2, epoch 1, plaintext \"two changes\"")
        }
        let e = try Envelope.decode(try readHex(name))
        try e.verifySignature()
        let key = try SymmetricKey(SecureBytes([UInt8](repeating: 7, count: 32)))
        #expect(try e.open(key: key) == Array("two changes".utf8))
    }

    @Test func encodingsMatchTheGoldenVectors() throws {
        for s in try samples() {
            let bytes = s.message.framed()
            if updating { try writeHex(s.name, bytes, comment: s.comment + " (framed)") }
            let golden = try readHex(s.name)
            #expect(bytes == golden, "\(s.name) drifted: regenerate with SARABAN_UPDATE_FIXTURES=1 only for a deliberate format change")
            var d = FrameDecoder()
            d.append(golden)
            let payload = try #require(try d.next())
            #expect(try SyncMessage.decode(payload) == s.message, "\(s.name)")
        }
    }

    @Test func hexHeadersAreReadable() throws {
        // The layout is also spelled out in Sync/PROTOCOL.md; check a few bytes by hand.
        let ping = try readHex("ping.hex")
        #expect(ping == [0, 0, 0, 3, 1, 5, 1])
        let bye = try readHex("bye.hex")
        #expect(bye == [0, 0, 0, 2, 1, 8])
    }
}

@Suite struct WireDecoderTests {
    @Test func everyMessageRoundTrips() throws {
        for s in try samples() {
            #expect(try SyncMessage.decode(s.message.encoded()) == s.message)
        }
    }

    @Test func everyTruncationThrowsTruncatedOrRange() throws {
        for s in try samples() {
            let full = s.message.encoded()
            for n in 0..<full.count {
                do {
                    _ = try SyncMessage.decode(Array(full.prefix(n)))
                    Issue.record("\(s.name) prefix of \(n) bytes decoded")
                } catch {
                    #expect([.truncated, .lengthOutOfRange, .invalidEnvelope].contains(error.code), "\(s.name) at \(n): \(error)")
                }
            }
        }
    }

    @Test func typedErrors() throws {
        func code(_ bytes: [UInt8]) -> DecodingError.Code? {
            do {
                _ = try SyncMessage.decode(bytes)
                return nil
            } catch { return error.code }
        }
        #expect(code([2, 8]) == .unsupportedVersion)
        #expect(code([1, 0]) == .unknownTag)
        #expect(code([1, 99]) == .unknownTag)
        #expect(code([1, 8, 0]) == .trailingBytes)
        #expect(code([1, 5, 0x80, 0]) == .overlongVarint)  // non-minimal varint
        #expect(code([1, 5] + [UInt8](repeating: 0xff, count: 10) + [1]) == .overlongVarint)
        #expect(code([1, 1, 2, 1, 0, 0]) == .invalidValue)  // unknown role
        #expect(code([1, 1, 0, 0, 0, 0]) == .lengthOutOfRange)  // window 0
        #expect(code([1, 1, 0, 65, 0, 0]) == .lengthOutOfRange)  // window 65
        // A hello announcing a million spaces in a 10-byte frame is refused before allocating.
        #expect(code([1, 1, 0, 1, 0, 0xc0, 0x84, 0x3d, 0, 0]) == .lengthOutOfRange)
        // Unsorted / duplicate spaces.
        let sp = SpaceID(hi: 1, lo: 1).bytes
        #expect(code([1, 1, 0, 1, 0, 2] + sp + sp) == .invalidValue)
        // Summary: sequence 0, index out of the table, duplicate author index.
        let a = deterministicKeys(1).publicKey.rawRepresentation
        #expect(code([1, 2, 1] + a + [1] + sp + [1, 0, 0]) == .invalidValue)
        #expect(code([1, 2, 1] + a + [1] + sp + [1, 1, 5]) == .lengthOutOfRange)
        #expect(code([1, 2, 1] + a + [1] + sp + [2, 0, 5, 0, 6]) == .lengthOutOfRange)  // 2 entries, table of 1
        #expect(code([1, 2, 0, 0]) == .lengthOutOfRange)  // a summary lists at least one space
        // Summary with head tags: an entry whose tag is cut short (its count is refused first: an
        // entry takes 10 bytes), and one whose every tag is "unknown" (that is a `summary`).
        #expect(code([1, 10, 1] + a + [1] + sp + [1, 0, 5, 1, 2, 3]) == .lengthOutOfRange)
        #expect(code([1, 10, 1] + a + [1] + sp + [1, 0, 5] + [UInt8](repeating: 0, count: 8)) == .invalidValue)
        #expect(code([1, 10, 1] + a + [1] + sp + [1, 0, 5] + Array(1...8)) == nil)
        // Ack with the same author twice.
        #expect(code([1, 4] + sp + [2] + a + [1] + a + [2]) == .invalidValue)
        // Error text that is not UTF-8.
        #expect(code([1, 7, 0, 1, 2, 0xc3, 0x28]) == .invalidUTF8)
        // Envelopes: zero count, a length below the minimum, and garbage where an envelope should be.
        #expect(code([1, 3] + sp + [0]) == .lengthOutOfRange)
        #expect(code([1, 3] + sp + [1, 10] + [UInt8](repeating: 0, count: 10)) == .lengthOutOfRange)
        let junk = [UInt8](repeating: 0xab, count: Envelope.minimumByteCount)
        var w = BinaryWriter()
        w.raw([1, 3] + sp + [1])
        w.lengthPrefixed(junk)
        #expect(code(w.bytes) == .invalidEnvelope)
    }

    @Test(arguments: [UInt64(11), 12, 13])
    func randomBytesNeverTrap(seed: UInt64) throws {
        var rng = SplitMix64(seed: testSeed(seed))
        let bases = try samples().map { $0.message.encoded() }
        for i in 0..<3000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                if bytes.count >= 2 && i % 4 == 0 { bytes[0] = 1; bytes[1] = UInt8(1 + rng.next() % 8) }
            } else {
                // Mutate a valid message: flip, insert or drop a few bytes.
                bytes = bases[Int(rng.next() % UInt64(bases.count))]
                for _ in 0..<(1 + Int(rng.next() % 3)) {
                    let at = Int(rng.next() % UInt64(max(bytes.count, 1)))
                    switch rng.next() % 3 {
                    case 0 where !bytes.isEmpty: bytes[at] ^= UInt8(truncatingIfNeeded: 1 | rng.next())
                    case 1: bytes.insert(UInt8(truncatingIfNeeded: rng.next()), at: min(at, bytes.count))
                    default: if !bytes.isEmpty { bytes.remove(at: at) }
                    }
                }
            }
            if let m = try? SyncMessage.decode(bytes) {
                // Whatever decodes re-encodes canonically to a message that decodes the same.
                #expect(try SyncMessage.decode(m.encoded()) == m)
            }
        }
    }
}

@Suite struct FrameTests {
    @Test func framesSurviveAnyChunking() throws {
        let messages: [SyncMessage] = [.ping(nonce: 1), .bye, .error(code: .timeout, message: "x"), .pong(nonce: 1 << 40)]
        let stream = messages.flatMap { $0.framed() }
        var rng = SplitMix64(seed: 5)
        for _ in 0..<50 {
            var d = FrameDecoder()
            var got: [SyncMessage] = []
            var i = 0
            while i < stream.count {
                let n = 1 + Int(rng.next() % 7)
                d.append(stream[i..<min(i + n, stream.count)])
                i += n
                while let p = try d.next() { got.append(try SyncMessage.decode(p)) }
            }
            #expect(got == messages)
            try d.finish()
        }
    }

    @Test func oversizedEmptyAndTruncatedFrames() throws {
        var d = FrameDecoder()
        d.append([0x00, 0x40, 0x00, 0x00])  // exactly 4 MiB: allowed, waits for the payload
        #expect(try d.next() == nil)
        #expect(throws: FrameError(.truncated, length: 4 << 20)) { try d.finish() }
        var o = FrameDecoder()
        o.append([0x00, 0x40, 0x00, 0x01])
        #expect(throws: FrameError(.oversized, length: (4 << 20) + 1)) { try o.next() }
        var e = FrameDecoder()
        e.append([0, 0, 0, 0])
        #expect(throws: FrameError(.empty, length: 0)) { try e.next() }
        var t = FrameDecoder()
        t.append([0, 0])
        #expect(try t.next() == nil)
        #expect(throws: FrameError(.truncated, length: nil)) { try t.finish() }
        #expect(Frame.encode([1, 8]) == [0, 0, 0, 2, 1, 8])
    }

    @Test func aBatchNeverExceedsTheFrameLimit() throws {
        // The largest envelope the session may send fits in one frame with its batch header.
        #expect(SyncLimits.maximumEnvelopeByteCount + 2 + 16 + 4 <= Frame.maximumPayloadByteCount)
        // The feed's limit (what the store seals below) is exactly one envelope alone in a frame.
        #expect(
            FeedLimits.maximumEnvelopeByteCount
                == Frame.maximumPayloadByteCount - SyncMessage.envelopesOverhead - 4)  // 4: the envelope's own length prefix
        let l = SyncLimits(batchEnvelopes: 1 << 30, batchBytes: 1 << 30, window: 1000)
        #expect(l.batchBytes == SyncLimits.maximumEnvelopeByteCount && l.window == Hello.maximumWindow)
    }
}
