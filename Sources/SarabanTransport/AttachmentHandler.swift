import SarabanCrypto
import SarabanSync

/// The node's side of the attachment-chunk messages of one session (Sync/PROTOCOL.md,
/// "Attachment chunks"). A ``PeerConnection`` whose ``SyncStoreDriver`` returns one hands it the
/// peer's attachment messages, in order, and sends what it passes to ``sendOutgoing(through:)``'s
/// closure; without one, the peer's attachment messages are dropped.
public protocol AttachmentHandler: Sendable {
    /// Hellos were exchanged: the peer's role and the spaces both sides carry. Called once,
    /// before any ``received(_:)``.
    func opened(role: NodeRole, sharedSpaces: [SpaceID]) async
    /// An attachment message from the peer (one at a time, in arrival order).
    func received(_ message: AttachmentMessage) async
    /// How the handler sends: it calls `send` with each message for the peer, in order, from any
    /// thread, until ``closed()`` (messages for a space not shared are dropped). Called once,
    /// before ``opened(role:sharedSpaces:)``. (A closure, not a stream: a stream needed a task
    /// per connection to forward it.)
    func sendOutgoing(through send: @escaping @Sendable (AttachmentMessage) -> Void)
    /// `message`, passed to `send`, was written to the connection (for the handler's own flow control).
    func sent(_ message: AttachmentMessage)
    /// The session ended: nothing more is sent.
    func closed()
    /// Returns once the handler no longer needs the session (for example: the peer answered
    /// everything it was offered). A connection with `closeWhenSynced` says bye only once the
    /// session is synced and this has returned; it must return at the latest on ``closed()``.
    func settled() async
}

extension AttachmentHandler {
    /// Nothing of the handler's holds the session open.
    public func settled() async {}
}

extension SyncStoreDriver {
    /// No attachment exchange unless the driver provides one.
    public func attachmentHandler(for peer: NodeID) -> (any AttachmentHandler)? { nil }
}
