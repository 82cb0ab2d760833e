// saraban-bench crypto: envelope seal+sign and verify+open of 1 KiB changes in batches of 64,
// a full Noise XX handshake, and raw libsodium rates for comparison. Single-threaded; rates are
// per core (CPU time of this process).
import Foundation
import SarabanCrypto

func cryptoBench(_ args: [String]) throws -> Int32 {
    let options = try BenchOptions(args)
    let changeSize = 1024
    let batchSize = 64
    let batches = 400  // 25,600 changes per run
    let handshakes = 300

    let author = SigningKeyPair.generate()
    let key = SymmetricKey.generate()
    let space = Sodium.randomBytes(16)
    let batchPlaintext = Sodium.randomBytes(changeSize * batchSize)

    func sealAll() throws -> [Envelope] {
        var previous = EnvelopeID.zero
        var out: [Envelope] = []
        out.reserveCapacity(batches)
        for i in 0..<batches {
            let start = UInt64(i * batchSize + 1)
            let header = EnvelopeHeader(
                spaceID: space, author: author.publicKey, seqStart: start, seqEnd: start + UInt64(batchSize) - 1,
                epoch: 1,
                previousHash: previous)
            let envelope = try Envelope.seal(plaintext: batchPlaintext, header: header, key: key, signer: author)
            previous = envelope.id
            out.append(envelope)
        }
        return out
    }

    var sealRates: [Double] = []
    var openRates: [Double] = []
    var envelopeBytes = 0
    for _ in 0..<options.runs {
        let t0 = cpuTime()
        let envelopes = try sealAll()
        let t1 = cpuTime()
        sealRates.append(Double(batches * batchSize) / (t1 - t0))
        envelopeBytes = envelopes[0].bytes.count

        let wire = envelopes.map(\.bytes)
        var verifier = FeedVerifier(spaceID: space, knownEpochs: [1])
        var opened = 0
        let t2 = cpuTime()
        for bytes in wire {
            let envelope = try Envelope.decode(bytes)
            try verifier.accept(envelope)
            opened += try envelope.open(key: key).count
        }
        let t3 = cpuTime()
        guard opened == batches * batchPlaintext.count else { throw BenchError("verify+open returned the wrong bytes") }
        openRates.append(Double(batches * batchSize) / (t3 - t2))
    }

    let alice = SigningKeyPair.generate()
    let bob = SigningKeyPair.generate()
    let aliceID = alice.publicKey.nodeID
    let bobID = bob.publicKey.nodeID
    var handshakeTimes: [Double] = []
    for _ in 0..<options.runs {
        let t0 = cpuTime()
        for _ in 0..<handshakes {
            var client = try NoiseXX(role: .initiator, identity: alice, trust: { $0 == bobID })
            var server = try NoiseXX(role: .responder, identity: bob, trust: { $0 == aliceID })
            _ = try server.readMessage(try client.writeMessage())
            _ = try client.readMessage(try server.writeMessage())
            _ = try server.readMessage(try client.writeMessage())
            let a = try client.finish()
            let b = try server.finish()
            guard a.handshakeHash == b.handshakeHash else { throw BenchError("handshake hashes differ") }
        }
        handshakeTimes.append((cpuTime() - t0) / Double(handshakes) * 1000)
    }

    let oneKiB = Sodium.randomBytes(changeSize)
    let nonce = XChaCha20Poly1305.randomNonce()
    let signature = author.sign(oneKiB)
    var aeadRates: [Double] = []
    var verifyRates: [Double] = []
    for _ in 0..<options.runs {
        let n = 50_000
        let t0 = cpuTime()
        var sink = 0
        for _ in 0..<n { sink &+= try XChaCha20Poly1305.seal(oneKiB, key: key, nonce: nonce).count }
        let t1 = cpuTime()
        aeadRates.append(Double(n) / (t1 - t0))
        let v = 2_000
        let t2 = cpuTime()
        for _ in 0..<v where author.publicKey.isValidSignature(signature, for: oneKiB) { sink &+= 1 }
        let t3 = cpuTime()
        verifyRates.append(Double(v) / (t3 - t2))
        guard sink > 0 else { throw BenchError("unreachable") }
    }

    var report = BenchReport(suite: "crypto")
    report.facts["change size"] = "\(changeSize) B"
    report.facts["batch"] = "\(batchSize) changes per envelope, \(batches) envelopes per run"
    report.facts["envelope size"] = "\(envelopeBytes) B for \(batchPlaintext.count) B of changes (PADME + framing)"
    report.facts["targets"] = "≥ 150000 changes/s each way; XX handshake ≤ 1 ms CPU"
    report.add("seal+sign (1 KiB changes, batches of 64)", sealRates, unit: "changes/s per core")
    report.add("verify+open (decode, feed check, decrypt)", openRates, unit: "changes/s per core")
    report.add(
        "Noise XX handshake, both sides", handshakeTimes, unit: "ms CPU", note: "3 messages + split, NodeIDs checked")
    report.add("raw XChaCha20-Poly1305 seal, 1 KiB", aeadRates, unit: "msgs/s")
    report.add("raw Ed25519 verify, 1 KiB message", verifyRates, unit: "verifies/s")
    report.print(json: options.json)
    return 0
}
