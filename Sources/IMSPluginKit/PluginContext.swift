import Foundation
import IMSProtocol
import Synchronization

/// What a phase implementation gets: the request, and ways to report back to the host.
public final class PluginContext: Sendable {
    /// The request the host sent.
    public let request: PluginRequest
    private let channel: ProtocolChannel
    /// Why the host asked the plugin to stop, once it has.
    private let cancelReason = Mutex<String?>(nil)

    init(request: PluginRequest, channel: ProtocolChannel) {
        self.request = request
        self.channel = channel
    }

    /// The phase's config object (an empty object when the host sent none).
    public var config: JSONValue { request.config }
    /// The workspace directories of this call.
    public var workspace: Workspace { request.workspace }

    /// Whether the host asked the plugin to stop (cancel message, stdin closed, or SIGTERM).
    public var isCancelled: Bool {
        cancelReason.withLock { $0 != nil }
    }

    /// Throws a `cancelled` failure when the host asked the plugin to stop.
    public func checkCancellation() throws(PluginFailure) {
        if let reason = cancelReason.withLock({ $0 }) { throw PluginFailure.cancelled(reason) }
    }

    func markCancelled(_ reason: String) {
        cancelReason.withLock { current in
            if current == nil { current = reason }
        }
    }

    /// Sends a structured log record.
    public func log(_ level: LogLevel, _ message: String, fields: [String: JSONValue]? = nil, source: String? = nil) {
        channel.send(.log(LogRecord(level: level, msg: message, fields: fields, source: source)))
    }

    /// Sends a progress update for `task`.
    public func progress(
        _ task: String, _ state: ProgressUpdate.State, title: String? = nil, message: String? = nil,
        current: Double? = nil, total: Double? = nil, unit: ProgressUpdate.Unit? = nil
    ) {
        channel.send(.progress(ProgressUpdate(task: task, state: state, title: title, message: message, current: current, total: total, unit: unit)))
    }

    /// Reports a finding the user must act on.
    public func diagnostic(_ diagnostic: Diagnostic) {
        channel.send(.diagnostic(diagnostic))
    }

    /// Announces an output as soon as it exists.
    public func artifact(_ name: String, _ artifact: ArtifactRef) {
        channel.send(.artifact(ArtifactAnnouncement(name: name, artifact: artifact)))
    }

    /// Sends a heartbeat (only meaningful when the plugin uses the `heartbeat` feature).
    public func heartbeat() {
        channel.send(.heartbeat)
    }
}

/// Throw this from a phase to end it with a structured `error` message.
public struct PluginFailure: Error, Sendable {
    public var info: ErrorInfo

    public init(code: String, category: ErrorCategory, message: String, details: JSONValue? = nil, hint: String? = nil) {
        info = ErrorInfo(code: code, category: category, message: message, retryable: category.isRetryable, details: details, hint: hint)
    }

    /// The failure a plugin reports when it stops because the host asked it to.
    public static func cancelled(_ reason: String) -> PluginFailure {
        PluginFailure(code: HostErrorCode.cancelled, category: .cancelled, message: "cancelled: \(reason)")
    }
}
