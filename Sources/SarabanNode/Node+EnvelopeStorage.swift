import Foundation
import SarabanCrypto
import SarabanStorage
import SarabanSync

/// Sync's view of the node: its envelopes, spaces and members (`Node+Spaces.swift`).
struct NodeEnvelopeStorage: EnvelopeStorage {
    let node: Node
    let role: NodeRole

    func carriedSpaces() throws -> [SpaceID: FeedVector] { try node.carriedSpaces() }

    func carriedSpaces(for peer: NodeID) throws -> [SpaceID: FeedVector] { try node.carriedSpaces(for: peer) }

    func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) throws -> (envelopes: [Envelope], complete: Bool) {
        try node.envelopes(space: space, after: after, limit: limit)
    }

    func receive(space: SpaceID, envelopes: [Envelope]) throws -> (
        accepted: [Envelope], vector: FeedVector,
        forks: [(author: SigningPublicKey, sequence: UInt64, held: EnvelopeID, conflicting: EnvelopeID)]
    ) {
        let report = try node.receiveEnvelopes(space: space, envelopes)
        var forks: [(author: SigningPublicKey, sequence: UInt64, held: EnvelopeID, conflicting: EnvelopeID)] = []
        for (e, error) in report.refused where error.code == .fork {
            if let p = error.forkProof {
                // The verifier's proof: the position, the envelope accepted there and the other one
                // (for an envelope chained on another predecessor, that predecessor).
                forks.append((p.author, p.sequence, p.acceptedID, p.conflictingID))
            } else if let held = try node.store.storedEnvelope(space: space, author: e.header.author, covering: e.header.seqStart) {
                // A different envelope at a stored position.
                forks.append((e.header.author, e.header.seqStart, held.id, e.id))
            }
        }
        return (report.accepted, report.holds, forks)
    }

    var nodeID: NodeID { node.nodeID }

    func makeDurable() throws { try node.store.syncWAL() }

    func feedHeads(_ spaces: [SpaceID: FeedVector]) throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
        try node.store.feedHeads(spaces)
    }

    func storedEnvelope(space: SpaceID, author: SigningPublicKey, covering seq: UInt64) throws -> (seqEnd: UInt64, id: EnvelopeID)? {
        try node.store.storedEnvelope(space: space, author: author, covering: seq)
    }

    func changeProbe() throws -> Int64 { try node.changeProbe() }

    func spacesProbe() throws -> String { try node.spacesProbe() }

    func memberNodeIDs() throws -> Set<NodeID> { try node.memberNodeIDs() }

    func headClaims(spaces: Set<SpaceID>, heads: [SpaceID: [SigningPublicKey: FeedHead]]) throws -> [SpaceID: [HeadClaim]] {
        try node.headClaims(spaces: spaces, heads: heads, notSoonerThan: Node.claimInterval)
    }

    func refreshedClaims(spaces: Set<SpaceID>, heads: [SpaceID: [SigningPublicKey: FeedHead]]) throws -> [SpaceID: [HeadClaim]] {
        try node.headClaims(spaces: spaces, heads: heads, notSoonerThan: 0)
    }

    func heldClaims(_ spaces: [SpaceID]) throws -> [SpaceID: [HeadClaim]] { try node.store.headClaims(spaces) }

    func keepClaims(space: SpaceID, _ claims: [HeadClaim]) throws -> ClaimReceipt {
        try node.store.keepClaims(space: space, claims, receivedAt: node.now())
    }
}

extension Node {
    /// The node's envelope store as sync sees it: a member's (verifies, stores, opens and applies)
    /// or a relay's (verifies signatures and chains, stores and forwards; it never holds a space
    /// key). The role was fixed at `saraban init`; `relay` (from `serve --relay`) must agree with it.
    public func envelopeStorage(relay: Bool = false) throws(NodeError) -> any EnvelopeStorage {
        if relay && role != .relay {
            throw NodeError(
                .invalidArgument,
                "\(dataDirectory.path) holds a member node (it holds space keys), so it cannot run as a relay: create the "
                    + "relay in its own data directory with `saraban init --relay --office NAME`")
        }
        return NodeEnvelopeStorage(node: self, role: role)
    }
}
