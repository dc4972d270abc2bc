import Foundation
import IMSKiwi
import Testing

/// One entry of `corpus/kiwi/facts.json`.
struct KiwiFacts: Decodable, Sendable, CustomTestStringConvertible {
    struct Repository: Decodable, Sendable, Equatable {
        var alias: String?
        var type: String?
        var source: String?
    }

    var id: String
    var file: String
    var imageName: String?
    var schemaversion: String?
    var packagemanager: String?
    var profiles: [String]?
    var repositories: [Repository]?
    var imagePackages: [String]?
    var bootstrapPackages: [String]?
    var types: [String]?
    var users: [String]?
    var includes: [String]?
    var template: Bool

    enum CodingKeys: String, CodingKey {
        case id, file, schemaversion, packagemanager, profiles, repositories, types, users, includes, template
        case imageName = "image_name"
        case imagePackages = "image_packages"
        case bootstrapPackages = "bootstrap_packages"
    }

    var testDescription: String { id }

    static func load() throws -> [KiwiFacts] {
        try KiwiFixtures.requireCorpus()
        let data = try Data(contentsOf: URL(fileURLWithPath: KiwiFixtures.valid + "/facts.json"))
        return try JSONDecoder().decode([KiwiFacts].self, from: data)
    }
}

@Suite("KIWI corpus")
struct KiwiCorpusTests {
    @Test("facts.json describes all 31 samples, one per folder")
    func factsCoverCorpus() throws {
        let facts = try KiwiFacts.load()
        #expect(facts.count == 31)
        let folders = try FileManager.default.contentsOfDirectory(atPath: KiwiFixtures.valid).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: KiwiFixtures.valid + "/" + $0, isDirectory: &isDirectory)
                && isDirectory.boolValue
        }
        #expect(Set(facts.map(\.id)) == Set(folders))
    }

    @Test("every corpus description parses, and the inspect report matches facts.json")
    func reportsMatchFacts() throws {
        let facts = try KiwiFacts.load()
        var checked = 0
        for fact in facts {
            let file = KiwiFixtures.valid + "/" + fact.file
            let description = try KiwiLoader.load(file: file)
            let report = KiwiInspector.report(description, profile: nil, arch: nil)
            #expect(report.template == fact.template, "\(fact.id): template")
            if fact.template {
                // The facts are null for unrendered templates: the file is still well-formed XML
                // and loads, but its values are not meaningful until rendered.
                #expect(description.diagnostics.contains { $0.code == .templateUnrendered }, "\(fact.id)")
                checked += 1
                continue
            }
            // Non-template samples are also found by kiwi's directory lookup.
            let located = try KiwiLoader.locateDescription(in: KiwiFixtures.valid + "/" + fact.id)
            #expect(located.relativePath == String(fact.file.dropFirst(fact.id.count + 1)), "\(fact.id): lookup")

            #expect(report.name == fact.imageName, "\(fact.id): name")
            #expect(report.schemaVersion == fact.schemaversion, "\(fact.id): schema_version")
            #expect(report.packageManager == fact.packagemanager, "\(fact.id): package_manager")
            #expect(report.profiles == fact.profiles, "\(fact.id): profiles")
            let repositories = report.repositories.map { KiwiFacts.Repository(alias: $0.alias, type: $0.type, source: $0.source) }
            #expect(repositories == fact.repositories, "\(fact.id): repositories")
            #expect(report.packages["image"] == fact.imagePackages, "\(fact.id): packages.image")
            #expect(report.packages["bootstrap"] == fact.bootstrapPackages, "\(fact.id): packages.bootstrap")
            #expect(report.types == fact.types, "\(fact.id): types")
            #expect(report.users == fact.users, "\(fact.id): users")
            let includes = fact.includes?.map { String($0.dropFirst(fact.id.count + 1)) }
            #expect(report.includes == includes, "\(fact.id): includes")
            checked += 1
        }
        #expect(checked == 31)
    }

    @Test("the valid corpus validates without errors, except files missing from kiwi's unit-test data")
    func validCorpusValidates() throws {
        let facts = try KiwiFacts.load()
        for fact in facts {
            let diagnostics = KiwiValidator.validate(file: KiwiFixtures.valid + "/" + fact.file)
            var errors = diagnostics.errors
            if fact.id == "kiwi-td-example-config" {
                // kiwi's test data names archives and files that were never part of it.
                #expect(errors.with(.archiveMissing).count == 2)
                #expect(errors.with(.overlayMissing).count == 3)
                errors.removeAll { $0.code == .archiveMissing || $0.code == .overlayMissing }
            }
            #expect(errors.isEmpty, "\(fact.id): \(errors.map(\.description))")
        }
    }

    @Test("legacy samples are accepted with a legacy-schema warning treated as 7.4")
    func legacySchemas() throws {
        for id in [
            "cray-centos75-barebones", "cray-sles12sp3-barebones", "cray-sles15-barebones", "cray-sles15sp1-barebones",
            "kd-suse-sle12-community-jeos", "kd-centos-07.0-jeos",
        ] {
            let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/" + id)
            let warning = try #require(description.diagnostics.with(.schemaVersionLegacy).first, "\(id)")
            #expect(warning.severity == .warning)
            #expect(warning.message.contains("treated as 7.4"))
            #expect(description.effectiveSchemaVersion == KiwiSchemaVersion(major: 7, minor: 4))
        }
    }

    @Test("real-world quirks: trailing spaces trimmed, duplicates warned, yum normalised")
    func crayCentOSQuirks() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/cray-centos75-barebones")
        #expect(description.diagnostics.with(.packageNameTrimmed).count == 13)
        let duplicates = description.diagnostics.with(.packageDuplicate)
        #expect(duplicates.count == 1)
        #expect(duplicates.first?.message.contains("nfs-utils") == true)
        #expect(description.packageManagerAsWritten == "yum")
        #expect(description.packageManager == .dnf4)
        #expect(description.diagnostics.with(.packageManagerLegacy).count == 1)
        #expect(description.distroFamily == .rhel)
        #expect(!description.diagnostics.hasErrors)
    }

    @Test("distribution families of the corpus")
    func corpusFamilies() throws {
        let expected: [String: KiwiDistroFamily] = [
            "almalinux-9": .rhel, "almalinux-10": .rhel, "cray-centos75-barebones": .rhel, "kd-centos-07.0-jeos": .rhel,
            "kiwi-bt-centos-live-disk-v9": .rhel, "kiwi-bt-fedora-live-disk": .rhel, "kiwi-bt-rawhide-dnf5": .rhel,
            "cray-sles12sp3-barebones": .suse, "cray-sles15-barebones": .suse, "cray-sles15sp1-barebones": .suse,
            "kd-suse-leap-15.6": .suse, "kd-suse-sle12-community-jeos": .suse, "kiwi-bt-leap-tbz": .suse,
            "kiwi-td-example-config": .suse, "kiwi-bt-debian-live-disk": .debian, "kiwi-td-apt": .debian,
        ]
        try KiwiFixtures.requireCorpus()
        for (id, family) in expected {
            let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/" + id)
            let inference = KiwiDistroInference.infer(description)
            #expect(inference.family == family, "\(id): \(inference.evidence)")
            #expect(!inference.evidence.isEmpty, "\(id)")
        }
    }

    // MARK: - Invalid corpus

    @Test("conflicting types: refused with kiwi.types.conflicting at the second type's line")
    func conflictingTypes() throws {
        try KiwiFixtures.requireCorpus()
        let directory = KiwiFixtures.invalid + "/kiwi-inv-conflicting-types"
        let errors = KiwiValidator.validate(directory: directory).errors
        let error = try #require(errors.with(.typesConflicting).first)
        #expect(error.file == directory + "/config.xml")
        #expect(error.line == 13)
        #expect(error.description.contains("kiwi-inv-conflicting-types/config.xml:13: error:"))
        #expect(error.message.contains("config.xml:12"))
        #expect(error.message.contains("profile"))
    }

    @Test("oem without filesystem: refused with kiwi.type.oem_no_filesystem at the type's line")
    func oemWithoutFilesystem() throws {
        try KiwiFixtures.requireCorpus()
        let directory = KiwiFixtures.invalid + "/kiwi-inv-oem-no-filesystem"
        let errors = KiwiValidator.validate(directory: directory).errors
        let error = try #require(errors.with(.typeOEMNoFilesystem).first)
        #expect(error.line == 15)
        #expect(error.description.contains("kiwi-inv-oem-no-filesystem/config.xml:15: error:"))
        #expect(error.message.contains("filesystem="))
        // It also names archives that are not in the description directory.
        #expect(errors.with(.archiveMissing).map(\.line) == [56, 63])
        // Without file checks, only the schema problem remains.
        let withoutFiles = KiwiValidator.validate(directory: directory, options: .init(checkReferencedFiles: false))
        #expect(withoutFiles.errors.map(\.code) == [.typeOEMNoFilesystem])
    }

    @Test("broken include: refused with kiwi.include.broken naming both files and lines")
    func brokenInclude() throws {
        try KiwiFixtures.requireCorpus()
        let directory = KiwiFixtures.invalid + "/kiwi-inv-include-broken-xml/data"
        let error = try #require(KiwiFixtures.kiwiError { _ = try KiwiLoader.load(directory: directory) })
        let primary = try #require(error.primary)
        #expect(primary.code == .includeBroken)
        #expect(primary.file == directory + "/config.xml")
        #expect(primary.line == 22)
        #expect(primary.message.contains("include_repo.xml:6"))
        #expect(error.diagnostics.contains { $0.code == .xmlMalformed && $0.file == directory + "/include_repo.xml" && $0.line == 6 })
        #expect(KiwiValidator.validate(directory: directory).errors.first?.code == .includeBroken)
        // The sample's own directory has no description at the top level.
        #expect(KiwiValidator.validate(directory: KiwiFixtures.invalid + "/kiwi-inv-include-broken-xml").first?.code == .descriptionNotFound)
    }

    @Test("missing include reference: refused with kiwi.include.missing at the include's line")
    func missingInclude() throws {
        try KiwiFixtures.requireCorpus()
        let directory = KiwiFixtures.invalid + "/kiwi-inv-include-missing-ref"
        let diagnostics = KiwiValidator.validate(directory: directory)
        let error = try #require(diagnostics.errors.first)
        #expect(error.code == .includeMissing)
        #expect(error.line == 9)
        #expect(error.description.contains("kiwi-inv-include-missing-ref/config.xml:9: error:"))
        #expect(error.message.contains("/this/include/does/not/exist.xml"))
        #expect(error.message.contains("this://"))
    }

    @Test("every invalid sample is refused with an actionable error that names file and line")
    func everyInvalidSampleRefused() throws {
        try KiwiFixtures.requireCorpus()
        let samples = try FileManager.default.contentsOfDirectory(atPath: KiwiFixtures.invalid).sorted()
        #expect(samples.count == 4)
        for sample in samples {
            var directory = KiwiFixtures.invalid + "/" + sample
            if (try? KiwiLoader.locateDescription(in: directory)) == nil { directory += "/data" }
            let errors = KiwiValidator.validate(directory: directory).errors
            let first = try #require(errors.first, "\(sample) was not refused")
            #expect(first.file?.hasPrefix(directory) == true, "\(sample)")
            #expect((first.line ?? 0) > 0, "\(sample)")
            #expect(first.description.contains(":\(first.line ?? 0): error:"), "\(sample)")
        }
    }
}
