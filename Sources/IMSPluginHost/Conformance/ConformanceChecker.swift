import Foundation
import IMSProtocol

/// The conformance kit behind `ims plugins check`: runs a plugin through the cases of protocol §13.
public struct ConformanceChecker: Sendable {
    /// One case's verdict.
    public struct CaseResult: Sendable, Codable {
        /// How a case ended.
        public enum Verdict: String, Sendable, Codable {
            case passed
            case failed
            /// The case could not be put to the test, e.g. the plugin finished before a stop took effect, or it
            /// declares no secret. Not a failure.
            case notExercised = "not_exercised"
        }

        public var name: String
        public var verdict: Verdict
        public var detail: String
        public var seconds: Double

        /// False only for a failed case (kept for callers that predate `verdict`).
        public var passed: Bool {
            get { verdict != .failed }
            set { verdict = newValue ? (verdict == .failed ? .passed : verdict) : .failed }
        }

        init(name: String, verdict: Verdict, detail: String, seconds: Double) {
            self.name = name
            self.verdict = verdict
            self.detail = detail
            self.seconds = seconds
        }

        init(name: String, passed: Bool, detail: String, seconds: Double) {
            self.init(name: name, verdict: passed ? .passed : .failed, detail: detail, seconds: seconds)
        }

        enum CodingKeys: String, CodingKey {
            case name, verdict, passed, detail, seconds
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            detail = try container.decode(String.self, forKey: .detail)
            seconds = try container.decode(Double.self, forKey: .seconds)
            if let verdict = try container.decodeIfPresent(Verdict.self, forKey: .verdict) {
                self.verdict = verdict
            } else {
                verdict = try container.decode(Bool.self, forKey: .passed) ? .passed : .failed
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(verdict, forKey: .verdict)
            try container.encode(passed, forKey: .passed)
            try container.encode(detail, forKey: .detail)
            try container.encode(seconds, forKey: .seconds)
        }
    }

    /// The names of the cases `check(directory:)` reports, in order (a plugin whose manifest is refused gets only
    /// `manifest`).
    public static let caseNames = [
        "manifest", "usage_without_ims_plugin", "usage_unknown_verb", "describe_agrees", "hello_first",
        "one_terminal_message", "bad_request", "version_mismatch", "cancel_honoured", "sigterm_honoured",
        "stdin_eof_honoured", "cleanup_idempotent", "forward_compatible", "secrets_not_exposed",
    ]

    /// What every case's request carries besides what the case itself changes: by default nothing (an empty
    /// `config`, no inputs, a placeholder for each declared secret), so a plugin that needs configuration or inputs
    /// fails its plain run with its own error and its stop cases are not exercised. `ims plugins check --request
    /// FILE --input NAME=PATH` fills it in so that the success path and stopping a working plugin are put to the test.
    public struct Request: Sendable {
        /// The phase to check; nil: the manifest's first phase.
        public var phase: String?
        /// The payload schema to send; nil: the highest one both sides support.
        public var payload: String?
        public var config: JSONValue
        public var inputs: [String: ArtifactRef]
        /// Secret values by name; a declared secret missing here gets a placeholder (case 11 always a random token).
        public var secrets: [String: Data]

        public init(
            phase: String? = nil, payload: String? = nil, config: JSONValue = .object([:]), inputs: [String: ArtifactRef] = [:],
            secrets: [String: Data] = [:]
        ) {
            self.phase = phase
            self.payload = payload
            self.config = config
            self.inputs = inputs
            self.secrets = secrets
        }

        /// Whether it carries anything beyond the empty default.
        public var isEmpty: Bool { config == .object([:]) && inputs.isEmpty && secrets.isEmpty && payload == nil }
    }

    public var runTimeoutSeconds: Double
    public var cancelGraceSeconds: Double
    public var killGraceSeconds: Double
    public var request: Request

    public init(runTimeoutSeconds: Double = 10, cancelGraceSeconds: Double = 5, killGraceSeconds: Double = 2, request: Request = Request()) {
        self.runTimeoutSeconds = runTimeoutSeconds
        self.cancelGraceSeconds = cancelGraceSeconds
        self.killGraceSeconds = killGraceSeconds
        self.request = request
    }

    /// Checks the plugin in `directory` against `request.phase` (by default its first phase); every case runs in
    /// bounded time.
    public func check(directory: String) async -> [CaseResult] {
        let discovered = PluginCatalog.inspect(directory: directory, origin: .explicit)
        let plugin: ResolvedPlugin
        do {
            plugin = try PluginCatalog.resolve(discovered)
        } catch {
            return [CaseResult(name: "manifest", passed: false, detail: error.description, seconds: 0)]
        }
        var results = [CaseResult(name: "manifest", passed: true, detail: "plugin.json is valid and the entrypoint checks out", seconds: 0)]
        let chosen = request.phase.map { plugin.manifest.phase(named: $0) } ?? plugin.manifest.phases.first
        guard let phase = chosen else {
            if let wanted = request.phase {
                let offered = plugin.manifest.phases.map(\.name).joined(separator: ", ")
                return [CaseResult(name: "manifest", passed: false, detail: "plugin.json offers no phase '\(wanted)' (it offers: \(offered))", seconds: 0)]
            }
            return results
        }

        let session = CheckSession(checker: self, plugin: plugin, phase: phase)
        defer { session.removeWorkspace() }
        results += await session.usageCases()
        results.append(await session.describeCase())
        let (plain, plainCases) = await session.plainRunCases()
        results += plainCases
        results.append(await session.badRequestCase())
        results.append(await session.versionMismatchCase())
        for kind in StopKind.allCases {
            results.append(await session.stopCase(kind))
        }
        results.append(await session.cleanupCase(afterCancelledStep: StopKind.cancelMessage.step))
        results.append(await session.forwardCompatibilityCase(comparedWith: plain))
        results.append(await session.secretsCase())
        return results
    }
}
