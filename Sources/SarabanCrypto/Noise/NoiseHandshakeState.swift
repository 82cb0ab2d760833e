/// A sans-IO Noise handshake (Noise Protocol Framework rev. 34, §5.3) for
/// `Noise_<pattern>_25519_ChaChaPoly_BLAKE2b`.
///
/// Feed it bytes with ``readMessage(_:)`` and get bytes to send from ``writeMessage(_:)``; it does
/// no I/O. When ``isHandshakeComplete``, ``split()`` gives the transport cipher states.
///
/// ```swift
/// var alice = try NoiseHandshakeState(protocolName: "Noise_NN_25519_ChaChaPoly_BLAKE2b", initiator: true)
/// var bob = try NoiseHandshakeState(protocolName: "Noise_NN_25519_ChaChaPoly_BLAKE2b", initiator: false)
/// _ = try bob.readMessage(try alice.writeMessage())
/// _ = try alice.readMessage(try bob.writeMessage())
/// var (aliceSend, aliceReceive) = try alice.split()
/// ```
///
/// A method that throws leaves the state unchanged, but a failed handshake must be abandoned.
public struct NoiseHandshakeState: Sendable {
    /// The full protocol name, e.g. `Noise_XX_25519_ChaChaPoly_BLAKE2b`.
    public let protocolName: String
    /// The handshake pattern.
    public let pattern: NoisePattern
    /// Whether this side started the handshake.
    public let isInitiator: Bool

    private var symmetric: SymmetricState
    private var localStatic: X25519KeyPair?
    private var localEphemeral: X25519KeyPair?
    private var remoteStatic: [UInt8]?
    private var remoteEphemeral: [UInt8]?
    private var psks: [SecureBytes]
    private var pskIndex = 0
    private var messageIndex = 0

    /// Parses `protocolName` and initialises the handshake (`Initialize()` of §5.3).
    ///
    /// - Parameters:
    ///   - protocolName: `Noise_<pattern>_25519_ChaChaPoly_BLAKE2b`.
    ///   - initiator: whether this side sends the first message.
    ///   - prologue: data both sides must agree on (mixed into the handshake hash).
    ///   - localStatic: this side's X25519 static key, if the pattern uses one.
    ///   - localEphemeral: an ephemeral key to use instead of a fresh random one (test vectors only).
    ///   - remoteStatic: the peer's static public key, when the pattern has it as a pre-message.
    ///   - psks: the pre-shared keys (32 bytes each), in the order the pattern's `psk` tokens use them.
    /// - Throws: ``CryptoError/Code/noiseUnsupportedProtocol`` for another DH, cipher or hash or an
    ///   unknown pattern; ``CryptoError/Code/noiseMissingKey`` when a key the pattern needs is missing.
    public init(
        protocolName: String, initiator: Bool, prologue: [UInt8] = [], localStatic: X25519KeyPair? = nil,
        localEphemeral: X25519KeyPair? = nil, remoteStatic: [UInt8]? = nil, psks: [SecureBytes] = []
    ) throws(CryptoError) {
        let parts = protocolName.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0] == "Noise", parts[2] == "25519", parts[3] == "ChaChaPoly",
            parts[4] == "BLAKE2b"
        else {
            throw CryptoError(
                .noiseUnsupportedProtocol,
                "'\(protocolName)' is not supported: only Noise_<pattern>_25519_ChaChaPoly_BLAKE2b is implemented")
        }
        let pattern = try NoisePattern(parsing: String(parts[1]))
        self.protocolName = protocolName
        self.pattern = pattern
        self.isInitiator = initiator
        self.localStatic = localStatic
        self.localEphemeral = localEphemeral
        self.remoteStatic = remoteStatic
        self.psks = psks

        // Check that every key the pattern needs is there.
        let ownPre = initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage
        let peerPre = initiator ? pattern.responderPreMessage : pattern.initiatorPreMessage
        let sendsStatic = pattern.messages.enumerated().contains { i, tokens in
            (i % 2 == 0) == initiator && tokens.contains(.s)
        }
        let usesOwnStatic =
            ownPre.contains(.s) || sendsStatic
            || pattern.messages.contains { tokens in
                tokens.contains(initiator ? .se : .es) || tokens.contains(.ss)
            }
        if usesOwnStatic && localStatic == nil {
            throw CryptoError(
                .noiseMissingKey, "the \(pattern.name) pattern needs this side's static key: pass localStatic")
        }
        if peerPre.contains(.s) && remoteStatic?.count != X25519KeyPair.byteCount {
            throw CryptoError(
                .noiseMissingKey,
                "the \(pattern.name) pattern needs the peer's 32-byte static public key in advance: pass remoteStatic")
        }
        if psks.count != pattern.pskCount || psks.contains(where: { $0.count != 32 }) {
            throw CryptoError(
                .noiseMissingKey,
                "the \(pattern.name) pattern needs \(pattern.pskCount) pre-shared keys of 32 bytes, got \(psks.count)")
        }

        symmetric = SymmetricState(protocolName: Array(protocolName.utf8))
        symmetric.mixHash(prologue)
        // Pre-messages: the initiator's first, then the responder's (§7.1).
        for (tokens, isOurs) in [(pattern.initiatorPreMessage, initiator), (pattern.responderPreMessage, !initiator)] {
            for token in tokens where token == .s {
                let key = isOurs ? localStatic?.publicKey : remoteStatic
                symmetric.mixHash(key ?? [])
            }
        }
    }

    /// How many handshake messages have been written or read so far.
    public var messageCount: Int { messageIndex }

    /// Whether every handshake message has been written or read.
    public var isHandshakeComplete: Bool { messageIndex >= pattern.messages.count }

    /// Whether the next handshake step is a ``writeMessage(_:)`` (false: a ``readMessage(_:)``, or complete).
    public var isMyTurnToWrite: Bool { !isHandshakeComplete && (messageIndex % 2 == 0) == isInitiator }

    /// The handshake hash `h`: a transcript digest both sides share; use it for channel binding.
    public var handshakeHash: [UInt8] { symmetric.h }

    /// The peer's static public key once received (or given in advance).
    public var remoteStaticPublicKey: [UInt8]? { remoteStatic }

    /// Writes the next handshake message carrying `payload`.
    ///
    /// - Throws: ``CryptoError/Code/noiseOutOfOrder`` when it is the peer's turn or the handshake
    ///   is complete; ``CryptoError/Code/noiseMessageTooLong`` above 65535 bytes.
    public mutating func writeMessage(_ payload: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        guard isMyTurnToWrite else {
            throw CryptoError(
                .noiseOutOfOrder,
                isHandshakeComplete
                    ? "the handshake is complete: use split()" : "it is the peer's turn: call readMessage first")
        }
        var next = self
        var out = [UInt8]()
        for token in pattern.messages[messageIndex] {
            switch token {
            case .e:
                let e = next.localEphemeral ?? X25519KeyPair.generate()
                next.localEphemeral = e
                out += e.publicKey
                next.symmetric.mixHash(e.publicKey)
                if pattern.hasPSK { next.symmetric.mixKey(public: e.publicKey) }
            case .s:
                // Presence was checked in init.
                out += try next.symmetric.encryptAndHash(next.localStatic?.publicKey ?? [])
            case .psk:
                next.symmetric.mixKeyAndHash(next.psks[next.pskIndex])
                next.pskIndex += 1
            case .ee, .es, .se, .ss:
                try next.mixDH(token)
            }
        }
        out += try next.symmetric.encryptAndHash(payload)
        guard out.count <= CipherState.maximumMessageLength else {
            throw CryptoError(
                .noiseMessageTooLong,
                "the handshake message would be \(out.count) bytes, above 65535: shorten the payload")
        }
        next.messageIndex += 1
        self = next
        return out
    }

    /// Reads the next handshake message and returns its payload.
    ///
    /// - Throws: ``CryptoError/Code/noiseOutOfOrder`` when it is our turn to write;
    ///   ``CryptoError/Code/noiseMalformedMessage`` when the message is too short;
    ///   ``CryptoError/Code/authenticationFailed`` when decryption fails (wrong keys or tampering);
    ///   ``CryptoError/Code/invalidKey`` for a low-order peer key.
    public mutating func readMessage(_ message: [UInt8]) throws(CryptoError) -> [UInt8] {
        guard !isHandshakeComplete, !isMyTurnToWrite else {
            throw CryptoError(
                .noiseOutOfOrder,
                isHandshakeComplete
                    ? "the handshake is complete: use split()" : "it is our turn: call writeMessage first")
        }
        guard message.count <= CipherState.maximumMessageLength else {
            throw CryptoError(
                .noiseMessageTooLong,
                "a Noise message is at most 65535 bytes, got \(message.count): close the connection")
        }
        var next = self
        var offset = 0
        func take(_ n: Int) throws(CryptoError) -> [UInt8] {
            guard message.count - offset >= n else {
                throw CryptoError(
                    .noiseMalformedMessage,
                    "the handshake message is truncated (\(message.count) bytes): close the connection")
            }
            defer { offset += n }
            return Array(message[offset..<(offset + n)])
        }
        for token in pattern.messages[messageIndex] {
            switch token {
            case .e:
                let re = try take(X25519KeyPair.byteCount)
                next.remoteEphemeral = re
                next.symmetric.mixHash(re)
                if pattern.hasPSK { next.symmetric.mixKey(public: re) }
            case .s:
                let length = X25519KeyPair.byteCount + (next.symmetric.cipher.hasKey ? CipherState.tagLength : 0)
                next.remoteStatic = try next.symmetric.decryptAndHash(try take(length))
            case .psk:
                next.symmetric.mixKeyAndHash(next.psks[next.pskIndex])
                next.pskIndex += 1
            case .ee, .es, .se, .ss:
                try next.mixDH(token)
            }
        }
        let payload = try next.symmetric.decryptAndHash(Array(message[offset...]))
        next.messageIndex += 1
        self = next
        return payload
    }

    /// The transport cipher states `(initiator → responder, responder → initiator)`, per `Split()`.
    ///
    /// The initiator encrypts with the first and decrypts with the second; the responder the reverse.
    /// - Throws: ``CryptoError/Code/noiseOutOfOrder`` before the handshake is complete.
    public func split() throws(CryptoError) -> (CipherState, CipherState) {
        guard isHandshakeComplete else {
            throw CryptoError(.noiseOutOfOrder, "the handshake is not complete: exchange the remaining messages first")
        }
        return symmetric.split()
    }

    /// `split()` from this side's point of view.
    public func transportCiphers() throws(CryptoError) -> (send: CipherState, receive: CipherState) {
        let (c1, c2) = try split()
        return isInitiator ? (c1, c2) : (c2, c1)
    }

    /// Performs the DH a token names and mixes the result into the key (§5.3).
    private mutating func mixDH(_ token: NoisePattern.Token) throws(CryptoError) {
        let local: X25519KeyPair?
        let remote: [UInt8]?
        switch (token, isInitiator) {
        case (.ee, _): (local, remote) = (localEphemeral, remoteEphemeral)
        case (.ss, _): (local, remote) = (localStatic, remoteStatic)
        case (.es, true): (local, remote) = (localEphemeral, remoteStatic)
        case (.es, false): (local, remote) = (localStatic, remoteEphemeral)
        case (.se, true): (local, remote) = (localStatic, remoteEphemeral)
        case (.se, false): (local, remote) = (localEphemeral, remoteStatic)
        default: (local, remote) = (nil, nil)
        }
        guard let local, let remote else {
            throw CryptoError(
                .noiseMissingKey, "the '\(token.rawValue)' token of \(pattern.name) needs a key this side does not have"
            )
        }
        symmetric.mixKey(try local.sharedSecret(with: remote))
    }
}
