import Foundation
import IMSCatalog
import IMSEngine

/// What every remote runner of this server is started with: the runner command on the build hosts, the URL they
/// reach the server at, and the store they upload to (with its keys, which go into the secrets on stdin).
public struct RemoteRunnerPlan: Sendable {
    /// The server's URL as the runners reach it; nil until the server listens (then its listen address).
    public var serverURL: String?
    public var runnerCommand: String
    public var runnerConfigDirectory: String?
    public var runnerPluginPaths: [String]
    public var heartbeatTimeoutSeconds: Double
    public var jobTimeoutSeconds: Double
    /// The store URL the runners upload to.
    public var store: String
    /// Its S3 endpoint and keys (read from the site's credentials file at start), for an `s3://` store.
    public var s3: RunnerSecrets.S3Access?

    public init(
        serverURL: String?, runnerCommand: String, runnerConfigDirectory: String?, runnerPluginPaths: [String],
        heartbeatTimeoutSeconds: Double, jobTimeoutSeconds: Double, store: String, s3: RunnerSecrets.S3Access?
    ) {
        self.serverURL = serverURL
        self.runnerCommand = runnerCommand
        self.runnerConfigDirectory = runnerConfigDirectory
        self.runnerPluginPaths = runnerPluginPaths
        self.heartbeatTimeoutSeconds = heartbeatTimeoutSeconds
        self.jobTimeoutSeconds = jobTimeoutSeconds
        self.store = store
        self.s3 = s3
    }

    /// The plan from the site settings: the store's S3 keys are read from `s3.credentials_file` now, so a file the
    /// server cannot read stops it at start rather than failing every job.
    ///
    /// - Parameter executable: this server's own `ims`, the runner command by default.
    public static func make(settings: SiteSettings, store: String, executable: String) throws(ServerError) -> RemoteRunnerPlan {
        let executor = settings.executor ?? ExecutorSettings()
        var access: RunnerSecrets.S3Access?
        if store.hasPrefix("s3://") {
            let s3 = settings.s3 ?? S3Settings()
            var keys = RunnerSecrets.S3Access(endpointURL: s3.endpointURL, region: s3.region, addressingStyle: s3.addressingStyle)
            if let file = s3.credentialsFile {
                guard let data = FileManager.default.contents(atPath: file),
                      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
                else { throw .executor(executor.effectiveKind.rawValue, reason: "s3.credentials_file \(file) cannot be read as JSON {\"access_key\", \"secret_key\"}") }
                keys.accessKey = object["access_key"] as? String
                keys.secretKey = object["secret_key"] as? String
            }
            if let bundle = s3.caBundle {
                guard let pem = try? String(contentsOfFile: bundle, encoding: .utf8) else {
                    throw .executor(executor.effectiveKind.rawValue, reason: "s3.ca_bundle \(bundle) cannot be read")
                }
                keys.caBundlePEM = pem
            }
            access = keys
        }
        return RemoteRunnerPlan(
            serverURL: executor.serverURL, runnerCommand: executor.runnerCommand ?? executable,
            runnerConfigDirectory: executor.runnerConfigDir, runnerPluginPaths: executor.runnerPluginPath ?? [],
            heartbeatTimeoutSeconds: executor.heartbeatTimeoutSeconds ?? ExecutorSettings.defaultHeartbeatTimeoutSeconds,
            jobTimeoutSeconds: settings.jobTimeoutSeconds ?? SiteSettings.defaultJobTimeoutSeconds, store: store, s3: access)
    }

    /// The runner's command line for `jobID` and its secrets (the token, the store and its keys) for its stdin.
    public func launch(jobID: UUID, token: String) throws(ServerError) -> RunnerLaunch {
        guard let serverURL else { throw .executor("runner", reason: "the server's URL for runners is not known yet") }
        var arguments = [runnerCommand, "jobs", "run-remote", jobID.imsString, "--server", serverURL, "--secrets-stdin"]
        if let runnerConfigDirectory { arguments += ["--config-dir", runnerConfigDirectory] }
        for path in runnerPluginPaths { arguments += ["--plugin-path", path] }
        let secrets = RunnerSecrets(token: token, store: store, s3: s3)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(secrets) else { throw .executor("runner", reason: "cannot encode the runner's secrets") }
        return RunnerLaunch(arguments: arguments, secrets: Array(data))
    }
}
