import Foundation
import IMSCatalog
import IMSEngine
import Logging

/// Runs a job on a build host for a server (`ims jobs run-remote`): the job's records go into a scratch catalog in
/// the runner's work directory, the engine runs the pipeline there against the shared store, and a reporter sends
/// the job's status, events and sessions to the server at least every heartbeat. When the server refuses a report
/// (the job was cancelled, deleted, or marked `error` after the runner fell silent) the job is cancelled here and
/// no result is delivered. At the end the result goes to the server, which registers the image after checking the
/// manifest in the store.
public struct RemoteJobRunner: Sendable {
    public let client: RunnerClient
    public let environment: EngineEnvironment
    public let bundle: RunnerBundle
    public let logger: Logger
    /// How often the reporter looks for news (it reports at least every heartbeat).
    public var pollInterval: Duration

    public init(client: RunnerClient, environment: EngineEnvironment, bundle: RunnerBundle, logger: Logger, pollInterval: Duration = .milliseconds(500)) {
        self.client = client
        self.environment = environment
        self.bundle = bundle
        self.logger = logger
        self.pollInterval = pollInterval
    }

    /// How the run ended.
    public enum Ending: Sendable, Equatable {
        /// The server accepted the result (success or error as the job ended).
        case delivered(JobStatus)
        /// The server refused the runner during the job; nothing was delivered.
        case stoppedByServer(String)
        /// The result could not be delivered (the server stayed unreachable).
        case undelivered(String)
    }

    /// Puts the job, its artifact and its key into the scratch catalog, as the server holds them.
    public static func seed(_ catalog: Catalog, with bundle: RunnerBundle) throws(CatalogError) {
        if let recipe = bundle.recipe { _ = try catalog.createRecipe(recipe) }
        if let image = bundle.image { _ = try catalog.createImage(image) }
        if let key = bundle.publicKey { _ = try catalog.createPublicKey(key) }
        var job = bundle.job
        job.pid = nil
        job.host = nil
        job.workspace = nil
        job.executor = nil
        job.slurmJobID = nil
        job.lastReport = nil
        job.status = .creating
        job.statusHistory = [JobStatusChange(status: .creating, time: job.created)]
        try catalog.insertJob(job)
    }

    /// Runs the job to its end and delivers the result.
    public func run() async -> Ending {
        let jobID = bundle.job.id
        let catalog = environment.catalog
        let heartbeat = Duration.milliseconds(Int64(max(0.2, bundle.heartbeatSeconds) * 1000))
        let engine = Task { await JobRunner(environment: environment).run(jobID: jobID) }
        let reporter = Reporter(client: client, catalog: catalog, jobID: jobID, logger: logger)
        var refusal: String?
        // Report until the job ends here, or the server tells this runner to stop.
        var lastSent = ContinuousClock.now
        while true {
            let finished = (try? catalog.job(jobID))?.status.isTerminal ?? true
            if finished { break }
            let due = ContinuousClock.now - lastSent >= heartbeat
            switch await reporter.send(force: due) {
            case .sent: lastSent = .now
            case .nothing: break
            case .refused(let detail):
                refusal = detail
            case .failed(let reason):
                logger.warning("cannot report to the server; retrying", metadata: ["error": "\(reason)"])
            }
            if refusal != nil { break }
            try? await Task.sleep(for: pollInterval)
        }
        if let refusal {
            logger.error("the server stopped this runner; cancelling the job", metadata: ["reason": "\(refusal)"])
            engine.cancel()
            _ = await engine.value
            return .stoppedByServer(refusal)
        }
        let outcome = await engine.value
        // The last events, then the result: retried while the server is unreachable (it may be restarting).
        var result = RunnerResult(status: outcome.job.status == .success ? .success : .error)
        if result.status == .success {
            result.image = outcome.image
        } else {
            result.error = outcome.job.error ?? JobError(code: "ims.job.runner_failed", category: "internal", message: outcome.error?.description ?? "the job failed")
        }
        var lastError = ""
        for attempt in 0..<30 {
            switch await reporter.send(force: true) {
            case .refused(let detail): return .stoppedByServer(detail)
            case .failed(let reason):
                lastError = reason
                try? await Task.sleep(for: .seconds(min(10, 1 << min(attempt, 3))))
                continue
            case .sent, .nothing: break
            }
            do {
                let acknowledgement = try await client.deliver(result)
                return .delivered(acknowledgement.status)
            } catch .refused(let status, let detail) {
                return status == 422 ? .delivered(.error) : .stoppedByServer(detail)
            } catch {
                lastError = error.description
                try? await Task.sleep(for: .seconds(min(10, 1 << min(attempt, 3))))
            }
        }
        return .undelivered(lastError)
    }

    /// Sends what changed in the scratch catalog since the last report.
    actor Reporter {
        enum Outcome { case sent, nothing, refused(String), failed(String) }

        let client: RunnerClient
        let catalog: Catalog
        let jobID: UUID
        let logger: Logger
        var lastSequence: Int64 = 0
        /// How many entries of the job's status history were reported.
        var historySent = 1
        var lastContainers: [SSHContainer]?
        var reportedHost = false

        init(client: RunnerClient, catalog: Catalog, jobID: UUID, logger: Logger) {
            self.client = client
            self.catalog = catalog
            self.jobID = jobID
            self.logger = logger
        }

        func send(force: Bool) async -> Outcome {
            guard let job = try? catalog.job(jobID) else { return .failed("the scratch catalog cannot be read") }
            let events = (try? catalog.jobEvents(jobID, after: lastSequence, limit: 1000)) ?? []
            var report = RunnerReport(events: events.map { event in
                var event = event
                event.sequence = 0
                return event
            })
            report.statusChanges = job.statusHistory.dropFirst(historySent).filter { !$0.status.isTerminal }
            if job.sshContainers != lastContainers { report.sshContainers = job.sshContainers }
            if !reportedHost { report.host = Catalog.currentHost }
            let changed = !report.statusChanges.isEmpty || report.sshContainers != nil || !report.events.isEmpty || report.host != nil
            guard changed || force else { return .nothing }
            do {
                _ = try await client.report(report)
            } catch .refused(_, let detail) {
                return .refused(detail)
            } catch {
                return .failed(error.description)
            }
            if let last = events.last { lastSequence = last.sequence }
            historySent = job.statusHistory.count
            if report.sshContainers != nil { lastContainers = job.sshContainers }
            reportedHost = true
            return .sent
        }
    }
}
