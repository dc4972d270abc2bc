import Foundation

// MARK: - Shared value types

/// A file or directory passed by reference; never inline content.
public struct ArtifactRef: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case file, dir }

    /// Absolute path inside the job workspace.
    public var path: String
    public var kind: Kind
    public var mediaType: String?
    /// `sha256:<hex>` (or `md5:<hex>`) when known.
    public var digest: String?
    public var size: Int64?

    enum CodingKeys: String, CodingKey {
        case path, kind, digest, size
        case mediaType = "media_type"
    }

    public init(path: String, kind: Kind, mediaType: String? = nil, digest: String? = nil, size: Int64? = nil) {
        self.path = path
        self.kind = kind
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
    }
}

/// The id and version of a plugin.
public struct PluginIdentity: Sendable, Hashable, Codable {
    public var id: String
    public var version: String
    public var vendor: String?

    public init(id: String, version: String, vendor: String? = nil) {
        self.id = id
        self.version = version
        self.vendor = vendor
    }
}

// MARK: - Host to plugin

/// The directories of one phase invocation inside the job workspace.
public struct Workspace: Sendable, Hashable, Codable {
    public var root: String
    public var `in`: String
    public var out: String
    public var tmp: String
    public var state: String

    public init(root: String, in inputDirectory: String, out: String, tmp: String, state: String) {
        self.root = root
        self.in = inputDirectory
        self.out = out
        self.tmp = tmp
        self.state = state
    }
}

/// The protocol version chosen by the host and the features it offers.
public struct ProtocolOffer: Sendable, Hashable, Codable {
    public var version: Int
    public var features: [String]

    public init(version: Int, features: [String]) {
        self.version = version
        self.features = features
    }
}

/// Who is running the job.
public struct JobInfo: Sendable, Hashable, Codable {
    public var id: String
    public var traceparent: String?

    public init(id: String, traceparent: String? = nil) {
        self.id = id
        self.traceparent = traceparent
    }
}

/// A reference to a secret the host wrote to a 0600 file for this invocation only.
public struct SecretRef: Sendable, Hashable, Codable {
    public var file: String
    public init(file: String) { self.file = file }
}

/// The host's name and version.
public struct HostInfo: Sendable, Hashable, Codable {
    public var name: String
    public var version: String
    public init(name: String, version: String) {
        self.name = name
        self.version = version
    }
}

/// The single request line the host writes to a plugin's stdin.
public struct PluginRequest: Sendable, Hashable, Codable {
    public var verb: PluginVerb
    public var phase: String
    /// The payload schema, e.g. `build-root/v1`.
    public var payload: String
    public var `protocol`: ProtocolOffer
    public var job: JobInfo
    /// RFC 3339 time by which the plugin must have finished.
    public var deadline: String
    public var workspace: Workspace
    public var inputs: [String: ArtifactRef]
    public var config: JSONValue
    public var secrets: [String: SecretRef]
    public var host: HostInfo
    public var logLevel: String?

    enum CodingKeys: String, CodingKey {
        case verb, phase, payload, `protocol`, job, deadline, workspace, inputs, config, secrets, host
        case logLevel = "log_level"
    }

    public init(
        verb: PluginVerb, phase: String, payload: String, protocol offer: ProtocolOffer, job: JobInfo,
        deadline: String, workspace: Workspace, inputs: [String: ArtifactRef] = [:], config: JSONValue = .object([:]),
        secrets: [String: SecretRef] = [:], host: HostInfo, logLevel: String? = nil
    ) {
        self.verb = verb
        self.phase = phase
        self.payload = payload
        self.protocol = offer
        self.job = job
        self.deadline = deadline
        self.workspace = workspace
        self.inputs = inputs
        self.config = config
        self.secrets = secrets
        self.host = host
        self.logLevel = logLevel
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        verb = try c.decode(PluginVerb.self, forKey: .verb)
        phase = try c.decode(String.self, forKey: .phase)
        payload = try c.decode(String.self, forKey: .payload)
        self.protocol = try c.decode(ProtocolOffer.self, forKey: .protocol)
        job = try c.decode(JobInfo.self, forKey: .job)
        deadline = try c.decode(String.self, forKey: .deadline)
        workspace = try c.decode(Workspace.self, forKey: .workspace)
        inputs = try c.decodeIfPresent([String: ArtifactRef].self, forKey: .inputs) ?? [:]
        config = try c.decodeIfPresent(JSONValue.self, forKey: .config) ?? .object([:])
        secrets = try c.decodeIfPresent([String: SecretRef].self, forKey: .secrets) ?? [:]
        host = try c.decode(HostInfo.self, forKey: .host)
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel)
    }
}

/// Asks the plugin to stop; SIGTERM to its process group follows after `grace_seconds`.
public struct CancelRequest: Sendable, Hashable, Codable {
    public var reason: String
    public var graceSeconds: Double

    enum CodingKeys: String, CodingKey {
        case reason
        case graceSeconds = "grace_seconds"
    }

    public init(reason: String, graceSeconds: Double) {
        self.reason = reason
        self.graceSeconds = graceSeconds
    }
}

// MARK: - Plugin to host

/// The first message of every `run` and `cleanup`.
public struct Hello: Sendable, Hashable, Codable {
    public struct ChosenProtocol: Sendable, Hashable, Codable {
        public var version: Int
        public init(version: Int) { self.version = version }
    }

    public var plugin: PluginIdentity
    public var `protocol`: ChosenProtocol
    /// The subset of the offered features the plugin will use.
    public var features: [String]

    public init(plugin: PluginIdentity, protocolVersion: Int, features: [String]) {
        self.plugin = plugin
        self.protocol = ChosenProtocol(version: protocolVersion)
        self.features = features
    }
}

/// Severity of a structured log record.
public enum LogLevel: String, Sendable, Codable, CaseIterable, Comparable {
    case trace, debug, info, notice, warn, error

    private var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rank < rhs.rank }
}

/// A structured log record the plugin chose to emit.
public struct LogRecord: Sendable, Hashable, Codable {
    public var level: LogLevel
    public var msg: String
    public var fields: [String: JSONValue]?
    /// The tool the record came from, e.g. `kiwi-ng`.
    public var source: String?

    public init(level: LogLevel, msg: String, fields: [String: JSONValue]? = nil, source: String? = nil) {
        self.level = level
        self.msg = msg
        self.fields = fields
        self.source = source
    }
}

/// A finding the user must act on, with a location.
public struct Diagnostic: Sendable, Hashable, Codable {
    public enum Severity: String, Sendable, Codable { case error, warning, note }

    public struct Location: Sendable, Hashable, Codable {
        public var file: String?
        public var line: Int?
        public var column: Int?
        public var pointer: String?

        public init(file: String? = nil, line: Int? = nil, column: Int? = nil, pointer: String? = nil) {
            self.file = file
            self.line = line
            self.column = column
            self.pointer = pointer
        }
    }

    public var severity: Severity
    public var code: String?
    public var message: String
    public var location: Location?

    public init(severity: Severity, code: String? = nil, message: String, location: Location? = nil) {
        self.severity = severity
        self.code = code
        self.message = message
        self.location = location
    }
}

/// Progress of one task: begin, any number of reports, end.
public struct ProgressUpdate: Sendable, Hashable, Codable {
    public enum State: String, Sendable, Codable { case begin, report, end }
    public enum Unit: String, Sendable, Codable { case bytes, items, steps }

    public var task: String
    public var state: State
    public var title: String?
    public var message: String?
    public var current: Double?
    public var total: Double?
    public var unit: Unit?
    public var parent: String?

    public init(
        task: String, state: State, title: String? = nil, message: String? = nil, current: Double? = nil,
        total: Double? = nil, unit: Unit? = nil, parent: String? = nil
    ) {
        self.task = task
        self.state = state
        self.title = title
        self.message = message
        self.current = current
        self.total = total
        self.unit = unit
        self.parent = parent
    }
}

/// An output declared as soon as it exists.
public struct ArtifactAnnouncement: Sendable, Hashable, Codable {
    public var name: String
    public var artifact: ArtifactRef

    enum CodingKeys: String, CodingKey { case name }

    public init(name: String, artifact: ArtifactRef) {
        self.name = name
        self.artifact = artifact
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        artifact = try ArtifactRef(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try artifact.encode(to: encoder)
    }
}

/// The state of a session a plugin serves for a person (feature `session`): the customize plugin's per-job sshd.
/// The engine keeps it in the job record's `ssh_containers[0]` (`status`, `connection_info`).
public struct SessionUpdate: Sendable, Hashable, Codable {
    /// Where a session is reached on one network.
    public struct Endpoint: Sendable, Hashable, Codable {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// The session's name (`customize`, `debug`).
    public var name: String
    /// `pending` (listening, nobody logged in yet) or `established` (a login happened).
    public var status: String
    /// Whether the person is jailed into the image root.
    public var jail: Bool?
    /// The user to log in as (`root`).
    public var user: String?
    /// Network name (`customer_access`, `cluster.local`) to host and port.
    public var connectionInfo: [String: Endpoint]

    public init(name: String, status: String, jail: Bool? = nil, user: String? = nil, connectionInfo: [String: Endpoint] = [:]) {
        self.name = name
        self.status = status
        self.jail = jail
        self.user = user
        self.connectionInfo = connectionInfo
    }

    enum CodingKeys: String, CodingKey {
        case name, status, jail, user
        case connectionInfo = "connection_info"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        status = try c.decode(String.self, forKey: .status)
        jail = try c.decodeIfPresent(Bool.self, forKey: .jail)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        connectionInfo = try c.decodeIfPresent([String: Endpoint].self, forKey: .connectionInfo) ?? [:]
    }
}

/// The terminal success message.
public struct PhaseResult: Sendable, Hashable, Codable {
    public var outputs: [String: ArtifactRef]
    public var metadata: [String: JSONValue]
    /// Facts later phases or the engine use, e.g. a detected distro family.
    public var facts: [String: JSONValue]

    public init(outputs: [String: ArtifactRef] = [:], metadata: [String: JSONValue] = [:], facts: [String: JSONValue] = [:]) {
        self.outputs = outputs
        self.metadata = metadata
        self.facts = facts
    }

    enum CodingKeys: String, CodingKey { case outputs, metadata, facts }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        outputs = try c.decodeIfPresent([String: ArtifactRef].self, forKey: .outputs) ?? [:]
        metadata = try c.decodeIfPresent([String: JSONValue].self, forKey: .metadata) ?? [:]
        facts = try c.decodeIfPresent([String: JSONValue].self, forKey: .facts) ?? [:]
    }
}

/// What `<entrypoint> describe` prints: version-agnostic and only ever extended.
public struct PluginDescription: Sendable, Hashable, Codable {
    public struct ProtocolSupport: Sendable, Hashable, Codable {
        public var versions: [Int]
        public var features: [String]
        public init(versions: [Int], features: [String]) {
            self.versions = versions
            self.features = features
        }
    }

    public struct Requirements: Sendable, Hashable, Codable {
        public var commands: [String]
        public init(commands: [String] = []) { self.commands = commands }
    }

    public struct Phase: Sendable, Hashable, Codable {
        public var name: String
        public var payloads: [String]
        public var deterministic: Bool?
        public var requires: Requirements?

        public init(name: String, payloads: [String], deterministic: Bool? = nil, requires: Requirements? = nil) {
            self.name = name
            self.payloads = payloads
            self.deterministic = deterministic
            self.requires = requires
        }
    }

    public var plugin: PluginIdentity
    public var `protocol`: ProtocolSupport
    public var phases: [Phase]

    public init(plugin: PluginIdentity, protocol support: ProtocolSupport, phases: [Phase]) {
        self.plugin = plugin
        self.protocol = support
        self.phases = phases
    }
}

// MARK: - Messages and envelope

/// Every message a host may write to a plugin.
public enum HostToPluginMessage: Sendable, Hashable {
    case request(PluginRequest)
    case cancel(CancelRequest)

    public var type: String {
        switch self {
        case .request: "request"
        case .cancel: "cancel"
        }
    }
}

/// Every message a plugin may write to the host.
public enum PluginToHostMessage: Sendable, Hashable {
    case hello(Hello)
    case log(LogRecord)
    case diagnostic(Diagnostic)
    case progress(ProgressUpdate)
    case artifact(ArtifactAnnouncement)
    case heartbeat
    /// A person's session changed (feature `session`).
    case session(SessionUpdate)
    case result(PhaseResult)
    case error(ErrorInfo)
    case describe(PluginDescription)
    /// A type this host does not know; ignored for forward compatibility.
    case unknown(type: String)

    public var type: String {
        switch self {
        case .hello: "hello"
        case .log: "log"
        case .diagnostic: "diagnostic"
        case .progress: "progress"
        case .artifact: "artifact"
        case .heartbeat: "heartbeat"
        case .session: "session"
        case .result: "result"
        case .error: "error"
        case .describe: "describe"
        case .unknown(let type): type
        }
    }

    /// Whether this message ends the invocation.
    public var isTerminal: Bool {
        switch self {
        case .result, .error, .describe: true
        default: false
        }
    }
}

private enum EnvelopeKeys: String, CodingKey {
    case ims, type, seq, ts, data
}

private struct EmptyData: Codable {}

/// `{"ims": <wire major>, "type": ..., "seq": ..., "ts": ..., "data": {...}}`
public struct Envelope<Message: Sendable & Hashable>: Sendable, Hashable {
    public var version: Int
    public var seq: Int?
    public var ts: String?
    public var message: Message

    public init(version: Int = WireFormat.currentVersion, seq: Int? = nil, ts: String? = nil, message: Message) {
        self.version = version
        self.seq = seq
        self.ts = ts
        self.message = message
    }
}

extension Envelope: Codable where Message: EnvelopeBody {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: EnvelopeKeys.self)
        version = try c.decode(Int.self, forKey: .ims)
        seq = try c.decodeIfPresent(Int.self, forKey: .seq)
        ts = try c.decodeIfPresent(String.self, forKey: .ts)
        let type = try c.decode(String.self, forKey: .type)
        message = try Message.decodeBody(type: type, from: c.superDecoder(forKey: .data), hasData: c.contains(.data))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: EnvelopeKeys.self)
        try c.encode(version, forKey: .ims)
        try c.encode(message.type, forKey: .type)
        try c.encodeIfPresent(seq, forKey: .seq)
        try c.encodeIfPresent(ts, forKey: .ts)
        try message.encodeBody(to: c.superEncoder(forKey: .data))
    }
}

/// A message enum that knows how to code its `data` by `type`.
public protocol EnvelopeBody: Sendable, Hashable {
    var type: String { get }
    static func decodeBody(type: String, from decoder: any Decoder, hasData: Bool) throws -> Self
    func encodeBody(to encoder: any Encoder) throws
}

extension HostToPluginMessage: EnvelopeBody {
    public static func decodeBody(type: String, from decoder: any Decoder, hasData: Bool) throws -> Self {
        switch type {
        case "request": return .request(try PluginRequest(from: decoder))
        case "cancel": return .cancel(try CancelRequest(from: decoder))
        default:
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "unknown host message type '\(type)'"))
        }
    }

    public func encodeBody(to encoder: any Encoder) throws {
        switch self {
        case .request(let value): try value.encode(to: encoder)
        case .cancel(let value): try value.encode(to: encoder)
        }
    }
}

extension PluginToHostMessage: EnvelopeBody {
    public static func decodeBody(type: String, from decoder: any Decoder, hasData: Bool) throws -> Self {
        switch type {
        case "hello": return .hello(try Hello(from: decoder))
        case "log": return .log(try LogRecord(from: decoder))
        case "diagnostic": return .diagnostic(try Diagnostic(from: decoder))
        case "progress": return .progress(try ProgressUpdate(from: decoder))
        case "artifact": return .artifact(try ArtifactAnnouncement(from: decoder))
        case "heartbeat": return .heartbeat
        case "session": return .session(try SessionUpdate(from: decoder))
        case "result": return .result(hasData ? try PhaseResult(from: decoder) : PhaseResult())
        case "error": return .error(try ErrorInfo(from: decoder))
        case "describe": return .describe(try PluginDescription(from: decoder))
        default: return .unknown(type: type)
        }
    }

    public func encodeBody(to encoder: any Encoder) throws {
        switch self {
        case .hello(let value): try value.encode(to: encoder)
        case .log(let value): try value.encode(to: encoder)
        case .diagnostic(let value): try value.encode(to: encoder)
        case .progress(let value): try value.encode(to: encoder)
        case .artifact(let value): try value.encode(to: encoder)
        case .heartbeat, .unknown: try EmptyData().encode(to: encoder)
        case .session(let value): try value.encode(to: encoder)
        case .result(let value): try value.encode(to: encoder)
        case .error(let value): try value.encode(to: encoder)
        case .describe(let value): try value.encode(to: encoder)
        }
    }
}

public typealias HostEnvelope = Envelope<HostToPluginMessage>
public typealias PluginEnvelope = Envelope<PluginToHostMessage>
