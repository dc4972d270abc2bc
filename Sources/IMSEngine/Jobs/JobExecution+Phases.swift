import Foundation
import IMSCatalog
import IMSPluginHost
import IMSProtocol
import IMSRecipes

/// Phase steps: the engine picks a plugin through its ``PluginRunner``, hands it the step's inputs and config,
/// and keeps what it produced.
extension JobExecution {
    func runPhase(_ step: PipelineStep, deadline: ContinuousClock.Instant) async throws -> [String: JSONValue] {
        guard let phase = step.phase else { throw EngineError(.pipeline, "step has no phase", step: step.name) }
        let kind = PhaseKind.of(phaseName: phase)
        let runner = environment.pluginRunner
        let stepCriteria = PhaseConfiguration.criteria(criteria, for: step)
        let plugin: ResolvedPlugin
        do {
            plugin = try runner.select(phase: phase, criteria: stepCriteria, pinned: step.plugin)
        } catch {
            throw EngineError(.plugin, error.description, step: step.name)
        }
        var inputs: [String: ArtifactRef] = [:]
        for name in PhaseConfiguration.inputNames(for: step, kind: kind) {
            if let artifact = artifacts[name] {
                inputs[name] = artifact
            } else if step.inputs != nil || PhaseConfiguration.requiredInputs(kind).contains(name) {
                throw EngineError(.artifact, "phase '\(phase)' needs artifact '\(name)', which no earlier step produced", step: step.name)
            }
        }
        let config = PhaseConfiguration.merged(PhaseConfiguration.defaults(for: kind, configurationContext(for: kind, criteria: stepCriteria)), step: step.config)
        let remaining = ContinuousClock.now.duration(to: deadline)
        let remainingSeconds = max(1, Double(remaining.components.seconds))
        let manifestTimeout = plugin.manifest.phase(named: phase)?.timeouts?.runSeconds
        let limit = PhaseConfiguration.runLimit(
            step: step.timeoutSeconds, manifest: manifestTimeout, jobRemaining: remainingSeconds, pluginID: plugin.id)
        let runSeconds = limit.seconds
        let key = await cacheKey(step: step, phase: phase, kind: kind, plugin: plugin, config: config, inputs: inputs, criteria: stepCriteria)
        // The key's digest, computed once for the lookup and the store.
        let keyDigest = key?.digest
        if let keyDigest, let restored = await restoreFromCache(digest: keyDigest, step: step, kind: kind, plugin: plugin) {
            return restored
        }
        try await materializeCacheBacked(inputs: inputs, step: step)
        let invoked = ContinuousClock.now
        var request = InvocationRequest(
            phase: phase, config: .object(config), inputs: inputs, jobID: job.id.uuidString.lowercased(), workspaceRoot: workspace,
            step: step.name, timeouts: PluginManifest.Timeouts(runSeconds: runSeconds), sourceDateEpoch: options.sourceDateEpoch)
        request.runLimitSource = limit.source
        request.logLevel = .debug
        sink.record(.log("info", "running \(plugin.id) \(plugin.manifest.version) for phase \(phase) (\(stepCriteria))"), step: step.name, pluginID: plugin.id)
        let outcome: InvocationOutcome
        do {
            outcome = try await runner.invoke(plugin, request, observer: sink)
        } catch {
            throw EngineError(.plugin, error.description, step: step.name)
        }
        if Task.isCancelled { throw CancellationError() }
        switch outcome.status {
        case .failed(let error) where error.code == HostErrorCode.timeout && runSeconds >= remainingSeconds:
            throw EngineError(.timeout, "the job did not finish within its timeout (the phase was stopped)", step: step.name, cause: error)
        case .failed(let error):
            let explained = FailureExplanation.describe(pluginID: plugin.id, error: error)
            var cause = error
            cause.category = explained.category
            throw EngineError(.step, explained.message, step: step.name, cause: cause)
        case .described:
            throw EngineError(.step, "\(plugin.id) answered with a describe message", step: step.name)
        case .succeeded(let result):
            // A cached phase promises not to change its inputs (docs/writing-plugins.md); any other may have.
            forgetDigests(of: (key == nil ? Array(inputs.keys) : []) + Array(result.outputs.keys))
            keep(result, of: kind)
            if let key, let keyDigest {
                await storeInCache(key, digest: keyDigest, kind: kind, result: result, step: step, seconds: Self.seconds(invoked.duration(to: .now)))
            }
            var facts = result.facts
            facts["plugin_id"] = .string(plugin.id)
            facts["outputs"] = .array(result.outputs.keys.sorted().map(JSONValue.string))
            return facts
        }
    }

    /// A packager's outputs are the image's artifacts (with their md5s); every other phase's outputs become
    /// named artifacts for later steps.
    func keep(_ result: PhaseResult, of kind: PhaseKind) {
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
    }

    /// What the phase's default config is made from; the public key is read from the catalog only for a customize
    /// phase, the one kind that uses it.
    private func configurationContext(for kind: PhaseKind, criteria: SelectionCriteria) -> PhaseConfiguration.Context {
        PhaseConfiguration.Context(
            job: job, criteria: criteria, settings: environment.settings, caBundlePath: artifacts["ca_cert"]?.path,
            profiles: options.profiles, sourceDateEpoch: options.sourceDateEpoch, customizeScript: options.customizeScript,
            publicKey: kind == .customize ? job.publicKeyID.flatMap { try? environment.catalog.publicKey($0).publicKey } : nil,
            repositories: (resolvedDescription?.repositories ?? []).map { ($0.alias, $0.source) })
    }
}
