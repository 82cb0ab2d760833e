import SarabanCrypto
import Testing

@Suite struct PrimitiveTests {
    @Test func sodiumInitialisesAndRandomBytesHaveTheRequestedLength() throws {
        try Sodium.initialize()
        try Sodium.initialize()  // idempotent
        #expect(Sodium.randomBytes(0) == [])
        let a = Sodium.randomBytes(32)
        let b = Sodium.randomBytes(32)
        #expect(a.count == 32)
        #expect(a != b)
    }

    @Test func constantTimeCompare() {
        #expect(Sodium.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!Sodium.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!Sodium.constantTimeEqual([1, 2, 3], [1, 2]))
        #expect(Sodium.constantTimeEqual(SecureBytes([9, 9]), SecureBytes([9, 9])))
        #expect(!Sodium.constantTimeEqual(SecureBytes([9, 9]), SecureBytes([9, 8])))
    }

    @Test func blake2bKnownAnswer() throws {
        // RFC 7693, Appendix A: BLAKE2b-512("abc").
        let digest = try BLAKE2b.hash(Array("abc".utf8), outputLength: 64)
        #expect(
            hex(digest)
                == "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
        )
    }

    @Test func blake2bStreamingMatchesOneShotAndKeysMatter() throws {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let key = SecureBytes(randomCount: 32)
        let hasher = try BLAKE2b.Hasher(outputLength: 48, key: key)
        hasher.update(data[0..<10])
        hasher.update(data[10..<999])
        let partial = hasher.finalize()
        hasher.update(data[999...])
        let full = hasher.finalize()
        #expect(full == (try BLAKE2b.hash(data, outputLength: 48, key: key)))
        #expect(partial == (try BLAKE2b.hash(data[0..<999], outputLength: 48, key: key)))
        #expect(full != (try BLAKE2b.hash(data, outputLength: 48)))
        #expect(full.count == 48)
    }

    @Test func blake2bRejectsOutOfRangeLengths() {
        #expect(errorCode { try BLAKE2b.hash([1], outputLength: 15) } == .invalidParameter)
        #expect(errorCode { try BLAKE2b.hash([1], outputLength: 65) } == .invalidParameter)
        #expect(errorCode { try BLAKE2b.Hasher(outputLength: 8) } == .invalidParameter)
        #expect(errorCode { try BLAKE2b.hash([1], key: SecureBytes(randomCount: 65)) } == .invalidLength)
        #expect(errorCode { try BLAKE2b.hash([1], outputLength: 16) } == nil)
    }

    @Test func ed25519SignVerifyAndSeedRoundTrip() throws {
        let pair = SigningKeyPair.generate()
        let message = Array("approve memo 42".utf8)
        let signature = pair.sign(message)
        #expect(signature.count == 64)
        #expect(pair.publicKey.isValidSignature(signature, for: message))
        #expect(!pair.publicKey.isValidSignature(signature, for: Array("approve memo 43".utf8)))
        #expect(!SigningKeyPair.generate().publicKey.isValidSignature(signature, for: message))
        #expect(!pair.publicKey.isValidSignature(Array(signature.prefix(63)), for: message))

        let restored = try SigningKeyPair(seed: pair.seed)
        #expect(restored.publicKey == pair.publicKey)
        #expect(restored.sign(message) == signature)  // Ed25519 is deterministic
        #expect(errorCode { try SigningKeyPair(seed: SecureBytes(randomCount: 31)) } == .invalidLength)
        #expect(errorCode { try SigningPublicKey(rawRepresentation: [1, 2, 3]) } == .invalidLength)
    }

    @Test func ed25519ToX25519ConversionAgreesOnBothSides() throws {
        let a = SigningKeyPair.generate()
        let b = SigningKeyPair.generate()
        let ax = try a.x25519KeyPair()
        let bx = try b.x25519KeyPair()
        #expect(ax.publicKey == (try a.publicKey.x25519PublicKey()))
        let ab = try ax.sharedSecret(with: try b.publicKey.x25519PublicKey())
        let ba = try bx.sharedSecret(with: try a.publicKey.x25519PublicKey())
        #expect(Sodium.constantTimeEqual(ab, ba))
        // A low-order point (all zeros) is refused.
        #expect(errorCode { try ax.sharedSecret(with: [UInt8](repeating: 0, count: 32)) } == .invalidKey)
    }

    @Test func aeadRoundTripAndTamperDetection() throws {
        let key = SymmetricKey.generate()
        let nonce = XChaCha20Poly1305.randomNonce()
        let message = Array("minutes of the board meeting".utf8)
        let ad = Array("header".utf8)
        let sealed = try XChaCha20Poly1305.seal(message, key: key, nonce: nonce, associatedData: ad)
        #expect(sealed.count == message.count + 16)
        #expect(try XChaCha20Poly1305.open(sealed, key: key, nonce: nonce, associatedData: ad) == message)

        var flipped = sealed
        flipped[3] ^= 1
        #expect(
            errorCode { try XChaCha20Poly1305.open(flipped, key: key, nonce: nonce, associatedData: ad) }
                == .authenticationFailed)
        #expect(
            errorCode { try XChaCha20Poly1305.open(sealed, key: key, nonce: nonce, associatedData: [1]) }
                == .authenticationFailed)
        #expect(
            errorCode { try XChaCha20Poly1305.open(sealed, key: .generate(), nonce: nonce, associatedData: ad) }
                == .authenticationFailed)
        #expect(
            errorCode { try XChaCha20Poly1305.seal(message, key: key, nonce: [1, 2], associatedData: ad) }
                == .invalidLength)
        #expect(errorCode { try SymmetricKey(SecureBytes(randomCount: 16)) } == .invalidLength)
        #expect(
            try XChaCha20Poly1305.open(try XChaCha20Poly1305.seal([], key: key, nonce: nonce), key: key, nonce: nonce)
                == [])
    }

    @Test func sealedBoxOpensOnlyForItsRecipient() throws {
        let recipient = SigningKeyPair.generate()
        let other = SigningKeyPair.generate()
        let spaceKey = Sodium.randomBytes(32)
        let box = try SealedBox.seal(spaceKey, to: recipient.publicKey)
        #expect(box.count == spaceKey.count + SealedBox.overhead)
        #expect(try SealedBox.open(box, with: recipient) == spaceKey)
        #expect(errorCode { try SealedBox.open(box, with: other) } == .authenticationFailed)
        var tampered = box
        tampered[tampered.count - 1] ^= 0x80
        #expect(errorCode { try SealedBox.open(tampered, with: recipient) } == .authenticationFailed)
        #expect(errorCode { try SealedBox.open([1, 2, 3], with: recipient) } == .authenticationFailed)
    }

    /// The seeded seal (a node's injected randomness) is `crypto_box_seal`'s format: libsodium's
    /// `crypto_box_seal_open` opens it; the same seed gives the same box, another seed another.
    @Test func aBoxSealedFromASeedOpensAsASealedBox() throws {
        let recipient = SigningKeyPair.generate()
        let other = SigningKeyPair.generate()
        let message = Array("กุญแจหนังสือ dispatch key".utf8)
        let seed = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 1) }
        let box = try SealedBox.seal(message, to: recipient.publicKey, ephemeralSeed: seed)
        #expect(box.count == message.count + SealedBox.overhead)
        #expect(try SealedBox.open(box, with: recipient) == message)
        #expect(errorCode { try SealedBox.open(box, with: other) } == .authenticationFailed)
        #expect(try SealedBox.seal(message, to: recipient.publicKey, ephemeralSeed: seed) == box)
        var seed2 = seed
        seed2[0] ^= 1
        let box2 = try SealedBox.seal(message, to: recipient.publicKey, ephemeralSeed: seed2)
        #expect(box2 != box)
        #expect(try SealedBox.open(box2, with: recipient) == message)
        #expect(errorCode { try SealedBox.seal(message, to: recipient.publicKey, ephemeralSeed: [1, 2]) } == .invalidLength)
    }

    @Test func secretsNeverPrintTheirBytes() throws {
        let seedBytes = (0..<32).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        let seed = SecureBytes(seedBytes)
        let pair = try SigningKeyPair(seed: seed)
        let key = try SymmetricKey(SecureBytes(seedBytes))
        let x = try pair.x25519KeyPair()
        let secretHexes = [hex(seedBytes), hex(x.secretKey.copyBytes())]
        let texts = [
            "\(seed)", String(reflecting: seed), "\(pair)", String(reflecting: pair), "\(key)", String(reflecting: key),
            "\(x)", String(reflecting: x), "\(pair.seed)",
        ]
        for text in texts {
            for secret in secretHexes {
                #expect(!text.contains(secret))
                #expect(!text.contains(String(secret.prefix(8))))
            }
            #expect(!text.contains("\(seedBytes)"))
        }
        #expect("\(seed)" == "<redacted 32 bytes>")
        #expect(String(reflecting: seed) == "<redacted 32 bytes>")
        #expect("\(pair)".contains(pair.publicKey.nodeID.text))
    }
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
}
