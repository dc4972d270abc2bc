import Foundation
import IMSCatalog
import IMSPluginHost
import IMSProtocol

/// Something that wants to see a job's events as they happen (a progress display, an NDJSON stream).
public protocol JobEventListener: Sendable {
    func jobEvent(_ event: JobStreamEvent)
}

/// One event of a job: engine events (`job_status`, `step_started`, `step_finished`, `step_skipped`,
/// `job_log`, `job_finished`) and every plugin event (`hello`, `log`, `progress`, `stderr`, …).
public struct JobStreamEvent: Sendable {
    public var time: Date
    public var jobID: UUID
    public var step: String?
    public var pluginID: String?
    public var kind: String
    public var data: JSONValue
    /// The original plugin event, for renderers that want it.
    public var pluginEvent: PluginEvent?

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

/// Persists a job's events to the catalog in batches (for `ims jobs logs [--follow]`) and forwards
/// them to a listener. Plugin events arrive on supervisor threads; engine events from the runner.
final class JobEventSink: PluginEventObserver, @unchecked Sendable {
    private let catalog: Catalog
    private let jobID: UUID
    private let listener: (any JobEventListener)?
    private let lock = NSLock()
    private var pending: [JobEvent] = []
    private var lastFlush = Date()
    private let encoder: JSONEncoder
    /// The step currently running, to label plugin events.
    private var currentStep: String?

    init(catalog: Catalog, jobID: UUID, listener: (any JobEventListener)?) {
        self.catalog = catalog
        self.jobID = jobID
        self.listener = listener
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.encoder = encoder
    }

    func setStep(_ step: String?) {
        lock.lock()
        currentStep = step
        lock.unlock()
    }

    /// Records an engine event.
    func record(_ kind: String, step: String? = nil, pluginID: String? = nil, data: JSONValue) {
        let event = JobStreamEvent(time: Date(), jobID: jobID, step: step, pluginID: pluginID, kind: kind, data: data, pluginEvent: nil)
        append(event)
    }

    /// A plugin event from a supervisor thread.
    func receive(_ event: TimedPluginEvent) {
        let (kind, payload) = EventEncoding.kindAndData(event.event)
        lock.lock()
        let step = currentStep
        lock.unlock()
        append(JobStreamEvent(time: event.time, jobID: jobID, step: step ?? event.phase, pluginID: event.pluginID, kind: kind, data: payload, pluginEvent: event.event))
    }

    private func append(_ event: JobStreamEvent) {
        listener?.jobEvent(event)
        let text = (try? encoder.encode(event.data)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let record = JobEvent(time: event.time, phase: event.step, pluginID: event.pluginID, kind: event.kind, data: text)
        lock.lock()
        pending.append(record)
        let due = pending.count >= 500 || Date().timeIntervalSince(lastFlush) > 0.5
        lock.unlock()
        if due { flush() }
    }

    /// Writes pending events that have waited longer than the batching interval: `ims jobs logs --follow` sees
    /// a step's last words (e.g. instructions for a person) even when nothing follows them for hours.
    func flushIfStale() {
        lock.lock()
        let stale = !pending.isEmpty && Date().timeIntervalSince(lastFlush) > 0.5
        lock.unlock()
        if stale { flush() }
    }

    /// Writes pending events to the catalog.
    func flush() {
        lock.lock()
        let batch = pending
        pending.removeAll(keepingCapacity: true)
        lastFlush = Date()
        lock.unlock()
        guard !batch.isEmpty else { return }
        _ = try? catalog.appendJobEvents(jobID, batch)
    }
}

