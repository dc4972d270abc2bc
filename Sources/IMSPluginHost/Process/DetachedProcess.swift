import CIMSSystem
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts a process that outlives its caller (the background job runner of `ims jobs create --detach`) through
/// the same hardened spawn path as plugins and host tools: its own session, descriptors 0–2 only, stdin from
/// /dev/null, stdout and stderr appended to a log file, nothing left open in the caller.
public enum DetachedProcess {
    /// Starts `executable` and returns its pid at once.
    ///
    /// The caller owns the child: a short-lived command simply exits (the child is re-parented); a long-lived one
    /// reaps it with ``reapIfExited(_:)``.
    /// - Parameter logPath: where the child's stdout and stderr go (created 0600, appended); `nil` discards them.
    public static func start(
        _ executable: String, arguments: [String], environment: [String], workingDirectory: String, logPath: String?
    ) throws(HostCommand.LaunchError) -> pid_t {
        try Spawn.detached(executable, argv: [executable] + arguments, environment: environment, workingDirectory: workingDirectory, logPath: logPath).get()
    }

    /// Reaps `pid` if it has exited, without blocking; `nil` while it runs (or when it is not our child).
    public static func reapIfExited(_ pid: pid_t) -> ExitStatus? {
        var value: Int32 = 0
        guard ims_peek_exit(pid, &value) > 0 else { return nil }
        let raw = ims_wait(pid)
        guard raw >= 0 else { return nil }
        switch ims_decode_status(raw, &value) {
        case 1: return .exited(value)
        case 2: return .signaled(value)
        default: return nil
        }
    }
}
