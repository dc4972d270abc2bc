import Foundation
import IMSCatalog
import IMSPluginHost
import IMSProtocol
import IMSRecipes
import IMSStore

/// One running job: the pipeline's steps, one after another, and what they produced so far.
///
/// An actor: the steps run on one task, while the job's timeout reads the current step from another.
actor JobExecution {
    let environment: EngineEnvironment
    private(set) var job: JobRecord
    let workspace: String
    let pipeline: Pipeline
    let options: JobRunOptions
    let sink: JobEventSink
    /// The step now running, for a timeout's error.
    private(set) var currentStep: String?

    /// Named artifacts produced so far (recipe, description, rootfs, ca_cert, …).
    var artifacts: [String: ArtifactRef] = [:]
    /// The package phase's outputs (rootfs squashfs, kernel, initrd, boot_parameters).
    var packaged: [String: ArtifactRef] = [:]
    var packagedMD5: [String: String] = [:]
    var criteria = SelectionCriteria()
    /// The job's recipe record, read once by fetch-recipe.
    var recipe: RecipeRecord?
    var resolvedDescription: ResolvedDescription?
    var imageID: UUID?
    var upload: ImageArtifacts.Upload?
    private(set) var registeredImage: ImageRecord?
    private(set) var manifestText: String?

    // The phase cache's state (see JobExecution+Cache.swift).
    /// Digests of artifacts already known (by name: the path they were computed for, and the digest).
    var artifactDigests: [String: (path: String, digest: String)] = [:]
    /// Artifacts (by name) that are hard links into the cache, to be copied before a plugin may change them.
    var cacheBacked: Set<String> = []
    /// Repository source → digest of its metadata index, from wait-for-repos.
    var repositoryDigests: [String: String] = [:]
    /// What the cache did for the step now running (reported with its step_finished event).
    var cacheOutcome: EngineEvent.CacheOutcome?
    /// The interpreter a job for another architecture holds (taken in preflight, released when the job ends).
    private var emulation: EmulationLease?

    init(environment: EngineEnvironment, job: JobRecord, workspace: String, pipeline: Pipeline, options: JobRunOptions, sink: JobEventSink) {
        self.environment = environment
        self.job = job
        self.workspace = workspace
        self.pipeline = pipeline
        self.options = options
        self.sink = sink
        criteria = SelectionCriteria(arch: job.arch.rawValue)
    }

    private func setStep(_ name: String?) {
        currentStep = name
        sink.setStep(name)
    }

    /// Moves the job to `status` and reports it.
    func transition(to status: JobStatus, reason: String, step: String) throws {
        job = try environment.catalog.transition(job.id, to: status, reason: reason)
        sink.record(.jobStatus(.init(status: status.rawValue)), step: step)
    }

    /// Registers the job's image and ends the job as `success`.
    func finish(with image: ImageRecord, step: String) throws {
        registeredImage = image
        job = try environment.catalog.finish(job.id, resultantImageID: image.id)
        sink.record(.jobStatus(.init(status: JobStatus.success.rawValue, resultantImageID: image.id.uuidString.lowercased())), step: step)
    }

    func setManifestText(_ text: String) { manifestText = text }

    // MARK: Steps

    func runSteps(deadline: ContinuousClock.Instant) async throws {
        sink.record(.jobStarted(.init(
            jobType: job.jobType.rawValue, artifactID: job.artifactID.uuidString.lowercased(), pipeline: pipeline.source,
            steps: pipeline.steps.map(\.name), workspace: workspace)))
        if let first = pipeline.steps.first { try acquireEmulation(step: first.name) }
        for step in pipeline.steps {
            try Task.checkCancellation()
            if let reason = PhaseConfiguration.skipReason(step, settings: environment.settings) {
                sink.record(.stepSkipped(.init(reason: reason)), step: step.name)
                continue
            }
            setStep(step.name)
            if let status = step.status.flatMap(JobStatus.init(rawValue:)), status != job.status {
                try transition(to: status, reason: "step \(step.name)", step: step.name)
            }
            try await runWithRetries(step, deadline: deadline)
        }
        setStep(nil)
    }

    /// Runs one step, again after a transient failure while its retry policy allows.
    private func runWithRetries(_ step: PipelineStep, deadline: ContinuousClock.Instant) async throws {
        let attempts = max(1, step.retry?.attempts ?? 1)
        var attempt = 1
        while true {
            let stepStarted = ContinuousClock.now
            let cpuStarted = Self.childrenCPUSeconds()
            cacheOutcome = nil
            sink.record(.stepStarted(.init(attempt: attempt, kind: step.builtin?.rawValue ?? step.phase ?? "")), step: step.name)
            do {
                let facts = try await execute(step, deadline: deadline)
                sink.record(.stepFinished(.init(
                    status: .succeeded, seconds: Self.seconds(stepStarted.duration(to: .now)), facts: facts, cache: cacheOutcome,
                    cpuSeconds: Self.cpuSince(cpuStarted))), step: step.name)
                sink.flush()
                return
            } catch {
                var failure = JobRunner.engineError(error)
                if failure.step == nil { failure.step = step.name }
                sink.record(.stepFinished(.init(
                    status: .failed, seconds: Self.seconds(stepStarted.duration(to: .now)), error: failure.description,
                    category: failure.category.rawValue, cpuSeconds: Self.cpuSince(cpuStarted))), step: step.name)
                sink.flush()
                if failure.category == .transient, attempt < attempts, !Task.isCancelled {
                    let backoff = (step.retry?.backoffSeconds ?? 5) * pow(2, Double(attempt - 1))
                    sink.record(.log("warn", "transient failure, retrying in \(backoff) s (attempt \(attempt + 1) of \(attempts))"), step: step.name)
                    try await Task.sleep(for: .seconds(backoff))
                    attempt += 1
                    continue
                }
                if job.enableDebug, job.jobType == .create, ![.cancelled, .timeout].contains(failure.category), !Task.isCancelled {
                    await debugSession(after: step, deadline: deadline)
                }
                throw failure
            }
        }
    }

    /// IMS's debug shell: a create job with `enable_debug` whose step failed holds the failed image root open for a
    /// person (the customize plugin, mode chroot) in `waiting_on_user`, then ends as error whatever the person
    /// signals. Problems of the session itself are logged; the job's error stays the step's.
    private func debugSession(after step: PipelineStep, deadline: ContinuousClock.Instant) async {
        let rootfs = artifacts["rootfs"]?.path ?? workspace + "/phases/build-root/out/rootfs"
        guard FileManager.default.fileExists(atPath: rootfs) else {
            sink.record(.log("warn", "enable_debug: no image root to open a debug session in"), step: step.name)
            return
        }
        let session = PipelineStep(name: "debug-session", phase: "customize", config: ["mode": "chroot", "purpose": "debug"], inputs: ["rootfs"])
        artifacts["rootfs"] = ArtifactRef(path: rootfs, kind: .dir)
        // A person may change anything: a root restored from the phase cache becomes a private copy first.
        if cacheBacked.contains("rootfs") {
            do {
                try await PhaseCache.materialize(ArtifactRef(path: rootfs, kind: .dir))
                cacheBacked.remove("rootfs")
            } catch {
                sink.record(.log("warn", "enable_debug: the image root could not be copied out of the phase cache: \(error.message)"), step: step.name)
                return
            }
        }
        setStep(session.name)
        do {
            try transition(
                to: .waitingOnUser, reason: "enable_debug: the failed root of step \(step.name) is open for debugging", step: session.name)
            _ = try await runPhase(session, deadline: deadline)
            sink.record(.log("info", "debug session ended"), step: session.name)
        } catch {
            sink.record(.log("info", "debug session ended: \(JobRunner.engineError(error).description)"), step: session.name)
        }
        sink.flush()
    }

    private func execute(_ step: PipelineStep, deadline: ContinuousClock.Instant) async throws -> [String: JSONValue] {
        guard let builtin = step.builtin else { return try await runPhase(step, deadline: deadline) }
        // A builtin may change artifacts in place (prepare-recipe renders templates into the recipe).
        forgetAllDigests()
        switch builtin {
        case .fetchRecipe: return try await fetchRecipe(step)
        case .fetchImage: return try await fetchImage(step)
        case .prepareRecipe: return try prepareRecipe(step)
        case .waitForRepos: return try await waitForRepos(step)
        case .uploadArtifacts: return try await uploadArtifacts(step)
        case .registerImage: return try await registerImage(step)
        }
    }

    /// The step's output directory in the workspace, created on first use.
    func stepDirectory(_ step: PipelineStep) throws -> String {
        let path = workspace + "/phases/" + step.name + "/out"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Stops the job before any long work when a later step cannot run here (see ``Preflight``).
    func preflight(after step: PipelineStep) throws {
        guard let index = pipeline.steps.firstIndex(where: { $0.name == step.name }) else { return }
        let problems = Preflight.problems(
            after: index, of: pipeline.steps, criteria: criteria, settings: environment.settings, runner: environment.pluginRunner)
        if !problems.isEmpty {
            throw EngineError(.plugin, "the job cannot run here: " + problems.joined(separator: "; "), step: step.name)
        }
    }

    /// A job for another architecture runs its programs (scriptlets, config.sh, customize scripts) under qemu-user:
    /// before its first step, an interpreter must be registered, or the job is refused with what to install or allow.
    func acquireEmulation(step: String) throws {
        do {
            emulation = try EmulationLease.acquire(
                jobArch: job.arch.rawValue, jobID: job.id.imsString, settings: environment.settings.emulation ?? EmulationSettings())
        } catch {
            throw EngineError(error.code, error.message, step: step)
        }
        if let emulation { sink.record(.log("info", emulation.summary), step: step) }
    }

    /// Gives back the job's interpreter (see ``EmulationLease``); ims's own binfmt_misc entry goes with the last job.
    func releaseEmulation() {
        guard let lease = emulation else { return }
        emulation = nil
        if let message = lease.release() { sink.record(.log("info", message)) }
    }

    /// User + system CPU seconds of this process's waited-for children (and theirs): plugins and host tools.
    static func childrenCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_CHILDREN.rawValue, &usage) == 0 else { return 0 }
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// The children's CPU seconds since `start`, to the millisecond.
    static func cpuSince(_ start: Double) -> Double {
        (max(0, childrenCPUSeconds() - start) * 1000).rounded() / 1000
    }

    static func seconds(_ duration: Duration) -> Double {
        ((Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18) * 1000).rounded() / 1000
    }
}
