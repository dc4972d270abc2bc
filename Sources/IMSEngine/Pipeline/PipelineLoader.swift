import Foundation
import IMSProtocol
import Yams

/// Reads pipeline files (YAML or JSON) and applies site overrides, reporting every problem by step.
///
/// A pipeline file either defines `steps` outright, or `extends` a built-in pipeline and changes it:
///
///     version: 1
///     extends: create
///     insert:
///       - after: configure-dns
///         step: {name: scan, phase: scan-cves, config: {severity: high}}
///     override:
///       build-root: {plugin: org.site.builder, timeout_seconds: 10800}
///     remove: [inject-ca]
public enum PipelineLoader {
    static let jobStatuses: Set<String> = [
        "creating", "fetching_image", "fetching_recipe", "waiting_for_repos", "building_image",
        "packaging_artifacts", "waiting_on_user", "error", "success",
    ]
    static let insertKeys = ["after", "before", "step"]
    static let stepKeys: Set<String> = [
        "name", "builtin", "phase", "plugin", "selectors", "config", "inputs", "status", "timeout_seconds", "retry", "when",
        "cache",
    ]

    /// The effective pipeline `name`: the site's file in `siteDirectory/pipelines/<name>.yaml|json` if present,
    /// else the built-in one.
    public static func effective(name: String, siteDirectory: String?) throws(EngineError) -> Pipeline {
        if let siteDirectory {
            for ext in ["yaml", "yml", "json"] {
                let path = "\(siteDirectory)/pipelines/\(name).\(ext)"
                if FileManager.default.fileExists(atPath: path) { return try load(file: path) }
            }
        }
        return try builtin(name)
    }

    /// A built-in pipeline.
    public static func builtin(_ name: String) throws(EngineError) -> Pipeline {
        guard let text = DefaultPipelines.text(for: name) else {
            throw EngineError(.pipeline, "there is no built-in pipeline '\(name)' (known: create, customize)\(Suggestion.phrase(for: name, among: ["create", "customize"]))")
        }
        return try parse(text: text, source: "built-in \(name)")
    }

    /// Loads a pipeline file.
    public static func load(file path: String) throws(EngineError) -> Pipeline {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw EngineError(.pipeline, "\(path): cannot read the pipeline file")
        }
        return try parse(text: text, source: path)
    }

    /// Parses pipeline text; `source` names it in errors.
    public static func parse(text: String, source: String) throws(EngineError) -> Pipeline {
        let parsed: Any?
        do {
            parsed = try Yams.load(yaml: text)
        } catch {
            let firstLine = String(describing: error).split(separator: "\n").first.map(String.init) ?? "syntax error"
            throw EngineError(.pipeline, "\(source): not valid YAML or JSON: \(firstLine)")
        }
        guard let document = parsed as? [String: Any] else {
            throw EngineError(.pipeline, "\(source): a pipeline must be a mapping with 'steps' or 'extends'")
        }
        let allowed: Set<String> = ["version", "name", "steps", "extends", "insert", "override", "remove"]
        if let unknown = document.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw EngineError(.pipeline, "\(source): unknown key '\(unknown)' (allowed: \(allowed.sorted().joined(separator: ", ")))\(Suggestion.phrase(for: unknown, among: allowed.sorted()))")
        }
        if let version = document["version"], (version as? Int) != 1 {
            throw EngineError(.pipeline, "\(source): 'version' must be 1")
        }
        var pipeline: Pipeline
        if let base = document["extends"] {
            guard let baseName = base as? String else { throw EngineError(.pipeline, "\(source): 'extends' must name a built-in pipeline") }
            if document["steps"] != nil { throw EngineError(.pipeline, "\(source): use either 'steps' or 'extends', not both") }
            pipeline = try builtin(baseName)
            pipeline.source = source
            if let name = document["name"] as? String { pipeline.name = name }
        } else {
            guard let steps = document["steps"] as? [Any] else {
                throw EngineError(.pipeline, "\(source): missing 'steps' (a list) or 'extends'")
            }
            let name = document["name"] as? String ?? ((source as NSString).lastPathComponent as NSString).deletingPathExtension
            pipeline = Pipeline(name: name, steps: try steps.enumerated().map { index, raw throws(EngineError) in
                try step(raw, position: "step #\(index + 1)", source: source)
            }, source: source)
        }
        if let remove = document["remove"] {
            guard let names = remove as? [String] else { throw EngineError(.pipeline, "\(source): 'remove' must be a list of step names") }
            for name in names {
                guard pipeline.steps.contains(where: { $0.name == name }) else {
                    throw EngineError(.pipeline, "\(source): cannot remove step '\(name)': no such step in \(pipeline.name)\(Suggestion.phrase(for: name, among: pipeline.steps.map(\.name)))")
                }
                pipeline.steps.removeAll { $0.name == name }
            }
        }
        if let override = document["override"] {
            guard let overrides = override as? [String: Any] else { throw EngineError(.pipeline, "\(source): 'override' must map step names to changes") }
            for (name, change) in overrides.sorted(by: { $0.key < $1.key }) {
                guard let index = pipeline.steps.firstIndex(where: { $0.name == name }) else {
                    throw EngineError(.pipeline, "\(source): cannot override step '\(name)': no such step in \(pipeline.name)\(Suggestion.phrase(for: name, among: pipeline.steps.map(\.name)))")
                }
                guard var merged = encodeAsDictionary(pipeline.steps[index]), let changes = change as? [String: Any] else {
                    throw EngineError(.pipeline, "\(source): override of '\(name)' must be a mapping")
                }
                for (key, value) in changes { merged[key] = value }
                pipeline.steps[index] = try step(merged, position: "override of '\(name)'", source: source)
            }
        }
        if let insert = document["insert"] {
            guard let inserts = insert as? [Any] else { throw EngineError(.pipeline, "\(source): 'insert' must be a list") }
            for (index, raw) in inserts.enumerated() {
                let position = "insert #\(index + 1)"
                guard let entry = raw as? [String: Any] else {
                    throw EngineError(.pipeline, "\(source): \(position) must be a mapping with 'step' and 'before' or 'after'")
                }
                let label = ((entry["step"] as? [String: Any])?["name"] as? String).map { "\(position) ('\($0)')" } ?? position
                if let unknown = entry.keys.filter({ !insertKeys.contains($0) }).sorted().first {
                    throw EngineError(.pipeline, "\(source): \(label): unknown key '\(unknown)' (allowed: \(insertKeys.joined(separator: ", ")))\(Suggestion.phrase(for: unknown, among: insertKeys))")
                }
                guard let stepValue = entry["step"] else {
                    throw EngineError(.pipeline, "\(source): \(label) needs 'step' (the step to insert) and 'before' or 'after'")
                }
                let newStep = try step(stepValue, position: position, source: source)
                if let anchor = entry["after"] as? String {
                    guard let at = pipeline.steps.firstIndex(where: { $0.name == anchor }) else {
                        throw EngineError(.pipeline, "\(source): \(position) ('\(newStep.name)'): no step '\(anchor)' to insert after (steps: \(pipeline.steps.map(\.name).joined(separator: ", ")))\(Suggestion.phrase(for: anchor, among: pipeline.steps.map(\.name)))")
                    }
                    pipeline.steps.insert(newStep, at: at + 1)
                } else if let anchor = entry["before"] as? String {
                    guard let at = pipeline.steps.firstIndex(where: { $0.name == anchor }) else {
                        throw EngineError(.pipeline, "\(source): \(position) ('\(newStep.name)'): no step '\(anchor)' to insert before (steps: \(pipeline.steps.map(\.name).joined(separator: ", ")))\(Suggestion.phrase(for: anchor, among: pipeline.steps.map(\.name)))")
                    }
                    pipeline.steps.insert(newStep, at: at)
                } else {
                    throw EngineError(.pipeline, "\(source): \(position) ('\(newStep.name)') needs 'before' or 'after' (the name of a step: \(pipeline.steps.map(\.name).joined(separator: ", ")))")
                }
            }
        }
        try check(pipeline)
        return pipeline
    }

    static func step(_ raw: Any, position: String, source: String) throws(EngineError) -> PipelineStep {
        guard let object = raw as? [String: Any] else {
            throw EngineError(.pipeline, "\(source): \(position) must be a mapping")
        }
        let label = (object["name"] as? String).map { "step '\($0)'" } ?? position
        func fail(_ problem: String) -> EngineError { EngineError(.pipeline, "\(source): \(label): \(problem)", step: object["name"] as? String) }
        if let unknown = object.keys.filter({ !stepKeys.contains($0) }).sorted().first {
            throw fail("unknown key '\(unknown)' (allowed: \(stepKeys.sorted().joined(separator: ", ")))\(Suggestion.phrase(for: unknown, among: stepKeys.sorted()))")
        }
        guard let name = object["name"] as? String, !name.isEmpty else { throw fail("missing 'name'") }
        let builtinName = object["builtin"] as? String
        let phase = object["phase"] as? String
        if builtinName == nil && phase == nil { throw fail("needs 'phase' (run by a plugin) or 'builtin'") }
        if builtinName != nil && phase != nil { throw fail("has both 'phase' and 'builtin'; choose one") }
        var builtin: BuiltinStep?
        if let builtinName {
            guard let parsed = BuiltinStep(rawValue: builtinName) else {
                throw fail("unknown builtin '\(builtinName)' (known: \(BuiltinStep.allCases.map(\.rawValue).joined(separator: ", ")))\(Suggestion.phrase(for: builtinName, among: BuiltinStep.allCases.map(\.rawValue)))")
            }
            builtin = parsed
        }
        if let phase, !isPhaseName(phase) {
            throw fail("phase '\(phase)' must be lowercase letters, digits and '-'")
        }
        if let status = object["status"] {
            guard let text = status as? String, jobStatuses.contains(text), text != "error", text != "success" else {
                let statuses = jobStatuses.subtracting(["error", "success"]).sorted()
                throw fail("'status' must be one of \(statuses.joined(separator: ", "))\((status as? String).map { Suggestion.phrase(for: $0, among: statuses) } ?? "")")
            }
        }
        var timeout: Double?
        if let value = object["timeout_seconds"] {
            guard let number = (value as? Double) ?? (value as? Int).map(Double.init), number > 0 else {
                throw fail("'timeout_seconds' must be a number > 0")
            }
            timeout = number
        }
        var retry: RetryPolicy?
        if let value = object["retry"] {
            guard let mapping = value as? [String: Any], let attempts = mapping["attempts"] as? Int, attempts >= 1 else {
                throw fail("'retry' must be {attempts: N >= 1, backoff_seconds: S}")
            }
            let backoff = (mapping["backoff_seconds"] as? Double) ?? (mapping["backoff_seconds"] as? Int).map(Double.init) ?? 5
            guard backoff >= 0 else { throw fail("'retry.backoff_seconds' must be >= 0") }
            retry = RetryPolicy(attempts: attempts, backoffSeconds: backoff)
        }
        var when: StepCondition?
        if let value = object["when"] {
            guard let text = value as? String, let parsed = StepCondition(rawValue: text) else {
                throw fail("'when' must be always, ca_cert or dns\((value as? String).map { Suggestion.phrase(for: $0, among: ["always", "ca_cert", "dns"]) } ?? "")")
            }
            when = parsed
        }
        var cache: Bool?
        if let value = object["cache"] {
            guard let flag = value as? Bool else { throw fail("'cache' must be true or false") }
            if flag && builtin != nil { throw fail("'cache' applies to phase steps; builtin steps are never cached") }
            cache = flag
        }
        var inputs: [String]?
        if let value = object["inputs"] {
            guard let list = value as? [String] else { throw fail("'inputs' must be a list of artifact names") }
            inputs = list
        }
        var selectors: PluginManifest.Selectors?
        if let value = object["selectors"] {
            guard let mapping = value as? [String: Any] else { throw fail("'selectors' must be a mapping") }
            func list(_ key: String) throws(EngineError) -> [String]? {
                guard let entry = mapping[key] else { return nil }
                if let text = entry as? String { return [text] }
                guard let items = entry as? [String] else { throw fail("'selectors.\(key)' must be a string or list") }
                return items
            }
            if let unknown = mapping.keys.filter({ !["distro_family", "package_manager", "arch"].contains($0) }).first {
                throw fail("unknown selector '\(unknown)' (use distro_family, package_manager, arch)\(Suggestion.phrase(for: unknown, among: ["distro_family", "package_manager", "arch"]))")
            }
            selectors = PluginManifest.Selectors(distroFamily: try list("distro_family"), packageManager: try list("package_manager"), arch: try list("arch"))
        }
        var config: JSONValue?
        if let value = object["config"] {
            guard let json = jsonValue(value), case .object = json else { throw fail("'config' must be a mapping") }
            config = json
        }
        return PipelineStep(
            name: name, builtin: builtin, phase: phase, plugin: object["plugin"] as? String, selectors: selectors,
            config: config, inputs: inputs, status: object["status"] as? String, timeoutSeconds: timeout, retry: retry, when: when,
            cache: cache)
    }

    static func check(_ pipeline: Pipeline) throws(EngineError) {
        var seen: Set<String> = []
        for step in pipeline.steps where !seen.insert(step.name).inserted {
            throw EngineError(.pipeline, "\(pipeline.source): step '\(step.name)' appears twice; step names must be unique", step: step.name)
        }
        if pipeline.steps.isEmpty { throw EngineError(.pipeline, "\(pipeline.source): the pipeline has no steps") }
    }

    static func isPhaseName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLowercase else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    static func encodeAsDictionary(_ step: PipelineStep) -> [String: Any]? {
        guard let data = try? JSONEncoder().encode(step) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    static func jsonValue(_ value: Any) -> JSONValue? {
        switch value {
        case let text as String: return .string(text)
        case let flag as Bool: return .bool(flag)
        case let number as Int: return .number(Double(number))
        case let number as Double: return .number(number)
        case let list as [Any]: return .array(list.compactMap(jsonValue))
        case let mapping as [String: Any]:
            var object: [String: JSONValue] = [:]
            for (key, item) in mapping { object[key] = jsonValue(item) ?? .null }
            return .object(object)
        case is NSNull: return .null
        default: return nil
        }
    }
}
