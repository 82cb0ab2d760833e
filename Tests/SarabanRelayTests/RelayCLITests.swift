import Foundation
import SarabanCrypto
import SarabanNode
import SarabanRelayPostgres
import SarabanSync
import Testing

/// The relay's command-line surface: `space carry` in bulk and for named peers, `serve --store`.
@Suite(.timeLimit(.minutes(2))) struct RelayCLITests {
    @Test func spaceCarryFromAFileNamesEachSpacesPeers() async throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let data = dir.path + "/relay"
        #expect(try saraban(["init", "--relay", "--office", "คลาวด์กลาง", "--data", data]).status == 0)
        let s1 = randomSpace()
        let s2 = randomSpace()
        let p1 = SigningKeyPair.generate().publicKey.nodeID
        let p2 = SigningKeyPair.generate().publicKey.nodeID
        let file = dir.path + "/spaces.txt"
        try "# จังหวัดเชียงใหม่\n\(s1.hex) \(p1.text)\n\n\(s2.hex)   # served to every peer\n".write(toFile: file, atomically: true, encoding: .utf8)
        let r = try saraban(["space", "carry", "--from", file, "--data", data])
        #expect(r.status == 0, "\(r.err)")
        let node = try Node.open(dataDir: DataDirectory(path: data), logger: quietLogger("node"))
        defer { node.close() }
        let store = SQLiteRelayStore(node: node)
        #expect(Set(try await store.servedSpaces(to: p1)) == [s1, s2])
        #expect(Set(try await store.servedSpaces(to: p2)) == [s2])

        // A bad line names the file and the line; nothing of it is carried.
        try "\(randomSpace().hex) not-a-node-id\n".write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try saraban(["space", "carry", "--from", file, "--data", data])
        #expect(bad.status == 64)
        #expect(bad.err.contains("spaces.txt line 1"), "\(bad.err)")
        #expect(try await store.carriedSpaces().count == 2)
    }

    /// A member's and a relay's data directories, initialised in `dir`.
    static func memberAndRelay(in dir: TempDir) throws -> (member: String, relay: String) {
        let member = dir.path + "/member"
        let relay = dir.path + "/relay"
        #expect(try saraban(["init", "--office", "อบต.บ้านใหม่", "--data", member]).status == 0)
        #expect(try saraban(["init", "--relay", "--office", "คลาวด์กลาง", "--data", relay]).status == 0)
        return (member, relay)
    }

    @Test(.ownThread) func serveRefusesStoreAndMetricsOptionsItCannotUse() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (member, relay) = try Self.memberAndRelay(in: dir)
        // A member has no relay store.
        let m = try saraban(["serve", "--data", member, "--store", "postgresql://saraban@127.0.0.1/saraban"])
        #expect(m.status == 64 && m.err.contains("--relay"), "\(m.err)")
        // Not a PostgreSQL URL.
        let u = try saraban(["serve", "--relay", "--data", relay, "--listen", "127.0.0.1:0", "--store", "mysql://x@y/z"])
        #expect(u.status == 64 && u.err.contains("postgresql://USER@HOST"), "\(u.err)")
        // A server that is not there: exit 69 naming the store, and no password printed.
        let x = try saraban([
            "serve", "--relay", "--data", relay, "--listen", "127.0.0.1:0", "--store",
            "postgresql://saraban:s3cret-pw@127.0.0.1:1/saraban?sslmode=disable",
        ])
        #expect(x.status == 69, "\(x.err)")
        #expect(x.err.contains("postgresql://saraban@127.0.0.1:1/saraban"), "\(x.err)")
        #expect(!x.err.contains("s3cret-pw"))
    }

    /// `space retire` (retention) refuses what it cannot do, with the documented exit status and
    /// nothing changed: a member or a relay on its own database (68), a bad month, a month not yet
    /// ended, or neither --archive nor --no-archive (64), a database that is not there (69).
    @Test(.ownThread) func spaceRetireRefusesWhatItCannotDo() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let (member, relay) = try Self.memberAndRelay(in: dir)
        let m = try saraban(["space", "retire", "--before", "2020-01", "--no-archive", "--data", member])
        #expect(m.status == 68 && m.err.contains("PostgreSQL"), "\(m.err)")
        let own = try saraban(["space", "retire", "--before", "2020-01", "--no-archive", "--data", relay])
        #expect(own.status == 68 && own.err.contains("PostgreSQL"), "\(own.err)")
        for bad in ["2026-13", "26-01", "มกราคม", "2026-1"] {
            let r = try saraban(["space", "retire", "--before", bad, "--no-archive", "--data", relay])
            #expect(r.status == 64 && r.err.contains("YYYY-MM"), "\(bad): \(r.err)")
        }
        let neither = try saraban(["space", "retire", "--before", "2020-01", "--data", relay])
        #expect(neither.status == 64 && neither.err.contains("--no-archive"), "\(neither.err)")
        let both = try saraban(["space", "retire", "--before", "2020-01", "--archive", dir.path + "/a", "--no-archive", "--data", relay])
        #expect(both.status == 64, "\(both.err)")
        let away = try saraban([
            "space", "retire", "--before", "2020-01", "--no-archive", "--data", relay,
            "--store", "postgresql://saraban@127.0.0.1:1/saraban?sslmode=disable",
        ])
        #expect(away.status == 69, "\(away.err)")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/a"))
    }
}
