@testable import IMSPluginHost
import IMSProtocol
import Testing

/// How a finished call is classified, from what the supervisor saw, without starting a process.
@Suite("Outcome classification")
struct OutcomeClassifierTests {
    static let classifier = OutcomeClassifier(
        context: HostErrorContext(
            pluginID: "org.ims.test.outcome", pluginVersion: "1.2.3", phase: "build", argv: ["/plugins/outcome/bin/plugin", "run"]),
        verb: .run, startTimeout: .seconds(30), runTimeout: .milliseconds(1500), runLimitSource: PluginInvoker.hostDefaultSource)

    static let result = PluginToHostMessage.result(PhaseResult(facts: ["answer": 42]))
    static let describe = PluginToHostMessage.describe(PluginDescription(
        plugin: PluginIdentity(id: "org.ims.test.outcome", version: "1.2.3"),
        protocol: .init(versions: [1], features: []), phases: [.init(name: "build", payloads: ["custom/v1"])]))
    static let pluginError = ErrorInfo(code: "build.repo_unreachable", category: .transient, message: "the repository did not answer")
    static let violation = ErrorInfo(code: HostErrorCode.strayOutput, category: .protocol, message: "a stray line")

    enum Expected: Sendable {
        case succeeded
        case described
        /// The plugin's own error, passed on as it is.
        case pluginError
        /// An error the host made, with its code, category and message to the letter.
        case hostError(String, ErrorCategory, String)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var spec: String
        var verb = PluginVerb.run
        var stop: StopReason?
        var exit: IMSPluginHost.ExitStatus?
        var terminal: PluginToHostMessage?
        var violation: ErrorInfo?
        var stderrTail = ""
        var expected: Expected
        var testDescription: String { spec }
    }

    static let cases: [Case] = [
        Case(spec: "exit 0 after a result succeeds", exit: .exited(0), terminal: result, expected: .succeeded),
        Case(
            spec: "exit 0 after a describe message is described", verb: .describe, exit: .exited(0), terminal: describe,
            expected: .described),
        Case(
            spec: "exit 0 after an error is an exit code mismatch", exit: .exited(0), terminal: .error(pluginError),
            expected: .hostError(
                HostErrorCode.exitCodeMismatch, .protocol, "plugin 'org.ims.test.outcome' sent an error but exited with code 0")),
        Case(
            spec: "exit 0 without a result is no result", exit: .exited(0),
            expected: .hostError(
                HostErrorCode.noResult, .protocol, "plugin 'org.ims.test.outcome' exited with code 0 without sending a result")),
        Case(
            spec: "exit 0 without a describe message names the describe message", verb: .describe, exit: .exited(0),
            expected: .hostError(
                HostErrorCode.noResult, .protocol,
                "plugin 'org.ims.test.outcome' exited with code 0 without sending a describe message")),
        Case(spec: "a nonzero exit after an error is the plugin's error", exit: .exited(1), terminal: .error(pluginError), expected: .pluginError),
        Case(
            spec: "a nonzero exit after a result is an exit code mismatch", exit: .exited(4), terminal: result,
            expected: .hostError(
                HostErrorCode.exitCodeMismatch, .protocol, "plugin 'org.ims.test.outcome' sent a result but exited with code 4")),
        Case(
            spec: "exit code 2 is a usage error quoting the last stderr line", exit: .exited(2), terminal: .error(pluginError),
            stderrTail: "starting\nusage: plugin describe|run|cleanup\n",
            expected: .hostError(
                HostErrorCode.pluginUsage, .internal,
                "plugin 'org.ims.test.outcome' rejected its command line (exit code 2): usage: plugin describe|run|cleanup")),
        Case(
            spec: "a nonzero exit without an error message is a crash quoting the last stderr line", exit: .exited(7),
            stderrTail: "boom\n",
            expected: .hostError(
                HostErrorCode.pluginCrashed, .internal,
                "plugin 'org.ims.test.outcome' exited with code 7 without an error message: boom")),
        Case(
            spec: "a crash without stderr says there was none", exit: .exited(7),
            expected: .hostError(
                HostErrorCode.pluginCrashed, .internal,
                "plugin 'org.ims.test.outcome' exited with code 7 without an error message: no stderr output")),
        Case(
            spec: "exit code 3 without an error message is a crash in the protocol category", exit: .exited(3),
            expected: .hostError(
                HostErrorCode.pluginCrashed, .protocol,
                "plugin 'org.ims.test.outcome' exited with code 3 without an error message: no stderr output")),
        Case(
            spec: "a signal before any result is a crash before sending a result", exit: .signaled(11),
            expected: .hostError(
                HostErrorCode.pluginCrashed, .internal,
                "plugin 'org.ims.test.outcome' was killed by SIGSEGV before sending a result")),
        Case(
            spec: "a signal after a result is a crash", exit: .signaled(9), terminal: result,
            expected: .hostError(HostErrorCode.pluginCrashed, .internal, "plugin 'org.ims.test.outcome' was killed by SIGKILL")),
        Case(
            spec: "no exit status at all is a plugin that vanished",
            expected: .hostError(HostErrorCode.pluginCrashed, .internal, "plugin 'org.ims.test.outcome' vanished")),
        Case(
            spec: "a violation wins over a clean exit and a result", stop: .violation, exit: .exited(0), terminal: result,
            violation: violation, expected: .hostError(violation.code, violation.category, violation.message)),
        Case(
            spec: "the start timeout states the limit in whole seconds", stop: .startTimeout, exit: .signaled(15),
            expected: .hostError(
                HostErrorCode.startTimeout, .timeout, "plugin 'org.ims.test.outcome' did not say hello within 30 s")),
        Case(
            spec: "the run timeout names the phase and states fractional seconds", stop: .runTimeout, exit: .signaled(9),
            expected: .hostError(
                HostErrorCode.timeout, .timeout, "plugin 'org.ims.test.outcome' phase 'build' did not finish within 1.5 s, the limit set by the host's default run limit")),
        Case(
            spec: "the run timeout wins over a result", stop: .runTimeout, exit: .exited(0), terminal: result,
            expected: .hostError(
                HostErrorCode.timeout, .timeout, "plugin 'org.ims.test.outcome' phase 'build' did not finish within 1.5 s, the limit set by the host's default run limit")),
        Case(
            spec: "a cancel is a cancelled failure giving the reason", stop: .cancelled("the job was cancelled"), exit: .exited(1),
            terminal: .error(pluginError),
            expected: .hostError(
                HostErrorCode.cancelled, .cancelled,
                "plugin 'org.ims.test.outcome' phase 'build' was cancelled: the job was cancelled")),
        Case(
            spec: "a result that won the race against a cancel stands", stop: .cancelled("the job was cancelled"), exit: .exited(0),
            terminal: result, expected: .succeeded),
        Case(
            spec: "a result with a nonzero exit after a cancel is still cancelled", stop: .cancelled("stop"), exit: .exited(1),
            terminal: result,
            expected: .hostError(
                HostErrorCode.cancelled, .cancelled, "plugin 'org.ims.test.outcome' phase 'build' was cancelled: stop")),
    ]

    @Test("a finished call is classified by what was seen", arguments: cases)
    func classification(_ testCase: Case) {
        var classifier = Self.classifier
        classifier.verb = testCase.verb
        let verdict = classifier.classify(.init(
            stopReason: testCase.stop, exit: testCase.exit, terminal: testCase.terminal, violation: testCase.violation,
            stderrTail: testCase.stderrTail))
        switch (testCase.expected, verdict.status) {
        case (.succeeded, .succeeded(let result)):
            #expect(.result(result) == testCase.terminal)
            #expect(!verdict.hostSynthesized)
        case (.described, .described(let description)):
            #expect(.describe(description) == testCase.terminal)
            #expect(!verdict.hostSynthesized)
        case (.pluginError, .failed(let error)):
            #expect(error == Self.pluginError)
            #expect(!verdict.hostSynthesized)
        case (.hostError(let code, let category, let message), .failed(let error)):
            #expect(error.code == code)
            #expect(error.category == category)
            #expect(error.message == message)
            #expect(verdict.hostSynthesized)
        default:
            Issue.record("expected \(testCase.expected), got \(verdict.status)")
        }
    }

    @Test("a host-made error carries the call, the exit status, the stderr tail and the plugin's error as cause")
    func hostErrorDetails() throws {
        let verdict = Self.classifier.classify(.init(
            stopReason: .runTimeout, exit: .signaled(9), terminal: .error(Self.pluginError), stderrTail: "last words\n"))
        guard case .failed(let error) = verdict.status else {
            Issue.record("expected a failure, got \(verdict.status)")
            return
        }
        let details = try #require(error.details)
        #expect(details["plugin_id"] == "org.ims.test.outcome")
        #expect(details["plugin_version"] == "1.2.3")
        #expect(details["phase"] == "build")
        #expect(details["argv"] == ["/plugins/outcome/bin/plugin", "run"])
        #expect(details["signal"] == 9)
        #expect(details["signal_name"] == "SIGKILL")
        #expect(details["exit_code"] == nil)
        #expect(details["stderr_tail"] == "last words\n")
        #expect(error.retryable == ErrorCategory.timeout.isRetryable)
        #expect(error.causes?.map(\.code) == [Self.pluginError.code])
    }

    @Test("a host-made error has no stderr tail when the plugin wrote none, and gives the exit code")
    func hostErrorWithoutStderr() {
        let verdict = Self.classifier.classify(.init(exit: .exited(7)))
        #expect(verdict.hostSynthesized)
        #expect(verdict.status.error?.details?["stderr_tail"] == nil)
        #expect(verdict.status.error?.details?["exit_code"] == 7)
        #expect(verdict.status.error?.causes == nil)
    }
}

extension InvocationOutcome.Status {
    fileprivate var error: ErrorInfo? {
        if case .failed(let error) = self { return error }
        return nil
    }
}
