import NIOCore

/// Cuts the TCP byte stream into Noise messages: `length (u16, big-endian) ‖ message`, as the
/// Noise specification suggests (§3: "a 16-bit big-endian length field"). Sans-IO.
struct NoiseMessageReader {
    /// The Noise limit for any message.
    static let maximumMessageLength = 65535

    /// What was read and not yet taken as messages. Holds nothing between reads that ended on a
    /// message boundary (the common case), so an idle connection keeps no buffer: a buffer kept
    /// and cleared kept the capacity of the largest read ever made on the connection (up to
    /// 64 KB under load; heaptrack, 1,000 sessions on a backlogged relay: 13 MB).
    private var buffer = Self.empty
    private static let empty = ByteBuffer()

    /// Bytes received that are not yet a complete message.
    var bufferedByteCount: Int { buffer.readableBytes }

    /// The capacity of the buffer held (tests: what an idle connection keeps).
    var bufferedCapacity: Int { buffer.capacity }

    /// The length of the partial message buffered, once its prefix has arrived.
    var pendingMessageLength: Int? {
        buffer.getInteger(at: buffer.readerIndex, as: UInt16.self).map(Int.init)
    }

    mutating func append(_ bytes: inout ByteBuffer) {
        if buffer.readableBytes == 0 {
            // Nothing pending: take the read as it is, without copying it.
            buffer = bytes
            bytes = Self.empty
            return
        }
        if buffer.readerIndex > 1 << 16 { buffer.discardReadBytes() }
        buffer.writeBuffer(&bytes)
    }

    /// The next complete message, or `nil` when more bytes are needed.
    mutating func next() -> [UInt8]? {
        guard let n = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
            buffer.readableBytes >= 2 + Int(n)
        else { return nil }
        buffer.moveReaderIndex(forwardBy: 2)
        let message = buffer.readBytes(length: Int(n))
        if buffer.readableBytes == 0 { buffer = Self.empty }
        return message
    }

    /// `message` with its 2-byte length prefix, appended to `out`.
    static func write(_ message: [UInt8], into out: inout ByteBuffer) {
        precondition(message.count <= maximumMessageLength)
        out.writeInteger(UInt16(message.count))
        out.writeBytes(message)
    }
}

/// Follows the sync frame boundaries (`length (u32) ‖ payload`) in the decrypted stream without
/// buffering it: counts complete frames (for the frame rate limit) and refuses an oversized or
/// empty frame as soon as its length prefix arrives. Sans-IO.
struct FrameScanner {
    let maximumPayloadByteCount: Int
    private var header: UInt32 = 0
    private var headerBytes = 0
    private var remaining = 0

    init(maximumPayloadByteCount: Int) { self.maximumPayloadByteCount = maximumPayloadByteCount }

    /// Whether a frame has started and not finished.
    var isInsideFrame: Bool { headerBytes > 0 || remaining > 0 }

    /// Scans `bytes`; returns how many frames they complete.
    mutating func scan(_ bytes: [UInt8]) throws(TransportError) -> Int {
        var frames = 0
        var i = 0
        while i < bytes.count {
            if remaining > 0 {
                let take = min(remaining, bytes.count - i)
                remaining -= take
                i += take
                if remaining == 0 { frames += 1 }
                continue
            }
            header = header << 8 | UInt32(bytes[i])
            headerBytes += 1
            i += 1
            guard headerBytes == 4 else { continue }
            let n = Int(header)
            header = 0
            headerBytes = 0
            guard n > 0 else {
                throw TransportError(.malformedFrame, "a zero-length sync frame: the stream is not sync traffic")
            }
            guard n <= maximumPayloadByteCount else {
                throw TransportError(
                    .frameTooLarge,
                    "a sync frame announces \(n) bytes, more than the \(maximumPayloadByteCount)-byte limit")
            }
            remaining = n
        }
        return frames
    }
}
