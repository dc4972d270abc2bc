import Foundation
import IMSCatalog
import IMSPluginHost
import IMSStore
import Logging

/// Everything a job needs from its surroundings.
public struct EngineEnvironment: Sendable {
    public var catalog: Catalog
    public var store: any ArtifactStore
    /// The plugins found on disk (what `ims plugins list` shows).
    public var plugins: PluginCatalog
    /// How phases are run: by default each call is a supervised process of a plugin in ``plugins``.
    public var pluginRunner: any PluginRunner
    public var settings: SiteSettings
    /// The site configuration directory (pipelines/, ims.yaml), if any.
    public var siteDirectory: String?
    /// Where job workspaces are created: `<jobsDirectory>/<job-id>`.
    public var jobsDirectory: String
    /// Stored phase outputs (nil: the site turned the cache off).
    public var phaseCache: PhaseCache?
    public var logger: Logger

    public init(
        catalog: Catalog, store: any ArtifactStore, plugins: PluginCatalog, settings: SiteSettings,
        siteDirectory: String?, jobsDirectory: String, pluginRunner: (any PluginRunner)? = nil, phaseCache: PhaseCache? = nil,
        logger: Logger = Logger(label: "ims.engine")
    ) {
        self.phaseCache = phaseCache
        self.catalog = catalog
        self.store = store
        self.plugins = plugins
        self.pluginRunner = pluginRunner ?? ProcessPluginRunner(plugins: plugins)
        self.settings = settings
        self.siteDirectory = siteDirectory
        self.jobsDirectory = jobsDirectory
        self.logger = logger
    }
}

/// When a job's workspace is kept.
public enum WorkspacePolicy: String, Sendable, Codable {
    /// Removed whatever happens.
    case remove
    /// Kept when the job fails (for debugging), removed on success. The default.
    case keepOnFailure = "keep_on_failure"
    /// Always kept.
    case keep
}

/// Options for running one job.
public struct JobRunOptions: Sendable {
    /// The pipeline; by default the effective one for the job type.
    public var pipeline: Pipeline?
    public var workspacePolicy: WorkspacePolicy
    /// The job-level timeout; by default the site's (4 h).
    public var timeout: Duration?
    /// KIWI profiles to build (nil: the description's default).
    public var profiles: [String]?
    public var undefinedVariables: UndefinedVariablePolicyOption
    /// Overrides the inferred distro family.
    public var distroFamily: String?
    public var listener: (any JobEventListener)?
    /// `SOURCE_DATE_EPOCH` for plugins (reproducible builds).
    public var sourceDateEpoch: Int?
    /// Customize jobs: a script to run inside the image (mode script); without one, the customize step waits for
    /// a person (modes chroot and jail).
    public var customizeScript: String?
    /// `false` (`--no-cache`): every phase runs, and nothing is stored.
    public var useCache: Bool

    public init(
        pipeline: Pipeline? = nil, workspacePolicy: WorkspacePolicy = .keepOnFailure, timeout: Duration? = nil,
        profiles: [String]? = nil, undefinedVariables: UndefinedVariablePolicyOption = .error, distroFamily: String? = nil,
        listener: (any JobEventListener)? = nil, sourceDateEpoch: Int? = nil, customizeScript: String? = nil,
        useCache: Bool = true
    ) {
        self.useCache = useCache
        self.customizeScript = customizeScript
        self.pipeline = pipeline
        self.workspacePolicy = workspacePolicy
        self.timeout = timeout
        self.profiles = profiles
        self.undefinedVariables = undefinedVariables
        self.distroFamily = distroFamily
        self.listener = listener
        self.sourceDateEpoch = sourceDateEpoch
    }
}

/// The templating policy, re-exported so callers need not import IMSRecipes.
public enum UndefinedVariablePolicyOption: String, Sendable, Codable {
    case error
    case renderEmpty = "render_empty"
}

/// How a job ended.
/// A warning a job gave on its way (a plugin's `warn` log or warning diagnostic, an engine diagnostic): the job
/// succeeded, but someone should look. Collected in order, once each.
public struct JobWarning: Sendable, Hashable, Codable {
    public var step: String?
    public var pluginID: String?
    public var message: String

    public init(step: String?, pluginID: String?, message: String) {
        self.step = step
        self.pluginID = pluginID
        self.message = message
    }

    enum CodingKeys: String, CodingKey {
        case step, message
        case pluginID = "plugin_id"
    }
}

public struct JobOutcome: Sendable {
    public var job: JobRecord
    public var image: ImageRecord?
    /// The manifest of the new image, as stored.
    public var manifest: String?
    public var error: EngineError?
    public var workspace: String?
    public var workspaceKept: Bool
    public var duration: Duration
    /// The warnings of every step, in order (see ``JobWarning``).
    public var warnings: [JobWarning] = []

    public var succeeded: Bool { error == nil }
}
