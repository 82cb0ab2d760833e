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

/// e-Saraban in the simulator: offices number their own books (ทะเบียนรับ / ส่ง, two years) while
/// partitioned, crashed and restarted, exactly as `Node.allocate` does: inside one local change,
/// read the owner's register document, fold it with ``RegisterState`` and append the next event.
/// After healing, ``checkRegisters(_:)`` (an ``Simulation/extraInvariants`` entry every run
/// registers) demands zero collisions and zero gaps per book, no owner event ignored, the same
/// lines on every member, and every acknowledged number present.
extension Simulation {
    static let simBooks: [RegisterBook] = [.receive, .send]

    /// The owner's register document for (book, year) in `docs`, if any (the oldest id).
    static func registerDocument(
        in docs: [DocID: Document], owner: ReplicaID, book: RegisterBook, year: Int
    ) -> DocID? {
        docs.filter { (_, d) in
            d.kind == RegisterDocument.kind && d.display(RegisterDocument.owner) == owner.hex
                && d.display(RegisterDocument.book) == book.rawValue && d.display(RegisterDocument.year) == String(year)
        }.keys.min()
    }

    /// A member allocates (or reserves, uses a reservation, cancels) in one of its own books,
    /// whatever the network is doing: numbering never waits for other offices.
    func clientAllocate() {
        let ups = (0..<config.members).filter { nodes[$0].isUp }
        guard !ups.isEmpty else { return }
        let n = nodes[ups[below(ups.count)]]
        // An office keeps its registers in one space: its first.
        guard let space = n.sortedSpaces.first, var s = n.spaces[space], var replica = s.replica else { return }
        let owner = n.replicaID
        let book = Self.simBooks[below(Self.simBooks.count)]
        let year = below(4) == 0 ? 2569 : 2568
        let roll = below(100)
        writeCounter += 1
        let letter = "sim-\(config.seed)-\(writeCounter)"
        let date = ThaiDate(unixMillis: Int64(now) + 1_749_780_000_000)
        let stale = config.plantedBug == .staleRegisterRead && below(3) == 0
        s.replica = nil  // keep the replica uniquely referenced while it is edited
        n.spaces[space] = s
        var acknowledged: Int?
        let change: Change?
        do {
            change = try replica.edit(time: Int64(now)) { tx, st in
                let id: DocID
                if let existing = Self.registerDocument(in: st.documents, owner: owner, book: book, year: year) {
                    id = existing
                } else {
                    id = try tx.createDocument(kind: RegisterDocument.kind, in: &st)
                    try tx.set(id, field: RegisterDocument.book, value: .string(book.rawValue), in: &st)
                    try tx.set(id, field: RegisterDocument.year, value: .string(String(year)), in: &st)
                    try tx.set(id, field: RegisterDocument.owner, value: .string(owner.hex), in: &st)
                }
                let state = RegisterState(
                    events: st.documents[id]?.lists[RegisterDocument.events]?.entries ?? [], owner: owner, now: Int64(now))
                let next = stale && state.nextNumber > 1 ? state.nextNumber - 1 : state.nextNumber
                let event: RegisterEvent
                if roll < 8, let line = state.lines.first(where: { $0.state == .used }) {
                    event = .cancel(number: line.number, reason: "ยกเลิก \(letter)")
                } else if roll < 16 {
                    event = .reserve(number: next, until: Int64(now) + 60_000, purpose: "จอง \(letter)")
                } else if roll < 26, let line = state.lines.first(where: { $0.state == .reserved }) {
                    event = .useReserved(number: line.number, letter: letter, date: date, time: "09:30", summary: "ใช้เลขจอง")
                    acknowledged = line.number
                } else {
                    event = .allocate(number: next, letter: letter, date: date, time: "10:00", summary: "เรื่อง \(letter)")
                    acknowledged = next
                }
                try tx.append(id, field: RegisterDocument.events, value: event.encoded, in: &st)
            }
        } catch {
            change = nil
            acknowledged = nil
        }
        n.spaces[space]!.replica = replica
        guard let change else { return }
        stats.writes += 1
        stats.registerEvents += 1
        let online = connections.contains { c in
            guard let side = c.side(of: n.index) else { return false }
            return !c.closed[side] && !c.closed[1 - side]
        }
        if !online { stats.offlineRegisterEvents += 1 }
        let envelope = n.seal(space, [change])
        note(9, n.index, acknowledged ?? 0)
        n.commit()
        acked.append(AckedWrite(space: space, change: change.id, author: n.author))
        stats.changesAcknowledged += 1
        if let number = acknowledged {
            ackedAllocations.append(
                AckedAllocation(space: space, owner: owner, book: book, year: year, number: number, letter: letter))
        }
        announce(n.index, space, [envelope])
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
        var reference: [Key: (node: String, lines: [RegisterLine])] = [:]
        for s in sim.spaceIDs {
            for m in sim.nodes where m.isMember {
                guard let r = m.spaces[s]?.replica else { continue }
                var seen: [Key: DocID] = [:]
                for (id, d) in r.documents.sorted(by: { $0.key < $1.key }) where d.kind == RegisterDocument.kind {
                    guard let o = d.display(RegisterDocument.owner).flatMap({ ReplicaID(hex: $0) }),
                        let b = d.display(RegisterDocument.book).flatMap({ try? RegisterBook(parsing: $0) }),
                        let y = d.display(RegisterDocument.year).flatMap({ Int($0) })
                    else {
                        out.append("\(m.name): register document \(id) without owner/book/year")
                        continue
                    }
                    let key = Key(space: s, owner: o, book: b, year: y)
                    if let other = seen[key] {
                        out.append("\(m.name): two documents for \(key): \(other) and \(id)")
                        continue
                    }
                    seen[key] = id
                    if d.created.change.author != o { out.append("\(m.name): \(key) created by \(d.created.change.author.short)") }
                    let state = RegisterState(events: d.lists[RegisterDocument.events]?.entries ?? [], owner: o, now: Int64(sim.now))
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
