import Foundation

/// One line of a job's log: an event of the job or of a plugin (progress, log, artifact, …).
///
/// The catalog assigns `sequence` when the event is appended; sequences only grow, so a follower asks for
/// the events `after` the last sequence it saw.
public struct JobEvent: Codable, Hashable, Sendable {
    /// Assigned by ``Catalog/appendJobEvents(_:_:)``; 0 before that.
    public var sequence: Int64
    /// When the event happened.
    public var time: Date
    /// The phase it belongs to, if any.
    public var phase: String?
    /// The plugin that emitted it, if any.
    public var pluginID: String?
    /// The event kind (`log`, `progress`, `artifact`, `status`, …).
    public var kind: String
    /// The event itself as JSON text (stored verbatim).
    public var data: String

    /// Creates an event to append.
    public init(sequence: Int64 = 0, time: Date = IMSTimestamp.now(), phase: String? = nil, pluginID: String? = nil, kind: String, data: String) {
        self.sequence = sequence
        self.time = time
        self.phase = phase
        self.pluginID = pluginID
        self.kind = kind
        self.data = data
    }

    enum CodingKeys: String, CodingKey {
        case sequence, time, phase, kind, data
        case pluginID = "plugin_id"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sequence = try c.decodeIfPresent(Int64.self, forKey: .sequence) ?? 0
        time = try c.decodeTimestamp(forKey: .time)
        phase = try c.decodeIfPresent(String.self, forKey: .phase)
        pluginID = try c.decodeIfPresent(String.self, forKey: .pluginID)
        kind = try c.decode(String.self, forKey: .kind)
        data = try c.decode(String.self, forKey: .data)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(sequence, forKey: .sequence)
        try c.encodeTimestamp(time, forKey: .time)
        try c.encodeNullable(phase, forKey: .phase)
        try c.encodeNullable(pluginID, forKey: .pluginID)
        try c.encode(kind, forKey: .kind)
        try c.encode(data, forKey: .data)
    }
}
