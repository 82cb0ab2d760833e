import Foundation
import Logging
import SarabanCrypto
import SarabanSync
import SarabanTransport

// `saraban inspect-sync PEER`: what a reconciliation with one peer would move, without moving it.
//
// Live, it dials the peer over the usual Noise transport and speaks the start of the sync
// protocol (Sync/PROTOCOL.md): hello, then it waits for the peer's summary of every shared space
// and answers with a bye alone. It never fetches, sends or stores an envelope, and it never tells
// the peer what it holds: a peer sends envelopes only for what a summary shows the other side
// lacks, so without our summary it has nothing to send, however the frames are split or delayed.
// Offline (`--offline`), it compares with the vectors the peer last announced, which every sync
// session records in the node's peer status (`PeerStatus.summaries`, the peer's cursor rows).

/// Changes (and, when known, envelopes) that would cross in one direction.
public struct SyncMovement: Sendable, Hashable {
    public var changes: UInt64 = 0
    /// `nil` when unknown: the envelopes the peer would send are cut by their authors, and the
    /// summary carries only each author's highest sequence number.
    public var envelopes: Int?

    public init(changes: UInt64 = 0, envelopes: Int? = 0) {
        self.changes = changes
        self.envelopes = envelopes
    }

    mutating func add(_ other: SyncMovement) {
        changes += other.changes
        envelopes = envelopes.flatMap { a in other.envelopes.map { a + $0 } }
    }
}

/// One author's sequence numbers that would cross one way: `first...last`.
public struct SequenceRange: Sendable, Hashable {
    public var first: UInt64
    public var last: UInt64
    /// Envelopes carrying them (`nil` when unknown, see ``SyncMovement/envelopes``).
    public var envelopes: Int?
    public var changes: UInt64 { last - first + 1 }

    public init(first: UInt64, last: UInt64, envelopes: Int?) {
        self.first = first
        self.last = last
        self.envelopes = envelopes
    }
}

/// One author of a shared space: what each side holds and what would move.
public struct AuthorPreview: Sendable, Hashable {
    public var nodeID: NodeID
    /// The office, from the space's member table (`nil` when unknown, for example on a relay).
    public var office: String?
    /// Highest sequence number held here / by the peer (0 for none).
    public var local: UInt64
    public var peer: UInt64
    public var toPeer: SequenceRange?
    public var fromPeer: SequenceRange?
}

/// An author of which a head claim this node holds says more exists than the peer holds: what
/// the peer should have been given (Docs/SECURITY.md, "Withholding").
public struct ClaimedAhead: Sendable, Hashable {
    public var author: NodeID
    /// What the claim says exists, what the peer holds, what this node holds.
    public var claimed: UInt64
    public var peer: UInt64
    public var local: UInt64
    /// The claim that says the most (its claimant and time, ms since 1970 by its clock).
    public var claimant: NodeID
    public var claimTime: Int64
}

/// One shared space.
public struct SpacePreview: Sendable, Hashable {
    public var space: SpaceID
    public var name: String
    /// Every author either side holds, sorted by node id.
    public var authors: [AuthorPreview]
    public var toPeer: SyncMovement
    public var fromPeer: SyncMovement
    /// Authors the peer holds less of than a head claim held here says exists, sorted by node id.
    public var claimedAhead: [ClaimedAhead] = []
}

/// What a sync with one peer would move (`saraban inspect-sync`).
public struct SyncPreview: Sendable {
    public enum Source: String, Sendable {
        /// From the summary the peer sent just now.
        case live
        /// From the vectors recorded at the end of the last sessions (`--offline`).
        case recorded
    }

    public var peer: ConfiguredPeer
    public var source: Source
    /// The peer's role as its hello said (live only).
    public var peerRole: NodeRole?
    /// When the oldest recorded vector used was recorded (ms since 1970; recorded only).
    public var recordedAt: Int64?
    public var spaces: [SpacePreview]
    /// Spaces this node carries that are not compared: live, the peer does not carry them;
    /// recorded, no summary of them was ever recorded.
    public var notShared: [(space: SpaceID, name: String)]
    /// Live: how many spaces the peer carries that this node does not.
    public var peerOnlySpaces: Int?
    /// Wall time of the exchange (live only).
    public var seconds: Double?
    /// What the peer did not deliver in its last settled session though claims say it exists
    /// (recorded in `DIR/withheld.json`).
    public var withheld: [WithheldFeed] = []

    public var toPeer: SyncMovement { spaces.reduce(into: SyncMovement()) { $0.add($1.toPeer) } }
    public var fromPeer: SyncMovement {
        spaces.reduce(into: SyncMovement(envelopes: nil)) { $0.add($1.fromPeer) }
    }
}

extension Node {
    /// Dials `peer`, exchanges hello and summaries, says bye and returns what a sync would move
    /// each way, per shared space and author. Sends and stores no envelope.
    ///
    /// - Throws: `NodeError` `.unreachable` when the peer cannot be dialled, refuses us, or does
    ///   not summarise the shared spaces within `timeout`.
    public func inspectSync(
        peer: ConfiguredPeer, timeout: Duration = .seconds(30), transport configuration: TransportConfiguration? = nil,
        logger: Logger = Logger(label: "saraban.inspect")
    ) async throws(NodeError) -> SyncPreview {
        let settings = try syncSettings()
        let local = try carriedSpaces()
        var config = configuration ?? TransportConfiguration()
        config.idleTimeout = min(config.idleTimeout, timeout)
        config.connectTimeout = min(config.connectTimeout, timeout)
        config.handshakeTimeout = min(config.handshakeTimeout, timeout)
        let transport = dialTransport(
            settings: settings, dialling: [peer], members: try memberNodeIDs(), configuration: config, logger: logger)
        let role = self.role
        let start = ContinuousClock.now
        let exchange: SummaryExchange
        do {
            exchange = try await transport.connect(
                host: peer.address.host, port: peer.address.port, expecting: peer.nodeID
            ) { channel in
                try await SummaryExchange.run(over: &channel, role: role, local: local, deadline: start + timeout)
            }
        } catch let e as InspectFailure {
            if e.refused { throw NodeError(.unreachable, NetworkFailure.refusal(peer: peer.label, address: peer.address, me: nodeID)) }
            throw NodeError(.unreachable, "\(peer.label) (\(peer.address)): \(e.message)")
        } catch {
            throw NodeError(
                .unreachable,
                NetworkFailure.describe(error, peer: peer.label, address: peer.address, configuration: config)
                    + " (`saraban inspect-sync --offline` shows what its last sync recorded.)")
        }
        var preview = try preview(peer: peer, local: local, peerVectors: exchange.summaries, source: .live)
        preview.peerRole = exchange.hello.role
        preview.peerOnlySpaces = Set(exchange.hello.spaces).subtracting(local.keys).count
        preview.notShared = try named(Set(local.keys).subtracting(exchange.hello.spaces))
        preview.seconds = (ContinuousClock.now - start).inspectSeconds
        return preview
    }

    /// The same comparison against the vectors `peer` last announced, as recorded in the
    /// node's peer status (``PeerStatusBook``) during each session: nothing is dialled. What the peer wrote since is
    /// not known, so `fromPeer` is a lower bound.
    ///
    /// - Throws: `NodeError` `.unreachable` when no summary of the peer was ever recorded.
    public func inspectSyncRecorded(peer: ConfiguredPeer) throws(NodeError) -> SyncPreview {
        let recorded = try peerStatuses()[peer.nodeID.text]?.recordedVectors ?? [:]
        guard !recorded.isEmpty else {
            throw NodeError(
                .unreachable,
                "no summary from \(peer.label) is recorded yet: run `saraban sync \(peer.label)` (or `saraban serve`) once "
                    + "while it is reachable, or drop --offline to ask it now")
        }
        let local = try carriedSpaces()
        let compared = recorded.filter { local[$0.key] != nil }
        var preview = try preview(
            peer: peer, local: local, peerVectors: compared.mapValues(\.vector), source: .recorded)
        preview.recordedAt = compared.values.map(\.at).min() ?? recorded.values.map(\.at).min()
        preview.notShared = try named(Set(local.keys).subtracting(compared.keys))
        return preview
    }

    /// Per shared space (those in `peerVectors`), per author, the difference between `local` and the peer.
    func preview(
        peer: ConfiguredPeer, local: [SpaceID: FeedVector], peerVectors: [SpaceID: FeedVector], source: SyncPreview.Source
    ) throws(NodeError) -> SyncPreview {
        var spaces: [SpacePreview] = []
        let claims: [SpaceID: [HeadClaim]]
        do { claims = try store.headClaims(peerVectors.keys) } catch { throw NodeError(error) }
        for (space, theirs) in peerVectors.sorted(by: { $0.key < $1.key }) {
            guard let ours = local[space] else { continue }
            let info = try spaceInfo(space)
            var offices: [SigningPublicKey: String] = [:]
            for m in info?.members ?? [] where !m.office.isEmpty { offices[m.key] = m.office }
            if offices[identity.publicKey] == nil, info?.role == .member { offices[identity.publicKey] = config.office }
            let outgoing = try envelopeCounts(space: space, after: theirs)
            var authors: [AuthorPreview] = []
            var toPeer = SyncMovement()
            var fromPeer = SyncMovement(envelopes: nil)
            let keys = Set(ours.entries.keys).union(theirs.entries.keys)
            for key in keys.sorted(by: { $0.nodeID.text < $1.nodeID.text }) {
                let (l, p) = (ours[key], theirs[key])
                var a = AuthorPreview(nodeID: key.nodeID, office: offices[key], local: l, peer: p)
                if l > p {
                    a.toPeer = SequenceRange(first: p + 1, last: l, envelopes: outgoing[key] ?? 0)
                    toPeer.add(SyncMovement(changes: l - p, envelopes: outgoing[key] ?? 0))
                } else if p > l {
                    a.fromPeer = SequenceRange(first: l + 1, last: p, envelopes: nil)
                    fromPeer.add(SyncMovement(changes: p - l, envelopes: nil))
                }
                authors.append(a)
            }
            spaces.append(
                SpacePreview(
                    space: space, name: info?.name ?? space.hex, authors: authors, toPeer: toPeer, fromPeer: fromPeer,
                    claimedAhead: claimedAhead(claims[space] ?? [], peer: theirs, local: ours)))
        }
        var preview = SyncPreview(peer: peer, source: source, spaces: spaces, notShared: [])
        preview.withheld = PeerStatusBook.withheld(dataDirectory)[peer.nodeID.text] ?? []
        return preview
    }

    /// Per author, the claim saying the most beyond what the peer holds.
    func claimedAhead(_ claims: [HeadClaim], peer theirs: FeedVector, local ours: FeedVector) -> [ClaimedAhead] {
        var best: [SigningPublicKey: ClaimedAhead] = [:]
        for c in claims {
            for s in c.shortfall(of: theirs) where s.claimed > best[s.author]?.claimed ?? 0 {
                best[s.author] = ClaimedAhead(
                    author: s.author.nodeID, claimed: s.claimed, peer: s.held, local: ours[s.author], claimant: c.claimant.nodeID,
                    claimTime: c.time)
            }
        }
        return best.values.sorted { $0.author.text < $1.author.text }
    }

    /// Per author, how many of this node's envelopes of `space` lie beyond `after` (what a sync
    /// would send: vectors end on envelope boundaries). Reads the store in pages.
    func envelopeCounts(space: SpaceID, after: FeedVector) throws(NodeError) -> [SigningPublicKey: Int] {
        var counts: [SigningPublicKey: Int] = [:]
        var from = after
        while true {
            let (batch, complete) = try envelopes(space: space, after: from, limit: FetchLimit(envelopes: 4096, bytes: 8 << 20))
            for e in batch {
                if from.add(e.header) { counts[e.header.author, default: 0] += 1 }
            }
            if complete || batch.isEmpty { break }
        }
        return counts
    }

    func named(_ spaces: Set<SpaceID>) throws(NodeError) -> [(space: SpaceID, name: String)] {
        var out: [(space: SpaceID, name: String)] = []
        for s in spaces.sorted() { out.append((s, try spaceInfo(s)?.name ?? s.hex)) }
        return out
    }
}

/// Why a live inspection stopped after the channel was up.
struct InspectFailure: Error {
    let message: String
    /// The peer closed the connection before sending anything: it refused this node.
    var refused = false
}

/// The hello and summaries one peer sent.
struct SummaryExchange: Sendable {
    var hello: Hello
    var summaries: [SpaceID: FeedVector]

    /// Sends hello (receive window 1), reads the peer's hello and a summary of every shared space
    /// (answering pings), then says bye. Nothing else is sent: not even this node's summary.
    static func run(
        over channel: inout SecureChannel, role: NodeRole, local: [SpaceID: FeedVector], deadline: ContinuousClock.Instant
    ) async throws -> SummaryExchange {
        do {
            try await channel.writer.write(
                SyncMessage.hello(Hello(role: role, receiveWindow: 1, spaces: local.keys.sorted())).framed())
        } catch {
            // The peer closed the connection as soon as the handshake ended: it refused this node.
            throw InspectFailure(message: "", refused: true)
        }
        var decoder = FrameDecoder()
        var hello: Hello?
        var shared: Set<SpaceID> = []
        var summaries: [SpaceID: FeedVector] = [:]
        var received = false
        while hello == nil || !shared.isSubset(of: summaries.keys) {
            guard ContinuousClock.now < deadline else {
                throw InspectFailure(
                    message: hello == nil
                        ? "no hello within the timeout; is it a saraban node? (--timeout gives it longer)"
                        : "summarised \(summaries.count) of \(shared.count) shared spaces within the timeout; try again or give --timeout")
            }
            let chunk: [UInt8]?
            do { chunk = try await channel.reader.next() } catch {
                throw InspectFailure(message: "the connection failed before the summary: \(error)")
            }
            guard let chunk else {
                // Closed before a single byte of sync: it refused this node at the handshake.
                if hello == nil && !received { throw InspectFailure(message: "", refused: true) }
                throw InspectFailure(message: "the peer closed the connection before its summary")
            }
            received = true
            decoder.append(chunk)
            while true {
                let message: SyncMessage
                do {
                    guard let payload = try decoder.next() else { break }
                    message = try SyncMessage.decode(payload)
                } catch {
                    throw InspectFailure(message: "the peer sent a message that does not decode: \(error)")
                }
                switch message {
                case .hello(let h):
                    guard hello == nil else { throw InspectFailure(message: "the peer sent a second hello") }
                    hello = h
                    shared = Set(h.spaces).intersection(local.keys)
                case .summary(let list):
                    for v in list where shared.contains(v.space) { summaries[v.space, default: FeedVector()].merge(v.vector) }
                case .ping(let nonce):
                    try await channel.writer.write(SyncMessage.pong(nonce: nonce).framed())
                case .error(let code, let text):
                    throw InspectFailure(message: "the peer refused the session (\(code): \(text))")
                case .bye:
                    if hello == nil || !shared.isSubset(of: summaries.keys) {
                        throw InspectFailure(message: "the peer said bye before its summary")
                    }
                default:
                    break  // envelopes, acks and the like: not expected before our summary; never stored
                }
            }
        }
        // Bye alone: without our summary the peer has no gap to fill, so it sends no envelope.
        let out = SyncMessage.bye.framed()
        try? await channel.writer.write(out)
        // Let the bye leave before the connection closes.
        try? await Task.sleep(for: HangUp.byeGrace)
        return SummaryExchange(hello: hello!, summaries: summaries)
    }
}

extension Duration {
    var inspectSeconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
