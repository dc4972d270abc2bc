import ArgumentParser
import Foundation
import IMSArchive
import IMSCatalog
import IMSEngine
import IMSKiwi
import IMSProtocol
import IMSRecipes
import IMSStore

/// The one primitive that writes command output: to a sink, which knows what a failed write means.
enum Output {
    static func write(_ data: Data, to sink: OutputSink) {
        sink.write(data)
    }
}

/// Writes command results to stdout and diagnostics to stderr.
extension CommandContext {
    /// Writes bytes to stdout.
    func write(_ data: Data) {
        Output.write(data, to: stdout)
    }

    func line(_ text: String) {
        write(Data((text + "\n").utf8))
    }

    /// Prints a value as pretty-printed JSON with sorted keys.
    func json<T: Encodable>(_ value: T) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted]
        var data = try encoder.encode(value)
        data.append(0x0A)
        write(data)
    }

    /// Prints `error: text` on stderr. Errors are reported through ``CLIErrors/report(_:json:exit:context:)``.
    func error(_ text: String) {
        Output.write(Data(("error: " + text + "\n").utf8), to: stderr)
    }
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

/// The one place errors become output and exit codes: stderr gets `error: <message>`; with `--json`, stdout also
/// gets `{"code", "message", "exit_code"}`. Exit codes (docs/exit-codes.md): 1 failure (not found, conflict, a failed
/// operation), 65 bad input (invalid values, files, links, manifests), 69 unavailable (store or data directory).
enum CLIErrors {
    /// Reports `error`; `exit` overrides the exit code its type implies.
    static func report(_ error: any Error, json: Bool, exit: ExitCode? = nil, context: CommandContext) -> ExitCode {
        if let exitCode = error as? ExitCode { return exitCode }
        let (code, message, implied) = describe(error)
        let status = exit ?? implied
        context.error(message)
        if json { try? context.json(RecordsCLI.ErrorReport(code: code, message: message, exitCode: status.rawValue)) }
        return status
    }

    /// The error's code, message and implied exit code.
    static func describe(_ error: any Error) -> (code: String, message: String, exit: ExitCode) {
        switch error {
        case let error as CatalogError:
            switch error {
            case .invalidValue, .invalidField, .invalidJob: return (error.code, error.description, CLIExitCode.dataError)
            case .dataDirectory: return (error.code, error.description, CLIExitCode.unavailable)
            default: return (error.code, error.description, CLIExitCode.failure)
            }
        case let error as StoreError:
            switch error {
            case .invalidKey, .notInStore, .invalidManifest, .sourceFailed, .tooLarge: return (error.code, error.description, CLIExitCode.dataError)
            case .unsupportedStore: return (error.code, error.description, CLIExitCode.unavailable)
            default: return (error.code, error.description, CLIExitCode.failure)
            }
        case let error as RecordsCLI.InputError:
            return ("input.invalid", error.message, CLIExitCode.dataError)
        case let error as ValidationError:
            return ("input.invalid", error.message, CLIExitCode.failure)
        case let error as RecipeError:
            return (error.code.rawValue, String(describing: error), CLIExitCode.failure)
        case let error as ArchiveError:
            return ("archive." + String(describing: error.code), String(describing: error), CLIExitCode.failure)
        case is KiwiError:
            return ("kiwi.invalid", String(describing: error), CLIExitCode.failure)
        case let error as EngineError:
            return (error.code.rawValue, error.description, CLIExitCode.failure)
        default:
            return ("ims.error", String(describing: error), CLIExitCode.failure)
        }
    }
}
