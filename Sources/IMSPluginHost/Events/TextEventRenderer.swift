import Foundation
import IMSProtocol

/// Renders events for people: log lines, stderr, warnings, and progress that redraws in place on a TTY.
public final class TextEventRenderer: PluginEventObserver, @unchecked Sendable {
    private let fileHandle: FileHandle
    private let isTerminal: Bool
    private let minimumLogLevel: LogLevel
    private let showStderr: Bool
    private let showToolOutput: Bool
    private let lock = NSLock()
    private var lastProgressDraw: [String: Date] = [:]
    private var progressLineOpen = false
    private var titles: [String: String] = [:]

    /// - Parameter showToolOutput: whether log records relayed from a tool (those with a `source`, such as
    ///   zypper's or dnf's own output) are shown; warnings and errors always are.
    public init(fileHandle: FileHandle, isTerminal: Bool, minimumLogLevel: LogLevel = .info, showStderr: Bool = true, showToolOutput: Bool = true) {
        self.showToolOutput = showToolOutput
        self.fileHandle = fileHandle
        self.isTerminal = isTerminal
        self.minimumLogLevel = minimumLogLevel
        self.showStderr = showStderr
    }

    public func receive(_ event: TimedPluginEvent) {
        lock.lock()
        defer { lock.unlock() }
        let prefix = "[\(event.pluginID) \(event.phase)]"
        switch event.event {
        case .started(let pid, _):
            write("\(prefix) started (pid \(pid))")
        case .message(let message):
            switch message {
            case .hello(let hello):
                write("\(prefix) hello from \(hello.plugin.id) \(hello.plugin.version) (protocol \(hello.protocol.version))")
            case .log(let record):
                guard record.level >= minimumLogLevel else { return }
                if record.source != nil, !showToolOutput, record.level < .warn { return }
                let source = record.source.map { " \($0):" } ?? ""
                write("\(prefix) \(record.level.rawValue):\(source) \(record.msg)")
            case .diagnostic(let diagnostic):
                var location = ""
                if let file = diagnostic.location?.file {
                    location = file + (diagnostic.location?.line.map { ":\($0)" } ?? "") + ": "
                }
                write("\(prefix) \(location)\(diagnostic.severity.rawValue): \(diagnostic.message)")
            case .progress(let progress):
                drawProgress(prefix: prefix, progress, at: event.time)
            case .artifact(let announcement):
                write("\(prefix) artifact \(announcement.name): \(announcement.artifact.path)")
            default:
                return
            }
        case .stderr(let line):
            if showStderr { write("\(prefix) | \(line)") }
        case .warning(let info):
            write("\(prefix) warning: \(info.message)")
        case .stopping(let reason, let step):
            write("\(prefix) stopping (\(step.replacingOccurrences(of: "_", with: " "))): \(reason)")
        case .finished(let outcome):
            let seconds = String(format: "%.2f", Double(outcome.duration.components.seconds) + Double(outcome.duration.components.attoseconds) / 1e18)
            switch outcome.status {
            case .succeeded(let result):
                write("\(prefix) succeeded in \(seconds) s")
                for (name, artifact) in result.outputs.sorted(by: { $0.key < $1.key }) {
                    write("\(prefix)   output \(name): \(artifact.path)")
                }
            case .described:
                write("\(prefix) described in \(seconds) s")
            case .failed(let error):
                write("\(prefix) failed in \(seconds) s: \(error.message) [\(error.code), \(error.category.rawValue)]")
                if let hint = error.hint { write("\(prefix)   hint: \(hint)") }
            }
        }
    }

    private func drawProgress(prefix: String, _ progress: ProgressUpdate, at time: Date) {
        let key = prefix + progress.task
        if progress.state == .report, let last = lastProgressDraw[key], time.timeIntervalSince(last) < 0.25 { return }
        lastProgressDraw[key] = time
        if let title = progress.title { titles[key] = title }
        var text = "\(prefix) \(titles[key] ?? progress.task)"
        if let current = progress.current {
            if let total = progress.total, total > 0 {
                text += String(format: " %3.0f%% (%@/%@%@)", current / total * 100, Self.number(current), Self.number(total), progress.unit.map { " \($0.rawValue)" } ?? "")
            } else {
                text += " \(Self.number(current))\(progress.unit.map { " \($0.rawValue)" } ?? "")"
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

    private func write(_ line: String) {
        var text = line + "\n"
        if progressLineOpen {
            text = "\r\u{1B}[K" + text
            progressLineOpen = false
        }
        try? fileHandle.write(contentsOf: Data(text.utf8))
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int64(value)) : String(format: "%.1f", value)
    }
}
