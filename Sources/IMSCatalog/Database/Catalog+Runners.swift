import Foundation
import GRDB

/// A remote runner's token as the catalog keeps it: only its SHA-256, and when it stops being valid.
public struct RunnerTokenRecord: Sendable, Hashable {
    public var sha256: String
    public var expires: Date

    public init(sha256: String, expires: Date) {
        self.sha256 = sha256
        self.expires = expires
    }
}

extension Catalog {
    /// Adds a job record as it is (same id, status and history): a remote runner's copy of the job it runs.
    ///
    /// - Throws: ``CatalogError/duplicateID(kind:id:)`` when the id exists.
    public func insertJob(_ job: JobRecord) throws(CatalogError) {
        try write("adding job \(job.id.imsString)") { db in
            if try Bool.fetchOne(db, sql: "SELECT 1 FROM jobs WHERE id = ?", arguments: [job.id.imsString]) == true {
                throw CatalogError.duplicateID(kind: .job, id: job.id.imsString)
            }
            let placeholders = Array(repeating: "?", count: Catalog.jobColumnCount).joined(separator: ", ")
            try db.execute(sql: "INSERT INTO jobs (\(Catalog.jobColumns)) VALUES (\(placeholders))", arguments: StatementArguments(try Catalog.jobValues(job)))
        }
    }

    /// Records the job's runner token (its SHA-256: the catalog never holds a token itself) and the executor that
    /// runs the job; an earlier token stops working.
    public func setRunnerToken(_ jobID: UUID, sha256: String, expires: Date, executor: String) throws(CatalogError) {
        try write("recording a runner token for job \(jobID.imsString)") { db in
            var job = try Catalog.fetchJob(db, jobID)
            job.executor = executor
            try Catalog.saveJob(db, job)
            try db.execute(
                sql: "UPDATE jobs SET runner_token_sha256 = ?, runner_token_expires = ? WHERE id = ?",
                arguments: [sha256, Columns.micros(expires), jobID.imsString])
        }
    }

    /// Ends the job's runner token: the runner's next report or result is refused.
    public func revokeRunnerToken(_ jobID: UUID) throws(CatalogError) {
        try write("revoking the runner token of job \(jobID.imsString)") { db in
            try db.execute(sql: "UPDATE jobs SET runner_token_sha256 = NULL, runner_token_expires = NULL WHERE id = ?", arguments: [jobID.imsString])
        }
    }

    /// What the runner API checks first, in one read: the job's status, its error message, and its token.
    public struct RunnerAccess: Sendable {
        public var status: JobStatus
        public var error: String?
        public var token: RunnerTokenRecord?
    }

    /// The job's status and runner token.
    ///
    /// - Throws: ``CatalogError/notFound(kind:id:)``.
    public func runnerAccess(_ jobID: UUID) throws(CatalogError) -> RunnerAccess {
        try read("checking the runner of job \(jobID.imsString)") { db in
            guard let row = try Row.fetchOne(
                try db.cachedStatement(sql: "SELECT status, error, runner_token_sha256, runner_token_expires FROM jobs WHERE id = ?"),
                arguments: [jobID.imsString])
            else { throw CatalogError.notFound(kind: .job, id: jobID.imsString) }
            let idText = jobID.imsString
            let status = try Columns.enumeration(row[0], JobStatus.self, kind: .job, id: idText)
            let errorText: String? = row[1]
            let error = try errorText.map { try Columns.json($0, JobError.self, kind: .job, id: idText, field: "error").message }
            var token: RunnerTokenRecord?
            if let digest: String = row[2], let expires: Int64 = row[3] { token = RunnerTokenRecord(sha256: digest, expires: Columns.date(expires)) }
            return RunnerAccess(status: status, error: error, token: token)
        }
    }

    /// Applies a runner's report in one transaction: its events, its status changes (with the runner's times; never
    /// a terminal one: that comes with the result), its host and sessions, and the heartbeat time. A report that
    /// changes nothing but the heartbeat and the events touches one column of the job.
    ///
    /// - Returns: the job's status after the change.
    @discardableResult
    public func applyRunnerReport(
        _ jobID: UUID, statusChanges: [JobStatusChange], host: String?, sshContainers: [SSHContainer]?, events: [JobEvent], at time: Date = IMSTimestamp.now()
    ) async throws(CatalogError) -> JobStatus {
        try await writeSuspending("recording the report of job \(jobID.imsString)'s runner") { db in
            let active = JobStatus.active.map(\.rawValue)
            if statusChanges.isEmpty, sshContainers == nil {
                // The heartbeat (and the host, which does not change once known): one UPDATE of an active job.
                try db.execute(
                    sql: "UPDATE jobs SET last_report = ?, host = COALESCE(?, host) WHERE id = ? AND status IN (\(active.map { _ in "?" }.joined(separator: ", ")))",
                    arguments: StatementArguments([Columns.micros(time), host, jobID.imsString] as [(any DatabaseValueConvertible)?] + active.map { $0 as (any DatabaseValueConvertible)? }))
                guard db.changesCount > 0 else { return try Catalog.fetchJob(db, jobID).status }
                _ = try Catalog.insertJobEvents(db, jobID, events)
                guard let status = try String.fetchOne(try db.cachedStatement(sql: "SELECT status FROM jobs WHERE id = ?"), arguments: [jobID.imsString]) else {
                    throw CatalogError.notFound(kind: .job, id: jobID.imsString)
                }
                return try Columns.enumeration(status, JobStatus.self, kind: .job, id: jobID.imsString)
            }
            var job = try Catalog.fetchJob(db, jobID)
            guard !job.status.isTerminal else { return job.status }
            for change in statusChanges where !change.status.isTerminal && change.status != job.status {
                job.status = change.status
                job.statusHistory.append(change)
            }
            if let host { job.host = host }
            if let sshContainers { job.sshContainers = sshContainers }
            job.lastReport = time
            try Catalog.saveJob(db, job)
            _ = try Catalog.insertJobEvents(db, jobID, events)
            return job.status
        }
    }
}
