import CIMSSystem
import Foundation
import Testing

/// The spawn primitive under the plugin host and `jobs create --detach`.
@Suite("Spawning children")
struct SpawnTests {
    /// Spawns `/bin/sh -c script` with ims_spawn and returns its stdout.
    static func spawnShell(_ script: String) throws -> String {
        let arguments: [String] = ["/bin/sh", "-c", script]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        argv.append(nil)
        var envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        var stdinFD: Int32 = -1, stdoutFD: Int32 = -1, stderrFD: Int32 = -1
        let rc = ims_spawn("/bin/sh", &argv, &envp, "/", &pid, &stdinFD, &stdoutFD, &stderrFD)
        #expect(rc == 0)
        close(stdinFD)
        close(stderrFD)
        // The pipe is non-blocking: read until EOF, waiting for data with poll.
        var output = Data()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            var descriptor = pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, 5000)
            let count = read(stdoutFD, &buffer, buffer.count)
            if count > 0 { output.append(contentsOf: buffer[0..<count]); continue }
            if count == 0 || errno != EAGAIN { break }
        }
        close(stdoutFD)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return String(decoding: output, as: UTF8.self)
    }

    @Test("a child gets stdin, stdout and stderr only, never a descriptor the host left inheritable")
    func noInheritedDescriptors() throws {
        // Deliberately without O_CLOEXEC, and numbered 100 or above: a leak must not be mistaken for the descriptor
        // ls itself opens (3), which a free fd 3 in the test process would otherwise be.
        let opened = open("/dev/null", O_RDONLY)
        let leaked = fcntl(opened, F_DUPFD, 100)
        close(opened)
        #expect(leaked >= 100)
        defer { close(leaked) }
        // The shell's own descriptors: 0, 1, 2 and the one ls opens for /proc/self/fd (3).
        let listed = try Self.spawnShell("ls /proc/self/fd").split(separator: "\n").compactMap { Int32($0) }
        #expect(listed.contains(1))
        #expect(!listed.contains(leaked), "fd \(leaked) leaked into the child: \(listed)")
        #expect(listed.allSatisfy { $0 <= 3 }, "\(listed)")
    }
}
