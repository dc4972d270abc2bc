import Foundation
import IMSPluginHost

/// How a job is run in the background: `ims jobs run ID` started as its own process (own session, output to a log
/// beside the job's workspace), with the data directory, site directory, store and plugin path it must use. This is
/// the one runner path of `ims jobs create --detach` and of `ims serve`.
public struct DetachedJobRunner: Sendable {
    /// The `ims` executable to start.
    public var executable: String
    /// The data directory (`--data-dir`), absolute.
    public var dataDirectory: String
    /// The site configuration directory (`--config-dir`), absolute.
    public var siteDirectory: String
    /// The store URL (`--store`), when one was given explicitly.
    public var store: String?
    /// Plugin directories searched first (`--plugin-path`), absolute.
    public var pluginPaths: [String]
    /// The runner's environment, `KEY=VALUE`.
    public var environment: [String]
    /// The runner's working directory.
    public var workingDirectory: String

    public init(
        executable: String, dataDirectory: String, siteDirectory: String, store: String?, pluginPaths: [String],
        environment: [String: String], workingDirectory: String
    ) {
        self.executable = executable
        self.dataDirectory = dataDirectory
        self.siteDirectory = siteDirectory
        self.store = store
        self.pluginPaths = pluginPaths
        self.environment = environment.map { "\($0.key)=\($0.value)" }.sorted()
        self.workingDirectory = workingDirectory
    }

    /// Where the runner of `jobID` writes what it prints (a crash report, say); `ims jobs run` removes it when the
    /// job succeeds.
    public static func logPath(jobID: UUID, jobsDirectory: String) -> String {
        jobsDirectory + "/" + jobID.uuidString.lowercased() + ".runner.log"
    }

    /// The arguments of `ims` that run `jobID`.
    public func arguments(jobID: UUID, script: String? = nil, useCache: Bool = true) -> [String] {
        var arguments = ["jobs", "run", jobID.uuidString.lowercased(), "--data-dir", dataDirectory, "--config-dir", siteDirectory]
        if let store { arguments += ["--store", store] }
        for path in pluginPaths { arguments += ["--plugin-path", path] }
        if let script { arguments += ["--script", script] }
        if !useCache { arguments.append("--no-cache") }
        return arguments
    }

    /// Starts the runner of `jobID` and returns its pid at once. The caller owns the child: a short-lived command
    /// exits (the runner is re-parented), a long-lived one reaps it (``DetachedProcess/reapIfExited(_:)``).
    ///
    /// - Parameters:
    ///   - script: customize jobs: the script to run inside the image root.
    ///   - useCache: false runs every phase and stores nothing (`--no-cache`).
    ///   - jobsDirectory: where the runner's log is written (created when missing).
    public func start(jobID: UUID, script: String? = nil, useCache: Bool = true, jobsDirectory: String) throws(HostCommand.LaunchError) -> pid_t {
        try? FileManager.default.createDirectory(atPath: jobsDirectory, withIntermediateDirectories: true)
        return try DetachedProcess.start(
            executable, arguments: arguments(jobID: jobID, script: script, useCache: useCache), environment: environment,
            workingDirectory: workingDirectory, logPath: Self.logPath(jobID: jobID, jobsDirectory: jobsDirectory))
    }
}
