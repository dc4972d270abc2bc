import CIMSSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The one spawn path, with Swift strings: `ims_spawn` and `ims_spawn_detached` from CIMSSystem (a new session,
/// descriptors 0–2 only, default signal dispositions, the given environment and nothing else).
public enum Spawn {
    /// A child with pipes to its stdin, stdout and stderr (the parent's ends are close-on-exec and non-blocking).
    public struct Piped: Sendable {
        public var pid: pid_t
        public var stdin: Int32
        public var stdout: Int32
        public var stderr: Int32
    }

    /// Starts `executable` with pipes; a failed spawn gives the executable and its errno.
    public static func piped(
        _ executable: String, argv: [String], environment: [String], workingDirectory: String?
    ) -> Result<Piped, HostCommand.LaunchError> {
        withCStrings(argv, environment) { cArgs, cEnv in
            var child = Piped(pid: 0, stdin: -1, stdout: -1, stderr: -1)
            let rc = ims_spawn(executable, cArgs, cEnv, workingDirectory, &child.pid, &child.stdin, &child.stdout, &child.stderr)
            return rc == 0 ? .success(child) : .failure(HostCommand.LaunchError(executable: executable, errno: rc))
        }
    }

    /// Starts `executable` detached: stdin from /dev/null, stdout and stderr appended to `logPath` (or discarded).
    public static func detached(
        _ executable: String, argv: [String], environment: [String], workingDirectory: String?, logPath: String?
    ) -> Result<pid_t, HostCommand.LaunchError> {
        withCStrings(argv, environment) { cArgs, cEnv in
            var pid: pid_t = 0
            let rc = ims_spawn_detached(executable, cArgs, cEnv, workingDirectory, logPath, &pid)
            return rc == 0 ? .success(pid) : .failure(HostCommand.LaunchError(executable: executable, errno: rc))
        }
    }

    /// Calls `body` with NULL-terminated C arrays of `argv` and `environment`, freed afterwards.
    private static func withCStrings<T>(
        _ argv: [String], _ environment: [String],
        _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>?, UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> T
    ) -> T {
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        return cArgs.withUnsafeBufferPointer { args in
            cEnv.withUnsafeBufferPointer { env in body(args.baseAddress, env.baseAddress) }
        }
    }
}
