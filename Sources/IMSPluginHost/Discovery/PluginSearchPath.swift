import Foundation

/// The ordered list of directories searched for plugins; the first plugin with a given id wins.
///
/// Precedence: `IMS_PLUGIN_PATH` (colon-separated), then the site directory (`/etc/ims/plugins`),
/// then the vendor directory (`/usr/lib/ims/plugins`), then the checkout's `Plugins/` when `ims`
/// runs from a source checkout.
public struct PluginSearchPath: Sendable, Hashable {
    /// Where a search directory came from.
    public enum Origin: String, Sendable, Codable {
        case explicit, environment, site, vendor, checkout
    }

    public struct Entry: Sendable, Hashable {
        public var directory: String
        public var origin: Origin
        public init(directory: String, origin: Origin) {
            self.directory = directory
            self.origin = origin
        }
    }

    public static let siteDirectory = "/etc/ims/plugins"
    public static let vendorDirectory = "/usr/lib/ims/plugins"

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// The standard search path for this process.
    ///
    /// - Parameters:
    ///   - explicit: directories given on the command line; searched first.
    ///   - environment: the process environment (for `IMS_PLUGIN_PATH`).
    ///   - executablePath: the running binary, used to find a source checkout's `Plugins/`.
    public static func standard(
        explicit: [String] = [], environment: [String: String] = ProcessInfo.processInfo.environment,
        executablePath: String? = CommandLine.arguments.first
    ) -> PluginSearchPath {
        var entries = explicit.map { Entry(directory: $0, origin: .explicit) }
        if let value = environment["IMS_PLUGIN_PATH"] {
            entries += value.split(separator: ":").map { Entry(directory: String($0), origin: .environment) }
        }
        entries.append(Entry(directory: siteDirectory, origin: .site))
        entries.append(Entry(directory: vendorDirectory, origin: .vendor))
        if let checkout = checkoutPluginsDirectory(executablePath: executablePath) {
            entries.append(Entry(directory: checkout, origin: .checkout))
        }
        return PluginSearchPath(entries: entries)
    }

    /// Walks up from the executable to a directory holding both `Package.swift` and `Plugins/`.
    public static func checkoutPluginsDirectory(executablePath: String?) -> String? {
        guard let executablePath else { return nil }
        var url = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
        let fileManager = FileManager.default
        for _ in 0..<8 {
            let plugins = url.appendingPathComponent("Plugins").path
            if fileManager.fileExists(atPath: url.appendingPathComponent("Package.swift").path),
                fileManager.fileExists(atPath: plugins)
            {
                return plugins
            }
            let parent = url.deletingLastPathComponent()
            if parent.path == url.path { break }
            url = parent
        }
        return nil
    }
}
