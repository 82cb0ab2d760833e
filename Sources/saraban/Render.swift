import Foundation
import SarabanCore

/// A register value in JSON: strings, numbers and booleans as themselves, bytes as "0x…" hex.
struct ValueJSON: Encodable {
    let value: Value
    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case .string(let s): try c.encode(s)
        case .int(let i): try c.encode(i)
        case .bool(let b): try c.encode(b)
        case .bytes: try c.encode(value.description)
        }
    }
}

/// Who wrote a value, when, and in which change.
struct StampJSON: Encodable {
    var author: String
    var time: Int64
    var timeISO: String
    var change: String
    var op: String

    init(_ s: Stamp) {
        author = s.change.author.hex
        time = s.time
        timeISO = Output.time(s.time)
        change = s.change.description
        op = s.op.description
    }
}

struct EntryJSON: Encodable {
    var value: ValueJSON
    var stamp: StampJSON
    init(_ e: RegisterEntry) {
        value = ValueJSON(value: e.value)
        stamp = StampJSON(e.stamp)
    }
}

struct FieldJSON: Encodable {
    var type: String
    /// Register winner, or the text.
    var value: ValueJSON?
    /// Register values that lost to the winner but are kept.
    var conflicts: [EntryJSON]?
    /// Set elements, sorted.
    var values: [String]?
    /// List entries in order.
    var entries: [EntryJSON]?
}

struct ConflictJSON: Encodable {
    var type: String
    var field: String?
    var value: String?
    var values: [EntryJSON]?
    var removal: StampJSON?
    var keptAdds: [StampJSON]?
    var deletions: [EntryJSON]?
    var concurrentEdits: [EditJSON]?

    struct EditJSON: Encodable {
        var author: String
        var seq: UInt64
        var time: Int64
        var fields: [String]
    }

    init(_ c: Conflict) {
        switch c {
        case .register(let f, let v):
            type = "register"
            field = f
            values = v.map(EntryJSON.init)
        case .setRemoval(let f, let v, let removal, let kept):
            type = "setRemoval"
            field = f
            value = v
            self.removal = StampJSON(removal)
            keptAdds = kept.map(StampJSON.init)
        case .deletion(let dels, let edits):
            type = "deletion"
            deletions = dels.map(EntryJSON.init)
            concurrentEdits = edits.sorted { $0.key < $1.key }.map {
                EditJSON(author: $0.key.hex, seq: $0.value.seq, time: $0.value.time, fields: $0.value.fields)
            }
        case .lifecycle(let v):
            type = "lifecycle"
            values = v.map(EntryJSON.init)
        }
    }
}

/// `saraban doc show --json`.
struct DocumentJSON: Encodable {
    var id: String
    var kind: String
    var deleted: Bool
    var created: StampJSON
    var fields: [String: FieldJSON]
    var conflicts: [ConflictJSON]

    init(_ d: Document) {
        id = d.id.description
        kind = d.kind
        deleted = d.isDeleted
        created = StampJSON(d.created)
        var f: [String: FieldJSON] = [:]
        for (name, r) in d.registers {
            f[name] = FieldJSON(
                type: "register", value: r.winner.map { ValueJSON(value: $0.value) },
                conflicts: r.isConflicted ? r.conflicts.map(EntryJSON.init) : nil)
        }
        for (name, t) in d.texts { f[name] = FieldJSON(type: "text", value: ValueJSON(value: .string(t.string))) }
        for (name, s) in d.sets { f[name] = FieldJSON(type: "set", values: s.values) }
        for (name, l) in d.lists { f[name] = FieldJSON(type: "list", entries: l.entries.map(EntryJSON.init)) }
        fields = f
        conflicts = d.conflicts.map(ConflictJSON.init)
    }
}

/// One element of `saraban doc list --json`.
struct DocumentSummaryJSON: Encodable {
    var id: String
    var kind: String
    var deleted: Bool
    var title: String?
    var fields: Int
    var conflicts: Int

    init(_ d: Document) {
        id = d.id.description
        kind = d.kind
        deleted = d.isDeleted
        let names = d.fields.map(\.name)
        let titleField = ["subject", "title", "เรื่อง"].first { names.contains($0) } ?? names.first
        title = titleField.flatMap { d.display($0) }.map { $0.split(separator: "\n").first.map(String.init) ?? "" }
        fields = names.count
        conflicts = d.conflicts.count
    }
}

/// `saraban doc show` as text.
enum DocumentText {
    static func who(_ s: Stamp) -> String {
        "by \(s.change.author.short) at \(Output.time(s.time)) (change \(s.change))"
    }

    static func render(_ d: Document) -> [String] {
        var out: [String] = []
        out.append("id:       \(d.id)")
        out.append("kind:     \(d.kind)")
        out.append("status:   \(d.isDeleted ? "deleted" : "live")")
        out.append("created:  \(who(d.created))")
        let fields = d.fields
        out.append(fields.isEmpty ? "fields:   (none)" : "fields:")
        for (name, kind) in fields {
            switch kind {
            case .register:
                let r = d.registers[name]!
                out.append("  \(name) = \(r.winner?.value.description ?? "")")
                for e in r.conflicts {
                    out.append("      conflict: also \(e.value.description.debugDescription) \(who(e.stamp))")
                }
            case .text:
                out.append("  \(name) (text) = \(d.texts[name]!.string)")
            case .set:
                out.append("  \(name) (set) = {\(d.sets[name]!.values.joined(separator: ", "))}")
            case .list:
                let l = d.lists[name]!
                out.append("  \(name) (list, \(l.entries.count)):")
                for e in l.entries { out.append("    - \(e.value.description)  (\(who(e.stamp)))") }
            }
        }
        let conflicts = d.conflicts
        if !conflicts.isEmpty {
            out.append("conflicts (\(conflicts.count)):")
            for c in conflicts {
                switch c {
                case .register(let f, let values):
                    out.append("  \(f): \(values.count) concurrent values; shown: \(values[0].value.description.debugDescription) \(who(values[0].stamp))")
                    for e in values.dropFirst() {
                        out.append("      other: \(e.value.description.debugDescription) \(who(e.stamp))")
                    }
                    out.append("      resolve: saraban doc set \(d.id) \(f) VALUE")
                case .setRemoval(let f, let v, let removal, let kept):
                    out.append("  \(f): removal of \(v.debugDescription) \(who(removal)) lost to \(kept.count) concurrent add(s)")
                    for k in kept { out.append("      kept add \(who(k))") }
                case .deletion(let dels, let edits):
                    for del in dels { out.append("  deleted \(who(del.stamp)), while others edited it:") }
                    for (author, mark) in edits.sorted(by: { $0.key < $1.key }) {
                        out.append(
                            "      \(author.short) edited \(mark.fields.joined(separator: ", ")) at \(Output.time(mark.time)) (change \(author.short)/\(mark.seq))"
                        )
                    }
                    out.append("      keep it deleted: saraban doc delete \(d.id); bring it back: saraban doc restore \(d.id)")
                case .lifecycle(let values):
                    out.append("  concurrently deleted and restored:")
                    for e in values {
                        out.append("      \(e.value == .bool(true) ? "restored" : "deleted") \(who(e.stamp))")
                    }
                }
            }
        }
        return out
    }
}
