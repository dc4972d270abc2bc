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

    public init(runner: DetachedJobRunner, catalog: Catalog, jobsDirectory: String, limit: Int, logger: Logger) {
        self.runner = runner
        self.catalog = catalog
        self.jobsDirectory = jobsDirectory
        self.limit = max(1, limit)
        self.logger = logger
    }

    /// Jobs waiting, oldest first.
    public var waiting: [UUID] { queue }

    /// How many runners are alive.
    public var runningCount: Int { children.count + adopted.count + stopping.count }

    /// Picks up after an earlier server: marks jobs whose runner died, adopts live runners on this host, and queues
    /// the jobs that never got a runner (`creating` without a pid), oldest first.
    public func recover() {
        WorkspaceMounts.markInterrupted(catalog)
        let host = Catalog.currentHost
        for job in (try? catalog.jobs(matching: JobFilter(statuses: Set(JobStatus.active)))) ?? [] {
            if let pid = job.pid {
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
    public func tick() {
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

    /// Stops a job before its record is removed: a waiting job leaves the queue; a running job's runner gets
    /// SIGTERM (it cancels its steps and plugins), then SIGKILL if it has not ended within `grace`.
    public func cancel(_ jobID: UUID, grace: Duration = .seconds(10)) async {
        queue.removeAll { $0 == jobID }
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
