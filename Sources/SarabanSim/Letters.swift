import SarabanCore
import SarabanCrypto
import SarabanFeed
import SarabanNode
import SarabanOffice

/// A dispatch an office published in the simulator, as the sender saw it when `send` returned.
struct SimDispatch {
    var id: DocID
    var space: SpaceID
    var sender: Int
    /// The sender's record of the letter (in its workspace).
    var letter: DocID
    var subject: String
    /// The recipient offices (node indices) the dispatch was sealed to.
    var recipients: [Int]
    /// The dispatch as published: no one may change it.
    var view: DocumentView
}

/// e-Saraban correspondence in the simulator (issue 14): offices send letters to member offices
/// of a shared space through the real ``Correspondence`` (`send` → a sealed dispatch), the
/// recipients read their inbox and receive (or return with a reason), the receipts travel back,
/// and recipients try to change the sender's dispatch and record (refused). After healing,
/// ``checkCorrespondence(_:)`` (an ``Simulation/extraInvariants`` entry every run registers)
/// demands: each dispatch to an office that is a member after healing is in its inbox, or
/// received exactly once (one record, one เลขรับ) or returned, and its receipt is on the sender's
/// record; no dispatch or record was changed by another office. (Each office's send and receive
/// books, in its workspace, are ``checkRegisters(_:)``'s.)
extension Simulation {
    /// One clerk's act at a random office that is up: send, answer the inbox, or tamper.
    func clientCorrespond() {
        let ups = (0..<config.members).filter { nodes[$0].isUp }
        guard !ups.isEmpty else { return }
        let n = nodes[ups[below(ups.count)]]
        writeCounter += 1
        let roll = below(100)
        if roll < 40 {
            sendLetter(n)
        } else if roll < 85 {
            answerInbox(n)
        } else {
            tamper(n)
        }
        if n.isUp { announce(n.index) }
    }

    func nodeIndex(_ id: NodeID) -> Int? { nodes.firstIndex { $0.nodeID == id } }

    /// Drafts a letter and sends it to one or two offices the sender shares a space with.
    func sendLetter(_ n: SimNode) {
        let c = n.live.correspondence
        guard let offices = try? c.offices().filter({ o in o.nodes.contains { nodeIndex($0) != nil } }), !offices.isEmpty
        else { return }
        var to = [offices[below(offices.count)]]
        if offices.count > 1 && below(3) == 0, let other = offices.first(where: { $0 != to[0] }) { to.append(other) }
        let subject = "\(Workload.thaiMarker) \(Workload.marker)-\(config.seed)-\(writeCounter) ขอเชิญประชุม"
        let result: SendResult
        let letter: DocID
        do {
            letter = try n.live.createLetter(
                kind: .external,
                fields: [
                    ("เรื่อง", subject), ("เรียน", "นายอำเภอ"), ("ข้อความ", "ด้วย \(Workload.marker)"),
                    ("คำลงท้าย", "ขอแสดงความนับถือ"), ("ผู้ลงนาม", "นายสมมติ"), ("ตำแหน่ง", "ผู้ว่าราชการจังหวัด"),
                ])
            result = try c.send(letter, to: to.map(\.label), circular: false)
        } catch {
            // A recipient no longer shares a space (removed meanwhile): refused, nothing numbered.
            if error.code == .refused { return }
            fail("\(n.name): sending a letter to \(to.map(\.label)) failed: \(error)")
            return
        }
        for d in result.dispatches where !d.existing {
            guard let doc = try? n.live.document(d.id) else {
                fail("\(n.name): its dispatch \(d.id) is not in its store")
                continue
            }
            let opened = try? c.openDispatch(d.id)
            let recipients = (opened?.to ?? []).compactMap(nodeIndex)
            simDispatches.append(
                SimDispatch(
                    id: d.id, space: d.space, sender: n.index, letter: letter, subject: subject, recipients: recipients,
                    view: doc.view))
            stats.dispatches += 1
            note(30, n.index, recipients.count)
            trace("\(n.name) dispatches \(d.id) to \(recipients.map { nodes[$0].name })")
        }
    }

    /// Receives (or, one in five, returns) the first dispatch of the inbox; or receives again one
    /// this office received before (which must write nothing new).
    func answerInbox(_ n: SimNode, again: Bool? = nil) {
        let c = n.live.correspondence
        if again ?? (below(4) == 0) {
            let before = simDispatches.filter { $0.recipients.contains(n.index) && simReceived.contains(Pair(dispatch: $0.id, office: n.index)) }
            if !before.isEmpty {
                let d = before[below(before.count)]
                do { _ = try c.receive(d.id) } catch {
                    fail("\(n.name): receiving \(d.id) again failed: \(error)")
                }
                stats.receivesRepeated += 1
                return
            }
        }
        let inbox: [InboxItem]
        do { inbox = try c.inbox() } catch {
            fail("\(n.name): reading its inbox failed: \(error)")
            return
        }
        guard !inbox.isEmpty else { return }
        let item = inbox[below(inbox.count)].dispatch
        let pair = Pair(dispatch: item.id, office: n.index)
        if below(5) == 0 {
            do { try c.returnDispatch(item.id, reason: "ส่งผิดสำนักงาน \(Workload.marker)") } catch {
                fail("\(n.name): returning \(item.id) failed: \(error)")
                return
            }
            simReturned.insert(pair)
            stats.returns += 1
            note(31, n.index)
            trace("\(n.name) returns \(item.id)")
        } else {
            do { _ = try c.receive(item.id) } catch {
                fail("\(n.name): receiving \(item.id) failed: \(error)")
                return
            }
            simReceived.insert(pair)
            stats.receives += 1
            note(32, n.index)
            trace("\(n.name) receives \(item.id)")
        }
    }

    /// Once the network first converges (dispatches sent late in the faulty phase have arrived),
    /// every office answers its whole inbox, receives one letter again and tampers once; the
    /// network then heals again, so the receipts travel before the checks.
    func clerksRound() {
        for i in 0..<config.members where nodes[i].isUp {
            let n = nodes[i]
            let waiting = ((try? n.live.correspondence.inbox()) ?? []).count
            for _ in 0..<waiting { answerInbox(n, again: false) }
            answerInbox(n, again: true)
            tamper(n)
            announce(i)
        }
    }

    /// A recipient tries to change or delete the sender's dispatch, or to write to the sender's
    /// record: every attempt must be refused.
    func tamper(_ n: SimNode) {
        let theirs = simDispatches.filter { $0.sender != n.index && $0.recipients.contains(n.index) }
        guard !theirs.isEmpty else { return }
        let d = theirs[below(theirs.count)]
        guard (try? n.live.document(d.id)) != nil else { return }
        let what = below(3)
        let attempt: String
        do {
            switch what {
            case 0:
                attempt = "edit the dispatch"
                try n.live.edit(in: d.space) { tx, docs in
                    try tx.set(d.id, field: DispatchDocument.office, value: .string("แก้ไขโดย \(n.name)"), in: &docs)
                }
            case 1:
                attempt = "delete the dispatch"
                try n.live.edit(in: d.space) { tx, docs in try tx.deleteDocument(d.id, in: &docs) }
            default:
                attempt = "edit the sender's record"
                try n.live.edit(in: d.space) { tx, docs in
                    try tx.set(d.letter, field: "เรื่อง", value: .string("แก้ไขโดย \(n.name)"), in: &docs)
                }
            }
        } catch {
            stats.tamperRefused += 1
            return
        }
        fail("\(n.name) could \(attempt) \(d.id) of \(nodes[d.sender].name)")
    }

    /// The correspondence invariant (see the extension's documentation).
    static func checkCorrespondence(_ sim: Simulation) -> [String] {
        var out: [String] = []
        var letters: [Int: [LetterView]] = [:]
        func views(_ i: Int) -> [LetterView] {
            if let v = letters[i] { return v }
            let v = (try? sim.nodes[i].live.letters()) ?? []
            letters[i] = v
            return v
        }
        var inboxes: [Int: Set<DocID>] = [:]
        for d in sim.simDispatches {
            let members = Set((sim.finalMembers[d.space] ?? []).map(\.index))
            let sender = sim.nodes[d.sender]
            // Nobody changed the dispatch, wherever it is held.
            for m in sim.finalMembers[d.space] ?? [] {
                guard let doc = try? m.live.document(d.id) else { continue }
                if doc.view != d.view || !doc.editors.keys.allSatisfy({ $0 == sender.replica }) {
                    out.append("\(m.name)'s copy of \(sender.name)'s dispatch \(d.id) was changed")
                }
            }
            guard sender.isUp, members.contains(d.sender) else { continue }
            // The sender's record: only the sender wrote it, its subject as written.
            guard let record = views(d.sender).first(where: { $0.id == d.letter }),
                let doc = try? sender.live.document(d.letter)
            else {
                out.append("\(sender.name): its record \(d.letter) of dispatch \(d.id) is gone")
                continue
            }
            if !doc.editors.keys.allSatisfy({ $0 == sender.replica }) || record.fields["เรื่อง"] != d.subject {
                out.append("\(sender.name): its record \(d.letter) was changed by another office")
            }
            let status = (try? sender.live.correspondence.deliveryStatus(record)) ?? []
            for r in d.recipients where members.contains(r) && sim.nodes[r].isUp {
                let rn = sim.nodes[r]
                let taken = views(r).filter { $0.origin?.dispatch == d.id.description }
                // The delivery names the office as the sender's directory knew it when it sent: by
                // its name, or by its node id when the office's entry had not reached the sender
                // yet (seed 201: the recipient crashed before its entry left it).
                let delivered = status.first {
                    $0.delivery.dispatch == d.id.description
                        && ($0.delivery.office == rn.name || $0.delivery.nodes.contains(rn.nodeID.text))
                }?.state
                let what = "dispatch \(d.id) from \(sender.name) to \(rn.name)"
                if taken.count > 1 {
                    out.append("\(what) received \(taken.count) times (เลขรับ \(taken.compactMap { $0.receiveEntry?.number }))")
                } else if let t = taken.first {
                    guard let e = t.receiveEntry else {
                        out.append("\(what): the record \(t.id) has no receive number")
                        continue
                    }
                    guard case .received(let number, let year, _, _)? = delivered, number == e.number, year == e.year else {
                        out.append("\(what) received as \(e.number)/\(e.year) but the sender shows \(String(describing: delivered))")
                        continue
                    }
                } else if sim.simReturned.contains(Pair(dispatch: d.id, office: r)) {
                    guard case .returned? = delivered else {
                        out.append("\(what) returned but the sender shows \(String(describing: delivered))")
                        continue
                    }
                } else {
                    if sim.simReceived.contains(Pair(dispatch: d.id, office: r)) {
                        out.append("\(what) was received but \(rn.name) holds no record of it")
                        continue
                    }
                    if inboxes[r] == nil { inboxes[r] = Set(((try? rn.live.correspondence.inbox()) ?? []).map(\.dispatch.id)) }
                    if !inboxes[r]!.contains(d.id) { out.append("\(what) is neither in its inbox nor received") }
                }
            }
        }
        return out
    }
}

/// A dispatch and a recipient office.
struct Pair: Hashable {
    var dispatch: DocID
    var office: Int
}
