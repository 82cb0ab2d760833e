import SarabanCore
import SarabanCrypto
import SarabanSim
import SarabanSync
import Testing

// The bad-input catalogue: each kind of hostile or broken input at the core, crypto and sync
// levels, its expected typed error, and proof that the node still serves afterwards (a good change
// written by another office still reaches every member and the relay).

/// One catalogue entry: a name, the expected outcome, and the action that produces the actual one.
struct BadInput: CustomTestStringConvertible, Sendable {
    let name: String
    let expected: String
    let run: @Sendable (Simulation) -> String
    var testDescription: String { name }
}

// MARK: Outcome strings

func decodeOutcome(_ bytes: [UInt8]) -> String {
    do {
        _ = try Change.decode(bytes)
        return "decoded"
    } catch { return "DecodingError.\(error.code.rawValue)" }
}

/// What the real receive path did with delivered envelopes (``Simulation/deliver(_:to:space:)``).
func outcome(_ results: [String]) -> String {
    results.joined(separator: ",")
}

func outcome(_ reason: CloseReason?) -> String {
    switch reason {
    case nil: return "open"
    case .violation(let e)?: return "violation.\(e.code)"
    case let r?: return "\(r)"
    }
}

func envelopeOutcome(_ bytes: [UInt8]) -> String {
    do {
        let e = try Envelope.decode(bytes)
        try e.verifySignature()
        return "valid"
    } catch { return "CryptoError.\(error.code.rawValue)" }
}

func wireOutcome(_ payload: [UInt8]) -> String {
    do {
        _ = try SyncMessage.decode(payload)
        return "decoded"
    } catch { return "DecodingError.\(error.code.rawValue)" }
}

func editOutcome(_ sim: Simulation, _ body: (inout Transaction, inout MemoryStore, DocID) throws -> Void) -> String {
    var r = sim.replica(at: 1)!
    guard let doc = r.documents.keys.sorted().first else { return "no document" }
    do {
        try r.edit(time: 1) { tx, st in try body(&tx, &st, doc) }
        return "edited"
    } catch let e as EditError {
        return "EditError.\(e.code.rawValue)"
    } catch { return "\(error)" }
}

// MARK: Raw encodings

let authorA = ReplicaID(hi: 0xA1, lo: 0xA2)

/// A change encoded by hand, so each field can be broken on purpose.
/// Default: version 1, replicas [A], strings ["memo", "เรื่อง"], seq 1, startOp 1, time 0, no deps,
/// ops: createDocument("memo"), set(doc 1@A, "เรื่อง", "ok").
func rawChange(
    version: UInt8 = 1, replicas: [ReplicaID] = [authorA], strings: [[UInt8]] = [Array("memo".utf8), Array("เรื่อง".utf8)],
    seq: UInt64 = 1, startOp: UInt64 = 1, time: Int64 = 0, opCount: UInt64? = nil, ops: [[UInt8]]? = nil, trailing: [UInt8] = []
) -> [UInt8] {
    var w = BinaryWriter()
    w.byte(version)
    w.varint(replicas.count)
    for r in replicas { w.replica(r) }
    w.varint(strings.count)
    for s in strings { w.lengthPrefixed(s) }
    w.varint(seq)
    w.varint(startOp)
    w.signed(time)
    w.varint(0)  // deps
    let body = ops ?? [createOp(), setOp()]
    w.varint(opCount ?? UInt64(body.count))
    for o in body { w.raw(o) }
    w.raw(trailing)
    return w.bytes
}

func createOp(kind: UInt64 = 0) -> [UInt8] {
    var w = BinaryWriter()
    w.byte(1)
    w.varint(kind)
    return w.bytes
}

func setOp(replica: UInt64 = 0, field: UInt64 = 1, valueTag: UInt8 = 0, value: [UInt8] = Array("ok".utf8)) -> [UInt8] {
    var w = BinaryWriter()
    w.byte(4)
    w.varint(1)  // doc counter
    w.varint(replica)
    w.varint(field)
    w.byte(valueTag)
    w.lengthPrefixed(value)
    w.varint(0)  // pred
    return w.bytes
}

func insertOp(flags: UInt8 = 0, content: [UInt8]) -> [UInt8] {
    var w = BinaryWriter()
    w.byte(5)
    w.varint(1)
    w.varint(0)
    w.varint(1)
    w.byte(flags)
    w.lengthPrefixed(content)
    return w.bytes
}

func deleteOp(length: UInt64) -> [UInt8] {
    var w = BinaryWriter()
    w.byte(6)
    w.varint(1)
    w.varint(0)
    w.varint(1)
    w.varint(1)  // one span
    w.varint(2)
    w.varint(0)
    w.varint(length)
    return w.bytes
}

/// An envelope by node `author` of the simulation, with any header, sealed for real (by default
/// in the epoch and with the key its node seals with now).
func craft(
    _ sim: Simulation, author: Int = 0, space: SpaceID? = nil, seqStart: UInt64, seqEnd: UInt64? = nil, epoch: UInt32? = nil,
    previous: EnvelopeID, key: SymmetricKey? = nil, text: String = "forged"
) -> Envelope {
    let me = sim.identity(author)
    let sealing = sim.sealing(at: author)
    let plain = EnvelopePayload.encode(
        changes: (seqStart...(seqEnd ?? seqStart)).map { seq in
            Change(
                author: ReplicaID(bytes: me.publicKey.rawRepresentation), seq: seq, startOp: 1_000 + seq, time: 0,
                deps: VersionVector(), ops: [.createDocument(kind: text)])
        })
    let h = EnvelopeHeader(
        spaceID: (space ?? sim.space).bytes, author: me.publicKey, seqStart: seqStart, seqEnd: seqEnd ?? seqStart,
        epoch: epoch ?? sealing.epoch, previousHash: previous)
    return try! Envelope.seal(plaintext: plain, header: h, key: key ?? sealing.key, signer: me)
}

/// Node 0's latest envelope and last sequence number.
func head(_ sim: Simulation) -> (Envelope, UInt64) {
    let (e, seq) = head(sim, of: 0)
    return (e!, seq)
}

/// Node `author`'s latest envelope (nil if none) and last sequence number, as node 0 holds them.
func head(_ sim: Simulation, of author: Int) -> (Envelope?, UInt64) {
    let mine = sim.envelopes(at: 0).filter { $0.header.author == sim.identity(author).publicKey }
    return (mine.last, mine.last?.header.seqEnd ?? 0)
}

func frame(_ payload: [UInt8]) -> [UInt8] {
    let n = UInt32(payload.count)
    return [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)] + payload
}

func summaryFrame(_ sim: Simulation) -> [UInt8] { SyncMessage.summary([SpaceVector(space: sim.space, vector: FeedVector())]).framed() }

// MARK: The catalogue

let victim = 1  // an office; node 0 is the good writer, the last node the relay

let catalogue: [BadInput] = [
    // Core: the change decoder.
    BadInput(name: "change: empty input", expected: "DecodingError.truncated") { _ in decodeOutcome([]) },
    BadInput(name: "change: truncated", expected: "DecodingError.truncated") { _ in
        decodeOutcome(Array(rawChange().dropLast(1)))
    },
    BadInput(name: "change: oversized (16 MiB + 1)", expected: "DecodingError.lengthOutOfRange") { _ in
        decodeOutcome([UInt8](repeating: 1, count: Change.maxEncodedSize + 1))
    },
    BadInput(name: "change: wrong format version", expected: "DecodingError.unsupportedVersion") { _ in
        decodeOutcome(rawChange(version: 2))
    },
    BadInput(name: "change: unknown operation tag", expected: "DecodingError.unknownTag") { _ in
        decodeOutcome(rawChange(ops: [createOp(), [0xEE]]))
    },
    BadInput(name: "change: unknown value tag", expected: "DecodingError.unknownTag") { _ in
        decodeOutcome(rawChange(ops: [createOp(), setOp(valueTag: 9)]))
    },
    BadInput(name: "change: invalid UTF-8 in a field name", expected: "DecodingError.invalidUTF8") { _ in
        decodeOutcome(rawChange(strings: [Array("memo".utf8), [0xE0, 0xB8]]))
    },
    BadInput(name: "change: invalid UTF-8 in a string value", expected: "DecodingError.invalidUTF8") { _ in
        decodeOutcome(rawChange(ops: [createOp(), setOp(value: [0xFF, 0xFE])]))
    },
    BadInput(name: "change: invalid UTF-8 in inserted text", expected: "DecodingError.invalidUTF8") { _ in
        decodeOutcome(rawChange(ops: [createOp(), insertOp(content: [0xC3])]))
    },
    BadInput(name: "change: trailing bytes", expected: "DecodingError.trailingBytes") { _ in
        decodeOutcome(rawChange(trailing: [0]))
    },
    BadInput(name: "change: overlong varint", expected: "DecodingError.overlongVarint") { _ in
        // seq as eleven continuation bytes.
        var b = rawChange()
        let at = 1 + 1 + 16 + 1 + 1 + 4 + 1 + "เรื่อง".utf8.count
        b.replaceSubrange(at..<(at + 1), with: [UInt8](repeating: 0xFF, count: 10) + [0x01])
        return decodeOutcome(b)
    },
    BadInput(name: "change: non-minimal varint", expected: "DecodingError.overlongVarint") { _ in
        // seq 1 spelled in two bytes (0x81 0x00): the one reader refuses it, as the sync decoder did.
        var b = rawChange()
        let at = 1 + 1 + 16 + 1 + 1 + 4 + 1 + "เรื่อง".utf8.count
        b.replaceSubrange(at..<(at + 1), with: [0x81, 0x00])
        return decodeOutcome(b)
    },
    BadInput(name: "change: replica index out of range", expected: "DecodingError.invalidReference") { _ in
        decodeOutcome(rawChange(ops: [createOp(), setOp(replica: 5)]))
    },
    BadInput(name: "change: string index out of range", expected: "DecodingError.invalidReference") { _ in
        decodeOutcome(rawChange(ops: [createOp(kind: 9)]))
    },
    BadInput(name: "change: empty text insert", expected: "DecodingError.invalidValue") { _ in
        decodeOutcome(rawChange(ops: [createOp(), insertOp(content: [])]))
    },
    BadInput(name: "change: unknown insert flags", expected: "DecodingError.invalidValue") { _ in
        decodeOutcome(rawChange(ops: [createOp(), insertOp(flags: 8, content: Array("ก".utf8))]))
    },
    BadInput(name: "change: empty delete span", expected: "DecodingError.invalidValue") { _ in
        decodeOutcome(rawChange(ops: [createOp(), deleteOp(length: 0)]))
    },
    BadInput(name: "change: sequence number 0", expected: "DecodingError.invalidValue") { _ in
        decodeOutcome(rawChange(seq: 0))
    },
    BadInput(name: "change: op counter 0", expected: "DecodingError.invalidValue") { _ in
        decodeOutcome(rawChange(startOp: 0))
    },
    BadInput(name: "change: no author", expected: "DecodingError.invalidValue") { _ in
        decodeOutcome(rawChange(replicas: []))
    },
    BadInput(name: "change: operation count beyond the bytes", expected: "DecodingError.lengthOutOfRange") { _ in
        decodeOutcome(rawChange(opCount: 1 << 40))
    },
    // Core: semantically odd but well-formed changes (the replica must stay consistent).
    BadInput(name: "change: causal clock far in the future", expected: "waiting") { sim in
        var r = sim.replica(at: victim)!
        let c = Change(author: authorA, seq: 1_000_000, startOp: 5, time: 0, deps: VersionVector(), ops: [.createDocument(kind: "x")])
        _ = try! r.receive(c)
        return r.buffer.count == 1 && !r.clock.includes(c.id) ? "waiting" : "applied too early"
    },
    BadInput(name: "change: wall-clock time far in the future", expected: "applied") { sim in
        var r = sim.replica(at: victim)!
        let c = Change(author: authorA, seq: 1, startOp: 5, time: .max, deps: VersionVector(), ops: [.createDocument(kind: "x")])
        let applied = try! r.receive(try! Change.decode(c.encoded()))
        return applied == [c.id] ? "applied" : "not applied"
    },
    BadInput(name: "change: duplicate delivery", expected: "duplicate") { sim in
        var r = sim.replica(at: victim)!
        let c = r.log.last!
        return (try! r.receive(c)).isEmpty && CausalBuffer.readiness(of: c, given: r.clock) == .duplicate ? "duplicate" : "reapplied"
    },
    BadInput(name: "change: duplicate operations inside one change", expected: "applied") { sim in
        var r = sim.replica(at: victim)!
        let d = DocID(OpID(counter: 5, replica: authorA))
        let c = Change(
            author: authorA, seq: 1, startOp: 5, time: 0, deps: VersionVector(),
            ops: [.createDocument(kind: "x"), .createDocument(kind: "x"), .listAppend(doc: d, field: "l", value: "v"),
                  .listAppend(doc: d, field: "l", value: "v")])
        var r2 = sim.replica(at: victim)!
        _ = try! r.receive(c)
        _ = try! r2.receive(try! Change.decode(c.encoded()))
        return r.views == r2.views && r.clock.includes(c.id) ? "applied" : "diverged"
    },
    // Core: local edits the client gets wrong.
    BadInput(name: "edit: empty text insert", expected: "EditError.invalidValue") { sim in
        editOutcome(sim) { tx, st, d in try tx.insertText(d, field: "body", at: 0, "", in: &st) }
    },
    BadInput(name: "edit: insert position out of range", expected: "EditError.positionOutOfRange") { sim in
        editOutcome(sim) { tx, st, d in try tx.insertText(d, field: "body", at: 99, "ก", in: &st) }
    },
    BadInput(name: "edit: delete range out of range", expected: "EditError.positionOutOfRange") { sim in
        editOutcome(sim) { tx, st, d in try tx.deleteText(d, field: "body", at: -1, count: 3, in: &st) }
    },
    BadInput(name: "edit: unknown document", expected: "EditError.unknownDocument") { sim in
        editOutcome(sim) { tx, st, _ in
            try tx.set(DocID(OpID(counter: 999_999, replica: authorA)), field: "f", value: .int(1), in: &st)
        }
    },
    BadInput(name: "edit: field kind mismatch", expected: "EditError.fieldKindMismatch") { sim in
        editOutcome(sim) { tx, st, d in try tx.append(d, field: "เรื่อง", value: "x", in: &st) }
    },
    // Crypto: the envelope decoder.
    BadInput(name: "envelope: truncated", expected: "CryptoError.envelopeMalformed") { sim in
        envelopeOutcome(Array(head(sim).0.bytes.dropLast(70)))
    },
    BadInput(name: "envelope: oversized", expected: "CryptoError.envelopeTooLarge") { _ in
        envelopeOutcome([UInt8](repeating: 1, count: Envelope.maximumByteCount + 1))
    },
    BadInput(name: "envelope: wrong version", expected: "CryptoError.envelopeUnsupportedVersion") { sim in
        var b = head(sim).0.bytes
        b[0] = 9
        return envelopeOutcome(b)
    },
    BadInput(name: "envelope: extended (length not a padding bucket)", expected: "CryptoError.envelopeMalformed") { sim in
        envelopeOutcome(head(sim).0.bytes + [0])
    },
    BadInput(name: "envelope: sequence range reversed", expected: "CryptoError.envelopeMalformed") { sim in
        var b = head(sim).0.bytes
        for i in 57..<65 { b[i] = 0 }  // seqEnd = 0 < seqStart
        return envelopeOutcome(b)
    },
    BadInput(name: "envelope: first sequence with a previous hash", expected: "CryptoError.envelopeMalformed") { sim in
        var b = sim.envelopes(at: 0).first { $0.header.seqStart == 1 }!.bytes
        b[EnvelopeHeader.byteCount - 1] = 1
        return envelopeOutcome(b)
    },
    BadInput(name: "envelope: garbage bytes", expected: "CryptoError.envelopeMalformed") { _ in
        envelopeOutcome(SimKeys.bytes(99, 300))
    },
    // Crypto: the feed verifier on the victim node.
    BadInput(name: "feed: wrong space", expected: "EnvelopeError.wrongSpace") { sim in
        let (e, seq) = head(sim)
        let other = SpaceID(hi: 1, lo: 2)
        return outcome(sim.deliver([craft(sim, space: other, seqStart: seq + 1, previous: e.id)], to: victim))
    },
    // An epoch its author received no key of: held (bounded) in case the rekey is on its way,
    // never applied. Signed by node 2, which writes nothing afterwards (node 0's next envelope
    // would make it a fork).
    BadInput(name: "feed: wrong epoch", expected: "held") { sim in
        let (e, seq) = head(sim, of: 2)
        sim.toleratedHeld = 1
        return outcome(sim.deliver([craft(sim, author: 2, seqStart: seq + 1, epoch: 7, previous: e?.id ?? .zero)], to: victim))
    },
    BadInput(name: "feed: forged author", expected: "EnvelopeError.tampered") { sim in
        let (e, seq) = head(sim)
        var b = craft(sim, seqStart: seq + 1, previous: e.id).bytes
        b.replaceSubrange(17..<49, with: sim.identity(victim).publicKey.rawRepresentation)
        return outcome(sim.deliver([try! Envelope.decode(b)], to: victim))
    },
    BadInput(name: "feed: tampered ciphertext", expected: "EnvelopeError.tampered") { sim in
        let (e, seq) = head(sim)
        var b = craft(sim, seqStart: seq + 1, previous: e.id).bytes
        b[EnvelopeHeader.byteCount + 30] ^= 0x10
        return outcome(sim.deliver([try! Envelope.decode(b)], to: victim))
    },
    BadInput(name: "feed: tampered signature", expected: "EnvelopeError.tampered") { sim in
        let (e, seq) = head(sim)
        var b = craft(sim, seqStart: seq + 1, previous: e.id).bytes
        b[b.count - 1] ^= 1
        return outcome(sim.deliver([try! Envelope.decode(b)], to: victim))
    },
    BadInput(name: "feed: replay", expected: "duplicate") { sim in
        outcome(sim.deliver([head(sim).0], to: victim))
    },
    BadInput(name: "feed: gap", expected: "EnvelopeError.gap") { sim in
        let (e, seq) = head(sim)
        return outcome(sim.deliver([craft(sim, seqStart: seq + 2, previous: e.id)], to: victim))
    },
    BadInput(name: "feed: fork (same position, other content)", expected: "EnvelopeError.fork") { sim in
        let (e, seq) = head(sim)
        return outcome(sim.deliver([craft(sim, seqStart: seq, previous: e.header.previousHash)], to: victim))
    },
    BadInput(name: "feed: fork (other predecessor)", expected: "EnvelopeError.fork") { sim in
        let (_, seq) = head(sim)
        return outcome(sim.deliver([craft(sim, seqStart: seq + 1, previous: try! EnvelopeID(bytes: SimKeys.bytes(5, 32)))], to: victim))
    },
    BadInput(name: "feed: overlap (reordered batch)", expected: "EnvelopeError.reordered") { sim in
        sim.write(at: 0, changes: 2)
        _ = sim.settle()
        let (e, seq) = head(sim)  // e covers seq-1…seq
        return outcome(sim.deliver([craft(sim, seqStart: seq, seqEnd: seq + 1, previous: e.id)], to: victim))
    },
    BadInput(name: "envelope: opened with the wrong key", expected: "CryptoError.authenticationFailed") { sim in
        do {
            _ = try head(sim).0.open(key: SimKeys.space(12345))
            return "opened"
        } catch let e as CryptoError { return "CryptoError.\(e.code.rawValue)" } catch { return "\(error)" }
    },
    // Sync: frames and messages.
    BadInput(name: "frame: length prefix beyond the limit", expected: "violation.frameTooLarge") { sim in
        outcome(sim.hostile(to: victim, from: 0, [[0x7F, 0xFF, 0xFF, 0xFF, 1, 2]]))
    },
    BadInput(name: "frame: zero length", expected: "violation.malformed") { sim in
        outcome(sim.hostile(to: victim, from: 0, [[0, 0, 0, 0]]))
    },
    BadInput(name: "frame: stream ends inside a frame", expected: "FrameError.truncated") { _ in
        var d = FrameDecoder()
        d.append([0, 0, 0, 9, 1, 2])
        do {
            _ = try d.next()
            try d.finish()
            return "complete"
        } catch let e as FrameError { return "FrameError.\(e.code.rawValue)" } catch { return "\(error)" }
    },
    BadInput(name: "message: wrong protocol version", expected: "violation.unsupportedVersion") { sim in
        outcome(sim.hostile(to: victim, from: 0, [frame([9, 5, 0])]))
    },
    BadInput(name: "message: unknown tag", expected: "DecodingError.unknownTag/violation.malformed") { sim in
        wireOutcome([1, 99]) + "/" + outcome(sim.hostile(to: victim, from: 0, [frame([1, 99])]))
    },
    BadInput(name: "message: trailing bytes", expected: "DecodingError.trailingBytes/violation.malformed") { sim in
        let p = Array(SyncMessage.bye.encoded()) + [0]
        return wireOutcome(p) + "/" + outcome(sim.hostile(to: victim, from: 0, [frame(p)]))
    },
    BadInput(name: "message: non-minimal varint", expected: "DecodingError.overlongVarint/violation.malformed") { sim in
        let p: [UInt8] = [1, 5, 0x80, 0x00]  // ping, nonce 0 in two bytes
        return wireOutcome(p) + "/" + outcome(sim.hostile(to: victim, from: 0, [frame(p)]))
    },
    BadInput(name: "message: error text not UTF-8", expected: "DecodingError.invalidUTF8/violation.malformed") { sim in
        let p: [UInt8] = [1, 7, 0, 1, 2, 0xC3, 0x28]
        return wireOutcome(p) + "/" + outcome(sim.hostile(to: victim, from: 0, [frame(p)]))
    },
    BadInput(name: "message: garbage stream", expected: "violation") { sim in
        let r = outcome(sim.hostile(to: victim, from: 0, [SimKeys.bytes(4242, 64)]))
        return r.hasPrefix("violation") ? "violation" : r
    },
    BadInput(name: "session: a frame before hello", expected: "violation.unexpectedMessage") { sim in
        outcome(sim.hostile(to: victim, from: 0, [summaryFrame(sim)], helloFirst: false))
    },
    BadInput(name: "session: a second hello", expected: "violation.unexpectedMessage") { sim in
        outcome(sim.hostile(to: victim, from: 0, [SyncMessage.hello(Hello(role: .member, receiveWindow: 1, spaces: [])).framed()]))
    },
    BadInput(name: "session: envelopes before the summary", expected: "violation.unexpectedMessage") { sim in
        outcome(sim.hostile(to: victim, from: 0, [SyncMessage.envelopes(space: sim.space, envelopes: [head(sim).0]).framed()]))
    },
    BadInput(name: "session: envelopes for a space not shared", expected: "violation.spaceNotShared") { sim in
        let other = SpaceID(hi: 3, lo: 3)
        let e = craft(sim, space: other, seqStart: 1, previous: .zero)
        return outcome(sim.hostile(to: victim, from: 0, [summaryFrame(sim), SyncMessage.envelopes(space: other, envelopes: [e]).framed()]))
    },
    BadInput(name: "session: ack with nothing in flight", expected: "violation.flowControl") { sim in
        outcome(sim.hostile(to: victim, from: 0, [summaryFrame(sim), SyncMessage.ack(space: sim.space, holds: FeedVector()).framed()]))
    },
    BadInput(name: "session: invalid envelope inside a batch", expected: "violation.invalidEnvelope") { sim in
        var p = SyncMessage.envelopes(space: sim.space, envelopes: [head(sim).0]).encoded()
        p[p.count - 100] ^= 0xFF
        p[1 + 1 + 16 + 1 + 2] = 9  // the envelope's version byte
        return outcome(sim.hostile(to: victim, from: 0, [summaryFrame(sim), frame(p)]))
    },
    BadInput(name: "session: more batches than the window", expected: "violation.flowControl") { sim in
        // Tampered envelopes from a new author: fresh to the session, refused by the node, never acked.
        var frames = [summaryFrame(sim)]
        for i in 0..<4 {
            var b = craft(sim, author: 2, seqStart: UInt64(i + 1), previous: i == 0 ? .zero : try! EnvelopeID(bytes: SimKeys.bytes(UInt64(i), 32))).bytes
            b[b.count - 1] ^= 1
            frames.append(SyncMessage.envelopes(space: sim.space, envelopes: [try! Envelope.decode(b)]).framed())
        }
        return outcome(sim.hostile(to: victim, from: 0, frames))
    },
]

@Suite struct BadInputCatalogueTests {
    @Test func catalogueHasAtLeastThirtyKinds() {
        #expect(catalogue.count >= 30)
        #expect(Set(catalogue.map(\.name)).count == catalogue.count)
    }

    /// Each bad input gives its typed error, and afterwards a good change still reaches every node.
    @Test(arguments: catalogue)
    func badInputIsRefusedAndTheNodeStillServes(_ input: BadInput) {
        let sim = Simulation.clean(members: 3)
        sim.write(at: 0)
        sim.write(at: 0)
        sim.write(at: 2)
        #expect(sim.settle().isEmpty, "the clean network did not settle before the bad input")
        let got = input.run(sim)
        #expect(got == input.expected, "\(input.name): expected \(input.expected), got \(got)")
        let good = sim.write(at: 0)
        let after = sim.settle()
        #expect(after.isEmpty, "\(input.name): the network did not settle after the bad input: \(after)")
        #expect(sim.everywhere(good[0]), "\(input.name): a good change did not reach every member afterwards")
    }
}
