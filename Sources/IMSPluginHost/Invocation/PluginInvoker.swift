import CIMSSystem
import Foundation
import IMSProtocol

/// What to ask of a plugin in one call.
public struct InvocationRequest: Sendable {
    public var verb: PluginVerb
    public var phase: String
    /// The payload schema to send; by default the highest one both sides support.
    public var payload: String?
    public var config: JSONValue
    public var inputs: [String: ArtifactRef]
    public var jobID: String
    /// The job workspace; the phase gets `<root>/phases/<step>/{in,out,tmp,state}`.
    public var workspaceRoot: String
    /// The step name used for the phase directory; defaults to the phase name.
    public var step: String?
    /// Secrets the host holds, by name. Only those the manifest declares for the phase are delivered.
    public var secrets: [String: Data]
    public var timeouts: PluginManifest.Timeouts
    /// Which setting gave `timeouts.runSeconds` (e.g. "the step's timeout_seconds"), named in the timeout error;
    /// by default "the request's timeouts.run_seconds".
    public var runLimitSource: String?
    /// Conformance mode: stray stdout is fatal.
    public var strict: Bool
    public var logLevel: LogLevel
    public var sourceDateEpoch: Int?
    /// For conformance tests: claim a different wire version in the request.
    public var protocolVersionOverride: Int?
    /// For conformance tests: send these bytes instead of a well-formed request.
    public var rawRequestLine: [UInt8]?
    /// For conformance tests: start the cancel sequence this long after the start.
    public var cancelAfter: Duration?
    /// For the conformance kit: reshapes the process (argv, environment, stdin) just before it is spawned.
    var adjustSpawn: (@Sendable (inout ProcessSpec) throws(PluginHostError) -> Void)?

    public init(
        verb: PluginVerb = .run, phase: String, payload: String? = nil, config: JSONValue = .object([:]),
        inputs: [String: ArtifactRef] = [:], jobID: String = UUID().uuidString.lowercased(), workspaceRoot: String,
        step: String? = nil, secrets: [String: Data] = [:], timeouts: PluginManifest.Timeouts = .init(),
        strict: Bool = false, logLevel: LogLevel = .info, sourceDateEpoch: Int? = nil
    ) {
        self.verb = verb
        self.phase = phase
        self.payload = payload
        self.config = config
        self.inputs = inputs
        self.jobID = jobID
        self.workspaceRoot = workspaceRoot
        self.step = step
        self.secrets = secrets
        self.timeouts = timeouts
        self.strict = strict
        self.logLevel = logLevel
        self.sourceDateEpoch = sourceDateEpoch
    }
}

/// Runs plugin calls under supervision.
public enum PluginInvoker {
    public static let hostName = "ims"
    public static let hostVersion = "0.1.0"
    public static let defaultRunSeconds: Double = 3600
    public static let defaultStartSeconds: Double = 30
    public static let defaultCancelGraceSeconds: Double = 30
    public static let defaultKillGraceSeconds: Double = 10
    public static let systemPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    /// How a timeout error names the host's own default run limit.
    static let hostDefaultSource = "the host's default run limit"

    /// The workspace directories the phase `step` of a job gets.
    public static func workspace(root: String, step: String) -> Workspace {
        let base = "\(root)/phases/\(step)"
        return Workspace(root: root, in: "\(base)/in", out: "\(base)/out", tmp: "\(base)/tmp", state: "\(base)/state")
    }

    /// Runs `run` or `cleanup` for one phase and waits for the outcome.
    ///
    /// Never throws for anything the plugin does: crashes, hangs and protocol violations come back as
    /// a failed outcome with a structured error. Throws only when the call cannot be set up.
    public static func invoke(
        _ plugin: ResolvedPlugin, _ request: InvocationRequest, observer: any PluginEventObserver = NullObserver()
    ) async throws(PluginHostError) -> InvocationOutcome {
        ims_ignore_sigpipe()
        guard let phaseEntry = plugin.manifest.phase(named: request.phase) else {
            throw .phaseNotOffered(id: plugin.id, phase: request.phase, offered: plugin.manifest.phases.map(\.name))
        }
        let payload = try choosePayload(plugin: plugin, phase: phaseEntry, requested: request.payload)
        let step = request.step ?? request.phase
        let workspace = workspace(root: request.workspaceRoot, step: step)
        try prepare(workspace)

        let secretsDirectory = "\(workspace.root)/phases/\(step)/secrets-\(UUID().uuidString.lowercased())"
        defer { try? FileManager.default.removeItem(atPath: secretsDirectory) }
        var secretRefs: [String: SecretRef] = [:]
        let declared = phaseEntry.permissions?.secrets ?? []
        if !declared.isEmpty {
            try makeDirectory(secretsDirectory, mode: 0o700)
            for secret in declared {
                guard let value = request.secrets[secret.name] else {
                    throw .secretUnavailable(id: plugin.id, name: secret.name)
                }
                let path = "\(secretsDirectory)/\(secret.name)"
                guard FileManager.default.createFile(atPath: path, contents: value, attributes: [.posixPermissions: 0o600]) else {
                    throw .workspace(path: path, reason: "cannot write secret file")
                }
                secretRefs[secret.name] = SecretRef(file: path)
            }
        }

        let timeouts = effectiveTimeouts(manifest: phaseEntry.timeouts, override: request.timeouts)
        let deadline = Date().addingTimeInterval(timeouts.run)
        let version = request.protocolVersionOverride ?? plugin.protocolVersion
        let requestLine: [UInt8]
        if let raw = request.rawRequestLine {
            requestLine = raw
        } else {
            let message = PluginRequest(
                verb: request.verb, phase: request.phase, payload: payload,
                protocol: ProtocolOffer(version: version, features: WireFormat.hostFeatures),
                job: JobInfo(id: request.jobID), deadline: WireFormat.timestamp(deadline), workspace: workspace,
                inputs: request.inputs, config: request.config, secrets: secretRefs,
                host: HostInfo(name: hostName, version: hostVersion), logLevel: request.logLevel.rawValue)
            do {
                requestLine = Array(try WireFormat.encodeLine(HostEnvelope(message: .request(message))))
            } catch {
                throw .invalidRequest(path: request.phase, reason: "cannot encode the request: \(error)")
            }
        }

        var environment = baseEnvironment(plugin: plugin, version: plugin.protocolVersion, logLevel: request.logLevel)
        environment += [
            "HOME=\(workspace.tmp)", "TMPDIR=\(workspace.tmp)", "IMS_PHASE=\(request.phase)",
            "IMS_JOB_ID=\(request.jobID)", "IMS_WORKDIR=\(workspace.root)",
        ]
        if let epoch = request.sourceDateEpoch { environment.append("SOURCE_DATE_EPOCH=\(epoch)") }
        if phaseEntry.permissions?.network == true {
            let inherited = ProcessInfo.processInfo.environment
            for key in ["HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy"] {
                if let value = inherited[key] { environment.append("\(key)=\(value)") }
            }
        }

        var spec = ProcessSpec(
            executable: plugin.entrypointPath, argv: [plugin.entrypointPath, request.verb.rawValue],
            environment: environment, workingDirectory: workspace.tmp, verb: request.verb, requestLine: requestLine,
            pluginID: plugin.id, pluginVersion: plugin.manifest.version, phase: request.phase, negotiatedVersion: plugin.protocolVersion, workspaceRoot: workspace.root,
            startTimeout: .seconds(timeouts.start), runTimeout: .seconds(timeouts.run),
            runLimitSource: runLimitSource(request: request, manifest: phaseEntry.timeouts),
            cancelGrace: .seconds(timeouts.cancelGrace), killGrace: .seconds(timeouts.killGrace), strict: request.strict,
            cancelAfter: request.cancelAfter)
        try request.adjustSpawn?(&spec)
        return await supervise(spec, observer: observer)
    }

    /// Runs `<entrypoint> describe` (no request, no secrets, short timeouts).
    public static func describe(
        _ plugin: ResolvedPlugin, timeoutSeconds: Double = 10, observer: any PluginEventObserver = NullObserver()
    ) async -> InvocationOutcome {
        ims_ignore_sigpipe()
        let temporary = NSTemporaryDirectory()
        var environment = baseEnvironment(plugin: plugin, version: plugin.protocolVersion, logLevel: .info)
        environment += ["HOME=\(temporary)", "TMPDIR=\(temporary)"]
        let spec = ProcessSpec(
            executable: plugin.entrypointPath, argv: [plugin.entrypointPath, PluginVerb.describe.rawValue],
            environment: environment, workingDirectory: plugin.directory, verb: .describe, requestLine: nil,
            pluginID: plugin.id, pluginVersion: plugin.manifest.version, phase: "describe", negotiatedVersion: plugin.protocolVersion, workspaceRoot: nil,
            startTimeout: nil, runTimeout: .seconds(timeoutSeconds), cancelGrace: .seconds(1), killGrace: .seconds(1),
            strict: true)
        return await supervise(spec, observer: observer)
    }

    static func supervise(_ spec: ProcessSpec, observer: any PluginEventObserver) async -> InvocationOutcome {
        ims_become_subreaper()
        let signal = CancellationSignal()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<InvocationOutcome, Never>) in
                let thread = Thread {
                    let supervisor = PluginProcessSupervisor(spec: spec, observer: observer, cancellation: signal)
                    continuation.resume(returning: supervisor.run())
                }
                thread.name = "ims-plugin-\(spec.pluginID)"
                thread.start()
            }
        } onCancel: {
            signal.cancel(reason: "the job was cancelled")
        }
    }

    static func baseEnvironment(plugin: ResolvedPlugin, version: Int, logLevel: LogLevel) -> [String] {
        [
            "PATH=\(systemPath)", "LANG=C.UTF-8", "TZ=UTC", "IMS_PLUGIN=1", "IMS_PROTOCOL=\(version)",
            "IMS_PLUGIN_DIR=\(plugin.directory)", "IMS_LOG_LEVEL=\(logLevel.rawValue)",
        ]
    }

    struct Timeouts {
        var run: Double
        var start: Double
        var cancelGrace: Double
        var killGrace: Double
    }

    static func effectiveTimeouts(manifest: PluginManifest.Timeouts?, override: PluginManifest.Timeouts) -> Timeouts {
        Timeouts(
            run: override.runSeconds ?? manifest?.runSeconds ?? defaultRunSeconds,
            start: override.startSeconds ?? manifest?.startSeconds ?? defaultStartSeconds,
            cancelGrace: override.cancelGraceSeconds ?? manifest?.cancelGraceSeconds ?? defaultCancelGraceSeconds,
            killGrace: override.killGraceSeconds ?? manifest?.killGraceSeconds ?? defaultKillGraceSeconds)
    }

    /// Which setting gave the run limit: the request's (the engine names its own source), the manifest's, or the
    /// host's default.
    static func runLimitSource(request: InvocationRequest, manifest: PluginManifest.Timeouts?) -> String {
        if request.timeouts.runSeconds != nil { return request.runLimitSource ?? "the request's timeouts.run_seconds" }
        if manifest?.runSeconds != nil { return "the plugin manifest's timeouts.run_seconds" }
        return hostDefaultSource
    }

    static func choosePayload(plugin: ResolvedPlugin, phase: PluginManifest.Phase, requested: String?) throws(PluginHostError) -> String {
        let kind = PhaseKind.of(phaseName: phase.name)
        let hostPayloads = [kind.payload(version: 1)]
        if let requested {
            guard phase.payloads.contains(requested) else {
                throw .noSharedPayload(id: plugin.id, phase: phase.name, pluginPayloads: phase.payloads, hostPayloads: [requested])
            }
            return requested
        }
        let shared = phase.payloads.filter(hostPayloads.contains).compactMap(PayloadID.init)
        guard let best = shared.max(by: { $0.version < $1.version }) else {
            throw .noSharedPayload(id: plugin.id, phase: phase.name, pluginPayloads: phase.payloads, hostPayloads: hostPayloads)
        }
        return best.description
    }

    static func prepare(_ workspace: Workspace) throws(PluginHostError) {
        for directory in [workspace.root, workspace.in, workspace.out, workspace.tmp, workspace.state] {
            try makeDirectory(directory, mode: 0o755)
        }
    }

    static func makeDirectory(_ path: String, mode: Int) throws(PluginHostError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: mode])
        } catch {
            throw .workspace(path: path, reason: error.localizedDescription)
        }
    }
}
