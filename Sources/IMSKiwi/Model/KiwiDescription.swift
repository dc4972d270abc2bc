/// A section that may be limited to some profiles and architectures.
///
/// KIWI semantics: a section without `profiles` applies to every profile selection; one with
/// `profiles="a,b"` applies when `a` or `b` is selected. A section without `arch` applies to every
/// architecture; one with `arch="x86_64,aarch64"` only to those.
public protocol KiwiScoped {
    /// Profile names from the `profiles` attribute; empty means "all".
    var profiles: [String] { get }
    /// Architectures from the `arch` attribute; empty means "all".
    var arch: [String] { get }
}

/// A KIWI-NG image description: the typed model of the XML after includes are expanded.
///
/// Every modelled element keeps its `location` (file and line). Values are kept as written;
/// normalised forms are separate properties (`packageManager`, `KiwiImageType.normalizedImage`,
/// `KiwiRepository.type`). Normalisation warnings found while loading are in `diagnostics`.
public struct KiwiDescription: Sendable {
    /// The main description file (display path).
    public var file: String
    /// The directory of the main file (display path); `this://` resolves against it.
    public var directory: String
    /// The directory includes must stay inside (display path).
    public var recipeRoot: String
    /// `image@name`.
    public var name: String?
    /// `image@displayname`.
    public var displayName: String?
    /// `image@id`.
    public var id: String?
    /// `image@schemaversion`, as written.
    public var schemaVersionAsWritten: String?
    /// The `<description>` section.
    public var info: KiwiDescriptionInfo?
    /// All `<preferences>` sections in document order.
    public var preferences: [KiwiPreferences]
    /// All declared profiles in document order (from every `<profiles>` section).
    public var profiles: [KiwiProfile]
    /// All repositories in document order.
    public var repositories: [KiwiRepository]
    /// All `<packages>` sections in document order.
    public var packageSections: [KiwiPackages]
    /// All `<users>` sections in document order.
    public var userSections: [KiwiUsers]
    /// Top-level elements the model keeps generically: `drivers`, `strip`, `certificates`,
    /// `containers`, `extension`, and anything unknown.
    public var otherSections: [KiwiElement]
    /// The includes that were expanded, in expansion order.
    public var includes: [KiwiInclude]
    /// Whether the raw main file contains `{{ … }}` or `{% … %}` template markup.
    public var isTemplate: Bool
    /// Warnings and notes (and non-fatal errors such as an unsupported schema version) found
    /// while loading and normalising.
    public var diagnostics: [KiwiDiagnostic]
    /// Where `<image>` starts.
    public var location: KiwiSourceLocation

    /// The parsed schema version, nil when missing or unreadable.
    public var schemaVersion: KiwiSchemaVersion? { schemaVersionAsWritten.flatMap(KiwiSchemaVersion.init) }

    /// The version the description is read as: legacy 6.x–7.3 versions are read as 7.4.
    public var effectiveSchemaVersion: KiwiSchemaVersion? {
        guard let version = schemaVersion else { return nil }
        switch version.support {
        case .legacy: return .oldestCurrent
        case .current, .newer: return version
        case .unsupported: return nil
        }
    }

    /// The first `<packagemanager>` in document order, as written (trimmed).
    public var packageManagerAsWritten: String? {
        preferences.lazy.compactMap(\.packageManagerAsWritten).first
    }

    /// The first `<packagemanager>`, normalised; nil when missing or unknown.
    public var packageManager: KiwiPackageManager? {
        packageManagerAsWritten.flatMap { KiwiPackageManager.normalize($0).manager }
    }

    /// The image version: the first `<version>` in document order.
    public var version: String? { preferences.lazy.compactMap(\.version).first }

    /// The profile names in document order.
    public var profileNames: [String] { profiles.map(\.name) }

    /// All image types of all preferences sections, in document order.
    public var types: [KiwiImageType] { preferences.flatMap(\.types) }

    /// All users of all users sections, in document order.
    public var users: [KiwiUser] { userSections.flatMap(\.users) }

    /// The `<drivers>` sections (kept generically; scope them with `KiwiSelection.includes`).
    public var driverSections: [KiwiElement] { otherSections.filter { $0.name == "drivers" } }

    /// The `<strip>` sections.
    public var stripSections: [KiwiElement] { otherSections.filter { $0.name == "strip" } }

    /// The inferred distribution family (no override). See `KiwiDistroInference`.
    public var distroFamily: KiwiDistroFamily { KiwiDistroInference.infer(self).family }
}

/// The `<description>` section.
public struct KiwiDescriptionInfo: Sendable, Hashable {
    /// `type` (`system` or `boot`).
    public var type: String?
    /// `<author>`.
    public var author: String?
    /// `<contact>`.
    public var contact: String?
    /// `<specification>`, trimmed.
    public var specification: String?
    /// `<license>`.
    public var license: String?
    /// Where it starts.
    public var location: KiwiSourceLocation
}

/// An expanded `<include from=…>`.
public struct KiwiInclude: Sendable, Hashable, Codable {
    /// The `from` attribute as written (`this://./repositories/core.xml`).
    public var from: String
    /// The included file relative to the description directory, normalised
    /// (`repositories/core.xml`).
    public var path: String
    /// Where the `<include>` element is.
    public var location: KiwiSourceLocation
}

/// A `<profile>`.
public struct KiwiProfile: Sendable, Hashable {
    /// `name`.
    public var name: String
    /// `description`.
    public var description: String?
    /// `import="true"`: selected when no profile is given.
    public var isImported: Bool
    /// `arch`, split at commas; empty means all.
    public var arch: [String]
    /// The `<requires profile=…>` children.
    public var requires: [Requirement]
    /// Where it is.
    public var location: KiwiSourceLocation

    /// A `<requires profile=… arch=…>`.
    public struct Requirement: Sendable, Hashable {
        /// The required profile.
        public var profile: String
        /// `arch`; empty means all.
        public var arch: [String]
        /// Where it is.
        public var location: KiwiSourceLocation
    }
}

/// A `<preferences>` section.
public struct KiwiPreferences: Sendable, Hashable, KiwiScoped {
    /// `profiles`; empty means all.
    public var profiles: [String]
    /// `arch`; empty means all.
    public var arch: [String]
    /// The `<type>` children in document order.
    public var types: [KiwiImageType]
    /// Every other child (`version`, `packagemanager`, `locale`, `bootloader-theme`, …) in
    /// document order.
    public var settings: [KiwiElement]
    /// Where it starts.
    public var location: KiwiSourceLocation

    /// The trimmed text of the first child setting with this name.
    public func setting(_ name: String) -> String? {
        settings.first { $0.name == name }?.trimmedText
    }

    /// `<version>`.
    public var version: String? { setting("version") }
    /// `<packagemanager>` as written (trimmed).
    public var packageManagerAsWritten: String? { setting("packagemanager") }
    /// `<packagemanager>`, normalised.
    public var packageManager: KiwiPackageManager? {
        packageManagerAsWritten.flatMap { KiwiPackageManager.normalize($0).manager }
    }
    /// `<release-version>`.
    public var releaseVersion: String? { setting("release-version") }
    /// `<locale>`.
    public var locale: String? { setting("locale") }
    /// `<keytable>`.
    public var keytable: String? { setting("keytable") }
    /// `<timezone>`.
    public var timezone: String? { setting("timezone") }
    /// `<hwclock>`.
    public var hwclock: String? { setting("hwclock") }
    /// `<rpm-check-signatures>`.
    public var rpmCheckSignatures: Bool? { setting("rpm-check-signatures")?.kiwiBool }
    /// `<rpm-excludedocs>`.
    public var rpmExcludeDocs: Bool? { setting("rpm-excludedocs")?.kiwiBool }
    /// `<rpm-locale-filtering>`.
    public var rpmLocaleFiltering: Bool? { setting("rpm-locale-filtering")?.kiwiBool }
    /// `<bootsplash-theme>`.
    public var bootsplashTheme: String? { setting("bootsplash-theme") }
    /// `<bootloader-theme>`.
    public var bootloaderTheme: String? { setting("bootloader-theme") }
}

/// A `<type>` element with all its attributes and (generic) children.
public struct KiwiImageType: Sendable, Hashable {
    /// Every attribute as written.
    public var attributes: [String: String]
    /// Child elements (`bootloader`, `oemconfig`, `systemdisk`, `containerconfig`, …).
    public var children: [KiwiElement]
    /// Where it starts.
    public var location: KiwiSourceLocation

    /// `image`, as written.
    public var image: String? { attributes["image"] }
    /// `image`, with legacy types mapped to current ones (`vmx` → `oem`).
    public var normalizedImage: String? {
        guard let image else { return nil }
        return image == "vmx" ? "oem" : image
    }
    /// `primary="true"`.
    public var isPrimary: Bool { attributes["primary"]?.kiwiBool ?? false }
    /// `filesystem`.
    public var filesystem: String? { attributes["filesystem"] }
    /// `firmware`.
    public var firmware: String? { attributes["firmware"] }
    /// `kernelcmdline`.
    public var kernelCmdline: String? { attributes["kernelcmdline"] }
    /// `format`.
    public var format: String? { attributes["format"] }
    /// `initrd_system`.
    public var initrdSystem: String? { attributes["initrd_system"] }
    /// `boot` (legacy boot description).
    public var boot: String? { attributes["boot"] }
    /// The bootloader: the `<bootloader name=…>` child (8.x) or the `bootloader` attribute.
    public var bootloader: String? {
        children.first { $0.name == "bootloader" }?[attribute: "name"] ?? attributes["bootloader"]
    }
    /// `compressed`.
    public var compressed: Bool? { attributes["compressed"]?.kiwiBool }
    /// The value of any attribute.
    public subscript(attribute name: String) -> String? { attributes[name] }
}

/// A `<repository>` with its `<source>`.
public struct KiwiRepository: Sendable, Hashable, KiwiScoped, CustomStringConvertible {
    /// `alias`.
    public var alias: String?
    /// `type` as written, nil when absent.
    public var typeAsWritten: String?
    /// `profiles`; empty means all.
    public var profiles: [String]
    /// `arch`; empty means all.
    public var arch: [String]
    /// `<source path=…>`, nil when there is no source.
    public var sourcePath: String?
    /// The `<signing key=…>` children of `<source>`.
    public var signingKeys: [String]
    /// Every attribute of `<repository>` as written.
    public var attributes: [String: String]
    /// Where `<repository>` starts.
    public var location: KiwiSourceLocation
    /// Where `<source>` is, when present.
    public var sourceLocation: KiwiSourceLocation?
    /// The position of this repository among the `<repository>` elements of its own file.
    var ordinalInFile: Int

    /// The effective type: `type`, or `rpm-md` when absent.
    public var type: String { typeAsWritten ?? "rpm-md" }
    /// `priority`, when it is an integer.
    public var priority: Int? { attributes["priority"].flatMap { Int($0.kiwiTrimmed) } }
    /// `imageinclude="true"`.
    public var imageInclude: Bool { attributes["imageinclude"]?.kiwiBool ?? false }
    /// `imageonly="true"`.
    public var imageOnly: Bool { attributes["imageonly"]?.kiwiBool ?? false }
    /// `repository_gpgcheck`.
    public var repositoryGPGCheck: Bool? { attributes["repository_gpgcheck"]?.kiwiBool }
    /// `package_gpgcheck`.
    public var packageGPGCheck: Bool? { attributes["package_gpgcheck"]?.kiwiBool }
    /// `customize` (a script name).
    public var customize: String? { attributes["customize"] }
    /// `sourcetype` (`baseurl`, `metalink`, `mirrorlist`).
    public var sourceType: String? { attributes["sourcetype"] }
    /// `username`.
    public var username: String? { attributes["username"] }
    /// `password`. Never printed by `description`.
    public var password: String? { attributes["password"] }
    /// `distribution` (apt).
    public var distribution: String? { attributes["distribution"] }
    /// `components` (apt), split at whitespace.
    public var components: [String] {
        (attributes["components"] ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
    }
    /// `architectures` (apt), split at commas.
    public var architectures: [String] { (attributes["architectures"] ?? "").kiwiCommaList }
    /// Whether credentials are written into the description.
    public var hasCredentials: Bool { username != nil || password != nil }

    /// `alias (type) source` without credentials.
    public var description: String {
        "\(alias ?? "<no alias>") (\(type)) \(sourcePath ?? "<no source>")"
    }
}

/// A `<packages>` section.
public struct KiwiPackages: Sendable, Hashable, KiwiScoped {
    /// `type` as written; `image` when absent.
    public var type: String
    /// `profiles`; empty means all.
    public var profiles: [String]
    /// `arch` (not in the schema for packages, but honoured when present); empty means all.
    public var arch: [String]
    /// `patternType`.
    public var patternType: String?
    /// Every attribute as written (`bootstrap_package`, …).
    public var attributes: [String: String]
    /// The entries in document order.
    public var entries: [KiwiPackageEntry]
    /// Where it starts.
    public var location: KiwiSourceLocation

    /// The `<package>` entries.
    public var packages: [KiwiPackageEntry] { entries.filter { $0.kind == .package } }
    /// The `<archive>` entries.
    public var archives: [KiwiPackageEntry] { entries.filter { $0.kind == .archive } }
    /// The `<file>` entries.
    public var files: [KiwiPackageEntry] { entries.filter { $0.kind == .file } }
}

/// One child of a `<packages>` section.
public struct KiwiPackageEntry: Sendable, Hashable, KiwiScoped {
    /// What kind of entry.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// `<package>`.
        case package
        /// `<namedCollection>`: a SUSE pattern or an RPM comps group.
        case namedCollection
        /// `<collectionModule>`: a dnf module.
        case collectionModule
        /// `<product>`.
        case product
        /// `<archive>`: a tarball from the description directory.
        case archive
        /// `<file>`: a file from the description directory copied into the image.
        case file
        /// `<ignore>`.
        case ignore
        /// An element this engine does not model.
        case other
    }

    /// The kind.
    public var kind: Kind
    /// The element name as written (differs from `kind` only for `.other`).
    public var elementName: String
    /// `name`, trimmed of surrounding whitespace.
    public var name: String
    /// `name` as written.
    public var nameAsWritten: String?
    /// `arch`; empty means all.
    public var arch: [String]
    /// Every attribute as written.
    public var attributes: [String: String]
    /// Where it is.
    public var location: KiwiSourceLocation

    /// Entries carry no `profiles` of their own; their section's apply.
    public var profiles: [String] { [] }
    /// `bootinclude="true"`.
    public var bootInclude: Bool { attributes["bootinclude"]?.kiwiBool ?? false }
    /// `bootdelete="true"`.
    public var bootDelete: Bool { attributes["bootdelete"]?.kiwiBool ?? false }
    /// `target` (`<file>`).
    public var target: String? { attributes["target"] }
    /// `target_dir` (`<archive>`).
    public var targetDirectory: String? { attributes["target_dir"] }
}

/// A `<users>` section.
public struct KiwiUsers: Sendable, Hashable, KiwiScoped {
    /// `profiles`; empty means all.
    public var profiles: [String]
    /// `arch`; empty means all.
    public var arch: [String]
    /// Old-style `group` attribute (6.x), applied to every user of the section.
    public var group: String?
    /// The users in document order.
    public var users: [KiwiUser]
    /// Where it starts.
    public var location: KiwiSourceLocation
}

/// A `<user>`.
public struct KiwiUser: Sendable, Hashable, CustomStringConvertible {
    /// `name`.
    public var name: String
    /// `password`. Never printed by `description`.
    public var password: String?
    /// `pwdformat` (`encrypted` or `plain`).
    public var passwordFormat: String?
    /// `home`.
    public var home: String?
    /// `shell`.
    public var shell: String?
    /// `id`.
    public var id: String?
    /// `groups` split at commas, or the section's old-style `group`.
    public var groups: [String]
    /// `realname`.
    public var realName: String?
    /// Every attribute as written.
    public var attributes: [String: String]
    /// Where it is.
    public var location: KiwiSourceLocation

    /// The user name and groups, without the password.
    public var description: String {
        groups.isEmpty ? name : "\(name) (\(groups.joined(separator: ",")))"
    }
}
