// Fixed keys for the fuzz targets (deterministic, so a crash input replays).
import SarabanCore
import SarabanCrypto
import SarabanSync
public enum FuzzKeys {
    public static func seed(_ n: UInt8) -> SecureBytes { SecureBytes([UInt8](repeating: n, count: 32)) }
    public static let me = try! SigningKeyPair(seed: seed(1))
    public static let peer = try! SigningKeyPair(seed: seed(2))
    public static let spaceKey = try! SymmetricKey(seed(3))
    public static let space = SpaceID(hi: 0x5350_4143_4500_0001, lo: 7)
}
