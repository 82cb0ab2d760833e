import SarabanCore
import SarabanCrypto

/// Names one epoch key without revealing it: the first 8 bytes of its commitment
/// (``KeyCommitment``), or, for a space made before keys had commitments, its legacy epoch.
public enum KeyRef: Hashable, Comparable, Sendable, CustomStringConvertible {
    case committed(UInt64)
    case legacy(UInt32)

    public var description: String {
        switch self {
        case .committed(let v): Hex.encode((0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) })
        case .legacy(let e): "legacy-\(e)"
        }
    }

    public init?(parsing text: Substring) {
        if text.hasPrefix("legacy-"), let e = UInt32(text.dropFirst(7)) {
            self = .legacy(e)
        } else if text.utf8.count == 16, let b = Hex.decode(String(text)) {
            self = .committed(b.reduce(0) { $0 << 8 | UInt64($1) })
        } else {
            return nil
        }
    }
}

/// A commitment to an epoch key, published in the rekey that makes it: every member checks the
/// key it opens from its box against it, so an admin cannot give members different keys for one
/// epoch unnoticed, and a key id names the key without revealing it.
public enum KeyCommitment {
    static let context = Array("saraban/key-commitment/1".utf8)

    /// BLAKE2b-256 of a fixed context and the key.
    public static func commit(_ key: SymmetricKey) -> [UInt8] {
        key.secret.withUnsafeBytes { k in try! BLAKE2b.hash(context + Array(k), outputLength: 32) }
    }

    public static func ref(_ commitment: [UInt8]) -> KeyRef {
        .committed(commitment.prefix(8).reduce(0) { $0 << 8 | UInt64($1) })
    }

    public static func ref(of key: SymmetricKey) -> KeyRef { ref(commit(key)) }
}

/// The fixed, public key of a space's control envelopes (epoch ``ControlEntry/publicEpoch``):
/// anyone can open them, a relay included, so every node folds the same membership log; they are
/// still signed and chained like every envelope. They carry only what a relay may know (member
/// and relay node ids, admins, epochs, key commitments, keys sealed to each member).
public enum ControlKey {
    public static func key(for space: SpaceID) -> SymmetricKey {
        let h = try! BLAKE2b.hash(Array("saraban/control-key/1".utf8) + space.bytes, outputLength: 32)
        return try! SymmetricKey(SecureBytes(h))
    }
}

/// The id of a space made with a genesis entry binds the space to its creator:
/// BLAKE2b-128(context ‖ creator key ‖ 16-byte salt). A relay that has never seen the space can
/// then tell the creator's genesis from anyone else's.
public enum SpaceBinding {
    public static func spaceID(creator: SigningPublicKey, salt: [UInt8]) -> SpaceID {
        let h = try! BLAKE2b.hash(Array("saraban/space-id/1".utf8) + creator.rawRepresentation + salt, outputLength: 16)
        return SpaceID(bytes: h)!
    }
}

/// One line of a space's membership log (the list `log` of its membership document). A change
/// that appends control entries is a *control change*: it is sealed in a public control envelope,
/// and it is valid only if ``Roster`` finds its author was an admin in its causal past and its
/// entries follow the rules there. Text form, one entry per line, space-separated:
///
/// | entry | meaning |
/// |---|---|
/// | `genesis NODE COMMIT SALT` | the space's first entry: NODE (the author) is its creator and first admin; COMMIT is the epoch-0 key's commitment; SALT binds the space id (``SpaceBinding``) |
/// | `genesis-legacy NODE EPOCH` | the first entry of a space made before this log existed: NODE (the creator, who writes it) is its first admin; epochs 0…EPOCH keep their keys without commitments |
/// | `add NODE ROLE KEYS` | NODE joins as `member` or `admin`; KEYS (comma-separated ``KeyRef``s, or `-`) are the epoch keys its invitation carried |
/// | `former NODE KEYS` | only in a legacy genesis: NODE was removed before the log existed and keeps the legacy epochs KEYS |
/// | `remove NODE` | NODE leaves; only in a change that also rekeys |
/// | `role NODE ROLE` | makes a member an admin or an admin a member |
/// | `rekey EPOCH PARENT COMMIT` | a new key for EPOCH, the next after PARENT (the key of the epoch before it), committed to by COMMIT |
/// | `key EPOCH NODE BOX` | the rekey's key sealed to NODE (one per remaining member, only with the rekey) |
/// | `share KEY NODE BOX` | an existing key KEY sealed to NODE (a member that lacks it) |
/// | `relay + NODE` / `relay - NODE` | designates (or drops) NODE as a relay of the space |
public enum ControlEntry: Hashable, Sendable {
    case genesis(creator: NodeID, commitment: [UInt8], salt: [UInt8])
    case genesisLegacy(creator: NodeID, epoch: UInt32)
    case add(NodeID, admin: Bool, keys: [KeyRef])
    /// Only in a legacy genesis: a node removed before the log existed, which keeps the right to
    /// the legacy epochs it held (its old envelopes stay valid) without being a member.
    case former(NodeID, keys: [KeyRef])
    case remove(NodeID)
    case role(NodeID, admin: Bool)
    case rekey(epoch: UInt32, parent: KeyRef, commitment: [UInt8])
    case key(epoch: UInt32, NodeID, box: [UInt8])
    case share(KeyRef, NodeID, box: [UInt8])
    case relay(NodeID, add: Bool)

    /// The reserved epoch of control envelopes (sealed with ``ControlKey``).
    public static let publicEpoch = UInt32.max
    /// The membership document's list that holds the log.
    public static let field = "log"

    public var text: String {
        switch self {
        case .genesis(let n, let c, let s): "genesis \(n.text) \(Hex.encode(c)) \(Hex.encode(s))"
        case .genesisLegacy(let n, let e): "genesis-legacy \(n.text) \(e)"
        case .add(let n, let admin, let keys):
            "add \(n.text) \(admin ? "admin" : "member") \(keys.isEmpty ? "-" : keys.map(\.description).joined(separator: ","))"
        case .former(let n, let keys): "former \(n.text) \(keys.isEmpty ? "-" : keys.map(\.description).joined(separator: ","))"
        case .remove(let n): "remove \(n.text)"
        case .role(let n, let admin): "role \(n.text) \(admin ? "admin" : "member")"
        case .rekey(let e, let p, let c): "rekey \(e) \(p) \(Hex.encode(c))"
        case .key(let e, let n, let b): "key \(e) \(n.text) \(Hex.encode(b))"
        case .share(let k, let n, let b): "share \(k) \(n.text) \(Hex.encode(b))"
        case .relay(let n, let add): "relay \(add ? "+" : "-") \(n.text)"
        }
    }

    /// Parses one entry; nil for anything malformed (a change holding one is refused).
    public init?(parsing text: String) {
        let t = text.split(separator: " ", omittingEmptySubsequences: false)
        func node(_ i: Int) -> NodeID? { i < t.count ? try? NodeID(parsing: String(t[i])) : nil }
        func hex(_ i: Int, _ count: Int? = nil) -> [UInt8]? {
            guard i < t.count, let b = Hex.decode(String(t[i])), count.map({ b.count == $0 }) ?? !b.isEmpty else { return nil }
            return b
        }
        func role(_ i: Int) -> Bool? { i < t.count ? (t[i] == "admin" ? true : t[i] == "member" ? false : nil) : nil }
        guard let verb = t.first else { return nil }
        switch verb {
        case "genesis":
            guard t.count == 4, let n = node(1), let c = hex(2, 32), let s = hex(3, 16) else { return nil }
            self = .genesis(creator: n, commitment: c, salt: s)
        case "genesis-legacy":
            guard t.count == 3, let n = node(1), let e = UInt32(t[2]) else { return nil }
            self = .genesisLegacy(creator: n, epoch: e)
        case "add":
            guard t.count == 4, let n = node(1), let admin = role(2) else { return nil }
            var keys: [KeyRef] = []
            if t[3] != "-" {
                for part in t[3].split(separator: ",", omittingEmptySubsequences: false) {
                    guard let k = KeyRef(parsing: part) else { return nil }
                    keys.append(k)
                }
            }
            self = .add(n, admin: admin, keys: keys)
        case "former":
            guard t.count == 3, let n = node(1) else { return nil }
            var keys: [KeyRef] = []
            if t[2] != "-" {
                for part in t[2].split(separator: ",", omittingEmptySubsequences: false) {
                    guard let k = KeyRef(parsing: part) else { return nil }
                    keys.append(k)
                }
            }
            self = .former(n, keys: keys)
        case "remove":
            guard t.count == 2, let n = node(1) else { return nil }
            self = .remove(n)
        case "role":
            guard t.count == 3, let n = node(1), let admin = role(2) else { return nil }
            self = .role(n, admin: admin)
        case "rekey":
            guard t.count == 4, let e = UInt32(t[1]), e < Self.publicEpoch, let p = KeyRef(parsing: t[2]), let c = hex(3, 32)
            else { return nil }
            self = .rekey(epoch: e, parent: p, commitment: c)
        case "key":
            guard t.count == 4, let e = UInt32(t[1]), let n = node(2), let b = hex(3) else { return nil }
            self = .key(epoch: e, n, box: b)
        case "share":
            guard t.count == 4, let k = KeyRef(parsing: t[1]), let n = node(2), let b = hex(3) else { return nil }
            self = .share(k, n, box: b)
        case "relay":
            guard t.count == 3, t[1] == "+" || t[1] == "-", let n = node(2) else { return nil }
            self = .relay(n, add: t[1] == "+")
        default:
            return nil
        }
    }
}
