import Foundation
import SarabanCore
import SarabanCrypto
import SarabanSim
import SarabanSync
import Testing

/// The fuzzers' seed corpora stay valid encodings of the current formats (regenerate them with
/// `saraban-sim --write-fuzz-corpus Fixtures/fuzz` when a format changes).
@Suite struct CorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/fuzz")

    func files(_ target: String) throws -> [[UInt8]] {
        let dir = Self.root.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        return try names.map { [UInt8](try Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    @Test func changeSeedsDecodeAndRoundTrip() throws {
        let seeds = try files("change")
        #expect(seeds.count >= 10)
        for b in seeds {
            let c = try Change.decode(b)
            #expect(c.encoded() == b)
        }
    }

    @Test func envelopeSeedsDecodeVerifyAndOpen() throws {
        let seeds = try files("envelope")
        #expect(!seeds.isEmpty)
        let key = try SymmetricKey(SecureBytes([UInt8](repeating: 3, count: 32)))
        for b in seeds {
            let e = try Envelope.decode(b)
            try e.verifySignature()
            #expect(!(try EnvelopePayload.open(e, key: key)).changes.isEmpty)
        }
    }

    @Test func frameSeedsDecode() throws {
        let seeds = try files("frame")
        #expect(seeds.count >= 9)
        for b in seeds {
            var d = FrameDecoder()
            d.append(b)
            var n = 0
            while let p = try d.next() {
                _ = try SyncMessage.decode(p)
                n += 1
            }
            try d.finish()
            #expect(n >= 1)
        }
    }

    @Test func noiseSeedsExist() throws {
        #expect(try files("noise").count >= 2)
    }
}
