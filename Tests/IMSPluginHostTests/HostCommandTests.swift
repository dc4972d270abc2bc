import Foundation
import IMSPluginHost
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Host tools and detached runners go through the same hardened spawn path as plugins: bounded output, a new
/// session, descriptors 0–2 only, and nothing left running or unreaped.
@Suite("Host commands and detached processes", .timeLimit(.minutes(1)))
struct HostCommandTests {
    /// Whether `pid` is still running (a zombie waiting for its parent is not).
    static func alive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[close...].dropFirst(2).hasPrefix("Z")
    }



    @Test("a tool's exit status and the last lines of its output come back")
    func exitAndTail() async throws {
        let result = try await HostCommand.run("/bin/sh", ["-c", "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; exit 3"], keepLines: 3)
        #expect(result.exit == .exited(3))
        #expect(result.status == 3)
        #expect(result.outputTail == ["line 4", "line 5", "oops"])
        #expect(!result.stopped)
    }

    @Test("a tool that cannot be started is an error naming it")
    func launchFailure() async throws {
        await #expect(throws: HostCommand.LaunchError.self) {
            _ = try await HostCommand.run("/nonexistent/ims-tool", [])
        }
        do {
            _ = try await HostCommand.run("/nonexistent/ims-tool", [])
        } catch {
            #expect(error.description.contains("/nonexistent/ims-tool"))
        }
    }

    @Test("output is kept bounded whatever the tool writes")
    func boundedOutput() async throws {
        let result = try await HostCommand.run("/bin/sh", ["-c", "head -c 20000000 /dev/zero | tr '\\0' 'a'; echo; echo done"], keepLines: 5)
        #expect(result.exit == .exited(0))
        #expect(result.outputTail.last == "done")
        #expect(result.outputTail.reduce(0) { $0 + $1.utf8.count } <= 64 * 1024)
    }

    @Test("a tool past its time limit is stopped with SIGTERM, its grandchildren with it, and reaped")
    func timeLimit() async throws {
        let result = try await HostCommand.run("/bin/sh", ["-c", "sleep 60 & echo $!; wait"], timeLimit: .milliseconds(300), killGrace: .seconds(2))
        // Measured by the supervising thread, so a busy test process does not skew it.
        #expect(result.duration < .seconds(10))
        #expect(result.stopped)
        #expect(result.exit == .signaled(SIGTERM))
        let grandchild = try #require(result.outputTail.first.flatMap { pid_t($0) })
        #expect(!Self.alive(grandchild), "the background sleep was killed with the group")
    }

    @Test("cancelling the calling task stops the tool, and the kill grace is waited, not spun through")
    func cancellation() async throws {
        // The tool ignores SIGTERM (and its sleep inherits that), so the host must wait the kill grace.
        let task = Task { try await HostCommand.run("/bin/sh", ["-c", "trap '' TERM; sleep 5"], killGrace: .seconds(1)) }
        try await Task.sleep(for: .milliseconds(200))
        task.cancel()
        let result = try await task.value
        #expect(result.stopped)
        #expect(result.exit == .signaled(SIGKILL))
        #expect(result.duration >= .seconds(1) && result.duration < .seconds(5), "the grace of 1 s was waited: \(result.duration)")
        #expect(result.wakeups < 50, "the poll loop woke \(result.wakeups) times in about a second")
    }

    @Test("a host tool sees descriptors 0, 1 and 2 only")
    func descriptors() async throws {
        let leaked = open("/dev/null", O_RDONLY)  // not close-on-exec: the spawn path must still keep it out
        defer { close(leaked) }
        let result = try await HostCommand.run("/bin/sh", ["-c", "ls /proc/$$/fd"])
        #expect(Set(result.outputTail) == ["0", "1", "2"], "\(result.outputTail)")
    }

    @Test("a detached process gets /dev/null as stdin, writes to its log, leads its own session, and is reaped")
    func detached() async throws {
        let log = NSTemporaryDirectory() + "ims-detached-\(UUID().uuidString).log"
        defer { unlink(log) }
        let leaked = open("/dev/null", O_RDONLY)
        defer { close(leaked) }
        let pid = try DetachedProcess.start(
            "/bin/sh", arguments: ["-c", "read line || echo stdin-eof; ls -1 /proc/$$/fd; cut -d' ' -f6 /proc/$$/stat"],
            environment: ["PATH=/usr/bin:/bin"], workingDirectory: "/", logPath: log)
        var exit: IMSPluginHost.ExitStatus?
        for _ in 0..<200 where exit == nil {
            try await Task.sleep(for: .milliseconds(20))
            exit = DetachedProcess.reapIfExited(pid)
        }
        #expect(exit == .exited(0))
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines == ["stdin-eof", "0", "1", "2", String(pid)], "stdin at EOF, fds 0-2 only, its own session")
        #expect(!Self.alive(pid), "reaped")
    }
}
