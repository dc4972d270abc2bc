import Foundation
import IMSProtocol
import IMSRecipes
import Yams

/// DNS settings written into image roots.
public struct DNSSettings: Sendable, Hashable, Codable {
    public struct HostEntry: Sendable, Hashable, Codable {
        public var ip: String
        public var names: [String]
    }

    public var nameservers: [String]
    public var search: [String]?
    public var options: [String]?
    public var hosts: [HostEntry]?

    public init(nameservers: [String], search: [String]? = nil, options: [String]? = nil, hosts: [HostEntry]? = nil) {
        self.nameservers = nameservers
        self.search = search
        self.options = options
        self.hosts = hosts
    }
}

/// What a site sets once (in `<site-config-dir>/ims.yaml`) and `ims build` may override.
///
///     ca_cert: /etc/ims/site-ca.pem           # PEM; injected into images and trusted for repositories
///     dns:
///       nameservers: [10.92.100.225]
///       search: [nmn, hmn]
///       options: [ndots:2]
///     repo_rewrites:                          # ALIAS=URI or URL_PREFIX=URI; see docs/recipes.md
///       - "*=https://packages.local/repository/{alias}"
///     signing_keys: [/etc/ims/keys/site.asc]  # trusted package signing keys
///     job_timeout_seconds: 14400
///     keep_failed_workspaces: true
///     plugin_path: [/opt/site/ims-plugins]
///     store: s3://boot-images                 # default: the local store, file://<data-dir>/store
///     s3: {endpoint_url: https://rgw.local, credentials_file: /etc/ims/s3.json, ca_bundle: /etc/ims/site-ca.pem}
///     strict_scripts: true                    # a missing command in config.sh/images.sh fails the build
///     max_concurrent_jobs: 4                  # ims serve: jobs running at once; more wait in a FIFO queue
///     server: {auth: {...}, tls: {...}}       # ims serve: bearer tokens and TLS (see ``ServerSettings``)
///     customize_ssh: {listen_address: 10.1.0.5, port_range: [30000, 30099]}   # sessions (``CustomizeSSHSettings``)
///     cache: {enabled: true, max_size_gib: 20}   # the phase cache (``CacheSettings``)
///     emulation: {register_binfmt: true}      # other architectures under qemu-user (``EmulationSettings``)
public struct SiteSettings: Sendable, Hashable, Codable {
    public var caCert: String?
    public var dns: DNSSettings?
    public var repoRewrites: [String]?
    public var signingKeys: [String]?
    public var jobTimeoutSeconds: Double?
    public var keepFailedWorkspaces: Bool?
    public var pluginPath: [String]?
    public var store: String?
    /// Seconds to wait for repositories (IMS: 500).
    public var repositoryTimeoutSeconds: Double?
    public var repositoryPollSeconds: Double?
    /// Distro family to use when a recipe does not reveal one.
    public var defaultDistroFamily: String?
    /// S3 settings, used when `store` is an `s3://` URL.
    public var s3: S3Settings?
    /// Fail a build whose config.sh, images.sh or post_bootstrap.sh calls a command that does not exist in the
    /// image (default: a warning in the job's result and events). `ims build --strict` sets it for one job.
    public var strictScripts: Bool?
    /// How many jobs `ims serve` runs at once (default ``defaultMaxConcurrentJobs``); later jobs wait in
    /// `creating`, first come first served.
    public var maxConcurrentJobs: Int?
    /// `ims serve`'s authentication and TLS.
    public var server: ServerSettings?
    /// Where customize and debug sessions (the per-job sshd) listen, and the hosts their job record names.
    public var customizeSSH: CustomizeSSHSettings?
    /// Where `ims serve` runs jobs (``ExecutorSettings``).
    public var executor: ExecutorSettings?
    /// The phase cache (``CacheSettings``): on by default.
    public var cache: CacheSettings?
    /// Jobs for another architecture (``EmulationSettings``).
    public var emulation: EmulationSettings?

    enum CodingKeys: String, CodingKey {
        case dns, store, s3, server
        case caCert = "ca_cert"
        case repoRewrites = "repo_rewrites"
        case signingKeys = "signing_keys"
        case jobTimeoutSeconds = "job_timeout_seconds"
        case keepFailedWorkspaces = "keep_failed_workspaces"
        case pluginPath = "plugin_path"
        case repositoryTimeoutSeconds = "repository_timeout_seconds"
        case repositoryPollSeconds = "repository_poll_seconds"
        case defaultDistroFamily = "default_distro_family"
        case strictScripts = "strict_scripts"
        case maxConcurrentJobs = "max_concurrent_jobs"
        case customizeSSH = "customize_ssh"
        case executor, cache, emulation
    }

    public init() {}

    public static let defaultJobTimeoutSeconds: Double = 4 * 3600

    /// Jobs `ims serve` runs at once when `max_concurrent_jobs` is not set.
    public static let defaultMaxConcurrentJobs = 4

    /// Loads `path`; a missing file gives empty settings only when `optional` is true.
    public static func load(file path: String, optional: Bool = false) throws(EngineError) -> SiteSettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            if optional && !FileManager.default.fileExists(atPath: path) { return SiteSettings() }
            throw EngineError(.settings, "\(path): cannot read the site settings file")
        }
        let text = String(decoding: data, as: UTF8.self)
        if let raw = try? Yams.load(yaml: text) as? [String: Any] {
            let known = Set(["ca_cert", "dns", "repo_rewrites", "signing_keys", "job_timeout_seconds", "keep_failed_workspaces", "plugin_path", "store", "repository_timeout_seconds", "repository_poll_seconds", "default_distro_family", "s3", "strict_scripts", "max_concurrent_jobs", "server", "customize_ssh", "executor", "cache", "emulation"])
            if let unknown = raw.keys.filter({ !known.contains($0) }).sorted().first {
                throw EngineError(.settings, "\(path): unknown setting '\(unknown)' (known: \(known.sorted().joined(separator: ", ")))\(Suggestion.phrase(for: unknown, among: known.sorted()))")
            }
            // Each section's keys, checked by one rule (the error names the section's path and its known keys).
            let server = raw["server"] as? [String: Any]
            let executor = raw["executor"] as? [String: Any]
            let sections: [(String, [String: Any]?, [String])] = [
                ("s3", raw["s3"] as? [String: Any], S3Settings.settingNames),
                ("customize_ssh", raw["customize_ssh"] as? [String: Any], CustomizeSSHSettings.settingNames),
                ("server", server, ServerSettings.settingNames),
                ("server.auth", server?["auth"] as? [String: Any], ServerSettings.authSettingNames),
                ("server.tls", server?["tls"] as? [String: Any], ServerSettings.tlsSettingNames),
                ("executor", executor, ExecutorSettings.settingNames),
                ("cache", raw["cache"] as? [String: Any], CacheSettings.settingNames),
                ("emulation", raw["emulation"] as? [String: Any], EmulationSettings.settingNames),
                ("executor.slurm", executor?["slurm"] as? [String: Any], ExecutorSettings.Slurm.settingNames),
                ("executor.remote_build_nodes", executor?["remote_build_nodes"] as? [String: Any], ExecutorSettings.RemoteBuildNodes.settingNames),
            ]
            for (prefix, section, names) in sections {
                if let section, let unknown = section.keys.filter({ !names.contains($0) }).sorted().first {
                    throw EngineError(.settings, "\(path): unknown setting '\(prefix).\(unknown)' (known: \(names.joined(separator: ", ")))\(Suggestion.phrase(for: unknown, among: names))")
                }
            }
        }
        var settings: SiteSettings
        do {
            settings = try YAMLDecoder().decode(SiteSettings.self, from: text)
        } catch {
            throw EngineError(.settings, "\(path): \(Self.describe(error))")
        }
        try settings.check(source: path)
        return settings
    }

    /// Checks values that decode but make no sense.
    public func check(source: String) throws(EngineError) {
        if let caCert, !FileManager.default.isReadableFile(atPath: caCert) {
            throw EngineError(.settings, "\(source): ca_cert \(caCert) cannot be read")
        }
        if let caCert, let text = try? String(contentsOfFile: caCert, encoding: .utf8), !text.contains("-----BEGIN CERTIFICATE-----") {
            throw EngineError(.settings, "\(source): ca_cert \(caCert) is not a PEM certificate")
        }
        if let dns, dns.nameservers.isEmpty {
            throw EngineError(.settings, "\(source): dns.nameservers must list at least one address")
        }
        for rule in repoRewrites ?? [] {
            do { _ = try RepositoryRewriteRule(parsing: rule) } catch { throw EngineError(.settings, "\(source): \(error.description)") }
        }
        if let timeout = jobTimeoutSeconds, timeout <= 0 {
            throw EngineError(.settings, "\(source): job_timeout_seconds must be > 0")
        }
        if let limit = maxConcurrentJobs, limit < 1 {
            throw EngineError(.settings, "\(source): max_concurrent_jobs must be at least 1")
        }
        try server?.check(source: source)
        try customizeSSH?.check(source: source)
        try executor?.check(source: source, store: store)
        try cache?.check(source: source)
        try emulation?.check(source: source)
    }

    /// These settings with `other`'s non-nil values on top (command-line overrides).
    public func merging(_ other: SiteSettings) -> SiteSettings {
        var merged = self
        merged.caCert = other.caCert ?? caCert
        merged.dns = other.dns ?? dns
        if let rewrites = other.repoRewrites { merged.repoRewrites = rewrites + (repoRewrites ?? []) }
        merged.signingKeys = other.signingKeys ?? signingKeys
        merged.jobTimeoutSeconds = other.jobTimeoutSeconds ?? jobTimeoutSeconds
        merged.keepFailedWorkspaces = other.keepFailedWorkspaces ?? keepFailedWorkspaces
        merged.pluginPath = other.pluginPath ?? pluginPath
        merged.store = other.store ?? store
        merged.repositoryTimeoutSeconds = other.repositoryTimeoutSeconds ?? repositoryTimeoutSeconds
        merged.repositoryPollSeconds = other.repositoryPollSeconds ?? repositoryPollSeconds
        merged.defaultDistroFamily = other.defaultDistroFamily ?? defaultDistroFamily
        merged.s3 = other.s3 ?? s3
        merged.strictScripts = other.strictScripts ?? strictScripts
        merged.maxConcurrentJobs = other.maxConcurrentJobs ?? maxConcurrentJobs
        merged.server = other.server ?? server
        merged.customizeSSH = other.customizeSSH ?? customizeSSH
        merged.executor = other.executor ?? executor
        merged.cache = other.cache ?? cache
        merged.emulation = other.emulation ?? emulation
        return merged
    }

    /// The parsed rewrite rules (already checked).
    public var rewriteRules: [RepositoryRewriteRule] {
        (repoRewrites ?? []).compactMap { try? RepositoryRewriteRule(parsing: $0) }
    }

    static func describe(_ error: any Error) -> String {
        if let decoding = error as? DecodingError {
            switch decoding {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                return "invalid value at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
            case .keyNotFound(let key, let context):
                return "missing '\(key.stringValue)' in \(context.codingPath.map(\.stringValue).joined(separator: "."))"
            @unknown default:
                return "invalid settings"
            }
        }
        return String(describing: error).split(separator: "\n").first.map(String.init) ?? "invalid YAML"
    }
}
