// libFuzzer target: the envelope decoder, signature check, feed verifier and open.
import SarabanCore
import SarabanCrypto
import SarabanSync

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelope(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let e = try? Envelope.decode(bytes) else { return 0 }
    _ = e.isSignatureValid()
    var v = FeedVerifier(spaceID: e.header.spaceID, knownEpochs: [e.header.epoch])
    _ = try? v.accept(e)
    _ = try? v.accept(e)
    _ = try? e.open(key: FuzzKeys.spaceKey)
    return 0
}
