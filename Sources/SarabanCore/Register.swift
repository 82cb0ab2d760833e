/// One value held by a register, with who wrote it, when, and in which change.
public struct RegisterEntry: Hashable, Sendable {
    public var value: Value
    public var stamp: Stamp

    public init(value: Value, stamp: Stamp) {
        self.value = value
        self.stamp = stamp
    }

    /// A count, then each entry's stamp and value (registers and append lists share this form).
    static func encode(_ entries: [RegisterEntry], into w: inout BinaryWriter, _ t: inout ReplicaTable) {
        w.varint(entries.count)
        for e in entries {
            e.stamp.encode(into: &w, &t)
            e.value.encode(into: &w)
        }
    }

    static func decodeList(from r: inout BinaryReader, _ t: ReplicaTable) throws(DecodingError) -> [RegisterEntry] {
        let n = try r.count(max: r.remaining / 4)
        var out: [RegisterEntry] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let s = try Stamp.decode(from: &r, t)
            out.append(RegisterEntry(value: try Value.decode(from: &r), stamp: s))
        }
        return out
    }
}

/// A multi-value register (as Automerge's map keys): a write supersedes exactly the values it
/// has seen; concurrent writes are all kept. The entry with the greatest op id is the
/// deterministic winner shown by default; the rest are the conflict.
public struct MVRegister: Hashable, Sendable {
    /// Visible entries, winner first (descending op id).
    public private(set) var entries: [RegisterEntry] = []

    public init() {}

    public var winner: RegisterEntry? { entries.first }
    /// The values that lost to the winner but are kept until someone resolves them.
    public var conflicts: ArraySlice<RegisterEntry> { entries.dropFirst() }
    public var isConflicted: Bool { entries.count > 1 }
    /// The op ids a new write must supersede.
    public var visibleIDs: [OpID] { entries.map(\.stamp.op) }

    /// Applies a write. Idempotent; with causal delivery `pred` names only entries already seen.
    public mutating func apply(_ entry: RegisterEntry, pred: [OpID]) {
        if entries.contains(where: { $0.stamp.op == entry.stamp.op }) { return }
        if !pred.isEmpty {
            entries.removeAll { e in pred.contains(e.stamp.op) }
        }
        let i = entries.firstIndex { $0.stamp.op < entry.stamp.op } ?? entries.count
        entries.insert(entry, at: i)
    }

    /// Applies a write that supersedes every visible entry (a local write): the same as
    /// `apply(entry, pred: visibleIDs)`. Returns that `pred`.
    mutating func supersedeAll(with entry: consuming RegisterEntry) -> [OpID] {
        if entries.isEmpty {
            entries.append(entry)
            return []
        }
        let pred = visibleIDs
        if entries.contains(where: { $0.stamp.op == entry.stamp.op }) { return pred }
        entries.removeAll(keepingCapacity: true)
        entries.append(entry)
        return pred
    }

    func encode(into w: inout BinaryWriter, _ t: inout ReplicaTable) {
        RegisterEntry.encode(entries, into: &w, &t)
    }

    static func decode(from r: inout BinaryReader, _ t: ReplicaTable) throws(DecodingError) -> MVRegister {
        let list = try RegisterEntry.decodeList(from: &r, t)
        var reg = MVRegister()
        // Encoded winner first (strictly descending op ids): taken as it is, which is what
        // applying each entry would build.
        var descending = true
        for i in list.indices.dropFirst() where !(list[i].stamp.op < list[i - 1].stamp.op) {
            descending = false
            break
        }
        if descending {
            reg.entries = list
        } else {
            for e in list { reg.apply(e, pred: []) }
        }
        return reg
    }
}

/// A removal from an ``ORSet``: the tags its author had observed and the author's causal past.
public struct SetRemoval: Hashable, Sendable {
    public var stamp: Stamp
    public var observed: [OpID]
    public var seen: VersionVector
}

/// An add-wins observed-remove set of strings. Each add is tagged with its op id; a remove
/// takes away only the tags its author had observed, so an add concurrent with a remove wins.
/// A removal that a concurrent add outlived is shown as a conflict until a later add settles it
/// (``Operation/setAdd(doc:field:value:clears:)``) or a later remove takes the element away.
public struct ORSet: Hashable, Sendable {
    /// Element → its live add tags.
    public private(set) var tags: [String: [Stamp]] = [:]
    /// Element → removals not yet settled.
    public private(set) var removals: [String: [SetRemoval]] = [:]

    public init() {}

    public var values: [String] { tags.keys.sorted() }
    public func contains(_ v: String) -> Bool { tags[v] != nil }
    public func observedTags(_ v: String) -> [OpID] { tags[v]?.map(\.op) ?? [] }

    /// Removals of a present element that missed some of its adds because they were concurrent.
    public func contested(_ v: String) -> [(removal: SetRemoval, keptAdds: [Stamp])] {
        guard let live = tags[v], let rs = removals[v] else { return [] }
        var out: [(removal: SetRemoval, keptAdds: [Stamp])] = []
        for r in rs {
            let concurrent = live.filter { !r.seen.includes($0.change) }
            if !concurrent.isEmpty { out.append((r, concurrent)) }
        }
        return out
    }

    /// Elements with contested removals, sorted.
    public var contestedValues: [String] { values.filter { !contested($0).isEmpty } }

    public mutating func add(_ v: String, stamp: Stamp, clears: [OpID]) {
        var list = tags[v] ?? []
        if !list.contains(where: { $0.op == stamp.op }) {
            list.append(stamp)
            list.sort()
        }
        tags[v] = list
        if !clears.isEmpty, var rs = removals[v] {
            rs.removeAll { clears.contains($0.stamp.op) }
            removals[v] = rs.isEmpty ? nil : rs
        }
    }

    public mutating func remove(_ v: String, stamp: Stamp, observed: [OpID], seen: VersionVector) {
        if var list = tags[v] {
            list.removeAll { observed.contains($0.op) }
            tags[v] = list.isEmpty ? nil : list
        }
        var rs = removals[v] ?? []
        if !rs.contains(where: { $0.stamp.op == stamp.op }) {
            rs.append(SetRemoval(stamp: stamp, observed: observed, seen: seen))
            rs.sort { $0.stamp < $1.stamp }
        }
        removals[v] = rs
    }

    func encode(into w: inout BinaryWriter, _ t: inout ReplicaTable) {
        let keys = tags.keys.sorted()
        w.varint(keys.count)
        for k in keys {
            w.string(k)
            let l = tags[k]!
            w.varint(l.count)
            for s in l { s.encode(into: &w, &t) }
        }
        let rkeys = removals.keys.sorted()
        w.varint(rkeys.count)
        for k in rkeys {
            w.string(k)
            let l = removals[k]!
            w.varint(l.count)
            for r in l {
                r.stamp.encode(into: &w, &t)
                w.varint(r.observed.count)
                for o in r.observed {
                    w.varint(o.counter)
                    w.varint(t.index(o.replica))
                }
                r.seen.encode(into: &w, &t)
            }
        }
    }

    static func decode(from r: inout BinaryReader, _ t: ReplicaTable) throws(DecodingError) -> ORSet {
        var s = ORSet()
        let n = try r.count(max: r.remaining / 2)
        for _ in 0..<n {
            let k = try r.string()
            let m = try r.count(max: r.remaining / 4)
            var l: [Stamp] = []
            for _ in 0..<m { l.append(try Stamp.decode(from: &r, t)) }
            if !l.isEmpty { s.tags[k] = l.sorted() }
        }
        let nr = try r.count(max: r.remaining / 2)
        for _ in 0..<nr {
            let k = try r.string()
            let m = try r.count(max: r.remaining / 4)
            var l: [SetRemoval] = []
            for _ in 0..<m {
                let st = try Stamp.decode(from: &r, t)
                let no = try r.count(max: r.remaining / 2)
                var obs: [OpID] = []
                for _ in 0..<no { obs.append(try t.readOp(&r)) }
                let seen = try VersionVector.decode(from: &r, t)
                l.append(SetRemoval(stamp: st, observed: obs, seen: seen))
            }
            if !l.isEmpty { s.removals[k] = l.sorted { $0.stamp < $1.stamp } }
        }
        return s
    }
}

/// An append-only list (routing logs, comments), ordered by op id, which respects causality:
/// concurrent appends from two offices are both kept, in the same order everywhere.
public struct AppendList: Hashable, Sendable {
    public private(set) var entries: [RegisterEntry] = []

    public init() {}

    public mutating func append(_ e: RegisterEntry) {
        // Appends mostly arrive in order: search from the end.
        var i = entries.count
        while i > 0 && e.stamp.op < entries[i - 1].stamp.op { i -= 1 }
        if i > 0 && entries[i - 1].stamp.op == e.stamp.op { return }
        entries.insert(e, at: i)
    }

    func encode(into w: inout BinaryWriter, _ t: inout ReplicaTable) {
        RegisterEntry.encode(entries, into: &w, &t)
    }

    static func decode(from r: inout BinaryReader, _ t: ReplicaTable) throws(DecodingError) -> AppendList {
        var l = AppendList()
        for e in try RegisterEntry.decodeList(from: &r, t) { l.append(e) }
        return l
    }
}
