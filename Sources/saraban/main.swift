// saraban: the one executable. The command tree lives in Commands*.swift; this file checks the
// raw arguments, sets up logging and runs the parsed command, mapping errors to exit codes.
import ArgumentParser
import Foundation
import Logging
import SarabanNode

// Linux's CommandLine.arguments silently repairs invalid UTF-8 into U+FFFD, which would store
// a corrupted value. Read the raw bytes first and refuse such an argument.
if let bad = RawArguments.firstInvalidUTF8() {
    Output.error(
        "argument \(bad.index) is not valid UTF-8 (bytes: \(bad.hex)); saraban stores text as UTF-8: "
            + "re-type the value or convert it (for example with iconv -f TIS-620 -t UTF-8). Nothing was changed.")
    exit(ExitStatus.invalidUTF8)
}

LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    let env = ProcessInfo.processInfo.environment["SARABAN_LOG_LEVEL"] ?? ""
    handler.logLevel = Logger.Level(rawValue: env.lowercased()) ?? .warning
    return handler
}

do {
    var command = try Saraban.parseAsRoot()
    if let asyncCommand = command as? any AsyncParsableCommand {
        try await runAsync(asyncCommand)
    } else {
        try command.run()
    }
} catch let error as NodeError {
    Output.error(error.message)
    exit(error.code.exitCode)
} catch {
    Saraban.exit(withError: error)
}
