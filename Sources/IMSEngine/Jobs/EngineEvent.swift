import Foundation
import IMSProtocol

/// What the engine reports about a job while it runs, one case per event kind.
///
/// On the wire (NDJSON from `--json`, the catalog's job log, the API) an event is its `kind` (`event`) and its
/// payload (`data`), with snake_case keys; docs/jobs.md lists every kind and field. Plugin events (`hello`, `log`,
/// `progress`, `stderr`, …) travel beside these as `PluginEvent`s.
public enum EngineEvent: Sendable, Hashable {
    case jobStarted(JobStarted)
    case jobStatus(JobStatusChanged)
    case stepStarted(StepStarted)
    case stepFinished(StepFinished)
    case stepSkipped(StepSkipped)
    case jobLog(JobLog)
    case diagnostic(RecipeDiagnostic)
    case jobFinished(JobFinished)

    /// The event kinds, as they appear on the wire.
    public enum Kind: String, Sendable, CaseIterable, Codable {
        case jobStarted = "job_started"
        case jobStatus = "job_status"
        case stepStarted = "step_started"
        case stepFinished = "step_finished"
        case stepSkipped = "step_skipped"
        case jobLog = "job_log"
        case diagnostic
        case jobFinished = "job_finished"
    }

    /// The job began: its type, the artifact it works on, the pipeline and its steps, and its workspace.
    public struct JobStarted: Sendable, Hashable, Codable {
        public var jobType: String
        public var artifactID: String
        /// Where the pipeline came from (`builtin:create`, a file path).
        public var pipeline: String
        public var steps: [String]
        public var workspace: String

        public init(jobType: String, artifactID: String, pipeline: String, steps: [String], workspace: String) {
            self.jobType = jobType
            self.artifactID = artifactID
            self.pipeline = pipeline
            self.steps = steps
            self.workspace = workspace
        }

        enum CodingKeys: String, CodingKey {
            case jobType = "job_type", artifactID = "artifact_id", pipeline, steps, workspace
        }
    }

    /// The job's IMS status changed (`fetching_recipe`, `building_image`, … `success`).
    public struct JobStatusChanged: Sendable, Hashable, Codable {
        public var status: String
        public var resultantImageID: String?

        public init(status: String, resultantImageID: String? = nil) {
            self.status = status
            self.resultantImageID = resultantImageID
        }

        enum CodingKeys: String, CodingKey { case status, resultantImageID = "resultant_image_id" }
    }

    /// A step began; `attempt` counts retries from 1; `kind` is the builtin's or the phase's name.
    public struct StepStarted: Sendable, Hashable, Codable {
        public var attempt: Int
        public var kind: String

        public init(attempt: Int, kind: String) {
            self.attempt = attempt
            self.kind = kind
        }
    }

    /// A step ended, with its facts when it succeeded and its error when it failed.
    public struct StepFinished: Sendable, Hashable, Codable {
        public enum Status: String, Sendable, Hashable, Codable { case succeeded, failed }
        public var status: Status
        public var seconds: Double
        public var facts: [String: JSONValue]?
        public var error: String?
        public var category: String?
        /// What the phase cache did for the step (phase steps only).
        public var cache: CacheOutcome?
        /// CPU time (user + system) of the processes the step started (its plugin and the tools it ran), when known.
        public var cpuSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case status, seconds, facts, error, category, cache
            case cpuSeconds = "cpu_seconds"
        }

        public init(
            status: Status, seconds: Double, facts: [String: JSONValue]? = nil, error: String? = nil, category: String? = nil,
            cache: CacheOutcome? = nil, cpuSeconds: Double? = nil
        ) {
            self.cpuSeconds = cpuSeconds
            self.cache = cache
            self.status = status
            self.seconds = seconds
            self.facts = facts
            self.error = error
            self.category = category
        }
    }

    /// What the phase cache did for one step: reused stored outputs (`hit`), ran the phase and stored its outputs
    /// (`stored`), ran it without storing (`miss`, with the reason), or was not used (`off`, with the reason).
    public struct CacheOutcome: Sendable, Hashable, Codable {
        public enum Status: String, Sendable, Hashable, Codable { case hit, stored, miss, off }
        public var status: Status
        /// The step's cache key (64 hex digits), when one was computed.
        public var key: String?
        public var reason: String?
        /// For a hit: how long the phase took when it ran.
        public var savedSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case status, key, reason
            case savedSeconds = "saved_seconds"
        }

        public init(status: Status, key: String? = nil, reason: String? = nil, savedSeconds: Double? = nil) {
            self.status = status
            self.key = key
            self.reason = reason
            self.savedSeconds = savedSeconds
        }

        /// One phrase for people (the console, `ims jobs describe`): `cache hit 5c1e0b2a9f3d, the phase took 31.20 s
        /// when it ran`, `stored in the cache as …`, `cache miss: …`, `not cached: …`.
        public var summary: String {
            let shortKey = String(key?.prefix(12) ?? "")
            switch status {
            case .hit: return String(format: "cache hit %@, the phase took %.2f s when it ran", shortKey, savedSeconds ?? 0)
            case .stored: return "stored in the cache as \(shortKey)"
            case .miss: return "cache miss" + (reason.map { ": \($0)" } ?? "")
            case .off: return "not cached: \(reason ?? "off")"
            }
        }
    }

    /// A step did not run, and why (no site CA configured, no DNS settings).
    public struct StepSkipped: Sendable, Hashable, Codable {
        public var reason: String

        public init(reason: String) { self.reason = reason }
    }

    /// A message of the engine's own (`info`, `warn`).
    public struct JobLog: Sendable, Hashable, Codable {
        public var level: String
        public var msg: String

        public init(level: String, msg: String) {
            self.level = level
            self.msg = msg
        }
    }

    /// A finding about the recipe while it was prepared (a templating or KIWI warning).
    public struct RecipeDiagnostic: Sendable, Hashable, Codable {
        public var severity: String
        public var message: String

        public init(severity: String, message: String) {
            self.severity = severity
            self.message = message
        }
    }

    /// The job ended: `success` with the new image, or `error` with the error's text, code, category and step.
    public struct JobFinished: Sendable, Hashable, Codable {
        public var status: String
        public var resultantImageID: String?
        public var error: String?
        public var code: String?
        public var category: String?
        public var step: String?

        public init(
            status: String, resultantImageID: String? = nil, error: String? = nil, code: String? = nil, category: String? = nil,
            step: String? = nil
        ) {
            self.status = status
            self.resultantImageID = resultantImageID
            self.error = error
            self.code = code
            self.category = category
            self.step = step
        }

        enum CodingKeys: String, CodingKey {
            case status, resultantImageID = "resultant_image_id", error, code, category, step
        }
    }

    public var kind: Kind {
        switch self {
        case .jobStarted: .jobStarted
        case .jobStatus: .jobStatus
        case .stepStarted: .stepStarted
        case .stepFinished: .stepFinished
        case .stepSkipped: .stepSkipped
        case .jobLog: .jobLog
        case .diagnostic: .diagnostic
        case .jobFinished: .jobFinished
        }
    }

    /// The payload as JSON (the wire's `data`).
    public var data: JSONValue {
        switch self {
        case .jobStarted(let payload): JSONValue(encoding: payload)
        case .jobStatus(let payload): JSONValue(encoding: payload)
        case .stepStarted(let payload): JSONValue(encoding: payload)
        case .stepFinished(let payload): JSONValue(encoding: payload)
        case .stepSkipped(let payload): JSONValue(encoding: payload)
        case .jobLog(let payload): JSONValue(encoding: payload)
        case .diagnostic(let payload): JSONValue(encoding: payload)
        case .jobFinished(let payload): JSONValue(encoding: payload)
        }
    }

    /// Reads an event back from its wire kind and payload (as `ims jobs logs` and API clients do).
    /// `nil` when `kind` is not an engine event (a plugin's) or the payload does not fit the kind.
    public init?(kind: String, data: Data) {
        guard let known = Kind(rawValue: kind) else { return nil }
        let decoder = JSONDecoder()
        func decode<T: Decodable>(_ type: T.Type) -> T? { try? decoder.decode(type, from: data) }
        switch known {
        case .jobStarted: guard let value = decode(JobStarted.self) else { return nil }; self = .jobStarted(value)
        case .jobStatus: guard let value = decode(JobStatusChanged.self) else { return nil }; self = .jobStatus(value)
        case .stepStarted: guard let value = decode(StepStarted.self) else { return nil }; self = .stepStarted(value)
        case .stepFinished: guard let value = decode(StepFinished.self) else { return nil }; self = .stepFinished(value)
        case .stepSkipped: guard let value = decode(StepSkipped.self) else { return nil }; self = .stepSkipped(value)
        case .jobLog: guard let value = decode(JobLog.self) else { return nil }; self = .jobLog(value)
        case .diagnostic: guard let value = decode(RecipeDiagnostic.self) else { return nil }; self = .diagnostic(value)
        case .jobFinished: guard let value = decode(JobFinished.self) else { return nil }; self = .jobFinished(value)
        }
    }

    /// Reads an event back from its wire kind and a JSON payload.
    public init?(kind: String, data: JSONValue) {
        guard let bytes = try? JSONEncoder().encode(data) else { return nil }
        self.init(kind: kind, data: bytes)
    }
}

extension EngineEvent: Codable {
    enum CodingKeys: String, CodingKey { case event, data }

    /// `{"event": kind, "data": payload}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kind, forKey: .event)
        try container.encode(data, forKey: .data)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let kind = try container.decode(String.self, forKey: .event)
        let data = try container.decode(JSONValue.self, forKey: .data)
        guard let event = EngineEvent(kind: kind, data: data) else {
            throw DecodingError.dataCorruptedError(forKey: .data, in: container, debugDescription: "not a '\(kind)' engine event")
        }
        self = event
    }
}

extension EngineEvent {
    /// A `job_log` event.
    static func log(_ level: String, _ message: String) -> EngineEvent {
        .jobLog(JobLog(level: level, msg: message))
    }
}
