// CLibArchive is imported for its view of <sys/stat.h>: depending on module build order, clang may
// attribute `struct stat` and `timespec` to it, and MemberImportVisibility then needs the import.
import CLibArchive

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Small POSIX helpers for the archive layer. Paths are byte strings; nothing here follows a symbolic
/// link unless its documentation says so.
enum POSIX {
    /// `strerror(code)` as a Swift string.
    static func message(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }

    /// Calls `body`, retrying while it fails with `EINTR`.
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ body: () -> T) -> T {
        while true {
            let result = body()
            if result >= 0 || errno != EINTR { return result }
        }
    }

    /// Removes `path` and everything below it without following symbolic links. Best effort: errors
    /// are ignored, because this only ever cleans up after another failure.
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) != S_IFDIR {
            _ = unlink(path)
            return
        }
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            _ = chmod(path, 0o700)
            let again = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if again >= 0 { removeContents(of: again) }
        } else {
            removeContents(of: fd)
        }
        _ = rmdir(path)
    }

    /// Removes the contents of the directory open as `fd`, then closes `fd`.
    private static func removeContents(of fd: Int32) {
        guard let dir = fdopendir(fd) else {
            close(fd)
            return
        }
        defer { closedir(dir) }
        var names: [[CChar]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> [CChar] in
                let length = raw.firstIndex(of: 0) ?? raw.count
                return raw[0..<length].map { CChar(bitPattern: $0) } + [0]
            }
            if name == [46, 0] || name == [46, 46, 0] { continue }
            names.append(name)
        }
        for name in names {
            name.withUnsafeBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                if unlinkat(fd, base, 0) == 0 { return }
                guard errno == EISDIR else { return }
                var child = openat(fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child < 0 {
                    _ = fchmodat(fd, base, 0o700, 0)
                    child = openat(fd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                }
                if child >= 0 { removeContents(of: child) }
                _ = unlinkat(fd, base, AT_REMOVEDIR)
            }
        }
    }

    /// Whether the directory at `path` has no entries other than `.` and `..`.
    static func isEmptyDirectory(_ path: String) -> Bool {
        guard let dir = opendir(path) else { return false }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                raw[0] == 46 && (raw[1] == 0 || (raw[1] == 46 && raw[2] == 0))
            }
            if !isDot { return false }
        }
        return true
    }

    /// The process umask, read from `/proc/self/status` without changing it; `nil` when unknown.
    static func currentUmask() -> mode_t? {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8192)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("Umask:") {
            let value = line.dropFirst("Umask:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" })
            return mode_t(value, radix: 8)
        }
        return nil
    }
}

/// Runs a closure on a new POSIX thread; ``join()`` waits for it.
///
/// The archive layer uses exactly one such thread per extraction, to overlap decompression with
/// file-system writes; it is always joined before the extraction returns.
final class WorkerThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    private var thread: pthread_t
    private var joined = false

    /// Starts `body` on a new thread.
    ///
    /// - Throws: The `pthread_create` error number when the thread cannot be created.
    init(_ body: @escaping () -> Void) throws(POSIXErrorNumber) {
        let box = Unmanaged.passRetained(Box(body))
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { context in
            guard let context else { return nil }
            let box = Unmanaged<Box>.fromOpaque(context).takeRetainedValue()
            box.body()
            return nil
        }, box.toOpaque())
        guard result == 0 else {
            box.release()
            throw POSIXErrorNumber(code: result)
        }
        self.thread = thread
    }

    /// Waits for the thread to finish. Idempotent.
    func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    deinit { join() }
}

/// An `errno` value as an `Error`.
struct POSIXErrorNumber: Error {
    var code: Int32
    var message: String { POSIX.message(code) }
}
