import Foundation
import Logging
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanSync
import SarabanTransport
@_exported import SarabanTestSupport
import Testing

// Test support for the integration suite: nodes in temporary directories, each with a real
// `NodeDaemon` listening on 127.0.0.1 (port 0 the first time, the same port after a restart).

/// A fresh temporary directory (``TempDir``) named after `label`.
func temporaryDirectory(_ label: String) -> URL { URL(fileURLWithPath: TempDir(label).path) }

/// Options for fast tests: quick polling, redials and config re-reads.
func fastOptions() -> ServeOptions {
    var o = ServeOptions(listen: PeerAddress(host: "127.0.0.1", port: 0))
    o.pollInterval = .milliseconds(100)
    o.minimumBackoff = .milliseconds(100)
    o.maximumBackoff = .milliseconds(800)
    o.configInterval = .milliseconds(200)
    o.handleSignals = false
    return o
}

/// One node in a temporary directory, with a daemon that can be stopped and restarted.
final class TestNode: @unchecked Sendable {
    let name: String
    let dir: URL
    let node: Node
    var port = 0
    var options = fastOptions()
    /// What the daemon's sessions report (set before ``start()``).
    var onEvent: @Sendable (PeerEvent) -> Void = { _ in }
    /// The envelope storage the daemon syncs through (set before ``start()``; nil: the node's own).
    var storage: (any EnvelopeStorage)?
    private(set) var daemon: NodeDaemon?
    private var task: Task<Void, any Error>?

    init(_ name: String, relay: Bool = false, root: URL) throws {
        self.name = name
        dir = root.appendingPathComponent(name.unicodeScalars.filter { $0.isASCII && $0.properties.isAlphabetic }
            .map(String.init).joined() + "-\(UInt16.random(in: 0...UInt16.max))")
        node = try Node.initialize(
            dataDir: DataDirectory(path: dir.path), office: name, relay: relay, logger: testLogger("saraban.node"))
    }

    var id: NodeID { node.nodeID }
    var isRunning: Bool { task != nil }

    /// Starts the daemon; returns once it listens (on the same port as before, after a restart).
    func start() async throws {
        guard task == nil else { throw testFailure("\(name)'s daemon is already running") }
        var o = options
        if port != 0 { o.listen = PeerAddress(host: "127.0.0.1", port: port) }
        let daemon = try NodeDaemon(
            node: node, storage: try storage ?? node.envelopeStorage(relay: node.role == .relay), options: o,
            logger: testLogger("saraban.serve"), onEvent: onEvent)
        self.daemon = daemon
        let ready = AsyncStream<Int>.makeStream()
        task = Task {
            try await daemon.run { r in
                ready.continuation.yield(r.address.port)
                ready.continuation.finish()
            }
        }
        for await p in ready.stream { port = p }
        guard port != 0 else { throw TestFailure("\(name) did not start") }
    }

    /// Stops the daemon (as SIGTERM would) and waits for it to finish.
    func stop() async {
        guard let task else { return }
        task.cancel()
        _ = try? await task.value
        self.task = nil
        daemon = nil
    }

    func addPeer(_ other: TestNode, via port: Int? = nil) throws {
        try node.addPeer(nodeID: other.id.text, address: "127.0.0.1:\(port ?? other.port)", name: other.name)
    }

    /// The observable state of every document of `space` (its membership document included).
    func views(_ space: SpaceID) throws -> [DocumentView] {
        try node.documents().filter { try node.space(ofDocument: $0.id) == space }.map(\.view)
    }

    func vector(_ space: SpaceID) throws -> FeedVector { try node.feedVector(space: space) }
}

/// Runs `body`, then stops every node's daemon (also when `body` throws).
func withNodes(_ nodes: [TestNode], _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch {
        for n in nodes { await n.stop() }
        throw error
    }
    for n in nodes { await n.stop() }
}

/// Loggers for nodes under test: warnings and worse only (SARABAN_TEST_LOG=debug for more).
func testLogger(_ label: String) -> Logger {
    var l = Logger(label: label)
    l.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["SARABAN_TEST_LOG"] ?? "") ?? .error
    return l
}

/// Every member holds the same documents in `space` (and every node the same feed vector).
func converged(_ members: [TestNode], relays: [TestNode] = [], space: SpaceID) throws -> Bool {
    let first = try members[0].vector(space)
    for n in members.dropFirst() + relays where try n.vector(space) != first { return false }
    let views = try members[0].views(space)
    for n in members.dropFirst() where try n.views(space) != views { return false }
    return true
}

/// A space created by `creator`, joined by `others`, carried by `relays`.
func shareSpace(_ name: String, creator: TestNode, members others: [TestNode], relays: [TestNode]) throws -> SpaceID {
    let space = try creator.node.createSpace(name: name)
    for o in others {
        let invitation = try creator.node.invite(space: space.id, invitee: o.id, office: o.name)
        _ = try o.node.join(Invitation.parse(invitation.text))
    }
    for r in relays { try r.node.carry(space: space.id, name: name) }
    return space.id
}

/// Every value written in `writes` (document, field, value) is held by `node`, as the winner or
/// a kept conflicting value.
func holdsAll(_ node: TestNode, _ writes: [(DocID, String, String)]) throws -> Bool {
    for (doc, field, value) in writes {
        guard let d = try? node.node.document(doc), let entries = d.view.registers[field],
            entries.contains(where: { $0.value == .string(value) })
        else { return false }
    }
    return true
}
