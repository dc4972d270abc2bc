import Foundation
import IMSKiwi
import Testing

@Suite("Normalisation and validation")
struct KiwiValidationTests {
    @Test(
        "package manager spellings",
        arguments: [
            ("zypper", KiwiPackageManager.zypper, false), ("dnf4", .dnf4, false), ("dnf", .dnf4, true),
            ("yum", .dnf4, true), ("dnf5", .dnf5, false), ("microdnf", .microdnf, false), ("apt", .apt, false),
            ("apt-get", .apt, true), ("pacman", .pacman, false), ("apk", .apk, false), (" Zypper ", .zypper, false),
        ])
    func packageManagerSpellings(written: String, expected: KiwiPackageManager, legacy: Bool) {
        let normalization = KiwiPackageManager.normalize(written)
        #expect(normalization.manager == expected)
        #expect(normalization.isLegacy == legacy)
    }

    @Test("legacy package managers are kept as written, normalised and warned about")
    func legacyPackageManager() throws {
        let description = try KiwiFixtures.load(KiwiFixtures.description(packageManager: "apt-get"))
        #expect(description.packageManagerAsWritten == "apt-get")
        #expect(description.packageManager == .apt)
        let warning = try #require(description.diagnostics.with(.packageManagerLegacy).first)
        #expect(warning.severity == .warning)
        #expect(warning.line == 10)
        #expect(KiwiInspector.report(description, profile: nil, arch: nil).packageManager == "apt-get")
    }

    @Test("a missing or unknown package manager is an error")
    func badPackageManager() throws {
        let unknown = try KiwiFixtures.validate(KiwiFixtures.description(packageManager: "emerge"))
        let error = try #require(unknown.errors.first)
        #expect(error.code == .packageManagerUnknown)
        #expect(error.line == 10)
        #expect(error.message.contains("emerge"))
        let missing = try KiwiFixtures.validate(
            KiwiFixtures.description().replacingOccurrences(of: "<packagemanager>zypper</packagemanager>", with: ""))
        #expect(missing.errors.map(\.code) == [.packageManagerMissing])
        #expect(missing.errors.first?.line == 8)
    }

    @Test(
        "schema versions",
        arguments: [
            ("6.5", KiwiDiagnosticCode?.some(.schemaVersionLegacy), KiwiSeverity.warning),
            ("7.3", .schemaVersionLegacy, .warning), ("7.4", nil, .note), ("8.5", nil, .note),
            ("8.9", .schemaVersionNewer, .warning), ("5.9", .schemaVersionUnsupported, .error),
            ("9.0", .schemaVersionUnsupported, .error), ("seven", .schemaVersionUnsupported, .error),
        ])
    func schemaVersions(version: String, code: KiwiDiagnosticCode?, severity: KiwiSeverity) throws {
        let description = try KiwiFixtures.load(KiwiFixtures.description(schema: version))
        let schemaDiagnostics = description.diagnostics.filter { $0.code.rawValue.hasPrefix("kiwi.schema_version") }
        #expect(schemaDiagnostics.map(\.code) == (code.map { [$0] } ?? []))
        if let first = schemaDiagnostics.first {
            #expect(first.severity == severity)
            #expect(first.line == 2)
        }
        if version == "6.5" {
            #expect(schemaDiagnostics.first?.message.hasPrefix("legacy schema version 6.5, treated as 7.4") == true)
        }
    }

    @Test("a missing schemaversion or name is an error")
    func missingImageAttributes() throws {
        let xml = KiwiFixtures.description().replacingOccurrences(of: #"schemaversion="7.4" name="test""#, with: "")
        let errors = try KiwiFixtures.validate(xml).errors
        #expect(Set(errors.map(\.code)) == [.schemaVersionMissing, .imageNoName])
        #expect(errors.allSatisfy { $0.line == 2 })
    }

    @Test("package names are trimmed and duplicates in the same effective section are warnings")
    func packagesNormalised() throws {
        let xml = KiwiFixtures.description(body: """
            <packages type="image">
                <package name=" vim "/>
                <package name="vim"/>
                <package name="kernel" arch="x86_64"/>
                <package name="kernel" arch="aarch64"/>
                <package name="grub" replaces="a"/>
                <package name="grub" replaces="b"/>
            </packages>
            <packages type="image"><package name="vim"/></packages>
            <packages type="image" profiles="p"><package name="vim"/></packages>
            <profiles><profile name="p" description="p"/></profiles>
            """)
        let description = try KiwiFixtures.load(xml)
        #expect(description.packageSections[1].packages.first?.name == "vim")
        #expect(description.packageSections[1].packages.first?.nameAsWritten == " vim ")
        #expect(description.diagnostics.with(.packageNameTrimmed).map(\.line) == [20])
        #expect(description.diagnostics.with(.packageDuplicate).map(\.line) == [21, 27])
        let errors = KiwiValidator.validate(description).errors
        #expect(errors.isEmpty, "\(errors)")
    }

    @Test("repositories without a source, placeholders, obsrepositories and credentials")
    func repositoryChecks() throws {
        let diagnostics = try KiwiFixtures.validate(KiwiFixtures.description(body: """
            <repository alias="empty"/>
            <repository><source path="{exc_repo_leap}"/></repository>
            <repository><source path="obsrepositories:/"/></repository>
            <repository alias="secret" username="u" password="p"><source path="https://x"/></repository>
            <repository type="rpm-dir"><source path="dir:///srv/repo"/></repository>
            """))
        let noSource = try #require(diagnostics.with(.repositoryNoSource).first)
        #expect(noSource.severity == .error && noSource.line == 19 && noSource.message.contains("'empty'"))
        #expect(diagnostics.with(.repositoryPlaceholder).first?.severity == .error)
        #expect(diagnostics.with(.repositoryOBSOnly).first?.severity == .warning)
        #expect(diagnostics.with(.repositoryCredentials).first?.line == 22)
        #expect(!diagnostics.map(\.description).joined().contains("\"p\""))
        #expect(diagnostics.with(.repositoryLegacyType).first?.line == 23)
    }

    @Test("type checks: conflicting, ambiguous across profiles, primaries, oem filesystem, none")
    func typeChecks() throws {
        let primaries = try KiwiFixtures.validate(KiwiFixtures.description(
            types: #"<type image="tbz" primary="true"/><type image="iso" primary="true"/>"#))
        #expect(primaries.errors.map(\.code) == [.typesConflicting])

        let acrossSections = try KiwiFixtures.validate(KiwiFixtures.description(body: """
            <preferences><type image="tbz"/></preferences>
            <preferences arch="aarch64"><type image="iso"/></preferences>
            <preferences arch="x86_64"><type image="iso"/></preferences>
            """))
        #expect(acrossSections.errors.map(\.code) == [.typesConflicting])
        #expect(acrossSections.errors.first?.line == 19)

        let profiles = try KiwiFixtures.validate(KiwiFixtures.description(body: """
            <profiles>
                <profile name="a" description="a"/>
                <profile name="b" description="b"><requires profile="a"/></profile>
                <profile name="c" description="c"/>
            </profiles>
            <preferences profiles="a"><type image="oem" filesystem="xfs"/></preferences>
            <preferences profiles="b"><type image="oem" filesystem="ext4"/></preferences>
            <preferences profiles="c"><type image="oem" filesystem="ext4"/></preferences>
            """))
        #expect(profiles.errors.isEmpty, "\(profiles.errors)")
        let ambiguous = profiles.with(.typesAmbiguous)
        #expect(ambiguous.count == 1)
        #expect(ambiguous.first?.line == 25)
        #expect(ambiguous.first?.message.contains("profile 'b'") == true)

        let oem = try KiwiFixtures.validate(KiwiFixtures.description(types: #"<type image="oem"/>"#))
        #expect(oem.errors.map(\.code) == [.typeOEMNoFilesystem])
        #expect(oem.errors.first?.line == 11)

        let none = try KiwiFixtures.validate(KiwiFixtures.description(types: ""))
        #expect(none.errors.map(\.code) == [.typesNone])
        let noImage = try KiwiFixtures.validate(KiwiFixtures.description(types: "<type filesystem=\"xfs\"/>"))
        #expect(noImage.errors.map(\.code) == [.typeNoImage])
    }

    @Test("profile checks: undeclared, duplicate, unknown requirement")
    func profileChecks() throws {
        let diagnostics = try KiwiFixtures.validate(KiwiFixtures.description(body: """
            <profiles>
                <profile name="a" description="a"><requires profile="ghost"/></profile>
                <profile name="a" description="again"/>
            </profiles>
            <packages type="image" profiles="typo"><package name="x"/></packages>
            """))
        #expect(diagnostics.with(.profileRequiresUnknown).first?.line == 20)
        #expect(diagnostics.with(.profileDuplicate).first?.line == 21)
        #expect(diagnostics.with(.profileUndeclared).first?.severity == .warning)
        #expect(diagnostics.with(.profileUndeclared).first?.line == 23)
    }

    @Test("a script kiwi runs only for disk or container images is refused by name, since a rootfs build would skip it",
          arguments: [("disk.sh", "disk image"), ("pre_disk_sync.sh", "disk image"), ("config-overlay.sh", "delta_root"),
                      ("config-host-overlay.sh", "delta_root"), ("config.sh", nil), ("images.sh", nil), ("post_bootstrap.sh", nil)])
    func diskAndContainerScripts(script: String, refusedFor: String?) throws {
        let diagnostics = try KiwiFixtures.validate(KiwiFixtures.description(), extraFiles: [script: "#!/bin/sh\n"])
        let refused = diagnostics.with(.scriptUnsupported)
        if let refusedFor {
            #expect(refused.count == 1)
            #expect(refused.first?.severity == .error)
            #expect(refused.first?.file?.hasSuffix("/" + script) == true)
            #expect(refused.first?.message.contains(refusedFor) == true && refused.first?.message.contains("config.sh or images.sh") == true)
        } else {
            #expect(refused.isEmpty, "\(script) is run by ims")
        }
    }

    @Test("archives, files and the root overlay must be in the description directory")
    func referencedFiles() throws {
        let xml = KiwiFixtures.description(body: """
            <packages type="image">
                <archive name="present.tar.gz"/>
                <archive name="absent.tar.gz"/>
                <archive name="../outside.tar.gz"/>
                <file name="files/motd" target="/etc/motd"/>
                <file name="files/absent"/>
            </packages>
            """)
        let diagnostics = try KiwiFixtures.validate(
            xml, extraFiles: ["present.tar.gz": "x", "files/motd": "hello", "root": "not a directory"])
        #expect(diagnostics.with(.archiveMissing).map(\.line) == [21, 22])
        #expect(diagnostics.with(.archiveMissing).first?.message.contains("absent.tar.gz") == true)
        let overlay = diagnostics.with(.overlayMissing)
        #expect(overlay.count == 2)
        #expect(overlay.first?.line == 24)
        #expect(overlay.last?.file?.hasSuffix("/root") == true)
    }

    @Test("a root overlay that is a symbolic link out of the recipe is refused")
    func overlaySymlink() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(KiwiFixtures.description(), to: "config.xml", in: directory)
            try FileManager.default.createSymbolicLink(atPath: directory + "/root", withDestinationPath: "/")
            #expect(KiwiValidator.validate(directory: directory).errors.map(\.code) == [.overlayMissing])
            try FileManager.default.removeItem(atPath: directory + "/root")
            try FileManager.default.createDirectory(atPath: directory + "/overlay/etc", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: directory + "/root", withDestinationPath: "overlay")
            #expect(KiwiValidator.validate(directory: directory).errors.isEmpty)
        }
    }

    @Test("a clean description has no diagnostics at all")
    func clean() throws {
        #expect(try KiwiFixtures.validate(KiwiFixtures.description()).isEmpty)
    }

    @Test("diagnostics render as file:line: severity: message [code] and encode with snake_case keys")
    func rendering() throws {
        let diagnostic = KiwiDiagnostic(.error, .includeMissing, "gone", file: "r/config.xml", line: 9)
        #expect(diagnostic.description == "r/config.xml:9: error: gone [kiwi.include.missing]")
        let json = String(decoding: try JSONEncoder().encode(diagnostic), as: UTF8.self)
        #expect(json.contains("\"code\":\"kiwi.include.missing\""))
        #expect(json.contains("\"severity\":\"error\""))
        let error = KiwiError([KiwiDiagnostic(.warning, .xmlDoctypeIgnored, "w", file: "f", line: 1), diagnostic])
        #expect(error.code == .includeMissing)
        #expect(error.description.hasPrefix("r/config.xml:9: error: gone"))
    }
}
