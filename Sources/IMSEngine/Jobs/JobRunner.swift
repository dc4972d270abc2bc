import Foundation
import IMSArchive
import IMSCatalog
import IMSKiwi
import IMSPluginHost
import IMSProtocol
import IMSRecipes
import IMSStore
import Logging

/// Runs jobs: walks the pipeline, hands phases to plugins, and keeps the catalog up to date.
public struct JobRunner: Sendable {
    public var environment: EngineEnvironment

    public init(environment: EngineEnvironment) {
        self.environment = environment
    }

    /// Runs the job `jobID` (already created, status `creating`) in the foreground.
    ///
    /// Never throws: every failure ends the job as `error` with a structured reason, and the outcome says why.
    public func run(jobID: UUID, options: JobRunOptions = JobRunOptions()) async -> JobOutcome {
        let started = ContinuousClock.now
        let catalog = environment.catalog
        let sink = JobEventSink(catalog: catalog, jobID: jobID, listener: options.listener)
        let execution: JobExecution
        do {
            let job = try catalog.job(jobID)
            let workspace = environment.jobsDirectory + "/" + jobID.uuidString.lowercased()
            try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
            _ = try catalog.setRunner(jobID, pid: getpid(), workspace: workspace)
            let pipeline = try options.pipeline ?? PipelineLoader.effective(name: job.jobType.rawValue, siteDirectory: environment.siteDirectory)
            execution = JobExecution(environment: environment, job: job, workspace: workspace, pipeline: pipeline, options: options, sink: sink)
        } catch {
            let engineError = Self.engineError(error)
            _ = try? catalog.fail(jobID, error: JobError(code: engineError.code.rawValue, category: engineError.category.rawValue, message: engineError.message))
            let job = (try? catalog.job(jobID))
            sink.record("job_finished", data: ["status": "error", "error": .string(engineError.description)])
            sink.flush()
            return JobOutcome(
                job: job ?? Self.placeholder(jobID), image: nil, manifest: nil, error: engineError, workspace: nil,
                workspaceKept: false, duration: started.duration(to: .now))
        }

        let timeout = options.timeout ?? .seconds(environment.settings.jobTimeoutSeconds ?? SiteSettings.defaultJobTimeoutSeconds)
        /// Which child of the job's task group finished, and how.
        enum Finished: Sendable {
            case steps(EngineError?)
            case timedOut(EngineError)
            case helper
        }
        let failure: EngineError? = await withTaskGroup(of: Finished.self) { group in
            group.addTask {
                do {
                    try await execution.runSteps(deadline: ContinuousClock.now.advanced(by: timeout))
                    return .steps(nil)
                } catch {
                    return .steps(Self.engineError(error))
                }
            }
            group.addTask {
                // Persists events that nothing else flushes (a long quiet step); ends with the job.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(500))
                    sink.flushIfStale()
                }
                return .helper
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                if Task.isCancelled { return .helper }
                return .timedOut(EngineError(.timeout, "the job did not finish within its timeout of \(Int(timeout.components.seconds)) s", step: execution.currentStep))
            }
            // The job's result is the steps' own, unless the timeout fires first.
            var result: EngineError?
            while let finished = await group.next() {
                if case .steps(let error) = finished { result = error; break }
                if case .timedOut(let error) = finished { result = error; break }
            }
            group.cancelAll()
            // Wait for the steps to wind down (plugins are cancelled and reaped) before reporting.
            while let _ = await group.next() {}
            return result
        }

        var outcome = JobOutcome(
            job: (try? catalog.job(jobID)) ?? execution.job, image: execution.registeredImage, manifest: execution.manifestText,
            error: failure, workspace: execution.workspace, workspaceKept: false, duration: started.duration(to: .now))
        if let failure {
            await execution.rollBackUpload()
            let code = failure.code == .timeout ? failure.code.rawValue : (failure.cause?.code ?? failure.code.rawValue)
            let jobError = JobError(
                code: code, category: failure.category.rawValue,
                message: failure.description, phase: failure.step)
            if let job = try? catalog.fail(jobID, error: jobError) { outcome.job = job }
            sink.record("job_finished", data: [
                "status": "error", "error": .string(failure.description), "code": .string(jobError.code),
                "category": .string(jobError.category), "step": failure.step.map(JSONValue.string) ?? .null,
            ])
        } else {
            sink.record("job_finished", data: [
                "status": "success",
                "resultant_image_id": execution.registeredImage.map { .string($0.id.uuidString.lowercased()) } ?? .null,
            ])
        }
        sink.flush()
        let keep: Bool
        switch options.workspacePolicy {
        case .keep: keep = true
        case .remove: keep = false
        case .keepOnFailure: keep = failure != nil && (environment.settings.keepFailedWorkspaces ?? true)
        }
        if !keep { try? FileManager.default.removeItem(atPath: execution.workspace) }
        outcome.workspaceKept = keep
        if !keep { outcome.workspace = nil }
        outcome.duration = started.duration(to: .now)
        return outcome
    }

    static func engineError(_ error: any Error) -> EngineError {
        switch error {
        case let engine as EngineError: return engine
        case let catalog as CatalogError: return EngineError(.catalog, catalog.description)
        case let store as StoreError: return EngineError(.store, store.description)
        case let recipe as RecipeError: return EngineError(.recipe, recipe.description)
        case let host as PluginHostError: return EngineError(.plugin, host.description)
        case is CancellationError: return EngineError(.cancelled, "the job was cancelled")
        default: return EngineError(.step, "\(error)")
        }
    }

    static func placeholder(_ id: UUID) -> JobRecord {
        JobRecord(id: id, jobType: .create, artifactID: id, imageRootArchiveName: "", kernelFileName: "vmlinuz")
    }
}

/// One running job. Steps run one after another, so its state is only touched by one task at a time.
final class JobExecution: @unchecked Sendable {
    let environment: EngineEnvironment
    private(set) var job: JobRecord
    let workspace: String
    let pipeline: Pipeline
    let options: JobRunOptions
    let sink: JobEventSink
    private let lock = NSLock()
    private var stepName: String?

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
    var registeredImage: ImageRecord?
    var manifestText: String?

    init(environment: EngineEnvironment, job: JobRecord, workspace: String, pipeline: Pipeline, options: JobRunOptions, sink: JobEventSink) {
        self.environment = environment
        self.job = job
        self.workspace = workspace
        self.pipeline = pipeline
        self.options = options
        self.sink = sink
        criteria = SelectionCriteria(arch: job.arch.rawValue)
    }

    var currentStep: String? {
        lock.lock()
        defer { lock.unlock() }
        return stepName
    }

    private func setStep(_ name: String?) {
        lock.lock()
        stepName = name
        lock.unlock()
        sink.setStep(name)
    }

    // MARK: Steps

    func runSteps(deadline: ContinuousClock.Instant) async throws {
        sink.record("job_started", data: [
            "job_type": .string(job.jobType.rawValue), "artifact_id": .string(job.artifactID.uuidString.lowercased()),
            "pipeline": .string(pipeline.source), "steps": .array(pipeline.steps.map { .string($0.name) }),
            "workspace": .string(workspace),
        ])
        for step in pipeline.steps {
            try Task.checkCancellation()
            if let reason = skipReason(step) {
                sink.record("step_skipped", step: step.name, data: ["reason": .string(reason)])
                continue
            }
            setStep(step.name)
            if let status = step.status.flatMap(JobStatus.init(rawValue:)), status != job.status {
                job = try environment.catalog.transition(job.id, to: status, reason: "step \(step.name)")
                sink.record("job_status", step: step.name, data: ["status": .string(status.rawValue)])
            }
            let attempts = max(1, step.retry?.attempts ?? 1)
            var attempt = 1
            while true {
                let stepStarted = ContinuousClock.now
                sink.record("step_started", step: step.name, data: [
                    "attempt": .number(Double(attempt)), "kind": .string(step.builtin?.rawValue ?? step.phase ?? ""),
                ])
                do {
                    let facts = try await execute(step, deadline: deadline)
                    sink.record("step_finished", step: step.name, data: [
                        "status": "succeeded", "seconds": .number(Self.seconds(stepStarted.duration(to: .now))), "facts": .object(facts),
                    ])
                    sink.flush()
                    break
                } catch {
                    var failure = JobRunner.engineError(error)
                    if failure.step == nil { failure.step = step.name }
                    sink.record("step_finished", step: step.name, data: [
                        "status": "failed", "seconds": .number(Self.seconds(stepStarted.duration(to: .now))),
                        "error": .string(failure.description), "category": .string(failure.category.rawValue),
                    ])
                    sink.flush()
                    if failure.category == .transient, attempt < attempts, !Task.isCancelled {
                        let backoff = (step.retry?.backoffSeconds ?? 5) * pow(2, Double(attempt - 1))
                        sink.record("job_log", step: step.name, data: [
                            "level": "warn", "msg": .string("transient failure, retrying in \(backoff) s (attempt \(attempt + 1) of \(attempts))"),
                        ])
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
        setStep(nil)
    }

    /// IMS's debug shell: a create job with `enable_debug` whose step failed holds the failed image root open for a
    /// person (the customize plugin, mode chroot) in `waiting_on_user`, then ends as error whatever the person
    /// signals. Problems of the session itself are logged; the job's error stays the step's.
    private func debugSession(after step: PipelineStep, deadline: ContinuousClock.Instant) async {
        let rootfs = artifacts["rootfs"]?.path ?? workspace + "/phases/build-root/out/rootfs"
        guard FileManager.default.fileExists(atPath: rootfs) else {
            sink.record("job_log", step: step.name, data: ["level": "warn", "msg": "enable_debug: no image root to open a debug session in"])
            return
        }
        let session = PipelineStep(name: "debug-session", phase: "customize", config: ["mode": "chroot", "purpose": "debug"], inputs: ["rootfs"])
        artifacts["rootfs"] = ArtifactRef(path: rootfs, kind: .dir)
        setStep(session.name)
        do {
            job = try environment.catalog.transition(job.id, to: .waitingOnUser, reason: "enable_debug: the failed root of step \(step.name) is open for debugging")
            sink.record("job_status", step: session.name, data: ["status": .string(JobStatus.waitingOnUser.rawValue)])
            _ = try await runPhase(session, deadline: deadline)
            sink.record("job_log", step: session.name, data: ["level": "info", "msg": "debug session ended"])
        } catch {
            sink.record("job_log", step: session.name, data: ["level": "info", "msg": .string("debug session ended: \(JobRunner.engineError(error).description)")])
        }
        sink.flush()
    }

    private func skipReason(_ step: PipelineStep) -> String? {
        switch step.when ?? .always {
        case .always: return nil
        case .caCert: return environment.settings.caCert == nil ? "no site CA certificate is configured (ca_cert)" : nil
        case .dns: return environment.settings.dns == nil ? "no DNS settings are configured (dns)" : nil
        }
    }

    private func execute(_ step: PipelineStep, deadline: ContinuousClock.Instant) async throws -> [String: JSONValue] {
        if let builtin = step.builtin {
            switch builtin {
            case .fetchRecipe: return try await fetchRecipe(step)
            case .fetchImage: return try await fetchImage(step)
            case .prepareRecipe: return try prepareRecipe(step)
            case .waitForRepos: return try await waitForRepos(step)
            case .uploadArtifacts: return try await uploadArtifacts(step)
            case .registerImage: return try await registerImage(step)
            }
        }
        return try await runPhase(step, deadline: deadline)
    }

    // MARK: Builtins

    private func stepDirectory(_ step: PipelineStep) throws -> String {
        let path = workspace + "/phases/" + step.name + "/out"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func fetchRecipe(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard job.jobType == .create else {
            throw EngineError(.pipeline, "fetch-recipe only applies to create jobs", step: step.name)
        }
        let recipe = try environment.catalog.recipe(job.artifactID)
        self.recipe = recipe
        guard let link = recipe.link else {
            throw EngineError(.recipe, "recipe \(recipe.id.uuidString.lowercased()) ('\(recipe.name)') has no link to a stored archive", step: step.name)
        }
        let store = environment.store
        let key = try store.requireKey(for: link.path)
        let directory = try stepDirectory(step)
        let archive = directory + "/" + ((link.path as NSString).lastPathComponent.isEmpty ? "recipe.tar.gz" : (link.path as NSString).lastPathComponent)
        let object = try await store.get(key, to: archive)
        let (recipeDirectory, report) = try RecipeSource.workingCopy(of: archive, in: workspace + "/recipe")
        try? FileManager.default.removeItem(atPath: archive)
        artifacts["recipe"] = ArtifactRef(path: recipeDirectory, kind: .dir)
        sink.record("job_log", step: step.name, data: [
            "level": "info", "msg": .string("fetched \(link.path) (\(object.size) bytes, md5 \(object.md5)) and unpacked \(report?.entries ?? 0) entries"),
        ])
        return ["recipe_id": .string(recipe.id.uuidString.lowercased()), "md5": .string(object.md5), "entries": .number(Double(report?.entries ?? 0))]
    }

    /// Customize jobs: the source image's manifest is validated, its rootfs copied from the store (md5 checked
    /// against the manifest) and unpacked with unsquashfs, as IMS's prepare container does.
    private func fetchImage(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard job.jobType == .customize else {
            throw EngineError(.pipeline, "fetch-image only applies to customize jobs", step: step.name)
        }
        let image = try environment.catalog.image(job.artifactID)
        let imageID = image.id.uuidString.lowercased()
        guard let link = image.link else {
            throw EngineError(.artifact, "image \(imageID) ('\(image.name)') has no manifest link", step: step.name)
        }
        let validation = try await ImageArtifacts(store: environment.store).validate(manifestURL: link.path, etag: link.etag)
        for warning in validation.warnings {
            sink.record("job_log", step: step.name, data: ["level": "warn", "msg": .string(warning)])
        }
        guard let unsquashfs = ExternalCommand.locate("unsquashfs", path: PluginInvoker.systemPath) else {
            throw EngineError(.plugin, "unsquashfs is not installed on this host (PATH \(PluginInvoker.systemPath)); install squashfs-tools", step: step.name)
        }
        let directory = try stepDirectory(step)
        let squashfs = directory + "/rootfs.sqsh"
        let object = try await environment.store.get(validation.rootfsObject.key, to: squashfs)
        if let expected = validation.rootfs.md5, !expected.isEmpty, expected != object.md5 {
            try? FileManager.default.removeItem(atPath: squashfs)
            throw EngineError(.artifact, "the rootfs \(validation.rootfs.link.path) has md5 \(object.md5), but the manifest says \(expected)", step: step.name)
        }
        let rootfs = directory + "/rootfs"
        try? FileManager.default.removeItem(atPath: rootfs)  // a retried step starts clean
        let unpacked = try await ExternalCommand.run(unsquashfs, ["-no-progress", "-f", "-d", rootfs, squashfs])
        try? FileManager.default.removeItem(atPath: squashfs)
        guard unpacked.status == 0 else {
            throw EngineError(.artifact, "unsquashfs of \(validation.rootfs.link.path) failed (exit status \(unpacked.status)): \(unpacked.outputTail.suffix(3).joined(separator: "; "))", step: step.name)
        }
        artifacts["rootfs"] = ArtifactRef(path: rootfs, kind: .dir)
        try stageSiteCA(step)
        sink.record("job_log", step: step.name, data: [
            "level": "info", "msg": .string("fetched \(validation.rootfs.link.path) (\(object.size) bytes, md5 \(object.md5)) of image \(imageID) and unpacked it"),
        ])
        try preflight(after: step)
        return [
            "image_id": .string(imageID), "manifest": .string(link.path), "rootfs": .string(validation.rootfs.link.path),
            "md5": .string(object.md5), "size": .number(Double(object.size)),
        ]
    }

    /// Copies the site CA certificate (when configured) into the job as the `ca_cert` artifact.
    private func stageSiteCA(_ step: PipelineStep) throws {
        guard let caCert = environment.settings.caCert else { return }
        let copy = try stepDirectory(step) + "/site-ca.pem"
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: caCert, toPath: copy)
        artifacts["ca_cert"] = ArtifactRef(path: copy, kind: .file, mediaType: "application/x-pem-file")
    }

    private func prepareRecipe(_ step: PipelineStep) throws -> [String: JSONValue] {
        guard let recipeDirectory = artifacts["recipe"]?.path, let recipe else {
            throw EngineError(.pipeline, "prepare-recipe needs the recipe: put fetch-recipe before it", step: step.name)
        }
        let values = recipe.templateDictionary.isEmpty ? nil : TemplateValues(Dictionary(recipe.templateDictionary.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last }))
        let family = options.distroFamily ?? recipe.linuxDistribution.family.rawValue
        let prepared = try RecipePreparer.prepare(
            directory: recipeDirectory, values: values,
            undefined: options.undefinedVariables == .renderEmpty ? .renderEmpty : .error,
            rules: environment.settings.rewriteRules, distroFamilyOverride: family)
        for diagnostic in prepared.diagnostics {
            sink.record("diagnostic", step: step.name, data: [
                "severity": .string(diagnostic.severity.rawValue), "message": .string(diagnostic.description),
            ])
        }
        for rewrite in prepared.rewrites {
            sink.record("job_log", step: step.name, data: [
                "level": "info", "msg": .string("repository \(rewrite.alias ?? "?"): \(rewrite.old ?? "(none)") -> \(rewrite.new)"),
            ])
        }
        let resolved = ResolvedDescription.resolve(
            prepared.description, profiles: options.profiles ?? [], arch: job.arch.rawValue, distroFamily: prepared.distroFamily,
            recipeDirectory: recipeDirectory)
        let descriptionPath = try stepDirectory(step) + "/description.json"
        try resolved.write(to: descriptionPath)
        resolvedDescription = resolved
        artifacts["description"] = ArtifactRef(path: descriptionPath, kind: .file, mediaType: "application/json")
        try stageSiteCA(step)
        criteria = SelectionCriteria(distroFamily: prepared.distroFamily, packageManager: prepared.packageManager, arch: job.arch.rawValue)
        try preflight(after: step)
        return [
            "distro_family": .string(prepared.distroFamily),
            "package_manager": prepared.packageManager.map(JSONValue.string) ?? .null,
            "rendered_files": .array(prepared.rendered.map { .string($0.path) }),
            "rewrites": .number(Double(prepared.rewrites.count)),
            "repositories": .number(Double(resolved.repositories.count)),
            "warnings": .number(Double(prepared.diagnostics.filter { $0.severity == .warning }.count)),
        ]
    }

    private func waitForRepos(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard let resolved = resolvedDescription else {
            throw EngineError(.pipeline, "wait-for-repos needs a prepared recipe: put prepare-recipe before it", step: step.name)
        }
        let probes = resolved.repositories.map { repository in
            RepositoryProbe(
                alias: repository.alias, source: repository.source,
                kind: repository.type.hasPrefix("apt") ? .apt : .rpmMD, distribution: repository.distribution)
        }
        let settings = environment.settings
        let readiness = RepositoryReadiness(
            caBundlePath: settings.caCert, timeout: .seconds(settings.repositoryTimeoutSeconds ?? 500),
            pollInterval: .seconds(settings.repositoryPollSeconds ?? 10))
        let sink = self.sink
        let stepName = step.name
        let report = try await readiness.wait(for: probes) { statuses in
            let waiting = statuses.filter { !$0.ready }.map { $0.alias ?? $0.source }
            sink.record("job_log", step: stepName, data: [
                "level": "info", "msg": .string(waiting.isEmpty ? "all repositories answer" : "waiting for \(waiting.joined(separator: ", "))"),
            ])
        }
        guard report.ready else {
            let missing = report.repositories.filter { !$0.ready }.map { "\($0.alias ?? $0.source) (\($0.source)): \($0.reason ?? "not ready")" }
            throw EngineError(.repositories, "repositories not ready: " + missing.joined(separator: "; "), step: step.name)
        }
        return ["ready": .number(Double(report.repositories.count)), "skipped": .array(report.skipped.map(JSONValue.string)), "seconds": .number(report.seconds)]
    }

    private func uploadArtifacts(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard let rootfs = packaged["rootfs"], let kernel = packaged["kernel"], let initrd = packaged["initrd"] else {
            let have = packaged.keys.sorted().joined(separator: ", ")
            throw EngineError(.artifact, "the package step must produce rootfs, kernel and initrd (it produced: \(have.isEmpty ? "nothing" : have))", step: step.name)
        }
        // The packager's digests go along: the store verifies the bytes against them instead of hashing twice.
        func file(_ type: ImageArtifactType, _ ref: ArtifactRef) -> ImageArtifacts.ArtifactFile {
            let sha256 = ref.digest.flatMap { $0.hasPrefix("sha256:") ? String($0.dropFirst(7)) : nil }
            return ImageArtifacts.ArtifactFile(type: type, path: ref.path, md5: packagedMD5[type.rawValue], sha256: sha256)
        }
        var files = [file(.rootfs, rootfs), file(.kernel, kernel), file(.initrd, initrd)]
        if let parameters = packaged["boot_parameters"] { files.append(file(.bootParameters, parameters)) }
        let imageID = self.imageID ?? UUID()
        self.imageID = imageID
        let artifactsHelper = ImageArtifacts(store: environment.store)
        let upload = try await artifactsHelper.upload(imageID: imageID, artifacts: files, imageName: job.imageRootArchiveName, jobID: job.id)
        self.upload = upload
        // Verify: what the store holds is what the packager produced.
        for (file, object) in zip(files, upload.artifacts) {
            let name = file.type.rawValue
            if let digest = packaged[name]?.digest, digest.hasPrefix("sha256:"), !object.sha256.isEmpty, String(digest.dropFirst(7)) != object.sha256 {
                throw EngineError(.artifact, "stored \(name) has sha256 \(object.sha256) but the packager reported \(digest.dropFirst(7))", step: step.name)
            }
            if let md5 = packagedMD5[name], md5 != object.md5 {
                throw EngineError(.artifact, "stored \(name) has md5 \(object.md5) but the packager reported \(md5)", step: step.name)
            }
        }
        manifestText = upload.manifest.encodedString()
        sink.record("job_log", step: step.name, data: [
            "level": "info", "msg": .string("stored \(files.count) artifacts and \(upload.link.path)"),
        ])
        return [
            "image_id": .string(imageID.uuidString.lowercased()), "manifest": .string(upload.link.path),
            "artifacts": .array(upload.artifacts.map { .object(["key": .string($0.key.description), "size": .number(Double($0.size)), "md5": .string($0.md5)]) }),
        ]
    }

    private func registerImage(_ step: PipelineStep) async throws -> [String: JSONValue] {
        guard let upload, let imageID else {
            throw EngineError(.pipeline, "register-image needs uploaded artifacts: put upload-artifacts before it", step: step.name)
        }
        // Never register an image whose objects are not all there and consistent.
        _ = try await ImageArtifacts(store: environment.store).validate(manifestURL: upload.link.path, etag: upload.link.etag)
        let link = try ArtifactLink(url: upload.link.path, etag: upload.link.etag)
        let image = try environment.catalog.createImage(ImageRecord(id: imageID, name: job.imageRootArchiveName, link: link, arch: job.arch))
        registeredImage = image
        job = try environment.catalog.finish(job.id, resultantImageID: image.id)
        sink.record("job_status", step: step.name, data: ["status": "success", "resultant_image_id": .string(image.id.uuidString.lowercased())])
        return ["image_id": .string(image.id.uuidString.lowercased())]
    }

    /// Removes stored objects of an upload whose image was not registered (nothing half-registered).
    func rollBackUpload() async {
        guard let upload, registeredImage == nil else { return }
        for object in upload.artifacts { try? await environment.store.delete(object.key) }
        try? await environment.store.delete(upload.manifestObject.key)
    }

    // MARK: Preflight

    /// Before any long work: every later phase step must resolve to exactly one plugin, and the commands
    /// those plugins declare (`requires`) must exist on this host. A two-hour build should not fail at
    /// packaging because mksquashfs is missing.
    func preflight(after step: PipelineStep) throws {
        guard let index = pipeline.steps.firstIndex(where: { $0.name == step.name }) else { return }
        var problems: [String] = []
        for later in pipeline.steps[(index + 1)...] {
            guard let phase = later.phase, skipReason(later) == nil else { continue }
            let stepCriteria = selectionCriteria(for: later)
            do {
                let plugin = try PluginSelector.select(phase: phase, criteria: stepCriteria, pinned: later.plugin, in: environment.plugins)
                let missing = (plugin.manifest.requires ?? []).filter { !Self.commandExists($0) }
                if !missing.isEmpty {
                    problems.append("step '\(later.name)': plugin \(plugin.id) needs \(missing.joined(separator: ", ")), not found on this host (PATH \(PluginInvoker.systemPath))")
                }
            } catch {
                problems.append("step '\(later.name)': \(error.description)")
            }
        }
        if !problems.isEmpty {
            throw EngineError(.plugin, "the job cannot run here: " + problems.joined(separator: "; "), step: step.name)
        }
    }

    /// The job's selection criteria with the step's own `selectors` on top.
    private func selectionCriteria(for step: PipelineStep) -> SelectionCriteria {
        var stepCriteria = criteria
        if let selectors = step.selectors {
            if let family = selectors.distroFamily?.first { stepCriteria.distroFamily = family }
            if let manager = selectors.packageManager?.first { stepCriteria.packageManager = manager }
            if let arch = selectors.arch?.first { stepCriteria.arch = arch }
        }
        return stepCriteria
    }

    static func commandExists(_ name: String) -> Bool {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) }
        return PluginInvoker.systemPath.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    // MARK: Phases

    private func runPhase(_ step: PipelineStep, deadline: ContinuousClock.Instant) async throws -> [String: JSONValue] {
        guard let phase = step.phase else { throw EngineError(.pipeline, "step has no phase", step: step.name) }
        let kind = PhaseKind.of(phaseName: phase)
        let stepCriteria = selectionCriteria(for: step)
        let plugin: ResolvedPlugin
        do {
            plugin = try PluginSelector.select(phase: phase, criteria: stepCriteria, pinned: step.plugin, in: environment.plugins)
        } catch {
            throw EngineError(.plugin, error.description, step: step.name)
        }
        var inputNames = step.effectiveInputs
        if kind == .buildRoot, step.inputs == nil { inputNames.append("description") }
        var inputs: [String: ArtifactRef] = [:]
        for name in inputNames {
            if let artifact = artifacts[name] {
                inputs[name] = artifact
            } else if step.inputs != nil || Self.requiredInputs(kind).contains(name) {
                throw EngineError(.artifact, "phase '\(phase)' needs artifact '\(name)', which no earlier step produced", step: step.name)
            }
        }
        var config = defaultConfig(kind)
        if case .object(let overrides)? = step.config {
            for (key, value) in overrides { config[key] = value }
        }
        let remaining = ContinuousClock.now.duration(to: deadline)
        let remainingSeconds = max(1, Double(remaining.components.seconds))
        let manifestTimeout = plugin.manifest.phase(named: phase)?.timeouts?.runSeconds
        let runSeconds = min(step.timeoutSeconds ?? manifestTimeout ?? PluginInvoker.defaultRunSeconds, remainingSeconds)
        var request = InvocationRequest(
            phase: phase, config: .object(config), inputs: inputs, jobID: job.id.uuidString.lowercased(), workspaceRoot: workspace,
            step: step.name, timeouts: PluginManifest.Timeouts(runSeconds: runSeconds), sourceDateEpoch: options.sourceDateEpoch)
        request.logLevel = .debug
        sink.record("job_log", step: step.name, pluginID: plugin.id, data: [
            "level": "info", "msg": .string("running \(plugin.id) \(plugin.manifest.version) for phase \(phase) (\(stepCriteria))"),
        ])
        let outcome: InvocationOutcome
        do {
            outcome = try await PluginInvoker.invoke(plugin, request, observer: sink)
        } catch {
            throw EngineError(.plugin, error.description, step: step.name)
        }
        if Task.isCancelled { throw CancellationError() }
        switch outcome.status {
        case .failed(let error) where error.code == HostErrorCode.timeout && runSeconds >= remainingSeconds:
            throw EngineError(.timeout, "the job did not finish within its timeout (the phase was stopped)", step: step.name, cause: error)
        case .failed(let error):
            var message = "\(plugin.id) failed: \(error.message) [\(error.code)]"
            if let hint = error.hint { message += " — \(hint)" }
            throw EngineError(.step, message, step: step.name, cause: error)
        case .described:
            throw EngineError(.step, "\(plugin.id) answered with a describe message", step: step.name)
        case .succeeded(let result):
            for (name, artifact) in result.outputs {
                if kind == .package {
                    packaged[name] = artifact
                } else {
                    artifacts[name] = artifact
                }
            }
            if kind == .package, case .object(let md5s)? = result.metadata["md5"] {
                for (name, value) in md5s { if let text = value.stringValue { packagedMD5[name] = text } }
            }
            var facts = result.facts
            facts["plugin_id"] = .string(plugin.id)
            facts["outputs"] = .array(result.outputs.keys.sorted().map(JSONValue.string))
            return facts
        }
    }

    static func requiredInputs(_ kind: PhaseKind) -> [String] {
        switch kind {
        case .buildRoot: ["recipe"]
        case .injectCA: ["rootfs", "ca_cert"]
        case .configureDNS, .customize, .package: ["rootfs"]
        default: []
        }
    }

    private func defaultConfig(_ kind: PhaseKind) -> [String: JSONValue] {
        let settings = environment.settings
        switch kind {
        case .buildRoot:
            var config: [String: JSONValue] = ["arch": .string(job.arch.rawValue)]
            if let family = criteria.distroFamily { config["distro_family"] = .string(family) }
            if let manager = criteria.packageManager { config["package_manager"] = .string(manager) }
            if let ca = artifacts["ca_cert"] { config["ca_bundle"] = .string(ca.path) }
            if let keys = settings.signingKeys { config["signing_keys"] = .array(keys.map(JSONValue.string)) }
            if let profiles = options.profiles { config["profiles"] = .array(profiles.map(JSONValue.string)) }
            return config
        case .injectCA:
            // The job knows its family; the plugin falls back to detecting the layout in the root.
            let family = criteria.distroFamily ?? ""
            return ["layout": .string(["suse", "rhel"].contains(family) ? family : "auto")]
        case .configureDNS:
            guard let dns = settings.dns else { return ["mode": "image"] }
            var config: [String: JSONValue] = ["mode": "image", "nameservers": .array(dns.nameservers.map(JSONValue.string))]
            if let search = dns.search { config["search"] = .array(search.map(JSONValue.string)) }
            if let dnsOptions = dns.options { config["options"] = .array(dnsOptions.map(JSONValue.string)) }
            if let hosts = dns.hosts {
                config["hosts"] = .array(hosts.map { .object(["ip": .string($0.ip), "names": .array($0.names.map(JSONValue.string))]) })
            }
            return config
        case .customize:
            // The job's context, as IMS exposes it to customize sessions (SetEnv IMS_JOB_ID, IMS_ARCH, IMS_DKMS_ENABLED).
            var config: [String: JSONValue] = [
                "script_env": ["IMS_ARCH": .string(job.arch.rawValue), "IMS_DKMS_ENABLED": .string(job.requireDKMS ? "true" : "false")],
            ]
            if let script = options.customizeScript {
                config["mode"] = "script"
                config["script"] = .string(script)
            } else {
                config["mode"] = (job.sshContainers.first?.jail ?? false) ? "jail" : "chroot"
            }
            if let keyID = job.publicKeyID, let key = try? environment.catalog.publicKey(keyID) {
                config["ssh"] = .object(["public_key": .string(key.publicKey)])
            }
            return config
        case .package:
            var config: [String: JSONValue] = [
                "arch": .string(job.arch.rawValue), "kernel_file_name": .string(job.kernelFileName),
                "initrd_file_name": .string(job.initrdFileName), "kernel_parameters_file_name": .string(job.kernelParametersFileName),
                "image_name": .string(job.imageRootArchiveName),
            ]
            if let epoch = options.sourceDateEpoch {
                config["reproducible"] = true
                config["source_date_epoch"] = .number(Double(epoch))
            }
            return config
        default:
            return [:]
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        ((Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18) * 1000).rounded() / 1000
    }
}
