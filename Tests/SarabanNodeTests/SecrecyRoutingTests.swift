import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanOffice
import SarabanStorage
import SarabanSync
import Testing

/// Secrecy routing (issue #8): secret letters live, are raised and are sent only in spaces whose
/// members are all cleared for the class; a cleared space is synced only with its members and
/// designated relays.
@Suite struct SecrecyRoutingTests {
    /// Nodes with letter codes, so letters can be sent.
    final class Net {
        let dir: TempDir
        var nodes: [Node] = []
        init(_ name: String = #function) { dir = TempDir(name) }
        func node(_ name: String, relay: Bool = false) throws -> Node {
            let n = try Node.initialize(
                dataDir: DataDirectory(path: dir.path + "/" + name), office: "สำนักงาน " + name,
                letterCode: relay ? nil : "นว 00\(nodes.count)", relay: relay, logger: quiet)
            nodes.append(n)
            return n
        }
        func close() {
            for n in nodes { n.close() }
            dir.cleanup()
        }
    }

    @Test func aClearedSpaceAdmitsOnlyClearedMembers() throws {
        let net = Net()
        defer { net.close() }
        let a = try net.node("a")
        let b = try net.node("b")
        let s = try a.createSpace(name: "ลับ-จังหวัด").id
        try a.setSpaceClearance(s, to: .confidential)
        #expect(try a.declaredClearance(of: s) == .confidential)

        // An office not cleared (or cleared below the space) is not invited.
        let refused = #expect(throws: NodeError.self) { try a.invite(space: s, invitee: b.nodeID, office: "b") }
        #expect(refused?.code == .refused && refused?.message.contains("--cleared") == true)
        #expect(try a.spaceInfo(s)?.members.count == 1)

        // Cleared for ลับ: invited, and the clearance travels in the membership document.
        let inv = try a.invite(space: s, invitee: b.nodeID, office: "b", cleared: .confidential)
        try b.join(try Invitation.parse(inv.text))
        try exchange(a, b, s)
        #expect(try b.memberClearance(a.nodeID, in: s) == .confidential)  // recorded when a declared the class
        #expect(try b.effectiveClearance(of: s).0 == .confidential)
        _ = try b.createLetter(kind: .internal, fields: [("ชั้นความลับ", "ลับ")], space: "ลับ-จังหวัด")
        #expect(try a.memberClearance(b.nodeID, in: s) == .confidential)
        #expect(try b.declaredClearance(of: s) == .confidential)

        // Raising the space above a member's clearance is refused until the member is cleared.
        let above = #expect(throws: NodeError.self) { try a.setSpaceClearance(s, to: .secret) }
        #expect(above?.code == .refused && above?.message.contains(b.nodeID.text) == true)
        try a.setMemberClearance(s, member: b.nodeID, to: .secret)
        try a.setSpaceClearance(s, to: .secret)
        #expect(try a.effectiveClearance(of: s).0 == .secret)
        // ลับที่สุด never parses, so it can be neither a space's nor a member's class.
        #expect(throws: OfficeError.self) { try Secrecy(parsing: "ลับที่สุด") }
    }

    @Test func secretLettersNeedEveryMemberCleared() throws {
        let net = Net()
        defer { net.close() }
        let a = try net.node("a")
        let b = try net.node("b")
        let c = try net.node("c")
        // An ordinary space with an uncleared member: no secret letter, created or raised.
        let open = try a.createSpace(name: "ทั่วไป").id
        _ = try a.invite(space: open, invitee: c.nodeID, office: "c")
        #expect(throws: NodeError.self) {
            try a.createLetter(kind: .internal, fields: [("ชั้นความลับ", "ลับ")], space: "ทั่วไป")
        }
        let plain = try a.createLetter(kind: .internal, fields: [("เรื่อง", "ทั่วไป")], space: "ทั่วไป")
        let raise = #expect(throws: NodeError.self) { try a.editLetter(plain, field: "ชั้นความลับ", value: "ลับ") }
        #expect(raise?.code == .refused)
        #expect(try a.letter(plain).fields["ชั้นความลับ"] == nil)

        // A cleared space with a cleared member: created, raised and sent.
        let s = try a.createSpace(name: "ลับ").id
        try a.setSpaceClearance(s, to: .secret)
        _ = try a.invite(space: s, invitee: b.nodeID, office: "b", cleared: .secret)
        let (k, f) = try fixture("secret")
        let l1 = try a.createLetter(kind: k, fields: f, space: "ลับ")
        try a.editLetter(l1, field: "ชั้นความลับ", value: "ลับมาก")
        let l2 = try a.createLetter(kind: k, fields: f, space: "ลับ")

        // The member's clearance is withdrawn: the space may no longer hold secret letters.
        try a.setMemberClearance(s, member: b.nodeID, to: .none)
        let send = #expect(throws: NodeError.self) { try a.sendLetter(l1) }
        #expect(send?.code == .refused && send?.message.contains("not cleared") == true)
        #expect(send?.message.contains("not cleared for secret: b;") == true)
        #expect(try a.letter(l1).status == .draft)
        #expect(throws: NodeError.self) { try a.createLetter(kind: k, fields: f, space: "ลับ") }
        // Cleared again: the letter goes.
        try a.setMemberClearance(s, member: b.nodeID, to: .secret)
        #expect(try a.sendLetter(l1).status == .sent)
        _ = l2
    }

    @Test func aClearedSpaceIsSyncedOnlyWithMembersAndDesignatedRelays() throws {
        let net = Net()
        defer { net.close() }
        let a = try net.node("a")
        let b = try net.node("b")
        let c = try net.node("c")
        let r1 = try net.node("r1", relay: true)
        let r2 = try net.node("r2", relay: true)
        let s = try a.createSpace(name: "ลับ").id
        _ = try a.invite(space: s, invitee: b.nodeID, office: "b", cleared: .confidential)
        let other = try a.createSpace(name: "ทั่วไป").id
        _ = try a.invite(space: other, invitee: c.nodeID, office: "c")
        for r in [r1, r2] {
            try r.carry(space: s)
            try r.carry(space: other)
        }
        // Not cleared yet: every peer that carries the space is offered it.
        #expect(try a.carriedSpaces(for: r2.nodeID)[s] != nil)

        try a.setSpaceClearance(s, to: .confidential)
        try a.designateRelay(s, relay: r1.nodeID)
        #expect(a.designatedRelays(s) == [r1.nodeID])
        #expect(try a.carriedSpaces(for: b.nodeID)[s] != nil)  // a member
        #expect(try a.carriedSpaces(for: r1.nodeID)[s] != nil)  // the designated relay
        #expect(try a.carriedSpaces(for: r2.nodeID)[s] == nil)  // another relay
        #expect(try a.carriedSpaces(for: c.nodeID)[s] == nil)  // a member of another space
        // Uncleared spaces are unaffected.
        #expect(try a.carriedSpaces(for: r2.nodeID)[other] != nil)
        #expect(try a.carriedSpaces(for: c.nodeID)[other] != nil)
    }

    /// A session that opens while a space is being cleared is not opened with it. Its served
    /// spaces were read before the clearance was stored, and recorded only after the daemon's poll
    /// had compared the open sessions' spaces and found none for this peer; so the poll neither
    /// reopened it nor kept it from the space's next envelopes. Seen in CI (SecrecySyncTests: an
    /// undesignated relay got a letter written after the clearance); made certain here by holding
    /// the session's read until the poll has run.
    @Test func aSessionOpeningWhileItsSpaceIsClearedIsNotServedIt() async throws {
        let net = Net()
        defer { net.close() }
        let a = try net.node("a")
        let relay = try net.node("r", relay: true)
        let s = try a.createSpace(name: "งานทั่วไป").id
        let storage = HeldStorage(inner: try a.envelopeStorage())
        let told = Told()
        let driver = NodeSyncDriver(storage: storage, logger: quiet, servedSpacesChanged: { told.add($0) })
        try driver.primeBaseline()

        let opening = Task { try await driver.carriedSpaces(for: relay.nodeID) }
        await storage.waitUntilHeld()  // the session has read its spaces (with s) and waits
        try a.setSpaceClearance(s, to: .confidential)
        #expect(try driver.poll() == 1)  // the clearance's envelope is announced
        storage.release()
        let spaces = try await opening.value
        #expect(
            spaces[s] == nil || told.peers.contains(relay.nodeID),
            "a session read before the clearance was opened with the cleared space, and no poll reopened it")
        #expect(spaces[s] == nil)
        #expect(try a.carriedSpaces(for: relay.nodeID)[s] == nil)
    }

    /// The peers a driver was told to reopen sessions with.
    final class Told: @unchecked Sendable {
        private let lock = NSLock()
        private var list: Set<NodeID> = []
        func add(_ peers: Set<NodeID>) { lock.withLock { list.formUnion(peers) } }
        var peers: Set<NodeID> { lock.withLock { list } }
    }

    /// The node's storage, except that the first ``carriedSpaces(for:)`` waits after its read
    /// until ``release()``.
    final class HeldStorage: EnvelopeStorage, @unchecked Sendable {
        let inner: any EnvelopeStorage
        private let held = DispatchSemaphore(value: 0)
        private let released = DispatchSemaphore(value: 0)
        private let lock = NSLock()
        private var first = true
        init(inner: any EnvelopeStorage) { self.inner = inner }

        func waitUntilHeld() async {
            await withCheckedContinuation { c in DispatchQueue.global().async { self.held.wait(); c.resume() } }
        }
        func release() { released.signal() }

        var role: NodeRole { inner.role }
        var nodeID: NodeID { inner.nodeID }
        func carriedSpaces() throws -> [SpaceID: FeedVector] { try inner.carriedSpaces() }
        func carriedSpaces(for peer: NodeID) throws -> [SpaceID: FeedVector] {
            let spaces = try inner.carriedSpaces(for: peer)
            if lock.withLock({ defer { first = false }; return first }) {
                held.signal()
                released.wait()
            }
            return spaces
        }
        func envelopes(space: SpaceID, after: FeedVector, limit: FetchLimit) throws -> (envelopes: [Envelope], complete: Bool) {
            try inner.envelopes(space: space, after: after, limit: limit)
        }
        func receive(space: SpaceID, envelopes: [Envelope]) throws -> (
            accepted: [Envelope], vector: FeedVector,
            forks: [(author: SigningPublicKey, sequence: UInt64, held: EnvelopeID, conflicting: EnvelopeID)]
        ) { try inner.receive(space: space, envelopes: envelopes) }
        func feedHeads(_ spaces: [SpaceID: FeedVector]) throws -> [SpaceID: [SigningPublicKey: FeedHead]] {
            try inner.feedHeads(spaces)
        }
        func storedEnvelope(space: SpaceID, author: SigningPublicKey, covering seq: UInt64) throws
            -> (seqEnd: UInt64, id: EnvelopeID)?
        { try inner.storedEnvelope(space: space, author: author, covering: seq) }
        func makeDurable() throws { try inner.makeDurable() }
        func changeProbe() throws -> Int64 { try inner.changeProbe() }
        func spacesProbe() throws -> String { try inner.spacesProbe() }
        func memberNodeIDs() throws -> Set<NodeID> { try inner.memberNodeIDs() }
    }
}
