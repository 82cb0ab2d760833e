import SarabanCore
import SarabanCrypto
import SarabanSync

/// Seed corpora for the fuzz targets: valid encodings produced by the code itself.
public enum FuzzCorpus {
    /// Files per target: `change`, `envelope`, `frame`, `noise`.
    public static func make() -> [String: [[UInt8]]] {
        var rng = SplitMix64(seed: 0xF022)
        var replica = Replica(id: ReplicaID(bytes: SimKeys.signing(1).publicKey.rawRepresentation))
        var changes: [Change] = []
        var made = Workload.Made()
        while changes.count < 12 {
            let docs = replica.documents.keys.sorted()
            if let c = try? replica.edit(time: 1_700_000_000_000, { tx, st in
                try Workload.randomEdit(&tx, &st, docs: docs, rng: &rng, tag: "corpus", made: &made)
            }) {
                changes.append(c)
            }
        }
        let me = SimKeys.signing(1)
        let space = SpaceID(hi: 0x5350_4143_4500_0001, lo: 7)
        let key = try! SymmetricKey(SecureBytes([UInt8](repeating: 3, count: 32)))
        var envelopes: [Envelope] = []
        var prev = EnvelopeID.zero
        for (i, c) in changes.prefix(4).enumerated() {
            let plain = EnvelopePayload.encode(changes: [c])
            let h = EnvelopeHeader(
                spaceID: space.bytes, author: me.publicKey, seqStart: UInt64(i + 1), seqEnd: UInt64(i + 1), epoch: 1, previousHash: prev)
            let e = try! Envelope.seal(plaintext: plain, header: h, key: key, signer: me)
            prev = e.id
            envelopes.append(e)
        }
        var v = FeedVector()
        v.add(envelopes[1].header)
        let messages: [SyncMessage] = [
            .hello(Hello(role: .member, receiveWindow: 2, spaces: [space])),
            .hello(Hello(role: .relay, receiveWindow: 8, spaces: [])),
            .summary([SpaceVector(space: space, vector: v)]),
            .envelopes(space: space, envelopes: Array(envelopes.prefix(2))),
            .ack(space: space, holds: v),
            .ping(nonce: 7), .pong(nonce: 7),
            .error(code: .flowControl, message: "ลองใหม่ too many batches"),
            .bye,
            .summary([SpaceVector(space: space, vector: v, heads: [me.publicKey: HeadTag(envelopes[1].id)])]),
            .headsDigest(HeadTag.digest(of: [SpaceVector(space: space, vector: v, heads: [me.publicKey: HeadTag(envelopes[1].id)])])),
            .heads([SpaceVector(space: space, vector: v, heads: [me.publicKey: HeadTag(envelopes[1].id)])], last: true),
            .claimsDigest(combined: 0x0123_4567_89ab_cdef, spaces: nil),
            .horizons([SpaceVector(space: space, vector: FeedVector([me.publicKey: 2]))]),
        ]
        var noise: [[UInt8]] = []
        if var i = try? NoiseXX(role: .initiator, identity: me, trust: { _ in true }), let m1 = try? i.writeMessage() {
            noise.append(m1)
            noise.append([1] + m1)
            if var r = try? NoiseXX(role: .responder, identity: SimKeys.signing(2), trust: { _ in true }),
                (try? r.readMessage(m1)) != nil, let m2 = try? r.writeMessage()
            {
                noise.append(m2)
                if (try? i.readMessage(m2)) != nil, let m3 = try? i.writeMessage() { noise.append([1] + m3) }
            }
        }
        return [
            "change": changes.map { $0.encoded() },
            "envelope": envelopes.map(\.bytes),
            "frame": messages.map { $0.framed() } + [messages.prefix(4).flatMap { $0.framed() }],
            "noise": noise,
        ]
    }
}
