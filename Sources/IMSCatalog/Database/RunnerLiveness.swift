import Foundation

/// The rule `ims catalog check` applies to unfinished jobs: each needs a runner that is alive.
///
/// A table of cases, without processes: ``problems(_:host:now:heartbeatTimeout:isAlive:)`` takes the jobs and a
/// liveness test and says which jobs are `running` (any status that does not end a job) without a live runner.
public enum RunnerLiveness {
    /// The problems (rule `running_jobs`) among `jobs`.
    ///
    /// - A job run by a local process: its recorded process on this host must be alive. A process recorded on
    ///   another host cannot be checked from here and is not reported.
    /// - A job run by an executor on other hosts (Slurm, remote build nodes): once its runner has reported, it must
    ///   have reported within `heartbeatTimeout` (the server fails such jobs itself while it runs).
    /// - A job past `creating` that no runner ever owned (an unfinished job imported from IMS, say).
    /// - A `creating` job without a runner is waiting for one (a server's queue) and is not reported.
    public static func problems(
        _ jobs: [JobRecord], host: String, now: Date, heartbeatTimeout: TimeInterval, isAlive: (Int32) -> Bool
    ) -> [Catalog.Problem] {
        var problems: [Catalog.Problem] = []
        for job in jobs where !job.status.isTerminal {
            let id = job.id.imsString
            let status = job.status.rawValue
            if let executor = job.executor, executor != "local" {
                if let lastReport = job.lastReport, now.timeIntervalSince(lastReport) > heartbeatTimeout {
                    let silence = Int(now.timeIntervalSince(lastReport).rounded())
                    problems.append(Catalog.Problem(
                        rule: "running_jobs",
                        message: "job \(id) is \(status) on the \(executor) executor, but its runner has not reported for \(silence) s (timeout \(Int(heartbeatTimeout)) s)",
                        record: id))
                }
                continue
            }
            if let pid = job.pid {
                let runnerHost = job.host ?? host
                if runnerHost == host, !isAlive(pid) {
                    problems.append(Catalog.Problem(
                        rule: "running_jobs",
                        message: "job \(id) is \(status), but its runner (process \(pid) on \(runnerHost)) is gone; `ims jobs delete \(id)` removes it, and `ims serve` marks such jobs as errors when it starts",
                        record: id))
                }
                continue
            }
            if job.status != .creating {
                problems.append(Catalog.Problem(
                    rule: "running_jobs",
                    message: "job \(id) is \(status), but no ims runner owns it (a job IMS was running when its records were imported, or one whose runner never started)",
                    record: id))
            }
        }
        return problems
    }
}

extension RunnerLiveness {
    /// The unfinished jobs whose runner is, or may still be, alive: a local process on this host that is alive, one
    /// on another host, or a runner on another executor that has not yet been silent for `heartbeatTimeout`.
    public static func possiblyRunning(
        _ jobs: [JobRecord], host: String, now: Date, heartbeatTimeout: TimeInterval, isAlive: (Int32) -> Bool
    ) -> [JobRecord] {
        jobs.filter { job in
            guard !job.status.isTerminal else { return false }
            if let executor = job.executor, executor != "local" {
                guard let lastReport = job.lastReport else { return true }
                return now.timeIntervalSince(lastReport) <= heartbeatTimeout
            }
            guard let pid = job.pid else { return false }
            return (job.host ?? host) != host || isAlive(pid)
        }
    }
}
