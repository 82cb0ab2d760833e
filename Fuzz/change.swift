// libFuzzer target: the change decoder. Any input must decode or throw DecodingError, never trap;
import SarabanCore
// a decoded change must re-encode to something that decodes to the same change.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChange(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let c = try? Change.decode(bytes) else { return 0 }
    let again = try? Change.decode(c.encoded())
    precondition(again == c, "a decoded change does not survive re-encoding")
    // Applying it to an empty replica must not trap either.
    var r = Replica(id: ReplicaID(hi: 1, lo: 1))
    _ = try? r.receive(c)
    _ = r.views
    return 0
}
