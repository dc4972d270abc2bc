import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import Logging
import Synchronization

/// IMS's remote build nodes: registered through `POST /v3/remote-build-nodes {xname}`, reached over SSH as the site
/// settings say (`executor.remote_build_nodes.nodes.<xname>`). A job goes to a node of its arch with the fewest
/// running jobs (IMS's rule) and runs `ims jobs run-remote` there in one SSH session, its secrets on the session's
/// stdin. Nodes are probed live, in parallel, each within the connect timeout.
public final class RemoteBuildNodeExecutor: RemoteExecutor {
    public let settings: ExecutorSettings.RemoteBuildNodes
    public let registry: RemoteBuildNodes
    public let catalog: Catalog
    /// ims on the nodes.
    public let runnerCommand: String
    public let logger: Logger
    /// Sessions running, by job: the task that holds the SSH client, and how it ended once it has.
    private let sessions = Mutex<[UUID: Session]>([:])

    struct Session {
        var task: Task<Void, Never>?
        var failure: JobError?
    }

    public var kind: ExecutorSettings.Kind { .remoteBuildNodes }

    public init(settings: ExecutorSettings.RemoteBuildNodes, registry: RemoteBuildNodes, catalog: Catalog, runnerCommand: String, logger: Logger) {
        self.settings = settings
        self.registry = registry
        self.catalog = catalog
        self.runnerCommand = runnerCommand
        self.logger = logger
    }

    var connectTimeout: Double { settings.connectTimeoutSeconds ?? ExecutorSettings.RemoteBuildNodes.defaultConnectTimeoutSeconds }

    /// The ssh arguments that reach `node` (batch mode: never a prompt; host keys checked against the site's file).
    func sshArguments(_ node: ExecutorSettings.Node) -> [String] {
        var arguments = [
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=\(Int(connectTimeout.rounded(.up)))", "-o", "ServerAliveInterval=15",
            "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR",
        ]
        if let knownHosts = node.knownHosts {
            arguments += ["-o", "UserKnownHostsFile=\(knownHosts)", "-o", "StrictHostKeyChecking=yes"]
        }
        if let identity = node.identityFile { arguments += ["-i", identity, "-o", "IdentitiesOnly=yes"] }
        if let port = node.port { arguments += ["-p", String(port)] }
        arguments.append("\(node.user ?? "root")@\(node.address)")
        return arguments
    }

    static var ssh: String {
        HostCommand.locate("ssh", path: ProcessInfo.processInfo.environment["PATH"] ?? PluginInvoker.systemPath) ?? "/usr/bin/ssh"
    }

    static let environment = ["PATH=\(PluginInvoker.systemPath)", "LANG=C.UTF-8", "TZ=UTC"]

    // MARK: Status

    /// Every registered node's status, probed in parallel.
    public func statuses() async -> [RemoteBuildNodes.Status] {
        let nodes = await registry.all
        // The active jobs are read once for every node, not once per node.
        let running = runningJobsByNode()
        return await withTaskGroup(of: (Int, RemoteBuildNodes.Status).self) { group in
            for (index, node) in nodes.enumerated() {
                group.addTask { (index, await self.status(node.xname, running: running[node.xname] ?? 0)) }
            }
            var statuses: [(Int, RemoteBuildNodes.Status)] = []
            for await status in group { statuses.append(status) }
            return statuses.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// One node's status: SSH reachable, ims there (IMS's `podmanStatus` field), its arch and its running jobs.
    public func status(_ xname: String) async -> RemoteBuildNodes.Status {
        await status(xname, running: runningJobsByNode()[xname] ?? 0)
    }

    func status(_ xname: String, running: Int) async -> RemoteBuildNodes.Status {
        var status = RemoteBuildNodes.Status(xname: xname)
        status.numCurrentJobs = running
        guard let node = settings.nodes?[xname] else {
            status.sshStatus = "not configured: add executor.remote_build_nodes.nodes.\(xname) (address, identity_file, known_hosts) to ims.yaml"
            status.podmanStatus = "not checked"
            return status
        }
        let probe = "uname -m; \(RunnerLaunch.quote(runnerCommand)) --version"
        let result: HostCommand.Result
        do {
            result = try await HostCommand.run(
                Self.ssh, sshArguments(node) + ["--", probe], environment: Self.environment, timeLimit: .seconds(connectTimeout + 5), killGrace: .seconds(1))
        } catch {
            status.sshStatus = "cannot run ssh: \(error.description)"
            status.podmanStatus = "not checked"
            return status
        }
        let lines = result.outputTail.filter { !$0.isEmpty }
        if result.stopped {
            status.sshStatus = "no answer within \(Int(connectTimeout + 5)) s"
            status.podmanStatus = "not checked"
        } else if result.status == 255 {
            status.sshStatus = "ssh failed: " + (lines.last ?? "exit 255")
            status.podmanStatus = "not checked"
        } else {
            status.sshStatus = "ok"
            if let arch = lines.first, Arch(rawValue: arch) != nil { status.nodeArch = arch }
            if result.status == 0, lines.count >= 2 {
                status.podmanStatus = "ok: " + lines[1]
                status.ableToRunJobs = Arch(rawValue: status.nodeArch) != nil
            } else {
                status.podmanStatus = "the ims runner \(runnerCommand) does not run there: " + (lines.dropFirst().last ?? "exit \(result.status)")
            }
        }
        return status
    }

    /// How many active jobs each node runs.
    func runningJobsByNode() -> [String: Int] {
        let active = (try? catalog.jobs(matching: JobFilter(statuses: Set(JobStatus.active)))) ?? []
        return Dictionary(grouping: active.compactMap(\.remoteBuildNode), by: { $0 }).mapValues(\.count)
    }

    // MARK: Jobs

    public func start(_ job: JobRecord, launch: RunnerLaunch) async throws(ServerError) -> RemoteStart {
        guard let chosen = Self.choose(await statuses(), arch: job.arch), let node = settings.nodes?[chosen.xname] else {
            throw .executor("remote-build-nodes", reason: "no registered remote build node of arch \(job.arch.rawValue) can run jobs now (GET /v3/remote-build-nodes/status says why)")
        }
        let jobID = job.id
        let arguments = sshArguments(node) + ["--", launch.shellCommand]
        let task = Task.detached { [logger] in
            var failure: JobError?
            do {
                let result = try await HostCommand.run(Self.ssh, arguments, environment: Self.environment, keepLines: 20, killGrace: .seconds(5), input: launch.secrets)
                if result.status != 0, !result.stopped {
                    let tail = result.outputTail.filter { !$0.isEmpty }.suffix(3).joined(separator: " | ")
                    failure = JobError(
                        code: "ims.job.remote_runner_failed", category: "environment",
                        message: "the runner on remote build node \(chosen.xname) ended with exit \(result.status)\(tail.isEmpty ? "" : ": \(tail)")")
                }
            } catch {
                failure = JobError(code: "ims.job.remote_runner_failed", category: "environment", message: "cannot start ssh to \(chosen.xname): \(error)")
            }
            if let failure { logger.warning("remote runner ended", metadata: ["job_id": "\(jobID.imsString)", "error": "\(failure.message)"]) }
            // A job that ended (its runner delivered a result) needs no more watching; otherwise say how the session ended.
            let ended = (try? self.catalog.job(jobID))?.status.isTerminal ?? true
            self.sessions.withLock { sessions in
                if ended {
                    sessions[jobID] = nil
                } else {
                    sessions[jobID, default: Session()].failure = failure ?? JobError(
                        code: "ims.job.remote_runner_ended", category: "environment",
                        message: "the SSH session of the runner on \(chosen.xname) ended before the runner delivered a result")
                }
            }
        }
        sessions.withLock { $0[jobID] = Session(task: task) }
        return RemoteStart(remoteBuildNode: chosen.xname, host: node.address)
    }

    /// IMS's rule: among the nodes able to run jobs, one of the job's arch with the fewest running jobs (the first
    /// registered breaks a tie).
    static func choose(_ statuses: [RemoteBuildNodes.Status], arch: Arch) -> RemoteBuildNodes.Status? {
        statuses.filter { $0.ableToRunJobs && $0.nodeArch == arch.rawValue }.min { $0.numCurrentJobs < $1.numCurrentJobs }
    }

    public func cancel(_ job: JobRecord) async {
        let task = sessions.withLock { $0.removeValue(forKey: job.id)?.task }
        task?.cancel()
        await task?.value
    }

    /// Jobs whose SSH session ended before their runner delivered a result.
    public func ended(_ jobs: [JobRecord]) async -> [UUID: JobError] {
        sessions.withLock { sessions in
            var ended: [UUID: JobError] = [:]
            for job in jobs {
                if let failure = sessions[job.id]?.failure {
                    ended[job.id] = failure
                    sessions[job.id] = nil
                }
            }
            return ended
        }
    }
}
