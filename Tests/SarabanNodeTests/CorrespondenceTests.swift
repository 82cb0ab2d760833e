import Foundation
import SarabanCore
import SarabanCrypto
import SarabanNode
import SarabanOffice
import SarabanStorage
import SarabanSync
import Testing

/// ExchangeOffices in one temporary directory sharing an exchange space made by the first, exchanging
/// envelopes by calling the APIs directly.
final class ExchangeOffices {
    let dir: TempDir
    var nodes: [Node] = []
    let space: SpaceID

    /// `names`: (office, letter code); the first creates the space and invites the others.
    init(_ names: [(String, String)], _ test: String = #function) throws {
        dir = TempDir(test)
        for (i, n) in names.enumerated() {
            nodes.append(
                try Node.initialize(
                    dataDir: DataDirectory(path: dir.path + "/n\(i)"), office: n.0, letterCode: n.1, logger: quiet,
                    now: { 1_796_000_000_000 + Int64(i) }))
        }
        space = try nodes[0].createSpace(name: "จังหวัด").id
        for n in nodes.dropFirst() {
            let inv = try nodes[0].invite(space: space, invitee: n.nodeID, office: n.config.office)
            try n.join(try Invitation.parse(inv.text))
        }
        try syncAll()
    }

    /// Every node gets everything every other holds of the space.
    func syncAll() throws {
        for _ in 0..<2 {
            for x in nodes {
                for y in nodes where x !== y { try exchange(x, y, space) }
            }
        }
    }

    func close() {
        for n in nodes { n.close() }
        dir.cleanup()
    }
}

/// A complete external letter, drafted in the office's own space.
func externalLetter(_ n: Node, _ subject: String = "ขอเชิญประชุม", urgency: String? = nil) throws -> DocID {
    var f: [(name: String, value: String)] = [
        ("เรื่อง", subject), ("เรียน", "นายอำเภอ"), ("ข้อความ", "ด้วย…"), ("คำลงท้าย", "ขอแสดงความนับถือ"),
        ("ผู้ลงนาม", "นายสมมติ"), ("ตำแหน่ง", "ผู้ว่าราชการจังหวัด"),
    ]
    if let urgency { f.append(("ชั้นความเร็ว", urgency)) }
    return try n.createLetter(kind: .external, fields: f)
}

@Suite struct CorrespondenceTests {
    /// Why 2 at the node: a letter signed before it is numbered verifies after registration.
    /// (Before: the signature covered ที่ and วันที่ and failed for ever.)
    @Test func aLetterSignedBeforeItIsNumberedStillVerifies() throws {
        let o = try ExchangeOffices([("จังหวัด", "นว 0017")])
        defer { o.close() }
        let a = o.nodes[0]
        try a.officers.add(name: "นายสมมติ", position: "ผู้ว่าราชการจังหวัด", passphrase: officerPassphrase, protection: .minimum)
        let id = try externalLetter(a)
        try a.officers.sign(id, officer: "นายสมมติ", passphrase: officerPassphrase)
        try a.registerLetter(id)
        let checks = try a.officers.verify(id)
        #expect(checks.count == 1 && checks.allSatisfy(\.valid), "\(checks)")
        let stamp = try #require(try a.officers.verifyStamp(id))
        #expect(stamp.valid && stamp.letterNumber == "นว 0017/1" && stamp.registeredBy == a.nodeID.text)
    }

    @Test func aCircularIsOneDispatchThatOnlyItsRecipientsOpen() throws {
        let o = try ExchangeOffices([("จังหวัด", "นว 0017"), ("อำเภอ ก", "นว 1"), ("อำเภอ ข", "นว 2"), ("อำเภอ ค", "นว 3")])
        defer { o.close() }
        let (a, b, c, d) = (o.nodes[0], o.nodes[1], o.nodes[2], o.nodes[3])
        let id = try externalLetter(a)
        let r = try a.correspondence.send(id, to: ["อำเภอ ก", c.nodeID.text], circular: true)
        #expect(r.dispatches.count == 1 && r.status == .circulating && r.letterNumber == "นว 0017/ว 1")
        try o.syncAll()
        for n in [b, c] {
            let inbox = try n.correspondence.inbox()
            #expect(inbox.map(\.dispatch.id) == [r.dispatches[0].id])
            #expect(inbox.first?.dispatch.letter.circular == true)
            #expect(Set(inbox.first?.dispatch.letter.recipients.map(\.office) ?? []) == ["อำเภอ ก", "อำเภอ ข"])
        }
        // D shares the space, sees the dispatch's clear fields, and cannot open it.
        #expect(try d.correspondence.inbox().isEmpty)
        #expect(throws: NodeError.self) { try d.correspondence.openDispatch(r.dispatches[0].id) }
        let doc = try d.document(r.dispatches[0].id)
        #expect(doc.display(DispatchDocument.office) == "จังหวัด")
        #expect(doc.registers.keys.filter { $0.hasPrefix("box.") }.count == 3)  // A, B, C
        #expect(doc.view.owners == [])  // sealed
    }

    @Test func attachmentsTravelSealedUnderTheDispatchKey() throws {
        let o = try ExchangeOffices([("จังหวัด", "นว 0017"), ("อำเภอ", "นว 1")])
        defer { o.close() }
        let (a, b) = (o.nodes[0], o.nodes[1])
        let id = try externalLetter(a)
        let bytes = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 13) })
        try bytes.write(to: URL(fileURLWithPath: o.dir.file("scan.pdf")))
        let workspaceRef = try a.attach(id, file: o.dir.file("scan.pdf"))
        let r = try a.correspondence.send(id, to: ["อำเภอ"])
        try o.syncAll()
        let dispatch = r.dispatches[0].id
        let sentRef = try #require(try b.correspondence.openDispatch(dispatch).letter.attachments.first)
        #expect(sentRef.hash == workspaceRef.hash && sentRef.root != workspaceRef.root)
        let rec = try b.correspondence.receive(dispatch)
        let att = try #require(try b.letter(rec.record).attachments.first)
        #expect(att.key == "dispatch:\(o.space.hex):\(dispatch)" && att.root == sentRef.root)
        // B lacks the chunks until it fetches them; copied from A (what a fetch stores), they open.
        #expect(throws: NodeError.self) { try b.readAttachment(att) }
        let from = a.attachmentDirectory(att)
        let to = b.attachmentDirectory(att)
        try FileManager.default.createDirectory(atPath: to, withIntermediateDirectories: true)
        for f in try FileManager.default.contentsOfDirectory(atPath: from) {
            try FileManager.default.copyItem(atPath: from + "/" + f, toPath: to + "/" + f)
        }
        #expect(Data(try b.readAttachment(att)) == bytes)
        // The manifest names the exchange space: relays carrying it pull the chunks blind.
        let manifest = try #require(FileManager.default.contents(atPath: from + "/manifest"))
        #expect(Array(manifest[8..<24]) == o.space.bytes)
    }

    @Test func aDispatchClaimingAnotherSenderIsIgnored() throws {
        let o = try ExchangeOffices([("จังหวัด", "นว 0017"), ("อำเภอ ก", "นว 1"), ("อำเภอ ข", "นว 2")])
        defer { o.close() }
        let (a, b, c) = (o.nodes[0], o.nodes[1], o.nodes[2])
        // B writes a dispatch document that says it is from A, with a box for C.
        let key = SymmetricKey.generate()
        let box = try key.secret.withUnsafeBytes { k in try SealedBox.seal(Array(k), to: c.nodeID.publicKey) }
        try b.edit(in: o.space) { tx, docs in
            let d = try tx.createDocument(kind: DispatchDocument.kind, owners: [], in: &docs)
            try tx.set(d, field: DispatchDocument.from, value: .string(a.nodeID.text), in: &docs)
            try tx.set(d, field: DispatchDocument.office, value: .string("จังหวัด"), in: &docs)
            try tx.set(d, field: DispatchDocument.to, value: .string(c.nodeID.text), in: &docs)
            try tx.set(d, field: DispatchDocument.box(c.nodeID.text), value: .bytes(box), in: &docs)
        }
        try o.syncAll()
        #expect(try c.correspondence.inbox().isEmpty)
        let forged = try #require(try c.documents(ofKind: DispatchDocument.kind).first)
        #expect(throws: NodeError.self) { try c.correspondence.receive(forged.id) }
    }

    @Test func theInboxPutsTheMostUrgentFirstThenTheOldest() throws {
        let o = try ExchangeOffices([("จังหวัด", "นว 0017"), ("อำเภอ", "นว 1")])
        defer { o.close() }
        let (a, b) = (o.nodes[0], o.nodes[1])
        var sent: [String: DocID] = [:]
        for (subject, urgency) in [("ธรรมดา", nil), ("ด่วนมาก", "ด่วนมาก"), ("ธรรมดา 2", nil), ("ด่วนที่สุด", "ด่วนที่สุด")] {
            sent[subject] = try a.correspondence.send(try externalLetter(a, subject, urgency: urgency), to: ["อำเภอ"]).dispatches[0].id
        }
        try o.syncAll()
        let order = try b.correspondence.inbox().map { $0.dispatch.letter.fields["เรื่อง"] ?? "" }
        #expect(order == ["ด่วนที่สุด", "ด่วนมาก", "ธรรมดา", "ธรรมดา 2"])
        // Received ones leave the inbox; the register numbers them 1, 2 in the order taken.
        #expect(try b.correspondence.receive(try #require(sent["ธรรมดา 2"])).allocation.number == 1)
        #expect(try b.correspondence.receive(try #require(sent["ด่วนที่สุด"])).allocation.number == 2)
        #expect(try b.correspondence.inbox().count == 2)
        // The rest in one go, in inbox order; again: nothing new.
        let rest = try b.correspondence.receive(try b.correspondence.inbox().map(\.dispatch.id))
        #expect(rest.map(\.allocation.number) == [3, 4] && rest.allSatisfy { !$0.existing && $0.receipt != nil })
        let again = try b.correspondence.receive(Array(sent.values))
        #expect(again.allSatisfy { $0.existing && $0.receipt == nil })
        #expect(try b.correspondence.inbox().isEmpty)
        let book = try #require(try b.register(.receive, year: 2569))
        #expect(book.state.collisionsAndGaps.collisions.isEmpty && book.state.collisionsAndGaps.gaps.isEmpty)
        #expect(book.state.lines.count == 4)
    }

    @Test func aSecretLetterGoesOnlyThroughASpaceClearedForIt() throws {
        let o = try ExchangeOffices([("จังหวัด", "นว 0017"), ("อำเภอ", "นว 1")])
        defer { o.close() }
        let (a, b) = (o.nodes[0], o.nodes[1])
        let office = try #require(try a.store.defaultSpace())
        try a.setSpaceClearance(office, to: .confidential)
        let id = try a.createLetter(
            kind: .internal,
            fields: [("ส่วนราชการ", "จังหวัด"), ("เรื่อง", "ลับ"), ("เรียน", "นายอำเภอ"), ("ข้อความ", "…"),
                ("ผู้ลงนาม", "ก"), ("ตำแหน่ง", "ข"), ("ชั้นความลับ", "ลับ")])
        let refused = #expect(throws: NodeError.self) { try a.correspondence.send(id, to: ["อำเภอ"]) }
        #expect(refused?.code == .refused && refused?.message.contains("cleared") == true)
        #expect(try a.letter(id).status == .draft)  // nothing numbered
        try a.setMemberClearance(o.space, member: b.nodeID, to: .confidential)
        try a.setSpaceClearance(o.space, to: .confidential)
        #expect(try a.correspondence.send(id, to: ["อำเภอ"]).dispatches.count == 1)
    }
}
