/// The phase kinds protocol 1 defines, and their payload identifiers.
public enum PhaseKind: String, Sendable, CaseIterable, Codable {
    case fetch
    case buildRoot = "build-root"
    case injectCA = "inject-ca"
    case configureDNS = "configure-dns"
    case customize
    case package
    case store
    /// The image root's software bill of materials (an SPDX document of its packages).
    case sbom
    /// A site-defined phase; its payload is `custom/v1`.
    case custom

    /// The payload identifier for version `version` of this phase kind, e.g. `build-root/v1`.
    public func payload(version: Int = 1) -> String { "\(rawValue)/v\(version)" }

    /// The kind of a phase named `name`: a standard kind, or `custom` for any site phase.
    public static func of(phaseName name: String) -> PhaseKind {
        PhaseKind(rawValue: name) ?? .custom
    }
}

/// The verbs a plugin entrypoint accepts as its first argument.
public enum PluginVerb: String, Sendable, Codable, CaseIterable {
    case describe
    case run
    case cleanup
}

/// A payload identifier such as `build-root/v1`, split into kind and version.
public struct PayloadID: Sendable, Hashable, CustomStringConvertible {
    public var kind: String
    public var version: Int

    public init(kind: String, version: Int) {
        self.kind = kind
        self.version = version
    }

    /// Parses `kind/vN`; returns nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[1].hasPrefix("v"),
            let version = Int(parts[1].dropFirst()), version > 0
        else { return nil }
        self.kind = String(parts[0])
        self.version = version
    }

    public var description: String { "\(kind)/v\(version)" }
}
