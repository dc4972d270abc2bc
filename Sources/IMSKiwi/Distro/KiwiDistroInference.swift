/// The distribution family a description builds.
///
/// Fedora, CentOS, Rocky, AlmaLinux, Oracle Linux and RHEL are all the `rhel` family; SLES,
/// SLED, openSUSE Leap and Tumbleweed are `suse`; Debian and Ubuntu are `debian`.
public enum KiwiDistroFamily: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// SLES, SLED, openSUSE Leap and Tumbleweed.
    case suse
    /// RHEL, CentOS, Rocky, AlmaLinux, Oracle Linux and Fedora.
    case rhel
    /// Debian and Ubuntu.
    case debian
    /// Arch Linux.
    case arch
    /// No usable evidence, or a tie.
    case unknown

    public var description: String { rawValue }
}

/// One piece of evidence for the distribution family.
public struct KiwiDistroEvidence: Sendable, Hashable, Codable {
    /// Where the evidence comes from, strongest first.
    public enum Source: String, Sendable, Hashable, Codable {
        /// The caller's explicit override.
        case override
        /// A release or identity package (`sles-release`, `almalinux-release`, …).
        case releasePackage = "release_package"
        /// The `<packagemanager>`.
        case packageManager = "package_manager"
        /// A repository URL, alias or type.
        case repository
    }

    /// Where it comes from.
    public var source: Source
    /// The value that matched (package name, package manager, URL or alias).
    public var value: String
    /// The family it points to.
    public var family: KiwiDistroFamily
    /// The file, when it comes from the description.
    public var file: String?
    /// The line, when it comes from the description.
    public var line: Int?

    private enum CodingKeys: String, CodingKey {
        case source, value, family, file, line
    }
}

/// The inferred distribution family with the evidence used.
///
/// Rules, in order:
/// 1. an explicit override wins;
/// 2. release packages (`sles-release`, `openSUSE-release`, `centos-release`, `almalinux-release`,
///    `rocky-release`, `redhat-release`, `fedora-release`, `oraclelinux-release`,
///    `debian-archive-keyring`, `ubuntu-keyring`, `archlinux-keyring`, …) in the selected
///    packages sections; when they point to several families, the package manager's family
///    breaks the tie if it is among them;
/// 3. the package manager (`zypper` → suse, `dnf4`/`dnf5`/`microdnf`/`yum` → rhel, `apt` →
///    debian, `pacman` → arch);
/// 4. repository URLs, aliases and types (`opensuse`, `suse`, `sles`, `centos`, `almalinux`,
///    `rocky`, `fedora`, `epel`, `debian`, `ubuntu`, `archlinux`, type `apt-deb`), by majority.
///
/// When the release packages or repositories disagree with the chosen family,
/// `diagnostics` has a `kiwi.distro.conflicting` warning.
public struct KiwiDistroInference: Sendable, Hashable {
    /// The family.
    public var family: KiwiDistroFamily
    /// Every piece of evidence found, strongest source first, in document order within a source.
    public var evidence: [KiwiDistroEvidence]
    /// Whether the family comes from the override.
    public var isOverridden: Bool
    /// A warning when the evidence disagrees.
    public var diagnostics: [KiwiDiagnostic]

    /// Infers the family of a description.
    ///
    /// - Parameters:
    ///   - description: the description.
    ///   - selection: which profiles and architecture count (default: everything).
    ///   - override: an explicit family, which wins.
    /// - Returns: the family and the evidence.
    public static func infer(
        _ description: KiwiDescription, selection: KiwiSelection = .everything, override: KiwiDistroFamily? = nil
    ) -> KiwiDistroInference {
        var releases: [KiwiDistroEvidence] = []
        for section in description.packageSections where selection.includes(section) {
            for entry in section.entries where entry.kind == .package && selection.matches(arch: entry.arch) {
                if let family = releasePackageFamily(entry.name) {
                    releases.append(
                        KiwiDistroEvidence(
                            source: .releasePackage, value: entry.name, family: family, file: entry.location.file,
                            line: entry.location.line))
                }
            }
        }
        var managers: [KiwiDistroEvidence] = []
        for preferences in description.preferences where selection.includes(preferences) {
            guard let written = preferences.packageManagerAsWritten,
                let manager = KiwiPackageManager.normalize(written).manager, manager.family != .unknown
            else { continue }
            let location = preferences.settings.first { $0.name == "packagemanager" }?.location ?? preferences.location
            managers.append(
                KiwiDistroEvidence(
                    source: .packageManager, value: written, family: manager.family, file: location.file,
                    line: location.line))
            break  // kiwi uses the first one
        }
        var repositories: [KiwiDistroEvidence] = []
        for repository in description.repositories where selection.includes(repository) {
            if let (value, family) = repositoryFamily(repository) {
                repositories.append(
                    KiwiDistroEvidence(
                        source: .repository, value: value, family: family, file: repository.location.file,
                        line: repository.location.line))
            }
        }

        var evidence = releases + managers + repositories
        let managerFamily = managers.first?.family
        let releaseFamilies = releases.map(\.family).uniqued()
        var family: KiwiDistroFamily = .unknown
        var isOverridden = false
        if let override {
            family = override
            isOverridden = true
            evidence.insert(KiwiDistroEvidence(source: .override, value: override.rawValue, family: override), at: 0)
        } else if releaseFamilies.count == 1, let only = releaseFamilies.first {
            family = only
        } else if releaseFamilies.count > 1 {
            family = managerFamily.flatMap { releaseFamilies.contains($0) ? $0 : nil } ?? majority(releases) ?? .unknown
        } else if let managerFamily {
            family = managerFamily
        } else {
            family = majority(repositories) ?? .unknown
        }

        var diagnostics: [KiwiDiagnostic] = []
        if !isOverridden, family != .unknown {
            let disagreeing = (releases + managers + repositories).filter { $0.family != family }
            if let first = disagreeing.first {
                let values = disagreeing.prefix(5).map { "\($0.value) (\($0.family))" }.joined(separator: ", ")
                diagnostics.append(
                    KiwiDiagnostic(
                        .warning, .distroConflicting,
                        "the distribution family is \(family), but some evidence points elsewhere: \(values); check the repositories and packages, or pass the family explicitly",
                        file: first.file, line: first.line))
            }
        }
        return KiwiDistroInference(
            family: family, evidence: evidence, isOverridden: isOverridden, diagnostics: diagnostics)
    }

    private static func majority(_ evidence: [KiwiDistroEvidence]) -> KiwiDistroFamily? {
        var counts: [KiwiDistroFamily: Int] = [:]
        for item in evidence { counts[item.family, default: 0] += 1 }
        let sorted = counts.sorted { $0.value > $1.value }
        guard let best = sorted.first else { return nil }
        if sorted.count > 1, sorted[1].value == best.value { return nil }
        return best.key
    }

    /// The family a release or identity package names, if any.
    static func releasePackageFamily(_ name: String) -> KiwiDistroFamily? {
        let lower = name.lowercased()
        let suse = [
            "sles-release", "sled-release", "opensuse-release", "opensuse-tumbleweed-release", "leap-release",
            "sle-micro-release", "suse-release",
        ]
        if suse.contains(lower) || (lower.hasPrefix("sle") && lower.hasSuffix("-release"))
            || lower.hasPrefix("patterns-opensuse-") || lower.hasPrefix("patterns-sles-")
            || lower.hasPrefix("patterns-sled-")
        {
            return .suse
        }
        let rhel = [
            "centos-release", "centos-stream-release", "centos-linux-release", "almalinux-release", "rocky-release",
            "redhat-release", "redhat-release-server", "redhat-release-workstation", "fedora-release",
            "fedora-release-common", "oraclelinux-release", "epel-release", "generic-release",
        ]
        if rhel.contains(lower) || lower.hasPrefix("fedora-release-") || lower.hasPrefix("almalinux-release-")
            || lower.hasPrefix("centos-release-") || lower.hasPrefix("rocky-release-")
            || lower.hasPrefix("redhat-release-")
        {
            return .rhel
        }
        if ["debian-archive-keyring", "ubuntu-keyring", "ubuntu-minimal", "ubuntu-standard", "debian-keyring"]
            .contains(lower)
        {
            return .debian
        }
        if lower == "archlinux-keyring" { return .arch }
        return nil
    }

    /// The family a repository's URL, alias or type points to, with the matching value.
    static func repositoryFamily(_ repository: KiwiRepository) -> (String, KiwiDistroFamily)? {
        if let type = repository.typeAsWritten, type == "apt-deb" || type == "deb-dir" {
            return (repository.sourcePath ?? type, .debian)
        }
        let markers: [(String, KiwiDistroFamily)] = [
            ("opensuse", .suse), ("suse", .suse), ("sles", .suse), ("sle-1", .suse), ("sle_1", .suse),
            ("sle1", .suse), ("leap", .suse), ("tumbleweed", .suse),
            ("almalinux", .rhel), ("centos", .rhel), ("rockylinux", .rhel), ("rocky", .rhel), ("fedora", .rhel),
            ("redhat", .rhel), ("rhel", .rhel), ("epel", .rhel),
            ("debian", .debian), ("ubuntu", .debian),
            ("archlinux", .arch),
        ]
        for value in [repository.sourcePath, repository.alias].compactMap({ $0 }) {
            let lower = value.lowercased()
            if let (_, family) = markers.first(where: { lower.contains($0.0) }) {
                return (value, family)
            }
        }
        if let alias = repository.alias, alias.contains("SLE") {
            return (alias, .suse)
        }
        return nil
    }
}
