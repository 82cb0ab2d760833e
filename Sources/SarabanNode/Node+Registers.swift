import Foundation
import SarabanCore
import SarabanOffice
import SarabanStorage
#if canImport(Glibc)
import Glibc
#endif

// Registers (ทะเบียนหนังสือ): one document of kind `register` per office, book and year, with the
// fields named in ``RegisterDocument`` (SarabanOffice). Only the owner allocates: the next number
// is computed from the register state read inside the node's SQLite write transaction and the
// event is appended in that same transaction, so two allocations on one node are serialised by
// SQLite and two nodes never number the same register. Other nodes receive the events by sync
// and fold only the owner's, in sequence (``RegisterState``).

/// A register as this node sees it.
public struct RegisterView: Sendable {
    public var id: DocID
    public var book: RegisterBook
    public var year: Int
    public var owner: ReplicaID
    public var office: String
    public var code: String
    public var state: RegisterState
}

/// The result of one allocation.
public struct Allocation: Sendable, Hashable {
    public var register: DocID
    public var book: RegisterBook
    public var year: Int
    public var number: Int
    public var date: ThaiDate
    public var time: String
    /// True when the letter already had a number in this register (a repeated send or a
    /// duplicate delivery): nothing new was written.
    public var existing: Bool
}

extension Node {
    // MARK: - Year and office

    /// `register_year` in config.json: calendar (default) or fiscal (1 October).
    public var registerYearPolicy: RegisterYearPolicy {
        guard let text = config.registerYear, !text.isEmpty, let p = try? RegisterYearPolicy(parsing: text) else {
            return .calendar
        }
        return p
    }

    /// The register year (BE) that the instant `millis` falls in.
    public func registerYear(at millis: Int64) -> Int {
        registerYearPolicy.year(of: ThaiDate(unixMillis: millis))
    }

    /// The current time, from the node's (injectable) clock.
    public var currentMillis: Int64 { now() }

    /// `HH:MM` in Thai time (UTC+7).
    static func thaiTime(_ millis: Int64) -> String { ThaiDate.clock(unixMillis: millis) }

    // MARK: - Reading registers

    /// Every register document this node holds (its own and, after sync, other offices').
    public func registers(now at: Int64? = nil) throws(NodeError) -> [RegisterView] {
        let t = at ?? now()
        return try documents(ofKind: RegisterDocument.kind).compactMap { Self.registerView($0, now: t) }
    }

    static func registerView(_ d: Document, now: Int64) -> RegisterView? {
        guard d.kind == RegisterDocument.kind, !d.isDeleted,
            let b = d.display(RegisterDocument.book), let book = try? RegisterBook(parsing: b),
            let y = d.display(RegisterDocument.year).flatMap({ Int($0) }),
            let o = d.display(RegisterDocument.owner).flatMap({ ReplicaID(hex: $0) }),
            // A register is created by its owner; a document claiming another node's register is ignored.
            d.created.change.author == o
        else { return nil }
        let events = d.lists[RegisterDocument.events]?.entries ?? []
        return RegisterView(
            id: d.id, book: book, year: y, owner: o, office: d.display(RegisterDocument.office) ?? "",
            code: d.display(RegisterDocument.code) ?? "", state: RegisterState(events: events, owner: o, now: now))
    }

    /// This office's register for `book` and `year`, if it exists.
    public func ownRegister(_ book: RegisterBook, year: Int) throws(NodeError) -> RegisterView? {
        try registers().filter { $0.owner == replica && $0.book == book && $0.year == year }.min { $0.id < $1.id }
    }

    /// The register of `book` and `year` owned by `owner` (default: this node).
    public func register(_ book: RegisterBook, year: Int, owner: ReplicaID? = nil) throws(NodeError) -> RegisterView? {
        let o = owner ?? replica
        return try registers().filter { $0.owner == o && $0.book == book && $0.year == year }.min { $0.id < $1.id }
    }

    // MARK: - Creating and writing registers

    /// Runs `body` holding `registers.lock` in the data directory: register documents are
    /// created under it, so two processes of one node never create the same register twice.
    func withRegisterLock<T>(_ body: () throws(NodeError) -> T) throws(NodeError) -> T {
        let path = dataDirectory.path + "/registers.lock"
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw NodeError(.io, "cannot open \(path): \(String(cString: strerror(errno))); check the data directory")
        }
        defer { Glibc.close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { throw NodeError(.io, "cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }

    /// This office's register of `book` for `year`, created (empty) if missing.
    func ensureRegister(_ book: RegisterBook, year: Int) throws(NodeError) -> DocID {
        try withRegisterLock { () throws(NodeError) -> DocID in
            if let r = try ownRegister(book, year: year) { return r.id }
            let code = config.letterCode ?? ""
            let office = config.office
            let owner = replica.hex
            return try edit { tx, docs in
                let id = try tx.createDocument(kind: RegisterDocument.kind, in: &docs)
                try tx.set(id, field: RegisterDocument.book, value: .string(book.rawValue), in: &docs)
                try tx.set(id, field: RegisterDocument.year, value: .string(String(year)), in: &docs)
                try tx.set(id, field: RegisterDocument.owner, value: .string(owner), in: &docs)
                try tx.set(id, field: RegisterDocument.office, value: .string(office), in: &docs)
                try tx.set(id, field: RegisterDocument.code, value: .string(code), in: &docs)
                return id
            }.value
        }
    }

    /// Allocates the next number of this office's `book` for `letter`, atomically with the
    /// register entry: the state is read and the event appended in one SQLite write
    /// transaction. If the letter already has a number in this register (it is keyed on the
    /// letter's document id), that number is returned and nothing is written. A `reserved`
    /// number is used instead of a new one when given.
    public func allocate(
        _ book: RegisterBook, letter: DocID, summary: String, reserved: Int? = nil, at: Int64? = nil
    ) throws(NodeError) -> Allocation {
        let t = at ?? now()
        let regID = try ensureRegister(book, year: registerYear(at: t))
        return try edit { tx, docs throws -> Allocation in
            try self.allocate(book, in: regID, letter: letter, summary: summary, reserved: reserved, at: t, tx: &tx, docs: &docs)
        }.value
    }

    /// The allocation itself, inside an open local write (so a caller can write the letter's own
    /// record in the same change): folds this office's register `regID` of `book` (created by
    /// ``ensureRegister(_:year:)``), returns the letter's existing line if it has one, else
    /// appends the next number (or the `reserved` one).
    func allocate(
        _ book: RegisterBook, in regID: DocID, letter: DocID, summary: String, reserved: Int?, at t: Int64,
        tx: inout Transaction, docs: inout DocumentsInTransaction
    ) throws -> Allocation {
        var folded: RegisterState?
        return try allocate(
            book, in: regID, letter: letter, summary: summary, reserved: reserved, at: t, folded: &folded, tx: &tx, docs: &docs)
    }

    /// ``allocate(_:in:letter:summary:reserved:at:tx:docs:)`` for one of several allocations in
    /// one write: `folded` is the register's state, folded on the first call and kept up to date
    /// with each event this appends (so n numbers cost one fold, not n). Only valid while
    /// nothing else appends to the register in the write.
    func allocate(
        _ book: RegisterBook, in regID: DocID, letter: DocID, summary: String, reserved: Int?, at t: Int64,
        folded: inout RegisterState?, tx: inout Transaction, docs: inout DocumentsInTransaction
    ) throws -> Allocation {
        let year = registerYear(at: t)
        let owner = replica
        let date = ThaiDate(unixMillis: t)
        let time = Self.thaiTime(t)
        let letterText = letter.description
        var state: RegisterState
        if let kept = folded {
            state = kept
            folded = nil  // `state` is then the only reference: recording below does not copy the lines
        } else {
            let events = try docs.withDocument(regID) { $0?.lists[RegisterDocument.events]?.entries ?? [] }
            state = RegisterState(events: events, owner: owner, now: t)
        }
        if let line = state.lines.first(where: { $0.letter == letterText && $0.state == .used }) {
            folded = state
            return Allocation(
                register: regID, book: book, year: year, number: line.number, date: line.date ?? date,
                time: line.time ?? time, existing: true)
        }
        let event: RegisterEvent
        if let n = reserved {
            guard n >= 1, n <= state.lines.count, state.lines[n - 1].state == .reserved else {
                let why = n >= 1 && n <= state.lines.count ? state.lines[n - 1].state.rawValue : "ไม่มี / not allocated"
                throw NodeError(
                    .refused,
                    "เลข \(n) ไม่ได้จองไว้ใน\(book.thaiName) \(year) (\(why)) / number \(n) is not a live "
                        + "reservation in the \(book.english) register of \(year); `saraban register show \(book.english)` lists them")
            }
            event = .useReserved(number: n, letter: letterText, date: date, time: time, summary: summary)
        } else {
            event = .allocate(number: state.nextNumber, letter: letterText, date: date, time: time, summary: summary)
        }
        try tx.append(regID, field: RegisterDocument.events, value: event.encoded, in: &docs)
        state.record(event, at: ChangeID(author: owner, seq: tx.seq), now: t)
        folded = state
        return Allocation(register: regID, book: book, year: year, number: event.number, date: date, time: time, existing: false)
    }

    /// Sets the next number aside until `until` (ms since 1970); returns it.
    public func reserve(_ book: RegisterBook, until: Int64, purpose: String) throws(NodeError) -> (number: Int, year: Int) {
        let t = now()
        guard until > t else {
            throw NodeError(.invalidArgument, "การจองต้องหมดอายุในอนาคต / --until must be in the future")
        }
        let year = registerYear(at: t)
        let regID = try ensureRegister(book, year: year)
        let owner = replica
        let n = try edit { tx, docs throws -> Int in
            let events = try docs.withDocument(regID) { $0?.lists[RegisterDocument.events]?.entries ?? [] }
            let state = RegisterState(events: events, owner: owner, now: t)
            let ev = RegisterEvent.reserve(number: state.nextNumber, until: until, purpose: purpose)
            try tx.append(regID, field: RegisterDocument.events, value: ev.encoded, in: &docs)
            return ev.number
        }.value
        return (n, year)
    }

    /// Cancels `number` in this office's `book` of `year`: it stays in the register as ยกเลิก.
    public func cancelNumber(_ book: RegisterBook, year: Int? = nil, number: Int, reason: String) throws(NodeError) {
        let t = now()
        let y = year ?? registerYear(at: t)
        guard !reason.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw NodeError(.invalidArgument, "ต้องระบุเหตุผลที่ยกเลิก / give the reason: --reason TEXT")
        }
        if let other = try registers().first(where: { $0.book == book && $0.year == y && $0.owner != replica }),
            try ownRegister(book, year: y) == nil
        {
            throw NodeError(
                .refused,
                "ทะเบียนนี้เป็นของ \(other.office) เฉพาะผู้เป็นเจ้าของทะเบียนเท่านั้นที่ยกเลิกเลขได้ / only the owning "
                    + "node (\(other.owner.short)) may write this register")
        }
        guard let reg = try ownRegister(book, year: y) else {
            throw NodeError(.unknownDocument, "ไม่มี\(book.thaiName) ปี \(y) / no \(book.english) register for \(y) on this node")
        }
        let owner = replica
        try edit { tx, docs throws in
            let events = try docs.withDocument(reg.id) { $0?.lists[RegisterDocument.events]?.entries ?? [] }
            let state = RegisterState(events: events, owner: owner, now: t)
            guard number >= 1, number <= state.lines.count else {
                throw NodeError(
                    .unknownField, "ไม่มีเลข \(number) ในทะเบียน / number \(number) has not been allocated (next is \(state.nextNumber))")
            }
            guard state.lines[number - 1].state != .cancelled else {
                throw NodeError(.refused, "เลข \(number) ถูกยกเลิกไปแล้ว / number \(number) is already cancelled")
            }
            try tx.append(
                reg.id, field: RegisterDocument.events, value: RegisterEvent.cancel(number: number, reason: reason).encoded,
                in: &docs)
        }
    }

    /// Refuses any write to a register this node does not own (what a non-owner attempt meets).
    public func appendRegisterEvent(_ register: DocID, _ event: RegisterEvent) throws(NodeError) {
        let d = try document(register)
        guard let v = Self.registerView(d, now: now()) else {
            throw NodeError(.refused, "\(register) is not a register")
        }
        guard v.owner == replica else {
            throw NodeError(
                .refused,
                "\(v.book.thaiName) \(v.year) เป็นของ \(v.office) (\(v.owner.short)) ออกเลขได้เฉพาะเครื่องเจ้าของทะเบียน / "
                    + "only the owning node \(v.owner.short) may allocate from this register; this node is \(replica.short)")
        }
        try edit { tx, docs in try tx.append(register, field: RegisterDocument.events, value: event.encoded, in: &docs) }
    }
}
