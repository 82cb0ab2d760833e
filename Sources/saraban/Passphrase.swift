import ArgumentParser
import Foundation
import SarabanCrypto
import SarabanNode
#if canImport(Glibc)
import Glibc
#endif

/// `--passphrase-file FILE`: where an officer's passphrase comes from when the command does not
/// ask for it on the terminal. The file's first line is the passphrase (a trailing CR/LF is not
/// part of it); `-` reads the first line of standard input. A regular file that group or others
/// may read is refused (exit 78), as key files are.
struct PassphraseOptions: ParsableArguments {
    @Option(
        name: .customLong("passphrase-file"),
        help: ArgumentHelp(
            "Read the officer's passphrase from the first line of FILE (- for standard input) instead of asking on the terminal.",
            valueName: "FILE"))
    var passphraseFile: String?

    /// The passphrase from the file, else from the terminal (no echo), else nil when there is neither.
    func current(prompt: String) throws(NodeError) -> SecureBytes? {
        if let passphraseFile { return try Passphrase.read(file: passphraseFile) }
        return try Passphrase.ask(prompt)
    }

    /// A new passphrase: from the file, else typed twice on the terminal.
    func new(prompt: String) throws(NodeError) -> SecureBytes? { try Passphrase.new(prompt: prompt, file: passphraseFile) }
}

enum Passphrase {
    /// A new passphrase from `file`, else typed twice on the terminal (refused when the two
    /// differ), else nil.
    static func new(prompt: String, file: String?) throws(NodeError) -> SecureBytes? {
        if let file { return try read(file: file) }
        guard let first = try ask(prompt) else { return nil }
        guard let second = try ask("อีกครั้ง / again: ") else { return nil }
        guard Sodium.constantTimeEqual(first, second) else {
            throw NodeError(.invalidArgument, "รหัสผ่านสองครั้งไม่ตรงกัน / the two passphrases differ; nothing was changed")
        }
        return first
    }

    /// Asks on the controlling terminal with echo off, when standard input is a terminal; nil otherwise.
    static func ask(_ prompt: String) throws(NodeError) -> SecureBytes? {
        guard isatty(STDIN_FILENO) == 1 else { return nil }
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        _ = prompt.withCString { Glibc.write(fd, $0, strlen($0)) }
        var saved = termios()
        let hasTermios = tcgetattr(fd, &saved) == 0
        if hasTermios {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            quiet.c_lflag |= tcflag_t(ECHONL)
            _ = tcsetattr(fd, TCSAFLUSH, &quiet)
        }
        defer { if hasTermios { _ = tcsetattr(fd, TCSAFLUSH, &saved) } }
        var line: [UInt8] = []
        defer { for i in line.indices { line[i] = 0 } }
        var byte: UInt8 = 0
        while true {
            let n = Glibc.read(fd, &byte, 1)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 || byte == UInt8(ascii: "\n") { break }
            line.append(byte)
        }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        return SecureBytes(line)
    }

    /// The first line of `path` (`-`: standard input).
    static func read(file path: String) throws(NodeError) -> SecureBytes {
        var bytes: [UInt8]
        if path == "-" {
            bytes = []
            var byte: UInt8 = 0
            while Glibc.read(STDIN_FILENO, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
        } else {
            var st = stat()
            guard stat(path, &st) == 0 else {
                throw NodeError(.invalidArgument, "cannot read the passphrase file \(path): \(String(cString: strerror(errno)))")
            }
            if st.st_mode & S_IFMT == S_IFREG, st.st_mode & 0o077 != 0 {
                let octal = "0" + String(st.st_mode & 0o777, radix: 8)
                throw NodeError(
                    .insecureKey,
                    "the passphrase file \(path) has mode \(octal): group or others can read it, so it is refused; "
                        + "`chmod 600 \(path)` / ไฟล์รหัสผ่าน \(path) ผู้อื่นอ่านได้ จึงไม่ใช้: สั่ง `chmod 600 \(path)`")
            }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw NodeError(.invalidArgument, "cannot read the passphrase file \(path): check its owner and permissions")
            }
            bytes = Array([UInt8](data).prefix { $0 != UInt8(ascii: "\n") })
        }
        defer { for i in bytes.indices { bytes[i] = 0 } }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return SecureBytes(bytes)
    }

    /// The error for a command that needs a passphrase and has neither a terminal nor a file.
    static func missing(_ what: String) -> NodeError {
        NodeError(
            .invalidArgument,
            "ต้องใช้รหัสผ่าน / \(what) needs the officer's passphrase: run the command on a terminal to be asked for it, "
                + "or pass --passphrase-file FILE (its first line; - for standard input); nothing was changed")
    }
}

extension PassphraseOptions {
    /// The passphrase `letter sign` uses for `officer`: asked (or read) when the key has one; for
    /// a key written before passphrases, a new one is asked (or read) and the key is sealed under
    /// it as it signs; without a terminal or a file such a key still signs, with a warning.
    func forSigning(_ node: Node, officer: String) throws(NodeError) -> SecureBytes? {
        if try node.officers.hasPassphrase(officer) {
            guard let p = try current(prompt: "รหัสผ่านของ \(officer) / passphrase for \(officer): ") else {
                throw Passphrase.missing("letter sign")
            }
            return p
        }
        let p = try new(prompt: "\(officer) ยังไม่มีรหัสผ่าน ตั้งรหัสผ่าน / \(officer) has no passphrase yet; choose one: ")
        if p == nil {
            Output.note(
                "warning: the key of officer \(officer) has no passphrase; set one with `saraban officer passwd \(officer)` "
                    + "/ กุญแจของ \(officer) ยังไม่มีรหัสผ่าน")
        }
        return p
    }
}

extension OfficerCommand {
    struct Passwd: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set or change an officer's passphrase (the key is sealed again under the new one).",
            discussion: """
                Asks on the terminal for the current passphrase (when the key has one) and the new one twice,
                or reads them with --passphrase-file (current) and --new-passphrase-file (new). A wrong current
                passphrase exits 77 and changes nothing.
                """)

        @OptionGroup var options: DataOptions
        @Argument(help: "The officer's name.") var name: String
        @OptionGroup var passphrase: PassphraseOptions
        @Option(
            name: .customLong("new-passphrase-file"),
            help: ArgumentHelp("Read the new passphrase from the first line of FILE (- for standard input).", valueName: "FILE"))
        var newPassphraseFile: String?

        func run() async throws {
            try options.withNode { node in
                var old: SecureBytes?
                if try node.officers.hasPassphrase(name) {
                    guard let p = try passphrase.current(prompt: "รหัสผ่านปัจจุบัน / current passphrase for \(name): ") else {
                        throw Passphrase.missing("officer passwd")
                    }
                    old = p
                }
                // A key without a passphrase takes the new one from --passphrase-file too.
                let newFile = newPassphraseFile ?? (old == nil ? passphrase.passphraseFile : nil)
                guard let new = try Passphrase.new(prompt: "รหัสผ่านใหม่ / new passphrase for \(name): ", file: newFile) else {
                    throw Passphrase.missing("officer passwd")
                }
                try node.officers.changePassphrase(name, old: old, new: new)
                Output.note("passphrase of \(name) changed / เปลี่ยนรหัสผ่านของ \(name) แล้ว")
            }
        }
    }
}
