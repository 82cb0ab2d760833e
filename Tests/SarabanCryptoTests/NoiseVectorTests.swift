import Foundation
import SarabanCrypto
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
    }

    @Test func unreadableFileIsATypedError() {
        #expect(errorCode { try NoiseVectors.run(fileAt: "/nonexistent/vectors.json") } == .vectorFileUnreadable)
        #expect(errorCode { try NoiseVectors.run(json: Data("[1,2]".utf8)) } == .vectorFileMalformed)
    }
}
