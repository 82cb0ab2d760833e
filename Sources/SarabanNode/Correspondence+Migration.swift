import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
import SarabanSync

// Letters of the shared-letter model (before dispatches: one `letter` document in a shared space
// that every member office edited, acknowledged in its `การตอบรับ` list) stay readable where they
// are. Once, when a node of this version opens, each such letter this office SENT becomes this
// office's record in its own space (its fields, signatures, attachments and this office's routing, `การส่ง` naming the
// other offices of the space, whose acknowledgements show as their receipts), and each one it
// RECEIVED (with its acknowledgement) becomes its receive record (its เลขรับ from the
// acknowledgement). No dispatch is published for an old letter unless the clerk sends it again,
// and the registers are not touched: their lines still name the shared letters, which the form
// shows through the records.

extension Correspondence {
    /// The setting that says the migration ran.
    static let migrationSetting = "letters.dispatch-model"

    /// Runs the migration once (a no-op afterwards, and on a relay). Returns the records written.
    @discardableResult
    public func migrateSharedLetters() throws(NodeError) -> (sent: Int, received: Int) {
        guard node.role == .member else { return (0, 0) }
        do { if try node.store.setting(Self.migrationSetting) != nil { return (0, 0) } } catch { throw NodeError(error) }
        let def: SpaceID?
        do { def = try node.store.defaultSpace() } catch { throw NodeError(error) }
        var done = Set<String>()
        for d in try node.documents(ofKind: LetterDocument.kind, in: def) {
            if let l = d.display(LetterDocument.legacy) { done.insert(l) }
        }
        let own = try ownNodes()
        let me = node.replica.hex
        var counts = (sent: 0, received: 0)
        for d in try node.documents(ofKind: LetterDocument.kind) where !d.isDeleted && !done.contains(d.id.description) {
            let space = try node.space(ofDocument: d.id)
            guard space != def, let v = Node.letterView(d), let info = try node.spaceInfo(space) else { continue }
            if v.createdBy == node.replica, [.sent, .circulating, .closed].contains(v.status),
                v.fields[LetterField.number.rawValue] != nil
            {
                let others = info.members.filter { !own.contains($0.nodeID) }
                let deliveries = others.map {
                    Delivery(
                        office: $0.office.isEmpty ? $0.nodeID.text : $0.office, nodes: [$0.nodeID.text], dispatch: d.id.description,
                        space: space.hex)
                }
                try copy(d, v, status: v.status, deliveries: deliveries, origin: nil, entry: nil)
                counts.sent += 1
            } else if v.createdBy != node.replica, let ack = v.acknowledgements.first(where: { $0.node == me }),
                let date = try? ThaiDate(parsing: ack.date)
            {
                let sender = info.members.first { ReplicaID(bytes: $0.nodeID.replicaBytes) == v.createdBy }
                let origin = Origin(
                    dispatch: d.id.description, space: space.hex, node: sender?.nodeID.text ?? "", office: sender?.office ?? "",
                    code: "")
                let entry = ReceiveEntry(number: ack.number, year: ack.year, date: date, time: ack.time)
                try copy(d, v, status: .received, deliveries: [], origin: origin, entry: entry)
                counts.received += 1
            }
        }
        do { try node.store.setSetting(Self.migrationSetting, "1") } catch { throw NodeError(error) }
        if counts.sent + counts.received > 0 {
            node.logger.notice(
                "letters of the shared-letter model have their records in this office's space",
                metadata: ["sent": "\(counts.sent)", "received": "\(counts.received)"])
        }
        return counts
    }

    /// This office's record of shared letter `d`, in one change in its own space.
    private func copy(
        _ d: Document, _ v: LetterView, status: LetterStatus, deliveries: [Delivery], origin: Origin?, entry: ReceiveEntry?
    ) throws(NodeError) {
        func list(_ name: String) -> [String] { d.lists[name]?.entries.compactMap(\.value.string) ?? [] }
        let signatures = list(LetterDocument.signatures)
        let attachments = list(LetterDocument.attachments)
        // This office's own routing of the letter (another office's stays with it).
        let routing = (d.lists[LetterDocument.routing]?.entries ?? []).filter { $0.stamp.change.author == node.replica }
            .compactMap(\.value.string)
        try node.edit { tx, docs in
            let r = try tx.createDocument(kind: LetterDocument.kind, in: &docs)
            try tx.set(r, field: LetterDocument.kindField, value: .string(v.kind.rawValue), in: &docs)
            for f in LetterField.allCases where f != .status {
                guard let value = v.fields[f.rawValue] else { continue }
                if f == .body {
                    if !value.isEmpty { try tx.insertText(r, field: f.rawValue, at: 0, value, in: &docs) }
                } else {
                    try tx.set(r, field: f.rawValue, value: .string(value), in: &docs)
                }
            }
            try tx.set(r, field: LetterField.status.rawValue, value: .string(status.rawValue), in: &docs)
            try tx.set(r, field: LetterDocument.legacy, value: .string(d.id.description), in: &docs)
            if let reg = d.display(LetterDocument.registration) {
                try tx.set(r, field: LetterDocument.registration, value: .string(reg), in: &docs)
            }
            if let origin { try tx.set(r, field: LetterDocument.origin, value: .string(origin.encoded), in: &docs) }
            if let entry { try tx.set(r, field: LetterDocument.receiveEntry, value: .string(entry.encoded), in: &docs) }
            for s in signatures { try tx.append(r, field: LetterDocument.signatures, value: s, in: &docs) }
            for a in attachments { try tx.append(r, field: LetterDocument.attachments, value: a, in: &docs) }
            for dl in deliveries { try tx.append(r, field: LetterDocument.deliveries, value: dl.encoded, in: &docs) }
            for e in routing { try tx.append(r, field: LetterDocument.routing, value: e, in: &docs) }
        }
    }
}
