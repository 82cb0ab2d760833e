import Foundation
import Logging
import PostgresNIO
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode

/// Head claims in the relay's database (schema 5): every relay process passes on what any of
/// them kept, so members behind different relay processes still hear each other's claims
/// (Docs/SECURITY.md, "Withholding"). One row per (space, claimant), replaced only by a newer
/// claim; a kept claim is announced on the envelopes' channel as `INSTANCE c:SPACE`.
extension PostgresRelayStore: RelayClaimStore {
    public var claimStore: (any RelayClaimStore)? { self }

    /// (The notification is an uncommon query's init plan: sent once, and only when a row was kept.)
    public func keepClaims(space: SpaceID, _ claims: [HeadClaim], receivedAt: Int64) async throws -> [HeadClaim] {
        // The newest per claimant (one row may be changed once per statement).
        var newest: [SigningPublicKey: HeadClaim] = [:]
        for c in claims where c.space == space && c.time > newest[c.claimant]?.time ?? .min { newest[c.claimant] = c }
        guard !newest.isEmpty else { return [] }
        let list = newest.values.sorted { $0.claimant.rawRepresentation.lexicographicallyPrecedes($1.claimant.rawRepresentation) }
        let sp = ByteBuffer(bytes: space.bytes)
        let claimants = list.map { ByteBuffer(bytes: $0.claimant.rawRepresentation) }
        let times = list.map(\.time)
        let bytes = list.map { ByteBuffer(bytes: $0.bytes) }
        let payload = instance + " c:" + space.hex
        let kept: Set<SigningPublicKey> = try await guarded("keep head claims") {
            let rows = try await self.client.query(
                """
                WITH kept AS (
                    INSERT INTO head_claims(space, claimant, time, received_at, bytes)
                    SELECT \(sp), c, t, \(receivedAt), b FROM unnest(\(claimants)::bytea[], \(times)::int8[], \(bytes)::bytea[]) AS u(c, t, b)
                    ON CONFLICT (space, claimant) DO UPDATE SET time = excluded.time, received_at = excluded.received_at,
                        bytes = excluded.bytes
                    WHERE excluded.time > head_claims.time
                    RETURNING claimant
                )
                SELECT claimant, (SELECT pg_notify(\(Self.channel), \(payload)))::text FROM kept
                """, logger: self.logger)
            var out = Set<SigningPublicKey>()
            for try await (c, _) in rows.decode((ByteBuffer, String?).self) {
                if let key = try? SigningPublicKey(rawRepresentation: Array(c.readableBytesView)) { out.insert(key) }
            }
            return out
        }
        return list.filter { kept.contains($0.claimant) }
    }

    public func claims(of spaces: [SpaceID]) async throws -> [SpaceID: [HeadClaim]] {
        guard !spaces.isEmpty else { return [:] }
        let ids = spaces.map { ByteBuffer(bytes: $0.bytes) }
        return try await guarded("read head claims") {
            let rows = try await self.client.query(
                "SELECT space, bytes FROM head_claims WHERE space = ANY(\(ids)) ORDER BY space, claimant", logger: self.logger)
            var out: [SpaceID: [HeadClaim]] = [:]
            for try await (s, b) in rows.decode((ByteBuffer, ByteBuffer).self) {
                // Verified before they were stored; one that no longer decodes is skipped.
                guard let space = SpaceID(bytes: Array(s.readableBytesView)),
                    let claim = try? HeadClaim.decode(Array(b.readableBytesView))
                else { continue }
                out[space, default: []].append(claim)
            }
            return out
        }
    }
}
