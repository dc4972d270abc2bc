import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// File-scope wrappers, so members named open/read/write/close/rename do not shadow the C functions.
private func posixOpen(_ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 { open(path, flags, mode) }
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int { write(fd, buffer, count) }
private func posixClose(_ fd: Int32) { _ = close(fd) }
private func posixRename(_ from: String, _ to: String) -> Int32 { rename(from, to) }

/// An open file descriptor with a single owner (never shared between tasks); closed in `deinit`.
final class POSIXFile {
    let fd: Int32
    let path: String

    static func open(_ path: String, flags: Int32, mode: mode_t = 0o644) throws -> POSIXFile {
        while true {
            let fd = posixOpen(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return POSIXFile(fd: fd, path: path) }
            if errno == EINTR { continue }
            throw StoreError.posix("open", path)
        }
    }

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit { posixClose(fd) }

    /// Reads up to `buffer.count` bytes; 0 at end of file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let count = posixRead(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if errno == EINTR { continue }
            throw StoreError.posix("read", path)
        }
    }

    /// Fills the buffer unless the file ends first; returns the bytes read.
    func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var total = 0
        while total < buffer.count {
            let count = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[total...]))
            if count == 0 { break }
            total += count
        }
        return total
    }

    func writeAll(_ buffer: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < buffer.count {
            let count = posixWrite(fd, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                throw StoreError.posix("write", path)
            }
            offset += count
        }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw StoreError.posix("fsync", path) }
    }

    func status() throws -> stat {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw StoreError.posix("stat", path) }
        return info
    }
}

/// File-system helpers with errors that name the path.
enum FileSystem {
    static func status(_ path: String) throws -> stat? {
        var info = stat()
        if stat(path, &info) == 0 { return info }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw StoreError.posix("stat", path)
    }

    static func isRegularFile(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFREG }

    static func isDirectory(_ info: stat) -> Bool { (info.st_mode & S_IFMT) == S_IFDIR }

    static func mtimeNanoseconds(_ info: stat) -> Int64 {
        Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
    }

    /// `mkdir -p`, tolerating directories created concurrently.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws {
        if let info = try status(path) {
            guard isDirectory(info) else { throw StoreError.io(operation: "create directory", path: path, message: "a file is in the way") }
            return
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != path { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode) != 0 && errno != EEXIST { throw StoreError.posix("create directory", path) }
    }

    static func rename(_ from: String, _ to: String) throws {
        guard posixRename(from, to) == 0 else {
            throw StoreError.io(operation: "rename", path: from + " to " + to, message: String(cString: strerror(errno)))
        }
    }

    /// Removes a file; a missing file is fine.
    static func unlinkIfPresent(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT { throw StoreError.posix("remove", path) }
    }

    /// fsync on a directory, so renames inside it are durable.
    static func syncDirectory(_ path: String) {
        let fd = posixOpen(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        posixClose(fd)
    }

    /// Removes empty directories from `directory` up to (not including) `stop`.
    static func pruneEmptyDirectories(from directory: String, upTo stop: String) {
        var current = directory
        while current.count > stop.count && current.hasPrefix(stop + "/") {
            if rmdir(current) != 0 { return }
            current = (current as NSString).deletingLastPathComponent
        }
    }

    static func temporaryName(for name: String) -> String {
        ObjectKey.temporaryPrefix + String(name.prefix(64)) + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
    }
}
