import Foundation
import IMSCatalog
import IMSPluginHost
import IMSProtocol
import Logging
import Synchronization

/// Something that wants to see a job's events as they happen (a progress display, an NDJSON stream).
public protocol JobEventListener: Sendable {
    func jobEvent(_ event: JobStreamEvent)
}

/// One event of a job, as a listener sees it: an engine event or a plugin event, with when, which job, which
/// step and which plugin.
public struct JobStreamEvent: Sendable {
    /// What happened.
    public enum Payload: Sendable {
        case engine(EngineEvent)
        case plugin(PluginEvent)
    }

    public var time: Date
    public var jobID: UUID
    public var step: String?
    public var pluginID: String?
    public let payload: Payload
    /// The wire kind (`step_started`, `log`, …).
    public let kind: String
    /// The wire payload.
    public let data: JSONValue

    public init(time: Date, jobID: UUID, step: String?, pluginID: String?, payload: Payload) {
        self.time = time
        self.jobID = jobID
        self.step = step
        self.pluginID = pluginID
        self.payload = payload
        switch payload {
        case .engine(let event): (kind, data) = (event.kind.rawValue, event.data)
        case .plugin(let event): (kind, data) = EventEncoding.kindAndData(event)
        }
    }

    /// The engine event, when this is one.
    public var engineEvent: EngineEvent? {
        if case .engine(let event) = payload { return event }
        return nil
    }

    /// The plugin event, when this is one.
    public var pluginEvent: PluginEvent? {
        if case .plugin(let event) = payload { return event }
        return nil
    }

    /// The NDJSON line for automation: `{"ts","job_id","step","plugin_id","event","data"}`.
    public func jsonLine() -> Data {
        var object: [String: JSONValue] = [
            "ts": .string(WireFormat.timestamp(time)), "job_id": .string(jobID.uuidString.lowercased()),
            "event": .string(kind), "data": data,
        ]
        if let step { object["step"] = .string(step) }
        if let pluginID { object["plugin_id"] = .string(pluginID) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = (try? encoder.encode(JSONValue.object(object))) ?? Data("{}".utf8)
        line.append(0x0A)
        return line
    }
}

extension JobEvent {
    /// The engine event this catalog record holds, or `nil` for a plugin's event.
    public var engineEvent: EngineEvent? {
        EngineEvent(kind: kind, data: Data(data.utf8))
    }
}

/// Persists a job's events to the catalog in batches (for `ims jobs logs [--follow]`), forwards them to a listener,
/// and logs the engine's own through swift-log (`job_started`/`job_finished` at info, the rest at debug; the CLI
/// sends logs to stderr at `IMS_LOG_LEVEL`). Plugin events arrive on supervisor threads; engine events from the runner.
final class JobEventSink: PluginEventObserver, Sendable {
    private struct State {
        var pending: [JobEvent] = []
        var lastFlush = Date()
        /// The step currently running, to label plugin events.
        var currentStep: String?
        var warnings: [JobWarning] = []
    }

    private let catalog: Catalog
    private let jobID: UUID
    private let listener: (any JobEventListener)?
    private let logger: Logger
    private let state = Mutex(State())
    /// Encodes each event's payload for the catalog; made once, not per event (plugins may send thousands).
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    init(catalog: Catalog, jobID: UUID, listener: (any JobEventListener)?, logger: Logger) {
        self.catalog = catalog
        self.jobID = jobID
        self.listener = listener
        var logger = logger
        logger[metadataKey: "job_id"] = .string(jobID.uuidString.lowercased())
        self.logger = logger
    }

    func setStep(_ step: String?) {
        state.withLock { $0.currentStep = step }
    }

    /// Records an engine event.
    func record(_ event: EngineEvent, step: String? = nil, pluginID: String? = nil) {
        let level: Logger.Level = [.jobStarted, .jobFinished].contains(event.kind) ? .info : .debug
        logger.log(level: level, "\(event.kind.rawValue)", metadata: [
            "step": .string(step ?? "-"), "data": .string(String(decoding: (try? JSONEncoder().encode(event.data)) ?? Data(), as: UTF8.self)),
        ])
        append(JobStreamEvent(time: Date(), jobID: jobID, step: step, pluginID: pluginID, payload: .engine(event)))
    }

    /// A plugin event from a supervisor thread.
    func receive(_ event: TimedPluginEvent) {
        let step = state.withLock { $0.currentStep }
        if case .message(.session(let update)) = event.event { keepSession(update) }
        append(JobStreamEvent(time: event.time, jobID: jobID, step: step ?? event.phase, pluginID: event.pluginID, payload: .plugin(event.event)))
    }

    private func append(_ event: JobStreamEvent) {
        listener?.jobEvent(event)
        if let warning = Self.warning(in: event) {
            state.withLock { state in
                if !state.warnings.contains(warning) { state.warnings.append(warning) }
            }
        }
        let text = (try? encoder.encode(event.data)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let record = JobEvent(time: event.time, phase: event.step, pluginID: event.pluginID, kind: event.kind, data: text)
        let due = state.withLock { state in
            state.pending.append(record)
            return state.pending.count >= 500 || Date().timeIntervalSince(state.lastFlush) > 0.5
        }
        if due { flush() }
    }

    /// A plugin's `session` message goes into the job record's `ssh_containers[0]` (status and connection_info), as
    /// IMS shows them; a job without an ssh container (a create job's debug session) gets one named after the session.
    private func keepSession(_ update: SessionUpdate) {
        do {
            _ = try catalog.updateJob(jobID) { job in
                if job.sshContainers.isEmpty { job.sshContainers = [SSHContainer(name: update.name, jail: update.jail ?? false)] }
                job.sshContainers[0].status = update.status
                if !update.connectionInfo.isEmpty {
                    job.sshContainers[0].connectionInfo = update.connectionInfo.mapValues { SSHConnection(host: $0.host, port: $0.port) }
                }
            }
        } catch {
            logger.warning("cannot record the session's state in the job record: \(error)")
        }
    }

    /// The warnings seen so far.
    var warnings: [JobWarning] { state.withLock { $0.warnings } }

    /// The warning an event carries: a `log` at level warn, a `diagnostic` of severity warning, or the host's own
    /// `warning` about a plugin (a stray stdout line, for one).
    static func warning(in event: JobStreamEvent) -> JobWarning? {
        let message: String?
        switch event.kind {
        case "log" where event.data["level"]?.stringValue == "warn":
            message = event.data["msg"]?.stringValue
        case "diagnostic" where event.data["severity"]?.stringValue == "warning":
            message = event.data["message"]?.stringValue
        case "warning":
            message = event.data["message"]?.stringValue
        default:
            message = nil
        }
        return message.map { JobWarning(step: event.step, pluginID: event.pluginID, message: $0) }
    }

    /// Writes pending events that have waited longer than the batching interval: `ims jobs logs --follow` sees
    /// a step's last words (e.g. instructions for a person) even when nothing follows them for hours.
    func flushIfStale() {
        let stale = state.withLock { !$0.pending.isEmpty && Date().timeIntervalSince($0.lastFlush) > 0.5 }
        if stale { flush() }
    }

    /// Writes pending events to the catalog.
    func flush() {
        let batch = state.withLock { state in
            let batch = state.pending
            state.pending.removeAll(keepingCapacity: true)
            state.lastFlush = Date()
            return batch
        }
        guard !batch.isEmpty else { return }
        _ = try? catalog.appendJobEvents(jobID, batch)
    }
}
