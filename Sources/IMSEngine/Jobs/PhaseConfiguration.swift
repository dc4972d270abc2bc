import Foundation
import IMSCatalog
import IMSPluginHost
import IMSProtocol

/// The engine's rules for what a phase call gets: the config the engine fills in for each standard phase kind,
/// the inputs a kind cannot do without, and the selection criteria a step uses. Pure functions of the job's
/// state, so they are table-tested without running anything.
enum PhaseConfiguration {
    /// What the default config of a phase depends on.
    struct Context: Sendable {
        var job: JobRecord
        var criteria: SelectionCriteria
        var settings: SiteSettings
        /// The staged site CA (`ca_cert` artifact), when there is one.
        var caBundlePath: String?
        var profiles: [String]?
        var sourceDateEpoch: Int?
        var customizeScript: String?
        /// The text of the job's public key, when it has one.
        var publicKey: String?
        /// The recipe's repositories as the builder got them (alias, source), for an SBOM's package origins.
        var repositories: [(alias: String, source: String)] = []
    }

    /// The config the engine gives a phase of `kind` before the step's own `config` is laid over it.
    static func defaults(for kind: PhaseKind, _ context: Context) -> [String: JSONValue] {
        let job = context.job
        switch kind {
        case .buildRoot:
            var config: [String: JSONValue] = ["arch": .string(job.arch.rawValue)]
            if let family = context.criteria.distroFamily { config["distro_family"] = .string(family) }
            if let manager = context.criteria.packageManager { config["package_manager"] = .string(manager) }
            if let ca = context.caBundlePath { config["ca_bundle"] = .string(ca) }
            if let keys = context.settings.signingKeys { config["signing_keys"] = .array(keys.map(JSONValue.string)) }
            if let profiles = context.profiles { config["profiles"] = .array(profiles.map(JSONValue.string)) }
            if context.settings.strictScripts == true { config["strict_scripts"] = true }
            return config
        case .injectCA:
            // The job knows its family; the plugin falls back to detecting the layout in the root.
            let family = context.criteria.distroFamily ?? ""
            return ["layout": .string(["suse", "rhel"].contains(family) ? family : "auto")]
        case .configureDNS:
            guard let dns = context.settings.dns else { return ["mode": "image"] }
            var config: [String: JSONValue] = ["mode": "image", "nameservers": .array(dns.nameservers.map(JSONValue.string))]
            if let search = dns.search { config["search"] = .array(search.map(JSONValue.string)) }
            if let options = dns.options { config["options"] = .array(options.map(JSONValue.string)) }
            if let hosts = dns.hosts {
                config["hosts"] = .array(hosts.map { .object(["ip": .string($0.ip), "names": .array($0.names.map(JSONValue.string))]) })
            }
            return config
        case .customize:
            // The job's context, as IMS exposes it to customize sessions (SetEnv IMS_JOB_ID, IMS_ARCH, IMS_DKMS_ENABLED).
            var config: [String: JSONValue] = [
                "script_env": ["IMS_ARCH": .string(job.arch.rawValue), "IMS_DKMS_ENABLED": .string(job.requireDKMS ? "true" : "false")],
            ]
            if let script = context.customizeScript {
                config["mode"] = "script"
                config["script"] = .string(script)
            } else {
                config["mode"] = (job.sshContainers.first?.jail ?? false) ? "jail" : "chroot"
            }
            config["require_dkms"] = .bool(job.requireDKMS)
            config["arch"] = .string(job.arch.rawValue)
            if let key = context.publicKey {
                // The session's sshd: the job's key, and where the site wants it to listen and be named.
                var ssh: [String: JSONValue] = ["public_key": .string(key)]
                if let site = context.settings.customizeSSH {
                    if let address = site.listenAddress { ssh["listen_address"] = .string(address) }
                    if let range = site.portRange { ssh["port_range"] = .array(range.map { .number(Double($0)) }) }
                    if let host = site.customerAccessHost { ssh["customer_access_host"] = .string(host) }
                    if let host = site.clusterLocalHost { ssh["cluster_local_host"] = .string(host) }
                }
                config["ssh"] = .object(ssh)
            }
            return config
        case .package:
            var config: [String: JSONValue] = [
                "arch": .string(job.arch.rawValue), "kernel_file_name": .string(job.kernelFileName),
                "initrd_file_name": .string(job.initrdFileName), "kernel_parameters_file_name": .string(job.kernelParametersFileName),
                "image_name": .string(job.imageRootArchiveName),
            ]
            if let epoch = context.sourceDateEpoch {
                config["reproducible"] = true
                config["source_date_epoch"] = .number(Double(epoch))
            }
            return config
        case .sbom:
            var config: [String: JSONValue] = ["arch": .string(job.arch.rawValue), "image_name": .string(job.imageRootArchiveName)]
            if !context.repositories.isEmpty {
                config["repositories"] = .array(context.repositories.map { .object(["alias": .string($0.alias), "url": .string($0.source)]) })
            }
            if let ca = context.caBundlePath { config["ca_bundle"] = .string(ca) }
            return config
        case .fetch, .store, .custom:
            return [:]
        }
    }

    /// A phase's run limit and the setting it came from: the step's `timeout_seconds`, else the plugin manifest's
    /// `timeouts.run_seconds`, else the host's default; never more than the job has left.
    static func runLimit(step: Double?, manifest: Double?, jobRemaining: Double, pluginID: String) -> (seconds: Double, source: String) {
        let (wanted, source): (Double, String) =
            if let step { (step, "the pipeline step's timeout_seconds (\(format(step)) s)") }
            else if let manifest { (manifest, "\(pluginID)'s manifest timeouts.run_seconds (\(format(manifest)) s)") }
            else { (PluginInvoker.defaultRunSeconds, "the host's default run limit (\(format(PluginInvoker.defaultRunSeconds)) s)") }
        if jobRemaining < wanted {
            return (jobRemaining, "the job's timeout (--timeout or job_timeout_seconds; \(format(jobRemaining)) s were left)")
        }
        return (wanted, source)
    }

    private static func format(_ seconds: Double) -> String { String(format: "%g", seconds) }

    /// The defaults with the step's own `config` object laid over them, key by key.
    static func merged(_ defaults: [String: JSONValue], step: JSONValue?) -> [String: JSONValue] {
        guard case .object(let overrides)? = step else { return defaults }
        return defaults.merging(overrides) { _, stepValue in stepValue }
    }

    /// The inputs a phase of `kind` cannot run without.
    static func requiredInputs(_ kind: PhaseKind) -> [String] {
        switch kind {
        case .buildRoot: ["recipe"]
        case .injectCA: ["rootfs", "ca_cert"]
        case .configureDNS, .customize, .package, .sbom: ["rootfs"]
        case .fetch, .store, .custom: []
        }
    }

    /// The artifacts a step asks for: its `inputs`, or its kind's defaults (a builder also gets the description).
    static func inputNames(for step: PipelineStep, kind: PhaseKind) -> [String] {
        var names = step.effectiveInputs
        if kind == .buildRoot, step.inputs == nil { names.append("description") }
        return names
    }

    /// The job's selection criteria with the step's own `selectors` on top.
    static func criteria(_ job: SelectionCriteria, for step: PipelineStep) -> SelectionCriteria {
        var criteria = job
        if let selectors = step.selectors {
            if let family = selectors.distroFamily?.first { criteria.distroFamily = family }
            if let manager = selectors.packageManager?.first { criteria.packageManager = manager }
            if let arch = selectors.arch?.first { criteria.arch = arch }
        }
        return criteria
    }

    /// Why a step does not run on this site, or `nil` when it runs.
    static func skipReason(_ step: PipelineStep, settings: SiteSettings) -> String? {
        switch step.when ?? .always {
        case .always: nil
        case .caCert: settings.caCert == nil ? "no site CA certificate is configured (ca_cert)" : nil
        case .dns: settings.dns == nil ? "no DNS settings are configured (dns)" : nil
        }
    }
}
