import Logging
import NIOConcurrencyHelpers
import NIOCore
import SarabanCrypto

/// The TCP connection as NIO hands it over: raw bytes both ways.
typealias RawChannel = NIOAsyncChannel<ByteBuffer, ByteBuffer>

/// Timing and byte counters of one connection, shared by its reader, its writer and the
/// watchdog that enforces the deadlines (``TransportConfiguration``).
final class ConnectionMonitor: Sendable {
    struct State {
        var lastReceive: UInt64
        /// When the first byte of the partial Noise message now buffered arrived.
        var partialSince: UInt64?
        var partialLength: Int?
        /// When the write now pending started.
        var writeSince: UInt64?
        /// The reader is waiting for the session to take what it was handed (backpressure).
        var readerPaused = false
        /// Why the watchdog closed the connection.
        var fault: TransportError?
        var bytesReceived = 0
        var bytesSent = 0
        var messagesReceived = 0
        var messagesSent = 0
    }

    let state: NIOLockedValueBox<State>

    init(now: UInt64) { state = NIOLockedValueBox(State(lastReceive: now)) }

    var fault: TransportError? { state.withLockedValue { $0.fault } }

    /// Records `error` as the reason the connection is being closed (the first one wins).
    func fail(_ error: TransportError) {
        state.withLockedValue { if $0.fault == nil { $0.fault = error } }
    }

    /// The reader stops to wait for the session (backpressure): until ``resumedReading(now:)``
    /// the idle and read deadlines do not run (the write deadline does).
    func pauseReading() { state.withLockedValue { $0.readerPaused = true } }

    /// The reader reads again after waiting for the session or for the rate limit: the time it did
    /// not read is ours, not the sender's, so the idle and read deadlines start again from now.
    func resumedReading(now: UInt64 = NIODeadline.now().uptimeNanoseconds) {
        state.withLockedValue { s in
            s.readerPaused = false
            s.lastReceive = max(s.lastReceive, now)
            if s.partialSince != nil { s.partialSince = now }
        }
    }

    /// The deadline the connection has missed at `now`, if any.
    func missedDeadline(now: UInt64, _ c: TransportConfiguration) -> TransportError? {
        state.withLockedValue { s in
            if let since = s.writeSince, now &- since > c.writeTimeout.nanosecondCount {
                return TransportError(.writeTimeout, "the peer has not read what we sent for \(c.writeTimeout)")
            }
            if s.readerPaused { return nil }
            if let since = s.partialSince {
                let allowed =
                    c.readTimeout.nanosecondCount
                    &+ UInt64(
                        Double(s.partialLength ?? NoiseMessageReader.maximumMessageLength)
                            / Double(c.minimumReceiveRate) * 1e9)
                if now &- since > allowed {
                    return TransportError(
                        .readTimeout,
                        "a Noise message of \(s.partialLength.map(String.init) ?? "unknown") bytes is still incomplete after \(Double(now &- since) / 1e9) s: the sender is too slow"
                    )
                }
            }
            if now &- s.lastReceive > c.idleTimeout.nanosecondCount {
                return TransportError(.idleTimeout, "nothing received for \(c.idleTimeout)")
            }
            return nil
        }
    }
}

/// One authenticated, encrypted connection to a peer, after a completed Noise XX handshake.
///
/// It is handed to the closure given to ``SecureListener/run(_:)`` or ``SecureTransport/connect(host:port:expecting:_:)``
/// and is valid only inside it: the TCP connection is closed when the closure returns. Read the
/// sync byte stream with ``reader`` and write it with ``writer``; ``PeerConnection`` does both.
/// Not `Sendable`: the reader must stay in the task that received the channel.
public struct SecureChannel {
    /// The peer's node id, proven by the handshake and accepted by the trust policy.
    public let peer: NodeID
    /// The peer's address.
    public let remoteAddress: SocketAddress?
    /// The Noise handshake hash (identical on both sides; for channel binding).
    public let handshakeHash: [UInt8]
    /// This side's role in the handshake.
    public let role: NoiseXX.Role
    public let configuration: TransportConfiguration
    /// Decrypted sync bytes in.
    public var reader: SecureReader
    /// Sync bytes out, encrypted.
    public var writer: SecureWriter
    let channel: any Channel
    let monitor: ConnectionMonitor

    /// Closes the TCP connection now (a pending read ends, pending writes fail).
    public func close() { channel.close(promise: nil) }

    /// Bytes and Noise messages on the wire so far.
    public var wireStatistics: WireStatistics {
        monitor.state.withLockedValue {
            WireStatistics(
                bytesSent: $0.bytesSent, bytesReceived: $0.bytesReceived, messagesSent: $0.messagesSent,
                messagesReceived: $0.messagesReceived)
        }
    }
}

/// TCP-level counters of one connection (everything on the wire: length prefixes, Noise tags).
public struct WireStatistics: Hashable, Sendable {
    public var bytesSent: Int
    public var bytesReceived: Int
    public var messagesSent: Int
    public var messagesReceived: Int
}

/// The receiving half of a ``SecureChannel``: TCP bytes → Noise messages → decrypted sync bytes.
public struct SecureReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var messages: NoiseMessageReader
    var cipher: CipherState
    var scanner: FrameScanner
    let monitor: ConnectionMonitor
    let bucket: TokenBucket?

    /// The next chunk of the decrypted sync byte stream (any chunking of the frames), or `nil`
    /// when the peer closed the connection cleanly between frames.
    ///
    /// Waits as long as the peer's ``RateLimit`` requires before returning.
    ///
    /// - Throws: ``TransportError``: `.decryptionFailed`, `.frameTooLarge`, `.malformedFrame`,
    ///   `.connectionClosed` (ended inside a message or frame), or the deadline that closed it.
    public mutating func next() async throws(TransportError) -> [UInt8]? {
        while true {
            if let message = messages.next() {
                let plain: [UInt8]
                do {
                    plain = try cipher.decrypt(message)
                } catch {
                    throw TransportError(
                        .decryptionFailed, "a Noise transport message failed to decrypt: \(error.code)")
                }
                let frames = try scanner.scan(plain)
                let now = NIODeadline.now().uptimeNanoseconds
                let buffered = messages.bufferedByteCount > 0
                let pending = messages.pendingMessageLength
                monitor.state.withLockedValue { s in
                    s.messagesReceived += 1
                    s.partialSince = buffered ? now : nil
                    s.partialLength = pending
                }
                if let bucket {
                    let wait = bucket.consume(bytes: plain.count, frames: frames, now: now)
                    if wait > .zero {
                        try? await Task.sleep(for: wait)
                        // Time spent throttled is ours, not the sender's.
                        monitor.resumedReading()
                    }
                }
                if plain.isEmpty { continue }
                return plain
            }
            let chunk: ByteBuffer?
            do {
                chunk = try await iterator.next()
            } catch {
                throw monitor.fault ?? TransportError(.connectionClosed, "the connection failed: \(error)")
            }
            guard var bytes = chunk else {
                if let fault = monitor.fault { throw fault }
                if messages.bufferedByteCount > 0 || scanner.isInsideFrame {
                    throw TransportError(.connectionClosed, "the peer closed the connection inside a message")
                }
                return nil
            }
            let now = NIODeadline.now().uptimeNanoseconds
            let count = bytes.readableBytes
            messages.append(&bytes)
            let pending = messages.pendingMessageLength
            monitor.state.withLockedValue { s in
                s.lastReceive = now
                s.bytesReceived += count
                if s.partialSince == nil { s.partialSince = now }
                s.partialLength = pending
            }
        }
    }
}

/// The sending half of a ``SecureChannel``: sync bytes → Noise messages (≤ 65535 bytes each) → TCP.
public struct SecureWriter: Sendable {
    /// The most plaintext one Noise transport message carries.
    public static let maximumChunk = CipherState.maximumMessageLength - CipherState.tagLength

    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    var cipher: CipherState
    let monitor: ConnectionMonitor

    /// Encrypts `plaintext` (any length: it is cut into Noise messages) and writes it, waiting
    /// while the connection is not writable.
    public mutating func write(_ plaintext: [UInt8]) async throws(TransportError) {
        guard !plaintext.isEmpty else { return }
        var out = ByteBuffer()
        out.reserveCapacity(plaintext.count + (plaintext.count / Self.maximumChunk + 1) * 18)
        var start = 0
        var messages = 0
        while start < plaintext.count {
            let end = min(start + Self.maximumChunk, plaintext.count)
            let sealed: [UInt8]
            do {
                sealed = try cipher.encrypt(Array(plaintext[start..<end]))
            } catch {
                throw TransportError(.connectionClosed, "cannot encrypt: \(error.code)")
            }
            NoiseMessageReader.write(sealed, into: &out)
            messages += 1
            start = end
        }
        try await send(out, messages: messages)
    }

    func send(_ buffer: ByteBuffer, messages: Int) async throws(TransportError) {
        let now = NIODeadline.now().uptimeNanoseconds
        let count = buffer.readableBytes
        monitor.state.withLockedValue { $0.writeSince = now }
        defer { monitor.state.withLockedValue { $0.writeSince = nil } }
        do {
            try await outbound.write(buffer)
        } catch {
            throw monitor.fault ?? TransportError(.connectionClosed, "the connection failed while writing: \(error)")
        }
        monitor.state.withLockedValue {
            $0.bytesSent += count
            $0.messagesSent += messages
        }
    }

    /// Writes `plaintext` as one Noise message with one ciphertext bit flipped (tests only).
    @_spi(Testing)
    public mutating func writeTampered(_ plaintext: [UInt8]) async throws(TransportError) {
        var sealed: [UInt8]
        do { sealed = try cipher.encrypt(plaintext) } catch { throw TransportError(.connectionClosed, "\(error)") }
        sealed[sealed.count / 2] ^= 0x01
        var out = ByteBuffer()
        NoiseMessageReader.write(sealed, into: &out)
        try await send(out, messages: 1)
    }

    /// Writes raw bytes to the TCP connection, bypassing Noise (tests only).
    @_spi(Testing)
    public func writeRaw(_ bytes: [UInt8]) async throws(TransportError) {
        try await send(ByteBuffer(bytes: bytes), messages: 0)
    }
}

extension SecureChannel {
    /// Runs the Noise XX handshake on a fresh TCP connection and returns the secure channel.
    ///
    /// Never inlined: inlined into the accepting closure of ``SecureListener`` (or the dialling one
    /// of ``SecureTransport/connect(host:port:expecting:_:)``), the handshake's locals made that
    /// closure's async frame, which lives as long as the connection, about 2 KB larger.
    @inline(never)
    static func establish(
        role: NoiseXX.Role, identity: SigningKeyPair, trust: @escaping @Sendable (NodeID) -> Bool,
        expecting expected: NodeID?, raw: RawChannel,
        iterator: consuming NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, configuration: TransportConfiguration,
        limiters: RateLimiterRegistry
    ) async throws(TransportError) -> SecureChannel {
        let channel = raw.channel
        let timedOut = NIOLockedValueBox(false)
        let timer = channel.eventLoop.scheduleTask(
            in: .nanoseconds(Int64(clamping: configuration.handshakeTimeout.nanosecondCount))
        ) {
            timedOut.withLockedValue { $0 = true }
            channel.close(promise: nil)
        }
        defer { timer.cancel() }

        // Which id was refused and why, to report a distinct error.
        let refused = NIOLockedValueBox<(NodeID, Bool)?>(nil)
        let policy: @Sendable (NodeID) -> Bool = { id in
            let isExpected = expected.map { $0 == id } ?? true
            let ok = isExpected && trust(id)
            if !ok { refused.withLockedValue { $0 = (id, isExpected) } }
            return ok
        }
        var iterator = iterator
        var reader = NoiseMessageReader()

        func readMessage() async throws(TransportError) -> [UInt8] {
            while true {
                if let m = reader.next() { return m }
                let chunk: ByteBuffer?
                do { chunk = try await iterator.next() } catch {
                    chunk = nil
                }
                guard var b = chunk else {
                    if timedOut.withLockedValue({ $0 }) {
                        throw TransportError(
                            .handshakeTimeout,
                            "the Noise handshake did not complete within \(configuration.handshakeTimeout)")
                    }
                    throw TransportError(.handshakeFailed, "the connection closed during the Noise handshake")
                }
                reader.append(&b)
            }
        }
        func writeMessage(_ m: [UInt8]) async throws(TransportError) {
            var out = ByteBuffer()
            NoiseMessageReader.write(m, into: &out)
            do { try await outbound.write(out) } catch {
                throw TransportError(.handshakeFailed, "the connection closed during the Noise handshake")
            }
        }
        func mapped(_ e: CryptoError) -> TransportError {
            if let (id, isExpected) = refused.withLockedValue({ $0 }) {
                return isExpected
                    ? TransportError(.peerUntrusted, "node \(id) proved its identity but is not trusted here", peer: id)
                    : TransportError(
                        .unexpectedPeer, "dialled \(expected.map { "\($0)" } ?? "?") but reached node \(id)", peer: id)
            }
            return TransportError(.handshakeFailed, "the Noise handshake failed: \(e.code)")
        }

        let session: NoiseSession
        do {
            var xx = try NoiseXX(role: role, identity: identity, trust: policy)
            switch role {
            case .initiator:
                try await writeMessage(try xx.writeMessage())
                _ = try xx.readMessage(try await readMessage())
                try await writeMessage(try xx.writeMessage())
            case .responder:
                let m1 = try await readMessage()
                // XX message 1 is the initiator's ephemeral key with an empty payload: anything
                // else is not a Saraban node (and usually garbage), so refuse it at once.
                guard m1.count == 32 else {
                    throw TransportError(.handshakeFailed, "the first handshake message is \(m1.count) bytes, not 32")
                }
                _ = try xx.readMessage(m1)
                try await writeMessage(try xx.writeMessage())
                _ = try xx.readMessage(try await readMessage())
            }
            session = try xx.finish()
        } catch let e as TransportError {
            throw e
        } catch let e as CryptoError {
            throw mapped(e)
        } catch {
            throw TransportError(.handshakeFailed, "the Noise handshake failed: \(error)")
        }
        if timedOut.withLockedValue({ $0 }) {
            throw TransportError(
                .handshakeTimeout, "the Noise handshake did not complete within \(configuration.handshakeTimeout)")
        }
        let now = NIODeadline.now().uptimeNanoseconds
        let monitor = ConnectionMonitor(now: now)
        if reader.bufferedByteCount > 0 {
            let pending = reader.pendingMessageLength
            monitor.state.withLockedValue {
                $0.partialSince = now
                $0.partialLength = pending
            }
        }
        return SecureChannel(
            peer: session.peer, remoteAddress: channel.remoteAddress, handshakeHash: session.handshakeHash, role: role,
            configuration: configuration,
            reader: SecureReader(
                iterator: iterator, messages: reader, cipher: session.receive,
                scanner: FrameScanner(maximumPayloadByteCount: configuration.maximumFrameByteCount), monitor: monitor,
                bucket: limiters.bucket(for: session.peer)),
            writer: SecureWriter(outbound: outbound, cipher: session.send, monitor: monitor),
            channel: channel, monitor: monitor)
    }
}
