import Foundation
import SarabanNode
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Key and data files are owner-only (Docs/SECURITY.md, "Key storage").
@Suite struct FileModeTests {
    @Test("saraban.db-wal and -shm are 0600 once written to (SQLite gives them the database file's mode)")
    func walAndShmAreOwnerOnly() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try Node.initialize(dataDir: dir.data, office: "กรมการปกครอง", logger: quiet)
        defer { node.close() }
        for i in 0..<20 { _ = try node.createDocument(kind: "letter", fields: [("subject", "\(thai) \(i)")]) }
        let db = dir.data.databasePath
        for file in [db, db + "-wal", db + "-shm"] {
            #expect(FileManager.default.fileExists(atPath: file), "\(file) missing")
            #expect(mode(file) == 0o600, "\(file) has mode \(String(mode(file), radix: 8))")
        }
    }

    @Test("opening a data directory takes group and other bits off an existing -wal and -shm")
    func openTightensOldWalAndShm() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let node = try Node.initialize(dataDir: dir.data, office: "A", logger: quiet)
        defer { node.close() }
        _ = try node.createDocument(kind: "letter", fields: [("subject", thai)])
        let db = dir.data.databasePath
        // As an older saraban left them while its daemon runs.
        chmod(db + "-wal", 0o644)
        chmod(db + "-shm", 0o644)
        let other = try Node.open(dataDir: dir.data, logger: quiet)
        defer { other.close() }
        #expect(mode(db + "-wal") == 0o600)
        #expect(mode(db + "-shm") == 0o600)
        #expect(try other.document(try node.documents()[0].id).view.registers["subject"] != nil)
    }

    @Test("init into an existing directory makes it 0700")
    func initIntoExistingDirectoryMakesIt0700() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.data.path, withIntermediateDirectories: true)
        chmod(dir.data.path, 0o755)
        try Node.initialize(dataDir: dir.data, office: "A", logger: quiet).close()
        #expect(mode(dir.data.path) == 0o700)
    }

    @Test("a failed init into an existing directory gives it its old mode back")
    func failedInitRestoresTheMode() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.data.path, withIntermediateDirectories: true)
        chmod(dir.data.path, 0o755)
        // A directory named saraban.db makes creating the database fail after the key was written.
        try FileManager.default.createDirectory(atPath: dir.data.databasePath, withIntermediateDirectories: false)
        #expect(throws: NodeError.self) { try Node.initialize(dataDir: dir.data, office: "A", logger: quiet) }
        #expect(mode(dir.data.path) == 0o755)
        #expect(!FileManager.default.fileExists(atPath: dir.data.keyPath))
    }

    @Test("a node key readable by group or others is refused with the chmod that fixes it (exit 78)")
    func looseKeyIsRefused() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try Node.initialize(dataDir: dir.data, office: "A", logger: quiet).close()
        let key = dir.data.keyPath
        for loose: mode_t in [0o644, 0o640, 0o604, 0o660] {
            chmod(key, loose)
            let before = Snapshot(dir.data.path)
            let error = #expect(throws: NodeError.self) { try Node.open(dataDir: dir.data, logger: quiet) }
            #expect(error?.code == .insecureKey)
            #expect(error?.code.exitCode == 78)
            #expect(error?.message.contains("chmod 600 \(key)") == true)
            #expect(error?.message.contains("0" + String(loose, radix: 8)) == true)
            #expect(error?.message.contains("ไฟล์กุญแจ") == true)
            #expect(Snapshot(dir.data.path) == before)
            #expect(mode(key) == Int(loose), "the key's mode is left to the operator")
        }
        chmod(key, 0o600)
        try Node.open(dataDir: dir.data, logger: quiet).close()
        chmod(key, 0o400)
        try Node.open(dataDir: dir.data, logger: quiet).close()
    }
}
