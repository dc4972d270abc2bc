import Foundation
import IMSKiwi
import Testing

@Suite("Inspect report and distribution family")
struct KiwiInspectTests {
    @Test("the report encodes with snake_case keys and stable ordering")
    func jsonKeys() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/cray-centos75-barebones")
        let report = KiwiInspector.report(description, profile: nil, arch: nil)
        let json = String(decoding: try report.jsonData(prettyPrinted: false), as: UTF8.self)
        for key in [
            "\"name\":", "\"schema_version\":\"6.8\"", "\"effective_schema_version\":\"7.4\"", "\"package_manager\":\"yum\"",
            "\"package_manager_normalized\":\"dnf4\"", "\"distro_family\":\"rhel\"", "\"distro_evidence\":",
            "\"profiles\":[]", "\"repositories\":", "\"effective_type\":\"rpm-md\"", "\"packages\":", "\"types\":",
            "\"users\":[\"root\"]", "\"includes\":[]", "\"template\":false", "\"warnings\":",
        ] {
            #expect(json.contains(key), "missing \(key)")
        }
        #expect(!json.contains("packageManager") && !json.contains("schemaVersion"))
        #expect(!json.contains("\\/"))
        let decoded = try JSONDecoder().decode(InspectReport.self, from: try report.jsonData())
        #expect(decoded == report)
        #expect(try report.jsonData() == report.jsonData())
    }

    @Test("profile selection follows kiwi: unscoped sections plus the profile and what it requires")
    func profileSelection() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/kiwi-td-example-config")
        let all = KiwiInspector.report(description, profile: nil, arch: nil)
        #expect(all.selectedProfiles == nil)
        #expect(all.types.count == 10)

        let ec2 = KiwiInspector.report(description, profile: "ec2Flavour", arch: nil)
        #expect(ec2.selectedProfiles == ["ec2Flavour"])
        #expect(ec2.types == ["iso", "oem"])
        #expect(ec2.packages["image"]?.contains("kernel-ec2") == true)
        #expect(ec2.packages["image"]?.contains("kernel-xen") == false)
        #expect(ec2.packages["image"]?.contains("kernel-default") == false)

        let composed = KiwiInspector.report(description, profile: "composedProfile", arch: nil)
        #expect(composed.selectedProfiles == ["composedProfile", "vmxSimpleFlavour", "xenDomUFlavour"])
        #expect(composed.types == ["iso", "oem", "oem", "iso"])
        #expect(composed.packages["image"]?.contains("kernel-xen") == true)

        // On aarch64 the arch-scoped requirement of composedProfile does not apply.
        let composedArm = KiwiInspector.report(description, profile: "composedProfile", arch: "aarch64")
        #expect(composedArm.selectedProfiles == ["composedProfile", "vmxSimpleFlavour"])
        #expect(composedArm.types == ["iso", "oem", "iso"])
    }

    @Test("arch filtering drops packages, preferences and profiles whose arch excludes it")
    func archFiltering() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/kiwi-td-example-config")
        let x86 = KiwiInspector.report(description, profile: nil, arch: "x86_64")
        #expect(x86.packages["image"]?.contains("foo") == false)
        #expect(x86.packages["image"]?.contains("xen") == true)
        #expect(x86.types.first == "oem")  // the aarch64-only iso type is gone
        let s390 = KiwiInspector.report(description, profile: nil, arch: "s390")
        #expect(s390.packages["image"]?.contains("foo") == true)
        #expect(s390.packages["image"]?.contains("xen") == false)
        let arm = KiwiInspector.report(description, profile: nil, arch: "aarch64")
        #expect(!arm.profiles.contains("vmxFlavour"))
        #expect(x86.profiles.contains("vmxFlavour"))
    }

    @Test("packages map holds every section type, sorted and unique")
    func packageSections() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/kiwi-td-example-config")
        let report = KiwiInspector.report(description, profile: nil, arch: nil)
        #expect(Set(report.packages.keys) == ["image", "bootstrap", "iso", "oem", "delete", "uninstall", "systemfiles"])
        #expect(report.packages["delete"] == ["kernel-debug"])
        #expect(report.packages["uninstall"] == ["shadow"])
        #expect(report.packages["iso"] == ["gfxboot-branding-openSUSE"])
        #expect(report.packages["systemfiles"] == [])
        let image = try #require(report.packages["image"])
        #expect(image == image.sorted() && Set(image).count == image.count)
    }

    @Test("includes and users of an include-driven description; profile filtering through requires")
    func almaLinux() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/almalinux-10")
        let report = KiwiInspector.report(description, profile: "Cloud-Base-OpenStack", arch: "x86_64")
        #expect(report.selectedProfiles == ["Cloud-Base-OpenStack", "Cloud-Base-Generic", "CloudCore", "BootCore"])
        #expect(report.includes.count == 17)
        #expect(report.users == ["root"])
        #expect(report.repositories.count == 5)
        #expect(report.distroFamily == .rhel)
        #expect(report.distroEvidence.first?.source == .releasePackage)
        #expect(report.distroEvidence.contains { $0.value == "almalinux-release" && $0.line == 42 })
    }

    @Test("an unknown profile gives a warning and only unscoped sections")
    func unknownProfile() throws {
        let description = try KiwiLoader.load(directory: KiwiFixtures.valid + "/kd-suse-leap-15.6")
        let report = KiwiInspector.report(description, profile: "Nope", arch: nil)
        let warning = try #require(report.warnings.with(.profileUnknown).first)
        #expect(warning.message.contains("'Nope'"))
        #expect(warning.message.contains("declared profiles:"))
        #expect(report.selectedProfiles == [])
    }

    @Test("distribution family: package manager, release packages, repositories, override")
    func distroInference() throws {
        let zypper = try KiwiFixtures.load(KiwiFixtures.description())
        #expect(zypper.distroFamily == .suse)
        #expect(KiwiDistroInference.infer(zypper).evidence.map(\.source) == [.packageManager, .repository])

        let release = try KiwiFixtures.load(KiwiFixtures.description(
            packageManager: "dnf4", body: "<packages type=\"image\"><package name=\"rocky-release\"/></packages>"))
        let inference = KiwiDistroInference.infer(release)
        #expect(inference.family == .rhel)
        #expect(inference.evidence.first?.value == "rocky-release")
        // The openSUSE repository of the fixture disagrees.
        #expect(inference.diagnostics.with(.distroConflicting).count == 1)

        let fedora = try KiwiFixtures.load(KiwiFixtures.description(
            packageManager: "dnf5", body: "<packages type=\"image\"><package name=\"fedora-release-common\"/></packages>"))
        #expect(fedora.distroFamily == .rhel)

        let overridden = KiwiDistroInference.infer(zypper, override: .debian)
        #expect(overridden.family == .debian)
        #expect(overridden.isOverridden)
        #expect(overridden.evidence.first?.source == .override)
        #expect(KiwiInspector.report(zypper, profile: nil, arch: nil, distroOverride: .rhel).distroFamily == .rhel)

        let unknown = try KiwiFixtures.load(KiwiFixtures.description(packageManager: "mystery").replacingOccurrences(
            of: "https://download.opensuse.org/distribution/leap/15.6/repo/oss/", with: "https://example.com/repo"))
        #expect(unknown.distroFamily == .unknown)

        let byRepository = try KiwiFixtures.load(KiwiFixtures.description(packageManager: "mystery"))
        #expect(byRepository.distroFamily == .suse)
    }

    @Test("template descriptions are flagged")
    func template() throws {
        try KiwiFixtures.requireCorpus()
        let description = try KiwiLoader.load(
            file: KiwiFixtures.valid + "/cray-sles15sp5-barebones-template/config-template.xml.j2")
        let report = KiwiInspector.report(description, profile: nil, arch: nil)
        #expect(report.template)
        #expect(report.warnings.with(.templateUnrendered).count == 1)
        let plain = try KiwiFixtures.load(KiwiFixtures.description(body: "<!-- {single} ${releasever} -->"))
        #expect(!plain.isTemplate)
    }
}
