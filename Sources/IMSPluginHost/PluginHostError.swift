import IMSProtocol

/// Errors of the plugin host layer: discovery, selection and invocation setup.
public enum PluginHostError: Error, Sendable, CustomStringConvertible {
    case pluginNotFound(String, searched: [String])
    case pluginRefused(id: String, directory: String, reason: String)
    case invalidManifest(path: String, problems: [String])
    case noSharedProtocolVersion(id: String, pluginVersions: [Int], hostVersions: [Int])
    case phaseNotOffered(id: String, phase: String, offered: [String])
    case noSharedPayload(id: String, phase: String, pluginPayloads: [String], hostPayloads: [String])
    case noMatchingPlugin(phase: String, criteria: String, candidates: [String])
    case ambiguousPlugins(phase: String, criteria: String, ids: [String])
    case workspace(path: String, reason: String)
    case secretUnavailable(id: String, name: String)
    case invalidRequest(path: String, reason: String)

    public var description: String {
        switch self {
        case .pluginNotFound(let id, let searched):
            return "no plugin '\(id)' in the plugin search path (\(searched.isEmpty ? "empty" : searched.joined(separator: ":")))"
        case .pluginRefused(let id, let directory, let reason):
            return "plugin '\(id)' at \(directory) was refused: \(reason)"
        case .invalidManifest(let path, let problems):
            return "\(path): invalid plugin manifest: \(problems.joined(separator: "; "))"
        case .noSharedProtocolVersion(let id, let pluginVersions, let hostVersions):
            return "plugin '\(id)' speaks protocol \(Self.list(pluginVersions)); this ims speaks protocol \(Self.list(hostVersions))"
        case .phaseNotOffered(let id, let phase, let offered):
            return "plugin '\(id)' does not offer phase '\(phase)' (it offers: \(offered.joined(separator: ", ")))"
        case .noSharedPayload(let id, let phase, let pluginPayloads, let hostPayloads):
            return "plugin '\(id)' phase '\(phase)' takes payloads \(pluginPayloads.joined(separator: ", ")); this ims sends \(hostPayloads.joined(separator: ", "))"
        case .noMatchingPlugin(let phase, let criteria, let candidates):
            let tail = candidates.isEmpty ? "no installed plugin offers this phase" : "plugins offering it: \(candidates.joined(separator: ", "))"
            return "no plugin for phase '\(phase)' matches \(criteria); \(tail)"
        case .ambiguousPlugins(let phase, let criteria, let ids):
            return "several plugins match phase '\(phase)' for \(criteria): \(ids.joined(separator: ", ")); pin one by id in the pipeline"
        case .workspace(let path, let reason):
            return "cannot prepare workspace \(path): \(reason)"
        case .secretUnavailable(let id, let name):
            return "plugin '\(id)' needs secret '\(name)', which is not configured"
        case .invalidRequest(let path, let reason):
            return "\(path): \(reason)"
        }
    }

    static func list(_ versions: [Int]) -> String {
        versions.map(String.init).joined(separator: ", ")
    }
}
