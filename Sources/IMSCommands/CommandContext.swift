import ArgumentParser
import Foundation

/// One output stream of a command: where the bytes go, whether it is a terminal, and what a failed write does.
public struct OutputSink: Sendable {
    /// The file handle written to (also handed to event renderers that write themselves).
    public let fileHandle: FileHandle
    /// Whether the stream is a terminal (progress is redrawn in place only on a terminal).
    public let isTerminal: Bool
    private let onWriteFailure: @Sendable () -> Void

    /// - Parameter onWriteFailure: called when a write fails (the reader went away); by default nothing happens.
    public init(fileHandle: FileHandle, isTerminal: Bool = false, onWriteFailure: @escaping @Sendable () -> Void = {}) {
        self.fileHandle = fileHandle
        self.isTerminal = isTerminal
        self.onWriteFailure = onWriteFailure
    }

    /// Writes `data`; a failed write calls the sink's failure action.
    public func write(_ data: Data) {
        do {
            try fileHandle.write(contentsOf: data)
        } catch {
            onWriteFailure()
        }
    }
}

/// What a command reads from and writes to the world outside its options: its output streams, standard input,
/// the environment (`IMS_*`), the current directory and the `ims` executable. The process entry point passes the
/// process's own; tests pass their own, so commands run in process without touching process-global state.
public struct CommandContext: Sendable {
    public var stdout: OutputSink
    public var stderr: OutputSink
    public var stdin: FileHandle
    public var environment: [String: String]
    /// The directory relative paths given on the command line are resolved against.
    public var currentDirectory: String
    /// The `ims` executable (to start background runners, and to find a source checkout's `Plugins/`).
    public var executablePath: String?

    public init(
        stdout: OutputSink, stderr: OutputSink, stdin: FileHandle, environment: [String: String], currentDirectory: String,
        executablePath: String?
    ) {
        self.stdout = stdout
        self.stderr = stderr
        self.stdin = stdin
        self.environment = environment
        self.currentDirectory = currentDirectory
        self.executablePath = executablePath
    }

    /// The running process's context. When a reader goes away (EPIPE, e.g. `ims … | head`), ims stops quietly with
    /// the conventional status 141 instead of crashing.
    public static func process() -> CommandContext {
        let brokenPipe: @Sendable () -> Void = { exit(141) }
        return CommandContext(
            stdout: OutputSink(fileHandle: .standardOutput, isTerminal: isatty(1) == 1, onWriteFailure: brokenPipe),
            stderr: OutputSink(fileHandle: .standardError, isTerminal: isatty(2) == 1, onWriteFailure: brokenPipe),
            stdin: .standardInput, environment: ProcessInfo.processInfo.environment,
            currentDirectory: FileManager.default.currentDirectoryPath, executablePath: GlobalOptions.executablePath())
    }

    /// `path` made absolute against ``currentDirectory`` (`~/…` is left to the callee).
    func absolutePath(_ path: String) -> String {
        path.hasPrefix("/") || path.hasPrefix("~") ? path : currentDirectory + "/" + path
    }
}

/// An `ims` command: it runs with a ``CommandContext``. ArgumentParser's `run()` runs it with the process's context.
public protocol IMSCommand: AsyncParsableCommand {
    /// Whether the command was asked for JSON (`--json`): errors are then also reported as JSON on stdout.
    var json: Bool { get }

    func run(_ context: CommandContext) async throws
}

extension IMSCommand {
    public func run() async throws {
        try await execute(.process())
    }

    /// Runs the command at the command-line edge, as the entry point and in-process tests do: an error the command
    /// did not report itself is reported here (``CLIErrors/report(_:json:exit:context:)``) and becomes its exit code.
    public func execute(_ context: CommandContext) async throws {
        do {
            try await run(context)
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CLIErrors.report(error, json: json, context: context)
        }
    }
}
