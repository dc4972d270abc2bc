import Foundation
import IMSKiwi

/// A KIWI description resolved for one profile selection and architecture, as plugins receive it
/// (`description.json`, the `description` input of build-root). Plugins in any language build from
/// this instead of parsing XML. See docs/builders.md for the contract.
public struct ResolvedDescription: Sendable, Hashable, Codable {
    public struct Preferences: Sendable, Hashable, Codable {
        public struct ImageType: Sendable, Hashable, Codable {
            public var image: String
            public var attributes: [String: String]
        }

        public var locale: String?
        public var keytable: String?
        public var timezone: String?
        public var rpmCheckSignatures: Bool?
        public var rpmExcludedocs: Bool?
        public var types: [ImageType]

        enum CodingKeys: String, CodingKey {
            case locale, keytable, timezone, types
            case rpmCheckSignatures = "rpm_check_signatures"
            case rpmExcludedocs = "rpm_excludedocs"
        }
    }

    public struct Repository: Sendable, Hashable, Codable {
        public var alias: String
        public var type: String
        public var source: String
        public var priority: Int?
        public var imageinclude: Bool
        public var imageonly: Bool
        public var repositoryGPGCheck: Bool?
        public var packageGPGCheck: Bool?
        public var username: String?
        public var password: String?
        public var distribution: String?
        public var components: [String]

        enum CodingKeys: String, CodingKey {
            case alias, type, source, priority, imageinclude, imageonly, username, password, distribution, components
            case repositoryGPGCheck = "repository_gpgcheck"
            case packageGPGCheck = "package_gpgcheck"
        }
    }

    public struct Archive: Sendable, Hashable, Codable {
        public var name: String
        public var section: String
        public var targetDir: String?

        enum CodingKeys: String, CodingKey {
            case name, section
            case targetDir = "target_dir"
        }
    }

    /// A `<file>` of a `<packages>` section: `name` (relative to the description directory) copied into the image at
    /// `target` (default: `/` + `name`), then given `owner` (`user:group`) and `permissions` (chmod syntax) when set.
    public struct File: Sendable, Hashable, Codable {
        public var name: String
        public var section: String
        public var target: String?
        public var owner: String?
        public var permissions: String?
    }

    public struct User: Sendable, Hashable, Codable {
        public var name: String
        public var password: String?
        public var pwdformat: String?
        public var home: String?
        public var shell: String?
        public var id: Int?
        public var groups: [String]
        public var realname: String?
    }

    public var name: String
    public var version: String?
    public var schemaVersion: String?
    public var packageManager: String?
    public var distroFamily: String
    public var arch: String
    public var profiles: [String]
    public var preferences: Preferences
    public var repositories: [Repository]
    /// Package names by section type (bootstrap, image, delete, uninstall, per image type), in document order, unique.
    public var packages: [String: [String]]
    /// `namedCollection` names by section type.
    public var collections: [String: [String]]
    public var archives: [Archive]
    public var files: [File]
    public var users: [User]
    public var signingKeys: [String]
    public var postBootstrapSh: String?
    public var configSh: String?
    public var imagesSh: String?
    public var overlay: String?
    /// The `kiwi_*` variables kiwi writes into `/.profile` for this selection (``KiwiDescription/profileEnvironment(profiles:arch:buildType:)``).
    public var profile: [String: String]

    enum CodingKeys: String, CodingKey {
        case name, version, arch, profiles, preferences, repositories, packages, collections, archives, files, users, overlay, profile
        case postBootstrapSh = "post_bootstrap_sh"
        case schemaVersion = "schema_version"
        case packageManager = "package_manager"
        case distroFamily = "distro_family"
        case signingKeys = "signing_keys"
        case configSh = "config_sh"
        case imagesSh = "images_sh"
    }

    /// Resolves `description` for `profiles` (`[]`: kiwi's default, the imported profiles; nil: every profile) and `arch`.
    public static func resolve(
        _ description: KiwiDescription, profiles requested: [String]?, arch: String, distroFamily: String,
        recipeDirectory: String
    ) -> ResolvedDescription {
        let (selection, _) = description.selection(profiles: requested, arch: arch)
        let preferences = description.preferences.filter { selection.includes($0) }
        // When several selected <preferences> set a value, the last one in document order wins, as in kiwi.
        func effectiveSetting(_ value: (KiwiPreferences) -> String?) -> String? { preferences.reversed().lazy.compactMap(value).first }
        let types = preferences.flatMap(\.types).compactMap { type -> Preferences.ImageType? in
            guard let image = type.normalizedImage else { return nil }
            return Preferences.ImageType(image: image, attributes: type.attributes)
        }
        var repositories: [Repository] = []
        var signingKeys: [String] = []
        for (index, repository) in description.repositories.enumerated() where selection.includes(repository) {
            guard let source = repository.sourcePath else { continue }
            repositories.append(Repository(
                alias: repository.alias ?? "repository-\(index + 1)", type: repository.type, source: source,
                priority: repository.priority, imageinclude: repository.imageInclude, imageonly: repository.imageOnly,
                repositoryGPGCheck: repository.repositoryGPGCheck, packageGPGCheck: repository.packageGPGCheck,
                username: repository.username, password: repository.password, distribution: repository.distribution,
                components: repository.components))
            for key in repository.signingKeys where !signingKeys.contains(key) { signingKeys.append(key) }
        }
        var packages: [String: [String]] = [:]
        var collections: [String: [String]] = [:]
        var archives: [Archive] = []
        var files: [File] = []
        for section in description.packageSections where selection.includes(section) {
            for entry in section.entries where selection.matches(arch: entry.arch) {
                switch entry.kind {
                case .package:
                    if !(packages[section.type] ?? []).contains(entry.name) { packages[section.type, default: []].append(entry.name) }
                case .namedCollection:
                    if !(collections[section.type] ?? []).contains(entry.name) { collections[section.type, default: []].append(entry.name) }
                case .archive:
                    archives.append(Archive(name: entry.name, section: section.type, targetDir: entry.targetDirectory))
                case .file:
                    files.append(File(
                        name: entry.name, section: section.type, target: entry.target, owner: entry.attributes["owner"],
                        permissions: entry.attributes["permissions"]))
                default:
                    break
                }
            }
        }
        var users: [User] = []
        for section in description.userSections where selection.includes(section) {
            for user in section.users {
                users.append(User(
                    name: user.name, password: user.password, pwdformat: user.passwordFormat, home: user.home,
                    shell: user.shell, id: user.id.flatMap { Int($0) }, groups: user.groups, realname: user.realName))
            }
        }
        let fileManager = FileManager.default
        func existing(_ name: String) -> String? { fileManager.fileExists(atPath: recipeDirectory + "/" + name) ? name : nil }
        var isDirectory: ObjCBool = false
        let overlay = fileManager.fileExists(atPath: recipeDirectory + "/root", isDirectory: &isDirectory) && isDirectory.boolValue ? "root" : nil
        return ResolvedDescription(
            name: description.name ?? "image", version: effectiveSetting(\.version), schemaVersion: description.schemaVersionAsWritten,
            packageManager: effectiveSetting(\.packageManagerAsWritten), distroFamily: distroFamily, arch: arch,
            profiles: selection.profiles.map { Array($0).sorted() } ?? [],
            preferences: Preferences(
                locale: effectiveSetting(\.locale), keytable: effectiveSetting(\.keytable), timezone: effectiveSetting(\.timezone),
                rpmCheckSignatures: preferences.reversed().lazy.compactMap(\.rpmCheckSignatures).first,
                rpmExcludedocs: preferences.reversed().lazy.compactMap(\.rpmExcludeDocs).first, types: types),
            repositories: repositories, packages: packages, collections: collections, archives: archives, files: files,
            users: users, signingKeys: signingKeys, postBootstrapSh: existing("post_bootstrap.sh"), configSh: existing("config.sh"), imagesSh: existing("images.sh"), overlay: overlay,
            profile: description.profileEnvironment(profiles: requested, arch: arch))
    }

    /// Writes the JSON (sorted keys) to `path`.
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
