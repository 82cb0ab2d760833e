import Foundation
import GRDB
import SarabanCrypto
import SarabanFeed

// Head claims (Docs/SECURITY.md, "Withholding"): the latest verified claim per (space, claimant),
// this node's own made when what it holds changed, and who has not claimed for a long time.

/// What the store did with head claims received from a peer.
public struct ClaimReceipt: Sendable, Hashable {
    /// Claims kept (newer than the one held of their claimant, or the first).
    public var keptClaims: [HeadClaim] = []
    public var kept: Int { keptClaims.count }
    /// Claims no newer than the one held (an older claim never replaces a newer one).
    public var older = 0
    /// Claims refused, and why: a signature that does not verify, a claimant not a member.
    public var refused: [String] = []
    /// The refused claims whose only fault is a claimant not (yet) a member as far as this node
    /// knows: its membership may arrive later in the same session, so the node tries them again.
    public var notMembers: [HeadClaim] = []

    public init() {}
}

/// When a member of a space last claimed what it holds (``Store/claimTimes(_:)``).
public struct ClaimTime: Sendable, Hashable {
    public var space: SpaceID
    public var member: SigningPublicKey
    /// Its latest claim's time (its clock, ms since 1970); nil: no claim of it is held.
    public var time: Int64?
}

extension Store {
    /// Verifies `claims` of `space` and keeps each that is newer than the one held of its
    /// claimant. A claim is refused when its signature does not verify, it is of another space,
    /// or its claimant is not a member of the space (the roster this node folded; for a space
    /// without a membership log, its member list).
    public func keepClaims(space: SpaceID, _ claims: [HeadClaim], receivedAt: Int64) throws(StorageError) -> ClaimReceipt {
        var receipt = ClaimReceipt()
        guard !claims.isEmpty else { return receipt }
        try writeTransaction("keep head claims", durable: false) { db in
            let members = try claimants(db, space: space)
            for c in claims {
                if let why = Self.claimRefusal(c, space: space, members: members) {
                    receipt.refused.append("\(c.claimant.nodeID): \(why)")
                    if members != nil && c.space == space && c.hasValidSignature { receipt.notMembers.append(c) }
                    continue
                }
                if try Self.saveClaim(db, c, receivedAt: receivedAt) { receipt.keptClaims.append(c) } else { receipt.older += 1 }
            }
        }
        return receipt
    }

    /// Why `c` is not kept (nil: it is).
    static func claimRefusal(_ c: HeadClaim, space: SpaceID, members: Set<SigningPublicKey>?) -> String? {
        if let why = c.refusal(in: space) { return why }
        guard let members else { return "this node does not carry space \(space.hex)" }
        guard members.contains(c.claimant) else { return "the claimant is not a member of space \(space.hex)" }
        return nil
    }

    /// The members of `space` who may claim (nil: the space is not carried).
    func claimants(_ db: Database, space: SpaceID) throws -> Set<SigningPublicKey>? {
        let sp = Data(space.bytes)
        guard try Bool.fetchOne(db, sql: "SELECT 1 FROM spaces WHERE id = ?", arguments: [sp]) == true else { return nil }
        let roster = try loadRoster(db, space: space)
        if roster.current.hasGenesis { return roster.current.members }
        return Set(try Self.loadMembers(db, space: sp).values.filter { $0.removedEpoch == nil }.map(\.key))
    }

    /// Stores `c` unless a claim of its claimant at least as new is held; returns whether it did.
    static func saveClaim(_ db: Database, _ c: HeadClaim, receivedAt: Int64) throws -> Bool {
        try db.execute(
            sql: """
                INSERT INTO head_claims(space, claimant, time, received_at, bytes) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(space, claimant) DO UPDATE SET time = excluded.time, received_at = excluded.received_at,
                    bytes = excluded.bytes
                WHERE excluded.time > head_claims.time
                """,
            arguments: [
                Data(c.space.bytes), Data(c.claimant.rawRepresentation), c.time, receivedAt, Data(c.bytes),
            ])
        return db.changesCount > 0
    }

    /// The claims held of each of `spaces` (the latest per claimant), ascending by claimant.
    public func headClaims(_ spaces: some Sequence<SpaceID>) throws(StorageError) -> [SpaceID: [HeadClaim]] {
        try read { db in try Self.loadClaims(db, spaces) }
    }

    static func loadClaims(_ db: Database, _ spaces: some Sequence<SpaceID>) throws -> [SpaceID: [HeadClaim]] {
        var out: [SpaceID: [HeadClaim]] = [:]
        let statement = try db.cachedStatement(sql: "SELECT bytes FROM head_claims WHERE space = ? ORDER BY claimant")
        for space in spaces {
            let rows = try Data.fetchAll(statement, arguments: [Data(space.bytes)])
            // Verified before they were stored; one that no longer decodes is skipped.
            let claims = rows.compactMap { try? HeadClaim.decode([UInt8]($0)) }
            if !claims.isEmpty { out[space] = claims }
        }
        return out
    }

    /// Makes this node's claim of each space in `heads` it is a member of, where what it holds
    /// changed since its last claim or that claim is older than `refreshAfter` ms; returns the
    /// claims then held of those spaces.
    public func refreshClaims(
        heads: [SpaceID: [SigningPublicKey: FeedHead]], signer: SigningKeyPair, now: Int64, refreshAfter: Int64,
        notSoonerThan: Int64 = 0
    ) throws(StorageError) -> [SpaceID: [HeadClaim]] {
        // Read first: most sessions find nothing changed and write nothing (no fsync).
        var due: [HeadClaim] = []
        let held = try read { db in
            for (space, h) in heads.sorted(by: { $0.key < $1.key }) {
                guard try Int.fetchOne(db, sql: "SELECT role FROM spaces WHERE id = ?", arguments: [Data(space.bytes)]) == 0,
                    try claimants(db, space: space)?.contains(signer.publicKey) == true
                else { continue }
                let mine = try Data.fetchOne(
                    db, sql: "SELECT bytes FROM head_claims WHERE space = ? AND claimant = ?",
                    arguments: [Data(space.bytes), Data(signer.publicKey.rawRepresentation)]
                ).flatMap { try? HeadClaim.decode([UInt8]($0)) }
                if let mine, mine.matches(h), now - mine.time < refreshAfter { continue }
                // Holdings changed, but the last claim is recent: it stands until `notSoonerThan`
                // has passed (each new claim is sent to every member in every later session).
                // (A clock set back still replaces it: the new claim's time follows the last.)
                if let mine, now >= mine.time, now - mine.time < notSoonerThan { continue }
                // Never older than the last (a clock set back): a claim must replace it.
                due.append(HeadClaim.make(space: space, signer: signer, time: max(now, (mine?.time ?? 0) + 1), heads: h))
            }
            return try Self.loadClaims(db, heads.keys)
        }
        guard !due.isEmpty else { return held }
        var result: [SpaceID: [HeadClaim]] = [:]
        try writeTransaction("make head claims") { db in
            for c in due { _ = try Self.saveClaim(db, c, receivedAt: now) }
            result = try Self.loadClaims(db, heads.keys)
        }
        return result
    }

    /// Per carried space, each member (this node left out) and the time of its latest claim held.
    public func claimTimes(excluding me: SigningPublicKey) throws(StorageError) -> [ClaimTime] {
        try read { db in
            var out: [ClaimTime] = []
            for raw in try Data.fetchAll(db, sql: "SELECT id FROM spaces ORDER BY id") {
                guard let space = SpaceID(bytes: [UInt8](raw)), let members = try claimants(db, space: space) else { continue }
                var times: [SigningPublicKey: Int64] = [:]
                for row in try Row.fetchAll(db, sql: "SELECT claimant, time FROM head_claims WHERE space = ?", arguments: [raw]) {
                    if let k = try? SigningPublicKey(rawRepresentation: [UInt8](row[0] as Data)) { times[k] = row[1] }
                }
                for m in members.sorted(by: SigningPublicKey.precedes) where m != me {
                    out.append(ClaimTime(space: space, member: m, time: times[m]))
                }
            }
            return out
        }
    }
}
