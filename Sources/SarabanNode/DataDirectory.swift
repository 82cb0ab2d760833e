import Foundation

/// Where a node keeps its files: `node.key`, `saraban.db` (+ `-wal`, `-shm`) and `config.json`.
public struct DataDirectory: Sendable, Hashable, CustomStringConvertible {
    /// The default directory name, relative to the working directory.
    public static let defaultName = "saraban-data"
    /// The environment variable that names the data directory when `--data` is not given.
    public static let environmentVariable = "SARABAN_HOME"

    /// Absolute, standardised path.
    public let path: String

    public init(path: String) {
        let url = URL(fileURLWithPath: path, isDirectory: true).standardizedFileURL
        var p = url.path
        if p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        self.path = p
    }

    /// `--data DIR` if given, else `$SARABAN_HOME` if set and not empty, else `./saraban-data`.
    public static func resolve(
        flag: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> DataDirectory {
        if let flag, !flag.isEmpty { return DataDirectory(path: flag) }
        if let env = environment[environmentVariable], !env.isEmpty { return DataDirectory(path: env) }
        return DataDirectory(path: defaultName)
    }

    public var keyPath: String { path + "/node.key" }
    public var databasePath: String { path + "/saraban.db" }
    public var configPath: String { path + "/config.json" }

    public var description: String { path }
}
