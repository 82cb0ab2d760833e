import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanRelayPostgres
import SarabanSync
@_exported import SarabanTestSupport
import Testing

/// The relay stores every test of this target runs against: SQLite always, PostgreSQL when
/// `SARABAN_TEST_POSTGRES` names a server (`.ci/run` starts a throwaway cluster and sets it), each
/// test in a database of its own.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgresql

    var testDescription: String { rawValue }

    static var postgresURL: String? {
        let v = ProcessInfo.processInfo.environment["SARABAN_TEST_POSTGRES"]
        return (v?.isEmpty ?? true) ? nil : v
    }

    /// SQLite, and PostgreSQL when a server is configured.
    static var available: [StoreKind] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgresql] }
}

func quietLogger(_ label: String) -> Logger {
    var l = Logger(label: label)
    l.logLevel = ProcessInfo.processInfo.environment["SARABAN_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return l
}

/// A fresh database on the test server (nil without one).
/// What these tests check is what the store does, not how fast: on a loaded 2-core CI machine
/// (the whole process group runs at once) PostgreSQL took longer than a relay's 5 s to answer.
let testDeadline: Duration = .seconds(60)

func freshPostgres() async throws -> PostgresLocation? {
    guard let url = StoreKind.postgresURL else { return nil }
    var loc = try PostgresLocation(parsing: url)
    let name = "saraban_test_\(UInt32.random(in: 0...UInt32.max))"
    try await PostgresAdmin.createDatabase(name, on: loc)
    loc.database = name
    return loc
}

/// A relay node (its data directory) and its store of the given kind.
final class RelayFixture: @unchecked Sendable {
    let kind: StoreKind
    let dir: TempDir
    let node: Node
    let location: PostgresLocation?
    private(set) var store: any RelayStore

    private init(kind: StoreKind, dir: TempDir, node: Node, location: PostgresLocation?, store: any RelayStore) {
        self.kind = kind
        self.dir = dir
        self.node = node
        self.location = location
        self.store = store
    }

    static func make(_ kind: StoreKind) async throws -> RelayFixture {
        let dir = TempDir()
        let node = try Node.initialize(
            dataDir: DataDirectory(path: dir.path + "/relay"), office: "คลาวด์กลาง", relay: true, logger: quietLogger("node"))
        switch kind {
        case .sqlite:
            return RelayFixture(kind: kind, dir: dir, node: node, location: nil, store: SQLiteRelayStore(node: node))
        case .postgresql:
            let loc = try #require(try await freshPostgres())
            let store = try await PostgresRelayStore.open(loc, logger: quietLogger("pg"), deadline: testDeadline)
            return RelayFixture(kind: kind, dir: dir, node: node, location: loc, store: store)
        }
    }

    /// Another store on the same database (a second relay process's view).
    func second() async throws -> any RelayStore {
        switch kind {
        case .sqlite: return SQLiteRelayStore(node: node)
        case .postgresql: return try await PostgresRelayStore.open(location!, logger: quietLogger("pg2"), deadline: testDeadline)
        }
    }

    func cleanup() async {
        await store.close()
        node.close()
        if let location, let server = try? PostgresLocation(parsing: StoreKind.postgresURL ?? "") {
            try? await PostgresAdmin.dropDatabase(location.database, on: server)
        }
        dir.cleanup()
    }
}

/// One author's feed in one space: envelopes sealed and chained as a member seals them.
struct TestFeed {
    let signer: SigningKeyPair
    let key: SymmetricKey
    let space: SpaceID
    var head = FeedHead()
    /// The epoch of the next envelopes (``SarabanFeed/ControlEntry/publicEpoch`` for control envelopes).
    var epoch: UInt32 = 0

    init(space: SpaceID, signer: SigningKeyPair = .generate(), key: SymmetricKey = .generate()) {
        self.space = space
        self.signer = signer
        self.key = key
    }

    /// The next envelope (one change of `plaintext`), chained on the head.
    mutating func next(_ plaintext: [UInt8] = Array("หนังสือราชการ \(UInt64.random(in: 0...UInt64.max))".utf8)) -> Envelope {
        let seq = head.lastSequence + 1
        let h = EnvelopeHeader(
            spaceID: space.bytes, author: signer.publicKey, seqStart: seq, seqEnd: seq, epoch: epoch, previousHash: head.lastID)
        let e = try! Envelope.seal(plaintext: plaintext, header: h, key: key, signer: signer)
        head = FeedHead(lastSequence: seq, lastID: e.id)
        return e
    }

    mutating func next(_ n: Int) -> [Envelope] { (0..<n).map { _ in next() } }
}

func randomSpace() -> SpaceID { SpaceID(hi: UInt64.random(in: 0...UInt64.max), lo: UInt64.random(in: 0...UInt64.max)) }
