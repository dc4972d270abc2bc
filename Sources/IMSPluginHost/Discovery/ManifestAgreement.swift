import IMSProtocol

/// Where what a plugin says of itself (its `describe` message) disagrees with its plugin.json, which the host
/// trusts for discovery and selection. `ims plugins describe` and the conformance kit report the same differences.
public enum ManifestAgreement {
    /// One sentence per difference; empty when they agree.
    public static func differences(_ description: PluginDescription, manifest: PluginManifest) -> [String] {
        var problems: [String] = []
        if description.plugin.id.lowercased() != manifest.id.lowercased() {
            problems.append("id '\(description.plugin.id)' differs from the manifest's '\(manifest.id)'")
        }
        if description.plugin.version != manifest.version {
            problems.append("version '\(description.plugin.version)' differs from the manifest's '\(manifest.version)'")
        }
        if Set(description.protocol.versions) != Set(manifest.protocol.versions) {
            problems.append("protocol versions \(description.protocol.versions) differ from the manifest's \(manifest.protocol.versions)")
        }
        let described = Dictionary(description.phases.map { ($0.name, Set($0.payloads)) }, uniquingKeysWith: { first, _ in first })
        let declared = Dictionary(manifest.phases.map { ($0.name, Set($0.payloads)) }, uniquingKeysWith: { first, _ in first })
        if described != declared {
            problems.append("phases \(described.keys.sorted()) with their payloads differ from the manifest's \(declared.keys.sorted())")
        }
        let missingFeatures = Set(manifest.protocol.features ?? []).subtracting(description.protocol.features)
        if !missingFeatures.isEmpty {
            problems.append("describe does not list features the manifest declares: \(missingFeatures.sorted().joined(separator: ", "))")
        }
        return problems
    }
}
