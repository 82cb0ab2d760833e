import SarabanCrypto

/// Why a secure channel could not be set up or had to be closed.
///
/// Extensible in the style of NIO's errors: a struct with a ``Code`` and a message for people.
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String, Hashable, Sendable {
            case handshakeFailed, handshakeTimeout, peerUntrusted, unexpectedPeer
            case decryptionFailed, frameTooLarge, malformedFrame
            case idleTimeout, readTimeout, writeTimeout
            case connectionClosed, connectFailed
            case connectionRefused, hostUnreachable, connectTimeout, hostNotFound, addressInUse, cannotListen
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The Noise XX handshake failed (garbage, wrong protocol, bad key, identity mismatch).
        public static var handshakeFailed: Code { Code(.handshakeFailed) }
        /// The handshake did not complete within ``TransportConfiguration/handshakeTimeout``.
        public static var handshakeTimeout: Code { Code(.handshakeTimeout) }
        /// The peer proved its node id but the trust policy refused it.
        public static var peerUntrusted: Code { Code(.peerUntrusted) }
        /// The peer is trusted but is not the node that was dialled.
        public static var unexpectedPeer: Code { Code(.unexpectedPeer) }
        /// A Noise transport message failed authentication (tampered, replayed, truncated or garbage).
        public static var decryptionFailed: Code { Code(.decryptionFailed) }
        /// A sync frame announced more than ``TransportConfiguration/maximumFrameByteCount``.
        public static var frameTooLarge: Code { Code(.frameTooLarge) }
        /// A zero-length sync frame.
        public static var malformedFrame: Code { Code(.malformedFrame) }
        /// Nothing was received for ``TransportConfiguration/idleTimeout``.
        public static var idleTimeout: Code { Code(.idleTimeout) }
        /// A Noise message was started but not finished in time (slow sender).
        public static var readTimeout: Code { Code(.readTimeout) }
        /// The peer did not take our bytes for ``TransportConfiguration/writeTimeout``.
        public static var writeTimeout: Code { Code(.writeTimeout) }
        /// The connection ended (EOF, reset) where the protocol did not expect it.
        public static var connectionClosed: Code { Code(.connectionClosed) }
        /// The TCP connection could not be opened (for a reason none of the codes below names).
        public static var connectFailed: Code { Code(.connectFailed) }
        /// The peer's machine answered that nothing listens on that port (ECONNREFUSED).
        public static var connectionRefused: Code { Code(.connectionRefused) }
        /// No route to the host or its network (EHOSTUNREACH, ENETUNREACH, ENETDOWN).
        public static var hostUnreachable: Code { Code(.hostUnreachable) }
        /// Nothing answered within ``TransportConfiguration/connectTimeout`` (host down, packets dropped).
        public static var connectTimeout: Code { Code(.connectTimeout) }
        /// The host name did not resolve (DNS).
        public static var hostNotFound: Code { Code(.hostNotFound) }
        /// The listening address is taken by another socket (EADDRINUSE).
        public static var addressInUse: Code { Code(.addressInUse) }
        /// The listening socket could not be bound for another reason (permission, address not local).
        public static var cannotListen: Code { Code(.cannotListen) }

        public var description: String { value.rawValue }
    }

    public let code: Code
    public let message: String
    /// The peer's id when it is known (for ``Code/peerUntrusted`` the id that was refused).
    public let peer: NodeID?

    public init(_ code: Code, _ message: String, peer: NodeID? = nil) {
        self.code = code
        self.message = message
        self.peer = peer
    }

    public var description: String { "\(code): \(message)" }
}
