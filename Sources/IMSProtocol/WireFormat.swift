import Foundation

/// Protocol-wide constants and the JSON coding conventions of the wire format.
public enum WireFormat {
    /// The wire protocol majors this build of `ims` (host and SDK) speaks.
    public static let supportedVersions: [Int] = [1]
    /// The current wire protocol major.
    public static let currentVersion = 1
    /// The manifest schema version this build understands.
    public static let manifestVersion = 1
    /// Hard cap on one protocol line, in bytes, newline excluded.
    public static let maxLineBytes = 1 << 20
    /// Features the host offers in every request.
    public static let hostFeatures: [String] = [
        Feature.cancelMessage, Feature.cleanup, Feature.progress, Feature.diagnostic, Feature.heartbeat, Feature.session,
    ]

    /// Named capability flags; additive changes go here rather than into a version bump.
    public enum Feature {
        public static let cancelMessage = "cancel.message"
        public static let cleanup = "cleanup"
        public static let progress = "progress"
        public static let diagnostic = "diagnostic"
        public static let heartbeat = "heartbeat"
        /// The plugin may send `session` messages (a person's session: its state and where to reach it).
        public static let session = "session"
    }

    /// An encoder for compact, single-line protocol messages.
    public static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A decoder for protocol messages.
    public static func makeDecoder() -> JSONDecoder {
        JSONDecoder()
    }

    /// Encodes one message as one line of UTF-8, with the trailing newline.
    ///
    /// `JSONEncoder` leaves U+2028, U+2029 and U+0085 unescaped; they are escaped here
    /// so that no consumer that splits on Unicode line breaks ever sees a split message.
    public static func encodeLine<T: Encodable>(_ value: T, encoder: JSONEncoder = makeEncoder()) throws -> Data {
        var data = try encoder.encode(value)
        if data.contains(0xE2) || data.contains(0xC2) {
            if var text = String(data: data, encoding: .utf8) {
                text = text.replacingOccurrences(of: "\u{2028}", with: "\\u2028")
                    .replacingOccurrences(of: "\u{2029}", with: "\\u2029")
                    .replacingOccurrences(of: "\u{0085}", with: "\\u0085")
                data = Data(text.utf8)
            }
        }
        data.append(0x0A)
        return data
    }

    /// RFC 3339 timestamp with milliseconds, in UTC.
    public static func timestamp(_ date: Date = Date()) -> String {
        Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
    }

    /// Parses an RFC 3339 timestamp, with or without fractional seconds.
    public static func parseTimestamp(_ text: String) -> Date? {
        if let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) {
            return date
        }
        return try? Date.ISO8601FormatStyle().parse(text)
    }
}

/// Fixed exit code meanings for plugin processes.
public enum PluginExitCode {
    /// Success; the terminal message is `result`.
    public static let success: Int32 = 0
    /// Failure; the terminal message is `error`.
    public static let failure: Int32 = 1
    /// Usage error: unknown verb, bad argv, or not run under a host. No terminal message.
    public static let usage: Int32 = 2
    /// Protocol error: unparseable request or unsupported version. `error` if possible.
    public static let protocolError: Int32 = 3
}
