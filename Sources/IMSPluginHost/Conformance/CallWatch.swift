import CIMSSystem
import Foundation
import IMSProtocol
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What the conformance kit sees of one supervised call while it runs: the plugin's pid, when it said hello,
/// the stop steps the host took and, when asked to, where a secret token turned up.
///
/// Events arrive on the supervising thread; the kit's patrol reads the same state from its own task.
final class CallWatch: PluginEventObserver, Sendable {
    private struct State {
        var pid: pid_t?
        /// A pidfd taken while the plugin was certainly not yet reaped, to tell "still running" without a race.
        var pidFD: Int32 = -1
        var helloAt: ContinuousClock.Instant?
        var stopSteps: [(step: String, at: ContinuousClock.Instant)] = []
        var finished = false
        var stoppedAt: ContinuousClock.Instant?
        var secretSeenIn: Set<String> = []
    }

    private let state = Mutex(State())
    /// The secret token to look for in the plugin's processes and in every event the host records; nil: none.
    private let secretToken: [UInt8]?

    init(secretToken: String? = nil) {
        self.secretToken = secretToken.map { Array($0.utf8) }
    }

    deinit {
        state.withLock { state in
            if state.pidFD >= 0 { close(state.pidFD) }
        }
    }

    func receive(_ event: TimedPluginEvent) {
        var sampleProcesses = false
        state.withLock { state in
            switch event.event {
            case .started(let pid, _):
                state.pid = pid
                state.pidFD = ims_pidfd_open(pid)
            case .message(.hello):
                if state.helloAt == nil {
                    state.helloAt = .now
                    // The plugin has exec'd and runs: the first moment its environment and argv are its own.
                    sampleProcesses = true
                }
            case .stopping(_, let step):
                state.stopSteps.append((step, .now))
            case .finished:
                state.finished = true
            default:
                break
            }
        }
        guard let token = secretToken else { return }
        if let line = EventEncoding.encode(event, encoder: WireFormat.makeEncoder()), line.range(of: Data(token)) != nil {
            let (name, _) = EventEncoding.parts(event.event)
            record(secretSeenIn: name == "stderr" ? "stderr" : "the host's '\(name)' event (stdout or the outcome)")
        }
        if sampleProcesses { sampleGroup() }
    }

    var pid: pid_t? { state.withLock { $0.pid } }
    var helloAt: ContinuousClock.Instant? { state.withLock { $0.helloAt } }
    var stopSteps: [String] { state.withLock { $0.stopSteps.map(\.step) } }
    /// When the host took its first stop step out of `steps`, if it took one.
    func firstStopStep(in steps: Set<String>) -> ContinuousClock.Instant? {
        state.withLock { $0.stopSteps.first { steps.contains($0.step) }?.at }
    }
    /// When the kit applied its stop (see `stop(_:)`).
    var stoppedAt: ContinuousClock.Instant? { state.withLock { $0.stoppedAt } }
    var secretSeenIn: [String] { state.withLock { $0.secretSeenIn.sorted() } }

    /// Applies a stop: runs `action` with the plugin's pid while the plugin is certainly still running (so its
    /// process group cannot have been reaped and reused meanwhile) and records the time. Returns false, without
    /// running it, once the plugin has exited.
    func stop(_ action: (pid_t) -> Void) -> Bool {
        state.withLock { state in
            guard !state.finished, let pid = state.pid, state.pidFD >= 0, ims_wait_readable(state.pidFD, 0) == 0 else { return false }
            action(pid)
            state.stoppedAt = .now
            return true
        }
    }

    /// Looks for the secret token in the environment and argv of every process in the plugin's process group.
    func sampleGroup() {
        guard let token = secretToken, let leader = pid else { return }
        for member in ProcFS.processGroupMembers(leader) {
            if let environment = ProcFS.contents(of: "/proc/\(member)/environ"), environment.contains(token) {
                record(secretSeenIn: member == leader ? "the plugin's environment" : "the environment of its child \(member)")
            }
            if let argv = ProcFS.contents(of: "/proc/\(member)/cmdline"), argv.contains(token) {
                record(secretSeenIn: member == leader ? "the plugin's argv" : "the argv of its child \(member)")
            }
        }
    }

    private func record(secretSeenIn place: String) {
        state.withLock { _ = $0.secretSeenIn.insert(place) }
    }
}

/// What the patrol wants done with a call it watches.
enum PatrolDecision {
    case keepWatching
    /// Cancel the call: the host runs its cancel sequence (cancel line, SIGTERM after the cancel grace, SIGKILL).
    case cancelCall
}

/// Runs one supervised call while a patrol looks at it every `interval`.
enum WatchedCall {
    static func run(
        _ plugin: ResolvedPlugin, _ request: InvocationRequest, watch: CallWatch, interval: Duration = .milliseconds(20),
        patrol: @escaping @Sendable (CallWatch) -> PatrolDecision
    ) async -> Result<InvocationOutcome, PluginHostError> {
        enum Event: Sendable {
            case ended(Result<InvocationOutcome, PluginHostError>)
            case patrolDone
        }
        return await withTaskGroup(of: Event.self) { group in
            group.addTask {
                do throws(PluginHostError) {
                    return .ended(.success(try await PluginInvoker.invoke(plugin, request, observer: watch)))
                } catch {
                    return .ended(.failure(error))
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    if patrol(watch) == .cancelCall { break }
                    try? await Task.sleep(for: interval)
                }
                return .patrolDone
            }
            var ended: Result<InvocationOutcome, PluginHostError> = .failure(.invalidRequest(path: request.phase, reason: "the call did not end"))
            // The call always ends (the host bounds it); when the patrol gives up first, cancelling the group cancels it.
            for await event in group {
                group.cancelAll()
                if case .ended(let result) = event { ended = result }
            }
            return ended
        }
    }
}

/// Small readers of /proc.
enum ProcFS {
    /// The whole content of a /proc file (whose size stat does not report), or nil.
    static func contents(of path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var content: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while content.count < limit {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            content.append(contentsOf: buffer[0..<count])
        }
        return content
    }

    /// The pids of every process whose process group is `pgid`.
    static func processGroupMembers(_ pgid: pid_t) -> [pid_t] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [pgid] }
        return names.compactMap { name in
            guard let pid = pid_t(name), let stat = contents(of: "/proc/\(name)/stat"),
                let close = stat.lastIndex(of: UInt8(ascii: ")"))
            else { return nil }
            // After "pid (comm)": state, ppid, pgrp, ...
            let fields = stat[(close + 1)...].split(separator: UInt8(ascii: " "))
            guard fields.count > 2, let group = pid_t(String(decoding: fields[2], as: UTF8.self)), group == pgid else { return nil }
            return pid
        }
    }
}
