import Foundation
import SarabanCrypto
import SarabanStorage
import SarabanSync
import SarabanTransport

/// Why a relay's store cannot take or serve envelopes now: the database is unreachable, full or
/// read-only. A relay tells the office in an `error` frame (code `refused`) with this text; the
/// office keeps every envelope not acknowledged and sends it again on a later session.
public struct RelayStoreError: Error, RefusingStoreError, Sendable, Hashable {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The database cannot be reached (stopped, restarting, network).
        case unavailable
        /// The database has no room left (disk full, quota).
        case full
        /// The database takes no writes (read-only, a standby, permissions).
        case readOnly
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String {
        switch code {
        case .unavailable:
            "relay store unavailable (ที่เก็บข้อมูลของรีเลย์ใช้งานไม่ได้ชั่วคราว): \(message); nothing was lost, this office keeps its envelopes and retries"
        case .full:
            "relay store full (ที่เก็บข้อมูลของรีเลย์เต็ม): \(message); nothing was lost, this office keeps its envelopes and retries; the relay's operator must free space"
        case .readOnly:
            "relay store read-only (ที่เก็บข้อมูลของรีเลย์รับข้อมูลใหม่ไม่ได้): \(message); nothing was lost, this office keeps its envelopes and retries; the relay's operator must make the database writable"
        }
    }
}

/// Whether a relay's store can serve now (`/ready`, `saraban_relay_ready`).
public enum RelayHealth: Sendable, Hashable {
    case ready
    case unready(String)

    public var isReady: Bool { self == .ready }
}

/// What another process stored, as a relay's store reports it.
public enum RelayStoreChange: Sendable, Hashable {
    /// Envelopes were stored in these spaces (by another relay process, or a CLI).
    case spaces(Set<SpaceID>)
    /// Another relay process kept newer head claims of these spaces (``RelayClaimStore``).
    case claims(Set<SpaceID>)
    /// Something may have been stored anywhere (a notification was lost, a poll saw the log grow).
    case anywhere
    /// Months were retired (``RelayStore/feedFloors()`` changed), or the store's notification
    /// channel reconnected (a notice may have been missed): read the horizons afresh.
    case floors
}

extension RelayStoreChange {
    /// Both wake-ups as one.
    public func merged(with other: RelayStoreChange) -> RelayStoreChange {
        switch (self, other) {
        case (.spaces(let a), .spaces(let b)): .spaces(a.union(b))
        case (.claims(let a), .claims(let b)): .claims(a.union(b))
        case (.floors, .floors): .floors
        default: .anywhere
        }
    }
}

/// Which spaces a relay serves to which peer, and whose envelopes it stores.
///
/// The membership rule (served only to members and designated relays; stored only from authors
/// the roster admits) is applied beneath this, by the store (SQLite) or by the driver's rosters
/// (PostgreSQL). A policy narrows it further for a deployment; ``OpenRelayPolicy`` adds nothing.
public protocol RelayPolicy: Sendable {
    /// Whether `space` may be listed in the hello to `peer` (and so synced with it).
    func mayServe(space: SpaceID, peer: NodeID) -> Bool
    /// Whether an envelope of `author` in `space` at `epoch` may be stored (refused otherwise,
    /// with ``EnvelopeError/Code/notAMember``).
    func mayStore(space: SpaceID, author: SigningPublicKey, epoch: UInt32) -> Bool
}

/// Serves and stores everything (the relay's behaviour before any roster).
public struct OpenRelayPolicy: RelayPolicy {
    public init() {}
    public func mayServe(space: SpaceID, peer: NodeID) -> Bool { true }
    public func mayStore(space: SpaceID, author: SigningPublicKey, epoch: UInt32) -> Bool { true }
}

/// What a relay keeps, behind one interface for every engine: the node's SQLite database (the
/// default, one relay process) or PostgreSQL (`SarabanRelayPostgres`: many relay processes on one
/// database). The relay never holds a key: it verifies signatures and hash chains and stores
/// envelopes as opaque bytes.
///
/// Every method may be called concurrently from many sessions. A failure the office should hear
/// about (database down, full, read-only) is thrown as ``RelayStoreError``.
public protocol RelayStore: PeerStatusStore {
    /// `sqlite` or `postgresql` (logs, metrics, `saraban status`).
    var kind: String { get }

    /// Every carried space with what the store holds of it (per author, the last sequence stored).
    func carriedSpaces() async throws -> [SpaceID: FeedVector]

    /// What the store holds of each of `spaces` (a space not carried is left out).
    func vectors(of spaces: [SpaceID]) async throws -> [SpaceID: FeedVector]

    /// Starts carrying `spaces` (idempotent). With `peers`, each space is served only to those
    /// peers (added to any already named); without, a space nobody was named for is served to
    /// every trusted peer.
    func carry(_ spaces: [SpaceID], for peers: [NodeID]) async throws

    /// The carried spaces that may be served to `peer`: those it was named for, and those no
    /// peer was named for.
    func servedSpaces(to peer: NodeID) async throws -> [SpaceID]

    /// Verifies (signature, hash chain; any epoch: a relay holds no key) and stores `envelopes`
    /// of `space`, each author's in chain order, idempotently: an envelope already stored (by this
    /// process or another) is a duplicate, never a second row. `holds` in the report covers at
    /// least the authors of the batch.
    func store(space: SpaceID, envelopes: [Envelope]) async throws -> ReceiveReport

    /// ``store(space:envelopes:)`` heard back by callback: `done` is called once, on any thread.
    /// The relay's sessions store this way, with no task of their own between a batch and its
    /// ack. Default: a task awaits ``store(space:envelopes:)``; PostgreSQL's store lanes call
    /// `done` from the task that committed the transaction.
    func store(space: SpaceID, envelopes: [Envelope], then done: @escaping @Sendable (Result<ReceiveReport, any Error>) -> Void)

    /// Per author, the envelopes of `space` whose last sequence is above `after[author]`, in
    /// store order, at most `limit.envelopes` and about `limit.bytes` (at least one);
    /// `complete` when none are left.
    func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (envelopes: [Envelope], complete: Bool)

    /// Wake-ups for envelopes stored by other processes, until the store is closed.
    func changes() -> AsyncStream<RelayStoreChange>

    /// Whether the store can serve now (checked cheaply; a relay polls it every second or so).
    func health() async -> RelayHealth

    /// Releases connections; further calls throw.
    func close() async

    /// Per space, per author, the envelope held that ends at the author's entry of `spaces`: the
    /// head tags of the relay's summaries (Sync/PROTOCOL.md). Default: none (summaries go
    /// without tags).
    func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]]

    /// Where this relay keeps attachment manifests and chunks, when not in the node's data
    /// directory (PostgreSQL: tables every relay process shares). Default: nil (the directory).
    var attachmentStore: (any AttachmentStore)? { get }

    /// Where this relay keeps head claims (Docs/SECURITY.md, "Withholding") when the store keeps
    /// them for every relay process (PostgreSQL). Default: nil (a relay on SQLite keeps them in
    /// the node's own database, through a ``NodeSyncDriver``).
    var claimStore: (any RelayClaimStore)? { get }

    /// Whether the store applies the authority model itself (SQLite: the node's receive path folds
    /// each space's membership log). When false (PostgreSQL), ``RelaySyncDriver`` folds the control
    /// envelopes of each space into a ``SarabanFeed/RelayRoster`` and applies it. Default: false.
    var judgesMembership: Bool { get }

    /// The control envelopes (epoch ``SarabanFeed/ControlEntry/publicEpoch``) the store holds of
    /// each of `spaces`, in store order (a space without any is left out). Default: none.
    func controlEnvelopes(of spaces: [SpaceID]) async throws -> [SpaceID: [Envelope]]

    /// Per space, per author, the first sequence number held, for every feed no longer held from
    /// its first envelope (retention: Docs/RELAY.md, "Retention"); the horizons the relay
    /// announces. Default: none (SQLite keeps every envelope).
    func feedFloors() async throws -> [SpaceID: FeedVector]

    /// The position from which ``stored(after:limit:)`` reports what is stored from now on (read
    /// it before the vectors it complements), or nil when the store keeps no such stream: the
    /// relay then catches up space by space after each wake-up (SQLite). Default: nil.
    func currentPosition() async throws -> StorePosition?

    /// What other processes stored after `position`, across every space, in position order: at
    /// most `limit.envelopes` and about `limit.bytes` (at least one). Never skips an envelope
    /// whose position is below one already reported (transactions that commit out of order are
    /// reported once all before them have ended). Only called when ``currentPosition()`` gave one.
    func stored(after position: StorePosition, limit: FetchLimit) async throws -> StoredPage
}

/// A place in a store's stream of stored envelopes (``RelayStore/stored(after:limit:)``): every
/// envelope of every space has one, and a reader that saw everything up to a position never
/// meets an envelope below it later. Opaque to the relay: only the store compares them.
public struct StorePosition: Sendable, Hashable, CustomStringConvertible {
    /// PostgreSQL: the id of the transaction that stored the envelope (xid8).
    public var transaction: Int64
    /// PostgreSQL: the envelope's `n` within it (from the store's sequence).
    public var index: Int64

    public init(transaction: Int64, index: Int64) {
        self.transaction = transaction
        self.index = index
    }

    public var description: String { "\(transaction).\(index)" }
}

/// One read of a store's stream: the envelopes, of any space, stored by other processes after a
/// position, in position order.
public struct StoredPage: Sendable {
    /// In position order (each author's in chain order); the space is in each header.
    public var envelopes: [Envelope]
    /// Where the next read starts.
    public var next: StorePosition
    /// The read was cut by its limit: more is readable now.
    public var more: Bool
    /// Envelopes stored beyond `next` are committed but cannot be read in order yet (a
    /// transaction that began before theirs is still running): read again shortly.
    public var heldBack: Bool

    public init(envelopes: [Envelope], next: StorePosition, more: Bool, heldBack: Bool) {
        self.envelopes = envelopes
        self.next = next
        self.more = more
        self.heldBack = heldBack
    }
}

extension RelayStore {
    public func store(space: SpaceID, envelopes: [Envelope], then done: @escaping @Sendable (Result<ReceiveReport, any Error>) -> Void) {
        storeInTask(space: space, envelopes: envelopes, then: done)
    }

    /// The default of ``store(space:envelopes:then:)``: a task awaits ``store(space:envelopes:)``.
    public func storeInTask(space: SpaceID, envelopes: [Envelope], then done: @escaping @Sendable (Result<ReceiveReport, any Error>) -> Void) {
        Task {
            do { done(.success(try await store(space: space, envelopes: envelopes))) } catch { done(.failure(error)) }
        }
    }

    public var attachmentStore: (any AttachmentStore)? { nil }

    public var claimStore: (any RelayClaimStore)? { nil }

    public var judgesMembership: Bool { false }

    public func controlEnvelopes(of spaces: [SpaceID]) async throws -> [SpaceID: [Envelope]] { [:] }

    public func feedFloors() async throws -> [SpaceID: FeedVector] { [:] }

    public func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]] { [:] }

    public func currentPosition() async throws -> StorePosition? { nil }

    public func stored(after position: StorePosition, limit: FetchLimit) async throws -> StoredPage {
        StoredPage(envelopes: [], next: position, more: false, heldBack: false)
    }
}

/// Head claims kept by a relay store for every relay process on it: the latest verified claim
/// per (space, claimant). The relay's driver checks each claim (signature, space, and that the
/// roster it folded has the claimant as a member) before it asks the store to keep it.
public protocol RelayClaimStore: Sendable {
    /// Keeps each of `claims` (all of `space`, verified) that is newer than the claim held of
    /// its claimant, tells the other relay processes (``RelayStoreChange/claims(_:)``), and
    /// returns those kept.
    func keepClaims(space: SpaceID, _ claims: [HeadClaim], receivedAt: Int64) async throws -> [HeadClaim]

    /// The claims held of each of `spaces` (the latest per claimant), ascending by claimant.
    func claims(of spaces: [SpaceID]) async throws -> [SpaceID: [HeadClaim]]
}
