import Foundation
import SarabanCore
import SarabanCrypto
import SarabanSync

/// An invitation to a space: everything a new member needs to join, signed by the inviter, with
/// the space's epoch keys sealed (`crypto_box_seal`) to the invitee's identity so that only the
/// invitee can open them.
///
/// Text form: `sbinvite2:` followed by the base64 of
/// `magic "SRBNINV2" ‖ space (16) ‖ name ‖ document ‖ inviter (32) ‖ invitee (32) ‖ epoch (u32)
///  ‖ member count ‖ (member key (32) ‖ office)* ‖ sealed keys ‖ signature (64)`,
/// strings and the sealed box length-prefixed (LEB128); the sealed plaintext is
/// `count ‖ (epoch ‖ kind (u8: 0 a legacy key, 1 a key with a commitment) ‖ key (32))*`. The
/// signature (by the inviter) covers everything before it. Version 1 (`sbinvite1:`, "SRBNINV1",
/// no kind byte: every key legacy) is still read.
/// For a cleared space an extension follows the sealed keys (before the signature): the space's
/// secrecy class (string) ‖ relay count ‖ designated relay keys (32 each), so the new member
/// routes the space correctly before its membership document arrives (Node+Clearance.swift).
public struct Invitation: Sendable {
    public static let prefix = "sbinvite2:"
    static let magic = Array("SRBNINV2".utf8)
    static let prefix1 = "sbinvite1:"
    static let magic1 = Array("SRBNINV1".utf8)
    /// 1 or 2 (see the text form).
    var version = 2

    public var space: SpaceID
    public var name: String
    public var document: DocID
    public var inviter: SigningPublicKey
    public var invitee: SigningPublicKey
    public var epoch: UInt32
    public var members: [(key: SigningPublicKey, office: String)]
    /// The space's secrecy class when the inviter declared one ("" otherwise).
    public var clearance: String = ""
    /// The relays designated to carry the space.
    public var relays: [SigningPublicKey] = []
    var sealedKeys: [UInt8]
    var signature: [UInt8]

    /// Seals `keys` to `invitee` and signs with `inviter`.
    static func make(
        space: SpaceID, name: String, document: DocID, inviter: SigningKeyPair, invitee: SigningPublicKey,
        epoch: UInt32, members: [(key: SigningPublicKey, office: String)], keys: [KeyRef: (epoch: UInt32, key: SymmetricKey)],
        clearance: String = "", relays: [SigningPublicKey] = []
    ) throws(CryptoError) -> Invitation {
        var w = BinaryWriter()
        w.varint(keys.count)
        for (ref, k) in keys.sorted(by: { $0.key < $1.key }) {
            w.varint(UInt64(k.epoch))
            w.byte(ref == .legacy(k.epoch) ? 0 : 1)
            w.raw(k.key.secret.copyBytes())
        }
        var plain = w.bytes
        defer { for i in plain.indices { plain[i] = 0 } }
        var inv = Invitation(
            space: space, name: name, document: document, inviter: inviter.publicKey, invitee: invitee, epoch: epoch,
            members: members, clearance: clearance, relays: relays, sealedKeys: try SealedBox.seal(plain, to: invitee),
            signature: [])
        inv.signature = inviter.sign(inv.signedBytes())
        return inv
    }

    func signedBytes() -> [UInt8] {
        var w = BinaryWriter()
        w.raw(version == 1 ? Self.magic1 : Self.magic)
        w.raw(space.bytes)
        w.string(name)
        w.string(document.description)
        w.raw(inviter.rawRepresentation)
        w.raw(invitee.rawRepresentation)
        w.varint(UInt64(epoch))
        w.varint(members.count)
        for m in members {
            w.raw(m.key.rawRepresentation)
            w.string(m.office)
        }
        w.lengthPrefixed(sealedKeys)
        if !clearance.isEmpty || !relays.isEmpty {
            w.string(clearance)
            w.varint(relays.count)
            for k in relays { w.raw(k.rawRepresentation) }
        }
        return w.bytes
    }

    /// The text to hand to the invitee (it contains no key in the clear).
    public var text: String {
        (version == 1 ? Self.prefix1 : Self.prefix) + Data(signedBytes() + signature).base64EncodedString()
    }

    /// Parses the text form and checks the inviter's signature.
    public static func parse(_ text: String) throws(NodeError) -> Invitation {
        func bad(_ why: String) -> NodeError {
            NodeError(
                .invalidFile,
                "this is not a valid saraban invitation (\(why)); copy the whole text printed by `saraban space invite` again")
        }
        let t = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let version = t.hasPrefix(prefix1) ? 1 : 2
        guard t.hasPrefix(prefix) || version == 1, let data = Data(base64Encoded: String(t.dropFirst(prefix.count))) else {
            throw bad("it should start with \(prefix) followed by base64")
        }
        let bytes = [UInt8](data)
        guard bytes.count > 64 + magic.count else { throw bad("too short") }
        var r = BinaryReader(Array(bytes.dropLast(64)))
        do {
            func take(_ n: Int) throws(DecodingError) -> [UInt8] {
                var out: [UInt8] = []
                for _ in 0..<n { out.append(try r.byte()) }
                return out
            }
            guard try take(magic.count) == (version == 1 ? magic1 : magic) else { throw bad("wrong magic") }
            guard let space = SpaceID(bytes: try take(16)) else { throw bad("space id") }
            let name = try r.string()
            guard let doc = DocID(try r.string()) else { throw bad("document id") }
            let inviter = try SigningPublicKey(rawRepresentation: try take(32))
            let invitee = try SigningPublicKey(rawRepresentation: try take(32))
            let epoch = try r.varint()
            guard epoch <= UInt64(UInt32.max) else { throw bad("epoch") }
            let n = try r.count(max: r.remaining / 33)
            var members: [(key: SigningPublicKey, office: String)] = []
            for _ in 0..<n { members.append((try SigningPublicKey(rawRepresentation: try take(32)), try r.string())) }
            let sealed = Array(try r.lengthPrefixed())
            var clearance = ""
            var relays: [SigningPublicKey] = []
            if r.remaining > 0 {
                clearance = try r.string()
                let nr = try r.count(max: r.remaining / 32)
                for _ in 0..<nr { relays.append(try SigningPublicKey(rawRepresentation: try take(32))) }
            }
            try r.expectEnd()
            var inv = Invitation(
                space: space, name: name, document: doc, inviter: inviter, invitee: invitee, epoch: UInt32(epoch),
                members: members, clearance: clearance, relays: relays, sealedKeys: sealed, signature: Array(bytes.suffix(64)))
            inv.version = version
            guard inviter.isValidSignature(inv.signature, for: inv.signedBytes()) else {
                throw bad("the inviter's signature does not verify: it was altered")
            }
            return inv
        } catch let e as NodeError {
            throw e
        } catch {
            throw bad("\(error)")
        }
    }

    /// Opens the sealed keys with this node's identity.
    ///
    /// - Throws: ``NodeError/Code/refused`` when the invitation is for another node.
    func openKeys(with identity: SigningKeyPair) throws(NodeError) -> [KeyRef: (epoch: UInt32, key: SymmetricKey)] {
        guard invitee == identity.publicKey else {
            throw NodeError(
                .refused,
                "this invitation is for node \(invitee.nodeID.text), not this node (\(identity.publicKey.nodeID.text)); "
                    + "ask \(inviter.nodeID.text) to run `saraban space invite \(space.hex) \(identity.publicKey.nodeID.text)`")
        }
        var plain: [UInt8]
        do { plain = try SealedBox.open(sealedKeys, with: identity) } catch {
            throw NodeError(.refused, "the invitation's keys do not open with this node's key: \(error.message)")
        }
        defer { for i in plain.indices { plain[i] = 0 } }
        var r = BinaryReader(plain)
        var out: [KeyRef: (epoch: UInt32, key: SymmetricKey)] = [:]
        do {
            let n = try r.count(max: r.remaining / 33)
            for _ in 0..<n {
                let e = UInt32(truncatingIfNeeded: try r.varint())
                let committed = version == 1 ? false : try r.byte() == 1
                var k: [UInt8] = []
                for _ in 0..<32 { k.append(try r.byte()) }
                let key = try SymmetricKey(SecureBytes(k))
                for i in k.indices { k[i] = 0 }
                out[committed ? KeyCommitment.ref(of: key) : .legacy(e)] = (e, key)
            }
        } catch {
            throw NodeError(.invalidFile, "the invitation's sealed keys are damaged; ask for a new invitation")
        }
        return out
    }
}
