import ArgumentParser
import Foundation
import IMSPluginHost

/// Options every command understands.
public struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("plugin-path"), help: ArgumentHelp("Search this plugin directory first (repeatable).", valueName: "dir"))
    public var pluginPaths: [String] = []

    @Flag(name: .long, help: "Print machine-readable JSON (snake_case keys) instead of text.")
    public var json = false

    public init() {}

    /// The plugin search path these options describe, in `context`'s environment (`IMS_PLUGIN_PATH`).
    public func searchPath(_ context: CommandContext) -> PluginSearchPath {
        PluginSearchPath.standard(explicit: pluginPaths, environment: context.environment, executablePath: context.executablePath)
    }

    /// The running binary: `/proc/self/exe`, else `argv[0]`.
    static func executablePath() -> String? {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments.first
    }
}
