/// Where one author's feed in one space stands: the last accepted sequence number and envelope id.
///
/// Persist it (the node stores it next to the change log) and hand it back to
/// ``FeedVerifier/init(spaceID:knownEpochs:heads:)`` after a restart.
public struct FeedHead: Hashable, Sendable {
    /// The last accepted sequence number (0 before the first envelope).
    public var lastSequence: UInt64
    /// The id of the last accepted envelope (``EnvelopeID/zero`` before the first).
    public var lastID: EnvelopeID

    /// A head.
    public init(lastSequence: UInt64 = 0, lastID: EnvelopeID = .zero) {
        self.lastSequence = lastSequence
        self.lastID = lastID
    }
}

/// A pure (no I/O) checker for the envelopes of one space, one hash chain per author.
///
/// ``accept(_:)`` takes the next envelope of some author, or throws a distinct error:
///
/// | code | meaning |
/// |---|---|
/// | ``CryptoError/Code/feedWrongSpace`` | the envelope is for another space |
/// | ``CryptoError/Code/feedWrongEpoch`` | the epoch is not in ``knownEpochs`` |
/// | ``CryptoError/Code/feedBadSignature`` | tampered, or signed by someone other than its author |
/// | ``CryptoError/Code/feedReplay`` | this exact envelope was already accepted |
/// | ``CryptoError/Code/feedGap`` | it starts after the next expected sequence number |
/// | ``CryptoError/Code/feedOverlap`` | it overlaps accepted sequences without being a known envelope (reordered) |
/// | ``CryptoError/Code/feedFork`` | a different signed envelope for an accepted position, with a ``ForkProof`` |
///
/// The verifier remembers the start sequence and id of the last ``historyLimit`` envelopes of each
/// author, so it can tell a replay from a fork in that window; older positions report
/// ``CryptoError/Code/feedOverlap`` unless the caller checks its store. It needs no key, so a relay runs it too.
public struct FeedVerifier: Sendable {
    /// The space whose envelopes this verifier accepts.
    public let spaceID: [UInt8]
    /// Epochs whose envelopes are accepted. Add an epoch when its key (or, for a relay, its announcement) arrives.
    public var knownEpochs: Set<UInt32>
    /// How many recent envelopes per author are remembered for replay and fork detection.
    public var historyLimit: Int

    private struct Accepted: Hashable, Sendable {
        var seqEnd: UInt64
        var id: EnvelopeID
    }

    private struct Feed: Sendable {
        var head = FeedHead()
        var recent: [UInt64: Accepted] = [:]  // keyed by seqStart
        var order: [UInt64] = []  // seqStarts, oldest first
    }

    private var feeds: [SigningPublicKey: Feed] = [:]

    /// A verifier for `spaceID`, optionally resuming from persisted heads.
    public init(
        spaceID: [UInt8], knownEpochs: Set<UInt32>, heads: [SigningPublicKey: FeedHead] = [:], historyLimit: Int = 4096
    ) {
        self.spaceID = spaceID
        self.knownEpochs = knownEpochs
        self.historyLimit = max(historyLimit, 1)
        for (author, head) in heads { feeds[author] = Feed(head: head) }
    }

    /// The current head of `author`'s feed.
    public func head(of author: SigningPublicKey) -> FeedHead { feeds[author]?.head ?? FeedHead() }

    /// Checks `envelope` against the feed of its author and, if it is the next one, advances the head.
    ///
    /// Nothing changes when it throws.
    public mutating func accept(_ envelope: Envelope) throws(CryptoError) {
        let h = envelope.header
        guard h.spaceID == spaceID else {
            throw CryptoError(
                .feedWrongSpace,
                "envelope \(envelope.id) belongs to space \(hexString(h.spaceID)), not \(hexString(spaceID)): route it to the right space"
            )
        }
        guard knownEpochs.contains(h.epoch) else {
            throw CryptoError(
                .feedWrongEpoch,
                "envelope \(envelope.id) uses key epoch \(h.epoch), which this node does not know: fetch the space's key rotations, then retry"
            )
        }
        try envelope.verifySignature()

        var feed = feeds[h.author] ?? Feed()
        let expected = feed.head.lastSequence + 1
        if h.seqStart > expected {
            throw CryptoError(
                .feedGap,
                "envelope \(envelope.id) from \(h.author) starts at seq \(h.seqStart) but \(expected) is next: fetch the missing envelopes first"
            )
        }
        if h.seqStart == expected {
            guard h.previousHash == feed.head.lastID else {
                let proof = ForkProof(
                    spaceID: spaceID, author: h.author, sequence: feed.head.lastSequence, acceptedID: feed.head.lastID,
                    conflictingID: h.previousHash, conflictingEnvelopeID: envelope.id)
                throw CryptoError(
                    .feedFork,
                    "\(h.author) signed envelope \(envelope.id) on top of \(h.previousHash), but \(feed.head.lastID) was accepted at seq \(feed.head.lastSequence): the author forked its feed; keep the proof and alert an administrator",
                    forkProof: proof)
            }
            feed.head = FeedHead(lastSequence: h.seqEnd, lastID: envelope.id)
            feed.recent[h.seqStart] = Accepted(seqEnd: h.seqEnd, id: envelope.id)
            feed.order.append(h.seqStart)
            if feed.order.count > historyLimit {
                let drop = feed.order.count - historyLimit
                for s in feed.order.prefix(drop) { feed.recent[s] = nil }
                feed.order.removeFirst(drop)
            }
            feeds[h.author] = feed
            return
        }
        // h.seqStart < expected: an already covered position.
        if let known = feed.recent[h.seqStart] {
            if known.id == envelope.id {
                throw CryptoError(
                    .feedReplay,
                    "envelope \(envelope.id) (seq \(h.seqStart)…\(h.seqEnd)) was already accepted: drop the duplicate")
            }
            let proof = ForkProof(
                spaceID: spaceID, author: h.author, sequence: h.seqStart, acceptedID: known.id,
                conflictingID: envelope.id,
                conflictingEnvelopeID: envelope.id)
            throw CryptoError(
                .feedFork,
                "\(h.author) signed two different envelopes at seq \(h.seqStart) (\(known.id) and \(envelope.id)): the author forked its feed; keep the proof and alert an administrator",
                forkProof: proof)
        }
        throw CryptoError(
            .feedOverlap,
            "envelope \(envelope.id) (seq \(h.seqStart)…\(h.seqEnd)) overlaps sequences already accepted up to \(feed.head.lastSequence) without matching a known envelope: it arrived out of order or overlaps; drop it"
        )
    }
}
