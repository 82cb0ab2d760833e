/// The user-facing id of a node, derived from its Ed25519 public key.
///
/// Text form: `sb` followed by the lowercase RFC 4648 base32 (alphabet `a–z2–7`, no padding) of
/// 35 bytes: the 32-byte public key, then the first 3 bytes of BLAKE2b-256(public key) as a checksum.
/// That is 58 characters, for example `sbxxxx…`. Parsing accepts upper case and surrounding
/// whitespace; a mistyped character fails the checksum except with probability 2⁻²⁴.
///
/// ``replicaBytes`` (the first 16 bytes of the public key) is what the CRDT core's `ReplicaID` is built from.
public struct NodeID: Hashable, Sendable, CustomStringConvertible {
    /// The text prefix.
    public static let prefix = "sb"
    static let checksumLength = 3
    static let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
    /// Length of ``text``: 2 + 56.
    public static let textLength = 2 + (32 + 3) * 8 / 5

    /// The Ed25519 public key this id names.
    public let publicKey: SigningPublicKey

    /// The id of the node whose identity key is `publicKey`.
    public init(publicKey: SigningPublicKey) { self.publicKey = publicKey }

    /// The first 16 bytes of the public key: the bytes of the CRDT core's `ReplicaID`.
    public var replicaBytes: [UInt8] { Array(publicKey.rawRepresentation.prefix(16)) }

    /// The text form, for users, logs and config files.
    public var text: String {
        let key = publicKey.rawRepresentation
        return Self.prefix + Self.base32(key + Self.checksum(key))
    }

    public var description: String { text }

    /// Parses the text form.
    ///
    /// - Throws: ``CryptoError/Code/nodeIDMalformed`` for a wrong prefix, length or character;
    ///   ``CryptoError/Code/nodeIDChecksumMismatch`` when everything parses but the checksum
    ///   does not match (a typo).
    public init(parsing text: String) throws(CryptoError) {
        let trimmed = text.utf8.drop { $0 == 0x20 || $0 == 0x09 || $0 == 0x0a || $0 == 0x0d }
        var chars = Array(trimmed)
        while let last = chars.last, last == 0x20 || last == 0x09 || last == 0x0a || last == 0x0d { chars.removeLast() }
        chars = chars.map { (0x41...0x5a).contains($0) ? $0 | 0x20 : $0 }  // ASCII lower-case
        guard chars.count == Self.textLength, chars.starts(with: Self.prefix.utf8) else {
            throw CryptoError(
                .nodeIDMalformed,
                "'\(text)' is not a node id: node ids start with '\(Self.prefix)' and are \(Self.textLength) characters long; copy it again from `saraban id` on that node"
            )
        }
        guard let bytes = Self.base32Decode(chars.dropFirst(2)), bytes.count == 35 else {
            throw CryptoError(
                .nodeIDMalformed,
                "'\(text)' is not a node id: only the letters a–z and digits 2–7 may follow '\(Self.prefix)'; check for a typo (0, 1, 8 and 9 never occur)"
            )
        }
        let key = Array(bytes[0..<32])
        guard Self.checksum(key) == Array(bytes[32..<35]) else {
            throw CryptoError(
                .nodeIDChecksumMismatch,
                "the node id '\(text)' fails its checksum: check for a typo, or copy it again from `saraban id` on that node"
            )
        }
        publicKey = SigningPublicKey(unchecked: key)
    }

    static func checksum(_ key: [UInt8]) -> [UInt8] {
        Array(BLAKE2b.digest(key, outputLength: 32).prefix(checksumLength))
    }

    static func base32(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 8 + 4) / 5)
        var buffer: UInt32 = 0
        var bits = 0
        for b in bytes {
            buffer = buffer << 8 | UInt32(b)
            bits += 8
            while bits >= 5 {
                bits -= 5
                out.append(alphabet[Int((buffer >> UInt32(bits)) & 31)])
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded lowercase base32; nil on a character outside the alphabet or non-zero trailing bits.
    static func base32Decode(_ chars: some Collection<UInt8>) -> [UInt8]? {
        var out = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for c in chars {
            let v: UInt32
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a"))
            case UInt8(ascii: "2")...UInt8(ascii: "7"): v = UInt32(c - UInt8(ascii: "2") + 26)
            default: return nil
            }
            buffer = (buffer << 5 | v) & 0xffff
            bits += 5
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
            }
        }
        guard buffer & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }
}
