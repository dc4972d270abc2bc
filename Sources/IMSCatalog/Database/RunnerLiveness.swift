import Foundation

/// Whether unfinished jobs have a live runner: the rule `running_jobs` of `ims catalog check`, and what keeps
/// `ims catalog restore` from replacing the catalog.
///
/// A table of cases, without processes: ``state(of:host:now:heartbeatTimeout:isAlive:)`` classifies one job from its
/// record and a liveness test; ``problems(_:host:now:heartbeatTimeout:isAlive:)`` and
/// ``possiblyRunning(_:host:now:heartbeatTimeout:isAlive:)`` read that one classification.
public enum RunnerLiveness {
    /// What is known about a job's runner.
    public enum State: Sendable, Hashable {
        /// The job ended (`success` or `error`).
        case finished
        /// `creating` without a runner: waiting in a server's queue.
        case queued
        /// Its runner is alive, or cannot be checked from here and may be: a process on another host, a remote
        /// runner that has not reported yet or reported within the heartbeat timeout.
        case possiblyRunning
        /// The job claims to run but its runner is gone (the reason says how it is known).
        case runnerGone(String)
    }

    /// Classifies one job.
    ///
    /// - A job run by a local process: its recorded process on this host must be alive; one on another host cannot
    ///   be checked from here.
    /// - A job run by an executor on other hosts (Slurm, remote build nodes): once its runner has reported, it must
    ///   have reported within `heartbeatTimeout` (the server fails such jobs itself while it runs).
    /// - A job past `creating` that no runner ever owned (an unfinished job imported from IMS, say) has none.
    public static func state(of job: JobRecord, host: String, now: Date, heartbeatTimeout: TimeInterval, isAlive: (Int32) -> Bool) -> State {
        guard !job.status.isTerminal else { return .finished }
        let id = job.id.imsString
        let status = job.status.rawValue
        if let executor = job.executor, executor != "local" {
            guard let lastReport = job.lastReport, now.timeIntervalSince(lastReport) > heartbeatTimeout else { return .possiblyRunning }
            let silence = Int(now.timeIntervalSince(lastReport).rounded())
            return .runnerGone("job \(id) is \(status) on the \(executor) executor, but its runner has not reported for \(silence) s (timeout \(Int(heartbeatTimeout)) s)")
        }
        if let pid = job.pid {
            let runnerHost = job.host ?? host
            guard runnerHost == host, !isAlive(pid) else { return .possiblyRunning }
            return .runnerGone("job \(id) is \(status), but its runner (process \(pid) on \(runnerHost)) is gone; `ims jobs delete \(id)` removes it, and `ims serve` marks such jobs as errors when it starts")
        }
        guard job.status != .creating else { return .queued }
        return .runnerGone("job \(id) is \(status), but no ims runner owns it (a job IMS was running when its records were imported, or one whose runner never started)")
    }

    /// The problems (rule `running_jobs`) among `jobs`: those whose runner is gone.
    public static func problems(
        _ jobs: [JobRecord], host: String, now: Date, heartbeatTimeout: TimeInterval, isAlive: (Int32) -> Bool
    ) -> [Catalog.Problem] {
        jobs.compactMap { job in
            guard case .runnerGone(let message) = state(of: job, host: host, now: now, heartbeatTimeout: heartbeatTimeout, isAlive: isAlive) else { return nil }
            return Catalog.Problem(rule: "running_jobs", message: message, record: job.id.imsString)
        }
    }

    /// The unfinished jobs whose runner is, or may still be, alive.
    public static func possiblyRunning(
        _ jobs: [JobRecord], host: String, now: Date, heartbeatTimeout: TimeInterval, isAlive: (Int32) -> Bool
    ) -> [JobRecord] {
        jobs.filter { state(of: $0, host: host, now: now, heartbeatTimeout: heartbeatTimeout, isAlive: isAlive) == .possiblyRunning }
    }
}
