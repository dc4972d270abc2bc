import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import Logging

/// Runs the server's jobs: each as its own `ims jobs run` process (``DetachedJobRunner``, the runner of
/// `ims jobs create --detach`), at most `limit` at once, the rest waiting in `creating`, first come first served.
///
/// Runners outlive the server: a restarted server adopts the runners still alive (they count against the limit),
/// marks the jobs whose runner died as `error` (``Catalog/markInterrupted(host:isAlive:)``), and queues again the
/// jobs that were still waiting. ``tick()`` reaps finished runners and starts waiting jobs; the server calls it
/// periodically.
public actor JobExecutor {
    private let runner: DetachedJobRunner
    private let catalog: Catalog
    private let jobsDirectory: String
    private let logger: Logger
    /// How many runners may run at once.
    public let limit: Int
    /// Jobs waiting for a runner, oldest first.
    private var queue: [UUID] = []
    /// Runners this server started (its children, reaped here).
    private var children: [UUID: pid_t] = [:]
    /// Runners started by an earlier server (or `ims jobs create --detach`) that are still alive.
    private var adopted: [UUID: pid_t] = [:]
    /// Runners being stopped by ``cancel(_:grace:)``, which alone waits for them (so ``tick()`` never reaps them).
    private var stopping: [UUID: pid_t] = [:]
    /// The executor that runs jobs on other hosts (Slurm, remote build nodes), when the site chose one.
    private let remote: (any RemoteExecutor)?
    /// How remote runners are started and what they are given.
    private var plan: RemoteRunnerPlan?
    /// Jobs whose runner was started on another host and has not ended.
    private var remoteActive: Set<UUID> = []
    /// When this executor started: a runner's silence is only counted from then (after a restart, runners that kept
    /// working get one heartbeat timeout to report to the new server).
    private let startedAt = Date()

    public init(
        runner: DetachedJobRunner, catalog: Catalog, jobsDirectory: String, limit: Int, remote: (any RemoteExecutor)? = nil,
        plan: RemoteRunnerPlan? = nil, logger: Logger
    ) {
        self.runner = runner
        self.catalog = catalog
        self.jobsDirectory = jobsDirectory
        self.limit = max(1, limit)
        self.remote = remote
        self.plan = plan
        self.logger = logger
    }

    /// Sets the URL remote runners reach the server at, once it listens (its port may have been chosen then).
    public func setServerURL(_ url: String) {
        if plan?.serverURL == nil { plan?.serverURL = url }
    }

    /// Jobs waiting, oldest first.
    public var waiting: [UUID] { queue }

    /// How many runners are alive.
    public var runningCount: Int { children.count + adopted.count + stopping.count + remoteActive.count }

    /// Picks up after an earlier server: marks jobs whose runner died, adopts live runners on this host, and queues
    /// the jobs that never got a runner (`creating` without a pid), oldest first.
    public func recover() {
        WorkspaceMounts.markInterrupted(catalog)
        let host = Catalog.currentHost
        for job in (try? catalog.jobs(matching: JobFilter(statuses: Set(JobStatus.active)))) ?? [] {
            if let remote, job.executor == remote.kind.rawValue {
                // Its runner reports through the API; the heartbeat check watches it.
                remoteActive.insert(job.id)
            } else if let pid = job.pid {
                if job.host == nil || job.host == host, Catalog.processIsAlive(pid) { adopted[job.id] = pid }
            } else if job.status == .creating, !queue.contains(job.id) {
                queue.append(job.id)
            }
        }
        startWaiting()
    }

    /// Queues a created job and starts it when a runner is free.
    public func submit(_ jobID: UUID) {
        queue.append(jobID)
        startWaiting()
    }

    /// Ticks since the last sweep for dead runners the server did not start (`ims jobs create --detach`).
    private var ticksSinceSweep = 0
    /// Every this many ticks, jobs whose runner died are marked even when no runner of this server ended.
    static let sweepEvery = 20

    /// Reaps runners that ended (a runner that died without ending its job leaves it `error` with the reason) and
    /// starts waiting jobs.
    public func tick() async {
        ticksSinceRemoteCheck += 1
        if remote != nil, ticksSinceRemoteCheck >= Self.remoteCheckEvery { await checkRemote() }
        ticksSinceSweep += 1
        var ended = ticksSinceSweep >= Self.sweepEvery
        for (jobID, pid) in children where DetachedProcess.reapIfExited(pid) != nil {
            children[jobID] = nil
            ended = true
        }
        for (jobID, pid) in adopted where !Catalog.processIsAlive(pid) {
            adopted[jobID] = nil
            ended = true
        }
        if ended {
            WorkspaceMounts.markInterrupted(catalog)
            ticksSinceSweep = 0
        }
        startWaiting()
    }

    /// Ticks since remote jobs were last checked.
    private var ticksSinceRemoteCheck = 0
    /// Remote jobs are checked every this many ticks.
    static let remoteCheckEvery = 4

    /// Checks the jobs running on other hosts: a job whose engine ended it (a Slurm end state, an SSH session that
    /// failed) or whose runner stopped reporting for the heartbeat timeout is marked `error` with the reason, and its
    /// token is revoked, so a runner that comes back is told to stop and its late result is refused.
    public func checkRemote(now: Date = Date()) async {
        guard let remote, let plan else { return }
        ticksSinceRemoteCheck = 0
        let active = ((try? catalog.jobs(matching: JobFilter(statuses: Set(JobStatus.active)))) ?? []).filter { $0.executor == remote.kind.rawValue }
        let activeIDs = Set(active.map(\.id))
        remoteActive.formIntersection(activeIDs.union(launching))
        let ended = await remote.ended(active.filter { remoteActive.contains($0.id) && !launching.contains($0.id) })
        for (jobID, error) in ended {
            endRemote(jobID, error: error)
        }
        let cutoff = now.addingTimeInterval(-plan.heartbeatTimeoutSeconds)
        // Silent: reported once, and not since the cutoff (the active jobs read above; no second query).
        let silentJobs = cutoff > startedAt ? active.filter { job in ended[job.id] == nil && job.lastReport.map { $0 < cutoff } ?? false } : []
        for job in silentJobs {
            let silence = Int(now.timeIntervalSince(job.lastReport ?? cutoff).rounded())
            let error = JobError(
                code: "ims.job.runner_silent", category: "environment",
                message: "the runner\(job.host.map { " on \($0)" } ?? "") stopped reporting: no heartbeat for \(silence) s (executor.heartbeat_timeout_seconds is \(Int(plan.heartbeatTimeoutSeconds)))")
            endRemote(job.id, error: error)
            await remote.cancel(job)
        }
        startWaiting()
    }

    private func endRemote(_ jobID: UUID, error: JobError) {
        try? catalog.revokeRunnerToken(jobID)
        if let job = try? catalog.job(jobID), !job.status.isTerminal {
            _ = try? catalog.fail(jobID, error: error)
            logger.warning("remote job failed", metadata: ["job_id": "\(jobID.imsString)", "error": "\(error.message)"])
        }
        remoteActive.remove(jobID)
    }

    /// A remote job delivered its result (or failed): its slot is free.
    public func ended(_ jobID: UUID) {
        remoteActive.remove(jobID)
        startWaiting()
    }

    /// Jobs whose remote runner is being started.
    private var launching: Set<UUID> = []

    /// Starts the remote runner of `jobID`: a token scoped to the job, the secrets on the runner's stdin, the
    /// executor's record (Slurm job id, node) on the job. A runner that cannot be started ends the job as error.
    private func launchRemote(_ jobID: UUID, remote: any RemoteExecutor, plan: RemoteRunnerPlan) async {
        defer { launching.remove(jobID) }
        do {
            let job = try catalog.job(jobID)
            let token = RunnerTokens.make()
            let timeout = Double(job.timeoutSeconds ?? Int(plan.jobTimeoutSeconds))
            try catalog.setRunnerToken(jobID, sha256: RunnerTokens.digest(token), expires: Date().addingTimeInterval(timeout + 3600), executor: remote.kind.rawValue)
            let launch = try plan.launch(jobID: jobID, token: token)
            let started = try await remote.start(job, launch: launch)
            _ = try catalog.updateJob(jobID) { job in
                job.slurmJobID = started.slurmJobID ?? job.slurmJobID
                job.remoteBuildNode = started.remoteBuildNode ?? job.remoteBuildNode
                job.host = started.host ?? job.host
            }
            logger.info("started remote job runner", metadata: [
                "job_id": "\(jobID.imsString)", "executor": "\(remote.kind.rawValue)",
                "slurm_job_id": "\(started.slurmJobID ?? "-")", "node": "\(started.remoteBuildNode ?? "-")",
            ])
        } catch {
            let message = "cannot start the job's runner: \(error)"
            endRemote(jobID, error: JobError(code: "ims.job.runner_unavailable", category: "environment", message: message))
            startWaiting()
        }
    }

    /// Stops a job before its record is removed: a waiting job leaves the queue; a running job's runner gets
    /// SIGTERM (it cancels its steps and plugins), then SIGKILL if it has not ended within `grace`.
    public func cancel(_ jobID: UUID, grace: Duration = .seconds(10)) async {
        queue.removeAll { $0 == jobID }
        if let remote, let job = try? catalog.job(jobID), job.executor == remote.kind.rawValue {
            try? catalog.revokeRunnerToken(jobID)
            await remote.cancel(job)
            remoteActive.remove(jobID)
            startWaiting()
            return
        }
        var pid = children[jobID] ?? adopted[jobID]
        if pid == nil, let job = try? catalog.job(jobID), !job.status.isTerminal, let recorded = job.pid,
           job.host == nil || job.host == Catalog.currentHost, Catalog.processIsAlive(recorded) {
            pid = recorded
        }
        guard let pid else { return }
        let isChild = children[jobID] != nil
        children[jobID] = nil
        adopted[jobID] = nil
        stopping[jobID] = pid
        defer {
            stopping[jobID] = nil
            startWaiting()
        }
        logger.info("cancelling job", metadata: ["job_id": "\(jobID.uuidString.lowercased())", "pid": "\(pid)"])
        // A child is reaped here (once: its pid may be reused afterwards); another process is watched until gone.
        let hasEnded = { isChild ? DetachedProcess.reapIfExited(pid) != nil : !Catalog.processIsAlive(pid) }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now.advanced(by: grace)
        var ended = hasEnded()
        while !ended, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
            ended = hasEnded()
        }
        guard !ended else { return }
        kill(pid, SIGKILL)
        for _ in 0..<250 {
            if hasEnded() { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func startWaiting() {
        while runningCount < limit, !queue.isEmpty {
            let jobID = queue.removeFirst()
            guard let job = try? catalog.job(jobID), job.status == .creating, job.pid == nil else { continue }
            if let remote, let plan {
                guard job.executor == nil else { continue }
                remoteActive.insert(jobID)
                launching.insert(jobID)
                Task { await self.launchRemote(jobID, remote: remote, plan: plan) }
                continue
            }
            do {
                let pid = try runner.start(jobID: jobID, jobsDirectory: jobsDirectory)
                children[jobID] = pid
                // Own the job at once, so a runner that dies before it records itself is still detected (unless a
                // runner started elsewhere, e.g. by `ims jobs create --detach`, owns it: then ours leaves it at once).
                _ = try? catalog.claimRunner(jobID, pid: pid)
                logger.info("started job runner", metadata: ["job_id": "\(jobID.uuidString.lowercased())", "pid": "\(pid)"])
            } catch {
                let message = "cannot start the background runner: \(error.description)"
                _ = try? catalog.fail(jobID, error: JobError(code: "ims.job.runner_unavailable", category: "environment", message: message))
                logger.error("cannot start job runner", metadata: ["job_id": "\(jobID.uuidString.lowercased())", "error": "\(message)"])
            }
        }
    }
}
