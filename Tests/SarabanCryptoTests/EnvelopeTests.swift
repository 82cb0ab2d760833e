import SarabanCrypto
import Testing

/// One author writing a chain of envelopes in one space.
struct Author {
    let identity = SigningKeyPair.generate()
    let space: [UInt8]
    let key: SymmetricKey
    var epoch: UInt32 = 1
    var nextSeq: UInt64 = 1
    var previous = EnvelopeID.zero

    init(space: [UInt8] = Sodium.randomBytes(16), key: SymmetricKey = .generate()) {
        self.space = space
        self.key = key
    }

    /// The next envelope carrying `count` changes.
    mutating func next(count: UInt64 = 4, plaintext: [UInt8]? = nil) throws -> Envelope {
        let header = EnvelopeHeader(
            spaceID: space, author: identity.publicKey, seqStart: nextSeq, seqEnd: nextSeq + count - 1, epoch: epoch,
            previousHash: previous)
        let envelope = try Envelope.seal(
            plaintext: plaintext ?? Array("changes \(nextSeq)…\(nextSeq + count - 1)".utf8), header: header, key: key,
            signer: identity)
        nextSeq += count
        previous = envelope.id
        return envelope
    }
}

@Suite struct EnvelopeTests {
    @Test func sealDecodeVerifyOpenRoundTrip() throws {
        var author = Author()
        for size in [0, 1, 100, 1024, 64 * 1024, 64 * 1024 + 17] {
            let plaintext = Sodium.randomBytes(size)
            let envelope = try author.next(plaintext: plaintext)
            let decoded = try Envelope.decode(envelope.bytes)
            #expect(decoded == envelope)
            #expect(decoded.id == envelope.id)
            #expect(decoded.header == envelope.header)
            // Read back from a store with the id it computed: the same envelope, no hashing.
            #expect(try Envelope.decode(envelope.bytes, storedID: envelope.id) == decoded)
            try decoded.verifySignature()
            #expect(try decoded.open(key: author.key) == plaintext)
            // The id is BLAKE2b-256 of everything before the signature, and the signature signs it.
            let signed = Array(envelope.bytes.dropLast(64))
            #expect(envelope.id.bytes == (try BLAKE2b.hash(signed, outputLength: 32)))
            #expect(author.identity.publicKey.isValidSignature(envelope.signature, for: envelope.id.bytes))
        }
    }

    @Test func paddingHidesExactLengths() throws {
        var author = Author()
        var sizes: Set<Int> = []
        for size in 1000...1100 {
            sizes.insert(try author.next(plaintext: [UInt8](repeating: 1, count: size)).bytes.count)
        }
        // 101 different plaintext lengths fall into a handful of buckets.
        #expect(sizes.count <= 4)
        // Overhead of padding stays small for a 64-change batch of 1 KiB changes.
        let big = try author.next(plaintext: [UInt8](repeating: 2, count: 64 * 1024)).bytes.count
        #expect(Double(big) < Double(64 * 1024) * 1.13)
    }

    @Test func flippingAnyBitOfAnyFieldIsRejected() throws {
        var author = Author()
        let envelope = try author.next(plaintext: Sodium.randomBytes(300))
        let n = envelope.bytes.count
        let fields: [(String, Int)] = [
            ("version", 0), ("spaceID", 1), ("spaceID end", 16), ("author", 17), ("author end", 48), ("seqStart", 49),
            ("seqStart low", 56), ("seqEnd", 57), ("seqEnd low", 64), ("epoch", 65), ("epoch low", 68),
            ("previousHash", 73),
            ("previousHash end", 100), ("nonce", 101), ("nonce end", 124), ("ciphertext", 125),
            ("ciphertext mid", (125 + n - 64) / 2),
            ("tag", n - 65), ("signature", n - 64), ("signature end", n - 1),
        ]
        for (name, offset) in fields {
            for bit in [0, 7] {
                var bytes = envelope.bytes
                bytes[offset] ^= UInt8(1 << bit)
                let decoded = try? Envelope.decode(bytes)
                // A relay (no key) rejects it: either it does not decode or the signature fails.
                #expect(decoded.map { !$0.isSignatureValid() } ?? true, "\(name) bit \(bit)")
                if let decoded {
                    #expect(errorCode { try decoded.verifySignature() } == .feedBadSignature, "\(name) bit \(bit)")
                    // A member (with the key) also rejects it when opening, unless only the signature changed.
                    if offset < n - 64 {
                        #expect(errorCode { try decoded.open(key: author.key) } != nil, "\(name) bit \(bit)")
                    }
                }
            }
        }
    }

    @Test func strictDecodingGivesTypedErrors() throws {
        var author = Author()
        let envelope = try author.next()
        #expect(errorCode { try Envelope.decode([]) } == .envelopeMalformed)
        #expect(errorCode { try Envelope.decode(Array(envelope.bytes.dropLast())) } == .envelopeMalformed)
        #expect(errorCode { try Envelope.decode(envelope.bytes + [0]) } == .envelopeMalformed)
        var version = envelope.bytes
        version[0] = 2
        #expect(errorCode { try Envelope.decode(version) } == .envelopeUnsupportedVersion)
        #expect(
            errorCode { try Envelope.decode([UInt8](repeating: 0, count: Envelope.maximumByteCount + 1)) }
                == .envelopeTooLarge)
        // seqStart 0 is invalid.
        var zeroSeq = envelope.bytes
        for i in 49..<57 { zeroSeq[i] = 0 }
        #expect(errorCode { try Envelope.decode(zeroSeq) } == .envelopeMalformed)
        #expect(errorCode { try envelope.open(key: .generate()) } == .authenticationFailed)
        // A stored id skips only the hash: every structural check still runs.
        for bad in [[], Array(envelope.bytes.dropLast()), version, zeroSeq] {
            #expect(errorCode { try Envelope.decode(bad, storedID: envelope.id) } == errorCode { try Envelope.decode(bad) })
        }
    }

    @Test func sealRefusesBadHeaders() throws {
        let author = Author()
        let other = SigningKeyPair.generate()
        func header(seqStart: UInt64 = 1, seqEnd: UInt64 = 1, previous: EnvelopeID = .zero, space: [UInt8]? = nil)
            -> EnvelopeHeader
        {
            EnvelopeHeader(
                spaceID: space ?? author.space, author: author.identity.publicKey, seqStart: seqStart, seqEnd: seqEnd,
                epoch: 1,
                previousHash: previous)
        }
        #expect(
            errorCode { try Envelope.seal(plaintext: [], header: header(), key: author.key, signer: other) }
                == .envelopeMalformed)
        #expect(
            errorCode {
                try Envelope.seal(plaintext: [], header: header(seqStart: 0), key: author.key, signer: author.identity)
            } == .envelopeMalformed)
        #expect(
            errorCode {
                try Envelope.seal(
                    plaintext: [], header: header(seqStart: 3, seqEnd: 2), key: author.key, signer: author.identity)
            } == .envelopeMalformed)
        #expect(
            errorCode {
                try Envelope.seal(plaintext: [], header: header(seqStart: 2), key: author.key, signer: author.identity)
            } == .envelopeMalformed)
        #expect(
            errorCode {
                try Envelope.seal(plaintext: [], header: header(space: [1]), key: author.key, signer: author.identity)
            } == .envelopeMalformed)
    }
}

@Suite struct FeedVerifierTests {
    @Test func acceptsAChainAndTracksTheHead() throws {
        var author = Author()
        var verifier = FeedVerifier(spaceID: author.space, knownEpochs: [1])
        var last: Envelope?
        for _ in 0..<5 {
            let e = try author.next()
            try verifier.accept(e)
            last = e
        }
        let head = verifier.head(of: author.identity.publicKey)
        #expect(head.lastSequence == 20)
        #expect(head.lastID == last?.id)
        // A verifier resumed from the persisted head accepts the continuation.
        var resumed = FeedVerifier(spaceID: author.space, knownEpochs: [1], heads: [author.identity.publicKey: head])
        try resumed.accept(try author.next())
    }

    @Test func replayIsDetected() throws {
        var author = Author()
        var verifier = FeedVerifier(spaceID: author.space, knownEpochs: [1])
        let e1 = try author.next()
        try verifier.accept(e1)
        try verifier.accept(try author.next())
        #expect(errorCode { try verifier.accept(e1) } == .feedReplay)
    }

    @Test func gapIsDetectedAndChangesNothing() throws {
        var author = Author()
        var verifier = FeedVerifier(spaceID: author.space, knownEpochs: [1])
        let e1 = try author.next()
        let e2 = try author.next()
        let e3 = try author.next()
        try verifier.accept(e1)
        #expect(errorCode { try verifier.accept(e3) } == .feedGap)
        #expect(verifier.head(of: author.identity.publicKey).lastSequence == 4)
        try verifier.accept(e2)
        try verifier.accept(e3)
    }

    @Test func reorderedOverlappingEnvelopeIsDetected() throws {
        var author = Author()
        var verifier = FeedVerifier(spaceID: author.space, knownEpochs: [1])
        let e1 = try author.next(count: 4)  // 1…4
        try verifier.accept(e1)
        try verifier.accept(try author.next(count: 4))  // 5…8
        // A signed envelope for 3…6, built on e1: it overlaps accepted ranges without being one of them.
        let overlapping = try Envelope.seal(
            plaintext: [1],
            header: EnvelopeHeader(
                spaceID: author.space, author: author.identity.publicKey, seqStart: 3, seqEnd: 6, epoch: 1,
                previousHash: e1.id),
            key: author.key, signer: author.identity)
        #expect(errorCode { try verifier.accept(overlapping) } == .feedOverlap)
    }

    @Test func forkAtAnAcceptedPositionCarriesProof() throws {
        var author = Author()
        var verifier = FeedVerifier(spaceID: author.space, knownEpochs: [1])
        try verifier.accept(try author.next())
        var branch = author  // the author keeps a copy of its state and equivocates
        let e2 = try author.next()
        let e2prime = try branch.next(plaintext: Array("a different history".utf8))
        try verifier.accept(e2)
        let error = cryptoError { try verifier.accept(e2prime) }
        #expect(error?.code == .feedFork)
        let proof = try #require(error?.forkProof)
        #expect(proof.acceptedID == e2.id)
        #expect(proof.conflictingID == e2prime.id)
        #expect(proof.sequence == e2.header.seqStart)
        #expect(proof.author == author.identity.publicKey)
        // Both halves of the proof are validly signed by the author.
        #expect(e2.isSignatureValid() && e2prime.isSignatureValid())
    }

    @Test func forkOnTopOfADifferentPredecessorCarriesProof() throws {
        var author = Author()
        var verifier = FeedVerifier(spaceID: author.space, knownEpochs: [1])
        try verifier.accept(try author.next())
        var branch = author
        let e2 = try author.next()
        _ = try author.next()
        let e2prime = try branch.next(plaintext: [9])
        let e3prime = try branch.next()
        try verifier.accept(e2)
        _ = e2prime
        let error = cryptoError { try verifier.accept(e3prime) }
        #expect(error?.code == .feedFork)
        #expect(error?.forkProof?.acceptedID == e2.id)
        #expect(error?.forkProof?.conflictingID == e2prime.id)
    }

    @Test func forgedAuthorIsRejected() throws {
        var victim = Author()
        let mallory = SigningKeyPair.generate()
        var verifier = FeedVerifier(spaceID: victim.space, knownEpochs: [1])
        let genuine = try victim.next()
        // Mallory takes a genuine envelope and re-signs it with her own key, leaving the victim as author.
        var bytes = genuine.bytes
        let signedLength = bytes.count - 64
        let digest = try BLAKE2b.hash(bytes[0..<signedLength], outputLength: 32)
        bytes.replaceSubrange(signedLength..., with: mallory.sign(digest))
        let forged = try Envelope.decode(bytes)
        #expect(errorCode { try forged.verifySignature() } == .feedBadSignature)
        #expect(errorCode { try verifier.accept(forged) } == .feedBadSignature)
        // Mallory cannot seal as the victim either.
        #expect(
            errorCode {
                try Envelope.seal(plaintext: [], header: genuine.header, key: victim.key, signer: mallory)
            } == .envelopeMalformed)
        try verifier.accept(genuine)
    }

    @Test func wrongEpochAndWrongSpaceAreRejected() throws {
        var author = Author()
        author.epoch = 2
        var verifier = FeedVerifier(spaceID: author.space, knownEpochs: [1])
        let e1 = try author.next()
        #expect(errorCode { try verifier.accept(e1) } == .feedWrongEpoch)
        verifier.knownEpochs.insert(2)
        var elsewhere = FeedVerifier(spaceID: Sodium.randomBytes(16), knownEpochs: [1, 2])
        #expect(errorCode { try elsewhere.accept(e1) } == .feedWrongSpace)
        try verifier.accept(e1)
    }

    @Test func eachFailureHasItsOwnCode() throws {
        var author = Author()
        var verifier = FeedVerifier(spaceID: author.space, knownEpochs: [1])
        let e1 = try author.next(count: 4)
        var branch = author
        let e2 = try author.next(count: 4)
        let e2prime = try branch.next(count: 4, plaintext: [7])
        let e3 = try author.next(count: 4)
        let e4 = try author.next(count: 4)
        try verifier.accept(e1)
        try verifier.accept(e2)
        try verifier.accept(e3)
        var codes: [CryptoError.Code?] = []
        codes.append(errorCode { try verifier.accept(e2) })  // replay
        codes.append(
            errorCode {
                try verifier.accept(
                    try Envelope.seal(
                        plaintext: [],
                        header: EnvelopeHeader(
                            spaceID: author.space, author: author.identity.publicKey, seqStart: 6, seqEnd: 9, epoch: 1,
                            previousHash: e1.id), key: author.key, signer: author.identity))
            })  // reordered / overlap
        codes.append(errorCode { try verifier.accept(try author.next()) })  // gap: e4 was skipped
        codes.append(errorCode { try verifier.accept(e2prime) })  // fork
        var forgedBytes = e4.bytes
        forgedBytes.replaceSubrange(
            (forgedBytes.count - 64)..., with: SigningKeyPair.generate().sign(e4.id.bytes))
        codes.append(errorCode { try verifier.accept(try Envelope.decode(forgedBytes)) })  // forged author
        var wrongEpoch = Author(space: author.space, key: author.key)
        wrongEpoch.epoch = 9
        codes.append(errorCode { try verifier.accept(try wrongEpoch.next()) })  // wrong epoch
        #expect(codes == [.feedReplay, .feedOverlap, .feedGap, .feedFork, .feedBadSignature, .feedWrongEpoch])
        #expect(Set(codes).count == 6)
        try verifier.accept(e4)
    }
}
