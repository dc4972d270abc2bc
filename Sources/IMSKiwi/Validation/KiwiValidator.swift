/// What `KiwiValidator` checks beyond the description itself.
public struct KiwiValidationOptions: Sendable, Hashable {
    /// Check that `<archive>` and `<file>` entries and the `root/` overlay exist in the
    /// description directory (default true). Turn off for descriptions whose files are not on
    /// disk (for example, only the XML was uploaded).
    public var checkReferencedFiles: Bool

    /// Creates options.
    public init(checkReferencedFiles: Bool = true) {
        self.checkReferencedFiles = checkReferencedFiles
    }
}

/// Validates descriptions: load-time problems plus semantic checks, as diagnostics.
///
/// Errors mean kiwi would refuse the description or the build would fail; warnings mean
/// something was normalised or looks wrong; notes are information. Every diagnostic names a
/// file and, where it can, a line. The codes are listed on `KiwiDiagnosticCode`.
public enum KiwiValidator {
    /// Finds, loads and validates the description in a directory.
    ///
    /// Never throws: a description that cannot be loaded yields its load errors.
    ///
    /// - Parameters:
    ///   - directory: the description directory.
    ///   - loadOptions: limits and lookup policy.
    ///   - options: what else to check.
    /// - Returns: all diagnostics, load-time ones first.
    public static func validate(
        directory: String, loadOptions: KiwiLoadOptions = .init(), options: KiwiValidationOptions = .init()
    ) -> [KiwiDiagnostic] {
        do {
            return validate(try KiwiLoader.load(directory: directory, options: loadOptions), options: options)
        } catch let error as KiwiError {
            return error.diagnostics
        } catch {
            return [KiwiDiagnostic(.error, .fileUnreadable, "\(error)", file: directory, line: nil)]
        }
    }

    /// Loads and validates a description file.
    ///
    /// - Parameters:
    ///   - file: the description file.
    ///   - loadOptions: limits.
    ///   - options: what else to check.
    /// - Returns: all diagnostics, load-time ones first.
    public static func validate(
        file: String, loadOptions: KiwiLoadOptions = .init(), options: KiwiValidationOptions = .init()
    ) -> [KiwiDiagnostic] {
        do {
            return validate(try KiwiLoader.load(file: file, options: loadOptions), options: options)
        } catch let error as KiwiError {
            return error.diagnostics
        } catch {
            return [KiwiDiagnostic(.error, .fileUnreadable, "\(error)", file: file, line: nil)]
        }
    }

    /// Validates a loaded description.
    ///
    /// - Parameters:
    ///   - description: the description.
    ///   - options: what else to check.
    /// - Returns: the description's load-time diagnostics followed by the semantic checks.
    public static func validate(_ description: KiwiDescription, options: KiwiValidationOptions = .init())
        -> [KiwiDiagnostic]
    {
        var checker = Checker(description: description)
        checker.run(options: options)
        return description.diagnostics + checker.diagnostics
    }
}

private struct Checker {
    let description: KiwiDescription
    var diagnostics: [KiwiDiagnostic] = []

    init(description: KiwiDescription) {
        self.description = description
    }

    mutating func error(_ code: KiwiDiagnosticCode, _ message: String, at location: KiwiSourceLocation) {
        diagnostics.append(KiwiDiagnostic(.error, code, message, at: location))
    }

    mutating func warning(_ code: KiwiDiagnosticCode, _ message: String, at location: KiwiSourceLocation) {
        diagnostics.append(KiwiDiagnostic(.warning, code, message, at: location))
    }

    mutating func run(options: KiwiValidationOptions) {
        checkImage()
        checkPackageManager()
        checkRepositories()
        checkTypes()
        checkProfiles()
        checkPackages()
        checkUsers()
        if options.checkReferencedFiles { checkFiles() }
    }

    // MARK: - Image

    mutating func checkImage() {
        if (description.name ?? "").kiwiTrimmed.isEmpty {
            error(
                .imageNoName,
                "<image> has no name; add name=\"…\" (kiwi names the result files after it)",
                at: description.location)
        }
        if description.info == nil {
            warning(
                .descriptionSectionMissing,
                "no <description> section; add one with <author>, <contact> and <specification>",
                at: description.location)
        }
    }

    // MARK: - Package manager

    mutating func checkPackageManager() {
        var unprofiled: [(KiwiPackageManager, KiwiSourceLocation)] = []
        var any = false
        for preferences in description.preferences {
            guard let element = preferences.settings.first(where: { $0.name == "packagemanager" }) else { continue }
            any = true
            let written = element.trimmedText
            guard let manager = KiwiPackageManager.normalize(written).manager else {
                let known = KiwiPackageManager.allCases.map(\.rawValue).joined(separator: ", ")
                error(
                    .packageManagerUnknown,
                    "unknown package manager '\(written)'; use one of \(known) (legacy yum, dnf and apt-get are also read)",
                    at: element.location)
                continue
            }
            if preferences.profiles.isEmpty { unprofiled.append((manager, element.location)) }
        }
        if !any {
            let location = description.preferences.first?.location ?? description.location
            error(
                .packageManagerMissing,
                "no <packagemanager> in any <preferences> section; add one, e.g. <packagemanager>zypper</packagemanager> or <packagemanager>dnf4</packagemanager>",
                at: location)
        }
        if let first = unprofiled.first, let other = unprofiled.first(where: { $0.0 != first.0 }) {
            warning(
                .packageManagerConflicting,
                "package manager \(other.0.rawValue) differs from \(first.0.rawValue) at \(first.1); kiwi uses the first one, remove the other",
                at: other.1)
        }
    }

    // MARK: - Repositories

    mutating func checkRepositories() {
        for repository in description.repositories {
            guard let path = repository.sourcePath, !path.kiwiTrimmed.isEmpty else {
                let name = repository.alias.map { "repository '\($0)'" } ?? "<repository>"
                error(
                    .repositoryNoSource,
                    "\(name) has no <source path=…>; add <source path=\"https://…\"/> inside it, or remove the repository",
                    at: repository.location)
                continue
            }
            let location = repository.sourceLocation ?? repository.location
            if path.contains("{exc_") {
                error(
                    .repositoryPlaceholder,
                    "source path '\(path)' contains a {exc_…} kiwi documentation placeholder, not a URI; replace it with the real repository URL",
                    at: location)
            }
            if path.hasPrefix("obsrepositories:") {
                warning(
                    .repositoryOBSOnly,
                    "source 'obsrepositories:/' only works inside an OBS worker; outside OBS the repositories must be given explicitly (rewrite the source or add repositories)",
                    at: location)
            }
            if repository.password != nil {
                warning(
                    .repositoryCredentials,
                    "repository \(repository.alias.map { "'\($0)' " } ?? "")has a password written into the description; keep credentials out of recipes and supply them at build time",
                    at: repository.location)
            }
        }
    }

    // MARK: - Types

    mutating func checkTypes() {
        let preferences = description.preferences
        if !preferences.contains(where: { !$0.types.isEmpty }) {
            error(
                .typesNone,
                "no <type> in any <preferences> section; add one, e.g. <type image=\"tbz\"/>",
                at: preferences.first?.location ?? description.location)
        }
        for section in preferences {
            for type in section.types {
                guard let image = type.image, !image.kiwiTrimmed.isEmpty else {
                    error(.typeNoImage, "<type> has no image attribute; add image=\"…\" (oem, iso, tbz, …)", at: type.location)
                    continue
                }
                if !KiwiModelBuilder.currentImageTypes.contains(image) && !KiwiModelBuilder.legacyImageTypes.contains(image) {
                    warning(.typeUnknown, "unknown image type '\(image)'; kiwi will refuse it", at: type.location)
                }
                if image == "oem" && (type.filesystem ?? "").kiwiTrimmed.isEmpty {
                    error(
                        .typeOEMNoFilesystem,
                        "<type image=\"oem\"> has no filesystem attribute; kiwi requires it for oem disks, add filesystem=\"ext4\" (or xfs, btrfs, …)",
                        at: type.location)
                }
            }
        }
        checkTypeConflicts()
    }

    /// Two types conflict when they are the same image type, or both `primary="true"`, and can
    /// be active together.
    mutating func checkTypeConflicts() {
        struct Entry {
            var section: Int
            var type: KiwiImageType
            var image: String
        }
        var entries: [Entry] = []
        for (index, section) in description.preferences.enumerated() {
            for type in section.types {
                // Compare as written: legacy descriptions list vmx and oem side by side, and the
                // kiwi of their era treated them as different types.
                if let image = type.image { entries.append(Entry(section: index, type: type, image: image)) }
            }
        }
        func conflict(_ a: Entry, _ b: Entry) -> String? {
            if a.image == b.image {
                return "the type image=\"\(a.image)\" is defined again (first at \(a.type.location))"
            }
            if a.type.isPrimary && b.type.isPrimary {
                return "a second primary type (the first, image=\"\(a.image)\", is at \(a.type.location))"
            }
            return nil
        }
        let sections = description.preferences
        var reported = Set<[KiwiSourceLocation]>()
        // Always active together: the same section, or two sections without profiles whose
        // architectures overlap.
        for (i, a) in entries.enumerated() {
            for b in entries[(i + 1)...] {
                let sameScope =
                    a.section == b.section
                    || (sections[a.section].profiles.isEmpty && sections[b.section].profiles.isEmpty
                        && KiwiSelection.overlaps(sections[a.section].arch, sections[b.section].arch))
                guard sameScope, let what = conflict(a, b) else { continue }
                reported.insert([a.type.location, b.type.location])
                error(
                    .typesConflicting,
                    "\(what) in the same <preferences> scope; kiwi cannot tell which to build, so move one of them into its own profile",
                    at: b.type.location)
            }
        }
        // Active together only for some profile selections: warn once per pair.
        let resolver = ProfileResolver(description, arch: nil)
        var selections: [(String, Set<String>)] = [("the default profile selection", Set(resolver.resolve([]).profiles))]
        for name in description.profiles.map(\.name).uniqued() {
            selections.append(("profile '\(name)'", Set(resolver.resolve([name]).profiles)))
        }
        for (label, profiles) in selections {
            let selection = KiwiSelection(profiles: profiles, arch: nil)
            let active = entries.filter { selection.includes(sections[$0.section]) }
            for (i, a) in active.enumerated() {
                for b in active[(i + 1)...] where a.section != b.section {
                    guard KiwiSelection.overlaps(sections[a.section].arch, sections[b.section].arch),
                        !reported.contains([a.type.location, b.type.location]), let what = conflict(a, b)
                    else { continue }
                    reported.insert([a.type.location, b.type.location])
                    warning(
                        .typesAmbiguous,
                        "with \(label), \(what); kiwi refuses to build this type for that selection, so keep such types in separate profiles",
                        at: b.type.location)
                }
            }
        }
    }

    // MARK: - Profiles

    mutating func checkProfiles() {
        var declared: [String: KiwiProfile] = [:]
        for profile in description.profiles {
            if profile.name.isEmpty {
                error(.profileUndeclared, "<profile> has no name; add name=\"…\"", at: profile.location)
                continue
            }
            if let first = declared[profile.name], KiwiSelection.overlaps(first.arch, profile.arch) {
                error(
                    .profileDuplicate,
                    "profile '\(profile.name)' is declared twice (first at \(first.location)); rename or remove one",
                    at: profile.location)
            }
            if declared[profile.name] == nil { declared[profile.name] = profile }
        }
        for profile in description.profiles {
            for requirement in profile.requires where declared[requirement.profile] == nil {
                error(
                    .profileRequiresUnknown,
                    "profile '\(profile.name)' requires '\(requirement.profile)', which is not declared; declare it or remove the <requires>",
                    at: requirement.location)
            }
        }
        var scoped: [(String, [String], KiwiSourceLocation)] = []
        scoped += description.preferences.map { ("<preferences>", $0.profiles, $0.location) }
        scoped += description.repositories.map { ("<repository>", $0.profiles, $0.location) }
        scoped += description.packageSections.map { ("<packages>", $0.profiles, $0.location) }
        scoped += description.userSections.map { ("<users>", $0.profiles, $0.location) }
        scoped += description.otherSections.map {
            ("<\($0.name)>", ($0[attribute: "profiles"] ?? "").kiwiCommaList, $0.location)
        }
        for (element, profiles, location) in scoped {
            for name in profiles where declared[name] == nil {
                warning(
                    .profileUndeclared,
                    "\(element) names profile '\(name)', which is not declared in <profiles>; the section is never used, declare the profile or fix the name",
                    at: location)
            }
        }
    }

    // MARK: - Packages and users

    mutating func checkPackages() {
        for section in description.packageSections {
            for entry in section.entries where entry.kind != .other && entry.kind != .collectionModule {
                if entry.name.isEmpty {
                    error(.packageNoName, "<\(entry.elementName)> has no name; add name=\"…\" or remove it", at: entry.location)
                }
            }
        }
    }

    mutating func checkUsers() {
        for section in description.userSections {
            for user in section.users where user.name.isEmpty {
                error(.userNoName, "<user> has no name; add name=\"…\"", at: user.location)
            }
        }
    }

    // MARK: - Referenced files

    /// Scripts kiwi runs only for image types ims does not build, with when kiwi runs them.
    static let diskAndContainerScripts: [(script: String, when: String)] = [
        ("disk.sh", "when kiwi builds a disk image (oem), chrooted into the disk after the sync"),
        ("pre_disk_sync.sh", "when kiwi builds a disk image (oem), before the root tree is synced into it"),
        ("config-overlay.sh", "for container images with delta_root=\"true\""),
        ("config-host-overlay.sh", "for container images with delta_root=\"true\""),
    ]

    mutating func checkFiles() {
        let directory = KiwiFileSystem.absolute(description.directory)
        let root = KiwiFileSystem.absolute(description.recipeRoot)
        let realRoot = KiwiFileSystem.realPath(root) ?? root
        /// Nil when the file is present inside the recipe, else why not.
        func problem(_ name: String) -> String? {
            let path = KiwiFileSystem.normalize(KiwiFileSystem.join(directory, name))
            if name.hasPrefix("/") && !KiwiFileSystem.isWithin(path, root: root) {
                return "is an absolute path outside the recipe"
            }
            guard KiwiFileSystem.isWithin(path, root: root) else { return "leaves the recipe directory" }
            guard let real = KiwiFileSystem.realPath(path) else { return "does not exist in \(description.directory)" }
            guard KiwiFileSystem.isWithin(real, root: realRoot) else {
                return "resolves through a symbolic link to outside the recipe"
            }
            return nil
        }
        for section in description.packageSections {
            for entry in section.entries where !entry.name.isEmpty {
                switch entry.kind {
                case .archive:
                    if let reason = problem(entry.name) {
                        error(
                            .archiveMissing,
                            "archive '\(entry.name)' \(reason); put the archive into the description directory and name it relative to it",
                            at: entry.location)
                    }
                case .file:
                    if let reason = problem(entry.name) {
                        error(
                            .overlayMissing,
                            "file '\(entry.name)' (copied into the image) \(reason); put it into the description directory or remove the <file> entry",
                            at: entry.location)
                    }
                default:
                    break
                }
            }
        }
        for (script, when) in Self.diskAndContainerScripts
        where KiwiFileSystem.kind(KiwiFileSystem.join(description.directory, script)) != .missing {
            diagnostics.append(
                KiwiDiagnostic(
                    .error, .scriptUnsupported,
                    "\(script) runs only \(when); ims builds a root filesystem and cannot run it, so its changes would be silently missing from the image: move them into config.sh or images.sh, or remove \(script)",
                    file: KiwiFileSystem.join(description.directory, script), line: nil))
        }
        let overlay = KiwiFileSystem.join(description.directory, "root")
        switch KiwiFileSystem.kind(overlay) {
        case .missing, .directory:
            break
        case .symlink:
            let real = KiwiFileSystem.realPath(KiwiFileSystem.absolute(overlay))
            if real == nil || !KiwiFileSystem.isWithin(real ?? "/", root: realRoot)
                || KiwiFileSystem.kind(real ?? "", followSymlinks: true) != .directory
            {
                diagnostics.append(
                    KiwiDiagnostic(
                        .error, .overlayMissing,
                        "the root/ overlay is a symbolic link that does not lead to a directory inside the recipe; replace it with a real directory",
                        file: overlay, line: nil))
            }
        case .regular, .other:
            diagnostics.append(
                KiwiDiagnostic(
                    .error, .overlayMissing,
                    "root exists but is not a directory; kiwi copies the root/ directory into the image, so make it a directory or remove it",
                    file: overlay, line: nil))
        }
    }
}
