import Foundation
import IMSProtocol

typealias CaseResult = ConformanceChecker.CaseResult
typealias CallResult = Result<InvocationOutcome, PluginHostError>

/// One run of the conformance kit over one plugin phase: its workspace, its requests and the cases.
struct CheckSession: Sendable {
    let checker: ConformanceChecker
    let plugin: ResolvedPlugin
    let phase: PluginManifest.Phase
    let workspaceRoot = NSTemporaryDirectory() + "ims-check-" + UUID().uuidString.lowercased()

    /// A call that overruns its run timeout has already failed its case: it is stopped with these short graces.
    static let overrunGraceSeconds = 0.5

    /// The request every case starts from: the checker's config, inputs and payload (by default an empty `config`
    /// and no inputs), its secrets and a placeholder for every other declared secret.
    func request(_ step: String, verb: PluginVerb = .run, graces: (cancel: Double, kill: Double)? = nil) -> InvocationRequest {
        let timeouts = PluginManifest.Timeouts(
            runSeconds: checker.runTimeoutSeconds, startSeconds: min(checker.runTimeoutSeconds, 10),
            cancelGraceSeconds: graces?.cancel ?? Self.overrunGraceSeconds, killGraceSeconds: graces?.kill ?? Self.overrunGraceSeconds)
        let base = checker.request
        var request = InvocationRequest(
            verb: verb, phase: phase.name, payload: base.payload, config: base.config, inputs: base.inputs,
            workspaceRoot: workspaceRoot, step: step, timeouts: timeouts, strict: true)
        for secret in declaredSecrets {
            request.secrets[secret] = base.secrets[secret] ?? Data("conformance-placeholder".utf8)
        }
        return request
    }

    var declaredSecrets: [String] { (phase.permissions?.secrets ?? []).map(\.name) }

    func removeWorkspace() {
        try? FileManager.default.removeItem(atPath: workspaceRoot)
    }

    /// Runs one call and times it.
    func call(_ request: InvocationRequest, observer: any PluginEventObserver = NullObserver()) async -> (CallResult, Double) {
        let started = ContinuousClock.now
        do {
            let outcome = try await PluginInvoker.invoke(plugin, request, observer: observer)
            return (.success(outcome), Self.seconds(since: started))
        } catch {
            return (.failure(error), Self.seconds(since: started))
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        seconds(start.duration(to: .now))
    }

    static func seconds(_ duration: Duration) -> Double {
        ((Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18) * 1000).rounded() / 1000
    }

    // MARK: §13.2 usage

    /// The entrypoint without `IMS_PLUGIN` (asked to describe itself), and with an unknown verb: exit 2, nothing on stdout.
    func usageCases() async -> [CaseResult] {
        let unmarked = await usageCase("usage_without_ims_plugin", "run without IMS_PLUGIN") { spec in
            spec.environment.removeAll { $0.hasPrefix("IMS_PLUGIN=") }
            spec.argv = [spec.executable, PluginVerb.describe.rawValue]
            spec.verb = .describe
        }
        let unknownVerb = await usageCase("usage_unknown_verb", "run with an unknown verb") { spec in
            spec.argv = [spec.executable, "ims-check-unknown-verb"]
        }
        return [unmarked, unknownVerb]
    }

    private func usageCase(_ name: String, _ what: String, _ reshape: @escaping @Sendable (inout ProcessSpec) -> Void) async -> CaseResult {
        var request = self.request("check-usage")
        request.adjustSpawn = { spec in
            reshape(&spec)
            spec.requestLine = nil
        }
        let (attempt, seconds) = await call(request)
        switch attempt {
        case .failure(let error):
            return CaseResult(name: name, passed: false, detail: error.description, seconds: seconds)
        case .success(let outcome):
            let quiet = outcome.messageCount == 0 && outcome.strayLines == 0
            if quiet, outcome.error?.code == HostErrorCode.pluginUsage {
                return CaseResult(name: name, passed: true, detail: "\(what), it exited 2 and wrote nothing on stdout", seconds: seconds)
            }
            var problems: [String] = []
            if outcome.exitStatus != .exited(PluginExitCode.usage) {
                problems.append("\(outcome.exitStatus.map(\.description) ?? "no exit status"), expected exit code 2")
            }
            if !quiet {
                problems.append("it wrote \(outcome.messageCount) protocol message(s) and \(outcome.strayLines) other line(s) on stdout")
            }
            if let error = outcome.error, error.code != HostErrorCode.pluginUsage, outcome.hostSynthesized {
                problems.append("\(error.message) [\(error.code)]")
            }
            return CaseResult(name: name, passed: false, detail: "\(what): " + problems.joined(separator: "; "), seconds: seconds)
        }
    }

    // MARK: §13.3 describe

    func describeCase() async -> CaseResult {
        let started = ContinuousClock.now
        let outcome = await PluginInvoker.describe(plugin, timeoutSeconds: checker.runTimeoutSeconds)
        let seconds = Self.seconds(since: started)
        guard case .described(let description) = outcome.status else {
            let error = outcome.error
            return CaseResult(name: "describe_agrees", passed: false, detail: "describe failed: \(error?.message ?? "no describe message") [\(error?.code ?? "")]", seconds: seconds)
        }
        let problems = ManifestAgreement.differences(description, manifest: plugin.manifest)
        return CaseResult(
            name: "describe_agrees", passed: problems.isEmpty,
            detail: problems.isEmpty ? "describe matches plugin.json" : problems.joined(separator: "; "), seconds: seconds)
    }

    // MARK: §13.4 and §13.5, from one plain run

    /// hello first and exactly one terminal message, in strict mode. Returns the run for the forward-compatibility case.
    func plainRunCases() async -> (CallResult, [CaseResult]) {
        let (run, seconds) = await call(request("check-run"))
        switch run {
        case .failure(let error):
            return (run, [
                CaseResult(name: "hello_first", passed: false, detail: error.description, seconds: seconds),
                CaseResult(name: "one_terminal_message", passed: false, detail: error.description, seconds: seconds),
            ])
        case .success(let outcome):
            let protocolBreach = outcome.hostSynthesized ? outcome.error : nil
            let helloOK = outcome.hello != nil && protocolBreach?.code != HostErrorCode.missingHello
            let terminalOK = !outcome.hostSynthesized
            return (run, [
                CaseResult(
                    name: "hello_first", passed: helloOK,
                    detail: helloOK ? "hello was the first message" : (protocolBreach?.message ?? "the plugin ended without sending hello first"),
                    seconds: seconds),
                CaseResult(
                    name: "one_terminal_message", passed: terminalOK,
                    detail: terminalOK
                        ? "exactly one \(outcome.succeeded ? "result" : "error") and a matching exit code"
                        : "\(protocolBreach?.message ?? "host-made error") [\(protocolBreach?.code ?? "")]",
                    seconds: seconds),
            ])
        }
    }

    // MARK: §13.6 and §13.7

    /// A request that is not a valid request gets a structured error.
    func badRequestCase() async -> CaseResult {
        var bad = request("check-bad-request")
        bad.rawRequestLine = Array("{\"ims\":1,\"type\":\"request\",\"data\":{\"verb\":\"run\"}}\n".utf8)
        return await expectPluginError(bad, name: "bad_request") { outcome, error in
            guard [ErrorCategory.protocol, .config, .user].contains(error.category) else {
                return "category is '\(error.category.rawValue)', expected protocol"
            }
            guard case .exited(let code)? = outcome.exitStatus, code == PluginExitCode.protocolError || code == PluginExitCode.failure else {
                return "exit status \(outcome.exitStatus.map(\.description) ?? "unknown"), expected 3"
            }
            return nil
        }
    }

    /// A version mismatch gets the documented error and exit code.
    func versionMismatchCase() async -> CaseResult {
        var mismatch = request("check-version")
        mismatch.protocolVersionOverride = 999
        return await expectPluginError(mismatch, name: "version_mismatch") { outcome, error in
            guard error.code == HostErrorCode.unsupportedVersion else {
                return "error code is '\(error.code)', expected '\(HostErrorCode.unsupportedVersion)'"
            }
            guard outcome.exitStatus == .exited(PluginExitCode.protocolError) else {
                return "exit status \(outcome.exitStatus.map(\.description) ?? "unknown"), expected exit code 3"
            }
            return nil
        }
    }

    private func expectPluginError(
        _ request: InvocationRequest, name: String, _ verify: (InvocationOutcome, ErrorInfo) -> String?
    ) async -> CaseResult {
        let (attempt, seconds) = await call(request)
        switch attempt {
        case .failure(let error):
            return CaseResult(name: name, passed: false, detail: error.description, seconds: seconds)
        case .success(let outcome):
            guard let error = outcome.error else {
                return CaseResult(name: name, passed: false, detail: "the plugin accepted the request and returned a result", seconds: seconds)
            }
            if outcome.hostSynthesized {
                return CaseResult(name: name, passed: false, detail: "no structured error from the plugin: \(error.message) [\(error.code)]", seconds: seconds)
            }
            if let problem = verify(outcome, error) {
                return CaseResult(name: name, passed: false, detail: problem, seconds: seconds)
            }
            return CaseResult(name: name, passed: true, detail: "structured error \(error.code) (\(error.category.rawValue)), \(outcome.exitStatus.map(\.description) ?? "")", seconds: seconds)
        }
    }

    // MARK: §13.9 cleanup

    /// cleanup is idempotent: twice on a workspace where run never happened, then once after the cancelled run.
    func cleanupCase(afterCancelledStep cancelledStep: String) async -> CaseResult {
        var problems: [String] = []
        var total = 0.0
        for (attempt, step) in [("fresh workspace, first", "check-cleanup"), ("fresh workspace, second", "check-cleanup"), ("after the cancelled run", cancelledStep)] {
            let (cleanup, seconds) = await call(request(step, verb: .cleanup))
            total += seconds
            switch cleanup {
            case .failure(let error): problems.append("\(attempt): \(error.description)")
            case .success(let outcome):
                if let error = outcome.error { problems.append("\(attempt): \(error.message) [\(error.code)]") }
            }
        }
        return CaseResult(
            name: "cleanup_idempotent", passed: problems.isEmpty,
            detail: problems.isEmpty ? "cleanup succeeded twice on a fresh workspace and once after the cancelled run" : problems.joined(separator: "; "),
            seconds: total)
    }

    // MARK: §13.10 forward compatibility

    /// A request with unknown fields (envelope, data, protocol, job) and an unknown offered feature gets the same
    /// verdict as the plain run.
    func forwardCompatibilityCase(comparedWith plain: CallResult) async -> CaseResult {
        var request = self.request("check-forward")
        request.adjustSpawn = { spec throws(PluginHostError) in
            guard let line = spec.requestLine else { return }
            spec.requestLine = try Self.withUnknownFields(line)
        }
        let (run, seconds) = await call(request)
        let expected = Self.verdict(of: plain)
        let got = Self.verdict(of: run)
        if expected == got {
            return CaseResult(name: "forward_compatible", passed: true, detail: "unknown request fields and features were ignored: \(got), as for the plain request", seconds: seconds)
        }
        var detail = "the plain request gave \(expected), the one with unknown fields and features gave \(got)"
        if case .success(let outcome) = run, let error = outcome.error {
            detail += ": \(error.message)"
        }
        return CaseResult(name: "forward_compatible", passed: false, detail: detail, seconds: seconds)
    }

    /// The fields and feature a future host might send.
    static let unknownFeature = "x.ims-check.unknown-feature"

    static func withUnknownFields(_ line: [UInt8]) throws(PluginHostError) -> [UInt8] {
        let unknown: JSONValue = ["ims_check_unknown": ["nested": [1, "two", .null]]]
        do {
            guard case .object(var envelope) = try JSONDecoder().decode(JSONValue.self, from: Data(line)),
                case .object(var data)? = envelope["data"],
                case .object(var offer)? = data["protocol"],
                case .object(var job)? = data["job"]
            else {
                throw PluginHostError.invalidRequest(path: "request", reason: "the request line is not a request envelope")
            }
            offer["features"] = .array((offer["features"]?.arrayValue ?? []) + [.string(unknownFeature)])
            offer["ims_check_unknown"] = true
            job["ims_check_unknown"] = "unknown job field"
            data["protocol"] = .object(offer)
            data["job"] = .object(job)
            data["ims_check_unknown_field"] = unknown
            envelope["data"] = .object(data)
            envelope["ims_check_unknown_field"] = unknown
            return Array(try WireFormat.encodeLine(JSONValue.object(envelope)))
        } catch let error as PluginHostError {
            throw error
        } catch {
            throw .invalidRequest(path: "request", reason: "cannot add unknown fields to the request: \(error)")
        }
    }

    /// What a call came to, for comparing two calls: a result, or the error's code.
    static func verdict(of call: CallResult) -> String {
        switch call {
        case .failure(let error): return "no call (\(error.description))"
        case .success(let outcome):
            guard let error = outcome.error else { return "a result" }
            return "error \(error.code)"
        }
    }

    // MARK: §13.11 secrets

    /// A random token as every declared secret; it must not turn up in the plugin's environment or argv (nor its
    /// children's), nor in anything the host records of the call (stdout messages, stderr, the outcome).
    func secretsCase() async -> CaseResult {
        guard !declaredSecrets.isEmpty else {
            return CaseResult(name: "secrets_not_exposed", verdict: .notExercised, detail: "phase '\(phase.name)' declares no secret", seconds: 0)
        }
        let token = "ims-check-secret-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        var request = self.request("check-secrets")
        for secret in declaredSecrets {
            request.secrets[secret] = Data(token.utf8)
        }
        let watch = CallWatch(secretToken: token)
        let started = ContinuousClock.now
        let run = await WatchedCall.run(plugin, request, watch: watch, interval: .milliseconds(50)) { watch in
            watch.sampleGroup()
            return .keepWatching
        }
        let seconds = Self.seconds(since: started)
        if case .failure(let error) = run {
            return CaseResult(name: "secrets_not_exposed", passed: false, detail: error.description, seconds: seconds)
        }
        let places = watch.secretSeenIn
        let names = declaredSecrets.joined(separator: ", ")
        guard places.isEmpty else {
            return CaseResult(name: "secrets_not_exposed", passed: false, detail: "the content of secret \(names) appeared in " + places.joined(separator: ", "), seconds: seconds)
        }
        return CaseResult(
            name: "secrets_not_exposed", passed: true,
            detail: "the content of secret \(names) appeared neither in the environment or argv of the plugin's processes nor in its stdout or stderr",
            seconds: seconds)
    }
}
