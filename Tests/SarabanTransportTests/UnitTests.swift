import NIOCore
import SarabanSync
import Testing

@_spi(Testing) @testable import SarabanTransport

@Suite("Sans-IO pieces of the transport")
struct UnitTests {
    @Test("Noise messages are cut from any chunking of the stream")
    func noiseMessageReader() {
        var out = ByteBuffer()
        let messages: [[UInt8]] = [[1, 2, 3], [], Array(repeating: 9, count: 65535), [4]]
        for m in messages { NoiseMessageReader.write(m, into: &out) }
        let bytes = out.readBytes(length: out.readableBytes)!
        for step in [1, 7, 1000, bytes.count] {
            var reader = NoiseMessageReader()
            var got: [[UInt8]] = []
            var i = 0
            while i < bytes.count {
                var chunk = ByteBuffer(bytes: bytes[i..<min(i + step, bytes.count)])
                reader.append(&chunk)
                while let m = reader.next() { got.append(m) }
                i += step
            }
            #expect(got == messages)
            #expect(reader.bufferedByteCount == 0)
            #expect(reader.bufferedCapacity == 0)
        }
    }

    @Test("a connection's reader keeps no buffer between reads that end on a message boundary")
    func noiseMessageReaderReleasesItsBuffer() {
        var reader = NoiseMessageReader()
        // A large read (a backlog: many messages at once), then a message split across two reads.
        var big = ByteBuffer()
        for _ in 0..<40 { NoiseMessageReader.write(Array(repeating: 7, count: 1_500), into: &big) }
        reader.append(&big)
        var taken = 0
        while reader.next() != nil { taken += 1 }
        #expect(taken == 40)
        // Kept and cleared, the buffer held the 60 KB read's capacity for the connection's life.
        #expect(reader.bufferedCapacity == 0)

        var split = ByteBuffer()
        NoiseMessageReader.write([1, 2, 3, 4, 5], into: &split)
        var first = split.readSlice(length: 4)!
        reader.append(&first)
        #expect(reader.next() == nil)
        #expect(reader.bufferedByteCount == 4)
        reader.append(&split)
        #expect(reader.next() == [1, 2, 3, 4, 5])
        #expect(reader.bufferedCapacity == 0)
    }

    @Test("the frame scanner counts frames across chunks and refuses oversized or empty ones")
    func frameScanner() throws {
        let stream = Frame.encode([1, 2, 3]) + Frame.encode(Array(repeating: 5, count: 70_000)) + Frame.encode([9])
        var scanner = FrameScanner(maximumPayloadByteCount: Frame.maximumPayloadByteCount)
        var frames = 0
        var i = 0
        while i < stream.count {
            frames += try scanner.scan(Array(stream[i..<min(i + 3, stream.count)]))
            i += 3
        }
        #expect(frames == 3)
        #expect(!scanner.isInsideFrame)

        var small = FrameScanner(maximumPayloadByteCount: 100)
        #expect(throws: TransportError.self) { _ = try small.scan([0, 0, 0, 101]) }
        var big = FrameScanner(maximumPayloadByteCount: Frame.maximumPayloadByteCount)
        #expect(throws: TransportError.self) { _ = try big.scan([0xFF, 0xFF, 0xFF, 0xFF]) }
        var empty = FrameScanner(maximumPayloadByteCount: 100)
        #expect(throws: TransportError.self) { _ = try empty.scan([0, 0, 0, 0]) }
    }

    @Test("token bucket: free within the burst, then waits in proportion to the debt")
    func tokenBucket() {
        let bucket = TokenBucket(
            limit: RateLimit(bytesPerSecond: 1000, framesPerSecond: 10, burstBytes: 1000, burstFrames: 5), now: 0)
        #expect(bucket.consume(bytes: 1000, frames: 1, now: 0) == .zero)
        #expect(bucket.consume(bytes: 500, frames: 1, now: 0) == .milliseconds(500))
        // One second later 1000 bytes have refilled: 500 of debt paid, 500 available.
        #expect(bucket.consume(bytes: 500, frames: 1, now: 1_000_000_000) == .zero)
        // Frames: 5 of burst, 3 used, refilled to the cap of 5, 1 used: 10 more leave a debt of 6 (0.6 s).
        let wait = bucket.consume(bytes: 0, frames: 10, now: 1_000_000_000)
        #expect(wait > .milliseconds(599) && wait < .milliseconds(601))
        #expect(bucket.throttling.count == 2)
    }
}
