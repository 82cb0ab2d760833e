import Foundation
import Testing

/// The two README commands on a fresh machine (issue 14): `./test.sh` and `./Sync/demo.sh` first
/// run Scripts/system-packages.sh, which installs what the build needs as root and otherwise
/// names the one command to run and exits 69, before any build starts. Driven with stub
/// `pkg-config`, `apt-get` and `swift` on PATH, so nothing is installed or built.
@Suite(.ownThread, .timeLimit(.minutes(5))) struct SetupScriptTests {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// A directory of stubs: pkg-config knows libsodium only once "installed" (the marker file
    /// apt-get writes), apt-get logs its arguments, swift logs that it ran.
    func stubs(_ dir: TempDir, swift: Bool = true) throws -> String {
        let bin = dir.file("bin")
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        func script(_ name: String, _ body: String) throws {
            try ("#!/bin/sh\n" + body + "\n").write(toFile: bin + "/" + name, atomically: true, encoding: .utf8)
            chmod(bin + "/" + name, 0o755)
        }
        let state = dir.file("installed")
        try script("pkg-config", """
            [ "$1" = --exists ] || exit 0
            [ "$2" = libsodium ] && [ ! -f \(state) ] && exit 1
            exit 0
            """)
        try script("apt-get", "echo \"$@\" >> \(dir.file("apt.log")); [ \"$1\" = install ] && touch \(state); exit 0")
        if swift { try script("swift", "echo \"$@\" >> \(dir.file("swift.log")); exit 0") }
        return bin + ":/usr/bin:/bin"
    }

    func script(_ command: String, path: String, uid: String) throws -> Result {
        try run([], shell: command, env: ["PATH": path, "SARABAN_SETUP_UID": uid], cwd: root)
    }

    @Test func aUserIsToldTheOneCommandAndNothingIsBuilt() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let path = try stubs(dir)
        for command in ["./test.sh", "./Sync/demo.sh", "Scripts/system-packages.sh"] {
            let r = try script(command, path: path, uid: "1000")
            #expect(r.status == 69, "\(command): \(r.stderr)")
            #expect(r.stderr.contains("missing here: libsodium-dev"), "\(command): \(r.stderr)")
            #expect(r.stderr.contains("sudo apt-get install -y pkg-config libsodium-dev libsqlite3-dev"), "\(command): \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.file("apt.log")), "apt-get ran for a non-root user")
        #expect(!FileManager.default.fileExists(atPath: dir.file("swift.log")), "a build started before the set-up passed")
    }

    @Test func rootInstallsThenBuildsAndTests() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let path = try stubs(dir)
        let r = try script("./test.sh --filter Nothing", path: path, uid: "0")
        #expect(r.status == 0, "\(r.stderr)")
        let apt = try String(contentsOfFile: dir.file("apt.log"), encoding: .utf8)
        #expect(apt.contains("install -y -qq pkg-config libsodium-dev libsqlite3-dev"), "\(apt)")
        let swift = try String(contentsOfFile: dir.file("swift.log"), encoding: .utf8)
        #expect(swift == "build --build-tests\ntest --filter Nothing\n", "\(swift)")
        // Installed now: a second run installs nothing.
        try FileManager.default.removeItem(atPath: dir.file("apt.log"))
        #expect(try script("Scripts/system-packages.sh", path: path, uid: "1000").status == 0)
        #expect(!FileManager.default.fileExists(atPath: dir.file("apt.log")))
    }

    @Test func withoutSwiftItSaysWhereToGetIt() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let r = try script("./test.sh", path: try stubs(dir, swift: false), uid: "0")
        #expect(r.status == 69 && r.stderr.contains("swift.org/install"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("apt.log")))
    }
}
