import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// An advisory lock on a data directory (`flock` on `<data-dir>/catalog.lock`) that keeps `ims catalog restore` and
/// running servers apart.
///
/// `ims serve` holds it shared for its lifetime; `ims catalog restore` takes it exclusively, so a restore refuses to
/// run while a server uses the catalog, and a server refuses to start while a restore replaces it. The lock is
/// released when the value is released or the process ends (however it ends); child processes do not inherit it.
public final class DataDirectoryLock: Sendable {
    /// Who holds the lock.
    public enum Mode: Sendable {
        /// A server (any number at once).
        case shared
        /// A restore (alone).
        case exclusive
    }

    /// The lock file.
    public let path: String
    private let descriptor: Int32

    /// Takes the lock without waiting.
    ///
    /// - Returns: the held lock, or nil when it is held in a conflicting mode by another process.
    /// - Throws: ``CatalogError/dataDirectory(path:reason:)`` when the lock file cannot be opened.
    public static func acquire(_ directory: DataDirectory, mode: Mode) throws(CatalogError) -> DataDirectoryLock? {
        let path = directory.path + "/catalog.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CatalogError.dataDirectory(path: directory.path, reason: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        var result: Int32
        repeat {
            result = flock(descriptor, (mode == .shared ? LOCK_SH : LOCK_EX) | LOCK_NB)
        } while result != 0 && errno == EINTR
        guard result == 0 else {
            let error = errno
            close(descriptor)
            if error == EWOULDBLOCK { return nil }
            throw CatalogError.dataDirectory(path: directory.path, reason: "cannot lock \(path): \(String(cString: strerror(error)))")
        }
        return DataDirectoryLock(path: path, descriptor: descriptor)
    }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}
