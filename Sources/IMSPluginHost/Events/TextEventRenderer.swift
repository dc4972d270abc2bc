import Foundation
import IMSProtocol
import Synchronization

/// Renders events for people: log lines, stderr, warnings, and progress that redraws in place on a TTY.
public final class TextEventRenderer: PluginEventObserver, Sendable {
    private let minimumLogLevel: LogLevel
    private let showStderr: Bool
    private let showToolOutput: Bool
    /// The output and what has been drawn on it, locked for each event so that lines never interleave.
    private let screen: Mutex<Screen>

    private struct Screen {
        let fileHandle: FileHandle
        let isTerminal: Bool
        var lastProgressDraw: [String: Date] = [:]
        var progressLineOpen = false
        var titles: [String: String] = [:]

        mutating func drawProgress(prefix: String, _ progress: ProgressUpdate, at time: Date) {
            let key = prefix + progress.task
            if progress.state == .report, let last = lastProgressDraw[key], time.timeIntervalSince(last) < 0.25 { return }
            lastProgressDraw[key] = time
            if let title = progress.title { titles[key] = title }
            var text = "\(prefix) \(titles[key] ?? progress.task)"
            if let current = progress.current {
                if let total = progress.total, total > 0 {
                    text += String(format: " %3.0f%% (%@/%@%@)", current / total * 100, TextEventRenderer.number(current), TextEventRenderer.number(total), progress.unit.map { " \($0.rawValue)" } ?? "")
                } else {
                    text += " \(TextEventRenderer.number(current))\(progress.unit.map { " \($0.rawValue)" } ?? "")"
                }
            }
            if let message = progress.message { text += " \(message)" }
            if progress.state == .end, progress.message == nil { text += " done" }
            if isTerminal {
                let data = Data(("\r\u{1B}[K" + text + (progress.state == .end ? "\n" : "")).utf8)
                try? fileHandle.write(contentsOf: data)
                progressLineOpen = progress.state != .end
            } else {
                write(text)
            }
        }

        mutating func write(_ line: String) {
            var text = line + "\n"
            if progressLineOpen {
                text = "\r\u{1B}[K" + text
                progressLineOpen = false
            }
            try? fileHandle.write(contentsOf: Data(text.utf8))
        }
    }

    /// - Parameter showToolOutput: whether log records relayed from a tool (those with a `source`, such as
    ///   zypper's or dnf's own output) are shown; warnings and errors always are.
    public init(fileHandle: FileHandle, isTerminal: Bool, minimumLogLevel: LogLevel = .info, showStderr: Bool = true, showToolOutput: Bool = true) {
        self.showToolOutput = showToolOutput
        self.screen = Mutex(Screen(fileHandle: fileHandle, isTerminal: isTerminal))
        self.minimumLogLevel = minimumLogLevel
        self.showStderr = showStderr
    }

    public func receive(_ event: TimedPluginEvent) {
        screen.withLock { screen in render(event, on: &screen) }
    }

    private func render(_ event: TimedPluginEvent, on screen: inout Screen) {
        let prefix = "[\(event.pluginID) \(event.phase)]"
        switch event.event {
        case .started(let pid, _):
            screen.write("\(prefix) started (pid \(pid))")
        case .message(let message):
            switch message {
            case .hello(let hello):
                screen.write("\(prefix) hello from \(hello.plugin.id) \(hello.plugin.version) (protocol \(hello.protocol.version))")
            case .log(let record):
                guard record.level >= minimumLogLevel else { return }
                if record.source != nil, !showToolOutput, record.level < .warn { return }
                let source = record.source.map { " \($0):" } ?? ""
                screen.write("\(prefix) \(record.level.rawValue):\(source) \(record.msg)")
            case .diagnostic(let diagnostic):
                var location = ""
                if let file = diagnostic.location?.file {
                    location = file + (diagnostic.location?.line.map { ":\($0)" } ?? "") + ": "
                }
                screen.write("\(prefix) \(location)\(diagnostic.severity.rawValue): \(diagnostic.message)")
            case .progress(let progress):
                screen.drawProgress(prefix: prefix, progress, at: event.time)
            case .artifact(let announcement):
                screen.write("\(prefix) artifact \(announcement.name): \(announcement.artifact.path)")
            default:
                return
            }
        case .stderr(let line):
            if showStderr { screen.write("\(prefix) | \(line)") }
        case .warning(let info):
            screen.write("\(prefix) warning: \(info.message)" + (info.hint.map { " (hint: \($0))" } ?? ""))
        case .stopping(let reason, let step):
            screen.write("\(prefix) stopping (\(step.replacingOccurrences(of: "_", with: " "))): \(reason)")
        case .finished(let outcome):
            let seconds = String(format: "%.2f", Double(outcome.duration.components.seconds) + Double(outcome.duration.components.attoseconds) / 1e18)
            switch outcome.status {
            case .succeeded(let result):
                screen.write("\(prefix) succeeded in \(seconds) s")
                for (name, artifact) in result.outputs.sorted(by: { $0.key < $1.key }) {
                    screen.write("\(prefix)   output \(name): \(artifact.path)")
                }
            case .described:
                screen.write("\(prefix) described in \(seconds) s")
            case .failed(let error):
                screen.write("\(prefix) failed in \(seconds) s: \(error.message) [\(error.code), \(error.category.rawValue)]")
                if let hint = error.hint { screen.write("\(prefix)   hint: \(hint)") }
            }
        }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int64(value)) : String(format: "%.1f", value)
    }
}
