import Foundation
import ArgumentParser
import CIMSSystem
import Logging

/// `ims`: the image build engine's command line.
public struct IMSRootCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ims",
        abstract: "Build, customize and manage OS boot images through pluggable phases.",
        discussion: """
            ims runs the image lifecycle (recipes, images, jobs) and hands every phase to an external \
            plugin that speaks JSON over stdin/stdout. Plugins are found by their plugin.json manifests \
            on the plugin search path: --plugin-path, $IMS_PLUGIN_PATH, /etc/ims/plugins, \
            /usr/lib/ims/plugins, then the source checkout's Plugins/.

            Every command takes --json for machine-readable output. Exit codes are listed in docs/exit-codes.md.

            Examples:
                ims plugins list
                ims plugins check org.ims.example.bash
                ims plugins run org.ims.example.python --phase hello --request request.json
            """,
        version: "0.1.0",
        subcommands: [BuildCommand.self, RecipesCommand.self, ImagesCommand.self, PublicKeysCommand.self, JobsCommand.self, StoreCommand.self, PluginsCommand.self, PipelinesCommand.self, ServeCommand.self, CacheCommand.self, CatalogCommand.self]
    )

    public init() {}
}

/// The command-line edge: parses arguments, runs the command with a context, and decides the exit code.
public enum CommandLineEntry {
    /// The process entry point used by the `ims` executable: process-global set-up (SIGPIPE, logging) happens here
    /// and only here, then ``run(_:context:)`` with the process's context, then `exit`.
    public static func main() async {
        ims_ignore_sigpipe()
        let level = ProcessInfo.processInfo.environment["IMS_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        exit(await run(Array(CommandLine.arguments.dropFirst()), context: .process()))
    }

    /// Runs `ims ARGUMENTS` with `context` and returns the exit status. Parse errors, help and `--version`, and
    /// errors escaping a command become output and exit codes as ArgumentParser's own `main()` does
    /// (`exitCode(for:)`, `fullMessage(for:)`); help goes to stdout, everything else to stderr. A command reports its
    /// own errors (``IMSCommand/execute(_:)``); a usage error found while parsing is also reported as JSON on stdout
    /// when `--json` is among the arguments.
    public static func run(_ arguments: [String], context: CommandContext) async -> Int32 {
        var command: any ParsableCommand
        do {
            command = try IMSRootCommand.parseAsRoot(arguments)
        } catch {
            return finish(error, context: context, json: arguments.contains("--json"))
        }
        do {
            if let command = command as? any IMSCommand {
                try await command.execute(context)
            } else if var group = command as? any AsyncParsableCommand {
                try await group.run()
            } else {
                try command.run()
            }
            return ExitCode.success.rawValue
        } catch {
            return finish(error, context: context, json: false)
        }
    }

    /// Prints what ArgumentParser prints for `error` and returns its exit code.
    private static func finish(_ error: any Error, context: CommandContext, json: Bool) -> Int32 {
        let status = IMSRootCommand.exitCode(for: error)
        let text = IMSRootCommand.fullMessage(for: error)
        if !text.isEmpty {
            Output.write(Data((text + "\n").utf8), to: status == .success ? context.stdout : context.stderr)
        }
        if json && status != .success {
            CLIErrors.printJSON(code: "ims.usage", message: IMSRootCommand.message(for: error), exit: status, context: context)
        }
        return status.rawValue
    }
}
