import CIMSSystem
import Crypto
import Foundation
import IMSProtocol

#if canImport(Glibc)
    import Glibc
#endif

/// Finds plugins on the search path and vets them without ever executing anything.
public struct PluginCatalog: Sendable {
    public var searchPath: PluginSearchPath
    public private(set) var plugins: [DiscoveredPlugin]

    public init(searchPath: PluginSearchPath) {
        self.searchPath = searchPath
        self.plugins = Self.discover(searchPath)
    }

    /// The usable plugins, in precedence order.
    public var usable: [DiscoveredPlugin] { plugins.filter(\.isUsable) }

    /// Looks a plugin up by id (case-insensitive) or by directory path, and resolves it.
    public func resolve(_ idOrDirectory: String) throws(PluginHostError) -> ResolvedPlugin {
        let discovered: DiscoveredPlugin
        if idOrDirectory.contains("/") || FileManager.default.fileExists(atPath: idOrDirectory + "/plugin.json") {
            discovered = Self.inspect(directory: idOrDirectory, origin: .explicit)
        } else if let match = plugins.first(where: { $0.id.lowercased() == idOrDirectory.lowercased() && !isShadowed($0) }) {
            discovered = match
        } else {
            throw .pluginNotFound(idOrDirectory, searched: searchPath.entries.map(\.directory))
        }
        return try Self.resolve(discovered)
    }

    private func isShadowed(_ plugin: DiscoveredPlugin) -> Bool {
        if case .shadowed = plugin.status { return true }
        return false
    }

    /// Turns a discovered plugin into a runnable one, or explains why it cannot run.
    public static func resolve(_ discovered: DiscoveredPlugin) throws(PluginHostError) -> ResolvedPlugin {
        guard case .ok = discovered.status, let manifest = discovered.manifest, let entrypoint = discovered.entrypointPath else {
            throw .pluginRefused(id: discovered.id, directory: discovered.directory, reason: discovered.status.reason ?? "unusable")
        }
        let shared = Set(manifest.protocol.versions).intersection(WireFormat.supportedVersions)
        guard let version = shared.max() else {
            throw .noSharedProtocolVersion(id: manifest.id, pluginVersions: manifest.protocol.versions, hostVersions: WireFormat.supportedVersions)
        }
        return ResolvedPlugin(manifest: manifest, directory: discovered.directory, entrypointPath: entrypoint, protocolVersion: version)
    }

    // MARK: Discovery

    static func discover(_ searchPath: PluginSearchPath) -> [DiscoveredPlugin] {
        var found: [DiscoveredPlugin] = []
        var winners: [String: String] = [:]
        let fileManager = FileManager.default
        for entry in searchPath.entries {
            guard let names = try? fileManager.contentsOfDirectory(atPath: entry.directory) else { continue }
            for name in names.sorted() where !name.hasPrefix(".") {
                let directory = (entry.directory as NSString).appendingPathComponent(name)
                var isDirectory: ObjCBool = false
                guard fileManager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue,
                    fileManager.fileExists(atPath: directory + "/plugin.json")
                else { continue }
                var plugin = inspect(directory: directory, origin: entry.origin)
                let key = plugin.id.lowercased()
                if plugin.manifest != nil {
                    if let winner = winners[key] {
                        plugin.status = .shadowed(by: winner)
                    } else {
                        winners[key] = directory
                    }
                }
                found.append(plugin)
            }
        }
        return found
    }

    /// Reads and checks one plugin directory.
    public static func inspect(directory rawDirectory: String, origin: PluginSearchPath.Origin) -> DiscoveredPlugin {
        let directory = realPath(rawDirectory) ?? rawDirectory
        let fallbackID = (directory as NSString).lastPathComponent
        var plugin = DiscoveredPlugin(id: fallbackID, directory: directory, origin: origin, manifest: nil, entrypointPath: nil, status: .ok)
        let manifestPath = directory + "/plugin.json"
        func refuse(_ reason: String) -> DiscoveredPlugin {
            plugin.status = .refused(reason)
            return plugin
        }
        if isWorldWritable(directory) { return refuse("its directory \(directory) is world-writable") }
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            return refuse("cannot read \(manifestPath)")
        }
        if isWorldWritable(manifestPath) { return refuse("its manifest \(manifestPath) is world-writable") }
        let manifest: PluginManifest
        do {
            manifest = try ManifestValidator.load(data: data, path: manifestPath)
        } catch {
            if case .invalidManifest(_, let problems) = error {
                return refuse("manifest fails its schema: \(problems.joined(separator: "; "))")
            }
            return refuse("\(error)")
        }
        plugin.id = manifest.id
        plugin.manifest = manifest
        let declared = directory + "/" + manifest.entrypoint
        guard let entrypoint = realPath(declared) else {
            return refuse("its entrypoint \(manifest.entrypoint) does not exist")
        }
        guard entrypoint.hasPrefix(directory + "/") else {
            return refuse("its entrypoint \(manifest.entrypoint) resolves to \(entrypoint), outside the plugin directory")
        }
        var info = stat()
        guard stat(entrypoint, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            return refuse("its entrypoint \(manifest.entrypoint) is not a regular file")
        }
        if info.st_mode & S_IWOTH != 0 { return refuse("its entrypoint \(manifest.entrypoint) is world-writable") }
        guard access(entrypoint, X_OK) == 0 else {
            return refuse("its entrypoint \(manifest.entrypoint) is not executable")
        }
        if let expected = manifest.entrypointSha256 {
            guard let bytes = FileManager.default.contents(atPath: entrypoint) else {
                return refuse("cannot read its entrypoint to check entrypoint_sha256")
            }
            let actual = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            if actual != expected {
                return refuse("its entrypoint's sha256 is \(actual), but the manifest says \(expected)")
            }
        }
        if Set(manifest.protocol.versions).isDisjoint(with: WireFormat.supportedVersions) {
            return refuse(
                "it speaks protocol \(PluginHostError.list(manifest.protocol.versions)); this ims speaks protocol \(PluginHostError.list(WireFormat.supportedVersions))")
        }
        plugin.entrypointPath = entrypoint
        return plugin
    }

    static func isWorldWritable(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        if (info.st_mode & S_IFMT) == S_IFLNK { return false }
        return info.st_mode & S_IWOTH != 0
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
