import Foundation
import GRDB
import SarabanCore
import SarabanFeed

extension Store {
    /// Per author (as the core's replica id: the first 16 bytes of the signing key), the change
    /// sequence ranges of `space` covered by stored envelopes. An envelope is stored only once its
    /// signature and hash chain verified (``receiveEnvelopes(space:_:identity:receivedAt:)``) or
    /// when this node sealed it itself, so a covered change is one whose origin was verified.
    /// Changes that only came through the change log (a change file merged by `saraban doc merge`)
    /// are not covered. Used by `saraban history`.
    public func envelopeCoverage(space: SpaceID) throws(StorageError) -> [ReplicaID: [ClosedRange<UInt64>]] {
        try read { db in
            var out: [ReplicaID: [ClosedRange<UInt64>]] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT author, seq_start, seq_end FROM envelopes WHERE space = ? ORDER BY author, seq_start",
                arguments: [Data(space.bytes)])
            {
                let author = ReplicaID(bytes: [UInt8](row[0] as Data))
                let start = UInt64(row[1] as Int64)
                let end = UInt64(row[2] as Int64)
                guard start <= end else { continue }
                out[author, default: []].append(start...end)
            }
            return out
        }
    }
}
