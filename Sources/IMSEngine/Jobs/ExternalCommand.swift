import Foundation

/// Runs a host tool for a builtin step (e.g. `unsquashfs` for fetch-image): stdin from /dev/null, stdout and
/// stderr captured (the last lines are kept for the error), terminated when the task is cancelled.
enum ExternalCommand {
    struct Result: Sendable {
        var status: Int32
        var outputTail: [String]
    }

    /// Finds `name` on the plugins' PATH, or `nil`.
    static func locate(_ name: String, path: String) -> String? {
        path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func run(_ executable: String, _ arguments: [String], keepLines: Int = 20) async throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let tail = OutputTail(limit: keepLines)
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if !data.isEmpty { tail.append(data) }
        }
        let status: Int32 = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
                process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
                do {
                    try process.run()
                } catch {
                    process.terminationHandler = nil
                    continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            if process.isRunning { process.terminate() }
        }
        pipe.fileHandleForReading.readabilityHandler = nil
        tail.append(pipe.fileHandleForReading.readDataToEndOfFile())
        return Result(status: status, outputTail: tail.lines)
    }

    /// The last lines of a tool's output.
    private final class OutputTail: @unchecked Sendable {
        private let lock = NSLock()
        private var buffer = Data()
        private let limit: Int

        init(limit: Int) { self.limit = limit }

        func append(_ data: Data) {
            lock.lock()
            buffer.append(data)
            if buffer.count > 64 * 1024 { buffer = buffer.suffix(32 * 1024) }
            lock.unlock()
        }

        var lines: [String] {
            lock.lock()
            defer { lock.unlock() }
            let text = String(decoding: buffer, as: UTF8.self)
            return Array(text.split(separator: "\n").map(String.init).suffix(limit))
        }
    }
}
