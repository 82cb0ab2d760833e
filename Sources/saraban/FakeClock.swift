import Foundation
import SarabanNode

/// `SARABAN_FAKE_TIME`: a fixed wall clock for tests and reproducible examples (golden outputs).
///
/// When set to milliseconds since 1970 (`1795621370157`) or an ISO 8601 UTC time
/// (`2026-11-25T15:42:50Z`, optionally with fractional seconds), every change this process makes
/// carries that time. Time is display-only in Saraban (causality never depends on it), so this
/// changes nothing but what `history`, `conflicts` and `doc show` print. Unset in production.
enum FakeClock {
    static let variable = "SARABAN_FAKE_TIME"

    static var now: (@Sendable () -> Int64)? {
        guard let text = ProcessInfo.processInfo.environment[variable], !text.isEmpty else { return nil }
        guard let ms = parse(text) else { return nil }
        return { ms }
    }

    static func parse(_ text: String) -> Int64? {
        if let ms = Int64(text) { return ms }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        f.formatOptions = [.withInternetDateTime]
        if let d = f.date(from: text) { return Int64((d.timeIntervalSince1970 * 1000).rounded()) }
        return nil
    }
}
