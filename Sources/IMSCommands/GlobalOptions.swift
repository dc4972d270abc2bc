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

    /// The plugin search path these options describe.
    public func searchPath() -> PluginSearchPath {
        PluginSearchPath.standard(explicit: pluginPaths, executablePath: Self.executablePath())
    }

    static func executablePath() -> String? {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments.first
    }
}
