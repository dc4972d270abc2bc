import CIMSSystem
import Foundation
import IMSProtocol
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Everything the supervisor needs to run one plugin process.
struct ProcessSpec: Sendable {
    var executable: String
    var argv: [String]
    var environment: [String]
    var workingDirectory: String
    var verb: PluginVerb
    /// The request line (with newline); nil for `describe`, whose stdin is closed at once.
    var requestLine: [UInt8]?
    var pluginID: String
    var pluginVersion: String
    var phase: String
    var negotiatedVersion: Int
    /// Artifact paths must resolve inside this directory.
    var workspaceRoot: String?
    var startTimeout: Duration?
    var runTimeout: Duration
    /// Which setting gave `runTimeout`, for the timeout error.
    var runLimitSource: String = PluginInvoker.hostDefaultSource
    var cancelGrace: Duration
    var killGrace: Duration
    /// How long to keep reading stdout after the process exits (for output a grandchild still holds).
    var postExitDrain: Duration = .milliseconds(250)
    var strict: Bool
    /// Conformance: start the cancel sequence this long after the start.
    var cancelAfter: Duration?
    var maxLineBytes: Int = WireFormat.maxLineBytes
    var maxStderrLineBytes: Int = 64 * 1024
    var stderrTailBytes: Int = 16 * 1024

    /// The details every error the host makes about this call carries.
    var errorContext: HostErrorContext {
        HostErrorContext(pluginID: pluginID, pluginVersion: pluginVersion, phase: phase, argv: argv)
    }
}

/// Lets another thread ask a running supervisor to cancel.
///
/// Not an actor: the supervisor's poll loop reads the reason synchronously on its own thread.
final class CancellationSignal: Sendable {
    private let readFD: Int32
    private let writeFD: Int32
    private let firstReason = Mutex<String?>(nil)

    init() {
        var fds: [Int32] = [-1, -1]
        _ = ims_pipe_nonblocking(&fds)
        readFD = fds[0]
        writeFD = fds[1]
    }

    deinit {
        close(readFD)
        close(writeFD)
    }

    var pollFD: Int32 { readFD }

    /// The reason given by the first `cancel(reason:)`.
    var reason: String? {
        firstReason.withLock { $0 }
    }

    func cancel(reason: String) {
        firstReason.withLock { stored in
            if stored == nil { stored = reason }
        }
        var byte: UInt8 = 1
        _ = write(writeFD, &byte, 1)
    }
}

/// Runs one plugin process to completion on the calling (dedicated) thread.
///
/// A single `poll(2)` loop watches stdout, stderr, stdin (while the request is being written),
/// a pidfd for the child's exit and a cancellation pipe, so no pipe can deadlock, memory stays
/// bounded, and every deadline is enforced. The child leads its own session; once it has exited
/// the host SIGKILLs what is left of its process group before reaping it, so grandchildren never
/// outlive the call and the group id cannot be reused meanwhile.
final class PluginProcessSupervisor {
    private let spec: ProcessSpec
    private let observer: any PluginEventObserver
    private let cancellation: CancellationSignal
    private let parser = MessageParser()
    private let clock = ContinuousClock()

    private var pid: pid_t = 0
    private var stdinFD: Int32 = -1
    private var stdoutFD: Int32 = -1
    private var stderrFD: Int32 = -1
    private var pidFD: Int32 = -1

    private var stdoutFramer: LineFramer
    private var stderrFramer: LineFramer
    private var stdinPending: [UInt8] = []
    private var stdinOffset = 0

    private var session: PluginSession
    /// The session's first violation as reported: stamped with the stderr tail of the moment it happened.
    private var violation: ErrorInfo?
    private var stderrTail: [UInt8] = []

    private var exitObserved: ExitStatus?
    private var startedAt: ContinuousClock.Instant
    private var drainDeadline: ContinuousClock.Instant?
    private var stopReason: StopReason?
    private var stopStage = StopStage.notStopping
    private var cancelLineSent = false

    /// Where the stop sequence stands. Each waiting stage carries the instant its grace period ends,
    /// when the host escalates to the next step: cancel message, then SIGTERM, then SIGKILL.
    private enum StopStage {
        /// No stop has begun.
        case notStopping
        /// The cancel message went out; SIGTERM follows when the cancel grace ends.
        case cancelSent(graceEnds: ContinuousClock.Instant)
        /// SIGTERM went out; SIGKILL follows when the kill grace ends.
        case terminated(graceEnds: ContinuousClock.Instant)
        /// SIGKILL went out; there is nothing left to escalate to.
        case killed

        /// When the next stop step is due, if one is.
        var nextStepDue: ContinuousClock.Instant? {
            switch self {
            case .cancelSent(let graceEnds), .terminated(let graceEnds): graceEnds
            case .notStopping, .killed: nil
            }
        }
    }

    init(spec: ProcessSpec, observer: any PluginEventObserver, cancellation: CancellationSignal) {
        self.spec = spec
        self.observer = observer
        self.cancellation = cancellation
        self.stdoutFramer = LineFramer(maxLineBytes: spec.maxLineBytes)
        self.stderrFramer = LineFramer(maxLineBytes: spec.maxStderrLineBytes)
        self.startedAt = ContinuousClock.now
        self.session = PluginSession(terms: PluginSession.Terms(
            pluginID: spec.pluginID, verb: spec.verb, negotiatedVersion: spec.negotiatedVersion, strict: spec.strict,
            maxLineBytes: spec.maxLineBytes, workspaceRoot: spec.workspaceRoot.map { Self.realPath($0) ?? $0 },
            resolvePath: { Self.realPath($0) ?? Self.lexicallyNormalized($0) }, pluginVersion: spec.pluginVersion))
    }

    // MARK: Entry point

    func run() -> InvocationOutcome {
        startedAt = clock.now
        if let failure = spawn() {
            return finish(status: .failed(failure), exit: nil, hostMade: true)
        }
        emit(.started(pid: pid, argv: spec.argv))
        loop()
        let exit = reap()
        closeAll()
        let verdict = OutcomeClassifier(spec).classify(.init(
            stopReason: stopReason, exit: exit, terminal: session.terminal, violation: violation, stderrTail: tailText()))
        return finish(status: verdict.status, exit: exit, hostMade: verdict.hostSynthesized)
    }

    // MARK: Spawning

    private func spawn() -> ErrorInfo? {
        let child: Spawn.Piped
        switch Spawn.piped(spec.executable, argv: spec.argv, environment: spec.environment, workingDirectory: spec.workingDirectory) {
        case .success(let spawned): child = spawned
        case .failure(let failure):
            return spec.errorContext.error(
                HostErrorCode.execFailed, .environment,
                "could not start plugin '\(spec.pluginID)': \(spec.executable): \(failure.reason)",
                stderrTail: tailText(), extra: ["errno": .number(Double(failure.errno))])
        }
        pid = child.pid
        stdinFD = child.stdin
        stdoutFD = child.stdout
        stderrFD = child.stderr
        pidFD = ims_pidfd_open(child.pid)
        if let line = spec.requestLine {
            stdinPending = line
        } else {
            closeStdin()
        }
        return nil
    }

    // MARK: The loop

    private func loop() {
        let readBufferSize = 64 * 1024
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: readBufferSize)
        defer { buffer.deallocate() }
        var fds = [pollfd](repeating: pollfd(), count: 5)

        while true {
            let now = clock.now
            checkTimers(now: now)
            if exitObserved != nil {
                let streamsDone = stdoutFD < 0 && stderrFD < 0
                if streamsDone { break }
                if let drain = drainDeadline, now >= drain { break }
            }

            var count = 0
            var slots = (stdout: -1, stderr: -1, stdin: -1, pid: -1, cancel: -1)
            if stdoutFD >= 0 {
                fds[count] = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
                slots.stdout = count
                count += 1
            }
            if stderrFD >= 0 {
                fds[count] = pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)
                slots.stderr = count
                count += 1
            }
            if stdinFD >= 0, stdinOffset < stdinPending.count {
                fds[count] = pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)
                slots.stdin = count
                count += 1
            }
            if pidFD >= 0, exitObserved == nil {
                fds[count] = pollfd(fd: pidFD, events: Int16(POLLIN), revents: 0)
                slots.pid = count
                count += 1
            }
            if stopReason == nil {
                fds[count] = pollfd(fd: cancellation.pollFD, events: Int16(POLLIN), revents: 0)
                slots.cancel = count
                count += 1
            }

            let timeout = pollTimeoutMilliseconds(now: now)
            let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t(count), timeout) }
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            if ready == 0 {
                if pidFD < 0, exitObserved == nil { pollExitWithoutPidfd() }
                continue
            }
            if slots.stdin >= 0, fds[slots.stdin].revents != 0 { writeStdin() }
            if slots.stdout >= 0, fds[slots.stdout].revents != 0 { readStdout(buffer, readBufferSize) }
            if slots.stderr >= 0, fds[slots.stderr].revents != 0 { readStderr(buffer, readBufferSize) }
            if slots.pid >= 0, fds[slots.pid].revents != 0 { observeExit() }
            if slots.cancel >= 0, fds[slots.cancel].revents != 0 {
                beginStop(.cancelled(cancellation.reason ?? "cancelled"), now: clock.now)
            }
        }
    }

    /// What the loop does when a timer is due.
    private enum TimerAction {
        case beginStop(StopReason)
        case advanceStop
    }

    /// The deadlines not yet acted on, in the order they win when several are due at once.
    ///
    /// Acting on a deadline changes the state it depends on (a stop begins, the stop advances, the
    /// process exits), so a deadline that was acted on drops out and never counts again.
    private func armedTimers() -> [(due: ContinuousClock.Instant, action: TimerAction)] {
        guard exitObserved == nil else { return [] }
        guard stopReason == nil else {
            return stopStage.nextStepDue.map { [($0, .advanceStop)] } ?? []
        }
        var timers: [(due: ContinuousClock.Instant, action: TimerAction)] = []
        if let cancelAfter = spec.cancelAfter {
            timers.append((startedAt.advanced(by: cancelAfter), .beginStop(.cancelled("conformance check: cancel requested"))))
        }
        if session.hello == nil, session.terminal == nil, let start = spec.startTimeout {
            timers.append((startedAt.advanced(by: start), .beginStop(.startTimeout)))
        }
        timers.append((startedAt.advanced(by: spec.runTimeout), .beginStop(.runTimeout)))
        return timers
    }

    private func checkTimers(now: ContinuousClock.Instant) {
        guard let due = armedTimers().first(where: { now >= $0.due }) else { return }
        switch due.action {
        case .beginStop(let reason): beginStop(reason, now: now)
        case .advanceStop: advanceStop(now: now)
        }
    }

    /// How long poll(2) may wait: until the next armed timer, the end of the post-exit drain, or the
    /// next check for an exit when there is no pidfd; forever if none of them is pending.
    private func pollTimeoutMilliseconds(now: ContinuousClock.Instant) -> Int32 {
        var deadlines = armedTimers().map(\.due)
        if let drain = drainDeadline { deadlines.append(drain) }
        if pidFD < 0, exitObserved == nil { deadlines.append(now.advanced(by: .milliseconds(50))) }
        guard let earliest = deadlines.min() else { return -1 }
        let remaining = now.duration(to: earliest)
        if remaining <= .zero { return 0 }
        let (seconds, attoseconds) = remaining.components
        let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1
        return Int32(clamping: millis)
    }

    // MARK: Stopping

    private func beginStop(_ reason: StopReason, now: ContinuousClock.Instant) {
        guard stopReason == nil, exitObserved == nil else { return }
        stopReason = reason
        let description = reason.explanation
        // A broken stream cannot carry a cancel message; go straight to SIGTERM.
        if case .violation = reason {
            terminate(reason: description, now: now)
        } else if sendCancelLine(reason: description) {
            emit(.stopping(reason: description, step: "cancel_message"))
            stopStage = .cancelSent(graceEnds: now.advanced(by: spec.cancelGrace))
        } else {
            terminate(reason: description, now: now)
        }
    }

    /// Takes the next stop step once the current grace period is over.
    private func advanceStop(now: ContinuousClock.Instant) {
        switch stopStage {
        case .cancelSent:
            terminate(reason: "cancel grace period over", now: now)
        case .terminated:
            signalGroup(SIGKILL, reason: "kill grace period over", step: "sigkill")
            stopStage = .killed
        case .notStopping, .killed:
            break
        }
    }

    /// Sends SIGTERM to the process group; SIGKILL follows after the kill grace.
    private func terminate(reason: String, now: ContinuousClock.Instant) {
        signalGroup(SIGTERM, reason: reason, step: "sigterm")
        stopStage = .terminated(graceEnds: now.advanced(by: spec.killGrace))
    }

    private func sendCancelLine(reason: String) -> Bool {
        guard stdinFD >= 0, !cancelLineSent else { return false }
        let graceSeconds = Double(spec.cancelGrace.components.seconds)
            + Double(spec.cancelGrace.components.attoseconds) / 1e18
        let envelope = HostEnvelope(message: .cancel(CancelRequest(reason: reason, graceSeconds: graceSeconds)))
        guard let line = try? WireFormat.encodeLine(envelope) else { return false }
        cancelLineSent = true
        // A cancel that comes while the request is still being written (a busy machine) follows it in order.
        let unsent = stdinOffset < stdinPending.count ? Array(stdinPending[stdinOffset...]) : []
        stdinPending = unsent + Array(line)
        stdinOffset = 0
        writeStdin()
        return stdinFD >= 0
    }

    private func signalGroup(_ signal: Int32, reason: String, step: String) {
        guard pid > 0 else { return }
        emit(.stopping(reason: reason, step: step))
        _ = kill(-pid, signal)
    }

    // MARK: Streams

    private func writeStdin() {
        while stdinFD >= 0, stdinOffset < stdinPending.count {
            let written = stdinPending.withUnsafeBytes { raw in
                write(stdinFD, raw.baseAddress?.advanced(by: stdinOffset), raw.count - stdinOffset)
            }
            if written > 0 {
                stdinOffset += written
            } else if written < 0, errno == EINTR {
                continue
            } else if written < 0, errno == EAGAIN {
                return
            } else {
                // EPIPE: the plugin closed stdin. Not an error by itself.
                closeStdin()
                return
            }
        }
    }

    private func readStdout(_ buffer: UnsafeMutablePointer<UInt8>, _ size: Int) {
        // Bound the work per wake-up so stderr and timers are never starved by a flood.
        for _ in 0..<16 {
            guard stdoutFD >= 0 else { return }
            let count = read(stdoutFD, buffer, size)
            if count > 0 {
                let chunk = UnsafeBufferPointer(start: buffer, count: count)
                stdoutFramer.feed(chunk) { event in
                    switch event {
                    case .line(let bytes): handleStdoutLine(bytes)
                    case .overflow: react(to: session.observe(.overflow))
                    }
                }
                if count < size { return }
            } else if count == 0 {
                if let rest = stdoutFramer.finish() { handleStdoutLine(rest) }
                closeFD(&stdoutFD)
                return
            } else {
                if errno == EINTR { continue }
                if errno != EAGAIN { closeFD(&stdoutFD) }
                return
            }
        }
    }

    private func readStderr(_ buffer: UnsafeMutablePointer<UInt8>, _ size: Int) {
        for _ in 0..<16 {
            guard stderrFD >= 0 else { return }
            let count = read(stderrFD, buffer, size)
            if count > 0 {
                let chunk = UnsafeBufferPointer(start: buffer, count: count)
                appendTail(chunk)
                stderrFramer.feed(chunk) { event in
                    switch event {
                    case .line(let bytes): emit(.stderr(String(decoding: bytes, as: UTF8.self)))
                    case .overflow: emit(.stderr("[ims: stderr line longer than \(spec.maxStderrLineBytes) bytes truncated]"))
                    }
                }
                if count < size { return }
            } else if count == 0 {
                if let rest = stderrFramer.finish() { emit(.stderr(String(decoding: rest, as: UTF8.self))) }
                closeFD(&stderrFD)
                return
            } else {
                if errno == EINTR { continue }
                if errno != EAGAIN { closeFD(&stderrFD) }
                return
            }
        }
    }

    private func appendTail(_ chunk: UnsafeBufferPointer<UInt8>) {
        let limit = spec.stderrTailBytes
        if chunk.count >= limit {
            stderrTail = Array(chunk[(chunk.count - limit)...])
        } else {
            stderrTail.append(contentsOf: chunk)
            if stderrTail.count > 2 * limit {
                stderrTail.removeFirst(stderrTail.count - limit)
            }
        }
    }

    // MARK: Protocol lines

    private func handleStdoutLine(_ raw: [UInt8]) {
        guard session.isListening, let observation = StdoutObservation(line: raw, parser: parser) else { return }
        react(to: session.observe(observation))
    }

    /// Carries out what the session decided: pass an event on, report a violation and stop the plugin,
    /// stop reading stdout.
    private func react(to reaction: PluginSession.Reaction) {
        if let event = reaction.event { emit(event) }
        if let found = reaction.violation {
            violation = spec.errorContext.error(found.code, .protocol, found.message, stderrTail: tailText(), extra: found.extra, hint: found.hint)
            beginStop(.violation, now: clock.now)
        }
        if reaction.stopReadingStdout { closeFD(&stdoutFD) }
    }

    // MARK: Exit

    private func observeExit() {
        var value: Int32 = 0
        switch ims_peek_exit(pid, &value) {
        case 1: exitObserved = .exited(value)
        case 2: exitObserved = .signaled(value)
        default: return
        }
        drainDeadline = clock.now.advanced(by: spec.postExitDrain)
        closeStdin()
    }

    private func pollExitWithoutPidfd() {
        observeExit()
    }

    private func reap() -> ExitStatus? {
        guard pid > 0 else { return nil }
        // Kill whatever is left of the group (grandchildren) while the zombie still pins the group id.
        _ = kill(-pid, SIGKILL)
        let raw = ims_wait(pid)
        // Grandchildren re-parented to us (the host is a child subreaper) are reaped too.
        _ = ims_reap_group(pid, 500)
        guard raw >= 0 else { return exitObserved }
        var value: Int32 = 0
        switch ims_decode_status(raw, &value) {
        case 1: return exitObserved ?? .exited(value)
        case 2: return exitObserved ?? .signaled(value)
        default: return exitObserved
        }
    }

    // MARK: Outcome

    private func finish(status: InvocationOutcome.Status, exit: ExitStatus?, hostMade: Bool) -> InvocationOutcome {
        let outcome = InvocationOutcome(
            status: status, exitStatus: exit, hello: session.hello, hostSynthesized: hostMade,
            stderrTail: tailText(), strayLines: session.strayLines, messageCount: session.messageCount,
            duration: startedAt.duration(to: clock.now))
        emit(.finished(outcome))
        return outcome
    }

    private func tailText() -> String {
        let limit = spec.stderrTailBytes
        let bytes = stderrTail.count > limit ? Array(stderrTail.suffix(limit)) : stderrTail
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Helpers

    private func emit(_ event: PluginEvent) {
        observer.receive(TimedPluginEvent(time: Date(), pluginID: spec.pluginID, phase: spec.phase, event: event))
    }

    private func closeStdin() { closeFD(&stdinFD) }

    private func closeFD(_ fd: inout Int32) {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
    }

    private func closeAll() {
        closeFD(&stdinFD)
        closeFD(&stdoutFD)
        closeFD(&stderrFD)
        closeFD(&pidFD)
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func lexicallyNormalized(_ path: String) -> String {
        var parts: [Substring] = []
        for component in path.split(separator: "/") {
            if component == "." { continue }
            if component == ".." {
                _ = parts.popLast()
            } else {
                parts.append(component)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}
