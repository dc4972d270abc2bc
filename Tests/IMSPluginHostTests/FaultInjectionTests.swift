import Foundation
import IMSPluginHost
import IMSProtocol
import Testing

/// Each misbehaving fixture plugin must give the right structured error, in bounded time,
/// with no process left behind.
@Suite("Fault injection", .timeLimit(.minutes(3)))
struct FaultInjectionTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var fixture: String
        var code: String?
        var category: ErrorCategory?
        var succeeds = false
        var testDescription: String { fixture }
    }

    static let cases: [Case] = [
        Case(fixture: "well-behaved", succeeds: true),
        Case(fixture: "crash", code: HostErrorCode.pluginCrashed, category: .internal),
        Case(fixture: "segv", code: HostErrorCode.pluginCrashed, category: .internal),
        Case(fixture: "flood-no-newline", code: HostErrorCode.lineTooLong, category: .protocol),
        Case(fixture: "stderr-10mib", succeeds: true),
        Case(fixture: "garbage-json", code: HostErrorCode.malformedMessage, category: .protocol),
        Case(fixture: "stray-stdout", succeeds: true),
        Case(fixture: "exit0-no-result", code: HostErrorCode.noResult, category: .protocol),
        Case(fixture: "result-then-nonzero", code: HostErrorCode.exitCodeMismatch, category: .protocol),
        Case(fixture: "output-after-result", code: HostErrorCode.outputAfterTerminal, category: .protocol),
        Case(fixture: "wrong-version-binary", code: HostErrorCode.unsupportedVersion, category: .protocol),
        Case(fixture: "grandchild-stdout", succeeds: true),
        Case(fixture: "closes-stdin", succeeds: true),
        Case(fixture: "invalid-utf8", code: HostErrorCode.invalidUTF8, category: .protocol),
    ]

    @Test("fixture gives the expected outcome and leaves no process behind", arguments: cases)
    func fixture(_ testCase: Case) async throws {
        let started = ContinuousClock.now
        let (outcome, recorder) = try await Fixtures.run(testCase.fixture)
        let elapsed = started.duration(to: .now)
        if testCase.succeeds {
            #expect(outcome.succeeded, "\(testCase.fixture): \(outcome.error?.description ?? "")")
        } else {
            let error = try #require(outcome.error, "\(testCase.fixture) should fail")
            #expect(error.code == testCase.code)
            #expect(error.category == testCase.category)
            #expect(error.details?["plugin_id"]?.stringValue == "org.ims.test.\(testCase.fixture)" || !outcome.hostSynthesized)
        }
        #expect(elapsed < .seconds(60), "\(testCase.fixture) took \(elapsed)")
        #expect(Fixtures.groupIsGone(recorder.pid), "\(testCase.fixture) left a process behind")
    }

    @Test("a crash reports the exit code and the stderr tail")
    func crashDetails() async throws {
        let (outcome, _) = try await Fixtures.run("crash")
        let error = try #require(outcome.error)
        #expect(error.details?["exit_code"]?.numberValue == 7)
        #expect(outcome.exitStatus == .exited(7))
    }

    @Test("SIGSEGV is reported as a signal")
    func segvDetails() async throws {
        let (outcome, _) = try await Fixtures.run("segv")
        #expect(outcome.exitStatus == .signaled(11))
        #expect(outcome.error?.details?["signal_name"]?.stringValue == "SIGSEGV")
    }

    @Test("a hello whose version differs from plugin.json is refused, naming both versions")
    func helloVersionDrift() async throws {
        let (outcome, _) = try await Fixtures.run("version-drift")
        #expect(outcome.error?.code == HostErrorCode.helloMismatch)
        #expect(outcome.error?.message.contains("introduced itself as version 1.0.0, but its plugin.json says 2.0.0") == true, "\(outcome.error?.message ?? "")")
        #expect(outcome.error?.hint != nil)
    }

    @Test("a plugin that ignores SIGTERM is killed after the grace periods")
    func hangIgnoringTerm() async throws {
        let started = ContinuousClock.now
        let (outcome, recorder) = try await Fixtures.run("hang-ignore-term", timeouts: .init(runSeconds: 1, cancelGraceSeconds: 0.5, killGraceSeconds: 0.5))
        let elapsed = started.duration(to: .now)
        #expect(outcome.error?.code == HostErrorCode.timeout)
        #expect(outcome.error?.category == .timeout)
        #expect(outcome.error?.message.hasSuffix("did not finish within 1 s, the limit set by the request's timeouts.run_seconds") == true, "\(outcome.error?.message ?? "")")
        #expect(outcome.error?.details?["limit_source"] == "the request's timeouts.run_seconds")
        #expect(recorder.stopSteps == ["cancel_message", "sigterm", "sigkill"])
        #expect(outcome.exitStatus == .signaled(9))
        #expect(elapsed < .seconds(60))
        #expect(Fixtures.groupIsGone(recorder.pid))
    }

    @Test("stopping a plugin that ignores the cancel waits in poll(2) instead of spinning")
    func stopWithoutSpinning() async throws {
        let plugin = try Fixtures.plugin("hang-ignore-term")
        let workspace = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let request = InvocationRequest(
            phase: "test", workspaceRoot: workspace, timeouts: .init(runSeconds: 0.5, cancelGraceSeconds: 1, killGraceSeconds: 1))
        let recorder = EventRecorder()
        let meter = SupervisorCPUMeter()
        let processCPUBefore = CPUTime.process()
        let started = ContinuousClock.now
        let outcome = try await PluginInvoker.invoke(plugin, request, observer: CompositeObserver([recorder, meter]))
        let elapsed = started.duration(to: .now)
        let processCPU = CPUTime.process() - processCPUBefore
        #expect(outcome.error?.code == HostErrorCode.timeout)
        #expect(recorder.stopSteps == ["cancel_message", "sigterm", "sigkill"])
        #expect(elapsed >= .seconds(2), "the stop sequence should have waited out both grace periods")
        // The supervising thread's own CPU time: the test process runs other suites in parallel.
        let supervisorCPU = try #require(meter.supervisorCPU)
        #expect(
            supervisorCPU < .milliseconds(250),
            "the supervisor used \(supervisorCPU) of CPU in \(elapsed) (the whole test process: \(processCPU))")
        #expect(Fixtures.groupIsGone(recorder.pid))
    }

    @Test("a plugin that honours cancel stops at the cancel message, before any signal")
    func honoursCancel() async throws {
        let (outcome, recorder) = try await Fixtures.run("honours-cancel", cancelAfter: .milliseconds(200))
        #expect(outcome.error?.code == HostErrorCode.cancelled)
        #expect(outcome.error?.category == .cancelled)
        #expect(outcome.error?.causes?.first?.code == HostErrorCode.cancelled)
        #expect(recorder.stopSteps == ["cancel_message"])
        #expect(outcome.exitStatus == .exited(1))
    }

    @Test("a result that wins the race against a cancel stands")
    func resultBeforeCancelTookEffect() async throws {
        let (outcome, recorder) = try await Fixtures.run("honours-cancel", config: ["finish_on_cancel": true], cancelAfter: .milliseconds(200))
        #expect(outcome.succeeded, "\(outcome.error?.description ?? "")")
        #expect(recorder.stopSteps == ["cancel_message"])
        #expect(outcome.exitStatus == .exited(0))
    }

    @Test("cancelling the Swift task cancels the plugin")
    func taskCancellation() async throws {
        let plugin = try Fixtures.plugin("honours-cancel")
        let workspace = Fixtures.temporaryDirectory()
        let recorder = EventRecorder()
        let task = Task {
            try await PluginInvoker.invoke(plugin, InvocationRequest(phase: "test", workspaceRoot: workspace), observer: recorder)
        }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let outcome = try await task.value
        #expect(outcome.error?.category == .cancelled)
        #expect(Fixtures.groupIsGone(recorder.pid))
    }

    @Test("a slow start hits the start timeout")
    func slowStart() async throws {
        let (outcome, recorder) = try await Fixtures.run("slow-start", timeouts: .init(startSeconds: 0.5, cancelGraceSeconds: 0.5, killGraceSeconds: 0.5))
        #expect(outcome.error?.code == HostErrorCode.startTimeout)
        #expect(Fixtures.groupIsGone(recorder.pid))
    }

    @Test("10 MiB of stderr is drained into the log and the tail is kept")
    func stderrFlood() async throws {
        let (outcome, recorder) = try await Fixtures.run("stderr-10mib")
        #expect(outcome.succeeded)
        let total = recorder.stderrLines.reduce(0) { $0 + $1.utf8.count + 1 }
        #expect(total == 10 * 1024 * 1024)
        #expect(outcome.stderrTail.utf8.count == 16 * 1024)
    }

    @Test("stray stdout is a warning normally and fatal in strict mode")
    func strayOutput() async throws {
        let (lenient, recorder) = try await Fixtures.run("stray-stdout")
        #expect(lenient.succeeded)
        #expect(lenient.strayLines == 1)
        #expect(recorder.warnings.map(\.code) == [HostErrorCode.strayOutput])
        #expect(recorder.warnings.first?.message.hasSuffix(#"wrote a stray line to stdout: "this is not protocol""#) == true)
        #expect(recorder.warnings.first?.hint?.contains("stderr") == true)
        let (strict, _) = try await Fixtures.run("stray-stdout", strict: true)
        #expect(strict.error?.code == HostErrorCode.strayOutput)
        #expect(strict.error?.message.contains("this is not protocol") == true, "the line is shown in strict mode too")
        #expect(strict.error?.hint != nil)
    }

    @Test("the grandchild holding stdout is killed and the call returns promptly")
    func grandchild() async throws {
        let started = ContinuousClock.now
        let (outcome, recorder) = try await Fixtures.run("grandchild-stdout")
        #expect(outcome.succeeded)
        // Bounded (the post-exit drain is 250 ms); generous for a loaded CI machine.
        #expect(started.duration(to: .now) < .seconds(60))
        #expect(Fixtures.groupIsGone(recorder.pid))
    }

    @Test("a manifest with no shared protocol version is refused before anything runs")
    func wrongVersionManifest() throws {
        let discovered = PluginCatalog.inspect(directory: Fixtures.pluginsDirectory + "/wrong-version-manifest", origin: .explicit)
        guard case .refused(let reason) = discovered.status else {
            Issue.record("expected a refusal, got \(discovered.status)")
            return
        }
        #expect(reason.contains("speaks protocol 7") && reason.contains("this ims speaks protocol 1"))
        #expect(throws: PluginHostError.self) { try PluginCatalog.resolve(discovered) }
    }

    @Test("the environment is built from scratch and secrets reach only declared phases, as files")
    func environmentAndSecrets() async throws {
        setenv("IMS_TEST_LEAK", "should-not-leak", 1)
        let secret = "s3cr3t-value-\(UUID().uuidString)"
        let (outcome, recorder) = try await Fixtures.run("echo-request", secrets: ["token": Data(secret.utf8)])
        let result = try #require(outcome.result, "\(outcome.error?.description ?? "")")
        let env = result.facts["env"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(!env.contains("IMS_TEST_LEAK"))
        for name in ["PATH", "LANG", "TZ", "HOME", "TMPDIR", "IMS_PLUGIN", "IMS_PROTOCOL", "IMS_PHASE", "IMS_JOB_ID", "IMS_WORKDIR", "IMS_PLUGIN_DIR", "IMS_LOG_LEVEL"] {
            #expect(env.contains(name), "missing \(name)")
        }
        let argv = result.facts["argv"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(!argv.joined().contains(secret))
        let logged = recorder.messages.compactMap { if case .log(let record) = $0 { return record.msg } else { return nil } }.joined()
        #expect(logged.contains("\"secrets\""), "the request should reference the secret file")
        #expect(!logged.contains(secret), "the secret value must not travel in the request")
        #expect(result.facts["secret_mode"]?.stringValue == "600")
        #expect(result.facts["secret_matches"]?.boolValue == true)
    }
}
