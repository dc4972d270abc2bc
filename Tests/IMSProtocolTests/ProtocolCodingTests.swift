import Foundation
import IMSProtocol
import Testing

@Suite("Protocol coding")
struct ProtocolCodingTests {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func exampleFiles() -> [URL] {
        let directory = repositoryRoot.appendingPathComponent("protocol/examples")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix("manifest") }.sorted().map { directory.appendingPathComponent($0) }
    }

    @Test("every protocol example message decodes and re-encodes to the same JSON")
    func examplesRoundTrip() throws {
        let files = Self.exampleFiles()
        #expect(files.count >= 11, "expected an example per message type in protocol/examples")
        for file in files {
            let data = try Data(contentsOf: file)
            let original = try JSONDecoder().decode(JSONValue.self, from: data)
            let type = original["type"]?.stringValue ?? ""
            let reencoded: Data
            if type == "request" || type == "cancel" {
                let envelope = try JSONDecoder().decode(HostEnvelope.self, from: data)
                reencoded = try JSONEncoder().encode(envelope)
            } else {
                let envelope = try JSONDecoder().decode(PluginEnvelope.self, from: data)
                if case .unknown = envelope.message { Issue.record("\(file.lastPathComponent): unknown type \(type)") }
                reencoded = try JSONEncoder().encode(envelope)
            }
            let roundTripped = try JSONDecoder().decode(JSONValue.self, from: reencoded)
            #expect(Self.normalized(roundTripped) == Self.normalized(original), "\(file.lastPathComponent) changed in a round trip")
        }
    }

    /// Drops empty objects that the Swift types add as defaults (e.g. result.metadata = {}).
    static func normalized(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let members):
            var out: [String: JSONValue] = [:]
            for (key, member) in members {
                let normal = normalized(member)
                if case .object(let inner) = normal, inner.isEmpty, ["metadata", "facts", "outputs", "inputs", "secrets", "config"].contains(key) { continue }
                out[key] = normal
            }
            return .object(out)
        case .array(let items): return .array(items.map(normalized))
        default: return value
        }
    }

    @Test("encoded lines are single lines even with U+2028 and newlines in strings")
    func lineSafety() throws {
        let record = LogRecord(level: .info, msg: "a\nb\u{2028}c\u{2029}d\u{0085}e")
        let line = try WireFormat.encodeLine(PluginEnvelope(message: .log(record)))
        let text = try #require(String(data: line, encoding: .utf8))
        #expect(text.filter { $0 == "\n" }.count == 1)
        #expect(!text.contains("\u{2028}") && !text.contains("\u{2029}") && !text.contains("\u{0085}"))
        let decoded = try JSONDecoder().decode(PluginEnvelope.self, from: line.dropLast())
        #expect(decoded.message == .log(record))
    }

    @Test("unknown message types decode as unknown, and unknown fields are ignored")
    func forwardCompatibility() throws {
        let future = #"{"ims":1,"type":"telemetry","data":{"x":1}}"#
        let decoded = try JSONDecoder().decode(PluginEnvelope.self, from: Data(future.utf8))
        #expect(decoded.message == .unknown(type: "telemetry"))
        let extra = #"{"ims":1,"type":"log","extra":true,"data":{"level":"warn","msg":"m","new_field":[1]}}"#
        let log = try JSONDecoder().decode(PluginEnvelope.self, from: Data(extra.utf8))
        #expect(log.message == .log(LogRecord(level: .warn, msg: "m")))
    }

    @Test("keys on the wire are snake_case")
    func snakeCase() throws {
        let error = ErrorInfo(code: "ims.timeout", category: .timeout, message: "m", retryAfterSeconds: 3)
        let artifact = ArtifactRef(path: "/w/x", kind: .file, mediaType: "text/plain")
        let text = String(decoding: try JSONEncoder().encode(error), as: UTF8.self) + String(decoding: try JSONEncoder().encode(artifact), as: UTF8.self)
        #expect(text.contains("retry_after_seconds") && text.contains("media_type"))
        #expect(!text.contains("retryAfter") && !text.contains("mediaType"))
    }

    @Test("payload ids parse and phase kinds map names", arguments: [
        ("build-root/v1", "build-root", 1), ("custom/v12", "custom", 12),
    ])
    func payloadIDs(text: String, kind: String, version: Int) throws {
        let id = try #require(PayloadID(text))
        #expect(id.kind == kind && id.version == version)
    }

    @Test("malformed payload ids are rejected", arguments: ["build-root", "build-root/1", "/v1", "x/v0", "x/vx"])
    func badPayloadIDs(text: String) {
        #expect(PayloadID(text) == nil)
    }

    @Test("site phases map to the custom kind")
    func customPhase() {
        #expect(PhaseKind.of(phaseName: "build-root") == .buildRoot)
        #expect(PhaseKind.of(phaseName: "scan-cves") == .custom)
    }
}
