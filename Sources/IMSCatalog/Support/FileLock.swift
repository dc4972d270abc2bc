import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An advisory `flock` on a file, held until the value is released or the process ends (however it ends); child
/// processes do not inherit it.
public final class FileLock: Sendable {
    /// Who may hold the lock with whom.
    public enum Mode: Sendable {
        /// With other shared holders.
        case shared
        /// Alone.
        case exclusive
    }

    /// Why a lock could not be taken (the file could not be opened or locked).
    public struct Failure: Error, Sendable {
        public var message: String
    }

    /// The lock file.
    public let path: String
    private let descriptor: Int32

    /// Opens (creating, mode 0600) `path` and locks it.
    ///
    /// - Parameter wait: wait for a conflicting holder; without it, nil is returned when there is one.
    /// - Throws: ``Failure`` when the file cannot be opened or locked.
    public static func acquire(path: String, mode: Mode, wait: Bool) throws(Failure) -> FileLock? {
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw Failure(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        let operation = (mode == .shared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB)
        var result: Int32
        repeat {
            result = flock(descriptor, operation)
        } while result != 0 && errno == EINTR
        guard result == 0 else {
            let error = errno
            close(descriptor)
            if error == EWOULDBLOCK && !wait { return nil }
            throw Failure(message: "cannot lock \(path): \(String(cString: strerror(error)))")
        }
        return FileLock(path: path, descriptor: descriptor)
    }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}
