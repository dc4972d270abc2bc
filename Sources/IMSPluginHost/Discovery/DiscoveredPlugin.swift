import IMSProtocol

/// A plugin directory found on the search path, with the verdict of the host's checks.
public struct DiscoveredPlugin: Sendable {
    public enum Status: Sendable, Hashable {
        case ok
        case refused(String)
        case shadowed(by: String)

        public var label: String {
            switch self {
            case .ok: "ok"
            case .refused: "refused"
            case .shadowed: "shadowed"
            }
        }

        public var reason: String? {
            switch self {
            case .ok: nil
            case .refused(let reason): reason
            case .shadowed(let directory): "shadowed by \(directory)"
            }
        }
    }

    /// The manifest id, or the directory name when the manifest could not be read.
    public var id: String
    public var directory: String
    public var origin: PluginSearchPath.Origin
    public var manifest: PluginManifest?
    /// Absolute, symlink-resolved path of the entrypoint, when it checked out.
    public var entrypointPath: String?
    public var status: Status

    public var isUsable: Bool { status == .ok && manifest != nil && entrypointPath != nil }
}

/// A plugin ready to run: its manifest checked, its entrypoint verified, its protocol version chosen.
public struct ResolvedPlugin: Sendable {
    public var manifest: PluginManifest
    public var directory: String
    public var entrypointPath: String
    public var protocolVersion: Int

    public var id: String { manifest.id }
}
