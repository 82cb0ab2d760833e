import Foundation
import Logging
import SarabanNode
import SarabanRelayPostgres
import SarabanStorage
import SarabanSync

/// A relay's store as the CLI chooses it: `--store URL`, else config.json `store`, else the
/// node's own SQLite database.
enum RelayStores {
    /// The PostgreSQL location configured for this relay (nil: its own database).
    static func location(_ node: Node, flag: String?) throws(NodeError) -> PostgresLocation? {
        let configured = try node.currentConfig().store
        guard let text = flag ?? configured, !text.isEmpty else { return nil }
        guard node.role == .relay else {
            throw NodeError(
                .invalidArgument,
                "a relay store (--store, config.json `store`) is for relays; this node is a member and keeps its envelopes "
                    + "in its own database: remove the setting (ใช้ได้กับรีเลย์เท่านั้น)")
        }
        guard text != "sqlite" else { return nil }
        return try PostgresLocation(parsing: text)
    }

    /// Opens the relay's store (connecting to PostgreSQL and migrating its schema when configured).
    static func open(_ node: Node, flag: String?, logger: Logger = Logger(label: "saraban.relay")) async throws -> any RelayStore {
        guard let location = try location(node, flag: flag) else { return SQLiteRelayStore(node: node) }
        do {
            return try await PostgresRelayStore.open(location, logger: logger)
        } catch let e as RelayStoreError {
            throw NodeError(
                .unreachable,
                "cannot open the relay store \(location.redacted): \(e); check that PostgreSQL runs and that the URL, "
                    + "user and database are right (เชื่อมต่อฐานข้อมูลของรีเลย์ไม่ได้)")
        }
    }

    /// Runs `body` with the relay's store open, closing it after.
    static func with<T>(_ node: Node, flag: String?, _ body: (any RelayStore) async throws -> T) async throws -> T {
        let store = try await open(node, flag: flag)
        do {
            let r = try await body(store)
            await store.close()
            return r
        } catch {
            await store.close()
            throw error
        }
    }

    /// Every peer's recorded status: a PostgreSQL relay's from its store, any other node's from its database.
    static func peerStatuses(_ node: Node) async throws -> [String: PeerStatus] {
        guard node.role == .relay, try location(node, flag: nil) != nil else { return try node.peerStatuses() }
        return try await with(node, flag: nil) { store in
            Dictionary(try await store.peerStatuses().map { ($0.peer.nodeID.text, PeerStatus($0)) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// What this node holds of each carried space: a PostgreSQL relay's from its store.
    static func carriedSpaces(_ node: Node) async throws -> [SpaceID: FeedVector] {
        guard node.role == .relay, try location(node, flag: nil) != nil else { return try node.carriedSpaces() }
        return try await with(node, flag: nil) { try await $0.carriedSpaces() }
    }
}
