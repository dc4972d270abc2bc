@testable import IMSPluginHost
import IMSProtocol
import Testing

/// The protocol state machine, fed stdout lines as a plugin would write them, without a process.
@Suite("Plugin session")
struct PluginSessionTests {
    static let pluginID = "org.ims.test.session"

    /// One thing seen on stdout.
    enum Input: Sendable {
        /// A line as the plugin wrote it (without the newline).
        case line(String)
        /// A line of raw bytes.
        case bytes([UInt8])
        /// A line longer than the limit.
        case overflow
    }

    static let hello = Input.line(
        #"{"ims":1,"type":"hello","data":{"plugin":{"id":"org.ims.test.session","version":"1.0.0"},"protocol":{"version":1},"features":[]}}"#)
    static let log = Input.line(#"{"ims":1,"type":"log","data":{"level":"info","msg":"working"}}"#)
    static let result = Input.line(#"{"ims":1,"type":"result","data":{"outputs":{},"metadata":{},"facts":{}}}"#)
    static let error = Input.line(
        #"{"ims":1,"type":"error","data":{"code":"build.failed","category":"user","message":"it broke"}}"#)
    static let describe = Input.line(
        #"{"ims":1,"type":"describe","data":{"plugin":{"id":"org.ims.test.session","version":"1.0.0"},"protocol":{"versions":[1],"features":[]},"phases":[{"name":"test","payloads":["custom/v1"]}]}}"#)

    static func artifact(at path: String) -> Input {
        .line(#"{"ims":1,"type":"artifact","data":{"name":"rootfs","path":"\#(path)","kind":"dir"}}"#)
    }

    static func result(output path: String) -> Input {
        .line(#"{"ims":1,"type":"result","data":{"outputs":{"rootfs":{"path":"\#(path)","kind":"dir"}},"metadata":{},"facts":{}}}"#)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var spec: String
        var verb = PluginVerb.run
        var strict = false
        var inputs: [Input]
        /// The code of the violation recorded, if one must be.
        var violation: String?
        /// Its message to the letter, where the case pins it.
        var message: String?
        /// The type of the terminal message accepted, if one must be.
        var terminal: String?
        var saidHello = true
        /// The events passed on, by message type ("warning" for a warning).
        var events: [String] = []
        var messages: Int?
        var strayLines = 0
        var stopsReadingStdout = false
        var testDescription: String { spec }
    }

    static let cases: [Case] = [
        Case(spec: "hello then a result: the hello is passed on, the result ends the exchange", inputs: [hello, log, result],
             terminal: "result", events: ["hello", "log"], messages: 3),
        Case(spec: "an error after hello ends the exchange", inputs: [hello, error], terminal: "error", events: ["hello"]),
        Case(spec: "an error before hello is accepted as a refusal", inputs: [error], terminal: "error", saidHello: false),
        Case(spec: "a refusal before hello in another protocol major is accepted",
             inputs: [.line(#"{"ims":2,"type":"error","data":{"code":"ims.protocol.unsupported_version","category":"protocol","message":"no"}}"#)],
             terminal: "error", saidHello: false),
        Case(spec: "a message before hello is a missing hello", inputs: [log], violation: HostErrorCode.missingHello,
             message: "plugin 'org.ims.test.session' sent 'log' before 'hello'", saidHello: false),
        Case(spec: "an unknown message type before hello is a missing hello",
             inputs: [.line(#"{"ims":1,"type":"future-thing","data":{}}"#)], violation: HostErrorCode.missingHello, saidHello: false),
        Case(spec: "a hello from another plugin is a hello mismatch",
             inputs: [.line(#"{"ims":1,"type":"hello","data":{"plugin":{"id":"org.ims.other","version":"1"},"protocol":{"version":1},"features":[]}}"#)],
             violation: HostErrorCode.helloMismatch, message: "plugin 'org.ims.test.session' introduced itself as 'org.ims.other'",
             saidHello: false),
        Case(spec: "a hello naming the plugin in other letter case is accepted",
             inputs: [.line(#"{"ims":1,"type":"hello","data":{"plugin":{"id":"ORG.IMS.TEST.SESSION","version":"1.0.0"},"protocol":{"version":1},"features":[]}}"#)],
             events: ["hello"]),
        Case(spec: "a hello with another version than plugin.json is a hello mismatch",
             inputs: [.line(#"{"ims":1,"type":"hello","data":{"plugin":{"id":"org.ims.test.session","version":"2.0.0"},"protocol":{"version":1},"features":[]}}"#)],
             violation: HostErrorCode.helloMismatch,
             message: "plugin 'org.ims.test.session' introduced itself as version 2.0.0, but its plugin.json says 1.0.0", saidHello: false),
        Case(spec: "a hello choosing another protocol version is a hello mismatch",
             inputs: [.line(#"{"ims":1,"type":"hello","data":{"plugin":{"id":"org.ims.test.session","version":"1.0.0"},"protocol":{"version":2},"features":[]}}"#)],
             violation: HostErrorCode.helloMismatch,
             message: "plugin 'org.ims.test.session' answered with protocol 2; the host asked for 1", saidHello: false),
        Case(spec: "a second hello is malformed", inputs: [hello, hello], violation: HostErrorCode.malformedMessage,
             message: "plugin 'org.ims.test.session' sent a second 'hello'", events: ["hello"]),
        Case(spec: "a message in another protocol major after hello is malformed",
             inputs: [hello, .line(#"{"ims":2,"type":"log","data":{"level":"info","msg":"m"}}"#)],
             violation: HostErrorCode.malformedMessage,
             message: "plugin 'org.ims.test.session' sent a protocol 2 message after protocol 1 was negotiated", events: ["hello"],
             messages: 1),
        Case(spec: "output after the result is output after the terminal message", inputs: [hello, result, log],
             violation: HostErrorCode.outputAfterTerminal,
             message: "plugin 'org.ims.test.session' wrote a 'log' message after its terminal 'result' message", terminal: "result",
             events: ["hello"]),
        Case(spec: "a describe message during run is malformed", inputs: [hello, describe], violation: HostErrorCode.malformedMessage,
             message: "plugin 'org.ims.test.session' sent 'describe' during 'run'", events: ["hello"]),
        Case(spec: "an unknown message type after hello is ignored",
             inputs: [hello, .line(#"{"ims":1,"type":"future-thing","data":{}}"#), result], terminal: "result", events: ["hello"],
             messages: 3),
        Case(spec: "a stray line is a counted warning in lenient mode", inputs: [hello, .line("Downloading..."), result],
             terminal: "result", events: ["hello", "warning"], messages: 2, strayLines: 1),
        Case(spec: "a stray line is a violation in strict mode", strict: true, inputs: [hello, .line("Downloading...")],
             violation: HostErrorCode.strayOutput,
             message: "plugin 'org.ims.test.session' wrote a stray line to stdout: \"Downloading...\"",
             events: ["hello"], strayLines: 1),
        Case(spec: "a line that is not JSON is malformed", inputs: [hello, .line("{not json")],
             violation: HostErrorCode.malformedMessage,
             message: "plugin 'org.ims.test.session' wrote a malformed protocol message: not valid JSON", events: ["hello"]),
        Case(spec: "a JSON line without 'ims' is malformed", inputs: [.line(#"{"type":"hello"}"#)],
             violation: HostErrorCode.malformedMessage,
             message: "plugin 'org.ims.test.session' wrote a malformed protocol message: missing 'ims'", saidHello: false),
        Case(spec: "blank lines, CRLF endings and a leading record separator are accepted",
             inputs: [.line(""), .line("  \t"), .bytes([0x1E] + Array(#"{"ims":1,"type":"hello","data":{"plugin":{"id":"org.ims.test.session","version":"1.0.0"},"protocol":{"version":1},"features":[]}}"#.utf8)), .bytes(Array(#"{"ims":1,"type":"result","data":{"outputs":{},"metadata":{},"facts":{}}}"#.utf8) + [0x0D])],
             terminal: "result", events: ["hello"], messages: 2),
        Case(spec: "stdout that is not UTF-8 is a violation and ends reading", inputs: [hello, .bytes([0x7B, 0xFF, 0x7D])],
             violation: HostErrorCode.invalidUTF8, message: "plugin 'org.ims.test.session' wrote stdout that is not valid UTF-8",
             events: ["hello"], stopsReadingStdout: true),
        Case(spec: "a line over the limit is a violation and ends reading", inputs: [hello, .overflow],
             violation: HostErrorCode.lineTooLong,
             message: "plugin 'org.ims.test.session' wrote a stdout line longer than the 4096-byte limit", events: ["hello"],
             stopsReadingStdout: true),
        Case(spec: "an artifact inside the workspace is passed on", inputs: [hello, artifact(at: "/jobs/7/phases/test/out/rootfs")],
             events: ["hello", "artifact"]),
        Case(spec: "an artifact escaping the workspace through '..' is a violation",
             inputs: [hello, artifact(at: "/jobs/7/phases/../../8/out/rootfs")], violation: HostErrorCode.artifactOutsideWorkspace,
             message: "plugin 'org.ims.test.session' named artifact 'rootfs' at /jobs/7/phases/../../8/out/rootfs, which is outside the job workspace /jobs/7",
             events: ["hello"]),
        Case(spec: "a result naming an output outside the workspace is a violation, not a result",
             inputs: [hello, result(output: "/etc")], violation: HostErrorCode.artifactOutsideWorkspace, events: ["hello"]),
        Case(spec: "a result naming the workspace itself is accepted", inputs: [hello, result(output: "/jobs/7")], terminal: "result",
             events: ["hello"]),
        Case(spec: "only the first violation counts", inputs: [log, .line("{broken"), .overflow], violation: HostErrorCode.missingHello,
             saidHello: false, stopsReadingStdout: true),
        Case(spec: "lines after a violation are ignored", inputs: [hello, .line("{broken"), result, .bytes([0xFF])],
             violation: HostErrorCode.malformedMessage, events: ["hello"], messages: 1),
        Case(spec: "describe answered with a describe message ends the exchange", verb: .describe, inputs: [describe],
             terminal: "describe", saidHello: false),
        Case(spec: "describe answered with an error ends the exchange", verb: .describe, inputs: [error], terminal: "error",
             saidHello: false),
        Case(spec: "describe answered with a log is malformed", verb: .describe, inputs: [log], violation: HostErrorCode.malformedMessage,
             message: "plugin 'org.ims.test.session' answered 'describe' with a 'log' message", saidHello: false),
        Case(spec: "describe answered with a result is malformed", verb: .describe, inputs: [result],
             violation: HostErrorCode.malformedMessage, saidHello: false),
    ]

    static func session(verb: PluginVerb = .run, strict: Bool = false) -> PluginSession {
        PluginSession(terms: .init(
            pluginID: pluginID, verb: verb, negotiatedVersion: 1, strict: strict, maxLineBytes: 4096, workspaceRoot: "/jobs/7",
            resolvePath: { PluginProcessSupervisor.lexicallyNormalized($0) }, pluginVersion: "1.0.0"))
    }

    @Test("stdout is judged by the protocol", arguments: cases)
    func protocolRules(_ testCase: Case) {
        var session = Self.session(verb: testCase.verb, strict: testCase.strict)
        let parser = MessageParser()
        var events: [String] = []
        var violationsReported: [PluginSession.Violation] = []
        var stopsReading = false
        for input in testCase.inputs {
            let observation: StdoutObservation?
            switch input {
            case .line(let text): observation = StdoutObservation(line: Array(text.utf8), parser: parser)
            case .bytes(let bytes): observation = StdoutObservation(line: bytes, parser: parser)
            case .overflow: observation = .overflow
            }
            guard let observation else { continue }
            let reaction = session.observe(observation)
            switch reaction.event {
            case .message(let message)?: events.append(message.type)
            case .warning?: events.append("warning")
            case nil: break
            default: events.append("unexpected event")
            }
            if let violation = reaction.violation { violationsReported.append(violation) }
            stopsReading = stopsReading || reaction.stopReadingStdout
        }
        #expect(session.violation?.code == testCase.violation)
        if let message = testCase.message {
            #expect(session.violation?.message == message)
        }
        #expect(violationsReported == (session.violation.map { [$0] } ?? []), "a violation is reported once, when it happens")
        #expect(session.terminal?.type == testCase.terminal)
        #expect((session.hello != nil) == testCase.saidHello)
        #expect(events == testCase.events)
        if let messages = testCase.messages {
            #expect(session.messageCount == messages)
        }
        #expect(session.strayLines == testCase.strayLines)
        #expect(stopsReading == testCase.stopsReadingStdout)
    }

    @Test("a stray line in lenient mode warns with the line, cut to 200 characters")
    func strayWarning() {
        var session = Self.session()
        let long = String(repeating: "x", count: 300)
        let reaction = session.observe(.stray(long))
        guard case .warning(let info)? = reaction.event else {
            Issue.record("expected a warning, got \(String(describing: reaction.event))")
            return
        }
        #expect(info.code == HostErrorCode.strayOutput)
        #expect(info.category == .protocol)
        #expect(info.details?["line"]?.stringValue == String(repeating: "x", count: 200))
        #expect(info.message == "plugin 'org.ims.test.session' wrote a stray line to stdout: \"\(String(repeating: "x", count: 200))\"…")
        #expect(info.hint?.contains("stderr") == true)
        #expect(reaction.violation == nil)
    }

    @Test("a violation carries the extra details the host reports")
    func violationDetails() {
        var session = Self.session()
        _ = session.observe(.malformed(reason: "not valid JSON", line: String(repeating: "{", count: 250)))
        #expect(session.violation?.extra == ["line": .string(String(repeating: "{", count: 200))])
        var overflowing = Self.session()
        _ = overflowing.observe(.overflow)
        #expect(overflowing.violation?.extra == ["limit_bytes": 4096])
    }
}
