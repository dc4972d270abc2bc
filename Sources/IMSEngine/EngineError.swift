import IMSProtocol

/// Errors of the engine layer: pipelines, settings and jobs.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        case pipeline = "engine.pipeline.invalid"
        case settings = "engine.settings.invalid"
        case jobNotFound = "engine.job.not_found"
        case recipeNotFound = "engine.recipe.not_found"
        case recipe = "engine.recipe.invalid"
        case repositories = "engine.repositories.not_ready"
        case plugin = "engine.plugin.unavailable"
        case step = "engine.step.failed"
        case timeout = "engine.job.timeout"
        case cancelled = "engine.job.cancelled"
        case store = "engine.store.failed"
        case catalog = "engine.catalog.failed"
        case workspace = "engine.workspace.failed"
        case artifact = "engine.artifact.invalid"
        /// A host tool a builtin step needs (unsquashfs) could not be started.
        case hostTool = "engine.host_tool.unavailable"
        /// The phase cache could not be read or written (in a job, a miss and a warning; in `ims cache`, the error).
        case cache = "engine.cache.failed"
        /// A job for another architecture cannot run its programs here (no usable binfmt_misc interpreter, and ims
        /// may not or cannot register one).
        case emulation = "engine.emulation.unavailable"
    }

    public var code: Code
    public var message: String
    /// The step the error happened in, if any.
    public var step: String?
    /// The structured error from the plugin or host, when a phase failed.
    public var cause: ErrorInfo?

    public init(_ code: Code, _ message: String, step: String? = nil, cause: ErrorInfo? = nil) {
        self.code = code
        self.message = message
        self.step = step
        self.cause = cause
    }

    public var description: String {
        (step.map { "step '\($0)': " } ?? "") + message
    }

    /// The category used for retries and reporting.
    public var category: ErrorCategory {
        if let cause { return cause.category }
        switch code {
        case .pipeline, .settings: return .config
        case .recipe, .recipeNotFound, .jobNotFound, .artifact: return .user
        case .repositories: return .transient
        case .plugin, .store, .catalog, .workspace, .hostTool, .cache, .emulation: return .environment
        case .step: return .internal
        case .timeout: return .timeout
        case .cancelled: return .cancelled
        }
    }
}
