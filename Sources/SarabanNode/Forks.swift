import Foundation
import SarabanCrypto
import SarabanSync

/// A fork of an author's feed found by this node: the author signed two different envelopes for
/// one position of its feed in a space, one held here and one held by `peer`. An honest node never
/// does; it happens when a node's database goes back in time (restored from an old copy, or the
/// disk copied to a second machine) and the node writes again. Kept in `forks.json` naming the peer
/// that showed it, shown by `saraban status`, and logged.
public struct FeedFork: Codable, Sendable, Hashable {
    /// The space (32 hex digits).
    public var space: String
    /// The author's node id (`sb…`).
    public var author: String
    /// The position both envelopes claim.
    public var sequence: UInt64
    /// This node's envelope there (64 hex digits).
    public var held: String
    /// The peer's envelope there: 64 hex digits when it arrived, 16 (its head tag) when only the
    /// peer's summary named it.
    public var peerHolds: String
    /// The peer's node id.
    public var peer: String
    /// When it was first found (ms since 1970).
    public var detectedAt: Int64
    /// How: `envelope`, proven (the peer sent an envelope the author signed, at a position held
    /// here with another envelope or chained on another one); or `summary`, claimed (the head tag
    /// in the peer's summary names another envelope than the one held here at that position: the
    /// author forked its feed, or the peer, which is authenticated and named here, states a falsehood;
    /// the envelope proves it once it arrives).
    public var via: String

    public init(
        space: String, author: String, sequence: UInt64, held: String, peerHolds: String, peer: String, detectedAt: Int64,
        via: String
    ) {
        self.space = space
        self.author = author
        self.sequence = sequence
        self.held = held
        self.peerHolds = peerHolds
        self.peer = peer
        self.detectedAt = detectedAt
        self.via = via
    }

    enum CodingKeys: String, CodingKey {
        case space, author, sequence, held, peer, via
        case peerHolds = "peer_holds"
        case detectedAt = "detected_at"
    }

    /// The same fork (whenever and however it was found).
    func isSame(as other: FeedFork) -> Bool {
        space == other.space && author == other.author && sequence == other.sequence && held == other.held
            && peerHolds == other.peerHolds && peer == other.peer
    }
}

extension NodeSyncDriver {
    /// Logs each fork (an error naming the author, position and both envelopes) and hands it to
    /// ``onFork``; the same fork twice in `forks` (an envelope at the position and the next one
    /// chained on it) once.
    func report(_ forks: [FeedFork]) {
        var seen: [FeedFork] = []
        for f in forks where !seen.contains(where: { $0.isSame(as: f) }) {
            seen.append(f)
            let own = f.author == storage.nodeID.text
            let what =
                own
                ? "this node's own feed forked"
                    + " (its database went back in time: restored from an older copy, or a copy of it wrote elsewhere)"
                : "\(f.author) signed two different envelopes for one position"
            let how =
                f.via == "summary"
                ? " (claimed by the peer's summary: its head tag names the other envelope)"
                : " (proven: the peer sent the other envelope, signed by the author)"
            let message =
                "fork: \(what): space \(f.space), seq \(f.sequence): this node holds envelope \(f.held), peer \(f.peer) holds "
                + "\(f.peerHolds)\(how); keep both databases as they are and alert an administrator"
            logger.error(
                "\(message)",
                metadata: [
                    "space": "\(f.space)", "author": "\(f.author)", "seq": "\(f.sequence)", "held": "\(f.held)",
                    "peer": "\(f.peer)", "peer_holds": "\(f.peerHolds)", "via": "\(f.via)",
                ])
            onFork?(f)
        }
    }

    func fork(space: SpaceID, author: SigningPublicKey, sequence: UInt64, held: EnvelopeID, peerHolds: String, peer: NodeID, via: String)
        -> FeedFork
    {
        FeedFork(
            space: space.hex, author: author.nodeID.text, sequence: sequence, held: held.hex, peerHolds: peerHolds,
            peer: peer.text, detectedAt: now(), via: via)
    }
}
