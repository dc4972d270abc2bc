import Foundation
import IMSProtocol
import Yams

/// Work the engine does itself rather than through a plugin.
public enum BuiltinStep: String, Sendable, Codable, CaseIterable {
    /// Copy the recipe archive from the store and unpack it safely.
    case fetchRecipe = "fetch-recipe"
    /// Customize jobs: copy the image's rootfs from the store (md5 checked) and unpack it.
    case fetchImage = "fetch-image"
    /// Render templates, rewrite repositories to the site mirrors, validate the description.
    case prepareRecipe = "prepare-recipe"
    /// Wait until every http(s) repository answers.
    case waitForRepos = "wait-for-repos"
    /// Copy the image artifacts into the store, verify them, write manifest.json.
    case uploadArtifacts = "upload-artifacts"
    /// Register the image with its manifest link and finish the job.
    case registerImage = "register-image"
}

/// When a step runs.
public enum StepCondition: String, Sendable, Codable {
    case always
    /// Only when a site CA certificate is configured.
    case caCert = "ca_cert"
    /// Only when DNS settings are configured.
    case dns
}

/// Retry policy for transient errors.
public struct RetryPolicy: Sendable, Hashable, Codable {
    public var attempts: Int
    public var backoffSeconds: Double

    enum CodingKeys: String, CodingKey {
        case attempts
        case backoffSeconds = "backoff_seconds"
    }

    public init(attempts: Int = 1, backoffSeconds: Double = 5) {
        self.attempts = attempts
        self.backoffSeconds = backoffSeconds
    }
}

/// One step of a pipeline: a builtin, or a phase run by a plugin.
public struct PipelineStep: Sendable, Hashable, Codable {
    public var name: String
    public var builtin: BuiltinStep?
    /// The phase name (standard kind or a site phase).
    public var phase: String?
    /// Pin a plugin by id.
    public var plugin: String?
    /// Override the job's selection criteria for this step.
    public var selectors: PluginManifest.Selectors?
    public var config: JSONValue?
    /// Artifact names this step takes from earlier steps; defaults by phase kind.
    public var inputs: [String]?
    /// The job status to move to when the step starts.
    public var status: String?
    public var timeoutSeconds: Double?
    public var retry: RetryPolicy?
    public var when: StepCondition?
    /// `false` turns the phase cache off for this step (default: the plugin's manifest decides).
    public var cache: Bool?

    enum CodingKeys: String, CodingKey {
        case name, builtin, phase, plugin, selectors, config, inputs, status, retry, when, cache
        case timeoutSeconds = "timeout_seconds"
    }

    public init(
        name: String, builtin: BuiltinStep? = nil, phase: String? = nil, plugin: String? = nil,
        selectors: PluginManifest.Selectors? = nil, config: JSONValue? = nil, inputs: [String]? = nil,
        status: String? = nil, timeoutSeconds: Double? = nil, retry: RetryPolicy? = nil, when: StepCondition? = nil,
        cache: Bool? = nil
    ) {
        self.cache = cache
        self.name = name
        self.builtin = builtin
        self.phase = phase
        self.plugin = plugin
        self.selectors = selectors
        self.config = config
        self.inputs = inputs
        self.status = status
        self.timeoutSeconds = timeoutSeconds
        self.retry = retry
        self.when = when
    }

    /// The artifacts a phase step takes by default.
    public var effectiveInputs: [String] {
        if let inputs { return inputs }
        guard let phase else { return [] }
        switch PhaseKind.of(phaseName: phase) {
        case .buildRoot: return ["recipe"]
        case .injectCA: return ["rootfs", "ca_cert"]
        case .configureDNS, .customize, .package: return ["rootfs"]
        case .sbom: return ["rootfs", "package_list"]
        case .fetch, .store: return []
        case .custom: return ["recipe", "rootfs"]
        }
    }
}

/// An ordered list of steps for one job type.
public struct Pipeline: Sendable, Hashable, Codable {
    public var name: String
    public var steps: [PipelineStep]
    /// Where it came from (a file path, or "built-in").
    public var source: String

    public init(name: String, steps: [PipelineStep], source: String) {
        self.name = name
        self.steps = steps
        self.source = source
    }
}
