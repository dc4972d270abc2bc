import Foundation
import IMSProtocol

/// Checks `plugin.json` against the rules of `protocol/schemas/manifest.v1.schema.json`.
///
/// The JSON Schema is normative; this validator enforces the same rules in-process so the
/// host never needs to run anything to vet a plugin. The test suite runs both on the same
/// manifests so they cannot drift apart.
public enum ManifestValidator {
    static let topLevelKeys: Set<String> = [
        "manifest_version", "id", "version", "name", "description", "vendor", "entrypoint",
        "entrypoint_sha256", "protocol", "phases", "requires",
    ]
    static let phaseKeys: Set<String> = ["name", "payloads", "selectors", "timeouts", "permissions", "description", "cacheable"]
    static let selectorKeys: Set<String> = ["distro_family", "package_manager", "arch"]
    static let timeoutKeys: Set<String> = ["run_seconds", "start_seconds", "cancel_grace_seconds", "kill_grace_seconds"]
    static let permissionKeys: Set<String> = ["root", "network", "devices", "secrets", "reason"]

    /// Decodes and validates a manifest; throws `PluginHostError.invalidManifest` listing every problem.
    public static func load(data: Data, path: String) throws(PluginHostError) -> PluginManifest {
        let raw: JSONValue
        do {
            raw = try JSONDecoder().decode(JSONValue.self, from: data)
        } catch {
            throw .invalidManifest(path: path, problems: ["not valid JSON"])
        }
        var problems = structuralProblems(raw)
        var manifest: PluginManifest?
        if problems.isEmpty {
            do {
                manifest = try JSONDecoder().decode(PluginManifest.self, from: data)
            } catch {
                problems.append("does not match the manifest schema")
            }
        }
        if let manifest { problems += semanticProblems(manifest) }
        guard problems.isEmpty, let manifest else {
            throw .invalidManifest(path: path, problems: problems)
        }
        return manifest
    }

    static func structuralProblems(_ raw: JSONValue) -> [String] {
        var problems: [String] = []
        guard let object = raw.objectValue else { return ["the manifest must be a JSON object"] }
        problems += unknownKeys(object, allowed: topLevelKeys, at: "")
        func requireString(_ key: String) {
            if object[key] == nil {
                problems.append("missing required field '\(key)'")
            } else if object[key]?.stringValue == nil {
                problems.append("'\(key)' must be a string")
            }
        }
        if let version = object["manifest_version"] {
            if version.numberValue != Double(WireFormat.manifestVersion) {
                problems.append("'manifest_version' must be \(WireFormat.manifestVersion)")
            }
        } else {
            problems.append("missing required field 'manifest_version'")
        }
        requireString("id")
        requireString("version")
        requireString("entrypoint")
        for key in ["name", "description", "vendor", "entrypoint_sha256"] where object[key] != nil {
            if object[key]?.stringValue == nil { problems.append("'\(key)' must be a string") }
        }
        if let requires = object["requires"], !isStringArray(requires) {
            problems.append("'requires' must be an array of command names")
        }
        if let proto = object["protocol"] {
            if let protoObject = proto.objectValue {
                problems += unknownKeys(protoObject, allowed: ["versions", "features"], at: "protocol.")
                let versions = protoObject["versions"]?.arrayValue
                if versions == nil || versions?.isEmpty == true
                    || versions?.contains(where: { ($0.numberValue ?? 0) < 1 || $0.numberValue?.rounded() != $0.numberValue }) == true
                {
                    problems.append("'protocol.versions' must be a non-empty array of integers >= 1")
                }
                if let features = protoObject["features"], !isStringArray(features) {
                    problems.append("'protocol.features' must be an array of strings")
                }
            } else {
                problems.append("'protocol' must be an object")
            }
        } else {
            problems.append("missing required field 'protocol'")
        }
        guard let phases = object["phases"]?.arrayValue, !phases.isEmpty else {
            problems.append("'phases' must be a non-empty array")
            return problems
        }
        for (index, phase) in phases.enumerated() {
            let at = "phases[\(index)]"
            guard let phaseObject = phase.objectValue else {
                problems.append("'\(at)' must be an object")
                continue
            }
            problems += unknownKeys(phaseObject, allowed: phaseKeys, at: "\(at).")
            if phaseObject["name"]?.stringValue == nil { problems.append("'\(at).name' must be a string") }
            if let cacheable = phaseObject["cacheable"], cacheable.boolValue == nil { problems.append("'\(at).cacheable' must be true or false") }
            if let payloads = phaseObject["payloads"]?.arrayValue, !payloads.isEmpty, isStringArray(.array(payloads)) {
            } else {
                problems.append("'\(at).payloads' must be a non-empty array of strings")
            }
            if let selectors = phaseObject["selectors"] {
                if let selectorObject = selectors.objectValue {
                    problems += unknownKeys(selectorObject, allowed: selectorKeys, at: "\(at).selectors.")
                    for (key, value) in selectorObject where !isStringArray(value) {
                        problems.append("'\(at).selectors.\(key)' must be an array of strings")
                    }
                } else {
                    problems.append("'\(at).selectors' must be an object")
                }
            }
            if let timeouts = phase["timeouts"] {
                if let timeoutObject = timeouts.objectValue {
                    problems += unknownKeys(timeoutObject, allowed: timeoutKeys, at: "\(at).timeouts.")
                    for (key, value) in timeoutObject where (value.numberValue ?? 0) <= 0 {
                        problems.append("'\(at).timeouts.\(key)' must be a number of seconds > 0")
                    }
                } else {
                    problems.append("'\(at).timeouts' must be an object")
                }
            }
            if let permissions = phase["permissions"] {
                if let permissionObject = permissions.objectValue {
                    problems += unknownKeys(permissionObject, allowed: permissionKeys, at: "\(at).permissions.")
                    for key in ["root", "network"] where permissionObject[key] != nil && permissionObject[key]?.boolValue == nil {
                        problems.append("'\(at).permissions.\(key)' must be true or false")
                    }
                    if let secrets = permissionObject["secrets"] {
                        let valid = secrets.arrayValue?.allSatisfy {
                            $0["name"]?.stringValue != nil && $0["reason"]?.stringValue != nil
                        } ?? false
                        if !valid { problems.append("'\(at).permissions.secrets' must be an array of {name, reason}") }
                    }
                } else {
                    problems.append("'\(at).permissions' must be an object")
                }
            }
        }
        return problems
    }

    static func semanticProblems(_ manifest: PluginManifest) -> [String] {
        var problems: [String] = []
        if manifest.id.count > 128 || !isValidID(manifest.id) {
            problems.append("'id' \"\(manifest.id)\" must be lowercase letters and digits separated by '.', '-' or '_'")
        }
        if !isValidVersion(manifest.version) {
            problems.append("'version' \"\(manifest.version)\" must be a dotted version such as 1.2.0 (optionally with -suffix)")
        }
        if manifest.requires?.contains(where: \.isEmpty) == true {
            problems.append("'requires' must not contain empty command names")
        }
        let entry = manifest.entrypoint
        if entry.isEmpty || entry.hasPrefix("/") || entry.split(separator: "/").contains("..") {
            problems.append("'entrypoint' \"\(entry)\" must be a relative path inside the plugin directory")
        }
        if let sha = manifest.entrypointSha256, !(sha.count == 64 && sha.allSatisfy { $0.isHexDigit && !$0.isUppercase }) {
            problems.append("'entrypoint_sha256' must be 64 lowercase hex digits")
        }
        var seen: Set<String> = []
        for phase in manifest.phases {
            if !isValidPhaseName(phase.name) {
                problems.append("phase name \"\(phase.name)\" must match [a-z][a-z0-9-]*")
            }
            if !seen.insert(phase.name).inserted {
                problems.append("phase '\(phase.name)' is declared twice")
            }
            let kind = PhaseKind.of(phaseName: phase.name)
            for payload in phase.payloads {
                guard let parsed = PayloadID(payload), isValidPhaseName(parsed.kind) else {
                    problems.append("phase '\(phase.name)': payload \"\(payload)\" must look like 'kind/v1'")
                    continue
                }
                if parsed.kind != kind.rawValue {
                    problems.append("phase '\(phase.name)': payload '\(payload)' does not belong to a \(kind.rawValue) phase (expected \(kind.rawValue)/vN)")
                }
            }
        }
        return problems
    }

    /// Lowercase letters and digits in runs separated by single '.', '-' or '_'.
    public static func isValidID(_ id: String) -> Bool {
        guard !id.isEmpty else { return false }
        var previousWasSeparator = true
        for character in id {
            if character.isASCII && (character.isLowercase || character.isNumber) {
                previousWasSeparator = false
            } else if character == "." || character == "-" || character == "_" {
                if previousWasSeparator { return false }
                previousWasSeparator = true
            } else {
                return false
            }
        }
        return !previousWasSeparator
    }

    /// Digits separated by dots, optionally followed by `-`, `+` or `~` and a suffix (the schema's pattern).
    public static func isValidVersion(_ version: String) -> Bool {
        let separator = version.firstIndex(where: { $0 == "-" || $0 == "+" || $0 == "~" })
        let numeric = version[..<(separator ?? version.endIndex)]
        let numbersOK = !numeric.isEmpty
            && numeric.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }
        guard numbersOK else { return false }
        guard let separator else { return true }
        let suffix = version[version.index(after: separator)...]
        return !suffix.isEmpty && suffix.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".+~_-".contains($0)) }
    }

    /// A lowercase letter followed by lowercase letters, digits and '-'.
    public static func isValidPhaseName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLowercase else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }
    }

    private static func unknownKeys(_ object: [String: JSONValue], allowed: Set<String>, at prefix: String) -> [String] {
        object.keys.sorted().compactMap { key in
            if allowed.contains(key) || key.hasPrefix("x-") { return nil }
            return "unknown field '\(prefix)\(key)'"
        }
    }

    private static func isStringArray(_ value: JSONValue) -> Bool {
        value.arrayValue?.allSatisfy { $0.stringValue != nil } ?? false
    }
}
