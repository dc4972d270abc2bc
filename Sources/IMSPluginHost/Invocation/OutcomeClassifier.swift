import Foundation
import IMSProtocol

/// Why the host began to stop a plugin.
enum StopReason: Sendable, Equatable {
    case startTimeout
    case runTimeout
    case cancelled(String)
    case violation

    /// The reason as the cancel message and the `stopping` events state it.
    var explanation: String {
        switch self {
        case .startTimeout: "no hello within the start timeout"
        case .runTimeout: "the deadline passed"
        case .cancelled(let text): text
        case .violation: "protocol violation"
        }
    }
}

/// The plugin call an error made by the host is about: every such error carries these details.
struct HostErrorContext: Sendable {
    var pluginID: String
    var pluginVersion: String
    var phase: String
    var argv: [String]

    /// An error made by the host, with the call's details, the exit status and the stderr tail.
    func error(
        _ code: String, _ category: ErrorCategory, _ message: String, exit: ExitStatus? = nil, stderrTail: String,
        cause: ErrorInfo? = nil, extra: [String: JSONValue] = [:], hint: String? = nil
    ) -> ErrorInfo {
        var details: [String: JSONValue] = [
            "plugin_id": .string(pluginID),
            "plugin_version": .string(pluginVersion),
            "phase": .string(phase),
            "argv": .array(argv.map { .string($0) }),
        ]
        if let exit {
            switch exit {
            case .exited(let code): details["exit_code"] = .number(Double(code))
            case .signaled(let signal):
                details["signal"] = .number(Double(signal))
                details["signal_name"] = .string(ExitStatus.signalName(signal))
            }
        }
        if !stderrTail.isEmpty { details["stderr_tail"] = .string(stderrTail) }
        for (key, value) in extra { details[key] = value }
        let causes = cause.map { [ErrorCause(code: $0.code, message: $0.message, details: $0.details)] }
        return ErrorInfo(
            code: code, category: category, message: message, retryable: category.isRetryable,
            details: .object(details), hint: hint, causes: causes)
    }
}

/// Decides how a plugin call ended from what the supervisor saw by the time the process was reaped.
///
/// A pure function of its inputs: no processes, no clock, so every case can be table-tested.
struct OutcomeClassifier: Sendable {
    var context: HostErrorContext
    var verb: PluginVerb
    var startTimeout: Duration?
    var runTimeout: Duration
    /// Which setting gave the run limit, named in the timeout error (`the manifest's timeouts.run_seconds`, …).
    var runLimitSource: String

    /// What the supervisor saw of one call.
    struct Observations: Sendable {
        var stopReason: StopReason?
        var exit: ExitStatus?
        /// The `result`, `describe` or `error` message that ended the exchange.
        var terminal: PluginToHostMessage?
        /// The first protocol violation, as reported.
        var violation: ErrorInfo?
        var stderrTail: String = ""
    }

    /// How the call ended, and whether the host (rather than the plugin) made that status.
    struct Verdict: Sendable {
        var status: InvocationOutcome.Status
        var hostSynthesized: Bool
    }

    init(context: HostErrorContext, verb: PluginVerb, startTimeout: Duration?, runTimeout: Duration, runLimitSource: String = PluginInvoker.hostDefaultSource) {
        self.context = context
        self.verb = verb
        self.startTimeout = startTimeout
        self.runTimeout = runTimeout
        self.runLimitSource = runLimitSource
    }

    init(_ spec: ProcessSpec) {
        self.init(
            context: spec.errorContext, verb: spec.verb, startTimeout: spec.startTimeout, runTimeout: spec.runTimeout,
            runLimitSource: spec.runLimitSource)
    }

    func classify(_ seen: Observations) -> Verdict {
        let exit = seen.exit
        let pluginID = context.pluginID
        let phase = context.phase
        func hostFailure(
            _ code: String, _ category: ErrorCategory, _ message: String, cause: ErrorInfo? = nil, extra: [String: JSONValue] = [:]
        ) -> Verdict {
            Verdict(
                status: .failed(context.error(code, category, message, exit: exit, stderrTail: seen.stderrTail, cause: cause, extra: extra)),
                hostSynthesized: true)
        }
        let pluginError: ErrorInfo? = {
            if case .error(let info) = seen.terminal { return info }
            return nil
        }()

        if let violation = seen.violation {
            return Verdict(status: .failed(violation), hostSynthesized: true)
        }
        switch seen.stopReason {
        case .startTimeout?:
            return hostFailure(
                HostErrorCode.startTimeout, .timeout,
                "plugin '\(pluginID)' did not say hello within \(Self.seconds(startTimeout ?? .zero)) s")
        case .runTimeout?:
            return hostFailure(
                HostErrorCode.timeout, .timeout,
                "plugin '\(pluginID)' phase '\(phase)' did not finish within \(Self.seconds(runTimeout)) s, the limit set by \(runLimitSource)",
                cause: pluginError, extra: ["limit_seconds": .number(runTimeout / .seconds(1)), "limit_source": .string(runLimitSource)])
        case .cancelled(let why)?:
            // The plugin finished its work before the cancel took effect: its result stands.
            if case .result(let result)? = seen.terminal, case .exited(0)? = exit {
                return Verdict(status: .succeeded(result), hostSynthesized: false)
            }
            return hostFailure(
                HostErrorCode.cancelled, .cancelled,
                "plugin '\(pluginID)' phase '\(phase)' was cancelled: \(why)",
                cause: pluginError)
        case .violation?, nil:
            break
        }
        guard let exit else {
            return hostFailure(HostErrorCode.pluginCrashed, .internal, "plugin '\(pluginID)' vanished")
        }
        switch exit {
        case .signaled(let signal):
            return hostFailure(
                HostErrorCode.pluginCrashed, .internal,
                "plugin '\(pluginID)' was killed by \(ExitStatus.signalName(signal))"
                    + (seen.terminal == nil ? " before sending a result" : ""),
                cause: pluginError)
        case .exited(let code):
            switch (code, seen.terminal) {
            case (PluginExitCode.usage, _):
                return hostFailure(
                    HostErrorCode.pluginUsage, .internal,
                    "plugin '\(pluginID)' rejected its command line (exit code 2): \(Self.lastLine(of: seen.stderrTail))")
            case (0, .result(let result)?):
                return Verdict(status: .succeeded(result), hostSynthesized: false)
            case (0, .describe(let description)?):
                return Verdict(status: .described(description), hostSynthesized: false)
            case (0, .error(let info)?):
                return hostFailure(
                    HostErrorCode.exitCodeMismatch, .protocol,
                    "plugin '\(pluginID)' sent an error but exited with code 0",
                    cause: info)
            case (0, _):
                return hostFailure(
                    HostErrorCode.noResult, .protocol,
                    "plugin '\(pluginID)' exited with code 0 without sending a \(verb == .describe ? "describe message" : "result")")
            case (_, .error(let info)?):
                return Verdict(status: .failed(info), hostSynthesized: false)
            case (_, .result?), (_, .describe?):
                return hostFailure(
                    HostErrorCode.exitCodeMismatch, .protocol,
                    "plugin '\(pluginID)' sent a result but exited with code \(code)")
            default:
                return hostFailure(
                    HostErrorCode.pluginCrashed, code == PluginExitCode.protocolError ? .protocol : .internal,
                    "plugin '\(pluginID)' exited with code \(code) without an error message: \(Self.lastLine(of: seen.stderrTail))")
            }
        }
    }

    /// The last stderr line (at most 300 characters), for messages about a plugin that said nothing else.
    static func lastLine(of stderrTail: String) -> String {
        let lastLine = stderrTail.split(separator: "\n").last.map(String.init) ?? ""
        return lastLine.isEmpty ? "no stderr output" : String(lastLine.prefix(300))
    }

    /// A duration in seconds as messages state it: "30", or "0.5".
    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return value == value.rounded() ? String(Int(value)) : String(format: "%.1f", value)
    }
}
