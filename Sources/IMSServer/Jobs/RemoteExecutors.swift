import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import Logging

/// How a job's runner is started on another host: the runner (`ims jobs run-remote`) fetches its job from the
/// server and reports through the API; the executor only starts it, stops it, and says when the engine it runs on
/// has ended it (which the runner could not report).
public protocol RemoteExecutor: Sendable {
    /// The executor's name in the job record (`slurm`, `remote-build-nodes`).
    var kind: ExecutorSettings.Kind { get }

    /// Starts the runner of `job`; `launch` is the runner's command line and the secrets it reads on stdin.
    ///
    /// - Returns: what to record on the job (Slurm job id, node) once started.
    func start(_ job: JobRecord, launch: RunnerLaunch) async throws(ServerError) -> RemoteStart

    /// Stops the runner of `job` (the job's token is revoked first, so a runner that survives this stops at its next
    /// report).
    func cancel(_ job: JobRecord) async

    /// The jobs among `jobs` whose runner the engine has ended, with why (a Slurm end state, an SSH session that
    /// failed before the runner reported).
    func ended(_ jobs: [JobRecord]) async -> [UUID: JobError]
}

/// The runner's command line (no secret in it) and what it reads on stdin.
public struct RunnerLaunch: Sendable {
    public var arguments: [String]
    /// The ``RunnerSecrets`` as JSON: written to the runner's stdin, never to an argument, a file others can read,
    /// or an environment.
    public var secrets: [UInt8]

    /// The whole command as one POSIX shell command line (each word single-quoted).
    public var shellCommand: String { arguments.map(Self.quote).joined(separator: " ") }

    static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

/// What an executor recorded when it started a runner.
public struct RemoteStart: Sendable, Hashable {
    public var slurmJobID: String?
    public var remoteBuildNode: String?
    public var host: String?

    public init(slurmJobID: String? = nil, remoteBuildNode: String? = nil, host: String? = nil) {
        self.slurmJobID = slurmJobID
        self.remoteBuildNode = remoteBuildNode
        self.host = host
    }
}

// MARK: - Slurm

/// Each job is one `sbatch` into the site's partition: `job_mem_size` GiB as `--mem`, `build_env_size` GiB as
/// `--tmp`, the job timeout (or `slurm.time_limit_minutes`) as `--time`. The server needs `sbatch`, `scancel`,
/// `squeue` and `scontrol`. The batch script runs the runner with its
/// secrets in a here-document on its stdin: Slurm keeps the script readable only by the job's owner and Slurm's own
/// user, and `--export=NONE` keeps the server's environment out of the job.
public struct SlurmExecutor: RemoteExecutor {
    public let settings: ExecutorSettings.Slurm
    /// Where the batch jobs' output goes (on the build hosts: a path they share with the server, or their own).
    public let outputDirectory: String
    public let defaultTimeLimitMinutes: Int
    public let logger: Logger

    public var kind: ExecutorSettings.Kind { .slurm }

    public init(settings: ExecutorSettings.Slurm, outputDirectory: String, defaultTimeLimitMinutes: Int, logger: Logger) {
        self.settings = settings
        self.outputDirectory = outputDirectory
        self.defaultTimeLimitMinutes = defaultTimeLimitMinutes
        self.logger = logger
    }

    /// Slurm's end states that mean the runner was stopped by Slurm (and could not report why).
    static let failedStates: Set<String> = [
        "FAILED", "NODE_FAIL", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED",
    ]

    /// The sbatch arguments for `job` (the script comes on stdin).
    func sbatchArguments(_ job: JobRecord) -> [String] {
        var arguments = [
            "--parsable", "--job-name=ims-\(job.id.imsString)", "--export=NONE",
            "--mem=\(max(1, job.jobMemSize))G", "--tmp=\(max(1, job.buildEnvSize))G",
            "--time=\(settings.timeLimitMinutes ?? defaultTimeLimitMinutes)",
            "--output=\(outputDirectory)/\(job.id.imsString).slurm.log",
        ]
        if let partition = settings.partition { arguments.append("--partition=\(partition)") }
        arguments += settings.extraArguments ?? []
        return arguments
    }

    /// The batch script: the runner, its secrets on stdin from a here-document (no secret in an argument).
    static func batchScript(_ launch: RunnerLaunch) -> [UInt8] {
        let secrets = String(decoding: launch.secrets, as: UTF8.self)
        return Array("""
            #!/bin/sh
            # ims job runner (docs/scale-out.md); its secrets are on stdin, never on the command line.
            exec \(launch.shellCommand) <<'IMS_RUNNER_SECRETS'
            \(secrets)
            IMS_RUNNER_SECRETS

            """.utf8)
    }

    func tool(_ name: String) -> String {
        if let directory = settings.binDirectory { return directory + "/" + name }
        return HostCommand.locate(name, path: ProcessInfo.processInfo.environment["PATH"] ?? PluginInvoker.systemPath) ?? name
    }

    var environment: [String] {
        var environment = ["PATH=\(ProcessInfo.processInfo.environment["PATH"] ?? PluginInvoker.systemPath)", "LANG=C.UTF-8", "TZ=UTC"]
        if let conf = settings.conf ?? ProcessInfo.processInfo.environment["SLURM_CONF"] { environment.append("SLURM_CONF=\(conf)") }
        return environment
    }

    public func start(_ job: JobRecord, launch: RunnerLaunch) async throws(ServerError) -> RemoteStart {
        try? FileManager.default.createDirectory(atPath: outputDirectory, withIntermediateDirectories: true)
        let result: HostCommand.Result
        do {
            result = try await HostCommand.run(
                tool("sbatch"), sbatchArguments(job), environment: environment, timeLimit: .seconds(60), input: Self.batchScript(launch))
        } catch {
            throw .executor("slurm", reason: error.description)
        }
        let output = result.outputTail.joined(separator: "\n")
        guard result.status == 0, let slurmID = result.outputTail.last(where: { !$0.isEmpty })?.split(separator: ";").first,
              slurmID.allSatisfy(\.isNumber)
        else {
            throw .executor("slurm", reason: "sbatch failed (exit \(result.status)): \(output.isEmpty ? "no output" : output)")
        }
        return RemoteStart(slurmJobID: String(slurmID))
    }

    public func cancel(_ job: JobRecord) async {
        guard let slurmID = job.slurmJobID else { return }
        _ = try? await HostCommand.run(tool("scancel"), [slurmID], environment: environment, timeLimit: .seconds(30))
    }

    /// One `squeue` for the states of every watched job (finished ones included while Slurm remembers them), then
    /// `scontrol show job` for the details of the few that ended badly.
    public func ended(_ jobs: [JobRecord]) async -> [UUID: JobError] {
        let watched = jobs.filter { $0.slurmJobID != nil }
        guard !watched.isEmpty else { return [:] }
        let list = watched.compactMap(\.slurmJobID).joined(separator: ",")
        guard let states = try? await HostCommand.run(
                  tool("squeue"), ["--jobs=\(list)", "--states=all", "--noheader", "--format=%i|%T"], environment: environment,
                  keepLines: 100_000, timeLimit: .seconds(30)),
              states.status == 0
        else { return [:] }
        var failed: Set<String> = []
        for line in states.outputTail {
            let parts = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, Self.failedStates.contains(parts[1]) { failed.insert(parts[0]) }
        }
        var ended: [UUID: JobError] = [:]
        for job in watched {
            guard let slurmID = job.slurmJobID, failed.contains(slurmID) else { continue }
            var fields = ["JobState": "FAILED"]
            if let details = try? await HostCommand.run(tool("scontrol"), ["show", "job", "-o", slurmID], environment: environment, timeLimit: .seconds(30)),
               let line = details.outputTail.first(where: { $0.contains("JobState=") }) {
                fields = Self.fields(line)
            }
            if let error = Self.failure(fields, slurmID: slurmID, job: job) { ended[job.id] = error }
        }
        return ended
    }

    /// The job's error when Slurm's fields show an end state that stopped its runner.
    static func failure(_ fields: [String: String], slurmID: String, job: JobRecord) -> JobError? {
        guard let state = fields["JobState"], failedStates.contains(state) else { return nil }
        var reason = "Slurm ended job \(slurmID) as \(state)"
        if let why = fields["Reason"], why != "None" { reason += " (reason: \(why))" }
        if let exit = fields["ExitCode"], exit != "0:0" { reason += ", exit code \(exit)" }
        if state == "TIMEOUT", let limit = fields["TimeLimit"] { reason += ": it ran past its time limit of \(limit)" }
        if state == "OUT_OF_MEMORY" { reason += ": it used more than its job_mem_size of \(job.jobMemSize) GiB" }
        return JobError(code: "ims.job.slurm_\(state.lowercased())", category: "environment", message: reason)
    }

    /// `scontrol show job -o`'s `Key=Value` fields (values end at the next space).
    static func fields(_ line: String) -> [String: String] {
        var fields: [String: String] = [:]
        for word in line.split(separator: " ") {
            guard let equals = word.firstIndex(of: "=") else { continue }
            let key = String(word[..<equals])
            if fields[key] == nil { fields[key] = String(word[word.index(after: equals)...]) }
        }
        return fields
    }
}
