import IMSProtocol
import Testing

@testable import IMSEngine

/// What a job's error says when a phase failed, as a table: a full disk is named whatever the plugin called it, and
/// a bare exit status gets the tool's last meaningful lines.
@Suite("Failure explanations")
struct FailureExplanationTests {
    static func error(_ code: String, _ category: ErrorCategory, _ message: String, tail: [String] = [], stderr: String? = nil, hint: String? = nil) -> ErrorInfo {
        var details: [String: JSONValue] = [:]
        if !tail.isEmpty { details["output_tail"] = .array(tail.map(JSONValue.string)) }
        if let stderr { details["stderr_tail"] = .string(stderr) }
        var info = ErrorInfo(code: code, category: category, message: message)
        info.details = details.isEmpty ? nil : .object(details)
        info.hint = hint
        return info
    }

    @Test("each failure gets the message and category a person needs", arguments: [
        // A full disk in the tool's output, under a generic code: named, and an environment problem.
        (error("package.mksquashfs_failed", .internal, "mksquashfs exited with code 1: Creating 4.0 filesystem on /w/out/rootfs.squashfs, block size 131072.",
               tail: ["Parallel mksquashfs: Using 2 processors", "Creating 4.0 filesystem on /w/out/rootfs.squashfs, block size 131072.",
                      "Write failed because No space left on device", "FATAL ERROR: Failed to write to output filesystem"]),
         "the disk is full: p failed [package.mksquashfs_failed]: Write failed because No space left on device", ErrorCategory.environment),
        // A plugin that already names the full disk keeps its own message.
        (error("package.no_space", .environment, "the disk is full: mksquashfs could not write the image to /w/out (0 bytes free)"),
         "p failed: the disk is full: mksquashfs could not write the image to /w/out (0 bytes free) [package.no_space]", .environment),
        // A crash: the host's stderr tail says why, without its noise.
        (error("ims.plugin.crashed", .internal, "plugin exited with status 1 without an error message",
               stderr: "Traceback (most recent call last):\n  File \"x\", line 3\nKeyError: 'rootfs'\n"),
         "p failed: plugin exited with status 1 without an error message [ims.plugin.crashed] (last output: Traceback (most recent call last): | File \"x\", line 3 | KeyError: 'rootfs')", .internal),
        // A message that already says why stays as it is, with the hint.
        (error("build-root.package_not_found", .user, "package vim not found in any repository", tail: ["Loading repository data...", "No provider of 'vim' found."], hint: "check the recipe"),
         "p failed: package vim not found in any repository [build-root.package_not_found] — check the recipe", .user),
        // A bare exit status with only noise after it: nothing to add.
        (error("x.site.failed", .internal, "tool exited with code 2", tail: ["[=====    ] 50%", ""]),
         "p failed: tool exited with code 2 [x.site.failed]", .internal),
    ] as [(ErrorInfo, String, ErrorCategory)])
    func explanations(_ error: ErrorInfo, _ message: String, _ category: ErrorCategory) {
        let explained = FailureExplanation.describe(pluginID: "p", error: error)
        #expect(explained.message == message)
        #expect(explained.category == category)
    }
}
