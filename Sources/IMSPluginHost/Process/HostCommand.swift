import CIMSSystem
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a host tool (for example `unsquashfs` for a builtin step) through the one hardened spawn path that plugins
/// use: a new session, descriptors 0–2 only, stdin from /dev/null, stdout and stderr read through `poll(2)` into
/// a bounded tail, the whole process group killed and reaped at the end, and SIGTERM then SIGKILL to the group
/// when the calling task is cancelled or the time limit passes.
public enum HostCommand {
    /// How a host tool ended.
    public struct Result: Sendable {
        /// How the process ended; `nil` when it could not be reaped.
        public var exit: ExitStatus?
        /// The last lines of stdout and stderr, interleaved as read (at most `keepLines`).
        public var outputTail: [String]
        /// Whether the run was stopped (cancelled or past its time limit) before the tool exited by itself.
        public var stopped: Bool
        public var duration: Duration
        /// How often the poll loop woke: a handful per event, never a spin while a deadline is pending.
        public var wakeups: Int

        /// The exit code, or 128+N for a signal, as a shell reports it.
        public var status: Int32 {
            switch exit {
            case .exited(let code)?: code
            case .signaled(let signal)?: 128 + signal
            case nil: -1
            }
        }
    }

    /// Why a host tool could not be started.
    public struct LaunchError: Error, Sendable, CustomStringConvertible {
        public var executable: String
        public var errno: Int32
        /// The system's words for `errno`.
        public var reason: String { String(cString: strerror(errno)) }
        public var description: String { "cannot start \(executable): \(reason)" }
    }

    /// The bounded part of a tool's output kept in memory.
    static let tailBytes = 64 * 1024

    /// Finds `name` on `path` (a PATH-style list), or `nil`.
    public static func locate(_ name: String, path: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `executable` with `arguments` and waits for it.
    ///
    /// - Parameters:
    ///   - environment: the child's whole environment (`KEY=VALUE`); by default a minimal one with the host PATH.
    ///   - timeLimit: stop the tool (SIGTERM, then SIGKILL after `killGrace`) when it runs longer.
    ///   - input: bytes written to the tool's stdin before it is closed (a secret or a script: never an argument).
    ///     At most 60 KiB, so the write never waits on the tool.
    /// - Throws: ``LaunchError`` when the tool cannot be started. A tool that fails, crashes or is stopped is a
    ///   ``Result``, never a throw.
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String]? = nil, workingDirectory: String? = nil,
        keepLines: Int = 20, timeLimit: Duration? = nil, killGrace: Duration = .seconds(5), input: [UInt8] = []
    ) async throws(LaunchError) -> Result {
        precondition(input.count <= 60 * 1024, "HostCommand input larger than a pipe buffer")
        ims_ignore_sigpipe()
        // Orphaned grandchildren are re-parented here, so the group reaping below can reap them.
        ims_become_subreaper()
        let stop = StopSignal()
        let launch = Launch(
            executable: executable, argv: [executable] + arguments,
            environment: environment ?? ["PATH=\(PluginInvoker.systemPath)", "LANG=C.UTF-8", "TZ=UTC"],
            workingDirectory: workingDirectory ?? FileManager.default.currentDirectoryPath, keepLines: keepLines,
            timeLimit: timeLimit, killGrace: killGrace, input: input)
        let outcome: Swift.Result<Result, LaunchError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // poll(2) blocks: the loop runs on its own thread, never on the cooperative pool.
                let thread = Thread { continuation.resume(returning: launch.run(stop: stop)) }
                thread.name = "ims-command-" + (executable as NSString).lastPathComponent
                thread.start()
            }
        } onCancel: {
            stop.fire()
        }
        return try outcome.get()
    }

    /// A self-pipe that a cancellation handler writes to wake the poll loop.
    final class StopSignal: Sendable {
        private let descriptors: (read: Int32, write: Int32)

        init() {
            var fds: [Int32] = [-1, -1]
            _ = ims_pipe_nonblocking(&fds)
            descriptors = (fds[0], fds[1])
        }

        deinit {
            close(descriptors.read)
            close(descriptors.write)
        }

        var pollFD: Int32 { descriptors.read }

        func fire() {
            var byte: UInt8 = 1
            _ = write(descriptors.write, &byte, 1)
        }
    }

    /// One run of a tool, driven by a poll loop on a dedicated thread.
    struct Launch: Sendable {
        var executable: String
        var argv: [String]
        var environment: [String]
        var workingDirectory: String
        var keepLines: Int
        var timeLimit: Duration?
        var killGrace: Duration
        var input: [UInt8] = []

        func run(stop: StopSignal) -> Swift.Result<Result, LaunchError> {
            let clock = ContinuousClock()
            let started = clock.now
            let child: Spawn.Piped
            switch Spawn.piped(executable, argv: argv, environment: environment, workingDirectory: workingDirectory) {
            case .success(let spawned): child = spawned
            case .failure(let failure): return .failure(failure)
            }
            let pid = child.pid
            // The input fits the pipe's buffer, so this never blocks; then EOF (a tool that reads nothing sees it at once).
            var written = 0
            while written < input.count {
                let count = input[written...].withUnsafeBytes { write(child.stdin, $0.baseAddress, $0.count) }
                if count > 0 { written += count } else if count < 0 && errno == EINTR { continue } else { break }
            }
            close(child.stdin)
            var outputFDs = [child.stdout, child.stderr]
            let pidFD = ims_pidfd_open(pid)
            var tail = OutputTail(limitBytes: HostCommand.tailBytes)
            var stopped = false
            var killAt: ContinuousClock.Instant?
            /// Set when the tool has exited: output still in the pipes is read until then (a grandchild that
            /// holds them open must not keep the caller waiting).
            var drainUntil: ContinuousClock.Instant?
            let deadline = timeLimit.map { started.advanced(by: $0) }
            let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 64 * 1024)
            defer { buffer.deallocate() }

            func observeExit() {
                var value: Int32 = 0
                if drainUntil == nil, ims_peek_exit(pid, &value) != 0 { drainUntil = clock.now.advanced(by: .milliseconds(250)) }
            }

            var wakeups = 0
            while true {
                wakeups += 1
                let now = clock.now
                if let drainUntil, outputFDs.allSatisfy({ $0 < 0 }) || now >= drainUntil { break }
                if let deadline, !stopped, now >= deadline { stopped = true; _ = kill(-pid, SIGTERM); killAt = now.advanced(by: killGrace) }
                if let due = killAt, now >= due { _ = kill(-pid, SIGKILL); killAt = nil }

                var fds: [pollfd] = outputFDs.filter { $0 >= 0 }.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                if drainUntil == nil, pidFD >= 0 { fds.append(pollfd(fd: pidFD, events: Int16(POLLIN), revents: 0)) }
                if !stopped { fds.append(pollfd(fd: stop.pollFD, events: Int16(POLLIN), revents: 0)) }
                // Only deadlines still ahead count, so poll never spins on one already acted on.
                var wakeups: [ContinuousClock.Instant] = [drainUntil, killAt].compactMap { $0 }
                if let deadline, !stopped { wakeups.append(deadline) }
                if pidFD < 0, drainUntil == nil { wakeups.append(now.advanced(by: .milliseconds(50))) }
                let timeout = wakeups.min().map { Self.milliseconds(until: $0, from: now) } ?? -1
                let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeout) }
                if ready < 0, errno != EINTR { break }
                for entry in fds where entry.revents != 0 {
                    if entry.fd == stop.pollFD {
                        stopped = true
                        _ = kill(-pid, SIGTERM)
                        killAt = clock.now.advanced(by: killGrace)
                    } else if entry.fd == pidFD {
                        observeExit()
                    } else if let index = outputFDs.firstIndex(of: entry.fd) {
                        let count = read(entry.fd, buffer, 64 * 1024)
                        if count > 0 {
                            tail.append(UnsafeBufferPointer(start: buffer, count: count))
                        } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                            close(entry.fd)
                            outputFDs[index] = -1
                        }
                    }
                }
                if pidFD < 0 { observeExit() }
            }
            for fd in outputFDs where fd >= 0 { close(fd) }
            if pidFD >= 0 { close(pidFD) }
            // Kill what is left of the group while the zombie still pins its id, then reap both.
            _ = kill(-pid, SIGKILL)
            let raw = ims_wait(pid)
            _ = ims_reap_group(pid, 200)
            var exit: ExitStatus?
            if raw >= 0 {
                var value: Int32 = 0
                switch ims_decode_status(raw, &value) {
                case 1: exit = .exited(value)
                case 2: exit = .signaled(value)
                default: exit = nil
                }
            }
            return .success(Result(exit: exit, outputTail: tail.lines(keeping: keepLines), stopped: stopped, duration: started.duration(to: clock.now), wakeups: wakeups))
        }

        static func milliseconds(until instant: ContinuousClock.Instant, from now: ContinuousClock.Instant) -> Int32 {
            let remaining = now.duration(to: instant)
            if remaining <= .zero { return 0 }
            let (seconds, attoseconds) = remaining.components
            return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
        }
    }

    /// The last bytes a tool wrote, bounded.
    struct OutputTail {
        var limitBytes: Int
        private var bytes: [UInt8] = []

        init(limitBytes: Int) { self.limitBytes = limitBytes }

        mutating func append(_ chunk: UnsafeBufferPointer<UInt8>) {
            bytes.append(contentsOf: chunk)
            if bytes.count > limitBytes { bytes.removeFirst(bytes.count - limitBytes / 2) }
        }

        func lines(keeping count: Int) -> [String] {
            let text = String(decoding: bytes, as: UTF8.self)
            return Array(text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).suffix(count))
        }
    }
}
