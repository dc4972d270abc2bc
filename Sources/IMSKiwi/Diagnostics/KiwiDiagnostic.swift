/// A place in a description file: the file as the caller named it, and a 1-based line.
///
/// `file` is the description directory the caller passed, joined with the file's path inside
/// it (`recipes/base/config.xml`, `recipes/base/repositories/core.xml`), so a person can open it
/// from the directory the command ran in.
public struct KiwiSourceLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The file, as the caller named the description directory plus the path inside it.
    public var file: String
    /// The 1-based line, or 0 when libxml2 could not tell.
    public var line: Int

    /// Creates a location.
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `file:line`, the form compilers and editors understand.
    public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// How serious a diagnostic is.
public enum KiwiSeverity: String, Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The description cannot be used as it is.
    case error
    /// The description is usable but something was normalised, guessed or looks wrong.
    case warning
    /// Information only.
    case note

    private var rank: Int {
        switch self {
        case .error: 0
        case .warning: 1
        case .note: 2
        }
    }

    /// Errors sort before warnings, warnings before notes.
    public static func < (lhs: KiwiSeverity, rhs: KiwiSeverity) -> Bool { lhs.rank < rhs.rank }

    public var description: String { rawValue }
}

/// A stable, dotted diagnostic code such as `kiwi.include.missing`.
///
/// Codes never change meaning once published; tools and tests match on them rather than on
/// message text. The full list is in `docs/kiwi.md`.
public struct KiwiDiagnosticCode: RawRepresentable, Sendable, Hashable, Codable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    /// The dotted code.
    public var rawValue: String

    /// Wraps a dotted code.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Wraps a dotted code written as a literal.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// Decodes from a plain JSON string.
    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    /// Encodes as a plain JSON string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
}

extension KiwiDiagnosticCode {
    // Finding and reading the description.
    /// No description file in the directory.
    public static let descriptionNotFound: Self = "kiwi.description.not_found"
    /// Several `*.kiwi` files and no `config.xml`.
    public static let descriptionAmbiguous: Self = "kiwi.description.ambiguous"
    /// A description or include file could not be read, or is not a regular file.
    public static let fileUnreadable: Self = "kiwi.file.unreadable"
    /// A description file could not be written (rewriter).
    public static let fileUnwritable: Self = "kiwi.file.unwritable"
    /// A description or include file is larger than the size limit.
    public static let fileTooLarge: Self = "kiwi.file.too_large"

    // XML.
    /// The XML is not well formed (libxml2's message is included).
    public static let xmlMalformed: Self = "kiwi.xml.malformed"
    /// The root element is not `<image>`.
    public static let xmlRootNotImage: Self = "kiwi.xml.root_not_image"
    /// The document declares entities in a DOCTYPE; refused (no XXE, no entity expansion).
    public static let xmlEntityDeclaration: Self = "kiwi.xml.entity_declaration"
    /// The document has a DOCTYPE; the DTD is ignored and never loaded.
    public static let xmlDoctypeIgnored: Self = "kiwi.xml.doctype_ignored"
    /// Elements are nested deeper than the depth limit.
    public static let xmlTooDeep: Self = "kiwi.xml.too_deep"
    /// The description (with its includes) has more elements than the element limit.
    public static let xmlTooManyElements: Self = "kiwi.xml.too_many_elements"

    // Includes.
    /// An `<include>` names a file that is not in the recipe.
    public static let includeMissing: Self = "kiwi.include.missing"
    /// An included file is not well formed, or its root is not `<image>`.
    public static let includeBroken: Self = "kiwi.include.broken"
    /// An `<include>` path leaves the recipe directory.
    public static let includeEscapes: Self = "kiwi.include.escapes"
    /// Includes form a cycle.
    public static let includeCycle: Self = "kiwi.include.cycle"
    /// An `<include>` has no `from`, or uses a scheme other than `this://` or a plain path.
    public static let includeUnsupported: Self = "kiwi.include.unsupported"
    /// More include expansions than the include limit.
    public static let includeTooMany: Self = "kiwi.include.too_many"

    // The image element and schema version.
    /// `<image>` has no `name`.
    public static let imageNoName: Self = "kiwi.image.no_name"
    /// `<image>` has no `schemaversion`.
    public static let schemaVersionMissing: Self = "kiwi.schema_version.missing"
    /// The schema version cannot be read by this engine (below 6.0, 9.0 or later, or garbage).
    public static let schemaVersionUnsupported: Self = "kiwi.schema_version.unsupported"
    /// A legacy schema version (6.0 to 7.3), read as 7.4.
    public static let schemaVersionLegacy: Self = "kiwi.schema_version.legacy"
    /// A schema version newer than the newest known one (8.5) but still 8.x.
    public static let schemaVersionNewer: Self = "kiwi.schema_version.newer"
    /// No `<description>` section.
    public static let descriptionSectionMissing: Self = "kiwi.description_section.missing"
    /// The raw file contains `{{ … }}` or `{% … %}` template markup.
    public static let templateUnrendered: Self = "kiwi.template.unrendered"

    // Package manager.
    /// No `<packagemanager>` in any `<preferences>`.
    public static let packageManagerMissing: Self = "kiwi.package_manager.missing"
    /// A `<packagemanager>` value this engine does not know.
    public static let packageManagerUnknown: Self = "kiwi.package_manager.unknown"
    /// A legacy package manager spelling (`yum`, `apt-get`, `dnf`) that was normalised.
    public static let packageManagerLegacy: Self = "kiwi.package_manager.legacy"
    /// Different package managers in preferences sections that can be active together.
    public static let packageManagerConflicting: Self = "kiwi.package_manager.conflicting"

    // Repositories.
    /// A `<repository>` without `<source path=…>`.
    public static let repositoryNoSource: Self = "kiwi.repository.no_source"
    /// A repository `type` this engine does not know.
    public static let repositoryUnknownType: Self = "kiwi.repository.unknown_type"
    /// A repository `type` that current kiwi no longer accepts (`rpm-dir`, `yast2`, …).
    public static let repositoryLegacyType: Self = "kiwi.repository.legacy_type"
    /// `obsrepositories:/`, which only works inside an OBS worker.
    public static let repositoryOBSOnly: Self = "kiwi.repository.obs_only"
    /// A `{exc_…}` documentation placeholder instead of a URI.
    public static let repositoryPlaceholder: Self = "kiwi.repository.placeholder"
    /// Credentials written into the description.
    public static let repositoryCredentials: Self = "kiwi.repository.credentials"

    // Packages.
    /// A package name had leading or trailing whitespace, which was removed.
    public static let packageNameTrimmed: Self = "kiwi.package.name_trimmed"
    /// A package entry without a name.
    public static let packageNoName: Self = "kiwi.package.no_name"
    /// The same package twice in the same effective section.
    public static let packageDuplicate: Self = "kiwi.package.duplicate"
    /// An `<archive>` whose file is not in the description directory.
    public static let archiveMissing: Self = "kiwi.archive.missing"
    /// A `<file>` (copied into the image) or the `root/` overlay is missing or unusable.
    public static let overlayMissing: Self = "kiwi.overlay.missing"
    /// A script kiwi runs only for disk or container images (`disk.sh`, `pre_disk_sync.sh`, `config-overlay.sh`,
    /// `config-host-overlay.sh`): a root-filesystem build cannot run it, so it is refused rather than skipped.
    public static let scriptUnsupported: Self = "kiwi.script.unsupported"

    // Types.
    /// Two types that override each other (same image twice, or two primaries) in one scope.
    public static let typesConflicting: Self = "kiwi.types.conflicting"
    /// Types that would conflict only for some profile selection.
    public static let typesAmbiguous: Self = "kiwi.types.ambiguous"
    /// No `<type>` in any `<preferences>`.
    public static let typesNone: Self = "kiwi.types.none"
    /// `<type image="oem">` without `filesystem`.
    public static let typeOEMNoFilesystem: Self = "kiwi.type.oem_no_filesystem"
    /// `<type>` without `image`.
    public static let typeNoImage: Self = "kiwi.type.no_image"
    /// A legacy image type (`vmx`, `clicfs`, …) that current kiwi no longer builds.
    public static let typeLegacy: Self = "kiwi.type.legacy"
    /// An image type this engine does not know.
    public static let typeUnknown: Self = "kiwi.type.unknown"

    // Profiles and users.
    /// A section names a profile that `<profiles>` does not declare.
    public static let profileUndeclared: Self = "kiwi.profile.undeclared"
    /// Two profiles with the same name.
    public static let profileDuplicate: Self = "kiwi.profile.duplicate"
    /// `<requires profile=…>` names an undeclared profile.
    public static let profileRequiresUnknown: Self = "kiwi.profile.requires_unknown"
    /// The profile asked for is not declared (or not available for the architecture).
    public static let profileUnknown: Self = "kiwi.profile.unknown"
    /// A `<user>` without a name.
    public static let userNoName: Self = "kiwi.user.no_name"

    // Distribution family.
    /// The evidence for the distribution family disagrees.
    public static let distroConflicting: Self = "kiwi.distro.conflicting"
}

/// One finding about a description: severity, stable code, message and where.
///
/// The message is one sentence that says what is wrong and what to do about it. `description`
/// renders `file:line: severity: message [code]`.
public struct KiwiDiagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    /// How serious it is.
    public var severity: KiwiSeverity
    /// The stable code.
    public var code: KiwiDiagnosticCode
    /// What is wrong and what to do.
    public var message: String
    /// The file, or nil when the finding is not about one file.
    public var file: String?
    /// The 1-based line, or nil.
    public var line: Int?

    /// Creates a diagnostic.
    public init(_ severity: KiwiSeverity, _ code: KiwiDiagnosticCode, _ message: String, file: String?, line: Int?) {
        self.severity = severity
        self.code = code
        self.message = message
        self.file = file
        self.line = line
    }

    /// Creates a diagnostic at a location.
    public init(_ severity: KiwiSeverity, _ code: KiwiDiagnosticCode, _ message: String, at location: KiwiSourceLocation?) {
        self.init(severity, code, message, file: location?.file, line: location.flatMap { $0.line > 0 ? $0.line : nil })
    }

    /// `file:line: severity: message [code]`.
    public var description: String {
        var prefix = ""
        if let file {
            prefix = file
            if let line { prefix += ":\(line)" }
            prefix += ": "
        }
        return "\(prefix)\(severity): \(message) [\(code)]"
    }

    private enum CodingKeys: String, CodingKey {
        case severity, code, message, file, line
    }
}

extension Array where Element == KiwiDiagnostic {
    /// The diagnostics with severity `error`.
    public var errors: [KiwiDiagnostic] { filter { $0.severity == .error } }
    /// Whether any diagnostic is an error.
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
