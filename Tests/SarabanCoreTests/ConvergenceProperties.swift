import Testing
import SarabanCore

#if canImport(Glibc)
import Glibc
#endif

/// Seeds come from SARABAN_SEED (one seed, to replay a failure) or SARABAN_SEEDS (how many, from
/// SARABAN_SEED_START). CI runs the default, 1,000 seeds.
enum Seeds {
    static func env(_ k: String) -> UInt64? { getenv(k).flatMap { UInt64(String(cString: $0)) } }

    static var list: [UInt64] {
        if let one = env("SARABAN_SEED") { return [one] }
        let start = env("SARABAN_SEED_START") ?? 1
        let n = env("SARABAN_SEEDS") ?? 1000
        return Array(start..<(start + n))
    }
}

private let words = ["หนังสือ", "ราชการ", "ด่วนที่สุด", "ที่ มท ๐๘๐๘.๒", "เรียน", "ผู้ว่าราชการจังหวัด", "abc", "é", "\u{0E31}\u{0E48}", "x"]
private let fields = ["เรื่อง", "เรียน", "status"]

/// One random scenario: replicas edit every field type while changes are delivered in random
/// orders with duplicates; finally everyone gets everything.
struct Scenario {
    var rng: SplitMix64
    var replicas: [Replica]
    var sent: [Change] = []

    init(seed: UInt64) {
        rng = SplitMix64(seed: seed)
        let n = 2 + Int(rng.next() % 3)
        var r = rng
        replicas = (0..<n).map { _ in Replica(id: ReplicaID.random(using: &r)) }
        rng = r
    }

    mutating func pick<T>(_ xs: [T]) -> T { xs[Int(rng.next() % UInt64(xs.count))] }

    mutating func randomEdit(on i: Int, time: Int64) throws {
        var rep = replicas[i]
        let docs = rep.documents.values.map(\.id).sorted()
        let roll = rng.next() % 100
        var r = rng
        let c = try rep.edit(time: time) { tx, s in
            if docs.isEmpty || roll < 8 {
                let d = try tx.createDocument(kind: "letter", in: &s)
                try tx.set(d, field: "เรื่อง", value: .string(words[Int(r.next() % UInt64(words.count))]), in: &s)
                return
            }
            let d = docs[Int(r.next() % UInt64(docs.count))]
            guard let doc = s.documents[d] else { return }
            if doc.isDeleted {
                if r.next() % 3 == 0 { try tx.restoreDocument(d, in: &s) }
                return
            }
            let w = words[Int(r.next() % UInt64(words.count))]
            switch roll {
            case 8..<35:
                try tx.set(d, field: fields[Int(r.next() % 3)], value: .string(w), in: &s)
            case 35..<60:
                let len = doc.texts["ข้อความ"]?.count ?? 0
                try tx.insertText(d, field: "ข้อความ", at: Int(r.next() % UInt64(len + 1)), w, in: &s)
            case 60..<70:
                let len = doc.texts["ข้อความ"]?.count ?? 0
                if len > 0 {
                    let p = Int(r.next() % UInt64(len))
                    let n = 1 + Int(r.next() % UInt64(min(5, len - p)))
                    try tx.deleteText(d, field: "ข้อความ", at: p, count: n, in: &s)
                }
            case 70..<80:
                try tx.addToSet(d, field: "cc", value: pick2(r.next(), ["กองคลัง", "กองช่าง", "สำนักปลัด"]), in: &s)
            case 80..<87:
                let vals = doc.sets["cc"]?.values ?? []
                if !vals.isEmpty { try tx.removeFromSet(d, field: "cc", value: vals[Int(r.next() % UInt64(vals.count))], in: &s) }
            case 87..<95:
                try tx.append(d, field: "routing", value: w, in: &s)
            default:
                try tx.deleteDocument(d, in: &s)
            }
        }
        rng = r
        replicas[i] = rep
        if let c { sent.append(c) }
    }

    /// Delivers a random already-sent change to a random replica (possibly a duplicate, possibly early).
    mutating func randomDelivery() throws {
        guard !sent.isEmpty else { return }
        let c = pick(sent)
        let i = Int(rng.next() % UInt64(replicas.count))
        // Half the time through the wire format.
        let wire = rng.next() % 2 == 0 ? try Change.decode(c.encoded()) : c
        try replicas[i].receive(wire)
    }

    mutating func run(steps: Int) throws {
        for t in 0..<steps {
            if rng.next() % 3 == 0 {
                try randomDelivery()
            } else {
                try randomEdit(on: Int(rng.next() % UInt64(replicas.count)), time: 1_700_000_000_000 + Int64(t))
            }
        }
        // Heal: everyone receives everything, shuffled, with duplicates.
        for i in replicas.indices {
            var all = sent + sent.prefix(sent.count / 3)
            all.shuffle(using: &rng)
            for c in all { try replicas[i].receive(c) }
        }
    }
}

private func pick2(_ x: UInt64, _ xs: [String]) -> String { xs[Int(x % UInt64(xs.count))] }

@Suite struct ConvergenceProperties {
    @Test func replicasConvergeWhateverTheDeliveryOrder() throws {
        var failures: [String] = []
        for seed in Seeds.list {
            var s = Scenario(seed: seed)
            do {
                try s.run(steps: 40 + Int(seed % 40))
            } catch {
                failures.append("seed \(seed): threw \(error) — replay with SARABAN_SEED=\(seed) swift test --filter ConvergenceProperties")
                continue
            }
            let first = s.replicas[0]
            for r in s.replicas.dropFirst() {
                if r.views != first.views || r.clock != first.clock || !r.buffer.isEmpty {
                    failures.append("seed \(seed): replica \(r.id.short) differs from \(first.id.short) — replay with SARABAN_SEED=\(seed) swift test --filter ConvergenceProperties")
                    break
                }
            }
            // Commutativity against a reference: all changes applied in creation order.
            var reference = Replica(id: ReplicaID(hi: 0, lo: 0))
            for c in s.sent { try reference.receive(c) }
            if reference.views != first.views {
                failures.append("seed \(seed): differs from in-order application — replay with SARABAN_SEED=\(seed)")
            }
            // Snapshots reproduce the same state.
            for d in first.documents.values {
                if try Document.decode(d.encoded()).view != d.view {
                    failures.append("seed \(seed): snapshot of \(d.id) does not round-trip")
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) of \(Seeds.list.count) seeds failed:\n\(failures.prefix(10).joined(separator: "\n"))")
    }

    @Test func applyingTwiceIsANoOp() throws {
        for seed in Seeds.list.prefix(200) {
            var s = Scenario(seed: seed &+ 10_000)
            try s.run(steps: 30)
            var r = s.replicas[0]
            let before = r.views
            for c in s.sent { try r.receive(c) }
            #expect(r.views == before, "seed \(seed &+ 10_000)")
        }
    }

    @Test func mergingGroupsInEitherOrderIsAssociative() throws {
        for seed in Seeds.list.prefix(200) {
            var s = Scenario(seed: seed &+ 20_000)
            try s.run(steps: 30)
            // (A ∪ B) ∪ C versus A ∪ (B ∪ C) over three thirds of the change set.
            let n = s.sent.count
            let parts = [Array(s.sent[..<(n / 3)]), Array(s.sent[(n / 3)..<(2 * n / 3)]), Array(s.sent[(2 * n / 3)...])]
            var left = Replica(id: ReplicaID(hi: 1, lo: 1))
            for c in parts[0] + parts[1] + parts[2] { try left.receive(c) }
            var right = Replica(id: ReplicaID(hi: 2, lo: 2))
            for c in parts[2] + parts[1] + parts[0] { try right.receive(c) }
            #expect(left.views == right.views, "seed \(seed &+ 20_000)")
        }
    }
}
