import SarabanCore
import SarabanCrypto
import Testing

@testable import SarabanFeed

@Suite struct EnvelopePayloadTests {
    static let author = try! SigningKeyPair(seed: SecureBytes([UInt8](repeating: 7, count: 32)))
    static let key = try! SymmetricKey(SecureBytes([UInt8](repeating: 9, count: 32)))

    static func changes(_ seqs: ClosedRange<UInt64>, author: SigningKeyPair = author) -> [Change] {
        seqs.map { seq in
            Change(
                author: ReplicaID(bytes: author.publicKey.rawRepresentation), seq: seq, startOp: 10 * seq, time: 0,
                deps: VersionVector(), ops: [.createDocument(kind: "memo \(seq)")])
        }
    }

    static func seal(_ plain: [UInt8], _ seqs: ClosedRange<UInt64>) throws -> Envelope {
        let h = EnvelopeHeader(
            spaceID: [UInt8](repeating: 1, count: 16), author: author.publicKey, seqStart: seqs.lowerBound,
            seqEnd: seqs.upperBound, epoch: 0, previousHash: .zero)
        return try Envelope.seal(plaintext: plain, header: h, key: key, signer: author)
    }

    @Test func roundTripKeepsTheSealedBytes() throws {
        let cs = Self.changes(1...3)
        let e = try Self.seal(EnvelopePayload.encode(changes: cs), 1...3)
        let opened = try EnvelopePayload.open(e, key: Self.key)
        #expect(opened.changes == cs)
        #expect(opened.bytes == cs.map { $0.encoded() })
    }

    @Test func lengthsAreVarints() {
        // One change of n bytes: a one-byte length below 128, then the bytes themselves.
        let c = Self.changes(1...1)[0]
        let payload = EnvelopePayload.encode(changes: [c])
        #expect(payload.count == c.encoded().count + 1)
        #expect(Int(payload[0]) == c.encoded().count)
    }

    @Test func contentsMustMatchTheHeader() throws {
        // Changes 1…2 sealed under a header claiming 1…3.
        let short = try Self.seal(EnvelopePayload.encode(changes: Self.changes(1...2)), 1...3)
        #expect { try EnvelopePayload.open(short, key: Self.key) } throws: { ($0 as? EnvelopeError)?.code == .invalidContents }
        // Another author's changes under this author's header.
        let other = try SigningKeyPair(seed: SecureBytes([UInt8](repeating: 8, count: 32)))
        let foreign = try Self.seal(EnvelopePayload.encode(changes: Self.changes(1...1, author: other)), 1...1)
        #expect { try EnvelopePayload.open(foreign, key: Self.key) } throws: { ($0 as? EnvelopeError)?.code == .invalidContents }
        // Garbage that does not decode.
        let junk = try Self.seal([0x05, 1, 2], 1...1)
        #expect { try EnvelopePayload.open(junk, key: Self.key) } throws: { ($0 as? EnvelopeError)?.code == .invalidContents }
    }

    @Test func wrongKeyIsUndecryptable() throws {
        let e = try Self.seal(EnvelopePayload.encode(changes: Self.changes(1...1)), 1...1)
        let other = try SymmetricKey(SecureBytes([UInt8](repeating: 4, count: 32)))
        #expect { try EnvelopePayload.open(e, key: other) } throws: { ($0 as? EnvelopeError)?.code == .undecryptable }
    }
}
