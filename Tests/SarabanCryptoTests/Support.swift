import Foundation
import SarabanCrypto
import Testing

/// The repository root, found from this file's path (fixtures are not bundled as resources).
let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent()  // SarabanCryptoTests
    .deletingLastPathComponent()  // Tests
    .deletingLastPathComponent()  // root

let noiseVectorPath = repositoryRoot.appendingPathComponent("Fixtures/noise/cacophony-25519-chachapoly-blake2b.json")
    .path

/// What `body` threw: the `CryptoError` code, or nil when it did not throw.
/// (A non-`CryptoError` error records a test issue: the module only throws `CryptoError`.)
func errorCode<T>(_ body: () throws -> T) -> CryptoError.Code? {
    do {
        _ = try body()
        return nil
    } catch let error as CryptoError {
        return error.code
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

/// The `CryptoError` `body` threw, or nil.
func cryptoError<T>(_ body: () throws -> T) -> CryptoError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error as? CryptoError
    }
}
