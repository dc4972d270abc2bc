import Foundation
import IMSPluginHost
import IMSProtocol

/// One step of an effective pipeline as it would run on this host: the plugin its phase resolves to.
public struct ResolvedStepView: Sendable, Hashable, Encodable {
    public var name: String
    public var builtin: String?
    public var phase: String?
    /// The plugin the phase step resolves to, when exactly one does.
    public var plugin: String?
    /// Whether the pipeline pins the plugin by id.
    public var pinned: Bool
    /// More than one plugin matches without a job's distro family, package manager and arch: each job picks one.
    public var candidates: [String]?
    /// Why the step cannot run on this host (no plugin, unknown plugin, …); nil when it can.
    public var problem: String?
    /// Why the step is skipped with this site's settings (`when:`), nil when it runs.
    public var skipped: String?
    public var status: String?
    public var timeoutSeconds: Double?
    public var inputs: [String]
    public var config: JSONValue?

    enum CodingKeys: String, CodingKey {
        case name, builtin, phase, plugin, pinned, candidates, problem, skipped, status, inputs, config
        case timeoutSeconds = "timeout_seconds"
    }
}

/// An effective pipeline with every step resolved.
public struct PipelineView: Sendable, Hashable, Encodable {
    public var jobType: String
    public var name: String
    /// The file it came from, or "built-in <name>".
    public var source: String
    public var steps: [ResolvedStepView]

    enum CodingKeys: String, CodingKey {
        case name, source, steps
        case jobType = "job_type"
    }
}

/// Something `ims pipelines validate` found in a site configuration directory.
public struct SiteConfigFinding: Sendable, Hashable, Encodable {
    public enum Severity: String, Sendable, Encodable {
        /// A job would fail (or be refused) because of it.
        case error
        /// Probably not what the site meant (a file ims never reads), but no job fails because of it.
        case warning
    }

    public var severity: Severity
    /// The file or directory it is about.
    public var path: String
    public var message: String
    /// The known name the misspelt one most likely meant.
    public var suggestion: String?

    public init(_ severity: Severity, path: String, _ message: String, suggestion: String? = nil) {
        self.severity = severity
        self.path = path
        self.message = message
        self.suggestion = suggestion
    }

    /// The finding in one line that names its file.
    public var text: String {
        message.hasPrefix(path) ? message : "\(path): \(message)"
    }
}

/// Reads a site configuration directory the way jobs do, without running anything: the effective pipelines with the
/// plugin each phase step resolves to, and what is wrong or suspicious in the directory.
public enum SiteConfigInspector {
    /// The job types, each with its pipeline `pipelines/<job type>.yaml`.
    public static let jobTypes = ["create", "customize"]
    /// What ims reads in a configuration directory (`plugins/` only when it is on the plugin search path, as
    /// /etc/ims/plugins is).
    static let knownEntries = ["ims.yaml", "pipelines/", "plugins/"]
    static let pipelineExtensions = ["yaml", "yml", "json"]

    /// The effective pipeline of `jobType` with each phase step resolved against `plugins`, for a job with `criteria`.
    public static func view(
        jobType: String, siteDirectory: String, settings: SiteSettings, plugins: PluginCatalog,
        criteria: SelectionCriteria = SelectionCriteria()
    ) throws(EngineError) -> PipelineView {
        let pipeline = try PipelineLoader.effective(name: jobType, siteDirectory: siteDirectory)
        return view(pipeline, jobType: jobType, settings: settings, plugins: plugins, criteria: criteria)
    }

    static func view(_ pipeline: Pipeline, jobType: String, settings: SiteSettings, plugins: PluginCatalog, criteria: SelectionCriteria) -> PipelineView {
        let steps = pipeline.steps.map { step in
            var view = ResolvedStepView(
                name: step.name, builtin: step.builtin?.rawValue, phase: step.phase, plugin: nil, pinned: step.plugin != nil,
                candidates: nil, problem: nil, skipped: PhaseConfiguration.skipReason(step, settings: settings), status: step.status,
                timeoutSeconds: step.timeoutSeconds, inputs: step.phase == nil ? [] : step.effectiveInputs, config: step.config)
            if let phase = step.phase {
                resolve(phase, pinned: step.plugin, criteria: PhaseConfiguration.criteria(criteria, for: step), plugins: plugins, into: &view)
            }
            return view
        }
        return PipelineView(jobType: jobType, name: pipeline.name, source: pipeline.source, steps: steps)
    }

    /// Fills in the plugin (or candidates, or the problem) for a phase step.
    static func resolve(_ phase: String, pinned: String?, criteria: SelectionCriteria, plugins: PluginCatalog, into view: inout ResolvedStepView) {
        if let pinned {
            do {
                view.plugin = try PluginSelector.select(phase: phase, criteria: criteria, pinned: pinned, in: plugins).id
            } catch {
                switch error {
                case .pluginNotFound:
                    view.problem = "no plugin '\(pinned)' on the plugin search path"
                        + Suggestion.phrase(for: pinned, among: plugins.plugins.map(\.id))
                case .phaseNotOffered(let id, _, let offered):
                    view.problem = "plugin '\(id)' does not offer phase '\(phase)' (it offers: \(offered.joined(separator: ", ")))"
                        + Suggestion.phrase(for: phase, among: offered)
                default:
                    view.problem = error.description
                }
            }
            return
        }
        let offering = plugins.usable.filter { $0.manifest?.phase(named: phase) != nil }
        let matching = offering.filter { PluginSelector.matches($0.manifest?.phase(named: phase)?.selectors, criteria) }
        switch matching.count {
        case 0 where offering.isEmpty:
            let offered = plugins.usable.flatMap { $0.manifest?.phases.map(\.name) ?? [] }
            let known = PhaseKind.allCases.filter { $0 != .custom }.map(\.rawValue) + offered
            view.problem = "no usable plugin on the plugin search path offers phase '\(phase)'"
                + Suggestion.phrase(for: phase, among: known)
        case 0:
            view.problem = "no plugin for phase '\(phase)' matches \(criteria.description); plugins offering it: \(offering.map(\.id).joined(separator: ", "))"
        case 1:
            view.plugin = matching[0].id
        default:
            // Without a job, the distro family, package manager and arch are unknown: each job picks one by selectors.
            view.candidates = matching.map(\.id)
            if criteria.distroFamily != nil, criteria.packageManager != nil, criteria.arch != nil {
                view.problem = "several plugins match phase '\(phase)' for \(criteria.description): \(matching.map(\.id).joined(separator: ", ")); pin one by id in the pipeline"
            }
        }
    }

    /// Everything wrong or suspicious in `siteDirectory`: unknown entries (with the name they probably meant), a bad
    /// ims.yaml, pipeline files that do not load, and phase steps no plugin on the search path can run.
    public static func validate(siteDirectory: String, plugins: PluginCatalog) -> [SiteConfigFinding] {
        var findings: [SiteConfigFinding] = []
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: siteDirectory, isDirectory: &isDirectory) else {
            return [SiteConfigFinding(.warning, path: siteDirectory, "the configuration directory does not exist: jobs use the built-in pipelines and default settings")]
        }
        guard isDirectory.boolValue else {
            return [SiteConfigFinding(.error, path: siteDirectory, "the configuration directory is not a directory")]
        }

        var settings = SiteSettings()
        let settingsPath = siteDirectory + "/ims.yaml"
        do {
            settings = try SiteSettings.load(file: settingsPath, optional: true)
        } catch {
            findings.append(SiteConfigFinding(.error, path: settingsPath, error.message, suggestion: suggestion(in: error.message)))
        }

        // Files the settings point at (a CA, signing keys) may live in the directory too.
        let referenced = Set(([settings.caCert].compactMap { $0 } + (settings.signingKeys ?? [])).map { ($0 as NSString).standardizingPath })
        let entries = ((try? fileManager.contentsOfDirectory(atPath: siteDirectory)) ?? []).sorted()
        for entry in entries where !entry.hasPrefix(".") {
            let path = siteDirectory + "/" + entry
            var entryIsDirectory: ObjCBool = false
            fileManager.fileExists(atPath: path, isDirectory: &entryIsDirectory)
            let shown = entry + (entryIsDirectory.boolValue ? "/" : "")
            if referenced.contains((path as NSString).standardizingPath) { continue }
            if shown == "plugins/" {
                // Read only when it is on the plugin search path (/etc/ims/plugins, plugin_path, --plugin-path).
                let searched = Set(plugins.searchPath.entries.map { ($0.directory as NSString).standardizingPath })
                if !searched.contains((path as NSString).standardizingPath) {
                    findings.append(SiteConfigFinding(
                        .warning, path: path,
                        "'plugins/' is not on the plugin search path, so no plugin in it is found: add it to plugin_path in ims.yaml (or pass --plugin-path)"))
                }
                continue
            }
            if knownEntries.contains(shown) { continue }
            if entry == "pipelines" || entry == "plugins" {
                findings.append(SiteConfigFinding(.error, path: path, "'\(entry)' must be a directory"))
                continue
            }
            let suggestion = Suggestion.closest(to: shown, among: knownEntries)
            findings.append(SiteConfigFinding(
                .warning, path: path,
                "'\(shown)' is not read by ims (it reads ims.yaml and pipelines/ here)" + (suggestion.map { "; did you mean '\($0)'?" } ?? ""),
                suggestion: suggestion))
        }

        let pipelinesDirectory = siteDirectory + "/pipelines"
        let pipelineFiles = ((try? fileManager.contentsOfDirectory(atPath: pipelinesDirectory)) ?? []).sorted()
        let knownFiles = jobTypes.flatMap { type in pipelineExtensions.map { "\(type).\($0)" } }
        for file in pipelineFiles where !file.hasPrefix(".") && !knownFiles.contains(file) {
            let suggestion = Suggestion.closest(to: file, among: knownFiles)
            findings.append(SiteConfigFinding(
                .warning, path: pipelinesDirectory + "/" + file,
                "'\(file)' is not read by ims (it reads \(jobTypes.map { "\($0).yaml" }.joined(separator: " and ")), or .yml or .json)"
                    + (suggestion.map { "; did you mean '\($0)'?" } ?? ""),
                suggestion: suggestion))
        }
        for type in jobTypes {
            let present = pipelineExtensions.map { "\(type).\($0)" }.filter(pipelineFiles.contains)
            for ignored in present.dropFirst() {
                findings.append(SiteConfigFinding(
                    .warning, path: pipelinesDirectory + "/" + ignored, "'\(ignored)' is ignored: '\(present[0])' is read instead"))
            }
        }

        for type in jobTypes {
            let pipeline: Pipeline
            do {
                pipeline = try PipelineLoader.effective(name: type, siteDirectory: siteDirectory)
            } catch {
                let file = present(type, in: pipelinesDirectory, files: pipelineFiles) ?? "built-in \(type)"
                findings.append(SiteConfigFinding(.error, path: file, error.message, suggestion: suggestion(in: error.message)))
                continue
            }
            let view = view(pipeline, jobType: type, settings: settings, plugins: plugins, criteria: SelectionCriteria())
            for step in view.steps {
                guard let problem = step.problem else { continue }
                // A step this site's settings skip cannot fail a job, but would once the setting is made.
                let severity: SiteConfigFinding.Severity = step.skipped == nil ? .error : .warning
                let note = step.skipped.map { " (skipped on this site: \($0))" } ?? ""
                findings.append(SiteConfigFinding(
                    severity, path: pipeline.source, "\(type) pipeline, step '\(step.name)': \(problem)\(note)", suggestion: suggestion(in: problem)))
            }
        }
        return findings
    }

    static func present(_ type: String, in directory: String, files: [String]) -> String? {
        pipelineExtensions.map { "\(type).\($0)" }.first(where: files.contains).map { directory + "/" + $0 }
    }

    /// The name in a "did you mean 'X'?" phrase of `message`.
    static func suggestion(in message: String) -> String? {
        guard let range = message.range(of: "did you mean '", options: .backwards) else { return nil }
        let rest = message[range.upperBound...]
        guard let end = rest.firstIndex(of: "'") else { return nil }
        return String(rest[..<end])
    }
}
