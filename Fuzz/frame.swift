// libFuzzer target: the frame decoder fed in arbitrary chunks, SyncMessage.decode on every frame,
// and a SyncSession (after a valid hello) receiving the raw bytes: never trap, always a typed close.
import SarabanCore
import SarabanCrypto
import SarabanSync

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFrame(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // 1. Frame decoder in chunks of a size taken from the first byte.
    var d = FrameDecoder(maximumPayloadByteCount: 1 << 16)
    let step = max(1, Int(bytes.first ?? 1) % 17)
    var i = 0
    outer: while i < bytes.count {
        d.append(bytes[i..<min(i + step, bytes.count)])
        i += step
        while true {
            do {
                guard let p = try d.next() else { break }
                if let m = try? SyncMessage.decode(p) {
                    precondition((try? SyncMessage.decode(m.encoded())) == m, "message does not survive re-encoding")
                }
            } catch { break outer }
        }
    }
    // 2. The payload as one message.
    _ = try? SyncMessage.decode(bytes)
    // 3. A session: hello from the peer first, then the fuzz bytes as the stream.
    var s = SyncSession(
        configuration: SyncConfiguration(role: .member, spaces: [FuzzKeys.space: FeedVector()]), peer: FuzzKeys.peer.publicKey)
    _ = s.start(now: SyncInstant(nanoseconds: 0))
    _ = s.receive(SyncMessage.hello(Hello(role: .member, receiveWindow: 2, spaces: [FuzzKeys.space])).framed(), now: SyncInstant(nanoseconds: 1))
    _ = s.receive(bytes, now: SyncInstant(nanoseconds: 2))
    _ = s.tick(now: SyncInstant.seconds(100))
    return 0
}
