import Foundation
import SarabanCore
import SarabanCrypto
import SarabanFeed
@testable import SarabanStorage
import Testing

/// A relay's spaces per peer (`space carry --for`) after migration `v7`: a session reads the open
/// spaces and its own (`relay_open_spaces`, `relay_space_peers`).
@Suite struct RelaySpacesTests {
    /// A relay database written by the schema before peer status rows (v6, what main shipped with
    /// the search index) migrates: its carried spaces become open, served to every peer, until
    /// peers are named for one; naming peers closes the space to the others, and carrying it again
    /// does not reopen it.
    @Test func aSchema6RelayMigratesItsSpacesAsOpenAndNamingPeersClosesThem() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let replica = ReplicaID(bytes: [UInt8](repeating: 9, count: 16))
        let a = SpaceID(bytes: [UInt8](repeating: 1, count: 16))!
        let b = SpaceID(bytes: [UInt8](repeating: 2, count: 16))!
        let old = try Store.open(path: dir.file("r.db"), replica: replica, create: true, migratingUpTo: "v6")
        try old.pool.write { db in
            for s in [a, b] {
                try db.execute(sql: "INSERT INTO spaces(id, name, role) VALUES (?, 'r', 1)", arguments: [Data(s.bytes)])
            }
        }
        try old.close()

        let store = try Store.open(path: dir.file("r.db"), replica: replica)
        defer { try? store.close() }
        #expect(try store.schemaInfo().migrations.contains("v7"))
        let p = SigningKeyPair.generate().publicKey
        let q = SigningKeyPair.generate().publicKey
        #expect(Set(try store.relaySpaces(servedTo: p)) == [a, b])

        try store.nameRelaySpaces([a], for: [q])
        #expect(try store.relaySpaces(servedTo: p) == [b])
        #expect(Set(try store.relaySpaces(servedTo: q)) == [a, b])
        // Carrying again without peers leaves a named space named.
        try store.nameRelaySpaces([a], for: [])
        #expect(try store.relaySpaces(servedTo: p) == [b])

        // A space carried after the migration is open until peers are named for it.
        let c = SpaceID(bytes: [UInt8](repeating: 3, count: 16))!
        try store.addSpace(id: c, name: "c", role: .relay)
        #expect(Set(try store.relaySpaces(servedTo: p)) == [b, c])
    }
}
