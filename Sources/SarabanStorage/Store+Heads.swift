import Foundation
import GRDB
import SarabanCrypto
import SarabanFeed

// What sync's fork check at equal vectors reads (Sync/PROTOCOL.md, "summary with head tags"):
// the envelope that ends at a vector entry, and the one covering a position of a peer's summary.

extension Store {
    /// Per space, per author of `spaces[space]`, the stored envelope that ends at the author's
    /// entry (the feed's head at that point; entries without one are left out). Looked up by
    /// position, so a vector read earlier still gets the heads that match it.
    public func feedHeads(_ spaces: [SpaceID: FeedVector]) throws(StorageError) -> [SpaceID: [SigningPublicKey: FeedHead]] {
        try read { db in
            let statement = try db.cachedStatement(
                sql: "SELECT id FROM envelopes WHERE space = ? AND author = ? AND seq_end = ?")
            var out: [SpaceID: [SigningPublicKey: FeedHead]] = [:]
            for (space, vector) in spaces {
                let sp = Data(space.bytes)
                for (author, seq) in vector.entries {
                    guard
                        let id = try Data.fetchOne(
                            statement, arguments: [sp, Data(author.rawRepresentation), Int64(seq)])
                    else { continue }
                    out[space, default: [:]][author] = FeedHead(lastSequence: seq, lastID: try EnvelopeID(bytes: [UInt8](id)))
                }
            }
            return out
        }
    }

    /// The stored envelope of `author` in `space` that covers sequence number `seq` (its last
    /// sequence number and id), or nil when this node holds less than `seq` of that feed.
    public func storedEnvelope(space: SpaceID, author: SigningPublicKey, covering seq: UInt64) throws(StorageError)
        -> (seqEnd: UInt64, id: EnvelopeID)?
    {
        try read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT seq_start, seq_end, id FROM envelopes WHERE space = ? AND author = ? AND seq_end >= ?
                        ORDER BY seq_end LIMIT 1
                        """,
                    arguments: [Data(space.bytes), Data(author.rawRepresentation), Int64(seq)]),
                UInt64(row[0] as Int64) <= seq
            else { return nil }
            return (UInt64(row[1] as Int64), try EnvelopeID(bytes: [UInt8](row[2] as Data)))
        }
    }
}
