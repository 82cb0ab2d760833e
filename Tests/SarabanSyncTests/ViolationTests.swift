import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

private let s1 = space(1)

/// A session for node A and a scripted peer that speaks raw frames.
private struct Probe {
    var session: SyncSession
    let peerKey = deterministicKeys(77).publicKey
    var now = SyncInstant.seconds(10)

    init(spaces: [SpaceID: FeedVector] = [s1: FeedVector()], limits: SyncLimits = SyncLimits(batchEnvelopes: 4, window: 1)) {
        session = SyncSession(configuration: SyncConfiguration(role: .member, spaces: spaces, limits: limits), peer: peerKey)
        _ = session.start(now: now)
    }

    mutating func feed(_ m: SyncMessage) -> [SyncAction] { session.receive(m.framed(), now: now) }
    mutating func feed(raw: [UInt8]) -> [SyncAction] { session.receive(raw, now: now) }

    /// Completes hello and summaries for `spaces`.
    mutating func open(spaces: [SpaceID] = [s1], vector: FeedVector = FeedVector()) {
        _ = feed(.hello(Hello(role: .member, receiveWindow: 1, spaces: spaces)))
        _ = feed(.summary(spaces.map { SpaceVector(space: $0, vector: vector) }))
    }
}

private func closeReason(_ actions: [SyncAction]) -> CloseReason? {
    if case .close(let r) = actions.last { return r }
    return nil
}

private func violationCode(_ actions: [SyncAction]) -> SyncErrorCode? {
    guard case .violation(let e) = closeReason(actions) else { return nil }
    // An error frame goes out first, carrying the same code.
    let sent = actions.compactMap { a -> SyncMessage? in
        guard case .send(let b) = a else { return nil }
        return try? SyncMessage.decode(Array(b.dropFirst(4)))
    }
    #expect(sent.contains(.error(code: e.code, message: e.message)) || sent.contains { if case .error(let c, _) = $0 { c == e.code } else { false } })
    return e.code
}

private func envelopes(_ n: Int, in id: SpaceID = s1) -> [Envelope] {
    let node = TestNode("W", index: 42)
    node.join(id, key: SymmetricKey.generate())
    return node.write(id, envelopes: n)
}

@Suite struct ViolationTests {
    @Test func aMessageBeforeHelloCloses() {
        var p = Probe()
        #expect(violationCode(p.feed(.ping(nonce: 1))) == .unexpectedMessage)
        #expect(p.session.isClosed)
        // Closed sessions ignore every input.
        #expect(p.feed(.ping(nonce: 2)).isEmpty)
        #expect(p.session.tick(now: .seconds(1000)).isEmpty)
    }

    @Test func aSecondHelloCloses() {
        var p = Probe()
        p.open()
        #expect(violationCode(p.feed(.hello(Hello(role: .member, receiveWindow: 1, spaces: [s1])))) == .unexpectedMessage)
    }

    @Test func garbageBytesClose() {
        var p = Probe()
        // A plausible length, then bytes that are no message.
        #expect(violationCode(p.feed(raw: [0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x00])) == .unsupportedVersion)
        var q = Probe()
        #expect(violationCode(q.feed(raw: [0, 0, 0, 3, 1, 0x7f, 0])) == .malformed)
        var r = Probe()
        #expect(violationCode(r.feed(raw: [0, 0, 0, 0])) == .malformed)
    }

    @Test func anOversizedFrameClosesBeforeItIsBuffered() {
        var p = Probe()
        let actions = p.feed(raw: [0x00, 0x40, 0x00, 0x01])  // 4 MiB + 1
        #expect(violationCode(actions) == .frameTooLarge)
        var q = Probe()
        #expect(violationCode(q.feed(raw: [0xff, 0xff, 0xff, 0xff, 1, 2, 3])) == .frameTooLarge)
    }

    @Test func envelopesForASpaceNotAnnouncedClose() {
        var p = Probe()
        p.open()
        let e = envelopes(1, in: space(9))
        #expect(violationCode(p.feed(.envelopes(space: space(9), envelopes: e))) == .spaceNotShared)
        var q = Probe()
        _ = q.feed(.hello(Hello(role: .member, receiveWindow: 1, spaces: [s1])))
        #expect(violationCode(q.feed(.summary([SpaceVector(space: space(3), vector: FeedVector())]))) == .spaceNotShared)
    }

    @Test func envelopesBeforeTheirSummaryClose() {
        var p = Probe()
        _ = p.feed(.hello(Hello(role: .member, receiveWindow: 1, spaces: [s1])))
        #expect(violationCode(p.feed(.envelopes(space: s1, envelopes: envelopes(1)))) == .unexpectedMessage)
    }

    @Test func anEnvelopeOfAnotherSpaceInABatchCloses() {
        var p = Probe()
        p.open()
        // Encode a batch for s1 holding an envelope of space 9 (the encoder does not check; the decoder does).
        let bad = SyncMessage.envelopes(space: s1, envelopes: envelopes(1, in: space(9))).framed()
        #expect(violationCode(p.feed(raw: bad)) == .invalidEnvelope)
    }

    @Test func exceedingTheReceiveWindowCloses() {
        var p = Probe()
        p.open()
        let es = envelopes(2)
        let first = p.feed(.envelopes(space: s1, envelopes: [es[0]]))
        #expect(first.contains { if case .deliver = $0 { true } else { false } })
        // Window 1: a second batch before the first is acknowledged is a violation.
        #expect(violationCode(p.feed(.envelopes(space: s1, envelopes: [es[1]]))) == .flowControl)
    }

    @Test func anAckWithNothingInFlightCloses() {
        var p = Probe()
        p.open()
        #expect(violationCode(p.feed(.ack(space: s1, holds: FeedVector()))) == .flowControl)
    }

    @Test func aPeerErrorOrByeCloses() {
        var p = Probe()
        p.open()
        let a = p.feed(.error(code: .refused, message: "rate limited"))
        #expect(closeReason(a) == .peerError(SyncError(.refused, "rate limited")))
        var q = Probe()
        q.open()
        #expect(closeReason(q.feed(.bye)) == .peerSaidBye)
    }

    @Test func pingAfterIdleThenTimeout() throws {
        var p = Probe(limits: SyncLimits(pingInterval: .seconds(10), timeout: .seconds(30)))
        p.open()
        #expect(p.session.tick(now: .seconds(15)).isEmpty)
        let ping = p.session.tick(now: .seconds(21))
        guard case .send(let b) = ping.first, case .ping(let nonce)? = try? SyncMessage.decode(Array(b.dropFirst(4))) else {
            Issue.record("expected a ping, got \(ping)")
            return
        }
        #expect(p.session.tick(now: .seconds(25)).isEmpty)  // one ping per interval
        // The pong is traffic: the timeout restarts from it.
        p.now = .seconds(26)
        #expect(p.feed(.pong(nonce: nonce)).isEmpty)
        #expect(p.session.tick(now: .seconds(50)).isEmpty == false)  // pings again, no timeout yet
        let end = p.session.tick(now: .seconds(57))
        #expect(closeReason(end) == .timedOut)
        // A ping is answered with a pong.
        var q = Probe()
        q.open()
        let pong = q.feed(.ping(nonce: 99))
        guard case .send(let pb) = pong.first else { Issue.record("no pong"); return }
        #expect(try SyncMessage.decode(Array(pb.dropFirst(4))) == .pong(nonce: 99))
    }

    @Test func aSilentPeerTimesOutBeforeHello() {
        var p = Probe(limits: SyncLimits(timeout: .seconds(5)))
        #expect(p.session.tick(now: .seconds(14)).isEmpty)
        #expect(closeReason(p.session.tick(now: .seconds(15))) == .timedOut)
    }

    @Test func aSlowSenderIsClosedButASlowLinkIsNot() {
        let limits = SyncLimits(pingInterval: .seconds(1000), timeout: .seconds(20), minimumReceiveRate: 100)
        // A 1,000-byte frame may take 20 s + 1000/100 s = 30 s.
        var p = Probe(limits: limits)
        p.open()
        let frame = SyncMessage.error(code: .refused, message: String(repeating: "x", count: 994)).framed()
        #expect(frame.count == 1004)
        var sent = 0
        var t = 10
        // 40 bytes every 2 s = 20 B/s: alive (bytes keep coming) but far too slow.
        var closed: [SyncAction] = []
        while sent < frame.count && closed.isEmpty {
            p.now = .seconds(t)
            _ = p.feed(raw: Array(frame[sent..<min(sent + 40, frame.count)]))
            sent += 40
            t += 2
            closed = p.session.tick(now: .seconds(t))
        }
        #expect(violationCode(closed) == .timeout)
        #expect(t >= 40 && t <= 44, "closed at \(t)")
        // The same frame at 200 B/s arrives whole.
        var q = Probe(limits: limits)
        q.open()
        sent = 0
        t = 10
        var got: [SyncAction] = []
        while sent < frame.count {
            q.now = .seconds(t)
            got += q.feed(raw: Array(frame[sent..<min(sent + 400, frame.count)]))
            sent += 400
            t += 2
            #expect(q.session.tick(now: .seconds(t)).isEmpty)
        }
        #expect(closeReason(got) == .peerError(SyncError(.refused, String(repeating: "x", count: 994))))
    }

    @Test func aPeerThatNeverAcksIsClosedEvenIfItAnswersPings() {
        let node = TestNode("A", index: 1)
        node.join(s1, key: SymmetricKey.generate())
        let es = node.write(s1, envelopes: 3)
        let limits = SyncLimits(window: 1, pingInterval: .seconds(5), timeout: .seconds(30), minimumReceiveRate: 1000)
        var p = Probe(spaces: [s1: node.spaces[s1]!.vector], limits: limits)
        _ = p.feed(.hello(Hello(role: .member, receiveWindow: 1, spaces: [s1])))
        let fetch = p.feed(.summary([SpaceVector(space: s1, vector: FeedVector())]))
        guard case .fetch(let sp, let after, _)? = fetch.first(where: { if case .fetch = $0 { true } else { false } }) else {
            Issue.record("expected a fetch, got \(fetch)")
            return
        }
        #expect(sp == s1 && after.isEmpty)
        let sends = p.session.fetched(space: s1, envelopes: es, complete: true)
        #expect(sends.count == 1)
        // The peer stays chatty (pings) but never acks the batch.
        var t = 10
        var end: [SyncAction] = []
        while end.isEmpty && t < 200 {
            t += 5
            p.now = .seconds(t)
            _ = p.feed(.ping(nonce: UInt64(t)))
            end = p.session.tick(now: .seconds(t))
        }
        #expect(closeReason(end) == .timedOut)
        #expect(t >= 40 && t <= 45, "closed at \(t)")
    }

    @Test func aPeerThatAnnouncesEnvelopesItNeverSendsIsTimedOutEvenIfItAnswersPings() throws {
        let limits = SyncLimits(window: 1, pingInterval: .seconds(5), timeout: .seconds(30))
        var p = Probe(limits: limits)
        let claimed = envelopes(6)
        var claim = FeedVector()
        for e in claimed { claim.add(e.header) }
        _ = p.feed(.hello(Hello(role: .member, receiveWindow: 1, spaces: [s1])))
        _ = p.feed(.summary([SpaceVector(space: s1, vector: claim)]))
        // It sends the first two of the six it claims, then only pings.
        let first = p.feed(.envelopes(space: s1, envelopes: Array(claimed[0..<2])))
        #expect(first.contains { if case .deliver = $0 { true } else { false } })
        // Our store takes 100 s over them: no deadline runs while a delivery is pending.
        var t = 10
        var end: [SyncAction] = []
        while t < 110 {
            t += 5
            p.now = .seconds(t)
            end += p.feed(.ping(nonce: UInt64(t)))
            end += p.session.tick(now: .seconds(t))
        }
        #expect(!p.session.isClosed, "closed while our own store was busy: \(end)")
        var held = FeedVector()
        for e in claimed[0..<2] { held.add(e.header) }
        _ = p.session.stored(space: s1, vector: held)
        // From the ack on, the peer has `timeout` to send some of the four changes it still owes.
        while !p.session.isClosed && t < 300 {
            t += 5
            p.now = .seconds(t)
            _ = p.feed(.ping(nonce: UInt64(t)))
            end = p.session.tick(now: .seconds(t))
        }
        #expect(closeReason(end) == .timedOut)
        #expect(t == 140, "closed at \(t)")
        #expect(p.session.status(of: s1)?.changesWeLack == 4)
    }

    @Test func theAnnouncedDataDeadlineSendsATimeoutErrorAndWaitsForAMissingSummary() throws {
        // Two spaces in hello, a summary for one only: the other's summary is announced data too.
        let s2 = space(2)
        var p = Probe(spaces: [s1: FeedVector(), s2: FeedVector()], limits: SyncLimits(pingInterval: .seconds(5), timeout: .seconds(20)))
        _ = p.feed(.hello(Hello(role: .member, receiveWindow: 1, spaces: [s1, s2])))
        _ = p.feed(.summary([SpaceVector(space: s1, vector: FeedVector())]))
        var t = 10
        var end: [SyncAction] = []
        while !p.session.isClosed && t < 200 {
            t += 5
            p.now = .seconds(t)
            _ = p.feed(.ping(nonce: UInt64(t)))
            end = p.session.tick(now: .seconds(t))
        }
        #expect(t == 30, "closed at \(t)")
        #expect(closeReason(end) == .timedOut)
        let sent = end.compactMap { a -> SyncMessage? in
            guard case .send(let b) = a else { return nil }
            return try? SyncMessage.decode(Array(b.dropFirst(4)))
        }
        guard case .error(let code, let text)? = sent.last else {
            Issue.record("expected an error frame, got \(sent)")
            return
        }
        #expect(code == .timeout)
        #expect(text.contains("1 summary(ies) missing"), "\(text)")
    }

    @Test func aSlowPeerThatKeepsSendingIsNotTimedOut() throws {
        // The peer claims 12 envelopes and sends them slowly: one a batch every 25 s for the first
        // six (our store taking 10 s over each), then the last six in one frame dribbled over
        // 45 s: 250 s in all, the timeout being 30 s. Progress restarts the deadline each time,
        // and a frame on its way extends it by its size at `minimumReceiveRate`.
        let limits = SyncLimits(window: 1, pingInterval: .seconds(5), timeout: .seconds(30), minimumReceiveRate: 50)
        var p = Probe(limits: limits)
        let claimed = envelopes(12)
        var claim = FeedVector()
        for e in claimed { claim.add(e.header) }
        _ = p.feed(.hello(Hello(role: .member, receiveWindow: 1, spaces: [s1])))
        _ = p.feed(.summary([SpaceVector(space: s1, vector: claim)]))
        var t = 10
        var all: [SyncAction] = []
        var held = FeedVector()
        func step(_ seconds: Int = 5) {
            t += seconds
            p.now = .seconds(t)
            all += p.session.tick(now: .seconds(t))
        }
        for i in 0..<6 {
            for _ in 0..<3 {  // 15 s of pings: the peer is "fetching"
                step()
                all += p.feed(.ping(nonce: UInt64(t)))
            }
            step()
            let got = p.feed(.envelopes(space: s1, envelopes: [claimed[i]]))
            #expect(got.contains { if case .deliver = $0 { true } else { false } })
            all += got
            step()
            step()  // the store works 10 s
            held.add(claimed[i].header)
            all += p.session.stored(space: s1, vector: held)
        }
        // The rest in one frame, a chunk every 5 s from 5 s after the last ack, over 45 s.
        let frame = SyncMessage.envelopes(space: s1, envelopes: Array(claimed[6...])).framed()
        #expect(Double(frame.count) / 50 >= 25, "frame of \(frame.count) bytes")  // allowance ≥ 55 s
        let chunk = (frame.count + 9) / 10
        var sent = 0
        while sent < frame.count {
            step()
            all += p.feed(raw: Array(frame[sent..<min(sent + chunk, frame.count)]))
            sent += chunk
        }
        #expect(!p.session.isClosed, "closed: \(String(describing: p.session.closeReason))")
        #expect(all.contains { if case .deliver(_, let es, _) = $0 { es.count == 6 } else { false } })
        for e in claimed[6...] { held.add(e.header) }
        all += p.session.stored(space: s1, vector: held)
        #expect(p.session.isSettled)
        #expect(all.contains { if case .synced = $0 { true } else { false } })
        #expect(!all.contains { if case .close = $0 { true } else { false } })
        #expect(t - 10 >= 230, "the transfer took \(t - 10) s")
        // Settled, it owes nothing: no deadline however long the peer stays idle but alive.
        for _ in 0..<40 {
            step()
            all += p.feed(.ping(nonce: UInt64(t)))
        }
        #expect(!p.session.isClosed)
    }

    @Test func anEnvelopeTooLargeForAFrameIsALocalFault() throws {
        let k = deterministicKeys(5)
        let header = EnvelopeHeader(spaceID: s1.bytes, author: k.publicKey, seqStart: 1, seqEnd: 1, epoch: 1, previousHash: .zero)
        let big = try Envelope.seal(
            plaintext: [UInt8](repeating: 1, count: 4_200_000), header: header, key: SymmetricKey.generate(), signer: k)
        #expect(big.bytes.count > SyncLimits.maximumEnvelopeByteCount)
        var p = Probe(spaces: [s1: FeedVector([k.publicKey: 1])])
        _ = p.feed(.hello(Hello(role: .relay, receiveWindow: 1, spaces: [s1])))
        let fetch = p.feed(.summary([SpaceVector(space: s1, vector: FeedVector())]))
        #expect(fetch.contains { if case .fetch = $0 { true } else { false } })
        let end = p.session.fetched(space: s1, envelopes: [big], complete: true)
        guard case .localFault(let e)? = closeReason(end) else {
            Issue.record("expected a local fault, got \(end)")
            return
        }
        #expect(e.code == .internalError)
    }

    @Test func noSharedSpaceIsSettledAtOnceAndReceiveStartsImplicitly() throws {
        var s = SyncSession(
            configuration: SyncConfiguration(role: .relay, spaces: [space(1): FeedVector()]), peer: deterministicKeys(3).publicKey)
        // Bytes before start(): the session sends its hello first.
        let actions = s.receive(SyncMessage.hello(Hello(role: .member, receiveWindow: 4, spaces: [space(2)])).framed(), now: .seconds(1))
        guard case .send(let h) = actions.first else { Issue.record("\(actions)"); return }
        #expect(try SyncMessage.decode(Array(h.dropFirst(4))) == .hello(Hello(role: .relay, receiveWindow: 2, spaces: [space(1)], features: [.headTags, .headClaims, .headDigest, .horizons])))
        #expect(actions.count == 2)
        guard case .synced = actions.last else { Issue.record("\(actions)"); return }
        #expect(s.isSettled && s.sharedSpaces.isEmpty && s.peerHello?.role == .member)
        // Orderly close sends bye.
        let bye = s.close()
        guard case .send(let b) = bye.first else { Issue.record("\(bye)"); return }
        #expect(try SyncMessage.decode(Array(b.dropFirst(4))) == .bye)
        #expect(s.closeReason == .closedLocally)
    }

    @Test func garbageOnOneSessionLeavesTheOthersRunning() throws {
        let k = SymmetricKey.generate()
        let ns = [TestNode("A", index: 1), TestNode("B", index: 2), TestNode("C", index: 3)]
        for n in ns { n.join(s1, key: k) }
        ns[0].write(s1, envelopes: 40)
        let net = Network(ns, limits: SyncLimits(batchEnvelopes: 4, window: 1))
        let ab = net.connect(0, 1)
        let ac = net.connect(0, 2)
        for _ in 0..<6 { net.step() }
        ab.wire[0].append([0x7f, 0xff, 0xff, 0xff])  // B "sends" an oversized frame header to A
        net.run()
        #expect(ab.reasons[0] == .violation(SyncError(.frameTooLarge, FrameError(.oversized, length: 0x7fff_ffff).description)))
        #expect(ab.closed[1])
        #expect(!ac.closed[0] && !ac.closed[1])
        #expect(ns[2].spaces[s1]!.vector == ns[0].spaces[s1]!.vector)
        #expect(ac.sessions[0].isSettled)
    }

    @Test func stalledReceiverIsNotFloodedBeyondTheWindow() {
        // A sender never has more batches unacknowledged than the window, whatever it holds.
        let k = SymmetricKey.generate()
        let a = TestNode("A", index: 1)
        let b = TestNode("B", index: 2)
        a.join(s1, key: k)
        b.join(s1, key: k)
        a.write(s1, envelopes: 50)
        let net = Network([a, b], limits: SyncLimits(batchEnvelopes: 3, window: 2), deferWork: true)
        let c = net.connect(0, 1)
        // Run everything except B's stores.
        var guardSteps = 0
        while guardSteps < 10_000 {
            guardSteps += 1
            if net.runWork(0, 0) { continue }
            if net.deliverBytes(0, 1) { continue }
            if net.deliverBytes(0, 0) { continue }
            break
        }
        #expect(c.work[1].count == 2)  // two batches delivered, none stored
        #expect(c.sessions[0].stats.batchesSent == 2)
        #expect(c.sessions[0].status(of: s1)?.batchesInFlight == 2)
        net.run()
        #expect(converged([a, b], s1))
    }
}
