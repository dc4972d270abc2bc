import Foundation
import IMSKiwi
import Testing

@Suite("Description lookup and model")
struct KiwiLoadingTests {
    @Test("lookup order: config.xml, then image/config.xml, then the one *.kiwi")
    func lookupOrder() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            let xml = KiwiFixtures.description()
            #expect(KiwiFixtures.kiwiError { _ = try KiwiLoader.locateDescription(in: directory) }?.code == .descriptionNotFound)
            try KiwiFixtures.write(xml, to: "config.kiwi", in: directory)
            #expect(try KiwiLoader.locateDescription(in: directory).relativePath == "config.kiwi")
            try KiwiFixtures.write(xml, to: "image/config.xml", in: directory)
            #expect(try KiwiLoader.locateDescription(in: directory).relativePath == "image/config.xml")
            try KiwiFixtures.write(xml, to: "config.xml", in: directory)
            let located = try KiwiLoader.locateDescription(in: directory)
            #expect(located.relativePath == "config.xml")
            #expect(located.file == directory + "/config.xml")
        }
    }

    @Test("several .kiwi files: refused with the list, or the first sorted one with a warning")
    func ambiguousKiwiFiles() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(KiwiFixtures.description(name: "b"), to: "b.kiwi", in: directory)
            try KiwiFixtures.write(KiwiFixtures.description(name: "a"), to: "a.kiwi", in: directory)
            let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
            #expect(error.code == .descriptionAmbiguous)
            #expect(error.description.contains("a.kiwi, b.kiwi"))
            let description = try KiwiLoader.load(directory: directory, options: .init(ambiguousKiwiFiles: .firstSorted))
            #expect(description.name == "a")
            #expect(description.diagnostics.with(.descriptionAmbiguous).first?.severity == .warning)
        }
    }

    @Test("image/config.xml may include files from the whole recipe, this:// resolves against image/")
    func imageSubdirectory() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            try KiwiFixtures.write(
                KiwiFixtures.description(body: "<include from=\"this://../shared/repos.xml\"/>"), to: "image/config.xml",
                in: directory)
            try KiwiFixtures.write(
                "<image><repository alias=\"shared\"><source path=\"https://example.com/r\"/></repository></image>",
                to: "shared/repos.xml", in: directory)
            let description = try KiwiLoader.load(directory: directory)
            #expect(description.repositories.map(\.alias) == ["base", "shared"])
            #expect(description.includes.map(\.path) == ["../shared/repos.xml"])
            #expect(description.repositories[1].location.file == directory + "/shared/repos.xml")
            // Loading the file alone keeps includes inside image/.
            let error = KiwiFixtures.kiwiError { _ = try KiwiLoader.load(file: directory + "/image/config.xml") }
            #expect(error?.code == .includeEscapes)
        }
    }

    @Test("includes are expanded in place, nested, with locations from the included files")
    func includesExpanded() throws {
        try KiwiFixtures.withTemporaryDirectory { directory in
            let main = KiwiFixtures.description(body: """
                <include from="this://./parts/first.xml"/>
                <packages type="image"><package name="after"/></packages>
                """)
            try KiwiFixtures.write(main, to: "config.xml", in: directory)
            try KiwiFixtures.write(
                """
                <image>
                    <packages type="image"><package name="first"/></packages>
                    <include from="this://parts/second.xml"/>
                </image>
                """, to: "parts/first.xml", in: directory)
            try KiwiFixtures.write(
                "<image>\n<users><user name=\"second\" groups=\"a,b\"/></users>\n</image>", to: "parts/second.xml", in: directory)
            let description = try KiwiLoader.load(directory: directory)
            #expect(description.includes.map(\.path) == ["parts/first.xml", "parts/second.xml"])
            #expect(description.includes.map(\.from) == ["this://./parts/first.xml", "this://parts/second.xml"])
            #expect(description.packageSections.map(\.type) == ["bootstrap", "image", "image"])
            #expect(description.packageSections[1].packages.map(\.name) == ["first"])
            #expect(description.packageSections[1].location == KiwiSourceLocation(file: directory + "/parts/first.xml", line: 2))
            #expect(description.users.map(\.name) == ["second"])
            #expect(description.users.first?.groups == ["a", "b"])
            #expect(description.users.first?.location.line == 2)
        }
    }

    @Test("the typed model keeps every type attribute and generic children")
    func typedModel() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/kiwi-td-example-config")
        #expect(description.name == "LimeJeOS")
        #expect(description.displayName == "Bob")
        #expect(description.info?.author == "Marcus")
        #expect(description.info?.specification == "Testing various configuration states")
        #expect(description.version == "1.13.2")
        let oem = try #require(description.types.first { $0.isPrimary })
        #expect(oem.image == "oem")
        #expect(oem.filesystem == "btrfs")
        #expect(oem.firmware == "efi")
        #expect(oem.kernelCmdline == "splash")
        #expect(oem[attribute: "luks_version"] == "luks2")
        #expect(oem.attributes.count == 19)
        #expect(oem.children.map(\.name) == ["luksformat", "size", "systemdisk", "machine", "oemconfig", "vagrantconfig", "installmedia"])
        #expect(oem.location.line == 64)
        let vmxSimple = try #require(description.preferences.first { $0.profiles == ["vmxSimpleFlavour"] })
        #expect(vmxSimple.types.first?.bootloader == "grub2")
        let settings = description.preferences[1]
        #expect(settings.packageManagerAsWritten == "zypper")
        #expect(settings.rpmCheckSignatures == true)
        #expect(settings.rpmExcludeDocs == true)
        #expect(settings.timezone == "Europe/Berlin")
        #expect(description.preferences[0].rpmLocaleFiltering == true)
        #expect(description.preferences[2].arch == ["aarch64"])

        let composed = try #require(description.profiles.first { $0.name == "composedProfile" })
        #expect(composed.requires.map(\.profile) == ["vmxSimpleFlavour", "xenDomUFlavour"])
        #expect(composed.requires[1].arch == ["x86_64"])
        #expect(description.profiles.first { $0.name == "vmxFlavour" }?.isImported == true)

        let repository = description.repositories[0]
        #expect(repository.priority == 42)
        #expect(repository.type == "rpm-md")
        #expect(repository.typeAsWritten == nil)
        #expect(repository.sourceType == "baseurl")
        #expect(repository.signingKeys.count == 3)
        #expect(description.repositories[1].imageInclude)
        #expect(description.repositories[1].customize == "script")
        #expect(description.repositories[2].imageOnly)

        let image = description.packageSections[0]
        #expect(image.patternType == "plusRecommended")
        #expect(image.entries.map(\.kind) == [
            .namedCollection, .namedCollection, .product, .package, .package, .package, .package, .package, .package,
            .archive, .package, .file, .file,
        ])
        #expect(image.entries[3].bootInclude)
        #expect(image.entries[10].arch == ["s390", "aarch64"])
        let bootstrap = try #require(description.packageSections.first { $0.type == "bootstrap" })
        #expect(bootstrap.entries.first?.kind == .collectionModule)
        #expect(bootstrap.files.first?.target == "/some/target")
        #expect(description.packageSections.map(\.type) == [
            "image", "iso", "oem", "image", "image", "image", "bootstrap", "delete", "uninstall", "systemfiles",
        ])
        #expect(description.users.map(\.groups) == [[], ["users"], ["kiwi", "admin:42", "users"]])
        #expect(description.otherSections.map(\.name) == [
            "certificates", "drivers", "strip", "strip", "strip", "containers", "containers", "containers", "containers",
        ])
    }

    @Test("old-style users group, credentials and apt repositories")
    func oldStyleAndApt() throws {
        let xml = KiwiFixtures.description(
            packageManager: "apt",
            body: """
                <users group="root"><user name="root" password="x" home="/root"/></users>
                <repository type="apt-deb" distribution="bookworm" components="main contrib" username="u" password="s3cret">
                    <source path="https://deb.debian.org/debian"/>
                </repository>
                """)
        let description = try KiwiFixtures.load(xml)
        #expect(description.users.first?.groups == ["root"])
        #expect(description.userSections.first?.group == "root")
        let apt = description.repositories[1]
        #expect(apt.distribution == "bookworm")
        #expect(apt.components == ["main", "contrib"])
        #expect(apt.hasCredentials)
        #expect(apt.password == "s3cret")
        #expect(!apt.description.contains("s3cret"))
        #expect(description.distroFamily == .debian)
    }

    @Test("drivers sections are kept generically and scoped by their profiles attribute")
    func drivers() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/kiwi-td-isoboot")
        let drivers = description.driverSections
        #expect(drivers.count == 2)
        #expect(drivers.first?.profiles == [])
        let profiled = try #require(drivers.first { $0.profiles == ["xen"] })
        #expect(profiled.location.line == 77)
        #expect(KiwiSelection(profiles: ["xen"], arch: nil).includes(profiled))
        #expect(!KiwiSelection(profiles: ["std"], arch: nil).includes(profiled))
        #expect(drivers.first?.children.first?.name == "file")
    }

    @Test("the benchmark API loads and validates the given descriptions")
    func benchmark() throws {
        try KiwiFixtures.requireCorpus()
        let result = KiwiBenchmark.run(
            paths: [KiwiFixtures.valid + "/kiwi-td-apt", KiwiFixtures.valid + "/cray-sles15sp5-barebones-template/config-template.xml.j2"],
            iterations: 2)
        #expect(result.descriptions == 2)
        #expect(result.iterations == 2)
        #expect(result.failures == 0)
        #expect(result.descriptionsPerSecond > 0)
        #expect(String(decoding: try JSONEncoder().encode(result), as: UTF8.self).contains("descriptions_per_second"))
    }

    @Test("non-ASCII text and CDATA survive")
    func nonASCII() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/kiwi-td-dot-profile")
        #expect(description.displayName == "schäfer")
    }
}
