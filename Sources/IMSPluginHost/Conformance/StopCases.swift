import CIMSSystem
import Foundation
import IMSProtocol
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The three ways §8.4 says a plugin is asked to stop, each a case of §13.8.
enum StopKind: CaseIterable, Sendable {
    /// The host's cancel sequence: a cancel line, SIGTERM after the cancel grace, SIGKILL after the kill grace.
    case cancelMessage
    /// SIGTERM to the process group, with no cancel line.
    case sigterm
    /// End of file on stdin after the request.
    case stdinEOF

    var caseName: String {
        switch self {
        case .cancelMessage: "cancel_honoured"
        case .sigterm: "sigterm_honoured"
        case .stdinEOF: "stdin_eof_honoured"
        }
    }

    var step: String {
        switch self {
        case .cancelMessage: "check-cancel"
        case .sigterm: "check-sigterm"
        case .stdinEOF: "check-eof"
        }
    }

    var what: String {
        switch self {
        case .cancelMessage: "the cancel message"
        case .sigterm: "SIGTERM"
        case .stdinEOF: "EOF on stdin"
        }
    }

    /// How long after hello the stop is applied: a plugin that has finished by then is not exercised.
    static let delayAfterHello: Duration = .milliseconds(100)
}

extension CheckSession {
    /// Runs `phase` and, 100 ms after hello, stops it the `kind` way; the plugin must end with `error` ims.cancelled
    /// (exit 1) within the grace: the cancel grace for a cancel line or EOF, the kill grace after SIGTERM.
    func stopCase(_ kind: StopKind) async -> CaseResult {
        let name = kind.caseName
        var request: InvocationRequest
        let feed = StdinFeed()
        defer { feed.close() }
        let grace: Double
        switch kind {
        case .cancelMessage:
            // The host's own sequence with the real graces; its stop steps are the verdict.
            request = self.request(kind.step, graces: (checker.cancelGraceSeconds, checker.killGraceSeconds))
            grace = checker.cancelGraceSeconds
        case .sigterm:
            request = self.request(kind.step)
            grace = checker.killGraceSeconds
        case .stdinEOF:
            request = self.request(kind.step)
            request.adjustSpawn = { spec throws(PluginHostError) in try feed.install(&spec) }
            grace = checker.cancelGraceSeconds
        }

        let watch = CallWatch()
        let started = ContinuousClock.now
        let run = await WatchedCall.run(plugin, request, watch: watch) { watch in
            if let stoppedAt = watch.stoppedAt {
                // Past the grace the kit gives up: the host's cancel sequence ends the call, and its steps show it.
                return stoppedAt.duration(to: .now) > .seconds(grace) ? .cancelCall : .keepWatching
            }
            guard let hello = watch.helloAt, hello.duration(to: .now) >= StopKind.delayAfterHello else { return .keepWatching }
            var decision = PatrolDecision.keepWatching
            _ = watch.stop { pid in
                switch kind {
                case .cancelMessage: decision = .cancelCall
                case .sigterm: kill(-pid, SIGTERM)
                case .stdinEOF: feed.close()
                }
            }
            return decision
        }
        let seconds = Self.seconds(since: started)
        let outcome: InvocationOutcome
        switch run {
        case .failure(let error): return CaseResult(name: name, passed: false, detail: error.description, seconds: seconds)
        case .success(let value): outcome = value
        }

        let steps = watch.stopSteps
        let hostSteps = steps.isEmpty ? "" : " (host: \(steps.joined(separator: " → ")))"
        guard let stoppedAt = watch.stoppedAt else {
            let why = watch.helloAt == nil ? "the plugin never said hello" : "the plugin had finished before \(kind.what) was due"
            return CaseResult(name: name, verdict: .notExercised, detail: "\(why): \(Self.ending(outcome))\(Self.requestHint(outcome.error != nil && !outcome.hostSynthesized))", seconds: seconds)
        }
        // The host's own step that shows the plugin outlived the stop: SIGTERM after a cancel line it outlived (or
        // SIGKILL, when it had closed its stdin); for SIGTERM and EOF, any step (the kit gave up, or the run timeout
        // passed first).
        let overrunSteps: Set<String>
        switch kind {
        case .cancelMessage:
            if steps.isEmpty {
                return CaseResult(name: name, verdict: .notExercised, detail: "the plugin had exited before the cancel message was sent: \(Self.ending(outcome))\(Self.requestHint(outcome.error != nil && !outcome.hostSynthesized))", seconds: seconds)
            }
            overrunSteps = steps.contains("cancel_message") ? ["sigterm", "sigkill"] : ["sigkill"]
        case .sigterm, .stdinEOF:
            overrunSteps = ["cancel_message", "sigterm", "sigkill"]
        }
        if let overrun = watch.firstStopStep(in: overrunSteps) {
            return CaseResult(
                name: name, passed: false,
                detail: "the plugin was still running \(Self.format(Self.seconds(stoppedAt.duration(to: overrun)))) s after \(kind.what) "
                    + "(grace \(Self.format(grace)) s, run timeout \(Self.format(checker.runTimeoutSeconds)) s) and the host had to stop it"
                    + "\(hostSteps); it ended: \(Self.ending(outcome))",
                seconds: seconds)
        }
        return Self.stopVerdict(name: name, kind: kind, outcome: outcome, hostSteps: hostSteps, seconds: seconds)
    }

    /// Judges how a plugin that was asked to stop ended, when it ended within the grace.
    static func stopVerdict(name: String, kind: StopKind, outcome: InvocationOutcome, hostSteps: String, seconds: Double) -> CaseResult {
        // The plugin's own terminal error: the outcome itself, or (when the host stopped the call) its first cause.
        let ownCode = outcome.hostSynthesized ? outcome.error?.causes?.first?.code : outcome.error?.code
        if outcome.succeeded {
            return CaseResult(name: name, verdict: .notExercised, detail: "the plugin finished its work with a result before \(kind.what) took effect", seconds: seconds)
        }
        if ownCode == HostErrorCode.cancelled {
            let exitOK = outcome.exitStatus == .exited(PluginExitCode.failure)
            let hostProblem = outcome.hostSynthesized && outcome.error?.code != HostErrorCode.cancelled
            if exitOK && !hostProblem {
                return CaseResult(name: name, passed: true, detail: "the plugin stopped with ims.cancelled and exit code 1 after \(kind.what)\(hostSteps)", seconds: seconds)
            }
            return CaseResult(name: name, passed: false, detail: "the plugin answered \(kind.what) with ims.cancelled but \(ending(outcome))", seconds: seconds)
        }
        if let ownCode {
            return CaseResult(
                name: name, verdict: .notExercised,
                detail: "the plugin ended with its own error \(ownCode), not ims.cancelled: it was failing before \(kind.what) took effect"
                    + requestHint(true), seconds: seconds)
        }
        return CaseResult(name: name, passed: false, detail: "no terminal message after \(kind.what): \(ending(outcome))\(hostSteps)", seconds: seconds)
    }

    /// For a plugin that ended with an error of its own: how to give it a request it can work with.
    static func requestHint(_ ownError: Bool) -> String {
        ownError ? " (if it lacked config or inputs, give the check a request it can work with: --request FILE, --input NAME=PATH)" : ""
    }

    /// How a call ended, in a few words.
    static func ending(_ outcome: InvocationOutcome) -> String {
        let exit = outcome.exitStatus.map(\.description) ?? "exit unknown"
        guard let error = outcome.error else { return "a result, \(exit)" }
        return "\(error.message) [\(error.code)], \(exit)"
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.1f", seconds)
    }
}

/// Feeds a plugin's stdin from a FIFO the kit holds, so that the kit (not the host) decides when stdin ends.
///
/// `install` reshapes the spawn: `/bin/sh` execs the entrypoint (same pid, argv and environment) with stdin
/// redirected from the FIFO, which already holds the request line; `close` makes the plugin read EOF.
final class StdinFeed: Sendable {
    private let descriptor = Mutex<Int32>(-1)

    func install(_ spec: inout ProcessSpec) throws(PluginHostError) {
        guard let line = spec.requestLine, spec.argv.count > 1 else { return }
        let path = spec.workingDirectory + "/ims-check-stdin-\(UUID().uuidString.lowercased().prefix(8))"
        guard mkfifo(path, 0o600) == 0 else {
            throw .workspace(path: path, reason: "cannot make a FIFO: \(String(cString: strerror(errno)))")
        }
        // Read-write, so the open never blocks and the FIFO has a writer until `close`.
        let fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw .workspace(path: path, reason: "cannot open the FIFO: \(String(cString: strerror(errno)))")
        }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else {
            Glibc.close(fd)
            throw .workspace(path: path, reason: "the request does not fit in the FIFO")
        }
        descriptor.withLock { $0 = fd }
        spec.argv = ["/bin/sh", "-c", "exec \"$0\" \"$1\" < \"$2\"", spec.executable, spec.argv[1], path]
        spec.executable = "/bin/sh"
        spec.requestLine = nil
    }

    func close() {
        descriptor.withLock { fd in
            if fd >= 0 {
                Glibc.close(fd)
                fd = -1
            }
        }
    }
}
