import Foundation
import SarabanCore
import SarabanOffice

/// The registers as the official forms (`saraban register show`): each line of a book joined to
/// what this node knows of its letter (the office's own record, its dispatches and their
/// receipts, its routing), folded by ``RegisterForm`` (SarabanOffice).
public struct Registers: Sendable {
    public let node: Node

    public init(_ node: Node) { self.node = node }

    /// The form of `book` for `year`, of this office or of `owner` (as received by sync); no rows
    /// when there is no such register. Subjects of letters above `clearance` are withheld.
    public func form(_ book: RegisterBook, year: Int, owner: ReplicaID? = nil, clearance: Secrecy = .none) throws(NodeError)
        -> RegisterForm
    {
        // Read on every request of the web app's register pages: kept in the node's read cache
        // until the store changes or the first live reservation of a register expires.
        let version = try node.contentVersion()
        let key = "form \(book.rawValue) \(year) \(owner?.hex ?? "") \(clearance.rawValue)"
        return try node.readCache.value(key, version: version, now: node.now()) { () throws(NodeError) in
            let registers = try node.cachedRegisters(version: version)
            let o = owner ?? node.replica
            let reg = registers.filter { $0.owner == o && $0.book == book && $0.year == year }.min { $0.id < $1.id }
            let expiry = reg?.state.lines.compactMap { $0.state == .reserved ? Int64($0.time ?? "") : nil }
                .filter { $0 >= node.now() }.min()
            return (try form(reg, book, year: year, clearance: clearance, letters: try node.cachedLetters(version: version)), expiry)
        }
    }

    /// The form of register `reg` (nil: none, no rows), its lines joined to `all` (every letter).
    func form(_ reg: RegisterView?, _ book: RegisterBook, year: Int, clearance: Secrecy, letters all: [LetterView])
        throws(NodeError) -> RegisterForm
    {
        guard let reg else {
            return RegisterForm(
                book: book, year: year, office: node.config.office, code: node.config.letterCode ?? "",
                state: RegisterState(events: [], owner: node.replica, now: 0), letters: [:])
        }
        var letters: [String: RegisterForm.Letter] = [:]
        let wanted = Set(reg.state.lines.compactMap(\.letter))
        // A line of the shared-letter model names the shared letter: this office's record of it
        // (migrated, ``Correspondence/migrateSharedLetters()``) stands for it.
        for v in all where wanted.contains(v.id.description) && letters[v.id.description] == nil {
            letters[v.id.description] = try entry(v, book: book, office: reg.office)
        }
        for v in all {
            guard let l = v.legacy?.description, wanted.contains(l) else { continue }
            letters[l] = try entry(v, book: book, office: reg.office)
        }
        return RegisterForm(
            book: book, year: year, office: reg.office, code: reg.code, state: reg.state, letters: letters,
            clearance: clearance)
    }

    /// What the form shows of letter `v` on a line of `book`.
    func entry(_ v: LetterView, book: RegisterBook, office: String) throws(NodeError) -> RegisterForm.Letter {
        let f = v.fields
        let secrecy = f[LetterField.secrecy.rawValue].flatMap { try? Secrecy(parsing: $0) } ?? .none
        var action: [String] = []
        var note: [String] = []
        let addressee = f[LetterField.recipient.rawValue] ?? f[LetterField.salutation.rawValue] ?? ""
        let from: String
        let to: String
        if book == .receive {
            from = v.origin?.office ?? f[LetterField.sender.rawValue] ?? f[LetterField.agency.rawValue] ?? ""
            to = addressee
            if let c = v.channel { note.append(c) }
        } else {
            from = office
            let deliveries = try node.correspondence.deliveryStatus(v)
            to = deliveries.isEmpty ? addressee : deliveries.map(\.delivery.office).joined(separator: ", ")
            for d in deliveries {
                switch d.state {
                case .pending: action.append("\(d.delivery.office) ยังไม่รับ")
                case .received(let n, _, _, _): action.append("\(d.delivery.office) รับแล้ว เลขรับ \(n)")
                case .returned(let reason, _, _): action.append("\(d.delivery.office) ส่งคืน: \(reason)")
                }
            }
        }
        for r in v.routing {
            action.append("→ \(r.to)\(r.instruction.isEmpty ? "" : ": \(r.instruction)")")
        }
        if v.status == .closed || v.status == .cancelled || v.status == .returned { action.append(v.status.rawValue) }
        if secrecy > .none { note.append("ชั้นความลับ \(secrecy.rawValue)") }
        return RegisterForm.Letter(
            letterNumber: f[LetterField.number.rawValue], date: f[LetterField.date.rawValue], from: from, to: to,
            subject: f[LetterField.subject.rawValue] ?? "", secrecy: secrecy, action: action.joined(separator: "; "),
            note: note.joined(separator: "; "))
    }
}

extension Node {
    /// This node's registers as the official forms.
    public var registerForms: Registers { Registers(self) }
}
