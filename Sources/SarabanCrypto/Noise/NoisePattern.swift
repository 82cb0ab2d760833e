/// A Noise handshake pattern as data (Noise Protocol Framework rev. 34, §7), optionally with
/// `psk` modifiers (§9).
///
/// Supported: the one-way patterns N, K, X; the fundamental interactive patterns NN, NK, NX, XN,
/// XK, XX, KN, KK, KX, IN, IK, IX; the deferred patterns of §7.6 (NK1, NX1, X1N, X1K, XK1, X1K1,
/// X1X, XX1, X1X1, K1N, K1K, KK1, K1K1, K1X, KX1, K1X1, I1N, I1K, IK1, I1K1, I1X, IX1, I1X1); each
/// with any `pskN` modifiers, e.g. `XXpsk3` or `NNpsk0+psk2`.
public struct NoisePattern: Sendable, Hashable, CustomStringConvertible {
    /// A token of a message pattern.
    public enum Token: String, Sendable, Hashable {
        case e, s, ee, es, se, ss, psk
    }

    /// The full pattern name, modifiers included (for example `XXpsk3`).
    public let name: String
    /// Keys the responder knows about the initiator before the handshake (`-> s` pre-message).
    public let initiatorPreMessage: [Token]
    /// Keys the initiator knows about the responder before the handshake (`<- s` pre-message).
    public let responderPreMessage: [Token]
    /// The message patterns, alternating initiator → responder, responder → initiator, …
    public let messages: [[Token]]

    /// Whether only the initiator sends (N, K, X and their psk variants).
    public var isOneWay: Bool { messages.count == 1 && Self.oneWay.contains(baseName) }
    /// Whether any `psk` token is present.
    public var hasPSK: Bool { messages.contains { $0.contains(.psk) } }
    /// The number of pre-shared keys the pattern consumes.
    public var pskCount: Int { messages.reduce(0) { $0 + $1.filter { $0 == .psk }.count } }

    private var baseName: String { String(name.prefix { $0 != "p" }) }

    public var description: String { name }

    /// Parses a pattern name such as `XX`, `IKpsk2` or `NNpsk0+psk2`.
    ///
    /// - Throws: ``CryptoError/Code/noiseUnsupportedProtocol`` for an unknown pattern or modifier.
    public init(parsing name: String) throws(CryptoError) {
        let base: Substring
        let modifiers: [Substring]
        if let start = name.indices.first(where: { name[$0...].hasPrefix("psk") }) {
            base = name[..<start]
            modifiers = name[start...].split(separator: "+", omittingEmptySubsequences: false)
        } else {
            base = Substring(name)
            modifiers = []
        }
        guard let definition = Self.parsed[String(base)] else {
            throw CryptoError(
                .noiseUnsupportedProtocol,
                "the Noise pattern '\(name)' is not supported (known: \(Self.table.keys.sorted().joined(separator: ", ")))"
            )
        }
        var messages = definition.messages
        for modifier in modifiers {
            guard modifier.hasPrefix("psk"), let n = Int(modifier.dropFirst(3)), n >= 0, n <= messages.count else {
                throw CryptoError(
                    .noiseUnsupportedProtocol, "the Noise pattern modifier '\(modifier)' in '\(name)' is not supported")
            }
            if n == 0 { messages[0].insert(.psk, at: 0) } else { messages[n - 1].append(.psk) }
        }
        self.name = name
        self.initiatorPreMessage = definition.initiatorPre
        self.responderPreMessage = definition.responderPre
        self.messages = messages
    }

    /// ``table`` with its token lists parsed once: every handshake parses its protocol name, and
    /// splitting the table's strings each time was about 1% of a relay's CPU per idle session
    /// (perf, `saraban-bench sessions`, 2,000 offices).
    private static let parsed: [String: (initiatorPre: [Token], responderPre: [Token], messages: [[Token]])] =
        table.mapValues { d in
            (
                Token(rawValue: d.initiatorPre).map { [$0] } ?? [], Token(rawValue: d.responderPre).map { [$0] } ?? [],
                d.messages.map { $0.split(separator: ",").compactMap { Token(rawValue: $0.trimmingSpaces) } }
            )
        }

    private static let oneWay: Set<String> = ["N", "K", "X"]

    private struct Definition {
        var initiatorPre: String
        var responderPre: String
        var messages: [String]
    }

    // The tables of §7.4, §7.5 and §7.6. Pre-messages hold at most one `s` in these patterns.
    private static let table: [String: Definition] = [
        "N": .init(initiatorPre: "", responderPre: "s", messages: ["e, es"]),
        "K": .init(initiatorPre: "s", responderPre: "s", messages: ["e, es, ss"]),
        "X": .init(initiatorPre: "", responderPre: "s", messages: ["e, es, s, ss"]),
        "NN": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee"]),
        "NK": .init(initiatorPre: "", responderPre: "s", messages: ["e, es", "e, ee"]),
        "NX": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee, s, es"]),
        "XN": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee", "s, se"]),
        "XK": .init(initiatorPre: "", responderPre: "s", messages: ["e, es", "e, ee", "s, se"]),
        "XX": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee, s, es", "s, se"]),
        "KN": .init(initiatorPre: "s", responderPre: "", messages: ["e", "e, ee, se"]),
        "KK": .init(initiatorPre: "s", responderPre: "s", messages: ["e, es, ss", "e, ee, se"]),
        "KX": .init(initiatorPre: "s", responderPre: "", messages: ["e", "e, ee, se, s, es"]),
        "IN": .init(initiatorPre: "", responderPre: "", messages: ["e, s", "e, ee, se"]),
        "IK": .init(initiatorPre: "", responderPre: "s", messages: ["e, es, s, ss", "e, ee, se"]),
        "IX": .init(initiatorPre: "", responderPre: "", messages: ["e, s", "e, ee, se, s, es"]),
        // Deferred patterns (§7.6).
        "NK1": .init(initiatorPre: "", responderPre: "s", messages: ["e", "e, ee, es"]),
        "NX1": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee, s", "es"]),
        "X1N": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee", "s", "se"]),
        "X1K": .init(initiatorPre: "", responderPre: "s", messages: ["e, es", "e, ee", "s", "se"]),
        "XK1": .init(initiatorPre: "", responderPre: "s", messages: ["e", "e, ee, es", "s, se"]),
        "X1K1": .init(initiatorPre: "", responderPre: "s", messages: ["e", "e, ee, es", "s", "se"]),
        "X1X": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee, s, es", "s", "se"]),
        "XX1": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee, s", "es, s, se"]),
        "X1X1": .init(initiatorPre: "", responderPre: "", messages: ["e", "e, ee, s", "es, s", "se"]),
        "K1N": .init(initiatorPre: "s", responderPre: "", messages: ["e", "e, ee", "se"]),
        "K1K": .init(initiatorPre: "s", responderPre: "s", messages: ["e, es", "e, ee", "se"]),
        "KK1": .init(initiatorPre: "s", responderPre: "s", messages: ["e", "e, ee, se, es"]),
        "K1K1": .init(initiatorPre: "s", responderPre: "s", messages: ["e", "e, ee, es", "se"]),
        "K1X": .init(initiatorPre: "s", responderPre: "", messages: ["e", "e, ee, s, es", "se"]),
        "KX1": .init(initiatorPre: "s", responderPre: "", messages: ["e", "e, ee, se, s", "es"]),
        "K1X1": .init(initiatorPre: "s", responderPre: "", messages: ["e", "e, ee, s", "se, es"]),
        "I1N": .init(initiatorPre: "", responderPre: "", messages: ["e, s", "e, ee", "se"]),
        "I1K": .init(initiatorPre: "", responderPre: "s", messages: ["e, es, s", "e, ee", "se"]),
        "IK1": .init(initiatorPre: "", responderPre: "s", messages: ["e, s", "e, ee, se, es"]),
        "I1K1": .init(initiatorPre: "", responderPre: "s", messages: ["e, s", "e, ee, es", "se"]),
        "I1X": .init(initiatorPre: "", responderPre: "", messages: ["e, s", "e, ee, s, es", "se"]),
        "IX1": .init(initiatorPre: "", responderPre: "", messages: ["e, s", "e, ee, se, s", "es"]),
        "I1X1": .init(initiatorPre: "", responderPre: "", messages: ["e, s", "e, ee, s", "se, es"]),
    ]
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
