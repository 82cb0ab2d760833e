import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension Node {
    /// Makes `paths` durable: fsyncs each (a file's bytes, or a directory's entries: a file
    /// created or renamed into it). For what a local write makes outside the database before the
    /// write refers to it (an attachment's chunks), since nothing may leave the node before it is
    /// on disk (Docs/ARCHITECTURE.md, "Durability").
    public static func syncToDisk(_ paths: [String]) throws(NodeError) {
        for path in paths {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw NodeError(.io, "cannot open \(path) to sync it: \(String(cString: strerror(errno)))") }
            defer { Glibc.close(fd) }
            guard fsync(fd) == 0 else { throw NodeError(.io, "cannot sync \(path): \(String(cString: strerror(errno)))") }
        }
    }
}
