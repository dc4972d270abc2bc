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
        subcommands: [BuildCommand.self, RecipesCommand.self, ImagesCommand.self, PublicKeysCommand.self, JobsCommand.self, StoreCommand.self, PluginsCommand.self]
    )

    public init() {}
}

/// The process entry point used by the `ims` executable.
public enum CommandLineEntry {
    public static func main() async {
        ims_ignore_sigpipe()
        let level = ProcessInfo.processInfo.environment["IMS_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .notice
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        await IMSRootCommand.main()
    }
}
