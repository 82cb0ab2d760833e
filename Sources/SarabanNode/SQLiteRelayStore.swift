import Foundation
import SarabanCrypto
import SarabanStorage
import SarabanSync

/// The relay's store in the node's own SQLite database: the default, for one relay process (the
/// code every relay ran before ``RelayStore`` existed, behind the interface). Other processes on
/// the same data directory (a CLI `space carry`, a second `serve`) are noticed by polling the
/// envelope log's position.
public struct SQLiteRelayStore: RelayStore {
    public let node: Node
    /// How often ``changes()`` probes the envelope log.
    public var pollInterval: Duration

    /// The node's receive path folds each space's membership log and refuses what it does not admit.
    public var judgesMembership: Bool { true }

    public init(node: Node, pollInterval: Duration = .milliseconds(250)) {
        self.node = node
        self.pollInterval = pollInterval
    }

    public var kind: String { "sqlite" }
    var store: Store { node.store }

    /// Runs a store call off the cooperative pool, mapping a full, read-only or locked database
    /// to a ``RelayStoreError`` the office is told.
    private func run<T: Sendable>(_ body: @escaping @Sendable () throws(StorageError) -> T) async throws -> T {
        try await blocking {
            do throws(StorageError) { return try body() } catch {
                if let r = Self.refusal(error) { throw r }
                throw error
            }
        }
    }

    /// The ``RelayStoreError`` for a storage failure the office should retry later (nil: another failure).
    static func refusal(_ error: StorageError) -> RelayStoreError? {
        if error.code == .readOnly { return RelayStoreError(.readOnly, error.message) }
        if error.code == .busy { return RelayStoreError(.unavailable, error.message) }
        // SQLITE_FULL (13) and SQLITE_IOERR (10) in the low byte of the extended code.
        switch (error.sqliteCode ?? 0) & 0xFF {
        case 13: return RelayStoreError(.full, error.message)
        case 10: return RelayStoreError(.unavailable, error.message)
        default: return nil
        }
    }

    public func carriedSpaces() async throws -> [SpaceID: FeedVector] {
        try await run { () throws(StorageError) in try store.carriedSpaces() }
    }

    public func vectors(of spaces: [SpaceID]) async throws -> [SpaceID: FeedVector] {
        try await run { () throws(StorageError) in try store.feedVectors(of: spaces) }
    }

    public func carry(_ spaces: [SpaceID], for peers: [NodeID]) async throws {
        let node = self.node
        try await blocking {
            let carried = try node.store.feedVectors(of: spaces)
            for s in spaces where carried[s] == nil { try node.carry(space: s) }
            try node.store.nameRelaySpaces(spaces, for: peers.map(\.publicKey))
        }
    }

    /// The spaces named for `peer` or for nobody, less those whose membership log serves them
    /// only to members and designated relays `peer` is not among (``Node/relayServes(_:to:)``).
    public func servedSpaces(to peer: NodeID) async throws -> [SpaceID] {
        let node = self.node
        let named = try await run { () throws(StorageError) in try store.relaySpaces(servedTo: peer.publicKey) }
        return try await blocking { try named.filter { s throws(NodeError) in try node.relayServes(s, to: peer) } }
    }

    public func store(space: SpaceID, envelopes: [Envelope]) async throws -> ReceiveReport {
        let now = node.now()
        return try await run { () throws(StorageError) in
            try store.receiveEnvelopes(space: space, envelopes, identity: nil, receivedAt: now)
        }
    }

    public func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) async throws -> (envelopes: [Envelope], complete: Bool) {
        try await run { () throws(StorageError) in try store.envelopes(space: space, after: after, limit: limit) }
    }

    public func changes() -> AsyncStream<RelayStoreChange> {
        let store = self.store
        let interval = pollInterval
        return AsyncStream { continuation in
            let task = Task {
                var last = try? await blocking { try store.envelopeLogPosition() }
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    guard let now = try? await blocking({ try store.envelopeLogPosition() }) else { continue }
                    if now != last {
                        last = now
                        continuation.yield(.anywhere)
                    }
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    public func health() async -> RelayHealth {
        do {
            _ = try await blocking { try store.envelopeLogPosition() }
            return .ready
        } catch {
            return .unready("\(error)")
        }
    }

    public func close() async {}

    public func feedHeads(_ spaces: [SpaceID: FeedVector]) async throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        try await run { () throws(StorageError) in try store.feedHeads(spaces) }
    }

    public func applyPeerStatus(_ changes: [PeerStatusChange]) async throws {
        try await SQLitePeerStatusStore(store: store).applyPeerStatus(changes)
    }

    public func peerStatuses() async throws -> [StoredPeerStatus] {
        try await SQLitePeerStatusStore(store: store).peerStatuses()
    }
}
