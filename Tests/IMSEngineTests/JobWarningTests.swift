import Foundation
@testable import IMSEngine
import IMSPluginHost
import IMSProtocol
import Testing

/// Which job events are warnings the job's result lists: a table, no process.
@Suite("Job warnings")
struct JobWarningTests {
    static func plugin(_ event: PluginEvent) -> JobStreamEvent {
        JobStreamEvent(time: Date(), jobID: UUID(), step: "build-root", pluginID: "org.ims.builder.zypper", payload: .plugin(event))
    }

    static func engine(_ event: EngineEvent) -> JobStreamEvent {
        JobStreamEvent(time: Date(), jobID: UUID(), step: "prepare-recipe", pluginID: nil, payload: .engine(event))
    }

    @Test("warn logs, warning diagnostics and the host's own warnings count; other levels and severities do not", arguments: [
        (plugin(.message(.log(LogRecord(level: .warn, msg: "config.sh line 4: 'x' is not a command in the image")))), "config.sh line 4: 'x' is not a command in the image"),
        (plugin(.message(.log(LogRecord(level: .info, msg: "installing")))), nil),
        (plugin(.message(.log(LogRecord(level: .error, msg: "failed")))), nil),
        (plugin(.message(.diagnostic(Diagnostic(severity: .warning, message: "odd repository")))), "odd repository"),
        (plugin(.message(.diagnostic(Diagnostic(severity: .note, message: "fyi")))), nil),
        (plugin(.warning(ErrorInfo(code: "ims.protocol.stray_output", category: .internal, message: "stray line on stdout"))), "stray line on stdout"),
        (plugin(.stderr("warning: something on stderr")), nil),
        (engine(.diagnostic(.init(severity: "warning", message: "config.xml:3: name trimmed"))), "config.xml:3: name trimmed"),
        (engine(.diagnostic(.init(severity: "note", message: "schema 7.4"))), nil),
    ] as [(JobStreamEvent, String?)])
    func warningRule(_ event: JobStreamEvent, _ expected: String?) {
        let warning = JobEventSink.warning(in: event)
        #expect(warning?.message == expected)
        if expected != nil { #expect(warning?.step == event.step && warning?.pluginID == event.pluginID) }
    }
}
