import SarabanCrypto
import Testing

@Suite struct NodeIDTests {
    let key = try! SigningKeyPair(seed: SecureBytes([UInt8](repeating: 7, count: 32))).publicKey

    @Test func roundTripsThroughText() throws {
        let id = NodeID(publicKey: key)
        #expect(id.text.hasPrefix("sb"))
        #expect(id.text.count == NodeID.textLength)
        #expect(id.text == id.text.lowercased())
        #expect(try NodeID(parsing: id.text) == id)
        #expect(try NodeID(parsing: "  " + id.text.uppercased() + "\n") == id)
        #expect(id.publicKey == key)
        #expect(id.replicaBytes == Array(key.rawRepresentation.prefix(16)))
        for _ in 0..<20 {
            let other = SigningKeyPair.generate().publicKey.nodeID
            #expect(try NodeID(parsing: other.text) == other)
        }
    }

    @Test func everyOneCharacterTypoIsCaughtByTheChecksum() throws {
        let text = Array(NodeID(publicKey: key).text)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        for position in 2..<text.count {
            var typo = text
            let index = alphabet.firstIndex(of: text[position]) ?? 0
            typo[position] = alphabet[(index + 1 + position % 31) % 32]
            #expect(errorCode { try NodeID(parsing: String(typo)) } == .nodeIDChecksumMismatch, "position \(position)")
        }
        // Swapping two different neighbouring characters is a typo too.
        var swapped = text
        if let i = (2..<(text.count - 1)).first(where: { text[$0] != text[$0 + 1] }) {
            swapped.swapAt(i, i + 1)
            #expect(errorCode { try NodeID(parsing: String(swapped)) } == .nodeIDChecksumMismatch)
        }
    }

    @Test func malformedTextIsDistinctFromATypo() {
        let text = NodeID(publicKey: key).text
        #expect(errorCode { try NodeID(parsing: String(text.dropLast())) } == .nodeIDMalformed)
        #expect(errorCode { try NodeID(parsing: text + "a") } == .nodeIDMalformed)
        #expect(errorCode { try NodeID(parsing: "xx" + text.dropFirst(2)) } == .nodeIDMalformed)
        #expect(errorCode { try NodeID(parsing: String(text.dropLast()) + "0") } == .nodeIDMalformed)
        #expect(errorCode { try NodeID(parsing: String(text.dropLast()) + "é") } == .nodeIDMalformed)
        #expect(errorCode { try NodeID(parsing: "") } == .nodeIDMalformed)
    }
}
