import Foundation
import SarabanCrypto

/// Officer keys under the officer's passphrase (``OfficerKeyFile``): which keys have one, changing
/// it, and sealing a key written before passphrases existed.
extension Node {
    /// The shortest passphrase accepted for an officer key (characters).
    public static var minimumOfficerPassphraseLength: Int { OfficerKeyFile.minimumPassphraseLength }

    func officerStem(_ name: String) -> String {
        officersDirectory + "/" + Self.officerFileStem(name.trimmingCharacters(in: .whitespaces))
    }

    /// Whether the officer's key is sealed under a passphrase (`false` for a key written before
    /// passphrases: it signs without one until the officer sets one).
    public func officerHasPassphrase(_ name: String) throws(NodeError) -> Bool {
        let (_, stem) = try officerCertificate(name)
        switch try OfficerKeyFile.inspect(stem + ".key") {
        case .plain: return false
        case .sealed: return true
        }
    }

    /// Sets or changes the officer's passphrase: the key opens with `old` (not needed for a key
    /// that has none yet) and is sealed again under `new`. A wrong `old` throws
    /// `.wrongPassphrase` (exit 77) and changes nothing.
    public func changeOfficerPassphrase(
        _ name: String, old: SecureBytes?, new: SecureBytes, protection: Argon2id.Parameters = .moderate
    ) throws(NodeError) {
        try OfficerKeyFile.checkNew(new)
        let (officer, pair) = try officerKey(name, passphrase: old, sealPlain: false)
        try Node.replaceFile(
            officerStem(officer.name) + ".key", with: Data(try OfficerKeyFile.seal(pair, passphrase: new, parameters: protection)),
            mode: 0o600)
        logger.notice("officer passphrase changed", metadata: ["officer": "\(officer.name)"])
    }

    /// Seals a plain (version 1) key under `passphrase`; a sealed key is left as it is.
    func sealPlainOfficerKey(_ pair: SigningKeyPair, passphrase: SecureBytes, path: String) throws(NodeError) {
        guard case .plain = try OfficerKeyFile.inspect(path) else { return }
        try OfficerKeyFile.checkNew(passphrase)
        try Node.replaceFile(path, with: Data(try OfficerKeyFile.seal(pair, passphrase: passphrase, parameters: .moderate)), mode: 0o600)
        logger.notice("officer key sealed under a passphrase", metadata: ["path": "\(path)"])
    }

    /// The officer's certificate (`officers/<stem>.json`).
    func officerCertificate(_ name: String) throws(NodeError) -> (Officer, String) {
        let stem = officerStem(name)
        guard let data = FileManager.default.contents(atPath: stem + ".json"),
            let officer = try? JSONDecoder().decode(Officer.self, from: data)
        else {
            throw NodeError(
                .unknownDocument,
                "ไม่มีเจ้าหน้าที่ชื่อ \(name) / no officer named \(name) on this node; add one with "
                    + "`saraban officer add NAME --position P` (`saraban officer list` shows them)")
        }
        return (officer, stem)
    }
}
