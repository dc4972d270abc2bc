import Foundation
import IMSProtocol

/// Something observable that happened while a plugin ran.
public enum PluginEvent: Sendable {
    /// The process started.
    case started(pid: Int32, argv: [String])
    /// A non-terminal protocol message (hello, log, diagnostic, progress, artifact, heartbeat).
    case message(PluginToHostMessage)
    /// One line of the plugin's free-text stderr.
    case stderr(String)
    /// A host-side warning, such as stray stdout output in lenient mode.
    case warning(ErrorInfo)
    /// The host asked the plugin to stop (cancel message, SIGTERM or SIGKILL).
    case stopping(reason: String, step: String)
    /// The invocation is over.
    case finished(InvocationOutcome)
}

/// An event with the time the host saw it and which plugin and phase it belongs to.
public struct TimedPluginEvent: Sendable {
    public var time: Date
    public var pluginID: String
    public var phase: String
    public var event: PluginEvent

    public init(time: Date, pluginID: String, phase: String, event: PluginEvent) {
        self.time = time
        self.pluginID = pluginID
        self.phase = phase
        self.event = event
    }
}

/// Receives events synchronously, in order, on the supervising thread. Keep it fast.
public protocol PluginEventObserver: Sendable {
    func receive(_ event: TimedPluginEvent)
}

/// Fans events out to several observers.
public struct CompositeObserver: PluginEventObserver {
    public var observers: [any PluginEventObserver]
    public init(_ observers: [any PluginEventObserver]) { self.observers = observers }
    public func receive(_ event: TimedPluginEvent) {
        for observer in observers { observer.receive(event) }
    }
}

/// Discards every event.
public struct NullObserver: PluginEventObserver {
    public init() {}
    public func receive(_ event: TimedPluginEvent) {}
}
