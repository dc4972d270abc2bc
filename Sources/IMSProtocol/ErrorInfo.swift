/// What kind of failure an error is; the host's retry policy is driven by this, never by message text.
public enum ErrorCategory: String, Sendable, Codable, CaseIterable {
    /// Bad input from the person or recipe: fix the input.
    case user
    /// Bad configuration (pipeline, plugin config, site settings).
    case config
    /// Something missing or refused on the machine: a tool, a device, a permission, a quota.
    case environment
    /// Worth retrying: network timeouts, 5xx answers, a busy resource.
    case transient
    /// A bug in the plugin or the host.
    case `internal`
    /// A breach of the wire protocol, or a version mismatch.
    case `protocol`
    /// Stopped because of a `cancel` message or a signal.
    case cancelled
    /// A deadline passed.
    case timeout

    /// Whether the host may retry a step that failed with this category.
    public var isRetryable: Bool { self == .transient }
}

/// One link in an error's cause chain.
public struct ErrorCause: Sendable, Hashable, Codable {
    public var code: String
    public var message: String
    public var details: JSONValue?

    public init(code: String, message: String, details: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.details = details
    }
}

/// A structured error: the payload of the terminal `error` message, and of host-made errors.
public struct ErrorInfo: Sendable, Hashable, Codable, Error, CustomStringConvertible {
    /// Stable, dotted, lowercase code: `ims.*` for the protocol, `<phase>.*` per phase, `x.<vendor>.*` otherwise.
    public var code: String
    public var category: ErrorCategory
    public var message: String
    public var retryable: Bool?
    public var retryAfterSeconds: Double?
    public var details: JSONValue?
    /// A JSON Pointer into the request's config or an input document.
    public var path: String?
    public var hint: String?
    public var causes: [ErrorCause]?

    enum CodingKeys: String, CodingKey {
        case code, category, message, retryable, details, path, hint, causes
        case retryAfterSeconds = "retry_after_seconds"
    }

    public init(
        code: String, category: ErrorCategory, message: String, retryable: Bool? = nil,
        retryAfterSeconds: Double? = nil, details: JSONValue? = nil, path: String? = nil,
        hint: String? = nil, causes: [ErrorCause]? = nil
    ) {
        self.code = code
        self.category = category
        self.message = message
        self.retryable = retryable
        self.retryAfterSeconds = retryAfterSeconds
        self.details = details
        self.path = path
        self.hint = hint
        self.causes = causes
    }

    public var description: String { "\(message) [\(code)]" }
}

/// Error codes the host itself produces. Code strings are stable; never match on messages.
public enum HostErrorCode {
    public static let execFailed = "ims.exec_failed"
    public static let startTimeout = "ims.start_timeout"
    public static let pluginCrashed = "ims.plugin_crashed"
    public static let pluginUsage = "ims.plugin_usage"
    public static let noResult = "ims.no_result"
    public static let timeout = "ims.timeout"
    public static let cancelled = "ims.cancelled"
    public static let lineTooLong = "ims.protocol.line_too_long"
    public static let invalidUTF8 = "ims.protocol.invalid_utf8"
    public static let malformedMessage = "ims.protocol.malformed_message"
    public static let missingHello = "ims.protocol.missing_hello"
    public static let outputAfterTerminal = "ims.protocol.output_after_terminal"
    public static let exitCodeMismatch = "ims.protocol.exit_code_mismatch"
    public static let unsupportedVersion = "ims.protocol.unsupported_version"
    public static let strayOutput = "ims.protocol.stray_output"
    public static let helloMismatch = "ims.protocol.hello_mismatch"
    public static let artifactOutsideWorkspace = "ims.artifact.outside_workspace"
    public static let badRequest = "ims.protocol.bad_request"
}
