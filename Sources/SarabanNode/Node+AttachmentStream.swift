import Foundation
import SarabanCore
import SarabanCrypto

/// An attachment read one chunk at a time, so a large file goes out (the web app's download)
/// without being held whole in memory. Each chunk is decrypted and authenticated on its own: its
/// AEAD binds the attachment's hash, the chunk's index and the chunk count, so a chunk cannot be
/// swapped, reordered or dropped unnoticed (``Node/readAttachment(_:)`` checks the whole hash too).
public struct AttachmentReader: Sendable {
    public let attachment: AttachmentRef
    let key: SymmetricKey
    let hash: [UInt8]
    let directory: String

    public var chunks: Int { attachment.chunks }

    /// Chunk `i`, decrypted and checked.
    public func chunk(_ i: Int) throws(NodeError) -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: directory + "/\(i)") else {
            throw NodeError(.unknownDocument, "chunk \(i + 1) of \(attachment.chunks) of \(attachment.name) is not on this node")
        }
        return try Node.openChunk([UInt8](d), key: key, hash: hash, index: i, count: attachment.chunks, name: attachment.name)
    }
}

extension Node {
    /// A reader of attachment `a`, or `unknownDocument` (exit 67) when not every chunk is on this
    /// node yet (`saraban letter fetch` gets them).
    public func attachmentReader(_ a: AttachmentRef) throws(NodeError) -> AttachmentReader {
        guard let hash = Hex.decode(a.hash) else { throw NodeError(.invalidArgument, "bad attachment hash \(a.hash)") }
        guard attachmentChunksPresent(a).count == a.chunks else {
            throw NodeError(
                .unknownDocument,
                "ไฟล์แนบ \(a.name) ยังมาไม่ครบ / \(a.name) is not all on this node yet; "
                    + "fetch it with `saraban letter fetch LETTER \(a.hash.prefix(12))`")
        }
        return AttachmentReader(attachment: a, key: try key(forReference: a.key), hash: hash, directory: attachmentDirectory(a))
    }
}
