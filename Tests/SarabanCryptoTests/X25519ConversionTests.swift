@testable import SarabanCrypto
import Testing

/// `SigningPublicKey.x25519PublicKey()` remembers its results (a relay converts every peer's key
/// at every handshake). Remembering must not change an answer, keep a refusal, or grow without bound.
@Suite(.serialized) struct X25519ConversionTests {
    @Test func aRememberedConversionIsTheConversion() throws {
        let a = SigningKeyPair.generate()
        let b = SigningKeyPair.generate()
        SigningPublicKey.conversions.withLock { $0.removeAll() }
        let first = try a.publicKey.x25519PublicKey()
        #expect(SigningPublicKey.conversions.withLock { $0[a.publicKey] } == first)
        let again = try a.publicKey.x25519PublicKey()
        #expect(again == first)
        // The remembered key still agrees with the secret half: both sides derive one secret.
        let ab = try a.x25519KeyPair().sharedSecret(with: try b.publicKey.x25519PublicKey())
        let ba = try b.x25519KeyPair().sharedSecret(with: again)
        #expect(Sodium.constantTimeEqual(ab, ba))
    }

    @Test func aRefusedKeyIsRefusedEveryTimeAndNeverRemembered() throws {
        // A small-order point (the identity element, encoded as y = 1) has no usable X25519 key.
        var bytes = [UInt8](repeating: 0, count: 32)
        bytes[0] = 1
        let bad = try SigningPublicKey(rawRepresentation: bytes)
        for _ in 0..<2 {
            #expect(throws: CryptoError.self) { try bad.x25519PublicKey() }
        }
        #expect(SigningPublicKey.conversions.withLock { $0[bad] } == nil)
    }

    @Test func rememberedConversionsAreBounded() throws {
        SigningPublicKey.conversions.withLock { $0.removeAll() }
        for _ in 0..<(SigningPublicKey.conversionsKept + 5) {
            _ = try SigningKeyPair.generate().publicKey.x25519PublicKey()
        }
        let kept = SigningPublicKey.conversions.withLock { $0.count }
        #expect(kept >= 1)
        #expect(kept <= SigningPublicKey.conversionsKept)
    }
}
