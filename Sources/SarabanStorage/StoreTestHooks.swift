import SarabanCore
import SarabanCrypto

/// Decisions of the receive path a simulator may change, to plant a bug and show that its
/// invariants catch it (`saraban-sim --plant`, Docs/TESTING.md), or to play a rogue node. The node never sets
/// ``Store/testHooks``: nil, every decision is the real one and no hook is called.
public final class StoreTestHooks: @unchecked Sendable {
    /// Asked with an envelope's header and the roster's verdict on its author (nil: admitted,
    /// else why not); returns the verdict used.
    public var admission: ((EnvelopeHeader, String?) -> String?)?
    /// Asked about a received change whose author's previous change is applied but whose other
    /// dependencies are not: true applies it anyway.
    public var applyBeforeDependencies: ((Change) -> Bool)?
    /// Asked about each opened envelope about to be stored with its changes: false stores the
    /// envelope (its author's feed head moves on) without applying its changes, as committing
    /// the head apart from the changes would leave it after a crash between the two.
    public var appliesChanges: ((Envelope) -> Bool)?
    /// While true, local writes skip the space's authority rules (``Store/judgeLocal``): the
    /// simulator's rogue member, a modified node that signs membership changes it has no right
    /// to, so the other nodes' receive paths must refuse them.
    public var skipsLocalAuthority = false
    /// While true, `Correspondence.receive` does not look for the office's record of a dispatch
    /// (the simulator's planted bug `receiveTwice`: a second record and receive number).
    public var forgetsReceivedRecords = false

    public init() {}
}
