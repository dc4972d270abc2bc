import Foundation
import IMSPluginHost
import IMSProtocol
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

enum Fixtures {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let pluginsDirectory = repositoryRoot + "/Tests/Fixtures/plugins"
    static let examplesDirectory = repositoryRoot + "/Plugins"

    static func plugin(_ name: String) throws -> ResolvedPlugin {
        try PluginCatalog.resolve(PluginCatalog.inspect(directory: pluginsDirectory + "/" + name, origin: .explicit))
    }

    static func temporaryDirectory(_ label: String = "ims-test") -> String {
        let path = NSTemporaryDirectory() + label + "-" + UUID().uuidString.lowercased().prefix(12)
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `run` on a fixture plugin and returns the outcome, the recorded events and the plugin's pid.
    static func run(
        _ name: String, config: JSONValue = .object([:]), strict: Bool = false, timeouts: PluginManifest.Timeouts = .init(),
        secrets: [String: Data] = [:], cancelAfter: Duration? = nil
    ) async throws -> (InvocationOutcome, EventRecorder) {
        let plugin = try plugin(name)
        let workspace = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        var request = InvocationRequest(phase: "test", config: config, workspaceRoot: workspace, secrets: secrets, timeouts: timeouts, strict: strict)
        request.cancelAfter = cancelAfter
        let recorder = EventRecorder()
        let outcome = try await PluginInvoker.invoke(plugin, request, observer: recorder)
        return (outcome, recorder)
    }

    /// Whether any process is left in the plugin's process group.
    static func groupIsGone(_ pid: Int32?) -> Bool {
        guard let pid else { return false }
        for _ in 0..<50 {
            if kill(-pid, 0) != 0 && errno == ESRCH { return true }
            usleep(20_000)
        }
        return false
    }
}

final class EventRecorder: PluginEventObserver, Sendable {
    private let stored = Mutex<[PluginEvent]>([])

    func receive(_ event: TimedPluginEvent) {
        stored.withLock { $0.append(event.event) }
    }

    var events: [PluginEvent] {
        stored.withLock { $0 }
    }

    var pid: Int32? {
        for event in events { if case .started(let pid, _) = event { return pid } }
        return nil
    }

    var stderrLines: [String] {
        events.compactMap { if case .stderr(let line) = $0 { return line } else { return nil } }
    }

    var stopSteps: [String] {
        events.compactMap { if case .stopping(_, let step) = $0 { return step } else { return nil } }
    }

    var warnings: [ErrorInfo] {
        events.compactMap { if case .warning(let info) = $0 { return info } else { return nil } }
    }

    var messages: [PluginToHostMessage] {
        events.compactMap { if case .message(let message) = $0 { return message } else { return nil } }
    }
}

/// CPU time as the kernel counts it.
enum CPUTime {
    /// The CPU time of the whole test process so far.
    static func process() -> Duration { read(CLOCK_PROCESS_CPUTIME_ID) }

    /// The CPU time of the calling thread so far.
    static func thread() -> Duration { read(CLOCK_THREAD_CPUTIME_ID) }

    private static func read(_ clock: clockid_t) -> Duration {
        var time = timespec()
        clock_gettime(clock, &time)
        return .seconds(time.tv_sec) + .nanoseconds(time.tv_nsec)
    }
}

/// Measures the CPU time the supervising thread spends between a call's `started` and `finished`
/// events (observers are called on that thread).
final class SupervisorCPUMeter: PluginEventObserver, Sendable {
    private let readings = Mutex<[Duration]>([])

    func receive(_ event: TimedPluginEvent) {
        switch event.event {
        case .started, .finished:
            let now = CPUTime.thread()
            readings.withLock { $0.append(now) }
        default:
            break
        }
    }

    /// The CPU time from `started` to `finished`, once both were seen.
    var supervisorCPU: Duration? {
        readings.withLock { $0.count == 2 ? $0[1] - $0[0] : nil }
    }
}

import Crypto

enum SHA256Hex {
    static func of(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
