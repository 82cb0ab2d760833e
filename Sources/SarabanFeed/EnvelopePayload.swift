import SarabanCore
import SarabanCrypto

/// The plaintext inside an envelope, written once for the store, the simulator and the tests:
/// the author's consecutive changes, each as its ``Change/encoded()`` bytes behind an unsigned
/// LEB128 length (``BinaryWriter/lengthPrefixed(_:)``). Padding is the envelope's business.
public enum EnvelopePayload {
    /// The changes of one envelope and, for each, its bytes exactly as the author sealed them
    /// (a receiver logs those bytes rather than encoding the change again).
    public struct Opened: Sendable {
        public var changes: [Change] = []
        public var bytes: [[UInt8]] = []

        public init() {}
    }

    /// The payload of `encodedChanges` (each one change's encoding), in order.
    public static func encode<S: Sequence>(_ encodedChanges: S, capacity: Int = 0) -> [UInt8]
    where S.Element == [UInt8] {
        var w = BinaryWriter(capacity: capacity)
        for b in encodedChanges { w.lengthPrefixed(b) }
        return w.bytes
    }

    /// The payload of `changes`, encoding each.
    public static func encode(changes: [Change]) -> [UInt8] { encode(changes.lazy.map { $0.encoded() }) }

    /// Decodes a payload and checks it holds exactly the header's author and sequence range.
    public static func decode(_ plain: [UInt8], header h: EnvelopeHeader, id: EnvelopeID) throws(EnvelopeError) -> Opened {
        let author = ReplicaID(bytes: h.author.rawRepresentation)
        var r = BinaryReader(plain)
        var opened = Opened()
        do {
            while !r.isAtEnd {
                let bytes = Array(try r.lengthPrefixed())
                opened.changes.append(try Change.decode(bytes))
                opened.bytes.append(bytes)
            }
        } catch {
            throw EnvelopeError(.invalidContents, "envelope \(id) holds changes that do not decode (\(error)); drop it")
        }
        let out = opened.changes
        guard UInt64(out.count) == h.changeCount,
            out.enumerated().allSatisfy({ $0.element.author == author && $0.element.seq == h.seqStart + UInt64($0.offset) })
        else {
            throw EnvelopeError(
                .invalidContents,
                "envelope \(id) claims changes \(h.seqStart)…\(h.seqEnd) of \(h.author) but holds others: drop it")
        }
        return opened
    }

    /// Decrypts `e` with `key` and decodes its changes (``decode(_:header:id:)``).
    public static func open(_ e: Envelope, key: SymmetricKey) throws(EnvelopeError) -> Opened {
        let plain: [UInt8]
        do { plain = try e.open(key: key) } catch {
            throw EnvelopeError(
                .undecryptable,
                "envelope \(e.id) by \(e.header.author) does not decrypt with the epoch \(e.header.epoch) key: "
                    + "its author's software is faulty or it was sealed with another key; drop it")
        }
        return try decode(plain, header: e.header, id: e.id)
    }
}
