/// Builds the typed model from an expanded `<image>` tree and records normalisation warnings.
struct KiwiModelBuilder {
    var diagnostics: [KiwiDiagnostic] = []

    /// Repository types current kiwi accepts.
    static let currentRepositoryTypes: Set<String> = ["rpm-md", "apt-deb", "apt-rpm", "deb-dir", "mirrors", "apk"]
    /// Repository types older schemas accepted and current kiwi refuses.
    static let legacyRepositoryTypes: Set<String> = [
        "rpm-dir", "yast2", "red-carpet", "urpmi", "slack-site", "up2date-mirrors", "opensuse", "plainDir",
        "rsync", "apt-url",
    ]
    /// Image types current kiwi builds.
    static let currentImageTypes: Set<String> = [
        "btrfs", "cpio", "docker", "ext2", "ext3", "ext4", "iso", "oem", "pxe", "kis", "squashfs", "erofs", "tbz",
        "xfs", "oci", "appx", "enclave", "wsl", "fat16", "fat32",
    ]
    /// Image types older kiwi built.
    static let legacyImageTypes: Set<String> = ["vmx", "clicfs", "split", "usb", "lxc"]

    mutating func build(
        root: KiwiElement, file: String, directory: String, recipeRoot: String, includes: [KiwiInclude],
        isTemplate: Bool, loadDiagnostics: [KiwiDiagnostic]
    ) -> KiwiDescription {
        diagnostics = loadDiagnostics
        var description = KiwiDescription(
            file: file, directory: directory, recipeRoot: recipeRoot,
            name: root[attribute: "name"], displayName: root[attribute: "displayname"], id: root[attribute: "id"],
            schemaVersionAsWritten: root[attribute: "schemaversion"], info: nil, preferences: [], profiles: [],
            repositories: [], packageSections: [], userSections: [], otherSections: [], includes: includes,
            isTemplate: isTemplate, diagnostics: [], location: root.location)

        checkSchemaVersion(root)
        for child in root.children {
            switch child.name {
            case "description":
                if description.info == nil { description.info = buildInfo(child) }
            case "preferences":
                description.preferences.append(buildPreferences(child))
            case "profiles":
                description.profiles += child.children(named: "profile").map(buildProfile)
            case "repository":
                description.repositories.append(buildRepository(child))
            case "packages":
                description.packageSections.append(buildPackages(child))
            case "users":
                description.userSections.append(buildUsers(child))
            default:
                description.otherSections.append(child)
            }
        }
        if isTemplate {
            diagnostics.append(
                KiwiDiagnostic(
                    .warning, .templateUnrendered,
                    "the description contains {{ … }} or {% … %} template markup; render the recipe template before building",
                    at: KiwiSourceLocation(file: file, line: 0)))
        }
        reportDuplicatePackages(description.packageSections)
        description.diagnostics = diagnostics
        return description
    }

    // MARK: - Sections

    private mutating func checkSchemaVersion(_ root: KiwiElement) {
        guard let written = root[attribute: "schemaversion"] else {
            diagnostics.append(
                KiwiDiagnostic(
                    .error, .schemaVersionMissing,
                    "<image> has no schemaversion attribute; add schemaversion=\"7.4\" (or the version the description was written for)",
                    at: root.location))
            return
        }
        guard let version = KiwiSchemaVersion(written) else {
            diagnostics.append(
                KiwiDiagnostic(
                    .error, .schemaVersionUnsupported,
                    "schemaversion \"\(written)\" is not a version number; use major.minor between 6.0 and 8.5",
                    at: root.location))
            return
        }
        switch version.support {
        case .current:
            break
        case .legacy:
            diagnostics.append(
                KiwiDiagnostic(
                    .warning, .schemaVersionLegacy,
                    "legacy schema version \(version), treated as 7.4; current kiwi refuses versions below 7.4, so update schemaversion when the description is next edited",
                    at: root.location))
        case .newer:
            diagnostics.append(
                KiwiDiagnostic(
                    .warning, .schemaVersionNewer,
                    "schema version \(version) is newer than the newest known version 8.5; it is read as 8.5 and new elements are kept generically",
                    at: root.location))
        case .unsupported:
            diagnostics.append(
                KiwiDiagnostic(
                    .error, .schemaVersionUnsupported,
                    "schema version \(version) cannot be read: supported versions are 6.0 to 8.x (6.x and 7.0–7.3 as legacy); convert the description to schema 7.4 or later",
                    at: root.location))
        }
    }

    private func buildInfo(_ element: KiwiElement) -> KiwiDescriptionInfo {
        KiwiDescriptionInfo(
            type: element[attribute: "type"],
            author: element.firstChild(named: "author")?.trimmedText,
            contact: element.firstChild(named: "contact")?.trimmedText,
            specification: element.firstChild(named: "specification")?.trimmedText,
            license: element.firstChild(named: "license")?.trimmedText,
            location: element.location)
    }

    private mutating func buildPreferences(_ element: KiwiElement) -> KiwiPreferences {
        var types: [KiwiImageType] = []
        var settings: [KiwiElement] = []
        for child in element.children {
            if child.name == "type" {
                let type = KiwiImageType(attributes: child.attributes, children: child.children, location: child.location)
                if let image = type.image, Self.legacyImageTypes.contains(image) {
                    let hint = image == "vmx" ? "treated as oem (kiwi 9.17 and later build vmx as oem)" : "current kiwi no longer builds it"
                    diagnostics.append(
                        KiwiDiagnostic(.warning, .typeLegacy, "legacy image type '\(image)', \(hint)", at: child.location))
                }
                types.append(type)
            } else {
                settings.append(child)
                if child.name == "packagemanager" {
                    let written = child.trimmedText
                    let normalization = KiwiPackageManager.normalize(written)
                    if let manager = normalization.manager, normalization.isLegacy {
                        diagnostics.append(
                            KiwiDiagnostic(
                                .warning, .packageManagerLegacy,
                                "legacy package manager spelling '\(written)', treated as \(manager.rawValue); write <packagemanager>\(manager.rawValue)</packagemanager>",
                                at: child.location))
                    }
                }
            }
        }
        return KiwiPreferences(
            profiles: (element[attribute: "profiles"] ?? "").kiwiCommaList,
            arch: (element[attribute: "arch"] ?? "").kiwiCommaList,
            types: types, settings: settings, location: element.location)
    }

    private func buildProfile(_ element: KiwiElement) -> KiwiProfile {
        KiwiProfile(
            name: (element[attribute: "name"] ?? "").kiwiTrimmed,
            description: element[attribute: "description"],
            isImported: element[attribute: "import"]?.kiwiBool ?? false,
            arch: (element[attribute: "arch"] ?? "").kiwiCommaList,
            requires: element.children(named: "requires").map {
                KiwiProfile.Requirement(
                    profile: ($0[attribute: "profile"] ?? "").kiwiTrimmed,
                    arch: ($0[attribute: "arch"] ?? "").kiwiCommaList, location: $0.location)
            },
            location: element.location)
    }

    private mutating func buildRepository(_ element: KiwiElement) -> KiwiRepository {
        let source = element.firstChild(named: "source")
        let repository = KiwiRepository(
            alias: element[attribute: "alias"],
            typeAsWritten: element[attribute: "type"],
            profiles: (element[attribute: "profiles"] ?? "").kiwiCommaList,
            arch: (element[attribute: "arch"] ?? "").kiwiCommaList,
            sourcePath: source?[attribute: "path"],
            signingKeys: source?.children(named: "signing").compactMap { $0[attribute: "key"] } ?? [],
            attributes: element.attributes,
            location: element.location,
            sourceLocation: source?.location,
            ordinalInFile: element.repositoryOrdinal)
        if let type = repository.typeAsWritten {
            if Self.legacyRepositoryTypes.contains(type) {
                diagnostics.append(
                    KiwiDiagnostic(
                        .warning, .repositoryLegacyType,
                        "legacy repository type '\(type)'; current kiwi refuses it, use rpm-md (or apt-deb for Debian)",
                        at: element.location))
            } else if !Self.currentRepositoryTypes.contains(type) {
                diagnostics.append(
                    KiwiDiagnostic(
                        .warning, .repositoryUnknownType,
                        "unknown repository type '\(type)'; kiwi knows rpm-md, apt-deb, apt-rpm, deb-dir, mirrors and apk",
                        at: element.location))
            }
        }
        return repository
    }

    private mutating func buildPackages(_ element: KiwiElement) -> KiwiPackages {
        var entries: [KiwiPackageEntry] = []
        for child in element.children {
            let kind = KiwiPackageEntry.Kind(rawValue: child.name) ?? .other
            let written = child[attribute: "name"]
            let name = (written ?? "").kiwiTrimmed
            if let written, written != name, !name.isEmpty {
                diagnostics.append(
                    KiwiDiagnostic(
                        .warning, .packageNameTrimmed,
                        "\(child.name) name \"\(written)\" has surrounding whitespace; read as \"\(name)\", remove the spaces",
                        at: child.location))
            }
            entries.append(
                KiwiPackageEntry(
                    kind: kind, elementName: child.name, name: name, nameAsWritten: written,
                    arch: (child[attribute: "arch"] ?? "").kiwiCommaList, attributes: child.attributes,
                    location: child.location))
        }
        return KiwiPackages(
            type: (element[attribute: "type"] ?? "image").kiwiTrimmed,
            profiles: (element[attribute: "profiles"] ?? "").kiwiCommaList,
            arch: (element[attribute: "arch"] ?? "").kiwiCommaList,
            patternType: element[attribute: "patternType"],
            attributes: element.attributes, entries: entries, location: element.location)
    }

    private func buildUsers(_ element: KiwiElement) -> KiwiUsers {
        let group = element[attribute: "group"]
        let users = element.children(named: "user").map { user in
            var groups = (user[attribute: "groups"] ?? "").kiwiCommaList
            if groups.isEmpty, let group { groups = [group] }
            return KiwiUser(
                name: (user[attribute: "name"] ?? "").kiwiTrimmed, password: user[attribute: "password"],
                passwordFormat: user[attribute: "pwdformat"], home: user[attribute: "home"],
                shell: user[attribute: "shell"], id: user[attribute: "id"], groups: groups,
                realName: user[attribute: "realname"], attributes: user.attributes, location: user.location)
        }
        return KiwiUsers(
            profiles: (element[attribute: "profiles"] ?? "").kiwiCommaList,
            arch: (element[attribute: "arch"] ?? "").kiwiCommaList,
            group: group, users: users, location: element.location)
    }

    /// Warns about the same package twice in the same effective section: the same section type
    /// and the same profile scope, with overlapping architectures.
    private mutating func reportDuplicatePackages(_ sections: [KiwiPackages]) {
        struct Key: Hashable {
            var type: String
            var profiles: [String]
            var name: String
        }
        var seen: [Key: [KiwiPackageEntry]] = [:]
        for section in sections {
            let scope = Array(Set(section.profiles)).sorted()
            for entry in section.entries where entry.kind == .package && !entry.name.isEmpty {
                let key = Key(type: section.type, profiles: scope, name: entry.name)
                // 6.x lists a package once per `replaces` target; that is not a duplicate.
                let duplicate = seen[key]?.first {
                    KiwiSelection.overlaps($0.arch, entry.arch) && $0.attributes["replaces"] == entry.attributes["replaces"]
                }
                if let first = duplicate {
                    let scopeText = scope.isEmpty ? "" : " for profiles \(scope.joined(separator: ","))"
                    diagnostics.append(
                        KiwiDiagnostic(
                            .warning, .packageDuplicate,
                            "package '\(entry.name)' is listed twice in the \(section.type) packages\(scopeText) (first at \(first.location)); remove one",
                            at: entry.location))
                }
                seen[key, default: []].append(entry)
            }
        }
    }
}
