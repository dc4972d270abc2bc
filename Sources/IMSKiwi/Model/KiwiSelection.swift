/// Which profiles and architecture count when reading a description.
///
/// `profiles == nil` means every section counts whatever its `profiles` attribute (the view of
/// the description as a whole); otherwise a section counts when it has no `profiles` attribute
/// or names one of the selected profiles (KIWI semantics). `arch == nil` means every
/// architecture counts; otherwise a section or entry counts when it has no `arch` attribute or
/// lists `arch`.
public struct KiwiSelection: Sendable, Hashable {
    /// The selected profiles, including those pulled in by `<requires>`; nil means all.
    public var profiles: Set<String>?
    /// The selected architecture; nil means all.
    public var arch: String?

    /// Creates a selection.
    public init(profiles: Set<String>?, arch: String?) {
        self.profiles = profiles
        self.arch = arch
    }

    /// Every profile and every architecture.
    public static let everything = KiwiSelection(profiles: nil, arch: nil)

    /// Whether a scoped section or entry counts under this selection.
    public func includes(_ scoped: some KiwiScoped) -> Bool {
        includes(profiles: scoped.profiles, arch: scoped.arch)
    }

    /// Whether something with these `profiles` and `arch` attributes counts.
    public func includes(profiles sectionProfiles: [String], arch sectionArch: [String]) -> Bool {
        if let selected = profiles, !sectionProfiles.isEmpty, !sectionProfiles.contains(where: selected.contains) {
            return false
        }
        return matches(arch: sectionArch)
    }

    /// Whether an `arch` attribute (split) admits the selected architecture.
    public func matches(arch sectionArch: [String]) -> Bool {
        guard let arch, !sectionArch.isEmpty else { return true }
        return sectionArch.contains(arch)
    }

    /// Whether two `arch` scopes can be active together (empty means all).
    static func overlaps(_ a: [String], _ b: [String]) -> Bool {
        a.isEmpty || b.isEmpty || a.contains(where: b.contains)
    }
}

extension KiwiDescription {
    /// Resolves a profile request the way kiwi does.
    ///
    /// An empty request selects the profiles marked `import="true"`. Otherwise each requested
    /// profile is added with the profiles it `<requires>`, transitively (a requirement with an
    /// `arch` attribute only applies on those architectures). Profiles whose own `arch` excludes
    /// `arch` are not available.
    ///
    /// - Parameters:
    ///   - names: the requested profiles (kiwi's repeatable `--profile`).
    ///   - arch: the target architecture, or nil for any.
    /// - Returns: the resolved profiles in resolution order, and the requested or required names
    ///   that are not available.
    public func resolveProfiles(_ names: [String], arch: String?) -> (profiles: [String], unknown: [String]) {
        ProfileResolver(self, arch: arch).resolve(names)
    }

    /// A selection for the given profiles and architecture, with a warning for unknown profiles.
    ///
    /// - Parameters:
    ///   - names: nil for every profile; `[]` for kiwi's default (the `import="true"` profiles);
    ///     otherwise the requested profiles, resolved with `resolveProfiles`.
    ///   - arch: the target architecture, or nil for any.
    public func selection(profiles names: [String]?, arch: String?) -> (selection: KiwiSelection, diagnostics: [KiwiDiagnostic]) {
        guard let names else { return (KiwiSelection(profiles: nil, arch: arch), []) }
        let (resolved, unknown) = resolveProfiles(names, arch: arch)
        var diagnostics: [KiwiDiagnostic] = []
        for name in unknown {
            let known = profiles.map(\.name).uniqued()
            let archText = arch.map { " for architecture \($0)" } ?? ""
            diagnostics.append(
                KiwiDiagnostic(
                    .warning, .profileUnknown,
                    "profile '\(name)' is not declared\(archText); declared profiles: \(known.isEmpty ? "none" : known.joined(separator: ", "))",
                    at: KiwiSourceLocation(file: file, line: 0)))
        }
        return (KiwiSelection(profiles: Set(resolved), arch: arch), diagnostics)
    }
}

extension Array where Element: Hashable {
    /// The elements in order, without repeats.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}

/// Resolves profile requests against one description and architecture; build it once and
/// resolve many requests.
struct ProfileResolver {
    private let arch: String?
    private let available: [String: KiwiProfile]
    private let imported: [String]

    init(_ description: KiwiDescription, arch: String?) {
        self.arch = arch
        let archSelection = KiwiSelection(profiles: nil, arch: arch)
        var available: [String: KiwiProfile] = [:]
        for profile in description.profiles
        where archSelection.matches(arch: profile.arch) && available[profile.name] == nil {
            available[profile.name] = profile
        }
        self.available = available
        imported = description.profiles.filter { $0.isImported && available[$0.name] != nil }.map(\.name).uniqued()
    }

    func resolve(_ names: [String]) -> (profiles: [String], unknown: [String]) {
        if names.isEmpty { return (imported, []) }
        let archSelection = KiwiSelection(profiles: nil, arch: arch)
        var resolved: [String] = []
        var seen = Set<String>()
        var unknown: [String] = []
        var pending = Array(names.reversed())
        // Depth-first in document order of the requirements, like kiwi's recursion.
        while let name = pending.popLast() {
            if seen.contains(name) { continue }
            guard let profile = available[name] else {
                if !unknown.contains(name) { unknown.append(name) }
                continue
            }
            seen.insert(name)
            resolved.append(name)
            for requirement in profile.requires.reversed() where archSelection.matches(arch: requirement.arch) {
                pending.append(requirement.profile)
            }
        }
        return (resolved, unknown)
    }
}
