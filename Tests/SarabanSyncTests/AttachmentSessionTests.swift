import SarabanCore
import SarabanCrypto
import SarabanSync
import Testing

// The attachment exchange's state machine alone (Sync/PROTOCOL.md §13a): each test feeds an
// AttachmentSession its inputs by hand and reads the actions it returns.

private let s1 = space(1)
private let t0 = SyncInstant.seconds(100)

/// An attachment of `count` chunks of arbitrary bytes (the machine never opens them).
private func scan(_ count: Int, size: Int = 40, tag: UInt8 = 1, in space: SpaceID = s1) -> (AttachmentManifest, [[UInt8]]) {
    let chunks = (0..<count).map { i in (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ i &* 31 &+ Int(tag) &* 101) } }
    return (AttachmentManifest(space: space, hashes: chunks.map { try! BLAKE2b.hash($0, outputLength: 32) }), chunks)
}

private func sends(_ actions: [AttachmentAction]) -> [AttachmentMessage] {
    actions.compactMap { if case .send(let m) = $0 { m } else { nil } }
}

/// The indices of every chunk want among `actions`, per want.
private func wanted(_ actions: [AttachmentAction]) -> [[Int]] {
    sends(actions).compactMap { if case .want(_, _, false, let i) = $0 { i } else { nil } }
}

private func stores(_ actions: [AttachmentAction]) -> [Int] {
    actions.compactMap { if case .storeChunk(_, _, let i, _) = $0 { i } else { nil } }
}

private func refusals(_ actions: [AttachmentAction]) -> [AttachmentRefusal.Reason] {
    actions.compactMap { if case .refused(let r) = $0 { r.reason } else { nil } }
}

private func session(_ role: NodeRole, _ mode: AttachmentSession.Mode = .serve, window: Int = 8, backlog: Int = 4 << 20)
    -> AttachmentSession
{
    AttachmentSession(configuration: .init(role: role, mode: mode, window: window, backlogLimit: backlog))
}

private func fetch(_ m: AttachmentManifest, stall: Duration = .seconds(30)) -> AttachmentSession.Mode {
    .fetch([AttachmentTarget(space: s1, root: m.root, chunks: m.hashes.count)], stallTimeout: stall)
}

/// A fetching member opened with another member, past loading: the manifest is held here with `held`.
private func pulling(_ m: AttachmentManifest, held: [Int], window: Int = 8) -> (AttachmentSession, [AttachmentAction]) {
    var a = session(.member, fetch(m), window: window)
    let opened = a.open(peerRole: .member, sharedSpaces: [s1], now: t0)
    #expect(opened == [.loadHoldings(space: s1, roots: [m.root])])
    let actions = a.holdingsLoaded([AttachmentHoldings(root: m.root, manifest: m, held: held)])
    return (a, actions)
}

@Suite struct AttachmentServingTests {
    @Test func aWantIsAnsweredWithTheManifestTheChunksHeldAndOneMissingForTheRest() {
        let (m, chunks) = scan(3)
        var a = session(.relay)
        #expect(a.open(peerRole: .member, sharedSpaces: [s1], now: t0).isEmpty)
        #expect(a.receive(.want(space: s1, root: m.root, manifest: true, indices: [0, 1, 2]), now: t0) == [
            .loadManifest(space: s1, root: m.root)
        ])
        #expect(a.manifestLoaded(root: m.root, manifest: m) == [
            .send(.manifest(space: s1, root: m.root, hashes: m.hashes)), .readChunk(space: s1, root: m.root, index: 0),
        ])
        #expect(a.chunkRead(root: m.root, index: 0, bytes: chunks[0]) == [
            .send(.chunk(space: s1, root: m.root, index: 0, bytes: chunks[0])), .readChunk(space: s1, root: m.root, index: 1),
        ])
        // Chunk 1 is not on this node.
        #expect(a.chunkRead(root: m.root, index: 1, bytes: nil) == [.readChunk(space: s1, root: m.root, index: 2)])
        #expect(a.chunkRead(root: m.root, index: 2, bytes: chunks[2]) == [
            .send(.chunk(space: s1, root: m.root, index: 2, bytes: chunks[2])), .send(.missing(space: s1, root: m.root, indices: [1])),
        ])
        #expect(a.wantsQueued == 0)
    }

    @Test func aRootWithoutAManifestHereOrOfAnotherSpaceIsAnsweredMissing() {
        let (m, _) = scan(2)
        var a = session(.member)
        _ = a.open(peerRole: .member, sharedSpaces: [s1, space(2)], now: t0)
        _ = a.receive(.want(space: s1, root: m.root, manifest: true, indices: [0]), now: t0)
        #expect(a.manifestLoaded(root: m.root, manifest: nil) == [.send(.missing(space: s1, root: m.root, indices: []))])
        // The manifest is here, but of space 1: a want naming space 2 gets nothing of it.
        _ = a.receive(.want(space: space(2), root: m.root, manifest: false, indices: [0]), now: t0)
        #expect(a.manifestLoaded(root: m.root, manifest: m) == [.send(.missing(space: space(2), root: m.root, indices: []))])
    }

    @Test func indicesBeyondTheManifestAreMissingAndWantsAreAnsweredInOrder() {
        let (m, chunks) = scan(2)
        let (n, other) = scan(1, tag: 2)
        var a = session(.relay)
        _ = a.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        #expect(a.receive(.want(space: s1, root: m.root, manifest: false, indices: [1, 5]), now: t0) == [
            .loadManifest(space: s1, root: m.root)
        ])
        // A second want waits for the first to be answered.
        #expect(a.receive(.want(space: s1, root: n.root, manifest: false, indices: [0]), now: t0).isEmpty)
        #expect(a.wantsQueued == 2)
        #expect(a.manifestLoaded(root: m.root, manifest: m) == [.readChunk(space: s1, root: m.root, index: 1)])
        #expect(a.chunkRead(root: m.root, index: 1, bytes: chunks[1]) == [
            .send(.chunk(space: s1, root: m.root, index: 1, bytes: chunks[1])), .send(.missing(space: s1, root: m.root, indices: [5])),
            .loadManifest(space: s1, root: n.root),
        ])
        #expect(a.manifestLoaded(root: n.root, manifest: n) == [.readChunk(space: s1, root: n.root, index: 0)])
        #expect(sends(a.chunkRead(root: n.root, index: 0, bytes: other[0])) == [.chunk(space: s1, root: n.root, index: 0, bytes: other[0])])
    }

    @Test func noChunkIsReadWhileTheBacklogIsOverItsLimit() {
        let (m, chunks) = scan(4, size: 600)
        var a = session(.member, backlog: 1000)
        _ = a.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        _ = a.receive(.want(space: s1, root: m.root, manifest: false, indices: [0, 1, 2, 3]), now: t0)
        _ = a.manifestLoaded(root: m.root, manifest: m)
        #expect(a.chunkRead(root: m.root, index: 0, bytes: chunks[0]).last == .readChunk(space: s1, root: m.root, index: 1))
        // 1,200 bytes wait to be written: no further read.
        #expect(a.chunkRead(root: m.root, index: 1, bytes: chunks[1]) == [.send(.chunk(space: s1, root: m.root, index: 1, bytes: chunks[1]))])
        #expect(a.backlog == 1200)
        #expect(a.tick(now: t0 + .seconds(5)).isEmpty)
        // Chunk 0 was written: 600 bytes wait, under the limit, so the next chunk is read.
        #expect(a.sent(.chunk(space: s1, root: m.root, index: 0, bytes: chunks[0]), now: t0) == [
            .readChunk(space: s1, root: m.root, index: 2)
        ])
        #expect(a.stats.chunksSent == 1)
    }
}

@Suite struct AttachmentPullTests {
    @Test func aFetchAsksForTheManifestThenKeepsAtMostTheWindowOfChunksOutstanding() {
        let (m, chunks) = scan(20)
        var a = session(.member, fetch(m))
        #expect(a.open(peerRole: .member, sharedSpaces: [s1], now: t0) == [.loadHoldings(space: s1, roots: [m.root])])
        #expect(a.holdingsLoaded([AttachmentHoldings(root: m.root, manifest: nil, held: [])]) == [
            .send(.want(space: s1, root: m.root, manifest: true, indices: []))
        ])
        #expect(a.receive(.manifest(space: s1, root: m.root, hashes: m.hashes), now: t0) == [.storeManifest(m)])
        var asked = wanted(a.manifestStored(root: m.root, held: []))
        #expect(asked == [Array(0..<8)])
        var next = 0
        var settled: [AttachmentAction] = []
        while next < 20 {
            let actions = a.receive(.chunk(space: s1, root: m.root, index: next, bytes: chunks[next]), now: t0)
            #expect(stores(actions) == [next])
            #expect(a.chunksInFlight <= 8)
            let after = a.chunkStored(root: m.root, index: next)
            asked += wanted(after)
            settled += after.filter { if case .settled = $0 { true } else { false } }
            next += 1
        }
        // One more chunk asked as each is stored: 8, then one at a time, ascending, each once.
        #expect(asked.flatMap { $0 } == Array(0..<20))
        #expect(asked.dropFirst().allSatisfy { $0.count == 1 })
        #expect(settled == [.settled(.fetched)])
        #expect(a.stats.chunksReceived == 20 && a.stats.rejected == 0)
    }

    @Test func aPullResumesFromTheChunksHeld() {
        let (m, _) = scan(12)
        let (_, actions) = pulling(m, held: [0, 1, 2, 5, 9])
        // No manifest want: it is held; only the chunks not held, within the window.
        #expect(wanted(actions) == [[3, 4, 6, 7, 8, 10, 11]])
    }

    @Test func aTargetAlreadyCompleteOrOfASpaceNotSharedSettlesAtOnce() {
        let (m, _) = scan(3)
        let (_, actions) = pulling(m, held: [0, 1, 2])
        #expect(actions == [.settled(.fetched)])
        var b = session(.member, .fetch([AttachmentTarget(space: space(9), root: m.root)], stallTimeout: .seconds(30)))
        #expect(b.open(peerRole: .relay, sharedSpaces: [s1], now: t0).contains(.settled(.fetched)))
    }

    @Test func aManifestThatDoesNotMatchItsRootIsRefusedAndNotStored() {
        let (m, _) = scan(4)
        var forged = m.hashes
        forged[2][0] ^= 1
        var a = session(.member, fetch(m))
        _ = a.open(peerRole: .relay, sharedSpaces: [s1], now: t0)
        _ = a.holdingsLoaded([AttachmentHoldings(root: m.root, manifest: nil, held: [])])
        let actions = a.receive(.manifest(space: s1, root: m.root, hashes: forged), now: t0)
        #expect(refusals(actions) == [.manifestDoesNotMatchRoot])
        #expect(!actions.contains { if case .storeManifest = $0 { true } else { false } })
        #expect(actions.contains(.settled(.fetched)))
        #expect(a.stats.rejected == 1 && a.pullState(m.root)?.failed == true)
    }

    @Test func aManifestWithAnotherChunkCountThanTheLetterListsIsRefused() {
        let (m, _) = scan(4)
        var a = session(.member, .fetch([AttachmentTarget(space: s1, root: m.root, chunks: 5)], stallTimeout: .seconds(30)))
        _ = a.open(peerRole: .relay, sharedSpaces: [s1], now: t0)
        _ = a.holdingsLoaded([AttachmentHoldings(root: m.root, manifest: nil, held: [])])
        let actions = a.receive(.manifest(space: s1, root: m.root, hashes: m.hashes), now: t0)
        #expect(refusals(actions) == [.manifestChunkCount(expected: 5, got: 4)])
    }

    @Test func aChunkThatFailsItsHashIsRefusedAndThePullGivenUpOnThatPeer() {
        let (m, chunks) = scan(12)
        var (a, first) = pulling(m, held: [], window: 4)
        #expect(wanted(first) == [[0, 1, 2, 3]])
        var bad = chunks[1]
        bad[bad.count - 1] ^= 0x80
        #expect(stores(a.receive(.chunk(space: s1, root: m.root, index: 0, bytes: chunks[0]), now: t0)) == [0])
        let refused = a.receive(.chunk(space: s1, root: m.root, index: 1, bytes: bad), now: t0)
        #expect(refusals(refused) == [.chunkDoesNotMatchManifest] && stores(refused).isEmpty)
        // Given up: storing chunk 0 asks for nothing more from this peer, and the fetch is over.
        let stored = a.chunkStored(root: m.root, index: 0)
        #expect(wanted(stored).isEmpty && stored.contains(.settled(.fetched)))
        // A chunk already asked for that checks out is still kept if it comes.
        #expect(stores(a.receive(.chunk(space: s1, root: m.root, index: 2, bytes: chunks[2]), now: t0)) == [2])
        #expect(wanted(a.chunkStored(root: m.root, index: 2)).isEmpty)
        #expect(a.stats.chunksReceived == 2 && a.stats.rejected == 1)
        // A chunk never asked for (here: one after the failure) is dropped unchecked.
        #expect(a.receive(.chunk(space: s1, root: m.root, index: 7, bytes: chunks[7]), now: t0).isEmpty)
        #expect(a.stats.ignored == 1)
    }

    @Test func aChunkTheStoreRefusesStopsThePull() {
        // On a member the driver opens each chunk with the space key; one that does not open is refused.
        let (m, chunks) = scan(10)
        var (a, _) = pulling(m, held: [], window: 2)
        _ = a.receive(.chunk(space: s1, root: m.root, index: 0, bytes: chunks[0]), now: t0)
        let actions = a.chunkRefused(root: m.root, index: 0, reason: "authentication failed")
        #expect(refusals(actions) == [.chunkRefusedByStore("authentication failed")])
        #expect(wanted(actions).isEmpty && actions.contains(.settled(.fetched)))
        _ = a.receive(.chunk(space: s1, root: m.root, index: 1, bytes: chunks[1]), now: t0)
        #expect(a.chunkStored(root: m.root, index: 1).isEmpty)
        #expect(a.stats.rejected == 1 && a.stats.chunksReceived == 1)
    }

    @Test func aPeerLackingTheAttachmentEndsThePull() {
        let (m, _) = scan(5)
        var (a, _) = pulling(m, held: [0])
        let actions = a.receive(.missing(space: s1, root: m.root, indices: [2, 3]), now: t0)
        #expect(actions.contains(.settled(.fetched)) && wanted(actions).isEmpty)
        #expect(a.pullState(m.root)?.failed == true && a.stats.rejected == 0)
    }
}

@Suite struct AttachmentOfferTests {
    @Test func aMemberOffersARelayWhatIsCompleteAtOnceAndWhatCompletesLater() {
        let (m, _) = scan(1)
        let (n, _) = scan(1, tag: 2)
        var a = session(.member)
        #expect(a.open(peerRole: .relay, sharedSpaces: [s1], now: t0) == [.findComplete(spaces: [s1], excluding: [])])
        #expect(a.completeFound([s1: [m.root]]) == [.send(.offer(space: s1, roots: [m.root]))])
        #expect(a.tick(now: t0 + .milliseconds(500)).isEmpty)
        #expect(a.tick(now: t0 + .seconds(1)) == [.findComplete(spaces: [s1], excluding: [m.root])])
        // Only the newly complete root is offered, even if the store lists the old one again.
        #expect(a.completeFound([s1: [m.root, n.root]]) == [.send(.offer(space: s1, roots: [n.root]))])
        #expect(a.stats.rootsOffered == 2)
    }

    @Test func membersOfferNothingToMembersAndRelaysOfferNothing() {
        var a = session(.member)
        #expect(a.open(peerRole: .member, sharedSpaces: [s1], now: t0).isEmpty)
        #expect(a.tick(now: t0 + .seconds(10)).isEmpty)
        var r = session(.relay)
        #expect(r.open(peerRole: .relay, sharedSpaces: [s1], now: t0).isEmpty)
    }

    @Test func aRelayPullsAnOfferedRootAndAnswersItOnceHeld() {
        let (held, _) = scan(2, tag: 1)
        let (m, chunks) = scan(2, tag: 2)
        var r = session(.relay)
        _ = r.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        #expect(r.receive(.offer(space: s1, roots: [held.root, m.root]), now: t0) == [
            .loadHoldings(space: s1, roots: [held.root, m.root])
        ])
        // The root held already is answered at once; the other is pulled.
        #expect(r.holdingsLoaded([
            AttachmentHoldings(root: held.root, manifest: held, held: [0, 1]),
            AttachmentHoldings(root: m.root, manifest: nil, held: []),
        ]) == [.send(.want(space: s1, root: m.root, manifest: true, indices: [])), .send(.offer(space: s1, roots: [held.root]))])
        _ = r.receive(.manifest(space: s1, root: m.root, hashes: m.hashes), now: t0)
        #expect(wanted(r.manifestStored(root: m.root, held: [])) == [[0, 1]])
        _ = r.receive(.chunk(space: s1, root: m.root, index: 0, bytes: chunks[0]), now: t0)
        _ = r.receive(.chunk(space: s1, root: m.root, index: 1, bytes: chunks[1]), now: t0)
        #expect(sends(r.chunkStored(root: m.root, index: 0)).isEmpty)
        #expect(sends(r.chunkStored(root: m.root, index: 1)) == [.offer(space: s1, roots: [m.root])])
        // Offered again (a new offer of the same root): answered again, nothing pulled twice.
        #expect(r.receive(.offer(space: s1, roots: [m.root]), now: t0) == [.send(.offer(space: s1, roots: [m.root]))])
    }

    /// A root the relay's store retired (Docs/RELAY.md, "Retention") is not pulled again when a
    /// member offers it: the offer is answered at once with `missing` (no manifest), nothing wanted.
    @Test func aRelayDoesNotPullBackARetiredRoot() {
        let (kept, _) = scan(1, tag: 1)
        let (gone, _) = scan(2, tag: 2)
        var r = session(.relay)
        _ = r.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        _ = r.receive(.offer(space: s1, roots: [kept.root, gone.root]), now: t0)
        #expect(r.holdingsLoaded([
            AttachmentHoldings(root: kept.root, manifest: kept, held: [0]),
            AttachmentHoldings(root: gone.root, manifest: nil, held: [], retired: true),
        ]) == [.send(.offer(space: s1, roots: [kept.root])), .send(.missing(space: s1, root: gone.root, indices: []))])
        #expect(r.chunksInFlight == 0)
        #expect(r.pullState(gone.root)?.failed == true)
    }

    @Test func aRelayThatGivesUpOnAnOfferedRootSaysWhatItLacks() {
        let (m, chunks) = scan(3)
        var r = session(.relay)
        _ = r.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        _ = r.receive(.offer(space: s1, roots: [m.root]), now: t0)
        _ = r.holdingsLoaded([AttachmentHoldings(root: m.root, manifest: m, held: [0])])
        var bad = chunks[1]
        bad[0] ^= 1
        _ = r.receive(.chunk(space: s1, root: m.root, index: 1, bytes: bad), now: t0)
        #expect(sends(r.receive(.chunk(space: s1, root: m.root, index: 2, bytes: chunks[2]), now: t0)).isEmpty)
        #expect(sends(r.chunkStored(root: m.root, index: 2)) == [.missing(space: s1, root: m.root, indices: [1])])
        // A relay answers members only: to a relay peer it says nothing.
        var q = session(.relay)
        _ = q.open(peerRole: .relay, sharedSpaces: [s1], now: t0)
        _ = q.receive(.offer(space: s1, roots: [m.root]), now: t0)
        #expect(sends(q.holdingsLoaded([AttachmentHoldings(root: m.root, manifest: m, held: [0, 1, 2])])).isEmpty)
    }
}

@Suite struct AttachmentPushTests {
    private func pushing(_ roots: [[UInt8]], stall: Duration = .seconds(30)) -> AttachmentSession {
        var a = session(.member, .push(stallTimeout: stall))
        #expect(a.open(peerRole: .relay, sharedSpaces: [s1], now: t0) == [.findComplete(spaces: [s1], excluding: [])])
        let offered = a.completeFound([s1: roots])
        #expect(sends(offered) == (roots.isEmpty ? [] : [.offer(space: s1, roots: roots)]))
        return a
    }

    @Test func aPushSettlesOnceTheRelayAnsweredEveryOfferedRoot() {
        let (m, _) = scan(1, tag: 1)
        let (n, _) = scan(1, tag: 2)
        var a = pushing([m.root, n.root])
        #expect(a.settlement == nil && a.unansweredRoots == 2)
        // Held by the relay (its offer), then given up (its missing).
        #expect(a.receive(.offer(space: s1, roots: [m.root]), now: t0).isEmpty)
        #expect(a.receive(.missing(space: s1, root: n.root, indices: [0]), now: t0) == [.settled(.answered)])
        #expect(a.stats.rootsOffered == 2 && a.stats.rootsConfirmed == 1)
        // It offers only once: no listing on later ticks.
        #expect(a.tick(now: t0 + .seconds(5)).isEmpty)
    }

    @Test func aPushWithNothingToOfferOrNoRelaySettlesAtOnce() {
        let a = pushing([])
        #expect(a.settlement == .answered)
        var b = session(.member, .push(stallTimeout: .seconds(30)))
        #expect(b.open(peerRole: .member, sharedSpaces: [s1], now: t0) == [.settled(.answered)])
    }

    @Test func aPushStopsWaitingWhenNothingMovedForTheStallTimeout() {
        let (m, chunks) = scan(1)
        var a = pushing([m.root], stall: .seconds(30))
        // The relay pulls (want, chunk written): progress restarts the wait.
        _ = a.receive(.want(space: s1, root: m.root, manifest: true, indices: [0]), now: t0 + .seconds(20))
        _ = a.manifestLoaded(root: m.root, manifest: m)
        _ = a.chunkRead(root: m.root, index: 0, bytes: chunks[0])
        _ = a.sent(.chunk(space: s1, root: m.root, index: 0, bytes: chunks[0]), now: t0 + .seconds(25))
        #expect(a.tick(now: t0 + .seconds(50)).isEmpty)
        // ...then silence: an old relay that never answers offers.
        #expect(a.tick(now: t0 + .seconds(56)) == [.settled(.stalled(waitingFor: 1))])
        #expect(a.stats.rootsConfirmed == 0 && a.stats.chunksSent == 1)
    }

    @Test func aFetchStallsToo() {
        let (m, _) = scan(3)
        var (a, _) = pulling(m, held: [])
        #expect(a.tick(now: t0 + .seconds(30)).isEmpty)
        #expect(a.tick(now: t0 + .seconds(31)) == [.settled(.stalled(waitingFor: 1))])
    }

    @Test func closingSettlesAndEndsTheSession() {
        var a = pushing([scan(1).0.root])
        #expect(a.close() == [.settled(.closed)])
        #expect(a.isClosed && a.receive(.offer(space: s1, roots: []), now: t0).isEmpty)
        #expect(a.tick(now: t0 + .seconds(100)).isEmpty && a.close().isEmpty)
        var serving = session(.relay)
        _ = serving.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        #expect(serving.close().isEmpty && serving.settlement == nil)
    }
}

@Suite struct AttachmentFaultTests {
    @Test func duplicatedMessagesAreIgnored() {
        let (m, chunks) = scan(4)
        var a = session(.member, fetch(m))
        _ = a.open(peerRole: .relay, sharedSpaces: [s1], now: t0)
        _ = a.holdingsLoaded([AttachmentHoldings(root: m.root, manifest: nil, held: [])])
        let manifest = AttachmentMessage.manifest(space: s1, root: m.root, hashes: m.hashes)
        #expect(a.receive(manifest, now: t0) == [.storeManifest(m)])
        #expect(a.receive(manifest, now: t0).isEmpty)
        _ = a.manifestStored(root: m.root, held: [])
        let chunk = AttachmentMessage.chunk(space: s1, root: m.root, index: 0, bytes: chunks[0])
        #expect(stores(a.receive(chunk, now: t0)) == [0])
        #expect(a.receive(chunk, now: t0).isEmpty)  // while it is being stored
        _ = a.chunkStored(root: m.root, index: 0)
        #expect(a.receive(chunk, now: t0).isEmpty)  // and after
        // A missing for chunks not asked (a stale answer) leaves the pull going.
        #expect(a.receive(.missing(space: s1, root: m.root, indices: [0]), now: t0).isEmpty)
        #expect(a.pullState(m.root)?.failed == false)
        #expect(a.stats.ignored == 4 && a.stats.chunksReceived == 1)
        // An I/O answer never asked for changes nothing.
        #expect(a.chunkStored(root: m.root, index: 3).isEmpty && a.stats.chunksReceived == 1)
    }

    @Test func aBrokenConnectionLosesOnlyWhatWasInFlightAndANewSessionResumes() {
        // Lost messages: the connection breaks with chunks 2 and 3 asked and not received.
        let (m, chunks) = scan(6)
        var (a, first) = pulling(m, held: [], window: 4)
        #expect(wanted(first) == [[0, 1, 2, 3]])
        for i in 0..<2 {
            _ = a.receive(.chunk(space: s1, root: m.root, index: i, bytes: chunks[i]), now: t0)
            _ = a.chunkStored(root: m.root, index: i)
        }
        #expect(a.close() == [.settled(.closed)])
        // The next session (another peer, or the same one later) asks only for the rest.
        let (_, resumed) = pulling(m, held: [0, 1], window: 4)
        #expect(wanted(resumed) == [[2, 3, 4, 5]])
    }

    @Test func aCrashBeforeAStoreFinishedIsResumedFromTheChunksHeld() {
        // Chunks 0-2 checked and handed to the store; the node dies having written 0 and 2 only.
        let (m, chunks) = scan(5)
        var (a, _) = pulling(m, held: [], window: 3)
        for i in 0..<3 { #expect(stores(a.receive(.chunk(space: s1, root: m.root, index: i, bytes: chunks[i]), now: t0)) == [i]) }
        #expect(a.chunksInFlight == 3)
        // After the restart, a new session learns from the store what survived.
        let (_, resumed) = pulling(m, held: [0, 2], window: 3)
        #expect(wanted(resumed) == [[1, 3, 4]])
    }
}

/// A relay's serving exchange was ticked five times a second although nothing in it depends on
/// the clock: with thousands of sessions that was most of an idle session's cost. The machine
/// now says whether ticks can matter; only then does the driver run a ticker.
@Suite struct AttachmentTickTests {
    @Test func onlySessionsThatOfferOrCanStallWantTicks() {
        var relay = session(.relay)
        #expect(!relay.wantsTicks)  // not open yet
        _ = relay.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        #expect(!relay.wantsTicks, "a relay serving a member has nothing to do on a tick")
        #expect(relay.tick(now: t0 + .seconds(3_600)).isEmpty)

        var serving = session(.member)
        _ = serving.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        #expect(!serving.wantsTicks, "a member serving a member offers nothing")

        var offering = session(.member)
        _ = offering.open(peerRole: .relay, sharedSpaces: [s1], now: t0)
        #expect(offering.wantsTicks, "a member repeats its offers to a relay")

        var pushing = session(.member, .push(stallTimeout: .seconds(5)))
        _ = pushing.open(peerRole: .relay, sharedSpaces: [s1], now: t0)
        #expect(pushing.wantsTicks)

        let m = AttachmentManifest(space: s1, hashes: [[UInt8](repeating: 7, count: 32)])
        var fetching = session(.member, fetch(m))
        _ = fetching.open(peerRole: .member, sharedSpaces: [s1], now: t0)
        #expect(fetching.wantsTicks, "a fetch watches for a stall")
        _ = fetching.close()
        #expect(!fetching.wantsTicks)
    }
}
