import SarabanCore
import SarabanCrypto

/// A 16-bit error code carried by the `error` message and by ``SyncError``.
///
/// Extensible: codes this build does not know decode as themselves and print as `code N`.
public struct SyncErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A frame or message could not be decoded (garbage, truncated message, trailing bytes, bad field).
    public static let malformed = SyncErrorCode(rawValue: 1)
    /// A frame announced more than the 4 MiB limit.
    public static let frameTooLarge = SyncErrorCode(rawValue: 2)
    /// The message's version byte is not one this node speaks.
    public static let unsupportedVersion = SyncErrorCode(rawValue: 3)
    /// A message arrived in a state that does not allow it (before hello, a second hello, a summary twice).
    public static let unexpectedMessage = SyncErrorCode(rawValue: 4)
    /// A summary, envelope batch or ack named a space not carried by both sides.
    public static let spaceNotShared = SyncErrorCode(rawValue: 5)
    /// More unacknowledged batches than the receiver's window, or an ack with no batch in flight.
    public static let flowControl = SyncErrorCode(rawValue: 6)
    /// An envelope is malformed or belongs to another space than its batch.
    public static let invalidEnvelope = SyncErrorCode(rawValue: 7)
    /// Nothing was received for longer than the timeout.
    public static let timeout = SyncErrorCode(rawValue: 8)
    /// The sender hit a local fault (for example an envelope in its store too large to send).
    public static let internalError = SyncErrorCode(rawValue: 9)
    /// The node refuses the peer (policy, rate limit, shutting down).
    public static let refused = SyncErrorCode(rawValue: 10)

    static let names: [UInt16: String] = [
        1: "malformed", 2: "frameTooLarge", 3: "unsupportedVersion", 4: "unexpectedMessage", 5: "spaceNotShared",
        6: "flowControl", 7: "invalidEnvelope", 8: "timeout", 9: "internalError", 10: "refused",
    ]

    public var description: String { Self.names[rawValue] ?? "code \(rawValue)" }
}

/// What a hello announces the sender understands, beyond version 1's messages (the hello's
/// `flags` varint). Bits this build does not know are kept and ignored.
public struct HelloFeatures: OptionSet, Hashable, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The sender reads `summary` with head tags (tag `0x0A`), so the peer may send its summary
    /// that way: per entry, the first bytes of the id of the envelope that ends there.
    public static let headTags = HelloFeatures(rawValue: 1)
    /// The sender exchanges head claims (Sync/PROTOCOL.md, `claimsDigest` and `claims`): after its
    /// summaries it sends one `claimsDigest`, and `claims` for the spaces whose digests differ.
    public static let headClaims = HelloFeatures(rawValue: 2)
    /// The sender compares head tags by digest (Sync/PROTOCOL.md, `headsDigest` and `heads`): its
    /// summaries go without tags, followed by one `headsDigest`; the tags themselves go in `heads`
    /// only when the two digests differ. Takes precedence over ``headTags`` when both sides set it.
    public static let headDigest = HelloFeatures(rawValue: 4)
    /// The sender reads `horizons` (Sync/PROTOCOL.md): a relay that no longer holds some feeds
    /// from their first envelope (retention) says from where it holds them, so the sender does
    /// not wait for envelopes the relay cannot send.
    public static let horizons = HelloFeatures(rawValue: 8)
}

/// The first message each side sends.
public struct Hello: Hashable, Sendable {
    /// Member or relay.
    public var role: NodeRole
    /// How many unacknowledged `envelopes` messages this side accepts in flight towards it (1…``Hello/maximumWindow``).
    public var receiveWindow: Int
    /// Every space this side carries, ascending, without duplicates.
    public var spaces: [SpaceID]
    /// What the sender understands beyond version 1 (empty for a node that predates the flags).
    public var features: HelloFeatures

    /// The largest receive window a hello may announce.
    public static let maximumWindow = 64
    /// The most spaces one hello may list.
    public static let maximumSpaces = 65_536

    public init(role: NodeRole, receiveWindow: Int, spaces: [SpaceID], features: HelloFeatures = []) {
        self.role = role
        self.receiveWindow = receiveWindow
        self.spaces = spaces
        self.features = features
    }
}

/// One space's vector inside a `summary`.
public struct SpaceVector: Hashable, Sendable {
    public var space: SpaceID
    public var vector: FeedVector
    /// For entries of `vector`, the tag of the envelope that ends at the entry's sequence number
    /// (sent only to a peer whose hello announced ``HelloFeatures/headTags``). Tags of authors
    /// without an entry are not sent.
    public var heads: [SigningPublicKey: HeadTag]

    public init(space: SpaceID, vector: FeedVector, heads: [SigningPublicKey: HeadTag] = [:]) {
        self.space = space
        self.vector = vector
        self.heads = heads
    }
}

/// A sync protocol message (the payload of one frame). See Sync/PROTOCOL.md for the byte layouts.
public enum SyncMessage: Hashable, Sendable {
    /// Role, receive window and the spaces carried. Sent first by both sides.
    case hello(Hello)
    /// Version vectors of spaces carried by both sides (one or more spaces, one shared author table);
    /// with head tags (tag `0x0A`) when any item has ``SpaceVector/heads``.
    case summary([SpaceVector])
    /// Envelopes of one space, each author's in chain order.
    case envelopes(space: SpaceID, envelopes: [Envelope])
    /// The receiver stored the batch it got; `holds` is its whole vector for the space now.
    case ack(space: SpaceID, holds: FeedVector)
    /// Keep-alive probe; answered by `pong` with the same nonce.
    case ping(nonce: UInt64)
    case pong(nonce: UInt64)
    /// The sender is closing the session because of `code`.
    case error(code: SyncErrorCode, message: String)
    /// Orderly close.
    case bye
    /// Attachment chunks of a shared space: offers, wants, manifests, chunks (``AttachmentMessage``).
    case attachment(AttachmentMessage)
    /// The digest of the head claims the sender holds of the shared spaces
    /// (``HeadClaim/combinedDigest(_:)``), and in the second one of a session (sent only when the
    /// first ones differed) per shared space the digest (``HeadClaim/digest(_:)``); spaces the
    /// sender holds no claim of are left out. The first goes right after the summaries, to a
    /// peer whose hello announced ``HelloFeatures/headClaims``.
    case claimsDigest(combined: UInt64, spaces: [SpaceID: UInt64]?)
    /// Head claims of one space the sender holds (the answer to a `claimsDigest` that differs);
    /// `last`: no more `claims` of this space follow in this session.
    case claims(space: SpaceID, claims: [HeadClaim], last: Bool)
    /// The digest of the head tags of every summary the sender sent in this session
    /// (``HeadTag/digest(of:)``). Sent once, right after the summaries, to a peer whose hello
    /// announced ``HelloFeatures/headDigest``; the summaries themselves then carry no tag.
    case headsDigest(UInt64)
    /// Head tags of the sender's summary entries whose position the peer's summary reaches (the
    /// answer when the two `headsDigest` differ); items are encoded as in a summary with head tags,
    /// zero or more spaces. `last`: no more `heads` follow in this session.
    case heads([SpaceVector], last: Bool)
    /// Per shared space, the feeds the sender holds only from a later envelope than their first
    /// (each entry: the author and the **first** sequence number held). Sent once, right after
    /// hello and before the summaries, only when there are any and the peer's hello announced
    /// ``HelloFeatures/horizons``. Encoded as a summary (without tags).
    case horizons([SpaceVector])

    /// The version byte of every message this build sends and the only one it accepts.
    public static let protocolVersion: UInt8 = 1
    /// The most envelopes in one `envelopes` message.
    public static let maximumEnvelopesPerMessage = 65_536
    /// The most authors in one summary's table or one ack.
    public static let maximumAuthors = 65_536
    /// The longest `error` text in bytes.
    public static let maximumErrorTextByteCount = 1024
    /// Bytes of an `envelopes` message other than the envelopes and their length prefixes.
    static let envelopesOverhead = 2 + SpaceID.byteCount + 4

    enum Tag: UInt8 {
        case hello = 1, summary, envelopes, ack, ping, pong, error, bye, attachment, summaryWithHeads, claimsDigest, claims, headsDigest, heads, horizons
    }

    /// The most claims in one `claims` message.
    public static let maximumClaimsPerMessage = 65_536

    var tag: Tag {
        switch self {
        case .hello: .hello
        case .summary(let items): items.contains { !$0.heads.isEmpty } ? .summaryWithHeads : .summary
        case .envelopes: .envelopes
        case .ack: .ack
        case .ping: .ping
        case .pong: .pong
        case .error: .error
        case .bye: .bye
        case .attachment: .attachment
        case .claimsDigest: .claimsDigest
        case .claims: .claims
        case .headsDigest: .headsDigest
        case .heads: .heads
        case .horizons: .horizons
        }
    }

    /// A short name for logs.
    public var name: String { "\(tag)" }

    // MARK: Encoding

    /// The message bytes (a frame payload).
    public func encoded() -> [UInt8] {
        var w = BinaryWriter(capacity: estimatedSize)
        encode(into: &w)
        return w.bytes
    }

    /// The message inside its frame: `length (u32 BE) ‖ payload`.
    public func framed() -> [UInt8] {
        var w = BinaryWriter(capacity: Frame.headerByteCount + estimatedSize)
        w.raw([0, 0, 0, 0])
        encode(into: &w)
        w.setFixed32(UInt32(w.bytes.count - Frame.headerByteCount), at: 0)
        return w.bytes
    }

    private var estimatedSize: Int {
        switch self {
        case .envelopes(_, let es): Self.envelopesOverhead + es.reduce(0) { $0 + $1.bytes.count + 4 }
        case .summary(let s): 8 + s.reduce(0) { $0 + 20 + $1.vector.entries.count * (40 + HeadTag.byteCount) }
        case .hello(let h): 8 + h.spaces.count * 16
        case .ack(_, let v): 20 + v.entries.count * 40
        case .attachment(let m): 2 + m.estimatedSize
        case .claimsDigest(_, let d): 12 + (d?.count ?? 0) * 24
        case .claims(_, let cs, _): 24 + cs.reduce(0) { $0 + $1.bytes.count + 4 }
        case .heads(let s, _): 9 + s.reduce(0) { $0 + 20 + $1.vector.entries.count * (40 + HeadTag.byteCount) }
        case .horizons(let s): 8 + s.reduce(0) { $0 + 20 + $1.vector.entries.count * 40 }
        default: 32
        }
    }

    private func encode(into w: inout BinaryWriter) {
        w.byte(Self.protocolVersion)
        w.byte(tag.rawValue)
        switch self {
        case .hello(let h):
            w.byte(h.role.rawValue)
            w.varint(h.receiveWindow)
            w.varint(h.features.rawValue)
            let spaces = Array(Set(h.spaces)).sorted()
            w.varint(spaces.count)
            for s in spaces { w.raw(s.bytes) }
        case .summary(let items):
            Self.encodeSummary(items, withHeads: tag == .summaryWithHeads, into: &w)
        case .envelopes(let space, let envelopes):
            w.raw(space.bytes)
            w.varint(envelopes.count)
            for e in envelopes {
                w.varint(e.bytes.count)
                w.raw(e.bytes)
            }
        case .ack(let space, let holds):
            w.raw(space.bytes)
            let entries = holds.sortedEntries
            w.varint(entries.count)
            for e in entries {
                w.raw(e.author.rawRepresentation)
                w.varint(e.seq)
            }
        case .ping(let nonce), .pong(let nonce):
            w.varint(nonce)
        case .error(let code, let message):
            w.fixed16(code.rawValue)
            let text = Self.truncatedUTF8(message, to: Self.maximumErrorTextByteCount)
            w.varint(text.count)
            w.raw(text)
        case .bye:
            break
        case .attachment(let m):
            m.encode(into: &w)
        case .claimsDigest(let combined, let digests):
            w.fixed64(combined)
            w.byte(digests == nil ? 0 : 1)
            if let digests {
                let items = digests.filter { $0.value != 0 }.sorted { $0.key < $1.key }
                w.varint(items.count)
                for (space, d) in items {
                    w.raw(space.bytes)
                    w.fixed64(d)
                }
            }
        case .claims(let space, let claims, let last):
            w.raw(space.bytes)
            w.byte(last ? 1 : 0)
            w.varint(claims.count)
            for c in claims {
                w.varint(c.bytes.count)
                w.raw(c.bytes)
            }
        case .headsDigest(let digest):
            w.fixed64(digest)
        case .heads(let items, let last):
            w.byte(last ? 1 : 0)
            Self.encodeSummary(items, withHeads: true, into: &w)
        case .horizons(let items):
            Self.encodeSummary(items.map { SpaceVector(space: $0.space, vector: $0.vector) }, withHeads: false, into: &w)
        }
    }

    /// The summary layout: one author table, then per space its entries (with a tag each when `withHeads`).
    private static func encodeSummary(_ items: [SpaceVector], withHeads: Bool, into w: inout BinaryWriter) {
        var authors = Set<SigningPublicKey>()
        for item in items { authors.formUnion(item.vector.entries.keys) }
        let table = authors.sorted(by: SigningPublicKey.precedes)
        var index = [SigningPublicKey: Int]()
        for (i, a) in table.enumerated() { index[a] = i }
        w.varint(table.count)
        for a in table { w.raw(a.rawRepresentation) }
        let sortedItems = items.sorted { $0.space < $1.space }
        w.varint(sortedItems.count)
        for item in sortedItems {
            w.raw(item.space.bytes)
            let entries = item.vector.entries.map { (index[$0.key]!, $0.key, $0.value) }.sorted { $0.0 < $1.0 }
            w.varint(entries.count)
            for (i, author, seq) in entries {
                w.varint(i)
                w.varint(seq)
                // An entry without a known head sends the zero tag, which no envelope has.
                if withHeads { w.raw(item.heads[author]?.bytes ?? HeadTag.unknownBytes) }
            }
        }
    }

    /// The longest prefix of `s` that is whole characters and at most `limit` UTF-8 bytes.
    static func truncatedUTF8(_ s: String, to limit: Int) -> [UInt8] {
        var out = [UInt8]()
        for ch in s {
            let u = Array(String(ch).utf8)
            if out.count + u.count > limit { break }
            out.append(contentsOf: u)
        }
        return out
    }

    // MARK: Decoding

    /// Strictly decodes one frame payload.
    ///
    /// Every count is checked against what the remaining bytes could hold before anything is
    /// allocated, so a hostile length cannot make it reserve more memory than the frame's size.
    ///
    /// - Throws: ``DecodingError`` (the one reader's error, Sync/PROTOCOL.md §6); never traps.
    public static func decode(_ payload: [UInt8]) throws(DecodingError) -> SyncMessage {
        var r = BinaryReader(payload)
        let version = try r.byte()
        guard version == protocolVersion else {
            throw DecodingError(.unsupportedVersion, at: 0, "version \(version); this node speaks version \(protocolVersion)")
        }
        let tagByte = try r.byte()
        guard let tag = Tag(rawValue: tagByte) else { throw DecodingError(.unknownTag, at: 1, "tag \(tagByte)") }
        let message: SyncMessage
        switch tag {
        case .hello: message = .hello(try decodeHello(&r))
        case .summary: message = .summary(try decodeSummary(&r, withHeads: false))
        case .summaryWithHeads:
            let items = try decodeSummary(&r, withHeads: true)
            // Without a single tag it is a `summary` (one encoding per message).
            guard items.contains(where: { !$0.heads.isEmpty }) else {
                throw DecodingError(.invalidValue, at: 1, "a summary with head tags carries no tag: send it as a summary")
            }
            message = .summary(items)
        case .envelopes:
            let space = try decodeSpace(&r)
            let n = try r.count(
                "envelope count", min: 1,
                max: min(maximumEnvelopesPerMessage, r.remaining / (Envelope.minimumByteCount + 2)))
            var envelopes = [Envelope]()
            envelopes.reserveCapacity(n)
            for _ in 0..<n {
                let len = try r.count(
                    "envelope length", min: Envelope.minimumByteCount, max: min(Envelope.maximumByteCount, r.remaining))
                let at = r.offset
                let bytes = Array(try r.raw(len))
                let e: Envelope
                do { e = try Envelope.decode(bytes) } catch { throw DecodingError(.invalidEnvelope, at: at, error.description) }
                guard e.header.spaceID == space.bytes else {
                    throw DecodingError(.invalidEnvelope, at: at, "envelope \(e.id) belongs to another space than its batch (\(space))")
                }
                envelopes.append(e)
            }
            message = .envelopes(space: space, envelopes: envelopes)
        case .ack:
            let space = try decodeSpace(&r)
            let n = try r.count("author count", max: min(maximumAuthors, r.remaining / 33))
            var v = FeedVector()
            var previous: SigningPublicKey?
            for _ in 0..<n {
                let a = try decodeAuthor(&r, after: previous)
                previous = a
                v[a] = try decodeSeq(&r)
            }
            message = .ack(space: space, holds: v)
        case .ping: message = .ping(nonce: try r.varint())
        case .pong: message = .pong(nonce: try r.varint())
        case .error:
            let code = SyncErrorCode(rawValue: try r.fixed16())
            let n = try r.count("error text length", max: min(maximumErrorTextByteCount, r.remaining))
            let at = r.offset
            guard let text = String(validating: try r.raw(n), as: UTF8.self) else {
                throw DecodingError(.invalidUTF8, at: at, "error text is not UTF-8")
            }
            message = .error(code: code, message: text)
        case .bye: message = .bye
        case .attachment: message = .attachment(try AttachmentMessage.decode(&r))
        case .claimsDigest:
            let combined = try r.fixed64()
            let fat = r.offset
            let form = try r.byte()
            guard form <= 1 else { throw DecodingError(.invalidValue, at: fat, "the per-space flag is \(form), not 0 or 1") }
            guard form == 1 else {
                message = .claimsDigest(combined: combined, spaces: nil)
                break
            }
            let n = try r.count("space count", max: min(Hello.maximumSpaces, r.remaining / (SpaceID.byteCount + 8)))
            var digests: [SpaceID: UInt64] = [:]
            var previous: SpaceID?
            for _ in 0..<n {
                let at = r.offset
                let space = try decodeSpace(&r)
                guard previous.map({ $0 < space }) ?? true else {
                    throw DecodingError(.invalidValue, at: at, "spaces must be strictly ascending (duplicate or unsorted)")
                }
                previous = space
                let d = try r.fixed64()
                guard d != 0 else { throw DecodingError(.invalidValue, at: at + SpaceID.byteCount, "a zero digest is sent by leaving the space out") }
                digests[space] = d
            }
            message = .claimsDigest(combined: combined, spaces: digests)
        case .claims:
            let space = try decodeSpace(&r)
            let lat = r.offset
            let last = try r.byte()
            guard last <= 1 else { throw DecodingError(.invalidValue, at: lat, "the last flag is \(last), not 0 or 1") }
            let n = try r.count(
                "claim count", max: min(maximumClaimsPerMessage, r.remaining / (HeadClaim.minimumByteCount + 1)))
            var claims: [HeadClaim] = []
            claims.reserveCapacity(n)
            for _ in 0..<n {
                let len = try r.count("claim length", min: HeadClaim.minimumByteCount, max: r.remaining)
                let at = r.offset
                let raw = Array(try r.raw(len))
                let c: HeadClaim
                do { c = try HeadClaim.decode(raw) } catch {
                    throw DecodingError(.invalidValue, at: at, "head claim: \(error)")
                }
                guard c.space == space else {
                    throw DecodingError(.invalidValue, at: at, "a head claim of space \(c.space) in the claims of space \(space)")
                }
                claims.append(c)
            }
            message = .claims(space: space, claims: claims, last: last == 1)
        case .headsDigest:
            message = .headsDigest(try r.fixed64())
        case .heads:
            let lat = r.offset
            let last = try r.byte()
            guard last <= 1 else { throw DecodingError(.invalidValue, at: lat, "the last flag is \(last), not 0 or 1") }
            message = .heads(try decodeSummary(&r, withHeads: true, minimumSpaces: 0), last: last == 1)
        case .horizons:
            let at = r.offset
            let items = try decodeSummary(&r, withHeads: false)
            // A feed held from its first envelope has no horizon: a first sequence of 1 (or 0) says nothing.
            if items.contains(where: { $0.vector.entries.isEmpty || $0.vector.entries.values.contains { $0 < 2 } }) {
                throw DecodingError(.invalidValue, at: at, "a horizon is a first sequence of at least 2, and a space listed has at least one")
            }
            message = .horizons(items)
        }
        try r.expectEnd()
        return message
    }

    private static func decodeSpace(_ r: inout BinaryReader) throws(DecodingError) -> SpaceID {
        let s = try r.raw(SpaceID.byteCount)
        return SpaceID(bytes: s)!
    }

    private static func decodeAuthor(_ r: inout BinaryReader, after previous: SigningPublicKey?) throws(DecodingError) -> SigningPublicKey {
        let at = r.offset
        let raw = Array(try r.raw(SigningPublicKey.byteCount))
        let key: SigningPublicKey
        do { key = try SigningPublicKey(rawRepresentation: raw) } catch { throw DecodingError(.invalidValue, at: at, error.description) }
        if let p = previous, !SigningPublicKey.precedes(p, key) {
            throw DecodingError(.invalidValue, at: at, "authors must be strictly ascending (duplicate or unsorted key)")
        }
        return key
    }

    private static func decodeSeq(_ r: inout BinaryReader) throws(DecodingError) -> UInt64 {
        let at = r.offset
        let seq = try r.varint()
        guard seq >= 1 else { throw DecodingError(.invalidValue, at: at, "sequence 0 is never listed") }
        return seq
    }

    private static func decodeHello(_ r: inout BinaryReader) throws(DecodingError) -> Hello {
        let at = r.offset
        guard let role = NodeRole(rawValue: try r.byte()) else { throw DecodingError(.invalidValue, at: at, "unknown role") }
        let window = try r.count("receive window", min: 1, max: Hello.maximumWindow)
        let features = HelloFeatures(rawValue: try r.varint())
        let n = try r.count("space count", max: min(Hello.maximumSpaces, r.remaining / SpaceID.byteCount))
        var spaces = [SpaceID]()
        spaces.reserveCapacity(n)
        for _ in 0..<n {
            let sat = r.offset
            let s = try decodeSpace(&r)
            if let last = spaces.last, !(last < s) {
                throw DecodingError(.invalidValue, at: sat, "spaces must be strictly ascending (duplicate or unsorted)")
            }
            spaces.append(s)
        }
        return Hello(role: role, receiveWindow: window, spaces: spaces, features: features)
    }

    private static func decodeSummary(
        _ r: inout BinaryReader, withHeads: Bool, minimumSpaces: Int = 1
    ) throws(DecodingError) -> [SpaceVector] {
        let entryBytes = withHeads ? 2 + HeadTag.byteCount : 2
        let na = try r.count("author count", max: min(maximumAuthors, r.remaining / SigningPublicKey.byteCount))
        var table = [SigningPublicKey]()
        table.reserveCapacity(na)
        for _ in 0..<na { table.append(try decodeAuthor(&r, after: table.last)) }
        let ns = try r.count("space count", min: minimumSpaces, max: min(Hello.maximumSpaces, r.remaining / (SpaceID.byteCount + 1)))
        var items = [SpaceVector]()
        items.reserveCapacity(ns)
        for _ in 0..<ns {
            let sat = r.offset
            let space = try decodeSpace(&r)
            if let last = items.last, !(last.space < space) {
                throw DecodingError(.invalidValue, at: sat, "spaces must be strictly ascending (duplicate or unsorted)")
            }
            let ne = try r.count("entry count", max: min(na, r.remaining / entryBytes))
            var v = FeedVector()
            var heads: [SigningPublicKey: HeadTag] = [:]
            var lastIndex = -1
            for _ in 0..<ne {
                let iat = r.offset
                let i = try r.count("author index", max: na - 1)
                guard i > lastIndex else { throw DecodingError(.invalidValue, at: iat, "author indices must be strictly ascending") }
                lastIndex = i
                v[table[i]] = try decodeSeq(&r)
                if withHeads, let tag = HeadTag(bytes: try r.raw(HeadTag.byteCount)) { heads[table[i]] = tag }
            }
            items.append(SpaceVector(space: space, vector: v, heads: heads))
        }
        return items
    }
}
