import Foundation
import NIOCore
import SarabanCrypto
import SarabanNode

/// Response bodies the web app made, kept for the store's content version they were made at
/// (``SarabanNode/Node/contentVersion()``) and under a key naming everything else the body
/// depends on: the route and its parameters, the caller's clearance (a body showing a secret
/// letter's subject is filed under the clearance that may see it, never under a lower one), the
/// language, the user shown in the page's header, the day. A request reads the version first,
/// then looks its key up; a body is made after the version it is filed under was read, so it is
/// never older than that version, and any write to the documents (by this daemon, by sync, by a
/// command beside it) raises the version, so the next request makes its body again. A body may
/// also say until when it holds (a register's reservation expires with time).
///
/// Bounded: at most `capacity` bytes of bodies (16 MiB by default); past that the least recently
/// used go first. Only one version is kept: a newer version empties the cache.
///
/// A page's session-specific CSRF token is not part of its key: a page is made with
/// ``csrfMarker`` in its place and kept cut at the marker, and each request joins the pieces with
/// its own session's token.
final class ResponseCache: @unchecked Sendable {
    struct Entry {
        var pieces: [ByteBuffer]
        var validUntil: Int64?
        var lastUse: UInt64
        var bytes: Int
    }

    /// Bodies kept at most, in bytes.
    let capacity: Int
    /// Stands for the session's CSRF token in a kept page: random per process, letters and digits
    /// only (HTML escaping leaves it as it is).
    let csrfMarker = "csrf" + Sodium.randomBytes(16).map { String($0, radix: 16) }.joined()

    // Guards everything below.
    private let lock = NSLock()
    private var version: Int64?
    private var entries: [String: Entry] = [:]
    private var bytes = 0
    private var uses: UInt64 = 0
    private var hits = 0
    private var misses = 0

    init(capacity: Int = 16 << 20) {
        self.capacity = capacity
    }

    /// A key from its parts, each length-prefixed (no part can pass for two).
    static func key(_ parts: [any CustomStringConvertible]) -> String {
        var out = ""
        for p in parts {
            let s = p.description
            out += "\(s.utf8.count):" + s
        }
        return out
    }

    /// The pieces kept under `key` for `version`, still valid at `now`; nil when there are none.
    func pieces(_ key: String, version: Int64, now: Int64) -> [ByteBuffer]? {
        lock.lock()
        defer { lock.unlock() }
        guard self.version == version, var e = entries[key] else {
            misses += 1
            return nil
        }
        if let until = e.validUntil, now > until {
            entries[key] = nil
            bytes -= e.bytes
            misses += 1
            return nil
        }
        uses += 1
        e.lastUse = uses
        entries[key] = e
        hits += 1
        return e.pieces
    }

    /// Keeps `pieces` under `key` for `version` (made after `version` was read). A body of an
    /// older version than the one kept is not kept; one larger than a quarter of the capacity
    /// neither.
    func keep(_ key: String, version: Int64, validUntil: Int64?, _ pieces: [ByteBuffer]) {
        let size = pieces.reduce(key.utf8.count) { $0 + $1.readableBytes }
        guard size <= capacity / 4 else { return }
        lock.lock()
        defer { lock.unlock() }
        if let kept = self.version, version < kept { return }
        if self.version != version {
            self.version = version
            entries = [:]
            bytes = 0
        }
        if let old = entries[key] { bytes -= old.bytes }
        uses += 1
        entries[key] = Entry(pieces: pieces, validUntil: validUntil, lastUse: uses, bytes: size)
        bytes += size
        if bytes > capacity {
            // Down to three quarters at once, least recently used first, so eviction is not paid
            // again at the next body.
            for (k, e) in entries.sorted(by: { $0.value.lastUse < $1.value.lastUse }) {
                if bytes <= capacity * 3 / 4 { break }
                entries[k] = nil
                bytes -= e.bytes
            }
        }
    }

    /// Bytes kept now, the number of bodies, and the lookups that found one and that did not.
    var usage: (bytes: Int, bodies: Int, hits: Int, misses: Int) {
        lock.lock()
        defer { lock.unlock() }
        return (bytes, entries.count, hits, misses)
    }

    /// `body` cut at every ``csrfMarker``.
    func cut(_ body: ByteBuffer) -> [ByteBuffer] {
        let marker = Array(csrfMarker.utf8)
        var pieces: [ByteBuffer] = []
        body.withUnsafeReadableBytes { raw in
            var start = 0
            var i = 0
            while i + marker.count <= raw.count {
                if raw[i] == marker[0] && raw[i..<(i + marker.count)].elementsEqual(marker) {
                    pieces.append(body.getSlice(at: body.readerIndex + start, length: i - start)!)
                    i += marker.count
                    start = i
                } else {
                    i += 1
                }
            }
            pieces.append(body.getSlice(at: body.readerIndex + start, length: raw.count - start)!)
        }
        return pieces
    }

    /// `pieces` joined with `csrf` between them.
    static func join(_ pieces: [ByteBuffer], csrf: String) -> ByteBuffer {
        if pieces.count == 1 { return pieces[0] }
        let total = pieces.reduce(0) { $0 + $1.readableBytes } + (pieces.count - 1) * csrf.utf8.count
        var out = ByteBuffer()
        out.reserveCapacity(total)
        for (i, p) in pieces.enumerated() {
            if i > 0 { out.writeString(csrf) }
            out.writeImmutableBuffer(p)
        }
        return out
    }
}

extension WebApp {
    /// The body under `key` at the store's content version `version`: kept, or made by `make`
    /// (which returns it and the last instant it holds for, nil: until the store changes) and kept.
    func cachedBody(
        _ key: [any CustomStringConvertible], version: Int64, _ make: () throws -> (ByteBuffer, validUntil: Int64?)
    ) throws -> ByteBuffer {
        let k = ResponseCache.key(key)
        if let p = responses.pieces(k, version: version, now: now) { return p[0] }
        let (body, until) = try make()
        responses.keep(k, version: version, validUntil: until, [body])
        return body
    }

    /// A page for the session whose CSRF token is `csrf`, under `key` at `version`: kept, or made
    /// by `make`, which is given the marker to put where the token goes.
    func cachedPage(
        _ key: [any CustomStringConvertible], version: Int64, csrf: String,
        _ make: (_ csrf: String) throws -> (ByteBuffer, validUntil: Int64?)
    ) throws -> ByteBuffer {
        let k = ResponseCache.key(key)
        if let p = responses.pieces(k, version: version, now: now) { return ResponseCache.join(p, csrf: csrf) }
        let (body, until) = try make(responses.csrfMarker)
        let pieces = responses.cut(body)
        responses.keep(k, version: version, validUntil: until, pieces)
        return ResponseCache.join(pieces, csrf: csrf)
    }
}
