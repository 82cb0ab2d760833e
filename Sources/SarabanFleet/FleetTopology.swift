import SarabanCore
import SarabanCrypto
import SarabanSync

/// Who shares which space in a fleet: N offices in a ring, space j held by the `spaceSize`
/// offices j, j+1, …, j+spaceSize−1 (mod N). Each office is in `spaceSize` spaces and each letter
/// reaches `spaceSize − 1` other offices (2: a correspondence between neighbours). Keys and space
/// ids are derived from `seed`, so a run is replayed with the same seed.
public struct FleetTopology: Sendable {
    public let offices: Int
    public let spaceSize: Int
    public let seed: UInt64

    public init(offices: Int, spaceSize: Int = 2, seed: UInt64) throws {
        guard offices >= 2 else { throw FleetError("a fleet needs at least 2 offices") }
        guard (2...offices).contains(spaceSize) else { throw FleetError("--space-size must be between 2 and the number of offices") }
        self.offices = offices
        self.spaceSize = spaceSize
        self.seed = seed
    }

    /// As many spaces as offices (a ring), unless there are only as many offices as a space holds.
    public var spaceCount: Int { spaceSize == offices ? 1 : offices }

    public func space(_ j: Int) -> SpaceID { SpaceID(hi: 0x5342_464C_4545_5400 ^ (seed & 0xFFFF), lo: UInt64(j)) }

    public func members(of j: Int) -> [Int] { (0..<spaceSize).map { (j + $0) % offices } }

    /// The spaces office `i` is a member of (indices).
    public func spaces(of i: Int) -> [Int] {
        spaceCount == 1 ? [0] : (0..<spaceSize).map { (i - $0 + offices) % offices }
    }

    /// Every space with its members' node ids (what a relay carries, each for its members).
    public var spacesWithMembers: [(space: SpaceID, members: [NodeID])] {
        (0..<spaceCount).map { j in (space(j), members(of: j).map { identity(of: $0).publicKey.nodeID }) }
    }

    public func key(of j: Int) -> SymmetricKey {
        try! SymmetricKey(SecureBytes(bytes(0x4B45_5900 ^ UInt64(j))))
    }

    public func identity(of i: Int) -> SigningKeyPair {
        try! SigningKeyPair(seed: SecureBytes(bytes(0x4F46_4649_4345_0000 ^ UInt64(i))))
    }

    private func bytes(_ salt: UInt64) -> [UInt8] {
        var rng = SplitMix64(seed: seed ^ (salt &* 0x9E37_79B9_7F4A_7C15))
        var out: [UInt8] = []
        for _ in 0..<4 {
            let x = rng.next()
            for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: x >> (8 * UInt64(k)))) }
        }
        return out
    }

    /// The offices, each with its identity and its spaces' keys, reporting into `ledger`
    /// (`keepsAcknowledged`: see ``FleetOffice/keepsAcknowledged``).
    public func makeOffices(ledger: FleetLedger, bodyBytes: Int, keepsAcknowledged: Bool = false) -> [FleetOffice] {
        (0..<offices).map { i in
            var keys: [SpaceID: SymmetricKey] = [:]
            for j in spaces(of: i) { keys[space(j)] = key(of: j) }
            return FleetOffice(
                index: i, identity: identity(of: i), spaces: keys, ledger: ledger, bodyBytes: bodyBytes,
                keepsAcknowledged: keepsAcknowledged)
        }
    }

    /// Checks the invariant: every office holds, in every space it belongs to, exactly every
    /// member's feed (nothing lost), and no office was handed an envelope twice or out of order.
    /// Returns the problems found (empty: the invariant holds).
    public func check(_ offices: [FleetOffice], ledger: FleetLedger) -> [String] {
        var problems: [String] = []
        for j in 0..<spaceCount {
            let s = space(j)
            let members = members(of: j)
            var heads = FeedVector()
            for m in members {
                let key = offices[m].identity.publicKey
                _ = heads.raise(key, to: offices[m].vector(of: s)?[key] ?? 0)
            }
            for m in members where offices[m].vector(of: s) != heads {
                let v = offices[m].vector(of: s) ?? FeedVector()
                problems.append(
                    "office \(m) holds \(v.total) of the \(heads.total) letters written in space \(j) (lacks \(heads.changesMissing(from: v)))")
                if problems.count > 20 { return problems }
            }
        }
        if ledger.outOfOrder > 0 { problems.append("\(ledger.outOfOrder) envelopes reached an office out of order") }
        if ledger.unreadable > 0 { problems.append("\(ledger.unreadable) envelopes did not open or held no letter") }
        return problems
    }
}
