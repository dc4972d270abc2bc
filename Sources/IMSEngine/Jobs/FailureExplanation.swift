import Foundation
import IMSProtocol

/// What a job's error says when a phase failed: the plugin's message with its code and hint, the tool's last
/// meaningful output lines when the message alone does not say why (a crash, a bare exit status), and a full disk
/// named as such whatever the plugin called it. Pure, so it is table-tested.
enum FailureExplanation {
    /// Lines that never explain a failure: progress, banners, blank lines.
    static func isMeaningful(_ line: String) -> Bool {
        let text = line.trimmingCharacters(in: .whitespaces)
        if text.isEmpty { return false }
        let noise = ["Parallel mksquashfs:", "Creating 4.0 filesystem", "Retrieving:", "Loading repository data", "Reading installed packages"]
        if noise.contains(where: { text.hasPrefix($0) }) { return false }
        // A progress bar or a percentage alone.
        if text.allSatisfy({ "[]=-|/\\ .0123456789%".contains($0) }) { return false }
        return true
    }

    static let diskFull = ["No space left on device", "ENOSPC", "Disk quota exceeded"]

    /// The job error's message and category for a phase `pluginID` ended with `error`.
    static func describe(pluginID: String, error: ErrorInfo) -> (message: String, category: ErrorCategory) {
        var message = "\(pluginID) failed: \(error.message) [\(error.code)]"
        let tail = outputTail(error.details)
        let meaningful = tail.filter(isMeaningful).map { $0.trimmingCharacters(in: .whitespaces) }
        let everything = [error.message] + tail
        if error.code != "package.no_space", let line = everything.first(where: { text in diskFull.contains { text.contains($0) } }) {
            message = "the disk is full: \(pluginID) failed [\(error.code)]: \(line.trimmingCharacters(in: .whitespaces))"
            if let hint = error.hint { message += " — \(hint)" }
            return (message, .environment)
        }
        // A message that is only an exit status or a signal says nothing: add what the tool last said.
        let bare = error.code.hasPrefix("ims.plugin.") || error.message.range(of: #"^(.*exit(ed)? (with )?(code|status) -?\d+|.*killed by signal.*)$"#, options: .regularExpression) != nil
        if bare, !meaningful.isEmpty {
            message += " (last output: " + meaningful.suffix(3).joined(separator: " | ") + ")"
        }
        if let hint = error.hint { message += " — \(hint)" }
        return (message, error.category)
    }

    /// The lines of `details.stderr_tail` (the host's) or `details.output_tail` (a plugin's), newest last.
    static func outputTail(_ details: JSONValue?) -> [String] {
        guard case .object(let members)? = details else { return [] }
        if let text = members["stderr_tail"]?.stringValue {
            return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).suffix(20)
        }
        if case .array(let lines)? = members["output_tail"] {
            return lines.compactMap(\.stringValue).suffix(20)
        }
        return []
    }
}
