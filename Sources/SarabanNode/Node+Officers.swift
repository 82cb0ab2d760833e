import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
import SarabanSync
#if canImport(Glibc)
import Glibc
#endif

/// Officers' keys and signatures, and encrypted attachments.
///
/// An officer's Ed25519 key lives in `officers/<id>.key` (mode 0600, sealed under the officer's
/// passphrase: ``OfficerKeyFile``) and its certificate in `officers/<id>.json`: the node's signature over
/// ``Node/certificateMessage(officerKey:name:position:)``. Signing a letter appends a
/// ``SignatureRecord`` (the signed field values, attachment hashes, the signature and the
/// certificate) to the letter's `ลายมือชื่อ` list, so any node verifies it after sync.
extension Node {
    // MARK: - Officers

    var officersDirectory: String { dataDirectory.path + "/officers" }

    static func officerFileStem(_ name: String) -> String {
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
    public func addOfficer(
        name: String, position: String, passphrase: SecureBytes, protection: Argon2id.Parameters = .moderate
    ) throws(NodeError) -> Officer {
        try OfficerKeyFile.checkNew(passphrase)
        let name = name.trimmingCharacters(in: .whitespaces)
        let position = position.trimmingCharacters(in: .whitespaces)
        guard !name.isEmpty else { throw NodeError(.invalidArgument, "ต้องระบุชื่อ / the officer's name is empty") }
        guard !position.isEmpty else { throw NodeError(.invalidArgument, "ต้องระบุตำแหน่ง / --position is empty") }
        let fm = FileManager.default
        if !fm.fileExists(atPath: officersDirectory) {
            guard mkdir(officersDirectory, 0o700) == 0 || errno == EEXIST else {
                throw NodeError(.io, "cannot create \(officersDirectory): \(String(cString: strerror(errno)))")
            }
        }
        let stem = officersDirectory + "/" + Self.officerFileStem(name)
        let pair = SigningKeyPair.generate()
        do {
            try Node.writeNew(
                Data(try OfficerKeyFile.seal(pair, passphrase: passphrase, parameters: protection)), to: stem + ".key",
                mode: 0o600)
        } catch where error.code == .alreadyInitialized {
            throw NodeError(.alreadyInitialized, "มีเจ้าหน้าที่ชื่อ \(name) แล้ว / an officer named \(name) already exists")
        }
        let pk = Hex.encode(pair.publicKey.rawRepresentation)
        let cert = identity.sign(Self.certificateMessage(officerKey: pk, name: name, position: position))
        let officer = Officer(
            name: name, position: position, publicKey: pk, nodeKey: Hex.encode(identity.publicKey.rawRepresentation),
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
    public func officers() throws(NodeError) -> [Officer] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: officersDirectory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { n in
            FileManager.default.contents(atPath: officersDirectory + "/" + n).flatMap {
                try? JSONDecoder().decode(Officer.self, from: $0)
            }
        }.sorted { $0.name < $1.name }
    }

    /// The officer's certificate and key, opened with `passphrase`. A plain key written before
    /// passphrases opens without one; given one, it is sealed under it (unless `sealPlain` is false).
    func officerKey(
        _ name: String, passphrase: SecureBytes? = nil, sealPlain: Bool = true
    ) throws(NodeError) -> (Officer, SigningKeyPair) {
        let (officer, stem) = try officerCertificate(name)
        let pair = try OfficerKeyFile.unlock(stem + ".key", passphrase: passphrase, officer: officer.name)
        guard Hex.encode(pair.publicKey.rawRepresentation) == officer.publicKey else {
            throw NodeError(.corruptKey, "the key and certificate of officer \(name) do not match; restore \(stem).key")
        }
        if sealPlain, let passphrase { try sealPlainOfficerKey(pair, passphrase: passphrase, path: stem + ".key") }
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
    public func signLetter(_ id: DocID, officer name: String, passphrase: SecureBytes? = nil) throws(NodeError) -> SignatureRecord {
        let (officer, pair) = try officerKey(name, passphrase: passphrase)
        let v0 = try letter(id)
        if v0.status == .cancelled { throw NodeError(.refused, "หนังสือถูกยกเลิกแล้ว / the letter is cancelled") }
        let nodeKey = Hex.encode(identity.publicKey.rawRepresentation)
        let t = now()
        return try editLetterDocument(id) { tx, docs throws -> SignatureRecord in
            if v0.fields[LetterField.signer.rawValue] == nil {
                try tx.set(id, field: LetterField.signer.rawValue, value: .string(officer.name), in: &docs)
            }
            if v0.fields[LetterField.position.rawValue] == nil {
                try tx.set(id, field: LetterField.position.rawValue, value: .string(officer.position), in: &docs)
            }
            let doc = try docs.withDocument(id) { $0 }
            guard let doc, let v = Self.letterView(doc) else { throw NodeError(.unknownDocument, "\(id) is not a letter") }
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
    public func verifyLetter(_ id: DocID) throws(NodeError) -> [SignatureCheck] {
        let d = try document(id)
        guard let v = Self.letterView(d) else { throw NodeError(.unknownDocument, "\(id) is not a letter") }
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
        let v = try letter(id)
        guard let s = v.stamp else { return nil }
        let key = try? NodeID(parsing: s.node)
        let signatureValid = key.map { $0.publicKey.isValidSignature(s.signature, for: s.signedBytes) } ?? false
        let byOrigin = v.origin.map { $0.node == s.node } ?? true
        var mismatched: [String] = []
        if v.fields[LetterField.number.rawValue] != s.letterNumber { mismatched.append(LetterField.number.rawValue) }
        if v.fields[LetterField.date.rawValue] != s.date { mismatched.append(LetterField.date.rawValue) }
        let fixed = v.status != .draft && v.status != .registered
        let contentChanged = fixed && Self.contentHash(v) != s.contentHash
        return StampCheck(
            registeredBy: s.node, office: s.office, letterNumber: s.letterNumber, date: s.date,
            signatureValid: signatureValid && byOrigin, mismatchedFields: mismatched, contentChanged: contentChanged)
    }

    // MARK: - Attachments

    /// Chunk size of encrypted attachments.
    public static let attachmentChunkSize = 256 * 1024

    var attachmentsDirectory: String { dataDirectory.path + "/attachments" }

    /// The node-local attachment key (`attachment.key`, 32 random bytes, 0600), created once.
    func localAttachmentKey() throws(NodeError) -> SymmetricKey {
        let path = dataDirectory.path + "/attachment.key"
        if let data = FileManager.default.contents(atPath: path) {
            do { return try SymmetricKey(SecureBytes([UInt8](data))) } catch {
                throw NodeError(.corruptKey, "\(path) is damaged (\(error.message)); restore it from a backup")
            }
        }
        let key = SymmetricKey.generate()
        do {
            try Node.writeNew(Data(key.secret.copyBytes()), to: path, mode: 0o600)
        } catch where error.code == .alreadyInitialized {
            return try localAttachmentKey()
        }
        return key
    }

    /// The key for attachments of letter `id`: the current key of its space when it has one,
    /// else the node-local key. Returns the key and its reference as stored in the letter.
    func attachmentKey(for id: DocID) throws(NodeError) -> (SymmetricKey, String) {
        if let s = try? store.space(ofDocument: id), let k = try? store.sealingKey(s) {
            return (k.key, "space:\(s.hex):\(k.ref)")
        }
        return (try localAttachmentKey(), "node")
    }

    func key(forReference ref: String) throws(NodeError) -> SymmetricKey {
        if ref == "node" { return try localAttachmentKey() }
        let p = ref.split(separator: ":")
        // dispatch:SPACE:DOC: the key of the dispatch DOC, from this node's box.
        if p.count == 3, p[0] == "dispatch", let d = DocID(String(p[2])) {
            return try correspondence.dispatchKey(try document(d))
        }
        // space:HEX:REF (a key reference), or space:HEX:EPOCH as written before keys had references.
        if p.count == 3, p[0] == "space", let b = Hex.decode(String(p[1])), let s = SpaceID(bytes: b),
            let ring = try? store.spaceKeys(s),
            let k = KeyRef(parsing: p[2]).flatMap({ ring[$0] }) ?? UInt32(p[2]).flatMap({ ring[.legacy($0)] })
        {
            return k.key
        }
        throw NodeError(.unknownDocument, "the key \(ref) of this attachment is not on this node")
    }

    static func chunkAD(hash: [UInt8], index: Int, count: Int) -> [UInt8] {
        Array("SRBN-ATTACHMENT-V1".utf8) + hash + [UInt8(index >> 24 & 0xff), UInt8(index >> 16 & 0xff),
            UInt8(index >> 8 & 0xff), UInt8(index & 0xff), UInt8(count >> 24 & 0xff), UInt8(count >> 16 & 0xff),
            UInt8(count >> 8 & 0xff), UInt8(count & 0xff)]
    }

    /// Stores `file` encrypted in 256 KiB chunks and lists `hash, name, size, chunks, key, root`
    /// on the letter. The chunks go to `attachments/<root>/<i>` with their manifest
    /// (`attachments/<root>/manifest`, see Node+Attachments.swift), so sync can move them blind.
    /// The same content attached twice to one letter is listed and stored once.
    @discardableResult
    public func attach(_ id: DocID, file path: String, name: String? = nil, allowReceived: Bool = false) throws(NodeError)
        -> AttachmentRef
    {
        let v = try letter(id)
        if !allowReceived && (v.origin != nil || v.receiveEntry != nil) {
            throw NodeError(
                .refused, "หนังสือรับแนบไฟล์เพิ่มไม่ได้ / a received letter keeps the attachments it came with; attach to a new letter")
        }
        if v.status == .sent || v.status == .circulating {
            throw NodeError(
                .refused, "หนังสือส่งแล้ว แนบไฟล์เพิ่มไม่ได้ / the letter was sent as it is; attach the file to a new letter")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError(.invalidArgument, "cannot read \(path): no such file or permission denied")
        }
        let bytes = [UInt8](data)
        let hash: [UInt8]
        do { hash = try BLAKE2b.hash(bytes, outputLength: 32) } catch { throw NodeError(.io, "\(error)") }
        let hex = Hex.encode(hash)
        if let existing = v.attachments.first(where: { $0.hash == hex }) { return existing }
        let (key, ref) = try attachmentKey(for: id)
        let space = try? store.space(ofDocument: id)
        let (root, count) = try storeSealedAttachment(bytes, hash: hash, key: key, space: space)
        let ref_ = AttachmentRef(
            hash: hex, name: name ?? (path as NSString).lastPathComponent, size: bytes.count, chunks: count, key: ref,
            root: root)
        let value = [ref_.hash, ref_.name, String(ref_.size), String(ref_.chunks), ref_.key, ref_.root].map(escapeTab)
            .joined(separator: "\t")
        try editLetterDocument(id) { tx, docs in
            try tx.append(id, field: LetterDocument.attachments, value: value, in: &docs)
        }
        return ref_
    }

    /// Seals `bytes` (whose BLAKE2b-256 is `hash`) under `key` in 256 KiB chunks, stores them and
    /// their manifest (of `space`: nil for node-local) and returns the attachment's root (hex) and
    /// chunk count.
    func storeSealedAttachment(_ bytes: [UInt8], hash: [UInt8], key: SymmetricKey, space: SpaceID?) throws(NodeError)
        -> (root: String, chunks: Int)
    {
        let count = max(1, (bytes.count + Self.attachmentChunkSize - 1) / Self.attachmentChunkSize)
        var sealedChunks: [[UInt8]] = []
        sealedChunks.reserveCapacity(count)
        for i in 0..<count {
            let lo = i * Self.attachmentChunkSize
            let chunk = Array(bytes[lo..<min(bytes.count, lo + Self.attachmentChunkSize)])
            let nonce = random(XChaCha20Poly1305.nonceByteCount)
            do {
                sealedChunks.append(
                    nonce
                        + (try XChaCha20Poly1305.seal(
                            chunk, key: key, nonce: nonce, associatedData: Self.chunkAD(hash: hash, index: i, count: count))))
            } catch { throw NodeError(.io, "\(error)") }
        }
        let manifest = AttachmentManifest(space: space, hashes: try sealedChunks.map(Self.chunkHash))
        try storeManifest(manifest)
        for (i, c) in sealedChunks.enumerated() { try storeChunk(c, index: i, of: manifest) }
        // On disk before the letter names them (the caller's edit, which peers may fetch them for).
        let dir = attachmentDirectory(root: manifest.rootHex)
        try Self.syncToDisk(
            (0..<count).map { dir + "/\($0)" } + [dir + "/manifest", dir, attachmentsDirectory, dataDirectory.path])
        return (manifest.rootHex, count)
    }

    /// The directory holding an attachment's chunks: `attachments/<root>` (`attachments/<hash>`
    /// for refs written before roots existed).
    public func attachmentDirectory(_ a: AttachmentRef) -> String {
        attachmentDirectory(root: a.root.isEmpty ? a.hash : a.root)
    }

    /// Which chunks of an attachment are held here (`saraban letter fetch` gets the rest).
    public func attachmentChunksPresent(_ a: AttachmentRef) -> [Int] {
        chunkIndices(in: attachmentDirectory(a), count: a.chunks, held: true)
    }

    /// Decrypts an attachment and checks its hash.
    public func readAttachment(_ a: AttachmentRef) throws(NodeError) -> [UInt8] {
        guard let hash = Hex.decode(a.hash) else { throw NodeError(.invalidArgument, "bad attachment hash \(a.hash)") }
        let key = try key(forReference: a.key)
        var out: [UInt8] = []
        out.reserveCapacity(a.size)
        let dir = attachmentDirectory(a)
        for i in 0..<a.chunks {
            let p = dir + "/\(i)"
            guard let d = FileManager.default.contents(atPath: p) else {
                throw NodeError(
                    .unknownDocument,
                    "chunk \(i + 1) of \(a.chunks) of \(a.name) is not on this node yet; "
                        + "fetch it with `saraban letter fetch LETTER \(a.hash.prefix(12))`")
            }
            out += try Self.openChunk([UInt8](d), key: key, hash: hash, index: i, count: a.chunks, name: a.name)
        }
        guard (try? BLAKE2b.hash(out, outputLength: 32)) == hash, out.count == a.size else {
            throw NodeError(.invalidFile, "\(a.name) does not match its hash \(a.hash)")
        }
        return out
    }

    /// Authenticated decryption of one stored chunk (nonce ‖ ciphertext).
    static func openChunk(
        _ b: [UInt8], key: SymmetricKey, hash: [UInt8], index i: Int, count: Int, name: String
    ) throws(NodeError) -> [UInt8] {
        guard b.count >= XChaCha20Poly1305.nonceByteCount else { throw NodeError(.invalidFile, "chunk \(i) of \(name) is truncated") }
        do {
            return try XChaCha20Poly1305.open(
                Array(b[XChaCha20Poly1305.nonceByteCount...]), key: key,
                nonce: Array(b[..<XChaCha20Poly1305.nonceByteCount]),
                associatedData: chunkAD(hash: hash, index: i, count: count))
        } catch {
            throw NodeError(.invalidFile, "chunk \(i) of \(name) is damaged or was modified: \(error.message)")
        }
    }
}
