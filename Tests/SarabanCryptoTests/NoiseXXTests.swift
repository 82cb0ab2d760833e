import SarabanCrypto
import Testing

@Suite struct NoiseXXTests {
    /// Runs the three XX messages between two parties in memory.
    func handshake(_ client: inout NoiseXX, _ server: inout NoiseXX, payloads: [[UInt8]] = [[], [], []]) throws
        -> [[UInt8]]
    {
        var received: [[UInt8]] = []
        received.append(try server.readMessage(try client.writeMessage(payloads[0])))
        received.append(try client.readMessage(try server.writeMessage(payloads[1])))
        received.append(try server.readMessage(try client.writeMessage(payloads[2])))
        return received
    }

    @Test func twoIdentitiesAgreeOnKeysAndLearnEachOthersNodeID() throws {
        let alice = SigningKeyPair.generate()
        let bob = SigningKeyPair.generate()
        var client = try NoiseXX(role: .initiator, identity: alice, trusting: [bob.publicKey.nodeID])
        var server = try NoiseXX(role: .responder, identity: bob, trusting: [alice.publicKey.nodeID])
        let payloads = [Array("hello".utf8), Array("version 1".utf8), Array("ok".utf8)]
        #expect(try handshake(&client, &server, payloads: payloads) == payloads)
        #expect(client.isComplete && server.isComplete)

        var a = try client.finish()
        var b = try server.finish()
        #expect(a.peer == bob.publicKey.nodeID)
        #expect(b.peer == alice.publicKey.nodeID)
        #expect(a.handshakeHash == b.handshakeHash)
        #expect(a.handshakeHash.count == 64)

        for i in 0..<3 {
            let m = Array("message \(i)".utf8)
            #expect(try b.receive.decrypt(try a.send.encrypt(m)) == m)
            #expect(try a.receive.decrypt(try b.send.encrypt(m)) == m)
        }
        // The two directions use different keys.
        var probe = a.send
        let c = try probe.encrypt([1, 2, 3])
        #expect(errorCode { try a.receive.decrypt(c) } == .authenticationFailed)
    }

    @Test func responderRefusesAnUntrustedInitiator() throws {
        let alice = SigningKeyPair.generate()
        let bob = SigningKeyPair.generate()
        var client = try NoiseXX(role: .initiator, identity: alice, trust: { _ in true })
        var server = try NoiseXX(
            role: .responder, identity: bob, trusting: [SigningKeyPair.generate().publicKey.nodeID])
        _ = try server.readMessage(try client.writeMessage())
        _ = try client.readMessage(try server.writeMessage())
        let m3 = try client.writeMessage()
        #expect(errorCode { try server.readMessage(m3) } == .peerUntrusted)
        #expect(server.peer == nil)
        #expect(errorCode { try server.finish() } == .noiseOutOfOrder)
    }

    @Test func initiatorRefusesAnUntrustedResponderBeforeRevealingItself() throws {
        let alice = SigningKeyPair.generate()
        let bob = SigningKeyPair.generate()
        var client = try NoiseXX(role: .initiator, identity: alice, trusting: [])
        var server = try NoiseXX(role: .responder, identity: bob, trust: { _ in true })
        _ = try server.readMessage(try client.writeMessage())
        #expect(errorCode { try client.readMessage(try server.writeMessage()) } == .peerUntrusted)
    }

    @Test func aPeerClaimingSomeoneElsesIdentityIsRefused() throws {
        let alice = SigningKeyPair.generate()
        let victim = SigningKeyPair.generate()
        let mallory = SigningKeyPair.generate()
        var client = try NoiseXX(role: .initiator, identity: alice, trust: { _ in true })
        // Mallory runs XX with her own static but claims the victim's Ed25519 key in the payload.
        var fake = try NoiseHandshakeState(
            protocolName: NoiseXX.protocolName, initiator: false, prologue: NoiseXX.defaultPrologue,
            localStatic: try mallory.x25519KeyPair())
        _ = try fake.readMessage(try client.writeMessage())
        let m2 = try fake.writeMessage([1] + victim.publicKey.rawRepresentation)
        #expect(errorCode { try client.readMessage(m2) } == .peerIdentityMismatch)
    }

    @Test func tamperedHandshakeMessagesFail() throws {
        let alice = SigningKeyPair.generate()
        let bob = SigningKeyPair.generate()
        var client = try NoiseXX(role: .initiator, identity: alice, trust: { _ in true })
        var server = try NoiseXX(role: .responder, identity: bob, trust: { _ in true })
        _ = try server.readMessage(try client.writeMessage())
        var m2 = try server.writeMessage()
        m2[40] ^= 1
        #expect(errorCode { try client.readMessage(m2) } == .authenticationFailed)
        #expect(errorCode { try client.readMessage([1, 2, 3]) } == .noiseMalformedMessage)
    }

    @Test func outOfTurnCallsAndDifferentProloguesFail() throws {
        let alice = SigningKeyPair.generate()
        let bob = SigningKeyPair.generate()
        var client = try NoiseXX(role: .initiator, identity: alice, trust: { _ in true })
        var server = try NoiseXX(
            role: .responder, identity: bob, prologue: Array("other app".utf8), trust: { _ in true })
        #expect(errorCode { try server.writeMessage() } == .noiseOutOfOrder)
        #expect(errorCode { try client.finish() } == .noiseOutOfOrder)
        _ = try server.readMessage(try client.writeMessage())
        #expect(errorCode { try client.writeMessage() } == .noiseOutOfOrder)
        #expect(errorCode { try client.readMessage(try server.writeMessage()) } == .authenticationFailed)
    }

    @Test func transportMessagesAreLimitedTo65535Bytes() throws {
        var a = try NoiseHandshakeState(protocolName: "Noise_NN_25519_ChaChaPoly_BLAKE2b", initiator: true)
        var b = try NoiseHandshakeState(protocolName: "Noise_NN_25519_ChaChaPoly_BLAKE2b", initiator: false)
        _ = try b.readMessage(try a.writeMessage())
        _ = try a.readMessage(try b.writeMessage())
        var (send, _) = try a.transportCiphers()
        var (_, receive) = try b.transportCiphers()
        let largest = try send.encrypt([UInt8](repeating: 1, count: 65535 - 16))
        #expect(largest.count == 65535)
        #expect(try receive.decrypt(largest).count == 65519)
        #expect(errorCode { try send.encrypt([UInt8](repeating: 1, count: 65535 - 15)) } == .noiseMessageTooLong)
        #expect(errorCode { try receive.decrypt([UInt8](repeating: 1, count: 65536)) } == .noiseMessageTooLong)
        #expect(errorCode { try a.writeMessage([UInt8](repeating: 0, count: 70000)) } == .noiseOutOfOrder)
        #expect(
            errorCode { try NoiseHandshakeState(protocolName: "Noise_XX_448_AESGCM_SHA256", initiator: true) }
                == .noiseUnsupportedProtocol)
        #expect(
            errorCode { try NoiseHandshakeState(protocolName: "Noise_XX_25519_ChaChaPoly_BLAKE2b", initiator: true) }
                == .noiseMissingKey)
        #expect(
            errorCode {
                try NoiseHandshakeState(protocolName: "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2b", initiator: true)
            } == .noiseMissingKey)
    }
}
