import Foundation
import PostgresNIO
import SarabanNode

/// A PostgreSQL database named by a URL: `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB[?PARAMS]`
/// (`postgres://` too). Parameters: `sslmode` (`disable`, `prefer` (default), `require`), `host`
/// (a directory holding the server's Unix socket, instead of TCP), `synchronous_commit` (passed to
/// the server at connect), `pool` (connections per relay process, default 8). Without a password
/// in the URL, `PGPASSWORD` is used. The password is never printed: ``redacted`` replaces it.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    /// A directory with the server's socket (`.s.PGSQL.PORT`), when connecting over a Unix socket.
    public var socketDirectory: String?
    public var database: String
    public var sslMode: String
    public var synchronousCommit: String?
    public var poolSize: Int

    /// Whether `text` names a PostgreSQL store (rather than being a typo of one).
    public static func isPostgres(_ text: String) -> Bool {
        text.hasPrefix("postgresql://") || text.hasPrefix("postgres://")
    }

    public init(parsing text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(NodeError) {
        func bad(_ why: String) -> NodeError {
            NodeError(
                .invalidArgument,
                "the relay store \(Self.redact(text).debugDescription) is not a PostgreSQL URL (\(why)); write it as "
                    + "postgresql://USER@HOST[:PORT]/DATABASE, for example postgresql://saraban@127.0.0.1/saraban "
                    + "(ที่อยู่ฐานข้อมูลไม่ถูกต้อง)")
        }
        guard Self.isPostgres(text), let url = URLComponents(string: text) else { throw bad("expected postgresql://") }
        guard let user = url.user, !user.isEmpty else { throw bad("no user before @") }
        self.user = user
        password = url.password ?? environment["PGPASSWORD"]
        let path = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        guard !path.isEmpty, !path.contains("/") else { throw bad("no database name after the host") }
        database = path
        var params: [String: String] = [:]
        for item in url.queryItems ?? [] { params[item.name] = item.value ?? "" }
        let known: Set = ["sslmode", "host", "synchronous_commit", "pool"]
        if let unknown = params.keys.sorted().first(where: { !known.contains($0) }) {
            throw bad("unknown parameter \(unknown); known: \(known.sorted().joined(separator: ", "))")
        }
        socketDirectory = params["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        host = url.host ?? ""
        guard !host.isEmpty || socketDirectory != nil else { throw bad("no host") }
        port = url.port ?? 5432
        guard (1...65535).contains(port) else { throw bad("port out of range") }
        sslMode = params["sslmode"] ?? "prefer"
        guard ["disable", "prefer", "require"].contains(sslMode) else { throw bad("sslmode must be disable, prefer or require") }
        synchronousCommit = params["synchronous_commit"]
        if let s = synchronousCommit, !["on", "off", "local", "remote_write", "remote_apply"].contains(s) {
            throw bad("synchronous_commit must be on, off, local, remote_write or remote_apply")
        }
        poolSize = Int(params["pool"] ?? "8") ?? 0
        guard (1...200).contains(poolSize) else { throw bad("pool must be a number of connections from 1 to 200") }
    }

    /// The URL without its password (a password reaches a child process through `PGPASSWORD`).
    public var redacted: String { description }

    /// The URL without the password.
    public var description: String {
        var s = "postgresql://\(user)@\(host):\(port)/\(database)"
        var q: [String] = []
        if sslMode != "prefer" { q.append("sslmode=\(sslMode)") }
        if let d = socketDirectory { q.append("host=\(d)") }
        if let c = synchronousCommit { q.append("synchronous_commit=\(c)") }
        if poolSize != 8 { q.append("pool=\(poolSize)") }
        if !q.isEmpty { s += "?" + q.joined(separator: "&") }
        return s
    }

    /// `text` with the password part of its authority (if any) replaced by `***`.
    public static func redact(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") else { return text }
        let userinfo = text[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    /// The client configuration (TLS per `sslmode`, the socket when given).
    func clientConfiguration() -> PostgresClient.Configuration {
        var c: PostgresClient.Configuration
        if let dir = socketDirectory {
            c = .init(unixSocketPath: "\(dir)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresClient.Configuration.TLS =
                switch sslMode {
                case "disable": .disable
                case "require": .require(.makeClientConfiguration())
                default: .prefer(.makeClientConfiguration())
                }
            c = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        c.options.maximumConnections = poolSize
        c.options.minimumConnections = 1
        c.options.connectTimeout = .seconds(5)
        c.options.additionalStartupParameters = [("application_name", "saraban-relay")]
        if let s = synchronousCommit { c.options.additionalStartupParameters.append(("synchronous_commit", s)) }
        return c
    }
}

/// Creating and dropping databases, for the bench and tests (a relay never does this itself: an
/// operator creates its database once, see Sync/RELAY-OPERATIONS.md).
public enum PostgresAdmin {
    /// Creates database `name` (letters, digits and `_` only: identifiers cannot be bound
    /// parameters) on the server of `server`, connecting to `server`'s own database.
    public static func createDatabase(_ name: String, on server: PostgresLocation) async throws {
        try await run("CREATE DATABASE \(try identifier(name))", on: server)
    }

    /// Drops database `name` if it exists (terminating its connections).
    public static func dropDatabase(_ name: String, on server: PostgresLocation) async throws {
        try await run("DROP DATABASE IF EXISTS \(try identifier(name)) WITH (FORCE)", on: server)
    }

    static func identifier(_ name: String) throws -> String {
        guard !name.isEmpty, name.count <= 63, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }),
            !(name.first?.isNumber ?? true)
        else { throw NodeError(.invalidArgument, "\(name.debugDescription) is not a plain database name") }
        return name.lowercased()
    }

    private static func run(_ sql: String, on server: PostgresLocation) async throws {
        _ = try await integer(sql, on: server)
    }

    /// Runs `sql` (written by the caller) and returns the first column of its first row as an
    /// integer (nil when it returns none, or not an integer).
    private static func integer(_ sql: String, on server: PostgresLocation) async throws -> Int64? {
        var quiet = Logger(label: "saraban.postgres.admin")
        quiet.logLevel = .critical
        let client = PostgresClient(configuration: server.clientConfiguration(), backgroundLogger: quiet)
        let task = Task { await client.run() }
        defer { task.cancel() }
        // The name was checked to be a plain identifier above; DDL cannot take bound parameters.
        var first: Int64?
        var seen = false
        for try await row in try await client.query(PostgresQuery(unsafeSQL: sql), logger: quiet) {
            // Every row is read (an error the server sends while executing arrives with them).
            if !seen, row.count > 0 { first = try? row.decode(Int64.self) }
            seen = true
        }
        return first
    }
}

extension PostgresAdmin {
    /// Runs `statements` in order, written by the caller (never built from input), on `location`'s
    /// database: the fault tests use it to plant faults (a trigger, a read-only default).
    public static func execute(trusted statements: [String], on location: PostgresLocation) async throws {
        for sql in statements { try await run(sql, on: location) }
    }

    /// The integer a query written by the caller returns (first column of the first row; nil for
    /// none): the tests read a probe with it, the bench the server's process id.
    public static func integer(trusted sql: String, on location: PostgresLocation) async throws -> Int64? {
        try await integer(sql, on: location)
    }
}
