import Foundation
import IMSCatalog
@testable import IMSEngine
import IMSPluginHost
import IMSProtocol
import Testing

/// The config, inputs and criteria the engine gives each phase kind: pure rules, table-tested.
@Suite("Phase configuration rules")
struct PhaseConfigurationTests {
    static func context(
        arch: Arch = .x86_64, family: String? = "suse", ca: String? = nil, script: String? = nil, jail: Bool = false,
        dkms: Bool = false, epoch: Int? = nil, dns: DNSSettings? = nil, publicKey: String? = nil, strictScripts: Bool? = nil,
        customizeSSH: CustomizeSSHSettings? = nil
    ) -> PhaseConfiguration.Context {
        var job = JobRecord(id: UUID(), jobType: .customize, artifactID: UUID(), imageRootArchiveName: "img", kernelFileName: "vmlinuz")
        job.arch = arch
        job.requireDKMS = dkms
        if jail { job.sshContainers = [SSHContainer(name: "customize", jail: true)] }
        var settings = SiteSettings()
        settings.dns = dns
        settings.strictScripts = strictScripts
        settings.customizeSSH = customizeSSH
        return PhaseConfiguration.Context(
            job: job, criteria: SelectionCriteria(distroFamily: family, packageManager: "zypper", arch: arch.rawValue), settings: settings,
            caBundlePath: ca, profiles: nil, sourceDateEpoch: epoch, customizeScript: script, publicKey: publicKey)
    }

    @Test("build-root gets arch, family, package manager and the staged CA bundle")
    func buildRoot() {
        let config = PhaseConfiguration.defaults(for: .buildRoot, Self.context(arch: .aarch64, ca: "/w/ca.pem"))
        #expect(config == ["arch": "aarch64", "distro_family": "suse", "package_manager": "zypper", "ca_bundle": "/w/ca.pem"])
    }

    @Test("build-root gets strict_scripts only when the site or the job asks for it", arguments: [(nil, nil), (false, nil), (true, true)] as [(Bool?, Bool?)])
    func strictScripts(_ setting: Bool?, _ expected: Bool?) {
        let config = PhaseConfiguration.defaults(for: .buildRoot, Self.context(strictScripts: setting))
        #expect(config["strict_scripts"] == expected.map(JSONValue.bool))
    }

    @Test("inject-ca gets the family's layout, or auto", arguments: [("suse", "suse"), ("rhel", "rhel"), ("debian", "auto"), (nil, "auto")] as [(String?, String)])
    func injectCALayout(_ family: String?, _ layout: String) {
        #expect(PhaseConfiguration.defaults(for: .injectCA, Self.context(family: family))["layout"] == .string(layout))
    }

    @Test("configure-dns gets the site's nameservers and search list, or image mode alone")
    func configureDNS() {
        #expect(PhaseConfiguration.defaults(for: .configureDNS, Self.context()) == ["mode": "image"])
        let dns = PhaseConfiguration.defaults(for: .configureDNS, Self.context(dns: DNSSettings(nameservers: ["10.0.0.1"], search: ["nmn"])))
        #expect(dns == ["mode": "image", "nameservers": ["10.0.0.1"], "search": ["nmn"]])
    }

    @Test("customize: a script means script mode; otherwise jail or chroot as the ssh container says", arguments: [
        (script: "/s.sh" as String?, jail: false, mode: "script"), (script: nil, jail: true, mode: "jail"), (script: nil, jail: false, mode: "chroot"),
    ])
    func customizeMode(_ rule: (script: String?, jail: Bool, mode: String)) {
        let config = PhaseConfiguration.defaults(for: .customize, Self.context(script: rule.script, jail: rule.jail, dkms: true, publicKey: "ssh-ed25519 AAAA"))
        #expect(config["mode"] == .string(rule.mode))
        #expect(config["script_env"] == ["IMS_ARCH": "x86_64", "IMS_DKMS_ENABLED": "true"])
        #expect(config["ssh"] == ["public_key": "ssh-ed25519 AAAA"])
        #expect(config["require_dkms"] == true)
    }

    @Test("customize: the session's sshd gets the site's listen address, port range and host names with the job's key")
    func customizeSSH() {
        let site = CustomizeSSHSettings(listenAddress: "10.1.0.5", portRange: [30000, 30099], customerAccessHost: "ims.example.net", clusterLocalHost: "ims.local")
        let config = PhaseConfiguration.defaults(for: .customize, Self.context(publicKey: "ssh-ed25519 AAAA", customizeSSH: site))
        #expect(config["ssh"] == [
            "public_key": "ssh-ed25519 AAAA", "listen_address": "10.1.0.5", "port_range": [30000, 30099],
            "customer_access_host": "ims.example.net", "cluster_local_host": "ims.local",
        ])
        #expect(config["require_dkms"] == false)
        // No key, no sshd: the site's settings alone do not make a session.
        #expect(PhaseConfiguration.defaults(for: .customize, Self.context(customizeSSH: site))["ssh"] == nil)
    }

    @Test("customize_ssh settings: bad addresses, ranges and host names are refused naming the key", arguments: [
        (CustomizeSSHSettings(listenAddress: "example.net"), "listen_address"), (CustomizeSSHSettings(portRange: [30100, 30000]), "port_range"),
        (CustomizeSSHSettings(portRange: [0, 10]), "port_range"), (CustomizeSSHSettings(customerAccessHost: "a b"), "customer_access_host"),
    ])
    func customizeSSHChecks(_ settings: CustomizeSSHSettings, _ key: String) {
        #expect(throws: EngineError.self) { try settings.check(source: "ims.yaml") }
        do { try settings.check(source: "ims.yaml") } catch { #expect(error.description.contains("customize_ssh.\(key)")) }
        #expect((try? CustomizeSSHSettings(listenAddress: "::1", portRange: [22, 22]).check(source: "ims.yaml")) != nil)
    }

    @Test("package gets the job's file names, and the epoch when the build is reproducible")
    func package() {
        let config = PhaseConfiguration.defaults(for: .package, Self.context(epoch: 1_700_000_000))
        #expect(config["kernel_file_name"] == "vmlinuz")
        #expect(config["initrd_file_name"] == "initrd")
        #expect(config["reproducible"] == true)
        #expect(config["source_date_epoch"] == .number(1_700_000_000))
        #expect(PhaseConfiguration.defaults(for: .package, Self.context())["reproducible"] == nil)
    }

    @Test("site phases get no engine config; the step's config lies over the defaults key by key")
    func customAndMerge() {
        #expect(PhaseConfiguration.defaults(for: .custom, Self.context()).isEmpty)
        let merged = PhaseConfiguration.merged(["arch": "x86_64", "mode": "image"], step: ["mode": "host", "extra": 1])
        #expect(merged == ["arch": "x86_64", "mode": "host", "extra": 1])
        #expect(PhaseConfiguration.merged(["a": 1], step: nil) == ["a": 1])
    }

    @Test("required inputs follow the phase kind", arguments: [
        (PhaseKind.buildRoot, ["recipe"]), (.injectCA, ["rootfs", "ca_cert"]), (.configureDNS, ["rootfs"]), (.customize, ["rootfs"]),
        (.package, ["rootfs"]), (.custom, []),
    ])
    func requiredInputs(_ kind: PhaseKind, _ inputs: [String]) {
        #expect(PhaseConfiguration.requiredInputs(kind) == inputs)
    }

    @Test("a step's selectors override the job's criteria, field by field")
    func criteria() {
        let step = PipelineStep(name: "s", phase: "build-root", selectors: PluginManifest.Selectors(packageManager: ["dnf"]))
        let criteria = PhaseConfiguration.criteria(SelectionCriteria(distroFamily: "rhel", packageManager: "yum", arch: "x86_64"), for: step)
        #expect(criteria == SelectionCriteria(distroFamily: "rhel", packageManager: "dnf", arch: "x86_64"))
    }

    @Test("steps conditioned on site settings are skipped without them, with the reason", arguments: [
        (StepCondition.caCert, "no site CA certificate is configured (ca_cert)"), (.dns, "no DNS settings are configured (dns)"),
    ])
    func skipReasons(_ condition: StepCondition, _ reason: String) {
        let step = PipelineStep(name: "s", phase: "x", when: condition)
        #expect(PhaseConfiguration.skipReason(step, settings: SiteSettings()) == reason)
        var settings = SiteSettings()
        settings.caCert = "/ca.pem"
        settings.dns = DNSSettings(nameservers: ["1.1.1.1"])
        #expect(PhaseConfiguration.skipReason(step, settings: settings) == nil)
    }

    @Test("a phase's run limit is the step's, else the manifest's, else the host's, capped by the job, and says which", arguments: [
        (step: 42.0 as Double?, manifest: 600.0 as Double?, left: 1000.0, seconds: 42.0, source: "the pipeline step's timeout_seconds (42 s)"),
        (step: nil, manifest: 600, left: 1000, seconds: 600, source: "org.p's manifest timeouts.run_seconds (600 s)"),
        (step: nil, manifest: nil, left: 5000, seconds: 3600, source: "the host's default run limit (3600 s)"),
        (step: 900, manifest: nil, left: 120, seconds: 120, source: "the job's timeout (--timeout or job_timeout_seconds; 120 s were left)"),
    ])
    func runLimit(_ rule: (step: Double?, manifest: Double?, left: Double, seconds: Double, source: String)) {
        let limit = PhaseConfiguration.runLimit(step: rule.step, manifest: rule.manifest, jobRemaining: rule.left, pluginID: "org.p")
        #expect(limit.seconds == rule.seconds)
        #expect(limit.source == rule.source)
    }
}
