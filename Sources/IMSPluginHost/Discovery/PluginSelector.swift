import IMSProtocol

/// What a job knows about its target, used to pick a plugin for a phase.
public struct SelectionCriteria: Sendable, Hashable, CustomStringConvertible {
    public var distroFamily: String?
    public var packageManager: String?
    public var arch: String?

    public init(distroFamily: String? = nil, packageManager: String? = nil, arch: String? = nil) {
        self.distroFamily = distroFamily
        self.packageManager = packageManager
        self.arch = arch
    }

    public var description: String {
        var parts: [String] = []
        if let distroFamily { parts.append("distro_family=\(distroFamily)") }
        if let packageManager { parts.append("package_manager=\(packageManager)") }
        if let arch { parts.append("arch=\(arch)") }
        return parts.isEmpty ? "any target" : parts.joined(separator: ", ")
    }
}

/// Picks the plugin for a phase by manifest selectors; never by running candidates.
public enum PluginSelector {
    /// Whether a manifest phase's selectors accept the criteria. An absent selector list matches anything.
    public static func matches(_ selectors: PluginManifest.Selectors?, _ criteria: SelectionCriteria) -> Bool {
        func accepts(_ list: [String]?, _ value: String?) -> Bool {
            guard let list, let value else { return true }
            return list.contains { $0.lowercased() == value.lowercased() }
        }
        return accepts(selectors?.distroFamily, criteria.distroFamily)
            && accepts(selectors?.packageManager, criteria.packageManager)
            && accepts(selectors?.arch, criteria.arch)
    }

    /// Selects exactly one usable plugin for `phase`, or explains why none or several fit.
    ///
    /// - Parameter pinned: a plugin id that must be used (the pipeline's `plugin:`), bypassing ambiguity.
    public static func select(
        phase: String, criteria: SelectionCriteria, pinned: String? = nil, in catalog: PluginCatalog
    ) throws(PluginHostError) -> ResolvedPlugin {
        if let pinned {
            let plugin = try catalog.resolve(pinned)
            guard plugin.manifest.phase(named: phase) != nil else {
                throw .phaseNotOffered(id: plugin.id, phase: phase, offered: plugin.manifest.phases.map(\.name))
            }
            // A pinned plugin is the site's explicit choice: its selectors only guide automatic selection.
            return plugin
        }
        let offering = catalog.usable.filter { $0.manifest?.phase(named: phase) != nil }
        let matching = offering.filter { matches($0.manifest?.phase(named: phase)?.selectors, criteria) }
        guard let first = matching.first else {
            throw .noMatchingPlugin(phase: phase, criteria: criteria.description, candidates: offering.map(\.id))
        }
        if matching.count > 1 {
            throw .ambiguousPlugins(phase: phase, criteria: criteria.description, ids: matching.map(\.id))
        }
        return try PluginCatalog.resolve(first)
    }
}
