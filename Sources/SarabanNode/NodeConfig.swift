import Foundation

/// `config.json`: the node's settings that an operator may edit by hand.
public struct NodeConfig: Codable, Sendable, Hashable {
    /// A peer to sync with: `{"node_id": …, "address": "HOST:PORT", "name": …}` (`saraban peer add`).
    public struct Peer: Codable, Sendable, Hashable {
        public var name: String?
        public var address: String
        public var nodeID: String?

        public init(name: String? = nil, address: String, nodeID: String? = nil) {
            self.name = name
            self.address = address
            self.nodeID = nodeID
        }

        enum CodingKeys: String, CodingKey {
            case name, address
            case nodeID = "node_id"
        }
    }

    /// Format version of this file.
    public var version: Int
    /// The office (ส่วนราชการ) this node serves, for example "สำนักงานจังหวัดเชียงใหม่".
    public var office: String
    /// The letter code (รหัสตัวพยัญชนะ) used in letter numbers, for example "ชม".
    public var letterCode: String?
    /// The node id (checksummed text form of the Ed25519 public key); must match node.key.
    public var nodeID: String
    /// Where `saraban serve` listens, `HOST:PORT` (`--listen` overrides it).
    public var listen: String
    public var peers: [Peer]
    /// How registers count years (`register_year`): `calendar` (default, reset on 1 January) or
    /// `fiscal` (reset on 1 October, named by the BE year in which it ends).
    public var registerYear: String?
    /// Secrecy clearance per space name (`space_clearance`, for example `{"ลับ-จังหวัด": "ลับมาก"}`),
    /// used when a space's own document carries no `clearance` field.
    public var spaceClearance: [String: String]?
    /// A relay's store (`store`): `postgresql://USER@HOST[:PORT]/DB` to keep envelopes in PostgreSQL,
    /// shared by every relay process of the deployment (`serve --store` overrides it); absent: the
    /// node's own database. Relays only.
    public var store: String?
    /// Where a relay serves Prometheus `/metrics` and `/ready` (`metrics`, `HOST:PORT`; `serve
    /// --metrics` overrides it); absent: no metrics endpoint.
    public var metrics: String?
    /// At most this many accepted connections without a finished handshake (`max_pending_handshakes`,
    /// default 256) and per source address (`max_pending_handshakes_per_address`, default 16);
    /// one more closes the oldest (Docs/TRANSPORT.md).
    public var maxPendingHandshakes: Int?
    public var maxPendingHandshakesPerAddress: Int?
    /// A member of a space whose latest head claim is older than this shows as stale in
    /// `saraban status` (`stale_after`: a number and a unit, `s`, `m`, `h` or `d`, for example
    /// `"3d"`, the default; Docs/SECURITY.md, "Withholding").
    public var staleAfter: String?

    /// The default of ``staleAfter``.
    public static let defaultStaleAfter = "3d"

    /// ``staleAfter`` in milliseconds (the default when absent).
    public var staleAfterMilliseconds: Int64 { Self.milliseconds(staleAfter ?? Self.defaultStaleAfter) ?? 3 * 86_400_000 }

    /// `N` followed by `s`, `m`, `h` or `d` (N ≥ 1) in milliseconds; nil for anything else.
    public static func milliseconds(_ text: String) -> Int64? {
        guard let unit = text.last, let n = Int64(text.dropLast()), n > 0 else { return nil }
        let scale: Int64
        switch unit {
        case "s": scale = 1_000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        case "d": scale = 86_400_000
        default: return nil
        }
        let (ms, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow ? nil : ms
    }

    enum CodingKeys: String, CodingKey {
        case version, office, letterCode, nodeID, listen, peers, store, metrics
        case registerYear = "register_year"
        case spaceClearance = "space_clearance"
        case maxPendingHandshakes = "max_pending_handshakes"
        case maxPendingHandshakesPerAddress = "max_pending_handshakes_per_address"
        case staleAfter = "stale_after"
    }

    public static let currentVersion = 1
    public static let defaultListen = "0.0.0.0:7420"

    public init(office: String, letterCode: String?, nodeID: String, listen: String = defaultListen, peers: [Peer] = []) {
        self.version = Self.currentVersion
        self.office = office
        self.letterCode = letterCode
        self.nodeID = nodeID
        self.listen = listen
        self.peers = peers
    }

    /// Pretty JSON with sorted keys, ending with a newline.
    public func encoded() -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = (try? enc.encode(self)) ?? Data()
        data.append(0x0A)
        return data
    }

    /// Parses `data` read from `path`; errors name the file and the field or line at fault.
    public static func decode(_ data: Data, path: String) throws(NodeError) -> NodeConfig {
        func fail(_ what: String) -> NodeError {
            NodeError(.badConfig, "\(path) is not a valid saraban config: \(what); fix the file by hand or restore it")
        }
        let config: NodeConfig
        do {
            config = try JSONDecoder().decode(NodeConfig.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw fail("missing field \"\(fieldPath(ctx.codingPath + [key]))\"")
        } catch let DecodingError.typeMismatch(type, ctx) {
            throw fail("field \"\(fieldPath(ctx.codingPath))\" should be \(typeName(type))")
        } catch let DecodingError.valueNotFound(type, ctx) {
            throw fail("field \"\(fieldPath(ctx.codingPath))\" is null, expected \(typeName(type))")
        } catch let DecodingError.dataCorrupted(ctx) {
            var underlying = ctx.underlyingError.map { "\($0)" } ?? ""
            if underlying.isEmpty {
                // JSONDecoder on Linux drops the position; JSONSerialization reports the byte offset.
                do { _ = try JSONSerialization.jsonObject(with: data) } catch {
                    underlying = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? "\(error)"
                }
            }
            throw fail("\(lineInfo(underlying, data: data) ?? ctx.debugDescription)")
        } catch {
            throw fail("\(error)")
        }
        guard config.version <= currentVersion else {
            throw NodeError(
                .badConfig, "\(path) has format version \(config.version), newer than this build's: upgrade saraban")
        }
        guard !config.office.isEmpty else { throw fail("field \"office\" is empty") }
        if let t = config.staleAfter, milliseconds(t) == nil {
            throw fail("field \"stale_after\" is \(t.debugDescription); give a number and a unit (s, m, h or d), for example \"3d\"")
        }
        return config
    }

    private static func fieldPath(_ path: [any CodingKey]) -> String {
        path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            .replacingOccurrences(of: ".[", with: "[")
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "a number"
        case is [Peer].Type: return "a list"
        default: return "\(type)"
        }
    }

    /// Foundation's JSON errors mention "line N, column M" or a byte offset; keep the line.
    private static func lineInfo(_ underlying: String, data: Data) -> String? {
        if let r = underlying.range(of: #"line \d+, column \d+"#, options: .regularExpression) {
            return "syntax error at \(underlying[r])"
        }
        if let r = underlying.range(of: #"(?<=offset )\d+|(?<=character )\d+"#, options: .regularExpression),
            let offset = Int(underlying[r])
        {
            let before = data.prefix(offset)
            let line = before.filter { $0 == 0x0A }.count + 1
            let column = offset - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
            return "syntax error at line \(line), column \(column)"
        }
        return underlying.isEmpty ? nil : "syntax error: \(underlying)"
    }
}
