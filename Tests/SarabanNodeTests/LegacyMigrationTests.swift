import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync
import Testing

private let legacyNetwork = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Fixtures/legacy/v2-network")

/// Issue 13, migration: data directories written by the release before the membership log
/// (Fixtures/legacy/v2-network) open and keep working; the creator becomes the space's admin.
@Suite struct LegacyMigrationTests {
    /// Copies the fixture's node `name` to `dir` and opens it.
    func open(_ name: String, in dir: TempDir) throws -> Node {
        let to = dir.file(name)
        try FileManager.default.copyItem(atPath: legacyNetwork.appendingPathComponent(name).path, toPath: to)
        chmod(to, 0o700)
        chmod(to + "/node.key", 0o600)
        chmod(to + "/saraban.db", 0o600)
        return try Node.open(dataDir: DataDirectory(path: to), logger: quiet)
    }

    @Test func aNetworkOfThePreviousReleaseMovesToTheMembershipLog() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let space = try #require(SpaceID(hex: "8369b6a83b6388a40234c4ffeba60620"))
        let letter = try #require(DocID("10-d779750d6d83da4b7d0ded810426c23b"))
        let memo = try #require(DocID("1-8325380a93ad38ff9a23567b6736e1a1"))
        // The creator opens first: it writes the space's legacy genesis and is its admin.
        let mueang = try open("mueang", in: dir)
        let banmai = try open("banmai", in: dir)
        let nongbua = try open("nongbua", in: dir)
        let cloud = try open("cloud", in: dir)
        defer { for n in [mueang, banmai, nongbua, cloud] { n.close() } }
        let a = try mueang.authority(space)
        #expect(a.hasLog && a.admins == [mueang.identity.publicKey])
        #expect(try banmai.authority(space).hasLog == false)  // not yet: the creator's change must reach it
        #expect(try mueang.document(letter).display("subject") == "หนังสือหลังเอาออก")

        // The log reaches the other member and the relay; everything written before stays.
        #expect(try exchange(mueang, banmai, space).refused.isEmpty)
        #expect(try banmai.authority(space).admins == [mueang.identity.publicKey])
        #expect(try banmai.document(memo).display("subject") == "บันทึกบ้านใหม่")
        #expect(try exchange(mueang, cloud, space).refused.isEmpty)
        #expect(try cloud.authority(space).hasLog)

        // Writing and syncing go on, in the legacy epoch 1 until the admin rotates.
        let after = try banmai.createDocument(kind: "memo", fields: [("subject", "หลังย้าย")], space: space)
        #expect(try exchange(banmai, mueang, space).refused.isEmpty)
        #expect(try mueang.document(after).display("subject") == "หลังย้าย")
        // The member removed before the move holds epoch 0 only: it cannot read epoch 1, nor come back.
        #expect(try nongbua.spaceInfo(space)?.epoch == 0)
        let r = try exchange(mueang, nongbua, space)
        #expect(throws: NodeError.self) { try nongbua.document(after) }
        #expect(r.accepted.isEmpty || r.refused.allSatisfy { $0.error.code == .wrongEpoch })
        #expect(try mueang.spaceInfo(space)?.members.contains { $0.key == nongbua.identity.publicKey && $0.isActive } == false)
        // The admin rotates (a new-style key with a commitment); the others follow.
        try mueang.removeMember(space: space, member: banmai.nodeID)
        let lastWord = try mueang.createDocument(kind: "memo", fields: [("subject", "เฉพาะเมือง")], space: space)
        try exchange(mueang, banmai, space)
        #expect(throws: NodeError.self) { try banmai.document(lastWord) }
        #expect(try mueang.spaceInfo(space)?.epoch == 2)
    }
}
