#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A summary of a description for `ims recipes inspect`: Codable, with snake_case JSON keys.
///
/// Lists keep document order (after include expansion) unless stated otherwise. `packages` maps
/// each `<packages type=…>` value (`image`, `bootstrap`, `delete`, `uninstall`, `iso`, `oem`, …)
/// to the sorted, unique `<package>` names of the sections that count; `image` and `bootstrap`
/// are always present. namedCollection, archive, product, file and ignore entries are not
/// counted.
public struct InspectReport: Sendable, Hashable, Codable {
    /// A repository in the report (no credentials).
    public struct Repository: Sendable, Hashable, Codable {
        /// `alias`, or nil.
        public var alias: String?
        /// `type` as written, or nil when absent.
        public var type: String?
        /// The effective type (`rpm-md` when absent).
        public var effectiveType: String
        /// `<source path>`, or nil.
        public var source: String?
        /// `priority`, when numeric.
        public var priority: Int?
        /// `imageinclude="true"`.
        public var imageInclude: Bool
        /// `profiles`, empty when the repository applies to all.
        public var profiles: [String]
        /// Where `<repository>` is.
        public var file: String
        /// Its line.
        public var line: Int

        private enum CodingKeys: String, CodingKey {
            case alias, type, source, priority, profiles, file, line
            case effectiveType = "effective_type"
            case imageInclude = "image_include"
        }
    }

    /// `image@name`.
    public var name: String?
    /// `image@displayname`.
    public var displayName: String?
    /// `image@schemaversion` as written.
    public var schemaVersion: String?
    /// The version the description is read as (`7.4` for legacy 6.x).
    public var effectiveSchemaVersion: String?
    /// The image `<version>`.
    public var version: String?
    /// The first `<packagemanager>` that counts, AS WRITTEN.
    public var packageManager: String?
    /// The same, normalised (`yum` → `dnf4`), or nil when unknown.
    public var packageManagerNormalized: String?
    /// The inferred (or overridden) distribution family.
    public var distroFamily: KiwiDistroFamily
    /// The evidence for the family.
    public var distroEvidence: [KiwiDistroEvidence]
    /// The declared profile names in document order (those available for `arch`).
    public var profiles: [String]
    /// The profiles the request resolved to (with `<requires>`), nil when every profile counts.
    public var selectedProfiles: [String]?
    /// The architecture asked for, or nil.
    public var arch: String?
    /// The repositories that count.
    public var repositories: [Repository]
    /// Section type → sorted unique package names.
    public var packages: [String: [String]]
    /// The `image` attribute of every `<type>` that counts, duplicates kept.
    public var types: [String]
    /// The user names that count, duplicates kept.
    public var users: [String]
    /// The expanded includes, relative to the description directory, in expansion order.
    public var includes: [String]
    /// Whether the raw file contains template markup.
    public var template: Bool
    /// The main description file.
    public var file: String
    /// Load-time warnings and notes, plus selection warnings (unknown profile, conflicting
    /// distro evidence). Run `KiwiValidator` for the full check.
    public var warnings: [KiwiDiagnostic]

    private enum CodingKeys: String, CodingKey {
        case name, version, profiles, arch, repositories, packages, types, users, includes, template, file, warnings
        case displayName = "displayname"
        case schemaVersion = "schema_version"
        case effectiveSchemaVersion = "effective_schema_version"
        case packageManager = "package_manager"
        case packageManagerNormalized = "package_manager_normalized"
        case distroFamily = "distro_family"
        case distroEvidence = "distro_evidence"
        case selectedProfiles = "selected_profiles"
    }

    /// The report as JSON with sorted keys and unescaped slashes (stable for golden files).
    public func jsonData(prettyPrinted: Bool = true) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = prettyPrinted ? [.sortedKeys, .withoutEscapingSlashes, .prettyPrinted] : [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// Builds `InspectReport`s.
public enum KiwiInspector {
    /// Summarises a description for one profile and architecture.
    ///
    /// Without `profile` and `arch`, every section of every profile and architecture counts.
    /// With `profile`, only sections without a `profiles` attribute or naming that profile or a
    /// profile it `<requires>` (transitively) count; an undeclared profile gives a
    /// `kiwi.profile.unknown` warning. With `arch`, sections, profiles and entries whose `arch`
    /// attribute excludes it are dropped.
    ///
    /// - Parameters:
    ///   - description: the loaded description.
    ///   - profile: a profile name, or nil for all.
    ///   - arch: an architecture (`x86_64`, `aarch64`, …), or nil for all.
    ///   - distroOverride: an explicit distribution family, which wins over inference.
    /// - Returns: the report.
    public static func report(
        _ description: KiwiDescription, profile: String?, arch: String?, distroOverride: KiwiDistroFamily? = nil
    ) -> InspectReport {
        report(description, profiles: profile.map { [$0] }, arch: arch, distroOverride: distroOverride)
    }

    /// Summarises a description for several profiles (kiwi's repeatable `--profile`).
    ///
    /// - Parameters:
    ///   - description: the loaded description.
    ///   - profiles: nil for every profile, `[]` for kiwi's default (`import="true"`) profiles,
    ///     else the requested profiles.
    ///   - arch: an architecture, or nil for all.
    ///   - distroOverride: an explicit distribution family, which wins over inference.
    /// - Returns: the report.
    public static func report(
        _ description: KiwiDescription, profiles: [String]?, arch: String?, distroOverride: KiwiDistroFamily? = nil
    ) -> InspectReport {
        let (selection, selectionDiagnostics) = description.selection(profiles: profiles, arch: arch)
        let preferences = description.preferences.filter(selection.includes)
        let managerWritten = preferences.lazy.compactMap(\.packageManagerAsWritten).first
        let distro = KiwiDistroInference.infer(description, selection: selection, override: distroOverride)

        var packages: [String: Set<String>] = ["image": [], "bootstrap": []]
        for section in description.packageSections where selection.includes(section) {
            var names = packages[section.type, default: []]
            for entry in section.entries where entry.kind == .package && !entry.name.isEmpty {
                if selection.matches(arch: entry.arch) { names.insert(entry.name) }
            }
            packages[section.type] = names
        }

        let repositories = description.repositories.filter(selection.includes).map {
            InspectReport.Repository(
                alias: $0.alias, type: $0.typeAsWritten, effectiveType: $0.type, source: $0.sourcePath,
                priority: $0.priority, imageInclude: $0.imageInclude, profiles: $0.profiles,
                file: $0.location.file, line: $0.location.line)
        }

        let archOnly = KiwiSelection(profiles: nil, arch: arch)
        let warnings = (description.diagnostics + selectionDiagnostics + distro.diagnostics).filter {
            $0.severity != .error || $0.code == .schemaVersionUnsupported || $0.code == .schemaVersionMissing
        }
        return InspectReport(
            name: description.name,
            displayName: description.displayName,
            schemaVersion: description.schemaVersionAsWritten,
            effectiveSchemaVersion: description.effectiveSchemaVersion?.description,
            version: preferences.lazy.compactMap(\.version).first,
            packageManager: managerWritten,
            packageManagerNormalized: managerWritten.flatMap { KiwiPackageManager.normalize($0).manager?.rawValue },
            distroFamily: distro.family,
            distroEvidence: distro.evidence,
            profiles: description.profiles.filter { archOnly.matches(arch: $0.arch) }.map(\.name),
            selectedProfiles: profiles == nil ? nil : description.resolveProfiles(profiles ?? [], arch: arch).profiles,
            arch: arch,
            repositories: repositories,
            packages: packages.mapValues { $0.sorted() },
            types: preferences.flatMap(\.types).compactMap(\.image),
            users: description.userSections.filter(selection.includes).flatMap(\.users).map(\.name),
            includes: description.includes.map(\.path),
            template: description.isTemplate,
            file: description.file,
            warnings: warnings)
    }
}
