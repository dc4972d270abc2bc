import Foundation
import IMSProtocol

/// The result of one supervised plugin call.
public struct InvocationOutcome: Sendable {
    public enum Status: Sendable {
        /// `run`/`cleanup` ended with a valid `result`.
        case succeeded(PhaseResult)
        /// `describe` ended with a valid `describe` message.
        case described(PluginDescription)
        /// The plugin reported an error, or the host made one (crash, timeout, protocol violation).
        case failed(ErrorInfo)
    }

    public var status: Status
    public var exitStatus: ExitStatus?
    public var hello: Hello?
    /// Whether the error came from the host rather than the plugin's own `error` message.
    public var hostSynthesized: Bool
    /// The last bytes of stderr, for error reports.
    public var stderrTail: String
    public var strayLines: Int
    public var messageCount: Int
    public var duration: Duration

    /// The error, when the call failed.
    public var error: ErrorInfo? {
        if case .failed(let error) = status { return error }
        return nil
    }

    /// The result, when the call succeeded.
    public var result: PhaseResult? {
        if case .succeeded(let result) = status { return result }
        return nil
    }

    public var succeeded: Bool { error == nil }
}
