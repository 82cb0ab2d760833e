import Foundation
import SarabanCrypto
import SarabanTransport
#if canImport(Glibc)
import Glibc
#endif

/// `HOST:PORT` (an IPv6 host in brackets: `[::1]:7420`).
public struct PeerAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; `nil` when malformed (no port, port out of 0…65535, empty host).
    public init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        let hostPart: Substring
        let portPart: Substring
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]"), t[t.index(after: close)...].hasPrefix(":") else { return nil }
            hostPart = t[t.index(after: t.startIndex)..<close]
            portPart = t[t.index(close, offsetBy: 2)...]
        } else {
            guard let colon = t.lastIndex(of: ":"), !t[..<colon].contains(":") else { return nil }
            hostPart = t[..<colon]
            portPart = t[t.index(after: colon)...]
        }
        guard !hostPart.isEmpty, !hostPart.contains(where: \.isWhitespace), let port = Int(portPart),
            (0...65535).contains(port)
        else { return nil }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A peer from `config.json`, checked: its node id parsed, its address split.
public struct ConfiguredPeer: Hashable, Sendable {
    public var nodeID: NodeID
    public var address: PeerAddress
    public var name: String?

    /// The name if there is one, else the node id's first characters.
    public var label: String { name ?? String(nodeID.text.prefix(12)) }
}

/// The sync part of `config.json`, validated: where to listen and whom to dial.
public struct SyncSettings: Sendable {
    public var listen: PeerAddress
    public var peers: [ConfiguredPeer]
    /// `max_pending_handshakes` and `max_pending_handshakes_per_address`, when set.
    public var maximumPendingHandshakes: Int?
    public var maximumPendingHandshakesPerAddress: Int?

    /// `configuration` with the caps this file sets.
    public func applied(to configuration: TransportConfiguration) -> TransportConfiguration {
        var c = configuration
        if let n = maximumPendingHandshakes { c.maximumPendingHandshakes = n }
        if let n = maximumPendingHandshakesPerAddress { c.maximumPendingHandshakesPerAddress = n }
        return c
    }

    /// Checks `config` read from `path`; every error names the file and the field at fault.
    public static func validate(_ config: NodeConfig, path: String) throws(NodeError) -> SyncSettings {
        func fail(_ field: String, _ what: String) -> NodeError {
            NodeError(
                .badConfig,
                "\(path) is not a valid saraban config: field \"\(field)\" \(what); fix the file by hand "
                    + "(or use `saraban peer add`)")
        }
        guard let listen = PeerAddress(parsing: config.listen) else {
            throw fail("listen", "is \(config.listen.debugDescription), expected HOST:PORT such as 0.0.0.0:7420")
        }
        var peers: [ConfiguredPeer] = []
        var seen: Set<NodeID> = []
        for (i, p) in config.peers.enumerated() {
            guard let text = p.nodeID, !text.isEmpty else { throw fail("peers[\(i)].node_id", "is missing") }
            let id: NodeID
            do { id = try NodeID(parsing: text) } catch {
                throw fail("peers[\(i)].node_id", "is not a valid node id (\(error))")
            }
            guard let address = PeerAddress(parsing: p.address) else {
                throw fail("peers[\(i)].address", "is \(p.address.debugDescription), expected HOST:PORT such as 10.0.0.2:7420")
            }
            guard address.port != 0 else { throw fail("peers[\(i)].address", "has port 0; give the peer's real port") }
            guard seen.insert(id).inserted else { throw fail("peers[\(i)].node_id", "repeats an earlier peer") }
            peers.append(ConfiguredPeer(nodeID: id, address: address, name: p.name))
        }
        for (field, value) in [
            ("max_pending_handshakes", config.maxPendingHandshakes),
            ("max_pending_handshakes_per_address", config.maxPendingHandshakesPerAddress),
        ] {
            if let value, value < 1 { throw fail(field, "is \(value), expected a whole number of at least 1 (or no field: the default)") }
        }
        return SyncSettings(
            listen: listen, peers: peers, maximumPendingHandshakes: config.maxPendingHandshakes,
            maximumPendingHandshakesPerAddress: config.maxPendingHandshakesPerAddress)
    }

    /// Finds the configured peer named by `query`: a node id (or a unique prefix), a name, or an address.
    public func peer(matching query: String) throws(NodeError) -> ConfiguredPeer {
        if let p = peers.first(where: { $0.name == query || $0.nodeID.text == query || $0.address.description == query }) {
            return p
        }
        let prefixed = peers.filter { $0.nodeID.text.hasPrefix(query) }
        if prefixed.count == 1 { return prefixed[0] }
        if prefixed.count > 1 {
            throw NodeError(.invalidArgument, "\(query.debugDescription) matches \(prefixed.count) peers; give more of the node id")
        }
        throw NodeError(
            .invalidArgument,
            "no configured peer is named \(query.debugDescription); `saraban peer list` shows them, "
                + "`saraban peer add NODE_ID HOST:PORT` adds one")
    }
}

extension Node {
    /// The validated listen address and peers of the config file as it is on disk now (it may have
    /// changed since this node was opened, for example by `saraban peer add`).
    ///
    /// A daemon asks every two seconds (its trust list), and a relay's config may list thousands of
    /// peers: decoding and checking them was a few percent of a relay's CPU. So the file is read
    /// each time but decoded only when its bytes differ from the last ones decoded.
    public func syncSettings() throws(NodeError) -> SyncSettings {
        let path = dataDirectory.configPath
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError(.badConfig, "cannot read \(path): check that it exists and its permissions")
        }
        if let known = settingsCache.withLock({ $0?.bytes == data ? $0?.settings : nil }) { return known }
        let settings = try SyncSettings.validate(NodeConfig.decode(data, path: path), path: path)
        settingsCache.withLock { $0 = (data, settings) }
        return settings
    }

    /// `config.json` as it is on disk now.
    public func currentConfig() throws(NodeError) -> NodeConfig {
        guard let data = FileManager.default.contents(atPath: dataDirectory.configPath) else {
            throw NodeError(.badConfig, "cannot read \(dataDirectory.configPath): check that it exists and its permissions")
        }
        return try NodeConfig.decode(data, path: dataDirectory.configPath)
    }

    /// Adds a peer to `config.json` (or updates the one with the same node id), replacing the file
    /// atomically. Returns whether it was new.
    @discardableResult
    public func addPeer(nodeID text: String, address: String, name: String?) throws(NodeError) -> Bool {
        let id: NodeID
        do { id = try NodeID(parsing: text) } catch {
            throw NodeError(.invalidArgument, "\(text.debugDescription) is not a valid node id (\(error)); copy it from `saraban id` on the peer")
        }
        guard id != nodeID else { throw NodeError(.invalidArgument, "that is this node's own id; add the other node's id") }
        guard let parsed = PeerAddress(parsing: address), parsed.port != 0 else {
            throw NodeError(.invalidArgument, "\(address.debugDescription) is not HOST:PORT (for example 10.0.0.2:7420)")
        }
        if let name, name.trimmingCharacters(in: .whitespaces).isEmpty {
            throw NodeError(.invalidArgument, "the peer name is empty; omit --name or give one")
        }
        return try ConfigFileLock.withLock(dataDirectory) { () throws(NodeError) -> Bool in
            var config = try currentConfig()
            _ = try SyncSettings.validate(config, path: dataDirectory.configPath)
            let peer = NodeConfig.Peer(name: name, address: parsed.description, nodeID: id.text)
            let isNew: Bool
            if let i = config.peers.firstIndex(where: { $0.nodeID == id.text }) {
                config.peers[i] = peer
                isNew = false
            } else {
                config.peers.append(peer)
                isNew = true
            }
            try Self.replaceFile(dataDirectory.configPath, with: config.encoded(), mode: 0o644)
            return isNew
        }
    }

    /// Removes the configured peer named by `query` (a node id or unique prefix, a name or an
    /// address, as ``SyncSettings/peer(matching:)``) from `config.json`, replacing the file
    /// atomically; returns the peer removed. A running daemon stops dialling it within its config
    /// interval and closes its sessions with it unless it is still a member of a carried space.
    public func removePeer(matching query: String) throws(NodeError) -> ConfiguredPeer {
        try ConfigFileLock.withLock(dataDirectory) { () throws(NodeError) -> ConfiguredPeer in
            var config = try currentConfig()
            let peer = try SyncSettings.validate(config, path: dataDirectory.configPath).peer(matching: query)
            config.peers.removeAll { $0.nodeID.flatMap { try? NodeID(parsing: $0) } == peer.nodeID }
            try Self.replaceFile(dataDirectory.configPath, with: config.encoded(), mode: 0o644)
            return peer
        }
    }

    /// Writes `data` to a temporary file beside `path`, fsyncs it and renames it over `path`.
    public static func replaceFile(_ path: String, with data: Data, mode: mode_t) throws(NodeError) {
        let tmp = path + ".tmp-\(getpid())"
        unlink(tmp)
        try writeNew(data, to: tmp, mode: mode)
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw NodeError(.io, "cannot replace \(path): \(String(cString: strerror(e)))")
        }
        let dir = (path as NSString).deletingLastPathComponent
        let fd = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            Glibc.close(fd)
        }
    }
}

/// An advisory lock (flock) on `DIR/.lock`, serialising read-modify-write of the node's small files
/// (config.json) between processes.
public enum ConfigFileLock {
    public static func withLock<T>(_ dir: DataDirectory, _ body: () throws(NodeError) -> T) throws(NodeError) -> T {
        let fd = Glibc.open(dir.path + "/.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw NodeError(.io, "cannot open \(dir.path)/.lock: \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { throw NodeError(.io, "cannot lock \(dir.path)/.lock: \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
