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

/// One file-system operation, decided and checked by the reading side and carried out by the
/// ``DiskWriter``.
enum WriteOp {
    /// Create a directory (an existing one is fine: the model already vetted it).
    case directory(EntryPath)
    /// Create a regular file, or, with `compare`, check an existing one has the same content.
    case beginFile(EntryPath, mode: mode_t, mtime: timespec, size: Int64?, compare: Bool)
    /// File data: `count` bytes at `start` in the batch buffer, for file offset `offset`.
    case data(offset: Int64, start: Int, count: Int)
    /// The end of the current file.
    case endFile
    /// Create a symbolic link.
    case symlink(EntryPath, target: [UInt8], mtime: timespec)
    /// Create a hard link to an earlier regular file.
    case hardlink(EntryPath, target: EntryPath)
}

/// A batch of operations and the file data they refer to. Batches are recycled through a
/// ``BatchChannel``, so memory stays bounded by `batches × capacity`.
final class WriteBatch {
    var ops: [WriteOp] = []
    let buffer: UnsafeMutableRawPointer
    let capacity: Int
    var used = 0

    init(capacity: Int) {
        self.capacity = capacity
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 64)
        ops.reserveCapacity(1024)
    }

    deinit { buffer.deallocate() }

    func reset() {
        ops.removeAll(keepingCapacity: true)
        used = 0
    }
}

/// A bounded hand-off of reusable buffers from a producing thread to a consuming thread, built on a
/// pthread mutex and condition variable (both sides block, neither spins). The producer takes empty
/// items with ``acquire()`` and passes them on with ``submit(_:)``; the consumer takes them with
/// ``next()`` and returns them with ``recycle(_:)``. Memory is bounded by the fixed set of items.
///
/// `@unchecked Sendable`: all mutable state is only touched with `lock` held; an item belongs to
/// whichever side last took it out of the hand-off.
final class HandOff<Item: AnyObject>: @unchecked Sendable {
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var free: [Item]
    private var full: [Item] = []
    private var closed = false
    private var cancelled = false
    private var consumerStopped = false
    private var failureText: String?

    init(items: [Item]) {
        pthread_mutex_init(lock, nil)
        pthread_cond_init(changed, nil)
        free = items
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(lock)
        changed.deallocate()
        lock.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    /// Producer: takes an empty item, waiting for one; `nil` once the consumer has stopped.
    func acquire() -> Item? {
        locked {
            while free.isEmpty && !consumerStopped { pthread_cond_wait(changed, lock) }
            return consumerStopped ? nil : free.removeLast()
        }
    }

    /// Producer: hands a filled item to the consumer; `false` once the consumer has stopped.
    func submit(_ item: Item) -> Bool {
        locked {
            guard !consumerStopped else { return false }
            full.append(item)
            pthread_cond_broadcast(changed)
            return true
        }
    }

    /// Producer: no more items will come. With `cancelling`, the consumer drops what is queued;
    /// `failure` tells the consumer why the producer stopped early.
    func close(cancelling: Bool, failure: String? = nil) {
        locked {
            closed = true
            if cancelling { cancelled = true }
            if let failure { failureText = failure }
            pthread_cond_broadcast(changed)
        }
    }

    /// Why the producer stopped early, if it said so in ``close(cancelling:failure:)``.
    var failure: String? { locked { failureText } }

    /// Consumer: the next filled item, waiting for one; `nil` when the producer has closed the
    /// hand-off and everything was taken, or has cancelled.
    func next() -> Item? {
        locked {
            while full.isEmpty && !closed && !cancelled { pthread_cond_wait(changed, lock) }
            if cancelled || full.isEmpty { return nil }
            return full.removeFirst()
        }
    }

    /// Consumer: returns a processed item for reuse.
    func recycle(_ item: Item) {
        locked {
            free.append(item)
            pthread_cond_broadcast(changed)
        }
    }

    /// Consumer: it stopped and will take no more items; a waiting producer wakes up.
    func stopConsumer() {
        locked {
            consumerStopped = true
            pthread_cond_broadcast(changed)
        }
    }
}

/// The hand-off between the reading side and the ``DiskWriter``.
typealias BatchChannel = HandOff<WriteBatch>

extension HandOff where Item == WriteBatch {
    convenience init(batches: Int, capacity: Int) {
        self.init(items: (0..<batches).map { _ in WriteBatch(capacity: capacity) })
    }
}

/// Carries out ``WriteOp``s below a destination root opened as a directory descriptor.
///
/// Every path is resolved with `*at` calls from a cached descriptor of its parent directory, opened
/// component by component with `O_NOFOLLOW | O_DIRECTORY`, and every file is created with
/// `O_CREAT | O_EXCL | O_NOFOLLOW`: even if the model in front of it were wrong, the kernel refuses to
/// write through a symbolic link or over an existing file. This is the second line of defence that
/// `ARCHIVE_EXTRACT_SECURE_SYMLINKS` and friends provide for `archive_write_disk`.
final class DiskWriter {
    private let rootFD: Int32
    private let archiveName: String
    private let umask: mode_t?
    /// The first error, if the writer stopped early.
    private(set) var error: ArchiveError?
    /// Data bytes written to new files.
    private(set) var bytesWritten: Int64 = 0

    private var directories: [EntryPath: Int32] = [:]
    private static let maxCachedDirectories = 256

    private struct OpenFile {
        var path: EntryPath
        var fd: Int32
        var mode: mode_t
        var mtime: timespec
        var size: Int64?
        var compare: Bool
        /// For writes: the end of the last data block. For comparisons: the next offset to check.
        var end: Int64 = 0
    }
    private var file: OpenFile?
    private var scratch: UnsafeMutableRawPointer?
    private static let scratchSize = 1 << 16

    init(rootFD: Int32, archiveName: String, umask: mode_t?) {
        self.rootFD = rootFD
        self.archiveName = archiveName
        self.umask = umask
    }

    deinit {
        closeAll()
        scratch?.deallocate()
    }

    /// Processes batches until the channel ends or an operation fails.
    func run(_ channel: BatchChannel) {
        while let batch = channel.next() {
            do {
                try process(batch)
            } catch {
                self.error = error
                channel.stopConsumer()
                batch.reset()
                channel.recycle(batch)
                break
            }
            batch.reset()
            channel.recycle(batch)
        }
        closeAll()
    }

    private func closeAll() {
        if let file {
            close(file.fd)
            self.file = nil
        }
        for fd in directories.values { close(fd) }
        directories.removeAll()
    }

    private func fail(_ code: ArchiveError.Code, _ path: EntryPath, _ reason: String) -> ArchiveError {
        ArchiveError(code, archivePath: archiveName, entry: path.display, reason: reason)
    }

    private func ioError(_ path: EntryPath, _ what: String, _ code: Int32) -> ArchiveError {
        fail(.io, path, "\(what): \(POSIX.message(code))")
    }

    private func process(_ batch: WriteBatch) throws(ArchiveError) {
        for op in batch.ops {
            switch op {
            case .directory(let path):
                let parent = try directoryFD(path.parent, for: path)
                let made = withName(path) { mkdirat(parent, $0, 0o700) }
                if made != 0 && errno != EEXIST { throw ioError(path, "cannot create directory", errno) }
            case .beginFile(let path, let mode, let mtime, let size, let compare):
                try begin(path, mode: mode, mtime: mtime, size: size, compare: compare)
            case .data(let offset, let start, let count):
                try write(batch.buffer + start, count: count, at: offset)
            case .endFile:
                try end()
            case .symlink(let path, let target, let mtime):
                let parent = try directoryFD(path.parent, for: path)
                let targetName = cString(target)
                let made = withName(path) { symlinkat(targetName, parent, $0) }
                if made != 0 { throw ioError(path, "cannot create symbolic link", errno) }
                if mtime.tv_nsec != utimeOmit {
                    var times = [mtime, mtime]
                    _ = withName(path) { utimensat(parent, $0, &times, AT_SYMLINK_NOFOLLOW) }
                }
            case .hardlink(let path, let target):
                let parent = try directoryFD(path.parent, for: path)
                let targetName = cString(target.bytes)
                let made = withName(path) { linkat(rootFD, targetName, parent, $0, 0) }
                if made != 0 { throw ioError(path, "cannot create hard link", errno) }
            }
        }
    }

    /// Calls `body` with the last component of `path` as a C string.
    private func withName<T>(_ path: EntryPath, _ body: (UnsafePointer<CChar>) -> T) -> T {
        let name = cString(path.bytes[path.nameStart...])
        return body(name)
    }

    /// A descriptor for directory `path`, opened without following symbolic links and created (mode
    /// 0755) if missing. `entry` names the entry being written, for errors.
    private func directoryFD(_ path: EntryPath, for entry: EntryPath) throws(ArchiveError) -> Int32 {
        if path.isRoot { return rootFD }
        if let fd = directories[path] { return fd }
        if directories.count >= Self.maxCachedDirectories {
            for fd in directories.values { close(fd) }
            directories.removeAll()
        }
        return try openDirectory(path, for: entry)
    }

    private func openDirectory(_ path: EntryPath, for entry: EntryPath) throws(ArchiveError) -> Int32 {
        if path.isRoot { return rootFD }
        if let fd = directories[path] { return fd }
        let parent = try openDirectory(path.parent, for: entry)
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | openPathOnly
        var fd = withName(path) { openat(parent, $0, flags) }
        if fd < 0 && errno == ENOENT {
            let made = withName(path) { mkdirat(parent, $0, 0o755) }
            if made != 0 && errno != EEXIST { throw ioError(entry, "cannot create directory '\(path.display)'", errno) }
            fd = withName(path) { openat(parent, $0, flags) }
        }
        if fd < 0 {
            let code = errno
            if code == ELOOP || code == ENOTDIR {
                throw fail(.linkEscape, entry, "'\(path.display)' is not a directory; refusing to write through it")
            }
            throw ioError(entry, "cannot open directory '\(path.display)'", code)
        }
        directories[path] = fd
        return fd
    }

    private func begin(_ path: EntryPath, mode: mode_t, mtime: timespec, size: Int64?, compare: Bool) throws(ArchiveError) {
        let parent = try directoryFD(path.parent, for: path)
        let fd: Int32
        if compare {
            fd = withName(path) { openat(parent, $0, O_RDONLY | O_NOFOLLOW | O_CLOEXEC) }
            if fd < 0 { throw ioError(path, "cannot open the earlier copy", errno) }
            if scratch == nil { scratch = .allocate(byteCount: Self.scratchSize, alignment: 64) }
        } else {
            fd = withName(path) { name in
                POSIX.retrying { openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode) }
            }
            if fd < 0 { throw ioError(path, "cannot create file", errno) }
        }
        file = OpenFile(path: path, fd: fd, mode: mode, mtime: mtime, size: size, compare: compare)
    }

    private func write(_ bytes: UnsafeMutableRawPointer, count: Int, at offset: Int64) throws(ArchiveError) {
        guard var current = file else { return }
        defer { file = current }
        if current.compare {
            try compareZeros(&current, upTo: offset)
            var done = 0
            while done < count {
                let chunk = min(count - done, Self.scratchSize)
                guard let scratch else { return }
                let got = POSIX.retrying { pread(current.fd, scratch, chunk, off_t(offset) + off_t(done)) }
                if got < 0 { throw ioError(current.path, "cannot read the earlier copy", errno) }
                if got != chunk || memcmp(scratch, bytes + done, chunk) != 0 {
                    throw fail(.duplicateEntry, current.path, "the same path appears twice with different content")
                }
                done += chunk
            }
            current.end = offset + Int64(count)
            return
        }
        var done = 0
        while done < count {
            let wrote = POSIX.retrying { pwrite(current.fd, bytes + done, count - done, off_t(offset) + off_t(done)) }
            if wrote < 0 { throw ioError(current.path, "cannot write", errno) }
            done += wrote
        }
        bytesWritten += Int64(count)
        current.end = max(current.end, offset + Int64(count))
    }

    /// For a comparison: checks that the earlier copy holds zeros from `current.end` up to `offset`
    /// (a hole in the new copy).
    private func compareZeros(_ current: inout OpenFile, upTo offset: Int64) throws(ArchiveError) {
        guard let scratch, offset > current.end else { return }
        var position = current.end
        while position < offset {
            let chunk = Int(min(Int64(Self.scratchSize), offset - position))
            let got = POSIX.retrying { pread(current.fd, scratch, chunk, off_t(position)) }
            if got < 0 { throw ioError(current.path, "cannot read the earlier copy", errno) }
            let bytes = UnsafeRawBufferPointer(start: scratch, count: got)
            if got != chunk || bytes.contains(where: { $0 != 0 }) {
                throw fail(.duplicateEntry, current.path, "the same path appears twice with different content")
            }
            position += Int64(chunk)
        }
        current.end = offset
    }

    private func end() throws(ArchiveError) {
        guard var current = file else { return }
        file = nil
        defer { close(current.fd) }
        var info = stat()
        if current.compare {
            guard fstat(current.fd, &info) == 0 else { throw ioError(current.path, "cannot inspect the earlier copy", errno) }
            let expected = current.size ?? current.end
            try compareZeros(&current, upTo: expected)
            if Int64(info.st_size) != expected {
                throw fail(.duplicateEntry, current.path, "the same path appears twice with different content")
            }
            return
        }
        if let size = current.size, size > current.end {
            // A sparse file whose last region is a hole.
            if ftruncate(current.fd, off_t(size)) != 0 { throw ioError(current.path, "cannot extend", errno) }
        }
        if umask.map({ $0 & current.mode != 0 }) ?? true {
            if fchmod(current.fd, current.mode) != 0 { throw ioError(current.path, "cannot set permissions", errno) }
        }
        if current.mtime.tv_nsec != utimeOmit {
            var times = [current.mtime, current.mtime]
            if futimens(current.fd, &times) != 0 { throw ioError(current.path, "cannot set the modification time", errno) }
        }
    }
}

/// `bytes` as a NUL-terminated C string.
func cString(_ bytes: some Collection<UInt8>) -> [CChar] {
    var result = [CChar]()
    result.reserveCapacity(bytes.count + 1)
    for byte in bytes { result.append(CChar(bitPattern: byte)) }
    result.append(0)
    return result
}

/// Linux `O_PATH` (`010000000` on every Linux architecture Swift supports), which Glibc's module does
/// not export.
#if os(Linux)
let openPathOnly: Int32 = 0o10000000
#else
let openPathOnly: Int32 = 0
#endif

/// `UTIME_OMIT`, which Swift does not import (it is a computed macro).
let utimeOmit = (1 << 30) - 2
