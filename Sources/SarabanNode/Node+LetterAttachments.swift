import Foundation
import SarabanCore
import SarabanCrypto
import SarabanOffice
import SarabanStorage
import SarabanSync
#if canImport(Glibc)
import Glibc
#endif

/// Encrypted attachments of letters (chunks sealed under a node-local or space key).
extension Node {
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
