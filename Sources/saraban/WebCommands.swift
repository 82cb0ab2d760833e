import ArgumentParser
import Foundation
import SarabanCrypto
import SarabanNode
import SarabanOffice
import SarabanWeb

// `saraban user …` and `saraban token …`: the web app's accounts and API tokens
// (web-accounts.json in the data directory, mode 0600; Docs/WEB.md).

/// `--password-file FILE`: the first line of FILE (`-`: standard input) instead of asking twice on the terminal.
struct PasswordOptions: ParsableArguments {
    @Option(
        name: .customLong("password-file"),
        help: ArgumentHelp(
            "Read the password from the first line of FILE (- for standard input) instead of asking on the terminal.",
            valueName: "FILE"))
    var passwordFile: String?

    func password(for name: String, command: String) throws(NodeError) -> SecureBytes {
        guard let p = try Passphrase.new(prompt: "รหัสผ่านของ \(name) / password for \(name): ", file: passwordFile) else {
            throw NodeError(
                .invalidArgument,
                "ต้องใช้รหัสผ่าน / \(command) needs the user's password: run it on a terminal to be asked for it, or pass "
                    + "--password-file FILE (its first line; - for standard input); nothing was changed")
        }
        return p
    }
}

extension DataOptions {
    func accounts() throws(NodeError) -> AccountStore {
        let node = try openNode()
        defer { node.close() }
        return AccountStore(directory: node.dataDirectory)
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "The web app's user accounts (passwords hashed with Argon2id).",
        subcommands: [Add.self, Passwd.self, List.self, Disable.self, Enable.self, Clearance.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a web user with a role: clerk, officer, head or admin.",
            discussion: """
                NAME is the login: 1–64 of a–z, 0–9, '.', '_', '-'. The password (at least 8 characters) is asked
                twice on the terminal or read with --password-file.
                """)

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Argument(help: "The login name.") var name: String
        @Option(help: "clerk | officer | head | admin") var role: String
        @Option(help: ArgumentHelp("The name shown in the web app (Thai), for example นางสาวสมศรี ใจดี.", valueName: "NAME"))
        var display: String?
        @Option(help: "Cleared for secret letters up to this class: ลับ/confidential or ลับมาก/secret (default: none).")
        var clearance: String?
        @OptionGroup var password: PasswordOptions

        func run() async throws {
            let accounts = try options.accounts()
            let role = try Role(parsing: role)
            let key = try AccountStore.checkName(name)
            let cleared = try clearance.map { c throws(NodeError) in try parseSecrecy(c) }
            var user = try accounts.addUser(
                name: key, displayName: display, role: role, password: try password.password(for: key, command: "user add"))
            if let cleared, cleared != .none {
                try accounts.setClearance(key, cleared)
                user.clearance = cleared.rawValue
            }
            if output.json { try Output.json(UserRow(user)) } else { Output.note("added \(role.rawValue) \(user.name)") }
        }
    }

    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a web user's password (the admin's reset; the user's sessions stay until they expire).")

        @OptionGroup var options: DataOptions
        @Argument(help: "The login name.") var name: String
        @OptionGroup var password: PasswordOptions

        func run() async throws {
            let accounts = try options.accounts()
            guard try accounts.user(name) != nil else {
                throw NodeError(.unknownDocument, "ไม่มีผู้ใช้ชื่อ \(name) / no user named \(name) (`saraban user list`)")
            }
            try accounts.setPassword(name, password: try password.password(for: name, command: "user passwd"))
            Output.note("password of \(name) set")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the web users (never their passwords).")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            let users = try options.accounts().load().users
            if output.json { try Output.json(users.map(UserRow.init)) } else if users.isEmpty {
                Output.line("no web users; add one with `saraban user add NAME --role admin`")
            } else {
                for u in users {
                    Output.line(
                        "\(u.name)  \(u.role.rawValue)  \(u.displayName)" + (u.disabled ? "  (disabled)" : "")
                            + (u.clearance.map { "  (cleared: \($0))" } ?? ""))
                }
            }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a web user: they cannot log in, and a running daemon ends their sessions at once.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The login name.") var name: String

        func run() async throws {
            try options.accounts().setDisabled(name, true)
            Output.note("disabled \(name)")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled web user again.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The login name.") var name: String

        func run() async throws {
            try options.accounts().setDisabled(name, false)
            Output.note("enabled \(name)")
        }
    }
}

extension UserCommand {
    struct Clearance: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clear a web user for secret letters: ลับ (confidential), ลับมาก (secret) or ปกติ (none).",
            discussion: "Takes effect at the user's next request in a running daemon; every view of a secret letter is audited.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The login name.") var name: String
        @Argument(help: "ลับ | ลับมาก | ปกติ (confidential | secret | none)") var level: String

        func run() async throws {
            let cleared = try parseSecrecy(level)
            try options.accounts().setClearance(name, cleared)
            Output.note("\(name) cleared for \(cleared.english)")
        }
    }
}

/// What `user list --json` shows of a user.
struct UserRow: Encodable {
    var name: String
    var display_name: String
    var role: String
    var disabled: Bool
    var created: String
    var password_changed: String
    var clearance: String?

    init(_ u: WebUser) {
        clearance = u.clearance
        name = u.name
        display_name = u.displayName
        role = u.role.rawValue
        disabled = u.disabled
        created = Output.time(u.created)
        password_changed = Output.time(u.passwordChanged)
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "API tokens for other systems (vendors' e-Saraban, e-CMS exchange).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an API token and print it once (only its hash is kept).",
            discussion: "A read token may only GET under /api/v1 (and /metrics); a write token may call every /api/v1 route.")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption
        @Option(help: "A name for the token, for example vendor-x.") var name: String
        @Option(help: "read | write") var scope: String

        func run() async throws {
            let (token, text) = try options.accounts().createToken(name: name, scope: try TokenScope(parsing: scope))
            if output.json {
                struct Out: Encodable {
                    var name: String
                    var scope: String
                    var token: String
                }
                try Output.json(Out(name: token.name, scope: token.scope.rawValue, token: text))
            } else {
                Output.line(text)
                Output.note("token \(token.name) (\(token.scope.rawValue)) created; it is shown only now: keep it secret")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the API tokens (names and scopes, never the tokens).")

        @OptionGroup var options: DataOptions
        @OptionGroup var output: JSONOption

        func run() async throws {
            let tokens = try options.accounts().load().tokens
            struct Row: Encodable {
                var name: String
                var scope: String
                var created: String
                @OrNull var revoked: String?
            }
            let rows = tokens.map { Row(name: $0.name, scope: $0.scope.rawValue, created: Output.time($0.created), revoked: $0.revoked.map(Output.time)) }
            if output.json { try Output.json(rows) } else if rows.isEmpty {
                Output.line("no API tokens; create one with `saraban token create --name NAME --scope read`")
            } else {
                for r in rows { Output.line("\(r.name)  \(r.scope)  created \(r.created)" + (r.revoked.map { "  revoked \($0)" } ?? "")) }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an API token: a running daemon refuses it from its next request.")

        @OptionGroup var options: DataOptions
        @Argument(help: "The token's name.") var name: String

        func run() async throws {
            try options.accounts().revokeToken(name)
            Output.note("revoked \(name)")
        }
    }
}

/// `saraban serve`'s web app options.
struct WebServeOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Serve the web app and JSON API on HOST:PORT (default 127.0.0.1:7480: this computer only; a LAN address to serve the office).",
            valueName: "HOST:PORT"))
    var http: String?
    @Flag(name: .customLong("no-http"), help: "Do not serve the web app.")
    var noHTTP = false
    @Flag(
        name: .customLong("tls-proxy"),
        help: "The web app is reached through a TLS-terminating reverse proxy: mark its cookies Secure.")
    var tlsProxy = false

    /// The web app as a service of the daemon, or none (`--no-http`). A relay serves only
    /// /healthz, /readyz and /metrics.
    func services(node: Node, daemon: NodeDaemon, relay: Bool, metrics: WebMetrics) throws -> [WebService] {
        if noHTTP {
            if http != nil { throw NodeError(.invalidArgument, "--http and --no-http contradict each other; give one") }
            return []
        }
        var options = WebOptions()
        options.relay = relay
        options.tlsProxy = tlsProxy
        if let http {
            guard let a = PeerAddress(parsing: http) else {
                throw NodeError(.invalidArgument, "--http \(http.debugDescription) is not HOST:PORT (for example 127.0.0.1:7480 or 0.0.0.0:7480)")
            }
            options.host = a.host
            options.port = a.port
            options.explicitAddress = true
        }
        let app = try WebApp(node: node, daemon: daemon, options: options, metrics: metrics)
        if !relay, (try? app.accounts.load().users.isEmpty) ?? false {
            Output.note("the web app has no users yet: add one with `saraban user add NAME --role admin`")
        }
        return [app.service { address in Output.line("web app at http://\(address)/") }]
    }
}

extension Saraban.Dev {
    struct OpenAPICommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "openapi",
            abstract: "Print the JSON API's OpenAPI document (Docs/openapi.json is this output).")

        func run() async throws {
            FileHandle.standardOutput.write(Data(OpenAPI.document.utf8))
        }
    }
}
