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

import Crypto

enum SHA256Hex {
    static func of(_ data: Data) -> String {
        SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }
}
