import Foundation
import Logging
import PostgresNIO
import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanSync

/// What ``PostgresRelayStore/retire(before:archive:)`` retired, month by month.
public struct RetirementReport: Sendable, Codable, Equatable {
    public struct Month: Sendable, Codable, Equatable {
        /// `YYYY-MM` (UTC, the month the relay stored the envelopes in).
        public var month: String
        /// Envelopes dropped with the month's partition.
        public var envelopes: Int
        /// Envelopes of the stretch of each feed it covers (with the control envelopes kept
        /// there, which stay stored): what its archive holds, archived or not.
        public var covered: Int
        /// Bytes of those envelopes themselves (not the rows' overhead or indexes).
        public var bytes: Int
        /// Feeds (space, author) whose horizon moved.
        public var feeds: Int
        /// The directory its change files were written to, one per space (none: not archived).
        public var archive: String?
    }
    /// Attachments retired, by the month they were last stored or served in.
    public struct Attachments: Sendable, Codable, Equatable {
        /// `YYYY-MM` (UTC) of their last use.
        public var month: String
        /// Attachments (roots) let go: their manifests and chunks deleted, their roots listed in `retired_roots`.
        public var attachments: Int
        public var chunks: Int
        /// Bytes of the sealed chunks.
        public var bytes: Int
        /// Where they were written first (`DIR/YYYY-MM/attachments/ROOT/`; none: not archived).
        public var archive: String?
    }
    public var months: [Month]
    public var attachments: [Attachments] = []

    public init(months: [Month], attachments: [Attachments] = []) {
        self.months = months
        self.attachments = attachments
    }
}

extension PostgresRelayStore {
    /// Makes this month's partition and the next two's (``PostgresSchema/makePartitionsAhead``).
    func makePartitionsAhead() async throws {
        try await guarded("make the coming months' partitions") {
            try await self.client.query(PostgresQuery(unsafeSQL: PostgresSchema.makePartitionsAhead), logger: self.logger).drain()
        }
    }

    public func feedFloors() async throws -> [SpaceID: FeedVector] {
        try await guarded("read the feeds' horizons") {
            var out: [SpaceID: FeedVector] = [:]
            let rows = try await self.client.query("SELECT space, author, first_seq FROM feed_floors", logger: self.logger)
            for try await (s, a, first) in rows.decode((ByteBuffer, ByteBuffer, Int64).self) {
                guard let space = SpaceID(bytes: Array(s.readableBytesView)),
                    let author = try? SigningPublicKey(rawRepresentation: Array(a.readableBytesView)), first >= 2
                else { continue }
                out[space, default: FeedVector()][author] = UInt64(first)
            }
            return out
        }
    }

    /// The month partitions of `envelopes` (yyyymm), ascending.
    func monthPartitions() async throws -> [Int] {
        try await guarded("list the envelopes' partitions") {
            var out: [Int] = []
            let rows = try await self.client.query(
                """
                SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'envelopes'::regclass
                """, logger: self.logger)
            for try await name in rows.decode(String.self) {
                guard name.hasPrefix("envelopes_"), let m = Int(name.dropFirst("envelopes_".count)), Self.isMonth(m) else { continue }
                out.append(m)
            }
            return out.sorted()
        }
    }

    static func isMonth(_ m: Int) -> Bool { m >= 1970_01 && m <= 9999_12 && (1...12).contains(m % 100) }

    static func monthText(_ m: Int) -> String { String(format: "%04d-%02d", m / 100, m % 100) }

    /// The current month (UTC), yyyymm.
    static func thisMonth(_ now: Date = Date()) -> Int {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = TimeZone(identifier: "UTC")!
        let d = c.dateComponents([.year, .month], from: now)
        return d.year! * 100 + d.month!
    }

    /// Retires every month stored before `before` (yyyymm, at most the current month): for each,
    /// oldest first, writes its envelopes to `archive/YYYY-MM/SPACE.changes` (a synced space's
    /// change file, which a member reads with `saraban doc merge`) when `archive` is given,
    /// raises the horizons of the feeds it held (``feedFloors()``), drops its partition and
    /// tells every relay process. Control envelopes (membership logs) are never retired.
    ///
    /// A month whose rows changed while it was archived is not dropped (run again). Throws
    /// `NodeError` for a month that is not before the current one, and ``RelayStoreError`` when
    /// the database fails.
    public func retire(before: Int, archive: URL?) async throws -> RetirementReport {
        guard Self.isMonth(before) else {
            throw NodeError(.invalidArgument, "\(before) is not a month: give YYYY-MM")
        }
        guard before <= Self.thisMonth() else {
            throw NodeError(
                .invalidArgument,
                "\(Self.monthText(before)) is after this month (\(Self.monthText(Self.thisMonth())), UTC): only months that have ended can be "
                    + "retired; give this month or an earlier one (เลือกเดือนที่ผ่านไปแล้ว)")
        }
        let strays = try await guarded("check the default partition") {
            var n: Int64 = 0
            for try await c in try await self.client.query(
                "SELECT count(*) FROM envelopes_default WHERE period >= 1 AND period < \(before)", logger: self.logger
            ).decode(Int64.self) { n = c }
            return n
        }
        guard strays == 0 else {
            throw NodeError(
                .refused,
                "\(strays) envelopes of those months are in envelopes_default (their month had no partition when stored); "
                    + "nothing was retired: move them to a partition of their month first (Docs/RELAY.md, \"Retention\") "
                    + "(มีซองจดหมายตกค้างใน envelopes_default)")
        }
        var report = RetirementReport(months: [])
        for month in try await monthPartitions() where month < before {
            report.months.append(try await retireMonth(month, archive: archive))
        }
        report.attachments = try await retireAttachments(before: before, archive: archive)
        return report
    }

    static func previousMonth(_ m: Int) -> Int { m % 100 == 1 ? (m / 100 - 1) * 100 + 12 : m - 1 }

    /// Retires the attachments last used (stored, or served to a member who asked) before the
    /// month before `before`. The month's margin: an attachment is stored in the session that
    /// pushes its letter, which may begin before a month ends and store the letter after. A root
    /// is named by the space and its sealed chunks (random nonces), so no later letter refers to
    /// it unless it was made from the same sealed chunks, in the same session.
    ///
    /// Per month of last use, a batch of roots at a time: writes each root's manifest and chunks to
    /// `archive/YYYY-MM/attachments/ROOT/` (the layout of a member's `DATA/attachments/`), then in
    /// one transaction deletes those still unused since (`used` rechecked under the row lock, so a
    /// member fetching one meanwhile keeps it), lists them in `retired_roots` and deletes their chunks.
    func retireAttachments(before: Int, archive: URL?) async throws -> [RetirementReport.Attachments] {
        guard attachmentUse else { return [] }
        let cutoff = Int32(Self.previousMonth(before))
        // Chunks a pull was still storing when their root was retired (written after the delete;
        // a pull lasts minutes, so only roots retired lately, not every one ever retired).
        try await guarded("delete the chunks of retired attachments", seconds: 600) {
            try await self.client.query(
                """
                DELETE FROM attachment_chunks c USING retired_roots r
                WHERE c.root = r.root AND r.retired_at > now() - interval '90 days'
                """, logger: self.logger
            ).drain()
        }
        let months = try await guarded("list the months attachments were last used in") {
            var out: [Int] = []
            for try await m in try await self.client.query(
                "SELECT DISTINCT used FROM attachment_manifests WHERE used < \(cutoff) ORDER BY used", logger: self.logger
            ).decode(Int32.self) { out.append(Int(m)) }
            return out
        }
        var out: [RetirementReport.Attachments] = []
        for month in months {
            let dir = archive?.appendingPathComponent(Self.monthText(month), isDirectory: true).appendingPathComponent(
                "attachments", isDirectory: true)
            var done = RetirementReport.Attachments(month: Self.monthText(month), attachments: 0, chunks: 0, bytes: 0, archive: dir?.path)
            var after = ByteBuffer(bytes: [UInt8]())
            while true {
                let from = after
                let batch = try await guarded("list attachments to retire") {
                    var roots: [(root: [UInt8], chunks: Int, manifest: [UInt8])] = []
                    for try await (r, n, m) in try await self.client.query(
                        """
                        SELECT root, chunks, manifest FROM attachment_manifests
                        WHERE used = \(Int32(month)) AND root > \(from) ORDER BY root LIMIT 256
                        """, logger: self.logger
                    ).decode((ByteBuffer, Int32, ByteBuffer).self) {
                        roots.append((Array(r.readableBytesView), Int(n), Array(m.readableBytesView)))
                    }
                    return roots
                }
                guard let last = batch.last else { break }
                after = ByteBuffer(bytes: last.root)
                if let dir {
                    for r in batch { try await archiveAttachment(r.root, manifest: r.manifest, to: dir) }
                    try Node.syncToDisk([dir.path])
                }
                let roots = batch.map { ByteBuffer(bytes: $0.root) }
                let path = dir?.path
                let (n, chunks, bytes) = try await guarded("retire attachments", seconds: 600) {
                    try await self.client.withTransaction(logger: self.logger) { tx in
                        var gone: [ByteBuffer] = []
                        for try await r in try await tx.query(
                            """
                            WITH gone AS (
                                DELETE FROM attachment_manifests WHERE root = ANY(\(roots)) AND used = \(Int32(month))
                                RETURNING root, space, chunks, used)
                            INSERT INTO retired_roots(root, space, chunks, used, archive)
                            SELECT root, space, chunks, used, \(path) FROM gone
                            ON CONFLICT (root) DO UPDATE SET retired_at = now(), used = excluded.used, archive = excluded.archive
                            RETURNING root
                            """, logger: self.logger
                        ).decode(ByteBuffer.self) { gone.append(r) }
                        var counts: (Int64, Int64) = (0, 0)
                        for try await c in try await tx.query(
                            """
                            WITH d AS (DELETE FROM attachment_chunks WHERE root = ANY(\(gone)::bytea[]) RETURNING octet_length(bytes) AS b)
                            SELECT count(*), coalesce(sum(b), 0)::int8 FROM d
                            """, logger: self.logger
                        ).decode((Int64, Int64).self) { counts = c }
                        return (gone.count, Int(counts.0), Int(counts.1))
                    }
                }
                done.attachments += n
                done.chunks += chunks
                done.bytes += bytes
            }
            logger.notice(
                "retired attachments", metadata: ["month": "\(done.month)", "attachments": "\(done.attachments)", "chunks": "\(done.chunks)"])
            out.append(done)
        }
        return out
    }

    /// Writes one attachment to `dir/ROOT/` as a member keeps it: `manifest` ("SRBNMAN1" ‖ its
    /// bytes) and one file per chunk, each through a temporary name and a rename, a chunk at a time.
    private func archiveAttachment(_ root: [UInt8], manifest bytes: [UInt8], to dir: URL) async throws {
        guard let m = AttachmentManifest(canonicalBytes: bytes[...]), m.root == root else {
            throw NodeError(
                .invalidFile,
                "the stored manifest of attachment \(Hex.encode(root)) does not match its root; nothing of it was retired: "
                    + "check the database (ไฟล์แนบในฐานข้อมูลเสียหาย)")
        }
        let target = dir.appendingPathComponent(Hex.encode(root), isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw NodeError(.io, "cannot create the archive directory \(target.path): \(error.localizedDescription); nothing was retired")
        }
        try Self.writeArchived(m.fileBytes, to: target.appendingPathComponent("manifest"))
        let r = ByteBuffer(bytes: root)
        try await guarded("archive an attachment's chunks", seconds: 600) {
            for try await (i, b) in try await self.client.query(
                "SELECT idx, bytes FROM attachment_chunks WHERE root = \(r) ORDER BY idx", logger: self.logger
            ).decode((Int32, ByteBuffer).self) {
                try Self.writeArchived(Array(b.readableBytesView), to: target.appendingPathComponent("\(i)"))
            }
        }
    }

    private static func writeArchived(_ bytes: [UInt8], to file: URL) throws {
        let temp = file.appendingPathExtension("partial")
        guard FileManager.default.createFile(atPath: temp.path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw NodeError(.io, "cannot write \(temp.path): check the archive directory's permissions and free space; nothing was retired")
        }
        _ = try? FileManager.default.removeItem(at: file)
        try FileManager.default.moveItem(at: temp, to: file)
    }

    /// SQL: every envelope a retired month takes below the horizons (as `space, author, n, bytes`):
    /// the month's rows, and the control envelopes kept in `envelopes_keep` that lie in the same
    /// stretch of their feed (so each archived feed is one unbroken piece of its chain).
    static func retiredRows(_ table: String) -> String {
        """
        WITH f AS (SELECT space, author, max(seq_end) + 1 AS upto FROM \(table) GROUP BY space, author),
        lo AS (SELECT f.space, f.author, f.upto, coalesce(ff.first_seq, 1) AS from_seq
               FROM f LEFT JOIN feed_floors ff ON ff.space = f.space AND ff.author = f.author),
        rows AS (
            SELECT e.space, e.author, e.n, e.bytes FROM \(table) e
            UNION ALL
            SELECT k.space, k.author, k.n, k.bytes FROM envelopes_keep k
            JOIN lo ON k.space = lo.space AND k.author = lo.author AND k.seq_start >= lo.from_seq AND k.seq_end < lo.upto)
        """
    }

    private func retireMonth(_ month: Int, archive: URL?) async throws -> RetirementReport.Month {
        let table = "envelopes_\(month)"  // from the catalog, checked to be a month: no outside text
        let dir = archive?.appendingPathComponent(Self.monthText(month), isDirectory: true)
        let archived: (envelopes: Int, bytes: Int)? = if let dir { try await writeArchive(of: table, to: dir) } else { nil }
        let directory = dir?.path
        return try await guarded("retire \(Self.monthText(month))", seconds: 600) {
            try await self.client.withTransaction(logger: self.logger) { tx in
                // No relay writes a past month's rows; this waits for one still committing, and lets
                // relays read on. (Not ACCESS EXCLUSIVE yet: a relay's store transaction reads every
                // partition and holds the parent's lock, so taking this partition exclusively before
                // the parent would deadlock with it. DROP TABLE below takes the parent, then this.)
                try await tx.query(PostgresQuery(unsafeSQL: "LOCK TABLE \(table) IN SHARE MODE"), logger: self.logger).drain()
                var counts: (Int64, Int64, Int64) = (0, 0, 0)
                for try await c in try await tx.query(
                    PostgresQuery(
                        unsafeSQL: Self.retiredRows(table)
                            + "SELECT (SELECT count(*) FROM \(table)), coalesce(sum(octet_length(bytes)), 0)::int8, count(*) FROM rows"),
                    logger: self.logger
                ).decode((Int64, Int64, Int64).self) { counts = c }
                if let archived, archived.envelopes != Int(counts.2) {
                    throw NodeError(
                        .refused,
                        "\(Self.monthText(month)) changed while it was archived (\(archived.envelopes) envelopes written, \(counts.2) held): "
                            + "nothing of it was dropped; run the command again")
                }
                var feeds: Int64 = 0
                for try await f in try await tx.query(
                    PostgresQuery(
                        unsafeSQL: """
                            WITH raised AS (
                                INSERT INTO feed_floors(space, author, first_seq)
                                SELECT space, author, max(seq_end) + 1 FROM \(table) GROUP BY space, author
                                ON CONFLICT (space, author) DO UPDATE SET first_seq = greatest(feed_floors.first_seq, excluded.first_seq)
                                RETURNING 1
                            ) SELECT count(*) FROM raised
                            """), logger: self.logger
                ).decode(Int64.self) { feeds = f }
                // Membership logs stay: control envelopes stored in a month (by a relay of schema 5
                // during an upgrade) move to envelopes_keep before the month goes.
                try await tx.query(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO envelopes(space, author, seq_start, seq_end, epoch, n, id, stored_at, bytes, tx, period)
                            SELECT space, author, seq_start, seq_end, epoch, n, id, stored_at, bytes, tx, 0 FROM \(table) WHERE epoch = -1
                            """), logger: self.logger
                ).drain()
                try await tx.query(
                    """
                    INSERT INTO retired_periods(period, envelopes, bytes, feeds, archive)
                    VALUES (\(Int32(month)), \(counts.0), \(counts.1), \(feeds), \(directory))
                    ON CONFLICT (period) DO UPDATE SET retired_at = now(), envelopes = retired_periods.envelopes + excluded.envelopes,
                        bytes = retired_periods.bytes + excluded.bytes, feeds = excluded.feeds, archive = excluded.archive
                    """, logger: self.logger
                ).drain()
                // Last, so relays wait on the parent's lock as briefly as can be (their transactions
                // in flight end first; new ones wait until this one commits).
                try await tx.query(PostgresQuery(unsafeSQL: "DROP TABLE \(table)"), logger: self.logger).drain()
                // Under no process's name: every relay process, this one's included, reads the horizons again.
                try await tx.query("SELECT pg_notify(\(Self.channel), 'retire f')", logger: self.logger).drain()
                self.logger.notice(
                    "retired a month of envelopes",
                    metadata: ["month": "\(Self.monthText(month))", "envelopes": "\(counts.0)", "feeds": "\(feeds)"])
                return RetirementReport.Month(
                    month: Self.monthText(month), envelopes: Int(counts.0), covered: Int(counts.2), bytes: Int(counts.1), feeds: Int(feeds), archive: directory)
            }
        }
    }

    /// Streams `table`'s envelopes, space by space in store order (each author's in chain order),
    /// into `dir/SPACE.changes`, each written to a temporary name, synced, then renamed; returns
    /// how many envelopes and bytes were written. Never holds a month in memory.
    private func writeArchive(of table: String, to dir: URL) async throws -> (envelopes: Int, bytes: Int) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw NodeError(.io, "cannot create the archive directory \(dir.path): \(error.localizedDescription); nothing was retired")
        }
        let counts = try await guarded("count the month's envelopes", seconds: 600) {
            var out: [(SpaceID, Int)] = []
            for try await (s, n) in try await self.client.query(
                PostgresQuery(unsafeSQL: Self.retiredRows(table) + "SELECT space, count(*) FROM rows GROUP BY space ORDER BY space"),
                logger: self.logger
            ).decode((ByteBuffer, Int64).self) {
                guard let space = SpaceID(bytes: Array(s.readableBytesView)) else { continue }
                out.append((space, Int(n)))
            }
            return out
        }
        let writer = ArchiveWriter(directory: dir, counts: counts)
        do {
            try await guarded("archive the month's envelopes", seconds: 3600) {
                // (One query, read as it streams: the rows are never all in memory.)
                let rows = try await self.client.query(
                    PostgresQuery(unsafeSQL: Self.retiredRows(table) + "SELECT space, bytes FROM rows ORDER BY space, n"), logger: self.logger)
                for try await (s, b) in rows.decode((ByteBuffer, ByteBuffer).self) {
                    guard let space = SpaceID(bytes: Array(s.readableBytesView)) else { continue }
                    try writer.write(space: space, envelope: b.readableBytesView)
                }
                try writer.finish()
            }
            try Node.syncToDisk([dir.path])
        } catch {
            writer.abandon()
            throw error
        }
        return writer.written
    }
}

/// Writes a month's envelopes, space by space, into one change file per space (used by one task).
private final class ArchiveWriter: @unchecked Sendable {
    let directory: URL
    var expected: IndexingIterator<[(SpaceID, Int)]>
    var current: (space: SpaceID, left: Int, handle: FileHandle, temp: URL, final: URL)?
    var written = (envelopes: 0, bytes: 0)

    init(directory: URL, counts: [(SpaceID, Int)]) {
        self.directory = directory
        self.expected = counts.makeIterator()
    }

    func write(space: SpaceID, envelope bytes: ByteBufferView) throws {
        if current?.space != space {
            try close()
            guard let next = expected.next(), next.0 == space else {
                throw NodeError(.refused, "the month changed while it was archived; nothing was retired: run the command again")
            }
            let final = directory.appendingPathComponent("\(space.hex).changes")
            let temp = directory.appendingPathComponent("\(space.hex).changes.partial")
            guard FileManager.default.createFile(atPath: temp.path, contents: nil, attributes: [.posixPermissions: 0o600]),
                let handle = FileHandle(forWritingAtPath: temp.path)
            else { throw NodeError(.io, "cannot write \(temp.path): check the archive directory's permissions and free space") }
            try handle.write(contentsOf: ChangeFile.envelopeHeader(space: space, count: next.1))
            current = (space, next.1, handle, temp, final)
        }
        try current!.handle.write(contentsOf: ChangeFile.envelopeItem(bytes))
        current!.left -= 1
        written.envelopes += 1
        written.bytes += bytes.count
    }

    /// Closes the last file; checks that every space counted was written whole.
    func finish() throws {
        try close()
        guard expected.next() == nil else {
            throw NodeError(.refused, "the month changed while it was archived; nothing was retired: run the command again")
        }
    }

    /// Syncs and renames the file being written.
    private func close() throws {
        guard let c = current else { return }
        current = nil
        try c.handle.synchronize()
        try c.handle.close()
        guard c.left == 0 else {
            try? FileManager.default.removeItem(at: c.temp)
            throw NodeError(.refused, "space \(c.space.hex) changed while it was archived; nothing was retired: run the command again")
        }
        _ = try? FileManager.default.removeItem(at: c.final)
        try FileManager.default.moveItem(at: c.temp, to: c.final)
    }

    /// After a failure: removes the file being written.
    func abandon() {
        if let c = current {
            try? c.handle.close()
            try? FileManager.default.removeItem(at: c.temp)
        }
        current = nil
    }
}

