/// Why a byte stream could not be cut into frames.
public struct FrameError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The length prefix announces more than ``Frame/maximumPayloadByteCount``.
        case oversized
        /// The stream ended inside a frame (length prefix or payload incomplete).
        case truncated
        /// A zero-length frame: no message is that short, so the stream is garbage.
        case empty
    }

    public let code: Code
    /// The announced payload length, when known.
    public let length: Int?

    public init(_ code: Code, length: Int? = nil) {
        self.code = code
        self.length = length
    }

    public var description: String {
        switch code {
        case .oversized:
            "a frame announces \(length ?? -1) bytes, more than the \(Frame.maximumPayloadByteCount)-byte limit: the peer is faulty or hostile; closing the session"
        case .truncated:
            "the connection ended inside a frame\(length.map { " of \($0) bytes" } ?? ""): the peer or the link failed mid-message"
        case .empty:
            "a zero-length frame: the stream is not Saraban sync traffic; closing the session"
        }
    }
}

/// Length-prefixed frames: `length (u32, big-endian) ‖ payload (length bytes)`, 1 ≤ length ≤ 4 MiB.
public enum Frame {
    /// The largest payload accepted or sent: 4 MiB.
    public static let maximumPayloadByteCount = 4 << 20
    /// The size of the length prefix.
    public static let headerByteCount = 4

    /// `payload` with its 4-byte big-endian length in front.
    ///
    /// - Precondition: `1 ≤ payload.count ≤ maximumPayloadByteCount` (the session never builds
    ///   bigger messages; this traps on a programming error, never on input).
    public static func encode(_ payload: [UInt8]) -> [UInt8] {
        precondition(!payload.isEmpty && payload.count <= maximumPayloadByteCount, "frame payload of \(payload.count) bytes")
        var out = [UInt8]()
        out.reserveCapacity(headerByteCount + payload.count)
        let n = UInt32(payload.count)
        out.append(UInt8(truncatingIfNeeded: n >> 24))
        out.append(UInt8(truncatingIfNeeded: n >> 16))
        out.append(UInt8(truncatingIfNeeded: n >> 8))
        out.append(UInt8(truncatingIfNeeded: n))
        out.append(contentsOf: payload)
        return out
    }
}

/// Cuts a byte stream, fed in arbitrary chunks, into frame payloads.
///
/// It checks the length prefix as soon as its 4 bytes arrive, so an oversized frame is refused
/// before any of it is buffered: the memory held is at most one frame plus one chunk.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    /// The payload limit (``Frame/maximumPayloadByteCount`` unless lowered).
    public let maximumPayloadByteCount: Int

    public init(maximumPayloadByteCount: Int = Frame.maximumPayloadByteCount) {
        self.maximumPayloadByteCount = min(maximumPayloadByteCount, Frame.maximumPayloadByteCount)
    }

    /// Bytes received but not yet returned as a frame.
    public var bufferedByteCount: Int { buffer.count - start }

    /// The payload length of the partial frame buffered, once its length prefix has arrived.
    public var pendingFrameLength: Int? {
        guard buffer.count - start >= Frame.headerByteCount else { return nil }
        return Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
    }

    /// Appends stream bytes.
    public mutating func append<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete payload, or `nil` when more bytes are needed.
    ///
    /// - Throws: ``FrameError`` `.oversized` or `.empty`; after an error the stream is unusable.
    public mutating func next() throws(FrameError) -> [UInt8]? {
        guard buffer.count - start >= Frame.headerByteCount else { return nil }
        let n = Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
        guard n > 0 else { throw FrameError(.empty, length: 0) }
        guard n <= maximumPayloadByteCount else { throw FrameError(.oversized, length: n) }
        guard buffer.count - start - Frame.headerByteCount >= n else { return nil }
        let from = start + Frame.headerByteCount
        let payload = Array(buffer[from..<(from + n)])
        start = from + n
        if start == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 1 << 16)
            start = 0
        }
        return payload
    }

    /// Call when the stream ends: throws `.truncated` if a partial frame is buffered.
    public func finish() throws(FrameError) {
        let left = buffer.count - start
        guard left == 0 else {
            var n: Int? = nil
            if left >= 4 {
                n = Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8 | Int(buffer[start + 3])
            }
            throw FrameError(.truncated, length: n)
        }
    }
}
