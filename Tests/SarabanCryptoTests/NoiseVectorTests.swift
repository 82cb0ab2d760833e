import Foundation
import SarabanCrypto
import SarabanTestSupport
import Testing

@Suite struct NoiseVectorTests {
    @Test func everySupportedVectorPasses() throws {
        let report = try NoiseVectors.run(fileAt: noiseVectorPath)
        let data = try #require(FileManager.default.contents(atPath: noiseVectorPath))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let vectors = try #require(json["vectors"] as? [[String: Any]])
        let supported = vectors.filter { NoiseVectors.isSupported($0["protocol_name"] as? String ?? "") }.count
        #expect(report.failures == [])
        #expect(report.failed == 0)
        #expect(supported > 0)
        #expect(report.passed == supported)
        #expect(report.passed + report.skipped == vectors.count)
        // Everything in this file is a pattern we implement, psk modifiers and deferred patterns included.
        #expect(report.skipped == 0)
        #expect(report.description == "59 passed, 0 failed")
    }

    /// The runner can fail: one altered handshake hash is one failed vector, named.
    @Test func anAlteredHandshakeHashFailsThatVector() throws {
        var text = try String(contentsOfFile: noiseVectorPath, encoding: .utf8)
        let r0 = try #require(text.range(of: "\"handshake_hash\": \""))
        let c = text[r0.upperBound]
        text.replaceSubrange(r0.upperBound...r0.upperBound, with: c == "0" ? "1" : "0")
        let report = try NoiseVectors.run(json: Data(text.utf8))
        #expect(report.description == "58 passed, 1 failed")
        #expect(report.failures.count == 1)
        #expect(report.failures.first?.hasSuffix("handshake hash mismatch") == true)
    }

    @Test func anUnreadableOrMalformedFileIsAnError() {
        #expect(throws: TestFailure.self) { try NoiseVectors.run(fileAt: "/nonexistent/vectors.json") }
        #expect(throws: TestFailure.self) { try NoiseVectors.run(json: Data("[1,2]".utf8)) }
    }
}
