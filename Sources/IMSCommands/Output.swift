import ArgumentParser
import Foundation
import IMSServer
import IMSArchive
import IMSCatalog
import IMSEngine
import IMSKiwi
import IMSPluginHost
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

    /// Prints `warning: text` on stderr. A warning is not an error: it never changes the exit code, and `--json`
    /// output (the record, or the event stream) never reports it as one.
    func warning(_ text: String) {
        Output.write(Data(("warning: " + text + "\n").utf8), to: stderr)
    }
}

/// Exit codes decided at the CLI edge; see docs/exit-codes.md.
enum CLIExitCode {
    /// The operation ran and failed (a phase failed, a check failed); details were printed.
    static let failure = ExitCode(1)
    /// Bad input data: a request or manifest file that cannot be used.
    static let dataError = ExitCode(65)
    /// A plugin is missing, refused or cannot be selected; a server cannot be reached.
    static let unavailable = ExitCode(69)
    /// A remote runner was stopped by its server (the job was cancelled, deleted or timed out).
    static let refused = ExitCode(3)
}

/// An error of the command layer itself, with its code and exit code.
struct CLIError: Error, CustomStringConvertible {
    var code: String
    var message: String
    var exitCode: ExitCode

    var description: String { message }

    /// A file or value the user gave cannot be used (exit 65).
    static func input(_ message: String) -> CLIError {
        CLIError(code: "input.invalid", message: message, exitCode: CLIExitCode.dataError)
    }

    /// `subject` (a file the user gave) cannot be used because of `error` (exit 65); keeps the error's code.
    static func input(_ subject: String, _ error: any Error) -> CLIError {
        let (code, message, _) = CLIErrors.describe(error)
        return CLIError(code: code, message: "\(subject): \(message)", exitCode: CLIExitCode.dataError)
    }

    /// The operation ran and failed (exit 1).
    static func failed(_ code: String, _ message: String) -> CLIError {
        CLIError(code: code, message: message, exitCode: CLIExitCode.failure)
    }
}

/// The one place errors become output and exit codes: stderr gets `error: <message>`; with `--json`, stdout also
/// gets `{"code", "message", "exit_code"}`. Every command's errors end here: those a command does not report itself
/// are reported by ``IMSCommand/execute(_:)``. Exit codes (docs/exit-codes.md): 1 failure (not found, conflict, a
/// failed operation or job), 64 usage (`ValidationError`), 65 bad input (invalid values, files, recipes, links,
/// manifests), 69 unavailable (a plugin, the store or the data directory).
enum CLIErrors {
    /// Reports `error`; `exit` overrides the exit code its type implies.
    static func report(_ error: any Error, json: Bool, exit: ExitCode? = nil, context: CommandContext) -> ExitCode {
        if let exitCode = error as? ExitCode { return exitCode }
        let (code, message, implied) = describe(error)
        let status = exit ?? implied
        context.error(message)
        if json { printJSON(code: code, message: message, exit: status, context: context) }
        return status
    }

    /// Prints `{"code", "message", "exit_code"}` on stdout.
    static func printJSON(code: String, message: String, exit: ExitCode, context: CommandContext) {
        try? context.json(RecordsCLI.ErrorReport(code: code, message: message, exitCode: exit.rawValue))
    }

    /// The error's code, message and implied exit code.
    static func describe(_ error: any Error) -> (code: String, message: String, exit: ExitCode) {
        switch error {
        case let error as CatalogError:
            switch error {
            case .invalidValue, .invalidField, .invalidJob, .importData: return (error.code, error.description, CLIExitCode.dataError)
            case .dataDirectory: return (error.code, error.description, CLIExitCode.unavailable)
            default: return (error.code, error.description, CLIExitCode.failure)
            }
        case let error as StoreError:
            switch error {
            case .invalidKey, .notInStore, .invalidManifest, .sourceFailed, .tooLarge: return (error.code, error.description, CLIExitCode.dataError)
            case .unsupportedStore: return (error.code, error.description, CLIExitCode.unavailable)
            default: return (error.code, error.description, CLIExitCode.failure)
            }
        case let error as CLIError:
            return (error.code, error.message, error.exitCode)
        case let error as ValidationError:
            return ("ims.usage", error.message, ExitCode.validationFailure)
        case let error as RecipeError:
            return (error.code.rawValue, String(describing: error), error.code == .repositoriesNotReady ? CLIExitCode.failure : CLIExitCode.dataError)
        case let error as ArchiveError:
            return ("archive." + String(describing: error.code), String(describing: error), CLIExitCode.dataError)
        case is KiwiError:
            return ("kiwi.invalid", String(describing: error), CLIExitCode.dataError)
        case let error as PluginHostError:
            switch error {
            case .invalidRequest: return ("plugin.invalid_request", error.description, CLIExitCode.dataError)
            case .workspace: return ("plugin.workspace", error.description, CLIExitCode.failure)
            default: return ("plugin.unavailable", error.description, CLIExitCode.unavailable)
            }
        case let error as EngineError:
            return (error.code.rawValue, error.description, CLIExitCode.failure)
        case let error as ServerError:
            switch error {
            case .invalidListenAddress, .unauthenticatedNetworkListen: return (error.code, error.description, ExitCode.validationFailure)
            case .jwks: return (error.code, error.description, CLIExitCode.unavailable)
            case .tls: return (error.code, error.description, CLIExitCode.dataError)
            case .executor: return (error.code, error.description, CLIExitCode.unavailable)
            }
        default:
            return ("ims.error", String(describing: error), CLIExitCode.failure)
        }
    }
}
