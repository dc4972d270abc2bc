import Foundation
import GRDB

extension Catalog {
    static let jobColumns = """
        id, created, job_type, artifact_id, public_key_id, image_root_archive_name, enable_debug, build_env_size, \
        job_mem_size, kernel_file_name, initrd_file_name, kernel_parameters_file_name, ssh_containers, require_dkms, \
        status, resultant_image_id, arch, kubernetes_job, kubernetes_service, kubernetes_configmap, kubernetes_pvc, \
        kubernetes_secret, kubernetes_namespace, remote_build_node, status_history, error, workspace, pid, host, \
        timeout_seconds, executor, slurm_job_id, last_report
        """

    static let jobColumnCount = jobColumns.split(separator: ",").count

    static func decodeJob(_ row: Row) throws -> JobRecord {
        let idText: String = row[0]
        let errorText: String? = row[25]
        var record = JobRecord(
            id: try Columns.uuid(idText, kind: .job),
            created: Columns.date(row[1]),
            jobType: try Columns.enumeration(row[2], JobType.self, kind: .job, id: idText),
            artifactID: try Columns.uuid(row[3], kind: .job),
            publicKeyID: try Columns.optionalUUID(row[4], kind: .job, id: idText, field: "public_key_id"),
            imageRootArchiveName: row[5],
            enableDebug: row[6],
            buildEnvSize: row[7],
            jobMemSize: row[8],
            kernelFileName: row[9] as String,
            initrdFileName: row[10],
            kernelParametersFileName: row[11],
            sshContainers: try Columns.json(row[12], [SSHContainer].self, kind: .job, id: idText, field: "ssh_containers"),
            requireDKMS: row[13],
            status: try Columns.enumeration(row[14], JobStatus.self, kind: .job, id: idText),
            resultantImageID: try Columns.optionalUUID(row[15], kind: .job, id: idText, field: "resultant_image_id"),
            arch: try Columns.enumeration(row[16], Arch.self, kind: .job, id: idText),
            statusHistory: try Columns.json(row[24], [JobStatusChange].self, kind: .job, id: idText, field: "status_history"),
            error: try errorText.map { try Columns.json($0, JobError.self, kind: .job, id: idText, field: "error") },
            workspace: row[26],
            pid: row[27],
            host: row[28],
            timeoutSeconds: row[29])
        record.kubernetesJob = row[17]
        record.kubernetesService = row[18]
        record.kubernetesConfigmap = row[19]
        record.kubernetesPVC = row[20]
        record.kubernetesSecret = row[21]
        record.kubernetesNamespace = row[22]
        record.remoteBuildNode = row[23]
        record.executor = row[30]
        record.slurmJobID = row[31]
        record.lastReport = Columns.optionalDate(row[32])
        return record
    }

    static func jobValues(_ job: JobRecord) throws -> [(any DatabaseValueConvertible)?] {
        [
            job.id.imsString, Columns.micros(job.created), job.jobType.rawValue, job.artifactID.imsString,
            job.publicKeyID?.imsString, job.imageRootArchiveName, job.enableDebug, job.buildEnvSize, job.jobMemSize,
            job.kernelFileName, job.initrdFileName, job.kernelParametersFileName, try Columns.jsonText(job.sshContainers),
            job.requireDKMS, job.status.rawValue, job.resultantImageID?.imsString, job.arch.rawValue, job.kubernetesJob,
            job.kubernetesService, job.kubernetesConfigmap, job.kubernetesPVC, job.kubernetesSecret,
            job.kubernetesNamespace, job.remoteBuildNode, try Columns.jsonText(job.statusHistory),
            try job.error.map { try Columns.jsonText($0) }, job.workspace, job.pid, job.host, job.timeoutSeconds,
            job.executor, job.slurmJobID, job.lastReport.map(Columns.micros),
        ]
    }

    static func fetchJob(_ db: Database, _ id: UUID) throws -> JobRecord {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT \(jobColumns) FROM jobs WHERE id = ?"), arguments: [id.imsString]) else {
            throw CatalogError.notFound(kind: .job, id: id.imsString)
        }
        return try decodeJob(row)
    }

    static func saveJob(_ db: Database, _ job: JobRecord) throws {
        let assignments = jobColumns.split(separator: ",").dropFirst()
            .map { "\($0.trimmingCharacters(in: .whitespacesAndNewlines)) = ?" }.joined(separator: ", ")
        // The id moves from the front to the WHERE clause.
        var values = Array(try jobValues(job).dropFirst())
        values.append(job.id.imsString)
        try db.execute(sql: "UPDATE jobs SET \(assignments) WHERE id = ?", arguments: StatementArguments(values))
    }

    /// Creates a job the way IMS's `POST /jobs` does (IMS §5.3), in one transaction:
    ///
    /// - the artifact must be a live recipe (create) or image (customize) with a link;
    /// - the public key, when given, must be a live public key;
    /// - SSH containers: refused for create jobs (a `debug` one is added when `enable_debug`); customize jobs
    ///   get `customize` unless they name one, and at most one;
    /// - `arch` comes from the artifact, `kernel_file_name` defaults by arch;
    /// - `require_dkms`: forced on aarch64, else the request's value, else the recipe's (create) or
    ///   `customizeRequiresDKMS` (customize; IMS's `JOB_ENABLE_DKMS`);
    /// - `status` is `creating`, recorded as the first `status_history` entry.
    ///
    /// - Returns: the new job.
    /// - Throws: ``CatalogError/notFound(kind:id:)`` for an unknown artifact or key,
    ///   ``CatalogError/invalidJob(reason:)`` or ``CatalogError/invalidField(field:reason:)`` otherwise.
    @discardableResult
    public func createJob(_ request: JobRequest, customizeRequiresDKMS: Bool = true) throws(CatalogError) -> JobRecord {
        guard !request.imageRootArchiveName.isEmpty else {
            throw CatalogError.invalidField(field: "image_root_archive_name", reason: "must not be empty")
        }
        guard request.buildEnvSize >= 1 else { throw CatalogError.invalidField(field: "build_env_size", reason: "must be at least 1") }
        guard request.jobMemSize >= 1 else { throw CatalogError.invalidField(field: "job_mem_size", reason: "must be at least 1") }
        guard !request.initrdFileName.isEmpty else { throw CatalogError.invalidField(field: "initrd_file_name", reason: "must not be empty") }
        guard !request.kernelParametersFileName.isEmpty else {
            throw CatalogError.invalidField(field: "kernel_parameters_file_name", reason: "must not be empty")
        }
        if let kernel = request.kernelFileName, kernel.isEmpty {
            throw CatalogError.invalidField(field: "kernel_file_name", reason: "must not be empty")
        }
        if let timeout = request.timeoutSeconds, timeout < 1 {
            throw CatalogError.invalidField(field: "timeout_seconds", reason: "must be at least 1")
        }
        return try write("creating job \(request.id.imsString)") { db in
            let arch: Arch
            let artifactRequiresDKMS: Bool
            var sshContainers: [SSHContainer]
            switch request.jobType {
            case .create:
                let recipe = try Catalog.fetchRecipe(db, request.artifactID, scope: .live)
                guard recipe.link != nil else {
                    throw CatalogError.invalidJob(reason: "recipe \(recipe.id.imsString) has no link (upload the recipe archive first)")
                }
                arch = recipe.arch
                artifactRequiresDKMS = recipe.requireDKMS
                if let requested = request.sshContainers, !requested.isEmpty {
                    throw CatalogError.invalidJob(reason: "ssh_containers are not supported for create jobs (use enable_debug)")
                }
                sshContainers = request.enableDebug ? [SSHContainer(name: "debug", jail: false)] : []
            case .customize:
                let image = try Catalog.fetchImage(db, request.artifactID, scope: .live)
                guard image.link != nil else {
                    throw CatalogError.invalidJob(reason: "image \(image.id.imsString) has no link (no manifest to customize)")
                }
                arch = image.arch
                artifactRequiresDKMS = customizeRequiresDKMS
                sshContainers = request.sshContainers ?? []
                if sshContainers.isEmpty { sshContainers = [SSHContainer(name: "customize", jail: false)] }
                guard sshContainers.count == 1 else {
                    throw CatalogError.invalidJob(reason: "a customize job takes at most one ssh container, got \(sshContainers.count)")
                }
            }
            if let keyID = request.publicKeyID {
                _ = try Catalog.fetchPublicKey(db, keyID, scope: .live)
            }
            for index in sshContainers.indices { sshContainers[index].status = "pending" }
            let requireDKMS = arch == .aarch64 ? true : (request.requireDKMS ?? artifactRequiresDKMS)
            let created = IMSTimestamp.now()
            let job = JobRecord(
                id: request.id, created: created, jobType: request.jobType, artifactID: request.artifactID,
                publicKeyID: request.publicKeyID, imageRootArchiveName: request.imageRootArchiveName,
                enableDebug: request.enableDebug, buildEnvSize: request.buildEnvSize, jobMemSize: request.jobMemSize,
                kernelFileName: request.kernelFileName ?? arch.defaultKernelFileName,
                initrdFileName: request.initrdFileName, kernelParametersFileName: request.kernelParametersFileName,
                sshContainers: sshContainers, requireDKMS: requireDKMS, status: .creating, arch: arch,
                statusHistory: [JobStatusChange(status: .creating, time: created)], workspace: request.workspace,
                pid: request.pid, host: request.host, timeoutSeconds: request.timeoutSeconds)
            try Catalog.insertJob(db, job)
            return job
        }
    }

    /// Inserts a job record as it is (creation rules are ``createJob(_:customizeRequiresDKMS:)``'s).
    static func insertJob(_ db: Database, _ job: JobRecord) throws {
        if try Bool.fetchOne(try db.cachedStatement(sql: "SELECT 1 FROM jobs WHERE id = ?"), arguments: [job.id.imsString]) == true {
            throw CatalogError.duplicateID(kind: .job, id: job.id.imsString)
        }
        let placeholders = Array(repeating: "?", count: Catalog.jobColumnCount).joined(separator: ", ")
        try db.cachedStatement(sql: "INSERT INTO jobs (\(Catalog.jobColumns)) VALUES (\(placeholders))")
            .execute(arguments: StatementArguments(try Catalog.jobValues(job)))
    }

    /// One job.
    ///
    /// - Throws: ``CatalogError/notFound(kind:id:)``.
    public func job(_ id: UUID) throws(CatalogError) -> JobRecord {
        try read("reading job \(id.imsString)") { db in try Catalog.fetchJob(db, id) }
    }

    /// Jobs matching a filter, oldest first.
    public func jobs(matching filter: JobFilter = .all, now: Date = Date()) throws(CatalogError) -> [JobRecord] {
        let (clause, arguments) = Catalog.whereClause(filter, now: now)
        return try read("listing jobs") { db in
            let cursor = try Row.fetchCursor(db, sql: "SELECT \(Catalog.jobColumns) FROM jobs WHERE \(clause) ORDER BY created, id", arguments: arguments)
            var records: [JobRecord] = []
            while let row = try cursor.next() { records.append(try Catalog.decodeJob(row)) }
            return records
        }
    }

    static func whereClause(_ filter: JobFilter, now: Date) -> (String, StatementArguments) {
        var clauses: [String] = []
        var arguments: [any DatabaseValueConvertible] = []
        if !filter.statuses.isEmpty {
            let statuses = filter.statuses.sorted()
            clauses.append("status IN (\(statuses.map { _ in "?" }.joined(separator: ", ")))")
            arguments.append(contentsOf: statuses.map(\.rawValue))
        }
        if let jobType = filter.jobType {
            clauses.append("job_type = ?")
            arguments.append(jobType.rawValue)
        }
        if let older = filter.olderThan {
            clauses.append("created < ?")
            arguments.append(Columns.micros(now.addingTimeInterval(-older)))
        }
        if let newer = filter.newerThan {
            clauses.append("created > ?")
            arguments.append(Columns.micros(now.addingTimeInterval(-newer)))
        }
        return (clauses.isEmpty ? "1" : clauses.joined(separator: " AND "), StatementArguments(arguments))
    }

    /// Reads a job, lets `change` modify it, and saves it, in one IMMEDIATE transaction.
    ///
    /// Use it for fields without a dedicated method (the runner, the workspace, SSH connection info).
    @discardableResult
    public func updateJob(_ id: UUID, _ change: (inout JobRecord) throws -> Void) throws(CatalogError) -> JobRecord {
        try write("updating job \(id.imsString)") { db in
            var job = try Catalog.fetchJob(db, id)
            let original = job
            do {
                try change(&job)
            } catch let error as CatalogError {
                throw error
            } catch {
                throw CatalogError.invalidField(field: "job", reason: "\(error)")
            }
            guard job.id == original.id else { throw CatalogError.invalidField(field: "id", reason: "cannot be changed") }
            try Catalog.saveJob(db, job)
            return job
        }
    }

    /// Moves a job to `status` and appends `{status, time, reason}` to its history, in one transaction.
    ///
    /// Like IMS, any status may follow any other. Leaving `error` clears the stored error.
    ///
    /// - Returns: the updated job.
    @discardableResult
    public func transition(_ jobID: UUID, to status: JobStatus, reason: String? = nil, at time: Date = IMSTimestamp.now()) throws(CatalogError) -> JobRecord {
        try updateJob(jobID) { job in
            job.status = status
            job.statusHistory.append(JobStatusChange(status: status, time: time, reason: reason))
            if status != .error { job.error = nil }
        }
    }

    /// Ends a job successfully with the image it produced (IMS: PATCH `resultant_image_id`, then `success`).
    @discardableResult
    public func finish(_ jobID: UUID, resultantImageID: UUID, at time: Date = IMSTimestamp.now()) throws(CatalogError) -> JobRecord {
        try updateJob(jobID) { job in
            job.resultantImageID = resultantImageID
            job.status = .success
            job.error = nil
            job.statusHistory.append(JobStatusChange(status: .success, time: time))
        }
    }

    /// Ends a job in `error` with a structured error; the history entry's reason is the error message.
    @discardableResult
    public func fail(_ jobID: UUID, error: JobError, at time: Date = IMSTimestamp.now()) throws(CatalogError) -> JobRecord {
        try updateJob(jobID) { job in
            job.status = .error
            job.error = error
            job.statusHistory.append(JobStatusChange(status: .error, time: time, reason: error.message))
        }
    }

    /// Records which ims process runs a job (and where), for ``markInterrupted(host:isAlive:)``.
    @discardableResult
    public func setRunner(_ jobID: UUID, pid: Int32?, host: String? = Catalog.currentHost, workspace: String? = nil) throws(CatalogError) -> JobRecord {
        try updateJob(jobID) { job in
            job.pid = pid
            job.host = host
            if let workspace { job.workspace = workspace }
        }
    }

    /// The outcome of ``claimRunner(_:pid:host:isAlive:)``.
    public enum RunnerClaim: Sendable, Equatable {
        /// The job is now run by the claiming process.
        case claimed
        /// Another live runner on this host (or a runner on another host) owns the job.
        case heldBy(pid: Int32, host: String?)
    }

    /// Makes `pid` the job's runner unless another runner owns it: a recorded pid that is `pid` itself, dead, or
    /// absent gives way; a live one on this host, or any on another host, keeps the job. One write transaction, so
    /// two runners started for the same job (`ims jobs create --detach` while `ims serve` starts) never both run it.
    public func claimRunner(
        _ jobID: UUID, pid: Int32, host: String = Catalog.currentHost, isAlive: (Int32) -> Bool = Catalog.processIsAlive
    ) throws(CatalogError) -> RunnerClaim {
        try write("claiming job \(jobID.imsString) for runner \(pid)") { db in
            var job = try Catalog.fetchJob(db, jobID)
            if let current = job.pid {
                let elsewhere = job.host != nil && job.host != host
                if elsewhere || (current != pid && isAlive(current)) { return .heldBy(pid: current, host: job.host) }
            }
            job.pid = pid
            job.host = host
            try Catalog.saveJob(db, job)
            return .claimed
        }
    }

    /// Deletes one job and its events.
    ///
    /// - Returns: the removed job.
    @discardableResult
    public func deleteJob(_ id: UUID) throws(CatalogError) -> JobRecord {
        try write("deleting job \(id.imsString)") { db in
            let job = try Catalog.fetchJob(db, id)
            try db.execute(sql: "DELETE FROM jobs WHERE id = ?", arguments: [id.imsString])
            return job
        }
    }

    /// Deletes every job matching the filter, with their events (IMS `DELETE /jobs?status=…&job_type=…&age=…`).
    ///
    /// - Returns: the removed jobs.
    @discardableResult
    public func deleteJobs(matching filter: JobFilter, now: Date = Date()) throws(CatalogError) -> [JobRecord] {
        let (clause, arguments) = Catalog.whereClause(filter, now: now)
        return try write("deleting jobs") { db in
            let cursor = try Row.fetchCursor(db, sql: "SELECT \(Catalog.jobColumns) FROM jobs WHERE \(clause) ORDER BY created, id", arguments: arguments)
            var removed: [JobRecord] = []
            while let row = try cursor.next() { removed.append(try Catalog.decodeJob(row)) }
            try db.execute(sql: "DELETE FROM jobs WHERE \(clause)", arguments: arguments)
            return removed
        }
    }

    /// The reason recorded when the process running a job is gone.
    public static func interruptedReason(pid: Int32) -> String {
        "interrupted: the ims process running this job stopped (pid \(pid))"
    }

    /// Marks as `error` every unfinished job whose runner process on this host is gone (crash safety; call at
    /// startup). Jobs without a runner, and jobs run by other hosts, are left alone.
    ///
    /// - Parameters:
    ///   - host: this machine's name (jobs with this `host`, or none, are checked).
    ///   - isAlive: whether a pid is a running process; ``processIsAlive(_:)`` by default.
    /// - Returns: the jobs marked, after the change.
    @discardableResult
    public func markInterrupted(host: String = Catalog.currentHost, isAlive: (Int32) -> Bool = Catalog.processIsAlive) throws(CatalogError) -> [JobRecord] {
        try write("marking interrupted jobs") { db in
            let active = JobStatus.active.map(\.rawValue)
            let cursor = try Row.fetchCursor(
                db,
                sql: "SELECT \(Catalog.jobColumns) FROM jobs WHERE pid IS NOT NULL AND (host IS NULL OR host = ?) AND status IN (\(active.map { _ in "?" }.joined(separator: ", "))) ORDER BY created, id",
                arguments: StatementArguments([host] + active))
            var candidates: [JobRecord] = []
            while let row = try cursor.next() { candidates.append(try Catalog.decodeJob(row)) }
            var marked: [JobRecord] = []
            let now = IMSTimestamp.now()
            for var job in candidates {
                guard let pid = job.pid, !isAlive(pid) else { continue }
                let reason = Catalog.interruptedReason(pid: pid)
                job.status = .error
                job.error = JobError(code: "ims.job.interrupted", category: "environment", message: reason)
                job.statusHistory.append(JobStatusChange(status: .error, time: now, reason: reason))
                try Catalog.saveJob(db, job)
                marked.append(job)
            }
            return marked
        }
    }
}
