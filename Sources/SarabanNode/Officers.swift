import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
#if canImport(Glibc)
import Glibc
#endif

/// The node's officers: their keys, certificates and passphrases, and the signatures they put on
/// letters (`node.officers`).
///
/// An officer's Ed25519 key lives in `officers/<id>.key` (mode 0600, sealed under the officer's
/// passphrase: ``OfficerKeyFile``) and its certificate in `officers/<id>.json`: the node's signature over
/// ``Officers/certificateMessage(officerKey:name:position:)``. Signing a letter appends a
/// ``SignatureRecord`` (the signed field values, attachment hashes, the signature and the
/// certificate) to the letter's `ลายมือชื่อ` list, so any node verifies it after sync.
public struct Officers: Sendable {
    public let node: Node

    public init(_ node: Node) { self.node = node }

    // MARK: - Officers

    var directory: String { node.dataDirectory.path + "/officers" }

    static func fileStem(_ name: String) -> String {
        let h = (try? BLAKE2b.hash(Array(name.utf8), outputLength: 16)) ?? []
        return "officer-" + Hex.encode(h)
    }

    /// What the node signs to certify an officer.
    public static func certificateMessage(officerKey: String, name: String, position: String) -> [UInt8] {
        Array("SARABAN-OFFICER-CERT-V1\n\(officerKey)\n\(escapeTab(name))\n\(escapeTab(position))\n".utf8)
    }

    /// Creates an officer key certified by this node, sealed under `passphrase` (Argon2id with
    /// `protection`, then XChaCha20-Poly1305). Refuses a name already used and a passphrase
    /// shorter than 8 characters.
    @discardableResult
    public func add(
        name: String, position: String, passphrase: SecureBytes, protection: Argon2id.Parameters = .moderate
    ) throws(NodeError) -> Officer {
        try OfficerKeyFile.checkNew(passphrase)
        let name = name.trimmingCharacters(in: .whitespaces)
        let position = position.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty else { throw NodeError(.invalidArgument, "ต้องระบุชื่อ / the officer's name is empty") }
        guard !position.isEmpty else { throw NodeError(.invalidArgument, "ต้องระบุตำแหน่ง / --position is empty") }
        let fm = FileManager.default
        if !fm.fileExists(atPath: directory) {
            guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
                throw NodeError(.io, "cannot create \(directory): \(String(cString: strerror(errno)))")
            }
        }
        let stem = directory + "/" + Self.fileStem(name)
        let pair = SigningKeyPair.generate()
        do {
            try Node.writeNew(
                Data(try OfficerKeyFile.seal(pair, passphrase: passphrase, parameters: protection)), to: stem + ".key",
                mode: 0o600)
        } catch where error.code == .alreadyInitialized {
            throw NodeError(.alreadyInitialized, "มีเจ้าหน้าที่ชื่อ \(name) แล้ว / an officer named \(name) already exists")
        }
        let pk = Hex.encode(pair.publicKey.rawRepresentation)
        let cert = node.identity.sign(Self.certificateMessage(officerKey: pk, name: name, position: position))
        let officer = Officer(
            name: name, position: position, publicKey: pk, nodeKey: Hex.encode(node.identity.publicKey.rawRepresentation),
            certificate: Hex.encode(cert))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            try Node.writeNew((try enc.encode(officer)) + Data("\n".utf8), to: stem + ".json", mode: 0o644)
        } catch let e as NodeError {
            try? fm.removeItem(atPath: stem + ".key")
            throw e
        } catch {
            try? fm.removeItem(atPath: stem + ".key")
            throw NodeError(.io, "\(error)")
        }
        return officer
    }

    /// Every officer of this node.
    public func list() throws(NodeError) -> [Officer] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { n in
            FileManager.default.contents(atPath: directory + "/" + n).flatMap {
                try? JSONDecoder().decode(Officer.self, from: $0)
            }
        }.sorted { $0.name < $1.name }
    }

    /// The officer's certificate and key, opened with `passphrase`. A plain key written before
    /// passphrases opens without one; given one, it is sealed under it (unless `sealPlain` is false).
    func key(
        _ name: String, passphrase: SecureBytes? = nil, sealPlain: Bool = true
    ) throws(NodeError) -> (Officer, SigningKeyPair) {
        let (officer, stem) = try certificate(name)
        let pair = try OfficerKeyFile.unlock(stem + ".key", passphrase: passphrase, officer: officer.name)
        guard Hex.encode(pair.publicKey.rawRepresentation) == officer.publicKey else {
            throw NodeError(.corruptKey, "the key and certificate of officer \(name) do not match; restore \(stem).key")
        }
        if sealPlain, let passphrase { try sealPlainKey(pair, passphrase: passphrase, path: stem + ".key") }
        return (officer, pair)
    }

    // MARK: - Signing

    /// The fields and attachment hashes a signature covers, as the letter holds them now: its
    /// content (``LetterField/content``: ที่, วันที่ and สถานะ are the register's, signed by its stamp).
    static func signedContent(_ v: LetterView) -> (fields: [String: String], attachments: [String]) {
        var f: [String: String] = [:]
        for c in LetterField.content { f[c.rawValue] = v.fields[c.rawValue] }
        return (f, v.attachments.map(\.hash).sorted())
    }

    /// Signs the letter as `officer`: fills ผู้ลงนาม and ตำแหน่ง when empty, then signs the
    /// canonical bytes of its fields and attachment hashes, all in one change. The officer's key
    /// opens with `passphrase` (a wrong one throws `.wrongPassphrase` and signs nothing).
    @discardableResult
    public func sign(_ id: DocID, officer name: String, passphrase: SecureBytes? = nil) throws(NodeError) -> SignatureRecord {
        let (officer, pair) = try key(name, passphrase: passphrase)
        let v0 = try node.letter(id)
        if v0.status == .cancelled { throw NodeError(.refused, "หนังสือถูกยกเลิกแล้ว / the letter is cancelled") }
        let nodeKey = Hex.encode(node.identity.publicKey.rawRepresentation)
        let t = node.now()
        return try node.editLetterDocument(id) { tx, docs throws -> SignatureRecord in
            if v0.fields[LetterField.signer.rawValue] == nil {
                try tx.set(id, field: LetterField.signer.rawValue, value: .string(officer.name), in: &docs)
            }
            if v0.fields[LetterField.position.rawValue] == nil {
                try tx.set(id, field: LetterField.position.rawValue, value: .string(officer.position), in: &docs)
            }
            let doc = try docs.withDocument(id) { $0 }
            guard let doc, let v = Node.letterView(doc) else { throw NodeError(.unknownDocument, "\(id) is not a letter") }
            let (fields, atts) = Self.signedContent(v)
            let bytes = canonicalLetterContent(kind: v.kind, fields: fields, attachmentHashes: atts)
            let rec = SignatureRecord(
                version: 2, officer: officer.name, position: officer.position, officerKey: officer.publicKey,
                nodeKey: nodeKey, certificate: officer.certificate, signature: Hex.encode(pair.sign(bytes)),
                kind: v.kind.rawValue, fields: fields, attachments: atts, time: t)
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let json = String(decoding: try enc.encode(rec), as: UTF8.self)
            try tx.append(id, field: LetterDocument.signatures, value: json, in: &docs)
            return rec
        }
    }

    /// Checks every signature on the letter: the certificate (signed by the node that recorded
    /// the signature), the officer's signature over what was signed, and every field or
    /// attachment changed since.
    public func verify(_ id: DocID) throws(NodeError) -> [SignatureCheck] {
        let d = try node.document(id)
        guard let v = Node.letterView(d) else { throw NodeError(.unknownDocument, "\(id) is not a letter") }
        let currentAtts = v.attachments.map(\.hash).sorted()
        var out: [SignatureCheck] = []
        for e in d.lists[LetterDocument.signatures]?.entries ?? [] {
            guard let s = e.value.string, let rec = try? JSONDecoder().decode(SignatureRecord.self, from: Data(s.utf8)) else {
                out.append(
                    SignatureCheck(
                        officer: "?", position: "", certifiedBy: e.stamp.change.author.short, certificateValid: false,
                        signatureValid: false, changedFields: [], signedAt: e.stamp.time))
                continue
            }
            var certOK = false
            var sigOK = false
            var certifiedBy = e.stamp.change.author.short
            if let nk = Hex.decode(rec.nodeKey), let nodeKey = try? SigningPublicKey(rawRepresentation: nk),
                let ok = Hex.decode(rec.officerKey), let officerKey = try? SigningPublicKey(rawRepresentation: ok),
                let cert = Hex.decode(rec.certificate), let sig = Hex.decode(rec.signature),
                let signed = rec.signedBytes
            {
                certifiedBy = nodeKey.nodeID.text
                // The certificate must come from the node that wrote the signature into the letter;
                // on a letter received by dispatch, from the node that sent it.
                let recorder =
                    v.origin.map { $0.node == nodeKey.nodeID.text }
                    ?? (ReplicaID(bytes: nodeKey.nodeID.replicaBytes) == e.stamp.change.author)
                certOK =
                    recorder
                    && nodeKey.isValidSignature(
                        cert, for: Self.certificateMessage(officerKey: rec.officerKey, name: rec.officer, position: rec.position))
                sigOK = officerKey.isValidSignature(sig, for: signed)
            }
            var changed = rec.changedFields(current: v.fields)
            if rec.kind != v.kind.rawValue { changed.insert(LetterDocument.kindField, at: 0) }
            if rec.attachments.sorted() != currentAtts { changed.append(LetterDocument.attachments) }
            out.append(
                SignatureCheck(
                    officer: rec.officer, position: rec.position, certifiedBy: certifiedBy, certificateValid: certOK,
                    signatureValid: sigOK, changedFields: changed, signedAt: rec.time))
        }
        return out
    }

    /// Checks the registry's stamp on the letter (nil when it has none): signed by the node it
    /// names (on a received letter, the node that sent it), naming the letter's ที่ and วันที่, and
    /// bound to its content: a content change after the stamp counts once the letter was sent
    /// or received (a registered letter is stamped again when it is sent).
    public func verifyStamp(_ id: DocID) throws(NodeError) -> StampCheck? {
        let v = try node.letter(id)
        guard let s = v.stamp else { return nil }
        let key = try? NodeID(parsing: s.node)
        let signatureValid = key.map { $0.publicKey.isValidSignature(s.signature, for: s.signedBytes) } ?? false
        let byOrigin = v.origin.map { $0.node == s.node } ?? true
        var mismatched: [String] = []
        if v.fields[LetterField.number.rawValue] != s.letterNumber { mismatched.append(LetterField.number.rawValue) }
        if v.fields[LetterField.date.rawValue] != s.date { mismatched.append(LetterField.date.rawValue) }
        let fixed = v.status != .draft && v.status != .registered
        let contentChanged = fixed && Node.contentHash(v) != s.contentHash
        return StampCheck(
            registeredBy: s.node, office: s.office, letterNumber: s.letterNumber, date: s.date,
            signatureValid: signatureValid && byOrigin, mismatchedFields: mismatched, contentChanged: contentChanged)
    }


    /// The shortest passphrase accepted for an officer key (characters).
    public static var minimumPassphraseLength: Int { OfficerKeyFile.minimumPassphraseLength }

    func stem(_ name: String) -> String {
        directory + "/" + Self.fileStem(name.trimmingCharacters(in: .whitespaces))
    }

    /// Whether the officer's key is sealed under a passphrase (`false` for a key written before
    /// passphrases: it signs without one until the officer sets one).
    public func hasPassphrase(_ name: String) throws(NodeError) -> Bool {
        let (_, stem) = try certificate(name)
        switch try OfficerKeyFile.inspect(stem + ".key") {
        case .plain: return false
        case .sealed: return true
        }
    }

    /// Sets or changes the officer's passphrase: the key opens with `old` (not needed for a key
    /// that has none yet) and is sealed again under `new`. A wrong `old` throws
    /// `.wrongPassphrase` (exit 77) and changes nothing.
    public func changePassphrase(
        _ name: String, old: SecureBytes?, new: SecureBytes, protection: Argon2id.Parameters = .moderate
    ) throws(NodeError) {
        try OfficerKeyFile.checkNew(new)
        let (officer, pair) = try key(name, passphrase: old, sealPlain: false)
        try Node.replaceFile(
            stem(officer.name) + ".key", with: Data(try OfficerKeyFile.seal(pair, passphrase: new, parameters: protection)),
            mode: 0o600)
        node.logger.notice("officer passphrase changed", metadata: ["officer": "\(officer.name)"])
    }

    /// Seals a plain (version 1) key under `passphrase`; a sealed key is left as it is.
    func sealPlainKey(_ pair: SigningKeyPair, passphrase: SecureBytes, path: String) throws(NodeError) {
        guard case .plain = try OfficerKeyFile.inspect(path) else { return }
        try OfficerKeyFile.checkNew(passphrase)
        try Node.replaceFile(path, with: Data(try OfficerKeyFile.seal(pair, passphrase: passphrase, parameters: .moderate)), mode: 0o600)
        node.logger.notice("officer key sealed under a passphrase", metadata: ["path": "\(path)"])
    }

    /// The officer's certificate (`officers/<stem>.json`).
    func certificate(_ name: String) throws(NodeError) -> (Officer, String) {
        let stem = stem(name)
        guard let data = FileManager.default.contents(atPath: stem + ".json"),
            let officer = try? JSONDecoder().decode(Officer.self, from: data)
        else {
            throw NodeError(
                .unknownDocument,
                "ไม่มีเจ้าหน้าที่ชื่อ \(name) / no officer named \(name) on this node; add one with "
                    + "`saraban officer add NAME --position P` (`saraban officer list` shows them)")
        }
        return (officer, stem)
    }
}

extension Node {
    /// This node's officers and their signatures.
    public var officers: Officers { Officers(self) }
}
