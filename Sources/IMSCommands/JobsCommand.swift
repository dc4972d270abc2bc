import ArgumentParser
import Dispatch
import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import IMSProtocol

/// `ims jobs …`: create, run, list, describe, follow and delete jobs (mirrors `cray ims jobs`).
struct JobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Create, list, describe, follow and delete image jobs.",
        discussion: """
            A create job turns a recipe into a registered image; a customize job changes an existing image. \
            Statuses follow IMS: creating, fetching_recipe, waiting_for_repos, building_image, \
            packaging_artifacts, then success or error.
            """,
        subcommands: [Create.self, Run.self, RunRemote.self, List.self, Describe.self, Logs.self, Complete.self, Delete.self]
    )

    static func parseID(_ text: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw ValidationError("'\(text)' is not a job id (a UUID)") }
        return id
    }

    /// Opens the catalog and reads the job `id` (after marking jobs whose runner died as interrupted, unless
    /// told not to); a malformed or unknown id is reported and exits.
    static func openJob(_ id: String, catalog: CatalogOptions, markInterrupted: Bool = true, context: CommandContext) throws -> (Catalog, JobRecord) {
        let jobID = try parseID(id)
        let store = try catalog.openCatalog(context)
        if markInterrupted { WorkspaceMounts.markInterrupted(store) }
        do { return (store, try store.job(jobID)) } catch { throw CLIErrors.report(error, json: catalog.json, context: context) }
    }

    /// A customize script given on the command line: it must be a readable regular file; the job gets its
    /// absolute path.
    static func customizeScript(_ path: String, context: CommandContext) throws -> String {
        let absolute = URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: context.currentDirectory)).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), !isDirectory.boolValue,
              FileManager.default.isReadableFile(atPath: absolute)
        else { throw CLIError.input("'--script \(path)': no such readable file") }
        return absolute
    }

    static func jobJSON(_ job: JobRecord) -> JSONValue { EventEncodingBridge.json(job) }

    /// One step's outcome as `ims jobs describe` shows it, read from the job's events.
    struct StepSummary {
        var name: String
        var json: JSONValue
        var text: String
    }

    /// The last outcome of each step that finished or was skipped, in the order they happened.
    static func stepSummaries(_ events: [JobEvent]) -> [StepSummary] {
        var order: [String] = []
        var byName: [String: StepSummary] = [:]
        for event in events {
            guard let step = event.phase, let engineEvent = event.engineEvent else { continue }
            let summary: StepSummary
            switch engineEvent {
            case .stepFinished(let finished):
                var fields: [String: JSONValue] = ["name": .string(step), "status": .string(finished.status.rawValue), "seconds": .number(finished.seconds)]
                var text = String(format: "%@ in %.2f s", finished.status.rawValue, finished.seconds)
                if let cpu = finished.cpuSeconds {
                    fields["cpu_seconds"] = .number(cpu)
                    if cpu >= 0.01 { text += String(format: " (CPU %.2f s)", cpu) }
                }
                if let cache = finished.cache {
                    var cacheFields: [String: JSONValue] = ["status": .string(cache.status.rawValue)]
                    if let key = cache.key { cacheFields["key"] = .string(key) }
                    if let reason = cache.reason { cacheFields["reason"] = .string(reason) }
                    if let saved = cache.savedSeconds { cacheFields["saved_seconds"] = .number(saved) }
                    fields["cache"] = .object(cacheFields)
                    switch cache.status {
                    case .hit: text += String(format: "  cache hit %@ (the phase took %.2f s when it ran)", String(cache.key?.prefix(12) ?? ""), cache.savedSeconds ?? 0)
                    case .stored: text += "  ran, stored in the cache as \(cache.key?.prefix(12) ?? "")"
                    case .miss: text += "  ran (cache miss\(cache.reason.map { ": \($0)" } ?? ""))"
                    case .off: text += "  ran (not cached: \(cache.reason ?? "off"))"
                    }
                }
                if let error = finished.error { text += ": " + error }
                summary = StepSummary(name: step, json: .object(fields), text: text)
            case .stepSkipped(let skipped):
                summary = StepSummary(name: step, json: .object(["name": .string(step), "status": .string("skipped"), "reason": .string(skipped.reason)]), text: "skipped: \(skipped.reason)")
            default:
                continue
            }
            if byName[step] == nil { order.append(step) }
            byName[step] = summary
        }
        return order.compactMap { byName[$0] }
    }

    /// The SSH session of a job, as `ims jobs describe` prints it: its state and the `ssh` command for each network
    /// its connection_info names (customer_access first), with the signal that ends it.
    static func sessionLines(_ job: JobRecord) -> [String] {
        guard let container = job.sshContainers.first, !container.connectionInfo.isEmpty else { return [] }
        let key = job.publicKeyID.map { "<private key of public key \($0.imsString)>" } ?? "<private key>"
        var lines = ["  ssh session \(container.name) (\(container.jail ? "jailed" : "sandbox")) \(container.status):"]
        let networks = container.connectionInfo.keys.sorted { ($0 == "customer_access" ? 0 : 1, $0) < ($1 == "customer_access" ? 0 : 1, $1) }
        for network in networks {
            guard let endpoint = container.connectionInfo[network] else { continue }
            lines.append("    \(network): ssh -i \(key) -p \(endpoint.port) root@\(endpoint.host)")
        }
        let signal = container.jail ? "/tmp/complete (or /tmp/failed)" : "/mnt/image/complete (or /mnt/image/failed)"
        let ending = job.jobType == .create
            ? "touch /mnt/image/complete ends the debug session (the job ends as error)"
            : "touch \(signal) ends it; or ims jobs complete \(job.id.imsString) [--failed]"
        lines.append("    \(ending)")
        return lines
    }

}

extension JobsCommand {
    struct Create: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a job and run it (in the foreground, or in the background with --detach).",
            discussion: """
                Examples:
                    ims jobs create --job-type create --artifact-id <recipe-id> --image-root-archive-name compute
                    ims jobs create --job-type create --artifact-id <recipe-id> --image-root-archive-name compute --detach --json
                    ims jobs create --job-type customize --artifact-id <image-id> --image-root-archive-name compute-v2 --script ./site.sh
                    ims jobs create --job-type customize --artifact-id <image-id> --image-root-archive-name compute-v2 --detach

                A customize job unpacks the image, runs --script inside it (automation), or, without --script, waits \
                for a person: with --public-key-id it serves an SSH session for that key (`ims jobs describe ID` \
                prints the ssh command; with --jail the session sees only the image root and `touch /tmp/complete` \
                or /tmp/failed ends it, without it the root is at /mnt/image/image-root of a sandbox and \
                `touch /mnt/image/complete` or failed ends it; docs/jobs.md). `ims jobs complete ID` packages it, \
                `ims jobs complete ID --failed` aborts.
                """)

        @OptionGroup var engine: EngineOptions
        var json: Bool { engine.json }
        @Option(help: "create or customize.", transform: enumerationOption(JobType.self)) var jobType: JobType
        @Option(help: "The recipe id (create) or image id (customize).") var artifactId: String
        @Option(help: "The name of the new image.") var imageRootArchiveName: String
        @Option(help: "A registered public key id: customize jobs and --enable-debug serve an SSH session for this key.") var publicKeyId: String?
        @Option(help: "The kernel file name under /boot (default: vmlinuz on x86_64, Image on aarch64).") var kernelFileName: String?
        @Option(help: "The initrd file name under /boot.") var initrdFileName: String = "initrd"
        @Option(help: "The kernel parameters file name under /boot.") var kernelParametersFileName: String = "kernel-parameters"
        @Flag(help: "Keep the workspace; when a create job's step fails, hold the failed image root open for debugging in waiting_on_user until 'ims jobs complete' (IMS's debug shell).")
        var enableDebug = false
        @Option(help: "The job timeout in seconds.") var timeout: Double?
        @Flag(help: "Run the job in the background and return at once with its id.") var detach = false
        @Option(help: "Customize jobs: a script to run inside the image root (chroot); without it the job waits for a person.", completion: .file())
        var script: String?
        @Flag(help: "Customize jobs: a jailed session (the SSH session sees only the image root; signal files /tmp/complete and /tmp/failed inside it), as IMS's ssh jail.")
        var jail = false
        @Flag(help: "Run every phase and store nothing in the phase cache (docs/jobs.md#the-phase-cache).") var noCache = false

        func run(_ context: CommandContext) async throws {
            if jobType != .customize, script != nil || jail {
                throw ValidationError("'--script' and '--jail' apply to customize jobs only")
            }
            let scriptPath = try script.map { try JobsCommand.customizeScript($0, context: context) }
            let artifact = try JobsCommand.parseID(artifactId)
            let publicKey = try publicKeyId.map(JobsCommand.parseID)
            let environment = try engine.environment(context)
            // A bad site pipeline is refused before a job is recorded (docs/pipelines.md).
            do {
                _ = try PipelineLoader.effective(name: jobType.rawValue, siteDirectory: environment.siteDirectory)
            } catch {
                throw CLIErrors.report(error, json: engine.json, exit: CLIExitCode.dataError, context: context)
            }
            let job: JobRecord
            do {
                job = try environment.catalog.createJob(JobRequest(
                    jobType: jobType, artifactID: artifact, publicKeyID: publicKey, imageRootArchiveName: imageRootArchiveName,
                    enableDebug: enableDebug, kernelFileName: kernelFileName, initrdFileName: initrdFileName,
                    kernelParametersFileName: kernelParametersFileName,
                    sshContainers: jail ? [SSHContainer(name: "customize", jail: true)] : nil, timeoutSeconds: timeout.map { Int($0) },
                    pid: detach ? nil : getpid()))
            } catch {
                throw CLIErrors.report(error, json: engine.json, context: context)
            }
            if detach {
                do {
                    _ = try engine.detachedRunner(context).start(jobID: job.id, script: scriptPath, useCache: !noCache, jobsDirectory: environment.jobsDirectory)
                } catch {
                    // The job never got a runner: it ends as error at once instead of staying in creating.
                    let message = "cannot start the background runner: \(error.description)"
                    _ = try? environment.catalog.fail(job.id, error: JobError(code: "ims.job.runner_unavailable", category: "environment", message: message))
                    throw CLIError(code: "ims.job.runner_unavailable", message: message, exitCode: CLIExitCode.unavailable)
                }
                if engine.json { try context.json(JobsCommand.jobJSON(job)) } else { context.line("job \(job.id.uuidString.lowercased()) created; follow it with: ims jobs logs \(job.id.uuidString.lowercased()) --follow") }
                return
            }
            let outcome = await JobRunner(environment: environment).run(jobID: job.id, options: JobRunOptions(
                workspacePolicy: enableDebug ? .keep : .keepOnFailure, timeout: timeout.map { .seconds($0) },
                listener: JobConsole(json: engine.json, context: context), customizeScript: scriptPath, useCache: !noCache))
            try JobsCommand.report(outcome, json: engine.json, context: context)
        }
    }

    struct Run: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Run a created job (used by 'create --detach').", shouldDisplay: false)

        @OptionGroup var engine: EngineOptions
        var json: Bool { engine.json }
        @Argument(help: "The job id.") var id: String
        @Option(help: "Customize jobs: the script to run inside the image root.") var script: String?
        @Flag(help: "Run every phase and store nothing in the phase cache.") var noCache = false

        func run(_ context: CommandContext) async throws {
            let jobID = try JobsCommand.parseID(id)
            let environment = try engine.environment(context)
            // Own the job so a crash of this runner is detected later; a job another live runner owns (started twice:
            // by `create --detach` and by `ims serve` picking up jobs without a runner) is left to that runner.
            if case .heldBy(let owner, _) = try environment.catalog.claimRunner(jobID, pid: getpid()) {
                Output.write(Data("job \(jobID.imsString) is already run by process \(owner); this runner leaves it\n".utf8), to: context.stderr)
                return
            }
            // SIGTERM (a job deleted through `ims serve`) cancels the job: its plugins are stopped and reaped, and the
            // job ends as error before the runner exits. (Ignored before the job starts, so it cannot kill the runner
            // without a trace; a SIGKILL follows if the runner does not end.)
            signal(SIGTERM, SIG_IGN)
            let termination = DispatchSource.makeSignalSource(signal: SIGTERM, queue: .global())
            let run = Task { await JobRunner(environment: environment).run(jobID: jobID, options: JobRunOptions(customizeScript: script, useCache: !noCache)) }
            termination.setEventHandler { run.cancel() }
            termination.resume()
            let outcome = await run.value
            termination.cancel()
            if !outcome.succeeded { throw CLIExitCode.failure }
            // Started by 'create --detach': its output log is only needed to explain a failure.
            try? FileManager.default.removeItem(atPath: DetachedJobRunner.logPath(jobID: jobID, jobsDirectory: environment.jobsDirectory))
        }
    }

    struct List: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "List jobs, newest last.",
            discussion: "Filters follow IMS: --status (repeatable), --job-type, --older-than/--newer-than AGE (e.g. 30m, 2h, 1d).")

        @OptionGroup var catalog: CatalogOptions
        var json: Bool { catalog.json }
        @Option(help: "Only jobs with this status (repeatable).", transform: enumerationOption(JobStatus.self)) var status: [JobStatus] = []
        @Option(help: "Only create or customize jobs.", transform: enumerationOption(JobType.self)) var jobType: JobType?
        @Option(help: "Only jobs older than this age.", transform: ageOption) var olderThan: TimeInterval?
        @Option(help: "Only jobs newer than this age.", transform: ageOption) var newerThan: TimeInterval?

        func run(_ context: CommandContext) async throws {
            let store = try catalog.openCatalog(context)
            WorkspaceMounts.markInterrupted(store)
            let jobs: [JobRecord]
            do {
                let filter = JobFilter(statuses: Set(status), jobType: jobType, olderThan: olderThan, newerThan: newerThan)
                jobs = try store.jobs(matching: filter)
            } catch {
                throw CLIErrors.report(error, json: catalog.json, context: context)
            }
            if catalog.json {
                try context.json(JSONValue.array(jobs.map(JobsCommand.jobJSON)))
                return
            }
            if jobs.isEmpty { context.line("no jobs") }
            for job in jobs {
                context.line("\(job.id.uuidString.lowercased())  \(job.jobType.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)) \(job.status.rawValue.padding(toLength: 19, withPad: " ", startingAt: 0)) \(job.imageRootArchiveName)  \(IMSTimestamp.string(job.created))")
            }
        }
    }

    struct Complete: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "End the session of a job that waits for a person (IMS's touch complete / failed).",
            discussion: """
                The job must be in waiting_on_user. For a customize job, without --failed the image root is packaged \
                and registered as a new image; with --failed the job ends as error and no image is made. A failed \
                create job's debug session (--enable-debug) ends as error either way.

                Example:
                    ims jobs complete 5c0a3f0e-6a41-4c59-9a53-1a2b3c4d5e6f
                """)

        @OptionGroup var catalog: CatalogOptions
        var json: Bool { catalog.json }
        @Argument(help: "The job id.") var id: String
        @Flag(help: "Abort: no image is made.") var failed = false

        func run(_ context: CommandContext) async throws {
            let (_, job) = try JobsCommand.openJob(id, catalog: catalog, context: context)
            let jobID = job.id
            guard job.status == .waitingOnUser, job.jobType == .customize || job.enableDebug else {
                throw CLIError.failed("ims.job.not_waiting", "job \(id) is a \(job.jobType.rawValue) job in status \(job.status.rawValue); only a job in waiting_on_user (customize, or a failed create job with --enable-debug) can be completed")
            }
            guard let workspace = job.workspace, FileManager.default.fileExists(atPath: workspace) else {
                throw CLIError.failed("ims.job.no_workspace", "job \(id) has no workspace on this host")
            }
            let signal = failed ? "failed" : "complete"
            let path = workspace + "/" + signal
            guard FileManager.default.createFile(atPath: path, contents: Data()) else {
                throw CLIError.failed("ims.io", "cannot write \(path)")
            }
            if catalog.json {
                try context.json(JSONValue.object(["job_id": .string(jobID.uuidString.lowercased()), "signal": .string(signal), "path": .string(path)]))
            } else {
                context.line("signalled \(signal) to job \(jobID.uuidString.lowercased()); follow it with: ims jobs logs \(jobID.uuidString.lowercased()) --follow")
            }
        }
    }

    struct Describe: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Show one job with its status history and error.")

        @OptionGroup var catalog: CatalogOptions
        var json: Bool { catalog.json }
        @Argument(help: "The job id.") var id: String

        func run(_ context: CommandContext) async throws {
            let (store, job) = try JobsCommand.openJob(id, catalog: catalog, context: context)
            let steps = JobsCommand.stepSummaries((try? store.jobEvents(job.id, after: 0)) ?? [])
            if catalog.json {
                var object = JobsCommand.jobJSON(job)
                // ims's addition to IMS's job record: each step's outcome and what the phase cache did for it.
                if case .object(var fields) = object, !steps.isEmpty {
                    fields["steps"] = .array(steps.map(\.json))
                    object = .object(fields)
                }
                try context.json(object)
                return
            }
            context.line("job \(job.id.uuidString.lowercased()) (\(job.jobType.rawValue)) \(job.status.rawValue)")
            context.line("  artifact \(job.artifactID.uuidString.lowercased()), image name \(job.imageRootArchiveName), arch \(job.arch.rawValue)")
            for change in job.statusHistory {
                context.line("  \(IMSTimestamp.string(change.time))  \(change.status.rawValue)" + (change.reason.map { "  (\($0))" } ?? ""))
            }
            if !steps.isEmpty {
                context.line("  steps:")
                let width = steps.map(\.name.count).max() ?? 0
                for step in steps { context.line("    " + step.name.padding(toLength: width + 2, withPad: " ", startingAt: 0) + step.text) }
            }
            if let image = job.resultantImageID { context.line("  resultant image \(image.uuidString.lowercased())") }
            if let error = job.error { context.line("  error [\(error.code), \(error.category)]\(error.phase.map { " in \($0)" } ?? ""): \(error.message)") }
            if let workspace = job.workspace, FileManager.default.fileExists(atPath: workspace) { context.line("  workspace \(workspace)") }
            for line in JobsCommand.sessionLines(job) { context.line(line) }
        }
    }

    struct Logs: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a job's events and plugin logs; --follow waits for more until the job ends.",
            discussion: "With --json every event is one NDJSON line: {ts, job_id, step, plugin_id, event, data}.")

        @OptionGroup var catalog: CatalogOptions
        var json: Bool { catalog.json }
        @Argument(help: "The job id.") var id: String
        @Flag(help: "Keep printing new events until the job finishes.") var follow = false

        func run(_ context: CommandContext) async throws {
            let (store, job) = try JobsCommand.openJob(id, catalog: catalog, markInterrupted: false, context: context)
            let jobID = job.id
            var after: Int64 = 0
            while true {
                let events: [JobEvent]
                do { events = try store.jobEvents(jobID, after: after) } catch { throw CLIErrors.report(error, json: catalog.json, context: context) }
                for event in events {
                    after = max(after, event.sequence)
                    print(event, context)
                }
                guard follow else { return }
                WorkspaceMounts.markInterrupted(store)
                if let job = try? store.job(jobID), job.status == .success || job.status == .error {
                    let rest = (try? store.jobEvents(jobID, after: after)) ?? []
                    for event in rest { print(event, context) }
                    return
                }
                try await Task.sleep(for: .milliseconds(250))
            }
        }

        func print(_ event: JobEvent, _ context: CommandContext) {
            if catalog.json {
                let data = (try? JSONDecoder().decode(JSONValue.self, from: Data(event.data.utf8))) ?? .string(event.data)
                var object: [String: JSONValue] = [
                    "ts": .string(WireFormat.timestamp(event.time)), "job_id": .string(id.lowercased()), "event": .string(event.kind),
                    "data": data, "sequence": .number(Double(event.sequence)),
                ]
                if let phase = event.phase { object["step"] = .string(phase) }
                if let plugin = event.pluginID { object["plugin_id"] = .string(plugin) }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                if var line = try? encoder.encode(JSONValue.object(object)) {
                    line.append(0x0A)
                    context.write(line)
                }
                return
            }
            let text: String
            if let engineEvent = event.engineEvent {
                switch engineEvent {
                case .jobLog(let log): text = "\(log.level): \(log.msg)"
                case .jobStatus(let change): text = "status \(change.status)" + (change.resultantImageID.map { " (image \($0))" } ?? "")
                case .stepStarted(let started): text = "step started" + (started.attempt > 1 ? " (attempt \(started.attempt))" : "")
                case .stepFinished(let finished):
                    text = "step \(finished.status.rawValue) in \(finished.seconds) s" + (finished.error.map { ": \($0)" } ?? "")
                case .stepSkipped(let skipped): text = "step skipped: \(skipped.reason)"
                case .diagnostic(let diagnostic): text = "\(diagnostic.severity): \(diagnostic.message)"
                case .jobStarted(let started): text = "\(started.jobType) job started: \(started.steps.joined(separator: ", "))"
                case .jobFinished(let finished):
                    text = "job finished: \(finished.status)" + (finished.error.map { ": \($0)" } ?? "")
                        + (finished.resultantImageID.map { " (image \($0))" } ?? "")
                }
            } else {
                let data = (try? JSONDecoder().decode(JSONValue.self, from: Data(event.data.utf8))) ?? .null
                switch event.kind {
                case "log": text = "\(data["level"]?.stringValue ?? "info"): \(data["msg"]?.stringValue ?? "")"
                case "stderr": text = "| \(data["line"]?.stringValue ?? "")"
                case "progress":
                    guard data["state"]?.stringValue != "report" else { return }
                    text = "progress \(data["task"]?.stringValue ?? "") \(data["state"]?.stringValue ?? "")"
                default: text = event.kind + (data.objectValue?.isEmpty == false ? " " + event.data : "")
                }
            }
            let prefix = "\(IMSTimestamp.string(event.time)) [\(event.phase ?? "job")\(event.pluginID.map { " \($0)" } ?? "")]"
            context.line(prefix + " " + text)
        }
    }

    struct Delete: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a job, or every job matching IMS's filters.",
            discussion: "Examples:\n    ims jobs delete <id>\n    ims jobs delete --status success --older-than 7d")

        @OptionGroup var catalog: CatalogOptions
        var json: Bool { catalog.json }
        @Argument(help: "The job id (or use the filters).") var id: String?
        @Option(help: "Only jobs with this status (repeatable).", transform: enumerationOption(JobStatus.self)) var status: [JobStatus] = []
        @Option(help: "Only create or customize jobs.", transform: enumerationOption(JobType.self)) var jobType: JobType?
        @Option(help: "Only jobs older than this age.", transform: ageOption) var olderThan: TimeInterval?

        func validate() throws {
            if id == nil && status.isEmpty && jobType == nil && olderThan == nil {
                throw ValidationError("give a job id, or filters (--status, --job-type, --older-than)")
            }
        }

        func run(_ context: CommandContext) async throws {
            let store = try catalog.openCatalog(context)
            let removed: [JobRecord]
            do {
                if let id {
                    removed = [try store.deleteJob(try JobsCommand.parseID(id))]
                } else {
                    removed = try store.deleteJobs(matching: JobFilter(statuses: Set(status), jobType: jobType, olderThan: olderThan))
                }
            } catch {
                throw CLIErrors.report(error, json: catalog.json, context: context)
            }
            for job in removed {
                if let workspace = job.workspace { try? WorkspaceMounts.remove(workspace) }
            }
            if catalog.json {
                try context.json(JSONValue.object(["deleted": .array(removed.map { .string($0.id.uuidString.lowercased()) })]))
            } else {
                context.line("deleted \(removed.count) job(s)")
            }
        }
    }
}
