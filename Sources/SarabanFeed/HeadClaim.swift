import SarabanCore
import SarabanCrypto

/// A member's signed statement of how much of one space it holds, per author, at a time of its
/// clock: what makes a relay that withholds envelopes visible (Docs/SECURITY.md, "Withholding").
///
/// Members make one at the start of a session when what they hold changed since their last
/// claim (or it grew old); every node keeps the latest claim per (space, claimant) it has
/// verified and hands it on to its peers (Sync/PROTOCOL.md, `claimsDigest` and `claims`). A node
/// that holds less of an author than a claim made before its session says exists was not given
/// envelopes that exist.
///
/// Bytes (the one encoding; the signature covers ``signingContext`` ‖ everything before it):
///
/// ```
/// version (1, = 1) ‖ space (16) ‖ claimant (32, Ed25519) ‖ time (8, ms since 1970, big-endian)
/// ‖ n (varint) ‖ n × (author (32) ‖ seq (varint, ≥ 1) ‖ head tag (8)) ‖ signature (64)
/// ```
///
/// Entries are in ascending author order without duplicates; the head tag is the first 8 bytes
/// of the id of the envelope that ends at `seq` (all zero when the claimant had none ending there).
public struct HeadClaim: Hashable, Sendable {
    public struct Entry: Hashable, Sendable {
        public var author: SigningPublicKey
        public var seq: UInt64
        /// The first 8 bytes (big-endian) of the id of the claimant's envelope ending at `seq`; 0 unknown.
        public var tag: UInt64

        public init(author: SigningPublicKey, seq: UInt64, tag: UInt64) {
            self.author = author
            self.seq = seq
            self.tag = tag
        }
    }

    public static let version: UInt8 = 1
    /// Prefixed to the signed bytes, so a claim's signature can never pass for an envelope's or a
    /// handshake's.
    public static let signingContext = Array("saraban head claim v1".utf8) + [0]
    /// The most entries (authors) in one claim.
    public static let maximumEntries = 65_536
    /// The smallest encoding: no entry.
    public static let minimumByteCount = 1 + SpaceID.byteCount + SigningPublicKey.byteCount + 8 + 1 + SigningKeyPair.signatureByteCount

    public let space: SpaceID
    public let claimant: SigningPublicKey
    /// When the claimant made it: milliseconds since 1970 by the claimant's clock.
    public let time: Int64
    /// Ascending by author.
    public let entries: [Entry]
    /// The whole encoding, signature included (what is stored and sent).
    public let bytes: [UInt8]

    private init(space: SpaceID, claimant: SigningPublicKey, time: Int64, entries: [Entry], bytes: [UInt8]) {
        self.space = space
        self.claimant = claimant
        self.time = time
        self.entries = entries
        self.bytes = bytes
    }

    /// Signs a claim of `signer` that it holds `heads` of `space` at `time`.
    public static func make(
        space: SpaceID, signer: SigningKeyPair, time: Int64, heads: [SigningPublicKey: FeedHead]
    ) -> HeadClaim {
        let entries = heads.filter { $0.value.lastSequence > 0 }
            .sorted { SigningPublicKey.precedes($0.key, $1.key) }
            .map { Entry(author: $0.key, seq: $0.value.lastSequence, tag: tag(of: $0.value.lastID)) }
        var w = BinaryWriter(capacity: minimumByteCount + entries.count * 50)
        w.byte(version)
        w.raw(space.bytes)
        w.raw(signer.publicKey.rawRepresentation)
        w.fixed64(UInt64(bitPattern: time))
        w.varint(entries.count)
        for e in entries {
            w.raw(e.author.rawRepresentation)
            w.varint(e.seq)
            w.fixed64(e.tag)
        }
        let signature = signer.sign(signingContext + w.bytes)
        w.raw(signature)
        return HeadClaim(space: space, claimant: signer.publicKey, time: time, entries: entries, bytes: w.bytes)
    }

    /// Why a node does not keep this claim, received among the claims of `space`, whoever its
    /// claimant is (nil: it verifies and is of that space). Whether the claimant is a member is
    /// each keeper's own question (its roster).
    public func refusal(in space: SpaceID) -> String? {
        guard self.space == space else { return "a claim of space \(self.space.hex) among the claims of \(space.hex)" }
        guard hasValidSignature else { return "the signature does not verify (altered, or not signed by its claimant)" }
        return nil
    }

    /// The tag of an envelope id: its first 8 bytes, big-endian.
    public static func tag(of id: EnvelopeID) -> UInt64 { id.bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } }

    /// Strictly decodes a claim's structure (the signature is checked by ``hasValidSignature``).
    ///
    /// - Throws: `DecodingError`; never traps.
    public static func decode(_ bytes: [UInt8]) throws(DecodingError) -> HeadClaim {
        var r = BinaryReader(bytes)
        let v = try r.byte()
        guard v == version else { throw DecodingError(.unsupportedVersion, at: 0, "head claim version \(v); this build reads \(version)") }
        let space = SpaceID(bytes: try r.raw(SpaceID.byteCount))!
        let at = r.offset
        let claimant: SigningPublicKey
        do { claimant = try SigningPublicKey(rawRepresentation: Array(try r.raw(SigningPublicKey.byteCount))) } catch {
            throw DecodingError(.invalidValue, at: at, "claimant: \(error)")
        }
        let time = Int64(bitPattern: try r.fixed64())
        let n = try r.count(max: min(maximumEntries, max(0, r.remaining - SigningKeyPair.signatureByteCount) / 41))
        var entries: [Entry] = []
        entries.reserveCapacity(n)
        for _ in 0..<n {
            let eat = r.offset
            let author: SigningPublicKey
            do { author = try SigningPublicKey(rawRepresentation: Array(try r.raw(SigningPublicKey.byteCount))) } catch {
                throw DecodingError(.invalidValue, at: eat, "author: \(error)")
            }
            if let last = entries.last, !SigningPublicKey.precedes(last.author, author) {
                throw DecodingError(.invalidValue, at: eat, "claim entries must be in strictly ascending author order")
            }
            let sat = r.offset
            let seq = try r.varint()
            guard seq > 0, seq <= UInt64(Int64.max) else { throw DecodingError(.invalidValue, at: sat, "sequence number \(seq)") }
            entries.append(Entry(author: author, seq: seq, tag: try r.fixed64()))
        }
        _ = try r.raw(SigningKeyPair.signatureByteCount)
        try r.expectEnd()
        return HeadClaim(space: space, claimant: claimant, time: time, entries: entries, bytes: bytes)
    }

    /// Whether the claimant signed exactly these bytes.
    public var hasValidSignature: Bool {
        let cut = bytes.count - SigningKeyPair.signatureByteCount
        return claimant.isValidSignature(Array(bytes[cut...]), for: Self.signingContext + bytes[..<cut])
    }

    /// The claimed holdings as a vector.
    public var vector: FeedVector { FeedVector(Dictionary(uniqueKeysWithValues: entries.map { ($0.author, $0.seq) })) }

    /// Whether this claim says the same about the same heads as `heads` (no new claim needed).
    public func matches(_ heads: [SigningPublicKey: FeedHead]) -> Bool {
        let live = heads.filter { $0.value.lastSequence > 0 }
        guard live.count == entries.count else { return false }
        return entries.allSatisfy { e in live[e.author].map { $0.lastSequence == e.seq && Self.tag(of: $0.lastID) == e.tag } ?? false }
    }

    /// The authors of which `held` holds less than this claim says exists: (author, claimed, held).
    public func shortfall(of held: FeedVector) -> [(author: SigningPublicKey, claimed: UInt64, held: UInt64)] {
        entries.compactMap { e in held[e.author] < e.seq ? (e.author, e.seq, held[e.author]) : nil }
    }

    /// An 8-byte digest of a set of claims (at most one per claimant): the first 8 bytes of
    /// BLAKE2b-128 over the claims sorted by claimant, each `claimant (32) ‖ time (8, big-endian)`. 0 for no claim,
    /// so two nodes compare what they hold of a space without sending it.
    public static func digest(_ claims: some Collection<HeadClaim>) -> UInt64 {
        guard !claims.isEmpty else { return 0 }
        var w = BinaryWriter(capacity: claims.count * 40)
        for c in claims.sorted(by: { SigningPublicKey.precedes($0.claimant, $1.claimant) }) {
            w.raw(c.claimant.rawRepresentation)
            w.fixed64(UInt64(bitPattern: c.time))
        }
        let h = (try? BLAKE2b.hash(w.bytes, outputLength: 16)) ?? []
        let d = h.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        return d == 0 ? 1 : d
    }

    /// One 8-byte digest of the claims of several spaces (the spaces two nodes share): the first
    /// 8 bytes of BLAKE2b-128 over `space (16) ‖ digest (8)` for each space with a non-zero
    /// ``digest(_:)``, ascending; 0 when there is none.
    public static func combinedDigest(_ digests: [SpaceID: UInt64]) -> UInt64 {
        let items = digests.filter { $0.value != 0 }.sorted { $0.key < $1.key }
        guard !items.isEmpty else { return 0 }
        var w = BinaryWriter(capacity: items.count * 24)
        for (space, d) in items {
            w.raw(space.bytes)
            w.fixed64(d)
        }
        let h = (try? BLAKE2b.hash(w.bytes, outputLength: 16)) ?? []
        let d = h.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        return d == 0 ? 1 : d
    }
}
