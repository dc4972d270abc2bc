import Foundation

/// Where `ims serve` runs its jobs, under `executor:` in ims.yaml. `local` (the default) runs each job as an
/// `ims jobs run` process on the server's host; `slurm` and `remote-build-nodes` start `ims jobs run-remote` on
/// other hosts, which report through the API (docs/scale-out.md):
///
///     executor:
///       kind: slurm                             # local | slurm | remote-build-nodes
///       server_url: https://ims.example.net:9100   # how runners reach this server (default: its listen address)
///       runner_command: /usr/bin/ims            # ims on the build hosts (default: this server's own executable)
///       runner_config_dir: /etc/ims             # --config-dir of the runners (their CA, DNS, plugin path)
///       runner_plugin_path: [/opt/ims/plugins]  # --plugin-path of the runners
///       heartbeat_seconds: 5                    # a runner reports at least this often
///       heartbeat_timeout_seconds: 60           # a runner silent this long has its job marked error
///       shared_store: false                     # a file:// store is on a path every build host shares
///       slurm:
///         partition: ims                        # sbatch --partition
///         time_limit_minutes: 240               # sbatch --time (default: the job timeout)
///         bin_directory: /usr/bin               # where sbatch, scancel, squeue and scontrol are (default: PATH)
///         conf: /etc/slurm/slurm.conf           # SLURM_CONF for those commands (default: Slurm's own)
///         extra_arguments: [--qos=build]        # more sbatch arguments
///       remote_build_nodes:
///         connect_timeout_seconds: 5            # per SSH connection, probes included
///         nodes:
///           x3000c0s1b0n0: {address: 10.1.2.3, user: root, port: 22, identity_file: /etc/ims/ssh/id_ed25519,
///                           known_hosts: /etc/ims/ssh/known_hosts}
public struct ExecutorSettings: Sendable, Hashable, Codable {
    /// The executors a site can choose.
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case local
        case slurm
        case remoteBuildNodes = "remote-build-nodes"
    }

    /// Slurm: one `sbatch` per job.
    public struct Slurm: Sendable, Hashable, Codable {
        public var partition: String?
        public var timeLimitMinutes: Int?
        public var binDirectory: String?
        public var conf: String?
        public var extraArguments: [String]?

        public static let settingNames = ["bin_directory", "conf", "extra_arguments", "partition", "time_limit_minutes"]

        enum CodingKeys: String, CodingKey {
            case partition, conf
            case timeLimitMinutes = "time_limit_minutes"
            case binDirectory = "bin_directory"
            case extraArguments = "extra_arguments"
        }

        public init(partition: String? = nil, timeLimitMinutes: Int? = nil, binDirectory: String? = nil, conf: String? = nil, extraArguments: [String]? = nil) {
            self.partition = partition
            self.timeLimitMinutes = timeLimitMinutes
            self.binDirectory = binDirectory
            self.conf = conf
            self.extraArguments = extraArguments
        }
    }

    /// How to reach one remote build node over SSH.
    public struct Node: Sendable, Hashable, Codable {
        public var address: String
        public var user: String?
        public var port: Int?
        public var identityFile: String?
        public var knownHosts: String?

        enum CodingKeys: String, CodingKey {
            case address, user, port
            case identityFile = "identity_file"
            case knownHosts = "known_hosts"
        }

        public init(address: String, user: String? = nil, port: Int? = nil, identityFile: String? = nil, knownHosts: String? = nil) {
            self.address = address
            self.user = user
            self.port = port
            self.identityFile = identityFile
            self.knownHosts = knownHosts
        }
    }

    /// IMS's remote build nodes: registered through the API, reached over SSH.
    public struct RemoteBuildNodes: Sendable, Hashable, Codable {
        public var connectTimeoutSeconds: Double?
        public var nodes: [String: Node]?

        public static let settingNames = ["connect_timeout_seconds", "nodes"]
        public static let defaultConnectTimeoutSeconds: Double = 5

        enum CodingKeys: String, CodingKey {
            case nodes
            case connectTimeoutSeconds = "connect_timeout_seconds"
        }

        public init(connectTimeoutSeconds: Double? = nil, nodes: [String: Node]? = nil) {
            self.connectTimeoutSeconds = connectTimeoutSeconds
            self.nodes = nodes
        }
    }

    public var kind: Kind?
    public var serverURL: String?
    public var runnerCommand: String?
    public var runnerConfigDir: String?
    public var runnerPluginPath: [String]?
    public var heartbeatSeconds: Double?
    public var heartbeatTimeoutSeconds: Double?
    public var sharedStore: Bool?
    public var slurm: Slurm?
    public var remoteBuildNodes: RemoteBuildNodes?

    /// The keys of the section, for the unknown-key check.
    public static let settingNames = [
        "heartbeat_seconds", "heartbeat_timeout_seconds", "kind", "remote_build_nodes", "runner_command", "runner_config_dir",
        "runner_plugin_path", "server_url", "shared_store", "slurm",
    ]
    public static let defaultHeartbeatSeconds: Double = 5
    public static let defaultHeartbeatTimeoutSeconds: Double = 60

    enum CodingKeys: String, CodingKey {
        case kind, slurm
        case serverURL = "server_url"
        case runnerCommand = "runner_command"
        case runnerConfigDir = "runner_config_dir"
        case runnerPluginPath = "runner_plugin_path"
        case heartbeatSeconds = "heartbeat_seconds"
        case heartbeatTimeoutSeconds = "heartbeat_timeout_seconds"
        case sharedStore = "shared_store"
        case remoteBuildNodes = "remote_build_nodes"
    }

    public init(
        kind: Kind? = nil, serverURL: String? = nil, runnerCommand: String? = nil, runnerConfigDir: String? = nil,
        runnerPluginPath: [String]? = nil, heartbeatSeconds: Double? = nil, heartbeatTimeoutSeconds: Double? = nil,
        sharedStore: Bool? = nil, slurm: Slurm? = nil, remoteBuildNodes: RemoteBuildNodes? = nil
    ) {
        self.kind = kind
        self.serverURL = serverURL
        self.runnerCommand = runnerCommand
        self.runnerConfigDir = runnerConfigDir
        self.runnerPluginPath = runnerPluginPath
        self.heartbeatSeconds = heartbeatSeconds
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
        self.sharedStore = sharedStore
        self.slurm = slurm
        self.remoteBuildNodes = remoteBuildNodes
    }

    /// The executor in use.
    public var effectiveKind: Kind { kind ?? .local }

    /// Checks values that decode but make no sense, and a remote executor over a store the build hosts cannot reach.
    ///
    /// - Parameter store: the site's store URL, when known.
    public func check(source: String, store: String?) throws(EngineError) {
        let heartbeat = heartbeatSeconds ?? Self.defaultHeartbeatSeconds
        let timeout = heartbeatTimeoutSeconds ?? Self.defaultHeartbeatTimeoutSeconds
        guard heartbeat > 0, heartbeat <= 3600 else {
            throw EngineError(.settings, "\(source): executor.heartbeat_seconds must be between 0 and 3600, got \(heartbeat)")
        }
        guard timeout >= 2 * heartbeat else {
            throw EngineError(.settings, "\(source): executor.heartbeat_timeout_seconds (\(timeout)) must be at least twice executor.heartbeat_seconds (\(heartbeat))")
        }
        if let serverURL, !(serverURL.hasPrefix("http://") || serverURL.hasPrefix("https://")) || URL(string: serverURL)?.host == nil {
            throw EngineError(.settings, "\(source): executor.server_url must be an http:// or https:// URL, got '\(serverURL)'")
        }
        if let minutes = slurm?.timeLimitMinutes, minutes < 1 {
            throw EngineError(.settings, "\(source): executor.slurm.time_limit_minutes must be at least 1, got \(minutes)")
        }
        for (xname, node) in remoteBuildNodes?.nodes ?? [:] {
            if node.address.isEmpty || node.address.contains(where: \.isWhitespace) {
                throw EngineError(.settings, "\(source): executor.remote_build_nodes.nodes.\(xname).address must be a host name or address, got '\(node.address)'")
            }
            if let port = node.port, !(1...65535).contains(port) {
                throw EngineError(.settings, "\(source): executor.remote_build_nodes.nodes.\(xname).port must be 1...65535, got \(port)")
            }
        }
        if effectiveKind != .local, let store, store.hasPrefix("file://"), sharedStore != true {
            throw EngineError(.settings, """
                \(source): executor.kind is \(effectiveKind.rawValue) but the store \(store) is a local directory that \
                the build hosts cannot reach: use an s3:// store, or set executor.shared_store: true if that path is \
                shared by every build host (NFS, Lustre, ...)
                """)
        }
    }
}
