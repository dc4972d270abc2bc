import Foundation
import IMSProtocol

/// The conformance kit behind `ims plugins check`: runs a plugin through the protocol's cases.
public struct ConformanceChecker: Sendable {
    /// One case's verdict.
    public struct CaseResult: Sendable, Codable {
        public var name: String
        public var passed: Bool
        public var detail: String
        public var seconds: Double
    }

    public var runTimeoutSeconds: Double
    public var cancelGraceSeconds: Double

    public init(runTimeoutSeconds: Double = 10, cancelGraceSeconds: Double = 5) {
        self.runTimeoutSeconds = runTimeoutSeconds
        self.cancelGraceSeconds = cancelGraceSeconds
    }

    /// Checks the plugin in `directory`; every case runs in bounded time.
    public func check(directory: String) async -> [CaseResult] {
        var results: [CaseResult] = []
        let discovered = PluginCatalog.inspect(directory: directory, origin: .explicit)
        let plugin: ResolvedPlugin
        do {
            plugin = try PluginCatalog.resolve(discovered)
            results.append(CaseResult(name: "manifest", passed: true, detail: "plugin.json is valid and the entrypoint checks out", seconds: 0))
        } catch {
            results.append(CaseResult(name: "manifest", passed: false, detail: error.description, seconds: 0))
            return results
        }
        results.append(await describeCase(plugin))

        let workspaceRoot = NSTemporaryDirectory() + "ims-check-" + UUID().uuidString.lowercased()
        defer { try? FileManager.default.removeItem(atPath: workspaceRoot) }
        guard let phase = plugin.manifest.phases.first else { return results }
        let timeouts = PluginManifest.Timeouts(
            runSeconds: runTimeoutSeconds, startSeconds: min(runTimeoutSeconds, 10),
            cancelGraceSeconds: cancelGraceSeconds, killGraceSeconds: 2)
        func request(_ step: String, verb: PluginVerb = .run) -> InvocationRequest {
            var request = InvocationRequest(verb: verb, phase: phase.name, workspaceRoot: workspaceRoot, step: step, timeouts: timeouts, strict: true)
            for secret in phase.permissions?.secrets ?? [] {
                request.secrets[secret.name] = Data("conformance-placeholder".utf8)
            }
            return request
        }

        // hello first and exactly one terminal message, in strict mode.
        let (run, runSeconds) = await timed { () async throws(PluginHostError) in try await PluginInvoker.invoke(plugin, request("check-run")) }
        switch run {
        case .failure(let error):
            results.append(CaseResult(name: "hello_first", passed: false, detail: error.description, seconds: runSeconds))
        case .success(let outcome):
            let protocolBreach = outcome.hostSynthesized ? outcome.error : nil
            let helloOK = outcome.hello != nil && protocolBreach?.code != HostErrorCode.missingHello
            results.append(CaseResult(
                name: "hello_first", passed: helloOK,
                detail: helloOK ? "hello was the first message" : (protocolBreach?.message ?? "the plugin ended without sending hello first"),
                seconds: runSeconds))
            let terminalOK = !outcome.hostSynthesized
            results.append(CaseResult(
                name: "one_terminal_message", passed: terminalOK,
                detail: terminalOK
                    ? "exactly one \(outcome.succeeded ? "result" : "error") and a matching exit code"
                    : "\(protocolBreach?.message ?? "host-made error") [\(protocolBreach?.code ?? "")]",
                seconds: runSeconds))
        }

        // A request that is not a valid request gets a structured error.
        var bad = request("check-bad-request")
        bad.rawRequestLine = Array("{\"ims\":1,\"type\":\"request\",\"data\":{\"verb\":\"run\"}}\n".utf8)
        results.append(await expectPluginError(plugin, bad, name: "bad_request") { outcome, error in
            guard [ErrorCategory.protocol, .config, .user].contains(error.category) else {
                return "category is '\(error.category.rawValue)', expected protocol"
            }
            guard case .exited(let code)? = outcome.exitStatus, code == PluginExitCode.protocolError || code == PluginExitCode.failure else {
                return "exit status \(outcome.exitStatus.map(\.description) ?? "unknown"), expected 3"
            }
            return nil
        })

        // A version mismatch gets the documented error and exit code.
        var mismatch = request("check-version")
        mismatch.protocolVersionOverride = 999
        results.append(await expectPluginError(plugin, mismatch, name: "version_mismatch") { outcome, error in
            guard error.code == HostErrorCode.unsupportedVersion else {
                return "error code is '\(error.code)', expected '\(HostErrorCode.unsupportedVersion)'"
            }
            guard outcome.exitStatus == .exited(PluginExitCode.protocolError) else {
                return "exit status \(outcome.exitStatus.map(\.description) ?? "unknown"), expected exit code 3"
            }
            return nil
        })

        results.append(await cancelCase(plugin, request("check-cancel")))

        // cleanup is idempotent: twice on a workspace where run never happened.
        var cleanupResults: [String] = []
        var cleanupSeconds = 0.0
        for attempt in 1...2 {
            let (cleanup, seconds) = await timed { () async throws(PluginHostError) in try await PluginInvoker.invoke(plugin, request("check-cleanup", verb: .cleanup)) }
            cleanupSeconds += seconds
            switch cleanup {
            case .failure(let error): cleanupResults.append("attempt \(attempt): \(error.description)")
            case .success(let outcome):
                if let error = outcome.error { cleanupResults.append("attempt \(attempt): \(error.message) [\(error.code)]") }
            }
        }
        results.append(CaseResult(
            name: "cleanup_idempotent", passed: cleanupResults.isEmpty,
            detail: cleanupResults.isEmpty ? "cleanup succeeded twice on a fresh workspace" : cleanupResults.joined(separator: "; "),
            seconds: cleanupSeconds))
        return results
    }

    private func describeCase(_ plugin: ResolvedPlugin) async -> CaseResult {
        let started = ContinuousClock.now
        let outcome = await PluginInvoker.describe(plugin, timeoutSeconds: runTimeoutSeconds)
        let seconds = Self.seconds(since: started)
        guard case .described(let description) = outcome.status else {
            let error = outcome.error
            return CaseResult(name: "describe_agrees", passed: false, detail: "describe failed: \(error?.message ?? "no describe message") [\(error?.code ?? "")]", seconds: seconds)
        }
        var problems: [String] = []
        let manifest = plugin.manifest
        if description.plugin.id.lowercased() != manifest.id.lowercased() {
            problems.append("id '\(description.plugin.id)' differs from the manifest's '\(manifest.id)'")
        }
        if description.plugin.version != manifest.version {
            problems.append("version '\(description.plugin.version)' differs from the manifest's '\(manifest.version)'")
        }
        if Set(description.protocol.versions) != Set(manifest.protocol.versions) {
            problems.append("protocol versions \(description.protocol.versions) differ from the manifest's \(manifest.protocol.versions)")
        }
        let described = Dictionary(description.phases.map { ($0.name, Set($0.payloads)) }, uniquingKeysWith: { a, _ in a })
        let declared = Dictionary(manifest.phases.map { ($0.name, Set($0.payloads)) }, uniquingKeysWith: { a, _ in a })
        if described != declared {
            problems.append("phases \(described.keys.sorted()) with their payloads differ from the manifest's \(declared.keys.sorted())")
        }
        let missingFeatures = Set(manifest.protocol.features ?? []).subtracting(description.protocol.features)
        if !missingFeatures.isEmpty {
            problems.append("describe does not list features the manifest declares: \(missingFeatures.sorted().joined(separator: ", "))")
        }
        return CaseResult(
            name: "describe_agrees", passed: problems.isEmpty,
            detail: problems.isEmpty ? "describe matches plugin.json" : problems.joined(separator: "; "), seconds: seconds)
    }

    private func cancelCase(_ plugin: ResolvedPlugin, _ base: InvocationRequest) async -> CaseResult {
        var request = base
        request.cancelAfter = .milliseconds(100)
        let recorder = StopRecorder()
        let started = ContinuousClock.now
        let outcome: InvocationOutcome
        do {
            outcome = try await PluginInvoker.invoke(plugin, request, observer: recorder)
        } catch {
            return CaseResult(name: "cancel_honoured", passed: false, detail: error.description, seconds: Self.seconds(since: started))
        }
        let seconds = Self.seconds(since: started)
        let steps = recorder.steps
        // Only a cancel message the plugin received and outlived counts against it: when the plugin had already
        // closed its stdin (it was finishing), the host signals at once, and the outcome below decides.
        if steps.contains("cancel_message"), steps.contains("sigterm") || steps.contains("sigkill") {
            return CaseResult(
                name: "cancel_honoured", passed: false,
                detail: "the plugin did not stop within \(Int(cancelGraceSeconds)) s of the cancel message and had to be signalled (\(steps.joined(separator: " → ")))",
                seconds: seconds)
        }
        if outcome.succeeded {
            return CaseResult(name: "cancel_honoured", passed: true, detail: "the plugin finished before the cancel took effect", seconds: seconds)
        }
        let cause = outcome.error?.causes?.first
        if outcome.error?.code == HostErrorCode.cancelled, let cause {
            // The plugin answered the cancel with its own terminal message before any signal.
            let detail = cause.code == HostErrorCode.cancelled
                ? "the plugin stopped within the grace period after the cancel message"
                : "the plugin finished (\(cause.code)) within the grace period after the cancel message"
            return CaseResult(name: "cancel_honoured", passed: true, detail: detail, seconds: seconds)
        }
        if outcome.hostSynthesized {
            return CaseResult(
                name: "cancel_honoured", passed: false,
                detail: "no terminal message after the cancel: \(outcome.error?.message ?? "") (host: \(steps.isEmpty ? "no stop steps" : steps.joined(separator: " → ")); \(outcome.exitStatus.map(\.description) ?? "exit unknown"))",
                seconds: seconds)
        }
        return CaseResult(name: "cancel_honoured", passed: true, detail: "the plugin finished before the cancel took effect", seconds: seconds)
    }

    private func expectPluginError(
        _ plugin: ResolvedPlugin, _ request: InvocationRequest, name: String,
        _ verify: (InvocationOutcome, ErrorInfo) -> String?
    ) async -> CaseResult {
        let (attempt, seconds) = await timed { () async throws(PluginHostError) in try await PluginInvoker.invoke(plugin, request) }
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

    private func timed(_ body: () async throws(PluginHostError) -> InvocationOutcome) async -> (Result<InvocationOutcome, PluginHostError>, Double) {
        let started = ContinuousClock.now
        do {
            let outcome = try await body()
            return (.success(outcome), Self.seconds(since: started))
        } catch {
            return (.failure(error), Self.seconds(since: started))
        }
    }

    static func seconds(since start: ContinuousClock.Instant) -> Double {
        let elapsed = start.duration(to: .now)
        return ((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * 1000).rounded() / 1000
    }
}

/// Collects the stop steps the host took.
final class StopRecorder: PluginEventObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [String] = []

    var steps: [String] {
        lock.lock()
        defer { lock.unlock() }
        return recorded
    }

    func receive(_ event: TimedPluginEvent) {
        if case .stopping(_, let step) = event.event {
            lock.lock()
            recorded.append(step)
            lock.unlock()
        }
    }
}
