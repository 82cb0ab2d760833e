import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanSync

/// A register number acknowledged to an office's client: it must be on that line of the owner's
/// register, for that letter, on every member carrying the space at the end.
public struct AckedAllocation: Hashable, Sendable {
    public var space: SpaceID
    public var owner: ReplicaID
    public var book: RegisterBook
    public var year: Int
    public var number: Int
    public var letter: String
}

/// The register document of one office (node `owner`) for one book and year, in one space.
struct RegisterKey: Hashable {
    var space: SpaceID
    var owner: Int
    var book: RegisterBook
    var year: Int
}

/// e-Saraban in the simulator: offices number their own books (ทะเบียนรับ / ส่ง, two years) in
/// their workspaces while partitioned, crashed and restarted, as `Node.allocate` does: inside one local write
/// transaction of the real store, read the owner's register document, fold it with
/// ``RegisterState`` and append the next event. After healing, ``checkRegisters(_:)`` (an
/// ``Simulation/extraInvariants`` entry every run registers) demands zero collisions and zero
/// gaps per book, no owner event ignored, the same lines on every member, and every
/// acknowledged number present.
extension Simulation {
    static let simBooks: [RegisterBook] = [.receive, .send]

    /// A member allocates (or reserves, uses a reservation, cancels) in one of its own books,
    /// whatever the network is doing: numbering never waits for other offices.
    func clientAllocate() {
        let ups = (0..<config.members).filter { nodes[$0].isUp }
        guard !ups.isEmpty else { return }
        let n = nodes[ups[below(ups.count)]]
        // An office keeps its registers in its workspace (its default space, issue 14), the books
        // `Correspondence.send` and `receive` number in too.
        guard n.isMember, let space = try? n.live.store.defaultSpace() else { return }
        let owner = n.replica
        let book = Self.simBooks[below(Self.simBooks.count)]
        let year = below(4) == 0 ? 2569 : 2568
        let roll = below(100)
        writeCounter += 1
        let letter = "sim-\(config.seed)-\(writeCounter)"
        let time = clock.wallMillis
        let date = ThaiDate(unixMillis: time)
        let stale = config.plantedBug == .staleRegisterRead
        let key = RegisterKey(space: space, owner: n.index, book: book, year: year)
        let known = registerDocs[key] ?? ((try? n.live.ownRegister(book, year: year)) ?? nil)?.id
        var acknowledged: Int?
        var created: DocID?
        var change: Change?
        let crashes = armWriteCrash(n)
        do {
            change = try n.live.store.change(space: space, signer: n.keys, time: time) { tx, st in
                let id: DocID
                if let known, try st.withExistingDocument(known, { _ in true }) == true {
                    id = known
                } else {
                    id = try tx.createDocument(kind: RegisterDocument.kind, in: &st)
                    try tx.set(id, field: RegisterDocument.book, value: .string(book.rawValue), in: &st)
                    try tx.set(id, field: RegisterDocument.year, value: .string(String(year)), in: &st)
                    try tx.set(id, field: RegisterDocument.owner, value: .string(owner.hex), in: &st)
                    created = id
                }
                let events = try st.withExistingDocument(id) { $0.lists[RegisterDocument.events]?.entries ?? [] } ?? []
                let state = RegisterState(events: events, owner: owner, now: time)
                let next = stale && state.nextNumber > 1 ? state.nextNumber - 1 : state.nextNumber
                let event: RegisterEvent
                if roll < 8, let line = state.lines.first(where: { $0.state == .used }) {
                    event = .cancel(number: line.number, reason: "ยกเลิก \(letter)")
                } else if roll < 16 {
                    event = .reserve(number: next, until: time + 60_000, purpose: "จอง \(letter)")
                } else if roll < 26, let line = state.lines.first(where: { $0.state == .reserved }) {
                    event = .useReserved(number: line.number, letter: letter, date: date, time: "09:30", summary: "ใช้เลขจอง")
                    acknowledged = line.number
                } else {
                    event = .allocate(number: next, letter: letter, date: date, time: "10:00", summary: "เรื่อง \(letter)")
                    acknowledged = next
                }
                try tx.append(id, field: RegisterDocument.events, value: event.encoded, in: &st)
            }.change
        } catch {
            // With the planted bug `ackBeforeCommit` the number was shown before the commit.
            if !writeFailed(n, error, crashes: crashes) { return }
        }
        disarm(n)
        if let created { registerDocs[key] = created }
        stats.writes += 1
        stats.registerEvents += 1
        let online = connections.contains { c in
            guard let side = c.side(of: n.index) else { return false }
            return !c.closed[side] && !c.closed[1 - side]
        }
        if !online { stats.offlineRegisterEvents += 1 }
        note(22, n.index, acknowledged ?? 0)
        if let change { acknowledge([change], in: space, by: n) }
        if let number = acknowledged {
            ackedAllocations.append(
                AckedAllocation(space: space, owner: owner, book: book, year: year, number: number, letter: letter))
        }
        if n.isUp { announce(n.index) }
    }

    /// The register invariant (see the type's documentation); every message names the register.
    static func checkRegisters(_ sim: Simulation) -> [String] {
        var out: [String] = []
        struct Key: Hashable, CustomStringConvertible {
            var space: SpaceID
            var owner: ReplicaID
            var book: RegisterBook
            var year: Int
            var description: String { "register \(book.rawValue)/\(year) of \(owner.short)" }
        }
        let now = sim.clock.wallMillis
        var reference: [Key: (node: String, lines: [RegisterLine])] = [:]
        // The simulated spaces' final members, and each office alone in its workspace.
        var holders = sim.finalMembers
        for n in sim.nodes where n.isMember && n.isUp {
            if let w = try? n.live.store.defaultSpace() { holders[w] = [n] }
        }
        for (s, members) in holders.sorted(by: { $0.key < $1.key }) {
            for m in members {
                guard let all = try? m.live.documents() else { continue }
                var seen: [Key: DocID] = [:]
                for d in all where d.kind == RegisterDocument.kind {
                    guard (try? m.live.store.space(ofDocument: d.id)) == s else { continue }
                    guard let o = d.display(RegisterDocument.owner).flatMap({ ReplicaID(hex: $0) }),
                        let b = d.display(RegisterDocument.book).flatMap({ try? RegisterBook(parsing: $0) }),
                        let y = d.display(RegisterDocument.year).flatMap({ Int($0) })
                    else {
                        out.append("\(m.name): register document \(d.id) without owner/book/year")
                        continue
                    }
                    let key = Key(space: s, owner: o, book: b, year: y)
                    if let other = seen[key] {
                        out.append("\(m.name): two documents for \(key): \(other) and \(d.id)")
                        continue
                    }
                    seen[key] = d.id
                    if d.created.change.author != o { out.append("\(m.name): \(key) created by \(d.created.change.author.short)") }
                    let state = RegisterState(events: d.lists[RegisterDocument.events]?.entries ?? [], owner: o, now: now)
                    let (collisions, gaps) = state.collisionsAndGaps
                    if !collisions.isEmpty { out.append("\(m.name): \(key) numbers used twice: \(collisions.prefix(5))") }
                    if !gaps.isEmpty { out.append("\(m.name): \(key) gaps at \(gaps.prefix(5))") }
                    if !state.ignored.isEmpty {
                        out.append("\(m.name): \(key) ignored the owner's events: \(state.ignored.prefix(2))")
                    }
                    if let ref = reference[key] {
                        if ref.lines != state.lines {
                            out.append("\(m.name) and \(ref.node) fold \(key) differently (\(state.lines.count) vs \(ref.lines.count) lines)")
                        }
                    } else {
                        reference[key] = (m.name, state.lines)
                    }
                }
            }
        }
        for a in sim.ackedAllocations {
            let key = Key(space: a.space, owner: a.owner, book: a.book, year: a.year)
            // A register of a space its owner was removed from stays with what reached the others.
            if !(holders[a.space] ?? []).contains(where: { $0.replica == a.owner }) { continue }
            guard let ref = reference[key] else {
                out.append("acknowledged number \(a.number) of \(key) but no member holds the register")
                continue
            }
            guard a.number >= 1, a.number <= ref.lines.count, ref.lines[a.number - 1].letter == a.letter else {
                out.append("acknowledged number \(a.number) of \(key) for \(a.letter) is not in the register")
                continue
            }
        }
        return out
    }
}
