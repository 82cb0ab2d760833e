import Foundation
import SarabanCrypto

/// The outcome of running a Noise test-vector file.
public struct NoiseVectorReport: Sendable, CustomStringConvertible {
    /// Vectors whose every message, payload and handshake hash matched.
    public var passed = 0
    /// Vectors that ran and mismatched somewhere.
    public var failed = 0
    /// Vectors for protocols this implementation does not support.
    public var skipped = 0
    /// One line per failed vector: protocol name and what differed.
    public var failures: [String] = []

    /// `N passed, M failed` (plus skipped when any).
    public var description: String {
        "\(passed) passed, \(failed) failed" + (skipped > 0 ? ", \(skipped) skipped" : "")
    }
}

/// Runs Noise test vectors in the cacophony JSON format (`{"vectors": [{protocol_name, init_prologue,
/// init_static, init_ephemeral, init_remote_static, init_psks, resp_…, handshake_hash, messages:
/// [{payload, ciphertext}]}]}`) against ``NoiseHandshakeState`` and ``CipherState``.
///
/// Test support: `NoiseVectorTests` runs `Fixtures/noise/cacophony-25519-chachapoly-blake2b.json` through it.
public enum NoiseVectors {
    /// Reads and runs every vector in the file at `path`.
    ///
    /// - Throws: ``TestFailure`` when the file cannot be read or is not a vector file.
    public static func run(fileAt path: String) throws(TestFailure) -> NoiseVectorReport {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TestFailure("cannot read the vector file '\(path)': check the path and permissions")
        }
        return try run(json: data)
    }

    /// Runs every vector in `json`.
    ///
    /// - Throws: ``TestFailure`` when the JSON is not a vector file.
    public static func run(json: Data) throws(TestFailure) -> NoiseVectorReport {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: json) } catch {
            throw TestFailure("the vector file is not valid JSON: \(error)")
        }
        guard let vectors = (root as? [String: Any])?["vectors"] as? [[String: Any]] else {
            throw TestFailure("the vector file has no \"vectors\" array: is it in the cacophony format?")
        }
        var report = NoiseVectorReport()
        for vector in vectors {
            let name = vector["protocol_name"] as? String ?? "<unnamed>"
            if vector["fail"] as? Bool == true || vector["fallback"] as? Bool == true || !isSupported(name) {
                report.skipped += 1
                continue
            }
            do throws(VectorFailure) {
                try runOne(vector, name: name)
                report.passed += 1
            } catch {
                report.failed += 1
                report.failures.append("\(name): \(error.reason)")
            }
        }
        return report
    }

    /// Whether `protocolName` is one this implementation runs.
    public static func isSupported(_ protocolName: String) -> Bool {
        let parts = protocolName.split(separator: "_", omittingEmptySubsequences: false)
        return parts.count == 5 && parts[0] == "Noise" && parts[2] == "25519" && parts[3] == "ChaChaPoly"
            && parts[4] == "BLAKE2b" && (try? NoisePattern(parsing: String(parts[1]))) != nil
    }

    struct VectorFailure: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    /// Hex text as bytes; nil on odd length or a non-hex digit.
    private static func bytes(hex text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        return try? stride(from: 0, to: digits.count, by: 2).map { i throws(TestFailure) -> UInt8 in
            guard let b = UInt8(String(decoding: digits[i...i + 1], as: UTF8.self), radix: 16) else {
                throw TestFailure("not hex")
            }
            return b
        }
    }

    private static func hex(_ vector: [String: Any], _ key: String) throws(VectorFailure) -> [UInt8]? {
        guard let value = vector[key] else { return nil }
        guard let text = value as? String, let bytes = bytes(hex: text) else {
            throw VectorFailure("field \(key) is not hex")
        }
        return bytes
    }

    private static func keyPair(_ vector: [String: Any], _ key: String) throws(VectorFailure) -> X25519KeyPair? {
        guard let secret = try hex(vector, key) else { return nil }
        do { return try X25519KeyPair(secretKey: SecureBytes(secret)) } catch {
            throw VectorFailure("\(key): \(error)")
        }
    }

    private static func psks(_ vector: [String: Any], _ key: String) throws(VectorFailure) -> [SecureBytes] {
        guard let list = vector[key] else { return [] }
        guard let texts = list as? [String] else { throw VectorFailure("field \(key) is not a list") }
        var out: [SecureBytes] = []
        for t in texts {
            guard let b = bytes(hex: t) else { throw VectorFailure("field \(key) is not hex") }
            out.append(SecureBytes(b))
        }
        return out
    }

    private static func runOne(_ v: [String: Any], name: String) throws(VectorFailure) {
        var initiator: NoiseHandshakeState
        var responder: NoiseHandshakeState
        do {
            initiator = try NoiseHandshakeState(
                protocolName: name, initiator: true, prologue: try hex(v, "init_prologue") ?? [],
                localStatic: try keyPair(v, "init_static"), localEphemeral: try keyPair(v, "init_ephemeral"),
                remoteStatic: try hex(v, "init_remote_static"), psks: try psks(v, "init_psks"))
            responder = try NoiseHandshakeState(
                protocolName: name, initiator: false, prologue: try hex(v, "resp_prologue") ?? [],
                localStatic: try keyPair(v, "resp_static"), localEphemeral: try keyPair(v, "resp_ephemeral"),
                remoteStatic: try hex(v, "resp_remote_static"), psks: try psks(v, "resp_psks"))
        } catch let e as VectorFailure {
            throw e
        } catch {
            throw VectorFailure("setup: \(error)")
        }
        guard let messages = v["messages"] as? [[String: Any]] else { throw VectorFailure("no messages") }
        var ciphers: (initSend: CipherState, initReceive: CipherState, respSend: CipherState, respReceive: CipherState)?
        for (i, message) in messages.enumerated() {
            guard let payload = try hex(message, "payload"), let expected = try hex(message, "ciphertext") else {
                throw VectorFailure("message \(i) lacks payload or ciphertext")
            }
            let fromInitiator = initiator.pattern.isOneWay || i % 2 == 0
            do {
                let sent: [UInt8]
                let received: [UInt8]
                if !initiator.isHandshakeComplete {
                    if fromInitiator {
                        sent = try initiator.writeMessage(payload)
                        received = try responder.readMessage(sent)
                    } else {
                        sent = try responder.writeMessage(payload)
                        received = try initiator.readMessage(sent)
                    }
                    if initiator.isHandshakeComplete {
                        guard responder.isHandshakeComplete else {
                            throw VectorFailure("responder did not finish with the initiator")
                        }
                        if let h = try hex(v, "handshake_hash"),
                            h != initiator.handshakeHash || h != responder.handshakeHash
                        {
                            throw VectorFailure("handshake hash mismatch")
                        }
                        let (c1, c2) = try initiator.split()
                        let (r1, r2) = try responder.split()
                        ciphers = (c1, c2, r2, r1)
                    }
                } else if var c = ciphers {
                    if fromInitiator {
                        sent = try c.initSend.encrypt(payload)
                        received = try c.respReceive.decrypt(sent)
                    } else {
                        sent = try c.respSend.encrypt(payload)
                        received = try c.initReceive.decrypt(sent)
                    }
                    ciphers = c
                } else {
                    throw VectorFailure("no transport ciphers")
                }
                guard sent == expected else { throw VectorFailure("message \(i): ciphertext differs") }
                guard received == payload else { throw VectorFailure("message \(i): decrypted payload differs") }
            } catch let e as VectorFailure {
                throw e
            } catch {
                throw VectorFailure("message \(i): \(error)")
            }
        }
    }
}
