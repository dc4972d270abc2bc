import Foundation
import IMSCatalog
import IMSPluginHost
import IMSProtocol
import IMSRecipes
import IMSStore

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
        let sink = JobEventSink(catalog: catalog, jobID: jobID, listener: options.listener, logger: environment.logger)
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
            sink.record(.jobFinished(.init(status: "error", error: engineError.description)))
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
                return .timedOut(EngineError(.timeout, "the job did not finish within its timeout of \(String(format: "%g", JobExecution.seconds(timeout))) s", step: await execution.currentStep))
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

        await execution.releaseEmulation()
        let (finalJob, registeredImage, manifestText) = await (execution.job, execution.registeredImage, execution.manifestText)
        var outcome = JobOutcome(
            job: (try? catalog.job(jobID)) ?? finalJob, image: registeredImage, manifest: manifestText,
            error: failure, workspace: execution.workspace, workspaceKept: false, duration: started.duration(to: .now))
        if let failure {
            await execution.rollBackUpload()
            let code = failure.code == .timeout ? failure.code.rawValue : (failure.cause?.code ?? failure.code.rawValue)
            let jobError = JobError(
                code: code, category: failure.category.rawValue,
                message: failure.description, phase: failure.step)
            if let job = try? catalog.fail(jobID, error: jobError) { outcome.job = job }
            sink.record(.jobFinished(.init(
                status: "error", error: failure.description, code: jobError.code, category: jobError.category, step: failure.step)))
        } else {
            sink.record(.jobFinished(.init(status: "success", resultantImageID: registeredImage?.id.uuidString.lowercased())))
        }
        sink.flush()
        var keep: Bool
        switch options.workspacePolicy {
        case .keep: keep = true
        case .remove: keep = false
        case .keepOnFailure: keep = failure != nil && (environment.settings.keepFailedWorkspaces ?? true)
        }
        if !keep {
            do {
                try WorkspaceMounts.remove(execution.workspace)
            } catch {
                keep = true  // a mount could not be released: the workspace stays, never removed across it
                sink.record(.log("warn", error.description))
                sink.flush()
            }
        }
        outcome.workspaceKept = keep
        if !keep { outcome.workspace = nil }
        outcome.duration = started.duration(to: .now)
        outcome.warnings = sink.warnings
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

