import SarabanCrypto
import SarabanNode
import SarabanStorage
import SarabanSync

/// What `saraban --version` prints: the release, then the formats this build speaks, so two
/// offices can tell at a glance whether their nodes can sync and open each other's files.
enum SarabanVersion {
    /// The release; raised when a build is handed to offices.
    static let release = "0.1.0"

    static var line: String {
        "saraban \(release) (sync protocol \(SyncMessage.protocolVersion), database schema \(Store.schemaVersion), "
            + "envelope format \(EnvelopeHeader.currentVersion), change files \(ChangeFile.version) and "
            + "\(ChangeFile.envelopeVersion), config \(NodeConfig.currentVersion))"
    }
}
