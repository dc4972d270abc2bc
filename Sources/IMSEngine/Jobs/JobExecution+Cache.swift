import Foundation
import IMSCatalog
import IMSPluginHost
import IMSProtocol
import IMSRecipes
import Synchronization

/// The phase cache in a job: a key for each cacheable phase step, outputs restored on a hit, stored after a run.
///
/// An output of a step that had a key gets a digest derived from that key (``PhaseCacheKey/outputDigest(key:name:)``),
/// so a chain of hits never hashes an image root; other artifacts (the recipe, the site CA, a customized root) are
/// hashed by content when a later key needs them.
extension JobExecution {
    /// The key for this run of `step`, or nil (with ``cacheOutcome`` saying why) when the step is not cached.
    func cacheKey(
        step: PipelineStep, phase: String, kind: PhaseKind, plugin: ResolvedPlugin, config: [String: JSONValue],
        inputs: [String: ArtifactRef], criteria: SelectionCriteria
    ) async -> PhaseCacheKey? {
        if let reason = cacheOffReason(step: step, phase: phase, plugin: plugin) {
            cacheOutcome = .init(status: .off, reason: reason)
            return nil
        }
        do throws(EngineError) {
            var repositories: [String: String] = [:]
            // A builder installs from its repositories, and an SBOM reads their package metadata.
            if kind == .buildRoot || (kind == .sbom && !(resolvedDescription?.repositories.isEmpty ?? true)) {
                guard let resolved = resolvedDescription else {
                    cacheOutcome = .init(status: .off, reason: "the recipe's repositories are unknown (no prepare-recipe step)")
                    return nil
                }
                for repository in resolved.repositories {
                    guard let digest = try repositoryDigest(repository.source) else {
                        cacheOutcome = .init(status: .off, reason: "the metadata of repository \(repository.alias) (\(repository.source)) was not read (no wait-for-repos step, or not an rpm-md repository)")
                        return nil
                    }
                    repositories[repository.source] = digest
                }
            }
            var inputDigests: [String: String] = [:]
            for (name, ref) in inputs { inputDigests[name] = try digest(of: name, ref) }
            let placeholders = [(workspace, "${workspace}"), (job.id.uuidString.lowercased(), "${job_id}")]
            var files: [String: String] = [:]
            for path in PhaseCacheKey.referencedPaths(in: .object(config)) {
                let name = PhaseCacheKey.normalise(.string(path), replacing: placeholders).stringValue ?? path
                files[name] = try ContentDigest.of(path: path)
            }
            return PhaseCacheKey(
                pluginID: plugin.id, pluginVersion: plugin.manifest.version, pluginDigest: try PluginDigests.digest(of: plugin.directory),
                tools: try PluginDigests.toolDigests(plugin.manifest.requires ?? []), phase: phase, arch: criteria.arch, config: PhaseCacheKey.normalise(.object(config), replacing: placeholders),
                sourceDateEpoch: options.sourceDateEpoch, inputs: inputDigests, files: files, repositories: repositories)
        } catch {
            cacheOutcome = .init(status: .off, reason: "the cache key could not be computed: \(error.message)")
            sink.record(.log("warn", "phase cache not used: \(error.message)"), step: step.name)
            return nil
        }
    }

    /// Why `step` does not use the cache, or nil when it does.
    func cacheOffReason(step: PipelineStep, phase: String, plugin: ResolvedPlugin) -> String? {
        if environment.phaseCache == nil {
            return "the phase cache is off here (cache.enabled: false, or a remote runner whose ims.yaml sets no cache.directory)"
        }
        if !options.useCache { return "the job runs without the cache (--no-cache)" }
        if step.cache == false { return "the pipeline turns the cache off for this step (cache: false)" }
        if plugin.manifest.phase(named: phase)?.cacheable != true {
            return "\(plugin.id) does not declare phase '\(phase)' cacheable"
        }
        return nil
    }

    /// On a hit: the stored outputs placed in the step's directory and kept as if the plugin had just made them,
    /// and the step's facts. Nil on a miss, or when the entry cannot be restored (then the phase runs).
    func restoreFromCache(digest: String, step: PipelineStep, kind: PhaseKind, plugin: ResolvedPlugin) async -> [String: JSONValue]? {
        guard let cache = environment.phaseCache, let entry = cache.lookup(digest) else {
            cacheOutcome = .init(status: .miss, key: digest, reason: "no stored outputs for this key")
            return nil
        }
        let result: PhaseResult
        do {
            result = try await cache.restore(entry, into: try stepDirectory(step))
        } catch {
            cacheOutcome = .init(status: .miss, key: digest, reason: "the stored outputs could not be restored: \(error)")
            sink.record(.log("warn", "cache entry \(digest.prefix(12)) could not be restored (\(error)); running the phase"), step: step.name)
            return nil
        }
        keep(result, of: kind)
        if kind != .package {
            for (name, ref) in result.outputs {
                artifactDigests[name] = (ref.path, PhaseCacheKey.outputDigest(key: digest, name: name))
                cacheBacked.insert(name)
            }
        }
        cacheOutcome = .init(status: .hit, key: digest, savedSeconds: entry.seconds)
        sink.record(.log("info", String(
            format: "cache hit %@: reused the outputs %@ stored by step %@ (%.1f s when it ran)", String(digest.prefix(12)),
            result.outputs.keys.sorted().joined(separator: ", "), entry.step, entry.seconds)), step: step.name, pluginID: plugin.id)
        var facts = result.facts
        facts["plugin_id"] = .string(plugin.id)
        facts["outputs"] = .array(result.outputs.keys.sorted().map(JSONValue.string))
        return facts
    }

    /// Stores a phase's outputs under `key` (a failure to store is a warning: the job goes on).
    func storeInCache(_ key: PhaseCacheKey, digest: String, kind: PhaseKind, result: PhaseResult, step: PipelineStep, seconds: Double) async {
        if kind != .package {
            for (name, ref) in result.outputs { artifactDigests[name] = (ref.path, PhaseCacheKey.outputDigest(key: digest, name: name)) }
        }
        guard let cache = environment.phaseCache else { return }
        do {
            if try await cache.store(key: key, digest: digest, result: result, step: step.name, seconds: seconds, workspace: workspace) != nil {
                cacheOutcome = .init(status: .stored, key: digest)
            } else {
                cacheOutcome = .init(status: .miss, key: digest, reason: "not stored: an output lies outside the job's workspace")
                sink.record(.log("warn", "phase cache: outputs of \(step.name) not stored (an output lies outside the job's workspace)"), step: step.name)
            }
        } catch {
            cacheOutcome = .init(status: .miss, key: digest, reason: "not stored: \(error.message)")
            sink.record(.log("warn", "phase cache: outputs of \(step.name) not stored: \(error.message)"), step: step.name)
        }
    }

    /// Turns inputs that are hard links into the cache into private copies before a plugin gets them.
    func materializeCacheBacked(inputs: [String: ArtifactRef], step: PipelineStep) async throws {
        for (name, ref) in inputs.sorted(by: { $0.key < $1.key }) where cacheBacked.contains(name) {
            do {
                try await PhaseCache.materialize(ref)
            } catch {
                throw EngineError(.workspace, "cannot copy the restored \(name) for \(step.name): \(error.message)", step: step.name)
            }
            cacheBacked.remove(name)
        }
    }

    /// Forgets what is known about artifacts a step may have changed.
    func forgetDigests(of names: [String]) {
        for name in names {
            artifactDigests[name] = nil
            cacheBacked.remove(name)
        }
    }

    /// Forgets every artifact digest (after a builtin step, which may change artifacts in place).
    func forgetAllDigests() {
        artifactDigests.removeAll()
    }

    /// Records the metadata digests wait-for-repos read.
    func rememberRepositoryDigests(_ digests: [String: String]) {
        repositoryDigests.merge(digests) { _, new in new }
    }

    private func digest(of name: String, _ ref: ArtifactRef) throws(EngineError) -> String {
        if let known = artifactDigests[name], known.path == ref.path { return known.digest }
        let digest = try ContentDigest.of(path: ref.path)
        artifactDigests[name] = (ref.path, digest)
        return digest
    }

    /// The digest of `source`'s metadata index: as wait-for-repos read it, or read now for a local repository.
    private func repositoryDigest(_ source: String) throws(EngineError) -> String? {
        if let known = repositoryDigests[source] { return known }
        let path: String
        if source.hasPrefix("file://") {
            path = String(source.dropFirst("file://".count))
        } else if source.hasPrefix("/") {
            path = source
        } else {
            return nil
        }
        let index = (path.hasSuffix("/") ? String(path.dropLast()) : path) + "/repodata/repomd.xml"
        guard FileManager.default.fileExists(atPath: index) else { return nil }
        return try ContentDigest.of(path: index)
    }
}

/// Digests of plugin directories and host tools, computed again only when a path's ``ContentDigest/fingerprint(path:)``
/// changes (a long-lived process sees a plugin upgraded in place).
enum PluginDigests {
    private static let known = Mutex<[String: (fingerprint: String, digest: String)]>([:])

    static func digest(of path: String) throws(EngineError) -> String {
        let fingerprint = ContentDigest.fingerprint(path: path)
        if let known = known.withLock({ $0[path] }), known.fingerprint == fingerprint { return known.digest }
        let digest = try ContentDigest.of(path: path)
        known.withLock { $0[path] = (fingerprint, digest) }
        return digest
    }

    /// Each command found on the host's PATH → the digest of its executable (symbolic links followed); a command
    /// that is missing is recorded as such (preflight reports it before any step runs).
    static func toolDigests(_ commands: [String]) throws(EngineError) -> [String: String] {
        var digests: [String: String] = [:]
        for command in commands {
            guard let found = HostCommand.locate(command, path: PluginInvoker.systemPath) else {
                digests[command] = "missing"
                continue
            }
            digests[command] = try digest(of: ContentDigest.realPath(found))
        }
        return digests
    }
}
