import Foundation
import IMSProtocol
import Synchronization

/// The NDJSON shape of host events, for automation and job logs:
/// `{"ts": ..., "plugin_id": ..., "phase": ..., "event": "<type>", "data": {...}}`.
public enum EventEncoding {
    struct Line: Encodable {
        var ts: String
        var pluginID: String
        var phase: String
        var event: String
        var data: Payload

        enum CodingKeys: String, CodingKey {
            case ts, phase, event, data
            case pluginID = "plugin_id"
        }
    }

    enum Payload: Encodable {
        case message(PluginToHostMessage)
        case value(JSONValue)
        case error(ErrorInfo)

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .message(let message): try message.encodeBody(to: encoder)
            case .value(let value): try value.encode(to: encoder)
            case .error(let error): try error.encode(to: encoder)
            }
        }
    }

    /// The event name and payload of an event.
    static func parts(_ event: PluginEvent) -> (String, Payload) {
        switch event {
        case .started(let pid, let argv):
            return ("started", .value(["pid": .number(Double(pid)), "argv": .array(argv.map { .string($0) })]))
        case .message(let message):
            return (message.type, .message(message))
        case .stderr(let line):
            return ("stderr", .value(["line": .string(line)]))
        case .warning(let info):
            return ("warning", .error(info))
        case .stopping(let reason, let step):
            return ("stopping", .value(["reason": .string(reason), "step": .string(step)]))
        case .finished(let outcome):
            return ("finished", .value(outcomeJSON(outcome)))
        }
    }

    /// Encodes one event as one NDJSON line (with newline).
    public static func encode(_ event: TimedPluginEvent, encoder: JSONEncoder) -> Data? {
        let (name, payload) = parts(event.event)
        let line = Line(ts: WireFormat.timestamp(event.time), pluginID: event.pluginID, phase: event.phase, event: name, data: payload)
        guard var data = try? encoder.encode(line) else { return nil }
        data.append(0x0A)
        return data
    }

    /// The event name and its `data` as JSON (the same shape the NDJSON lines carry).
    public static func kindAndData(_ event: PluginEvent) -> (String, JSONValue) {
        let (name, payload) = parts(event)
        switch payload {
        case .message(let message): return (name, jsonValue(MessageBody(message: message)))
        case .value(let value): return (name, value)
        case .error(let info): return (name, jsonValue(info))
        }
    }

    private struct MessageBody: Encodable {
        var message: PluginToHostMessage
        func encode(to encoder: any Encoder) throws { try message.encodeBody(to: encoder) }
    }

    /// A JSON summary of an outcome.
    public static func outcomeJSON(_ outcome: InvocationOutcome) -> JSONValue {
        var object: [String: JSONValue] = [
            "duration_seconds": .number((outcome.duration / .milliseconds(1)).rounded() / 1000),
            "messages": .number(Double(outcome.messageCount)),
            "stray_lines": .number(Double(outcome.strayLines)),
        ]
        switch outcome.exitStatus {
        case .exited(let code)?: object["exit_code"] = .number(Double(code))
        case .signaled(let signal)?: object["signal"] = .number(Double(signal))
        case nil: break
        }
        switch outcome.status {
        case .succeeded(let result):
            object["status"] = "succeeded"
            object["result"] = jsonValue(result)
        case .described(let description):
            object["status"] = "succeeded"
            object["describe"] = jsonValue(description)
        case .failed(let error):
            object["status"] = "failed"
            object["error"] = jsonValue(error)
            object["host_synthesized"] = .bool(outcome.hostSynthesized)
        }
        return .object(object)
    }

    /// Round-trips an Encodable value into a `JSONValue`.
    public static func jsonValue<T: Encodable>(_ value: T) -> JSONValue {
        JSONValue(encoding: value)
    }
}

/// Writes every event as an NDJSON line to a file descriptor (stdout for `--json`, or a job log file).
public final class NDJSONEventWriter: PluginEventObserver, Sendable {
    /// The output and its encoder, locked for each line so that lines never interleave.
    private let output: Mutex<(fileHandle: FileHandle, encoder: JSONEncoder)>
    private let minimumLogLevel: LogLevel

    public init(fileHandle: FileHandle, minimumLogLevel: LogLevel = .trace) {
        self.minimumLogLevel = minimumLogLevel
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.output = Mutex((fileHandle, encoder))
    }

    public func receive(_ event: TimedPluginEvent) {
        if case .message(.log(let record)) = event.event, record.level < minimumLogLevel { return }
        output.withLock { output in
            guard let data = EventEncoding.encode(event, encoder: output.encoder) else { return }
            try? output.fileHandle.write(contentsOf: data)
        }
    }
}
