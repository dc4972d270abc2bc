/// `plugin.json`: the static, authoritative description used for discovery, selection and permissions.
public struct PluginManifest: Sendable, Hashable, Codable {
    /// Selectors that decide which jobs a phase applies to. An absent list matches everything.
    public struct Selectors: Sendable, Hashable, Codable {
        public var distroFamily: [String]?
        public var packageManager: [String]?
        public var arch: [String]?

        enum CodingKeys: String, CodingKey {
            case arch
            case distroFamily = "distro_family"
            case packageManager = "package_manager"
        }

        public init(distroFamily: [String]? = nil, packageManager: [String]? = nil, arch: [String]? = nil) {
            self.distroFamily = distroFamily
            self.packageManager = packageManager
            self.arch = arch
        }
    }

    /// Default timeouts, in seconds; job or site policy may override them.
    public struct Timeouts: Sendable, Hashable, Codable {
        public var runSeconds: Double?
        public var startSeconds: Double?
        public var cancelGraceSeconds: Double?
        public var killGraceSeconds: Double?

        enum CodingKeys: String, CodingKey {
            case runSeconds = "run_seconds"
            case startSeconds = "start_seconds"
            case cancelGraceSeconds = "cancel_grace_seconds"
            case killGraceSeconds = "kill_grace_seconds"
        }

        public init(runSeconds: Double? = nil, startSeconds: Double? = nil, cancelGraceSeconds: Double? = nil, killGraceSeconds: Double? = nil) {
            self.runSeconds = runSeconds
            self.startSeconds = startSeconds
            self.cancelGraceSeconds = cancelGraceSeconds
            self.killGraceSeconds = killGraceSeconds
        }
    }

    /// A secret the phase needs; only declared secrets are ever delivered.
    public struct SecretRequirement: Sendable, Hashable, Codable {
        public var name: String
        public var reason: String
        public init(name: String, reason: String) {
            self.name = name
            self.reason = reason
        }
    }

    /// What a phase needs from the machine, each with a reason shown to operators.
    public struct Permissions: Sendable, Hashable, Codable {
        public var root: Bool?
        public var network: Bool?
        public var devices: [String]?
        public var secrets: [SecretRequirement]?
        public var reason: String?

        public init(root: Bool? = nil, network: Bool? = nil, devices: [String]? = nil, secrets: [SecretRequirement]? = nil, reason: String? = nil) {
            self.root = root
            self.network = network
            self.devices = devices
            self.secrets = secrets
            self.reason = reason
        }
    }

    public struct Phase: Sendable, Hashable, Codable {
        public var name: String
        public var payloads: [String]
        public var selectors: Selectors?
        public var timeouts: Timeouts?
        public var permissions: Permissions?
        public var description: String?
        /// The plugin's promise that this phase's outputs depend only on its request (config, input artifacts,
        /// the job's arch and source date), its own files and its repositories' metadata, and that its declared
        /// outputs are its only effects: the engine may then reuse stored outputs instead of running it.
        public var cacheable: Bool?

        public init(
            name: String, payloads: [String], selectors: Selectors? = nil, timeouts: Timeouts? = nil, permissions: Permissions? = nil,
            description: String? = nil, cacheable: Bool? = nil
        ) {
            self.cacheable = cacheable
            self.name = name
            self.payloads = payloads
            self.selectors = selectors
            self.timeouts = timeouts
            self.permissions = permissions
            self.description = description
        }
    }

    public struct ProtocolSupport: Sendable, Hashable, Codable {
        public var versions: [Int]
        public var features: [String]?
        public init(versions: [Int], features: [String]? = nil) {
            self.versions = versions
            self.features = features
        }
    }

    public var manifestVersion: Int
    public var id: String
    public var version: String
    public var name: String?
    public var description: String?
    public var vendor: String?
    /// Relative path of the executable inside the plugin directory.
    public var entrypoint: String
    public var entrypointSha256: String?
    public var `protocol`: ProtocolSupport
    public var phases: [Phase]
    /// External commands the plugin needs on the machine (checked before a job starts).
    public var requires: [String]?

    enum CodingKeys: String, CodingKey {
        case id, version, name, description, vendor, entrypoint, `protocol`, phases, requires
        case manifestVersion = "manifest_version"
        case entrypointSha256 = "entrypoint_sha256"
    }

    public init(
        manifestVersion: Int = WireFormat.manifestVersion, id: String, version: String, name: String? = nil,
        description: String? = nil, vendor: String? = nil, entrypoint: String, entrypointSha256: String? = nil,
        protocol support: ProtocolSupport, phases: [Phase], requires: [String]? = nil
    ) {
        self.manifestVersion = manifestVersion
        self.id = id
        self.version = version
        self.name = name
        self.description = description
        self.vendor = vendor
        self.entrypoint = entrypoint
        self.entrypointSha256 = entrypointSha256
        self.protocol = support
        self.phases = phases
        self.requires = requires
    }

    /// The phase entry named `name`, if the plugin offers it.
    public func phase(named name: String) -> Phase? {
        phases.first { $0.name == name }
    }
}
