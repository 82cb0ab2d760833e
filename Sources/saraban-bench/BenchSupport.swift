import Foundation

extension FileHandle {
    func write(_ text: String) { write(Data(text.utf8)) }
}

/// Options shared by every suite.
struct BenchOptions {
    var json = false
    var runs = 5
    var positional: [String] = []

    init(_ args: [String]) throws {
        var i = 0
        while i < args.count {
            switch args[i] {
            case "--json": json = true
            case "--runs":
                i += 1
                guard i < args.count, let n = Int(args[i]), n > 0 else { throw BenchError("--runs needs a positive number") }
                runs = n
            default: positional.append(args[i])
            }
            i += 1
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Monotonic seconds.
@inline(__always)
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CPU seconds used by this process.
func cpuTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// One reported figure: a name, the median, its unit, and the individual runs.
struct BenchRow: Codable {
    var name: String
    var median: Double
    var unit: String
    var runs: [Double]
    var note: String?
}

/// Collects rows and prints them as an aligned table or as JSON.
struct BenchReport {
    var suite: String
    var rows: [BenchRow] = []
    var facts: [String: String] = [:]

    mutating func add(_ name: String, _ runs: [Double], unit: String, note: String? = nil) {
        guard !runs.isEmpty else { return }  // a part that was not asked for
        rows.append(BenchRow(name: name, median: median(runs), unit: unit, runs: runs, note: note))
    }

    func print(json: Bool) {
        if json {
            struct Out: Codable { var suite: String; var facts: [String: String]; var rows: [BenchRow] }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try! enc.encode(Out(suite: suite, facts: facts, rows: rows))
            Swift.print(String(decoding: data, as: UTF8.self))
            return
        }
        for (k, v) in facts.sorted(by: { $0.key < $1.key }) { Swift.print("\(k): \(v)") }
        let w = rows.map(\.name.count).max() ?? 10
        for r in rows {
            let pad = String(repeating: " ", count: max(0, w - r.name.count))
            let value = r.median >= 100 ? String(format: "%.0f", r.median) : String(format: "%.3f", r.median)
            Swift.print("\(r.name)\(pad)  \(value) \(r.unit)  (median of \(r.runs.count))\(r.note.map { "  \($0)" } ?? "")")
        }
    }
}
