import ArgumentParser
import Foundation
import IMSProtocol

/// Writes command results to stdout and diagnostics to stderr.
enum Output {
    static func json<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        var data = try encoder.encode(value)
        data.append(0x0A)
        write(data)
    }

    static func line(_ text: String) {
        write(Data((text + "\n").utf8))
    }

    static func error(_ text: String) {
        write(Data(("error: " + text + "\n").utf8), to: .standardError)
    }

    /// Writes to stdout (or `handle`). When the reader went away (EPIPE, e.g. `ims … | head`), ims stops quietly
    /// with the conventional status 141 instead of crashing.
    static func write(_ data: Data, to handle: FileHandle = .standardOutput) {
        do {
            try handle.write(contentsOf: data)
        } catch {
            exit(141)
        }
    }

    static var stdoutIsTerminal: Bool { isatty(1) == 1 }
    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}

/// Exit codes decided at the CLI edge; see docs/exit-codes.md.
enum CLIExitCode {
    /// The operation ran and failed (a phase failed, a check failed); details were printed.
    static let failure = ExitCode(1)
    /// Bad input data: a request or manifest file that cannot be used.
    static let dataError = ExitCode(65)
    /// A plugin is missing, refused or cannot be selected.
    static let unavailable = ExitCode(69)
}
