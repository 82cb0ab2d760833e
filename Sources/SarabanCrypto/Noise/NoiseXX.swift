/// The transport keys and peer identity produced by a completed ``NoiseXX`` handshake.
public struct NoiseSession: Sendable {
    /// Encrypts what this side sends.
    public var send: CipherState
    /// Decrypts what this side receives.
    public var receive: CipherState
    /// The peer's node id, proven by the handshake.
    public let peer: NodeID
    /// The handshake hash, identical on both sides (for channel binding).
    public let handshakeHash: [UInt8]
}

/// `Noise_XX_25519_ChaChaPoly_BLAKE2b` between two node identities, with node ids checked.
///
/// Each side's Noise static key is the X25519 conversion of its Ed25519 identity. Because XX sends
/// the X25519 static, each side also sends its 32-byte Ed25519 public key inside the encrypted
/// payload of the message that carries its static (`0x01 ‖ ed25519 public key ‖ application payload`);
/// the receiver checks that this key converts to the static the handshake authenticated, derives
/// the ``NodeID`` from it, and asks the caller's `trust` policy. The initiator learns and checks the
/// responder's id from message 2, before revealing its own identity in message 3.
///
/// ```swift
/// var client = try NoiseXX(role: .initiator, identity: me, trust: { $0 == serverID })
/// var server = try NoiseXX(role: .responder, identity: node, trusting: members)
/// let m1 = try client.writeMessage(); _ = try server.readMessage(m1)
/// let m2 = try server.writeMessage(); _ = try client.readMessage(m2)
/// let m3 = try client.writeMessage(); _ = try server.readMessage(m3)
/// var session = try client.finish()   // session.peer == serverID
/// ```
///
/// The application payload of message 1 is sent in clear; those of messages 2 and 3 are encrypted.
public struct NoiseXX: Sendable {
    /// Which side of the handshake this is.
    public enum Role: Sendable, Hashable {
        case initiator, responder
    }

    /// The Noise protocol name.
    public static let protocolName = "Noise_XX_25519_ChaChaPoly_BLAKE2b"
    /// The default prologue, binding the handshake to this application and version.
    public static let defaultPrologue = Array("saraban/noise-xx/1".utf8)
    static let identityPayloadVersion: UInt8 = 1

    /// This side's role.
    public let role: Role
    private var handshake: NoiseHandshakeState
    private let identity: SigningPublicKey
    private let trust: @Sendable (NodeID) -> Bool
    /// The peer's id, once its identity message has been read and checked.
    public private(set) var peer: NodeID?

    /// Starts a handshake as `role` with the node identity `identity`.
    ///
    /// - Parameter trust: decides whether a proven peer id is acceptable; refusing throws
    ///   ``CryptoError/Code/peerUntrusted``.
    /// - Throws: ``CryptoError/Code/invalidKey`` if the identity cannot be converted to X25519.
    public init(
        role: Role, identity: SigningKeyPair, prologue: [UInt8] = NoiseXX.defaultPrologue,
        trust: @escaping @Sendable (NodeID) -> Bool
    ) throws(CryptoError) {
        self.role = role
        self.identity = identity.publicKey
        self.trust = trust
        handshake = try NoiseHandshakeState(
            protocolName: Self.protocolName, initiator: role == .initiator, prologue: prologue,
            localStatic: try identity.x25519KeyPair())
    }

    /// Starts a handshake that accepts only the peers in `trusted`.
    public init(
        role: Role, identity: SigningKeyPair, prologue: [UInt8] = NoiseXX.defaultPrologue, trusting trusted: Set<NodeID>
    )
        throws(CryptoError)
    {
        try self.init(role: role, identity: identity, prologue: prologue, trust: { trusted.contains($0) })
    }

    /// Whether all three messages have been exchanged.
    public var isComplete: Bool { handshake.isHandshakeComplete }
    /// Whether the next step is ``writeMessage(_:)``.
    public var isMyTurnToWrite: Bool { handshake.isMyTurnToWrite }

    /// Writes the next handshake message (`payload` is application data carried along).
    ///
    /// - Throws: as ``NoiseHandshakeState/writeMessage(_:)``.
    public mutating func writeMessage(_ payload: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        if carriesStatic(written: true) {
            return try handshake.writeMessage([Self.identityPayloadVersion] + identity.rawRepresentation + payload)
        }
        return try handshake.writeMessage(payload)
    }

    /// Reads the next handshake message and returns the peer's application payload.
    ///
    /// - Throws: as ``NoiseHandshakeState/readMessage(_:)``, plus ``CryptoError/Code/noiseMalformedMessage``
    ///   for a missing identity, ``CryptoError/Code/peerIdentityMismatch`` when the claimed Ed25519
    ///   key does not match the authenticated static, and ``CryptoError/Code/peerUntrusted`` when the
    ///   trust policy refuses the peer. After any error, abandon the connection.
    public mutating func readMessage(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        let checkIdentity = carriesStatic(written: false)
        var next = handshake
        let payload = try next.readMessage(message)
        guard checkIdentity else {
            handshake = next
            return payload
        }
        guard payload.count >= 1 + SigningPublicKey.byteCount, payload[0] == Self.identityPayloadVersion else {
            throw CryptoError(
                .noiseMalformedMessage,
                "the peer sent no node identity in its handshake: it is not a compatible saraban node")
        }
        let claimed = SigningPublicKey(unchecked: Array(payload[1...SigningPublicKey.byteCount]))
        let converted: [UInt8]
        do { converted = try claimed.x25519PublicKey() } catch {
            throw CryptoError(
                .peerIdentityMismatch, "the peer's claimed identity is not a valid Ed25519 key: refuse the connection")
        }
        guard let remoteStatic = next.remoteStaticPublicKey, Sodium.constantTimeEqual(converted, remoteStatic) else {
            throw CryptoError(
                .peerIdentityMismatch,
                "the peer claims to be \(claimed.nodeID) but its handshake key belongs to someone else: refuse the connection"
            )
        }
        let id = claimed.nodeID
        guard trust(id) else {
            throw CryptoError(
                .peerUntrusted,
                "node \(id) proved its identity but is not trusted here: add it with the space's member commands if it should be"
            )
        }
        peer = id
        handshake = next
        return Array(payload[(1 + SigningPublicKey.byteCount)...])
    }

    /// The transport session, once the handshake is complete.
    ///
    /// - Throws: ``CryptoError/Code/noiseOutOfOrder`` before completion.
    public func finish() throws(CryptoError) -> NoiseSession {
        guard let peer, handshake.isHandshakeComplete else {
            throw CryptoError(.noiseOutOfOrder, "the handshake is not complete: exchange all three messages first")
        }
        let (send, receive) = try handshake.transportCiphers()
        return NoiseSession(send: send, receive: receive, peer: peer, handshakeHash: handshake.handshakeHash)
    }

    /// Whether the next message written (or read) is the one carrying that side's static key:
    /// message 2 for the responder, message 3 for the initiator.
    private func carriesStatic(written: Bool) -> Bool {
        let writerIsInitiator = (role == .initiator) == written
        let index = writerIsInitiator ? 2 : 1
        return handshake.messageCount == index
    }
}
