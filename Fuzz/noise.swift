// libFuzzer target: a Noise XX responder reading arbitrary bytes as handshake message 1 and, after
// writing message 2, as message 3; an initiator reading them as message 2. Errors are typed; no trap.
import SarabanCore
import SarabanCrypto
import SarabanSync

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNoise(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    // Responder: message 1 from the fuzzer (or a valid one), then message 3 from the fuzzer.
    if var responder = try? NoiseXX(role: .responder, identity: FuzzKeys.peer, trust: { _ in true }) {
        let first = bytes.first ?? 0
        if first & 1 == 0 {
            _ = try? responder.readMessage(bytes)
        } else if var initiator = try? NoiseXX(role: .initiator, identity: FuzzKeys.me, trust: { _ in true }),
            let m1 = try? initiator.writeMessage(), (try? responder.readMessage(m1)) != nil,
            (try? responder.writeMessage()) != nil
        {
            _ = try? responder.readMessage(Array(bytes.dropFirst()))
            _ = try? responder.finish()
        }
    }
    // Initiator: message 2 from the fuzzer.
    if var initiator = try? NoiseXX(role: .initiator, identity: FuzzKeys.me, trust: { _ in true }),
        (try? initiator.writeMessage()) != nil
    {
        _ = try? initiator.readMessage(bytes)
    }
    return 0
}
