import CLibArchive

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Safely extracts an untrusted recipe archive: tar, tar.gz/tgz, tar.xz, tar.zst, tar.bz2 or zip.
///
/// Extraction streams through libarchive (the archive is never read into memory) and refuses, with an
/// ``ArchiveError`` naming the entry:
///
/// - absolute paths and any `..` component (``ArchiveError/Code/absolutePath``,
///   ``ArchiveError/Code/pathTraversal``);
/// - symbolic links whose target resolves outside the destination, resolved relative to the link's
///   directory against the destination root, following links already extracted; hard links to
///   anything but an earlier regular file of the archive; and any entry that would be written through
///   an extracted symbolic link (``ArchiveError/Code/linkEscape``);
/// - character and block devices, FIFOs and sockets (``ArchiveError/Code/specialFile``);
/// - conflicting duplicates: the same path twice with a different type, link target or file content
///   (``ArchiveError/Code/duplicateEntry``). Exact duplicates are accepted; a repeated directory
///   entry takes the permissions of the last one;
/// - anything over the ``ExtractionLimits`` (``ArchiveError/Code/limitExceeded``), checked while
///   data streams, so a decompression bomb stops early with bounded memory.
///
/// Setuid, setgid and sticky bits are removed (and counted in the report); other permission bits are
/// kept exactly, without applying the umask; modification times are restored; owners never are.
///
/// Extraction happens in a fresh `<destination>.partial-XXXXXX` directory next to the destination,
/// renamed to the destination on success and removed on any failure, so a failed extraction leaves
/// nothing behind. The destination must not exist, or must be an empty directory.
///
/// Extraction is pipelined over up to three threads joined by bounded hand-offs: for a compressed
/// archive, one thread decompresses (4 × 1 MiB chunks); the calling thread parses and checks entries;
/// another thread writes files (8 × 1 MiB batches). Both extra threads are always joined before
/// ``extract(archive:to:)`` returns. Extended attributes, ACLs and file flags are not restored.
public struct ArchiveExtractor: Sendable {
    /// The limits enforced while extracting.
    public var limits: ExtractionLimits

    /// Creates an extractor.
    ///
    /// - Parameter limits: The limits to enforce; ``ExtractionLimits/default`` unless given.
    public init(limits: ExtractionLimits = .default) {
        self.limits = limits
    }

    /// Extracts the archive at `archivePath` into `destination`.
    ///
    /// Blocks the calling thread until done.
    ///
    /// - Parameters:
    ///   - archivePath: The archive file. Its format is detected from content, not from its name.
    ///   - destination: The directory to create; it must not exist or be an empty directory, and its
    ///     parent must exist.
    /// - Returns: What was extracted.
    /// - Throws: ``ArchiveError``; nothing is then left at `destination` or next to it.
    public func extract(archive archivePath: String, to destination: String) throws(ArchiveError) -> ExtractionReport {
        var target = destination
        while target.count > 1 && target.hasSuffix("/") { target.removeLast() }
        func failure(_ code: ArchiveError.Code, _ reason: String) -> ArchiveError {
            ArchiveError(code, archivePath: archivePath, reason: reason)
        }

        // The destination: absent, or an empty directory that the rename may replace.
        var existingMode: mode_t?
        var info = stat()
        if lstat(target, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR, POSIX.isEmptyDirectory(target) else {
                throw failure(.destinationExists, "destination '\(target)' already exists and is not an empty directory")
            }
            existingMode = info.st_mode & 0o7777
        } else if errno != ENOENT {
            throw failure(.io, "cannot inspect destination '\(target)': \(POSIX.message(errno))")
        }

        let umask = POSIX.currentUmask()
        let reader = try ArchiveReader(path: archivePath)
        var archiveSize: Int64 = 0
        if stat(archivePath, &info) == 0 { archiveSize = Int64(info.st_size) }

        var template = cString(Array((target + ".partial-XXXXXX").utf8))
        guard let made = mkdtemp(&template) else {
            throw failure(.io, "cannot create a temporary directory next to '\(target)': \(POSIX.message(errno))")
        }
        let partial = String(cString: made)
        let rootFD = open(partial, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else {
            let code = errno
            POSIX.removeTree(partial)
            throw failure(.io, "cannot open '\(partial)': \(POSIX.message(code))")
        }

        var report: ExtractionReport
        do throws(ArchiveError) {
            let session = ExtractionSession(
                reader: reader, limits: limits, archiveSize: archiveSize, rootFD: rootFD, umask: umask)
            report = try session.run()
            report.destination = destination
            let mode = existingMode ?? (0o777 & ~(umask ?? 0o022))
            if fchmod(rootFD, mode) != 0 { throw failure(.io, "cannot set permissions of '\(partial)': \(POSIX.message(errno))") }
        } catch {
            close(rootFD)
            POSIX.removeTree(partial)
            throw error
        }
        close(rootFD)
        if rename(partial, target) != 0 {
            let code = errno
            POSIX.removeTree(partial)
            if code == EEXIST || code == ENOTEMPTY || code == ENOTDIR || code == EISDIR {
                throw failure(.destinationExists, "destination '\(target)' appeared during extraction and is not an empty directory")
            }
            throw failure(.io, "cannot rename '\(partial)' to '\(target)': \(POSIX.message(code))")
        }
        return report
    }
}

/// One extraction: reads entries, checks them against the model, and feeds the ``DiskWriter``.
final class ExtractionSession {
    private let reader: ArchiveReader
    private let limits: ExtractionLimits
    private let archiveSize: Int64
    private let rootFD: Int32
    private let umask: mode_t?
    private var tree = ExtractedTree()
    private var report = ExtractionReport(destination: "")
    private var totalBytes: Int64 = 0
    private var directoryModes: [EntryPath: (mode: mode_t, mtime: timespec)] = [:]
    private var lastVerifiedParent: [UInt8]?

    private var channel: BatchChannel
    private var batch: WriteBatch?
    private static let batchCount = 8
    private static let batchCapacity = 1 << 20
    private static let batchOps = 4096

    /// Thrown by the reading side when the writer has stopped; replaced by the writer's error.
    private static let writerStopped = ArchiveError(.io, archivePath: "", reason: "writer stopped")

    init(reader: ArchiveReader, limits: ExtractionLimits, archiveSize: Int64, rootFD: Int32, umask: mode_t?) {
        self.reader = reader
        self.limits = limits
        self.archiveSize = archiveSize
        self.rootFD = rootFD
        self.umask = umask
        channel = BatchChannel(batches: Self.batchCount, capacity: Self.batchCapacity)
    }

    private var archivePath: String { reader.archivePath }

    func run() throws(ArchiveError) -> ExtractionReport {
        let writer = DiskWriter(rootFD: rootFD, archiveName: archivePath, umask: umask)
        let channel = self.channel
        let thread: WorkerThread
        do {
            thread = try WorkerThread { writer.run(channel) }
        } catch {
            throw ArchiveError(.io, archivePath: archivePath, reason: "cannot start the writer thread: \(error.message)")
        }
        do throws(ArchiveError) {
            batch = channel.acquire()
            try readEntries()
            try flush(final: true)
            channel.close(cancelling: false)
            thread.join()
        } catch {
            channel.close(cancelling: true)
            thread.join()
            throw writer.error ?? error
        }
        if let error = writer.error { throw error }
        report.bytesWritten = writer.bytesWritten
        try verifySymlinks()
        try applyDirectoryModes()
        return report
    }

    // MARK: Reading

    private func readEntries() throws(ArchiveError) {
        let handle = reader.handle
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(handle, &entry)
            if status == ARCHIVE_EOF { break }
            let first = report.entries == 0
            if status < ARCHIVE_WARN {
                throw reader.failure(beforeFirstHeader: first, entry: nil)
            }
            guard let entry else { throw reader.failure(beforeFirstHeader: first) }
            report.entries += 1
            if first {
                report.format = reader.formatName
                report.filters = reader.filterNames
                let base = archive_format(handle) & ARCHIVE_FORMAT_BASE_MASK
                guard base == ARCHIVE_FORMAT_TAR || base == ARCHIVE_FORMAT_ZIP else {
                    throw ArchiveError(.unsupportedFormat, archivePath: archivePath, reason: "not a tar or zip archive (\(report.format))")
                }
            }
            try extractEntry(entry)
        }
    }

    private func error(_ code: ArchiveError.Code, _ entry: String, _ reason: String) -> ArchiveError {
        ArchiveError(code, archivePath: archivePath, entry: entry, reason: reason)
    }

    private func extractEntry(_ entry: OpaquePointer) throws(ArchiveError) {
        let number = report.entries
        guard let rawName = archive_entry_pathname(entry) ?? archive_entry_pathname_utf8(entry) else {
            throw ArchiveError(.invalidEntry, archivePath: archivePath, entry: "#\(number)", reason: "the entry has no path")
        }
        let rawLength = strlen(rawName)
        let rawBytes = UnsafeBufferPointer(start: UnsafeRawPointer(rawName).assumingMemoryBound(to: UInt8.self), count: rawLength)
        let name = String(decoding: rawBytes, as: UTF8.self)
        guard number <= limits.maxEntries else {
            throw error(.limitExceeded, name, "more than \(limits.maxEntries) entries")
        }
        guard rawLength <= limits.maxPathLength else {
            throw error(.limitExceeded, name, "path longer than \(limits.maxPathLength) bytes")
        }
        let path: EntryPath
        do {
            path = try EntryPath.normalise(rawBytes)
        } catch {
            switch error {
            case .absolute: throw self.error(.absolutePath, name, "absolute path")
            case .dotDot: throw self.error(.pathTraversal, name, "'..' in path")
            }
        }
        guard path.depth <= limits.maxPathDepth else {
            throw error(.limitExceeded, name, "path deeper than \(limits.maxPathDepth) components")
        }

        var perm = archive_entry_perm(entry) & 0o7777
        if perm & 0o7000 != 0 {
            report.strippedSetuidEntries += 1
            perm &= 0o777
        }
        let mtime = archive_entry_mtime_is_set(entry) != 0
            ? timespec(tv_sec: time_t(archive_entry_mtime(entry)), tv_nsec: Int(archive_entry_mtime_nsec(entry)))
            : timespec(tv_sec: 0, tv_nsec: utimeOmit)

        if let hardlink = archive_entry_hardlink(entry) {
            try extractHardlink(path, name: name, target: hardlink)
            return
        }
        let type = archive_entry_filetype(entry) & 0o170000
        switch type {
        case 0o040000:
            if path.isRoot { return }
            try verifyParents(of: path, name: name)
            switch tree[path] {
            case nil:
                try emit(.directory(path))
                tree.insertDirectory(path, explicit: true)
                report.directories += 1
            case .directory(let explicit):
                if !explicit {
                    try emit(.directory(path))
                    report.directories += 1
                }
                tree.insertDirectory(path, explicit: true)
            default:
                throw error(.duplicateEntry, name, "a directory where an earlier entry is not a directory")
            }
            directoryModes[path] = (perm, mtime)
        case 0o100000:
            if path.isRoot { throw error(.invalidEntry, name, "a file entry with an empty path") }
            try verifyParents(of: path, name: name)
            try extractFile(entry, path: path, name: name, mode: perm, mtime: mtime)
        case 0o120000:
            if path.isRoot { throw error(.invalidEntry, name, "a symbolic link entry with an empty path") }
            try extractSymlink(entry, path: path, name: name, mtime: mtime)
        case 0o020000:
            throw error(.specialFile, name, "character device")
        case 0o060000:
            throw error(.specialFile, name, "block device")
        case 0o010000:
            throw error(.specialFile, name, "FIFO")
        case 0o140000:
            throw error(.specialFile, name, "socket")
        default:
            throw error(.specialFile, name, "unsupported entry type 0o\(String(type, radix: 8))")
        }
    }

    /// Checks that every parent of `path` is a directory (or not there yet, in which case it becomes an
    /// implied directory), and never a symbolic link or file.
    private func verifyParents(of path: EntryPath, name: String) throws(ArchiveError) {
        guard path.depth > 1 else { return }
        let parentEnd = path.componentEnds[path.depth - 2]
        if let last = lastVerifiedParent, last.count == parentEnd, path.bytes[0..<parentEnd].elementsEqual(last) { return }
        for depth in 1..<path.depth {
            let prefix = path.prefix(depth)
            switch tree[prefix] {
            case nil:
                tree.insertDirectory(prefix, explicit: false)
            case .directory:
                continue
            case .symlink:
                throw error(.linkEscape, name, "it would be written through the symbolic link '\(prefix.display)'")
            case .file:
                throw error(.duplicateEntry, name, "'\(prefix.display)' is an earlier file, not a directory")
            }
        }
        lastVerifiedParent = Array(path.bytes[0..<parentEnd])
    }

    private func extractFile(_ entry: OpaquePointer, path: EntryPath, name: String, mode: mode_t, mtime: timespec) throws(ArchiveError) {
        let declared: Int64? = archive_entry_size_is_set(entry) != 0 ? Int64(archive_entry_size(entry)) : nil
        if let declared {
            guard declared <= limits.maxEntryBytes else {
                throw error(.limitExceeded, name, "size \(declared) bytes is over the per-entry limit of \(limits.maxEntryBytes)")
            }
            guard totalBytes + declared <= limits.maxTotalBytes else {
                throw error(.limitExceeded, name, "the archive would expand beyond the total limit of \(limits.maxTotalBytes) bytes")
            }
        }
        var compare = false
        switch tree[path] {
        case nil:
            _ = tree.insertFile(path, size: declared)
            report.files += 1
        case .file(_, let size):
            if let size, let declared, size != declared {
                throw error(.duplicateEntry, name, "the same path appears twice with different content")
            }
            compare = true
        default:
            throw error(.duplicateEntry, name, "a file where an earlier entry is not a regular file")
        }
        try emit(.beginFile(path, mode: mode, mtime: mtime, size: declared, compare: compare))

        let handle = reader.handle
        var block: UnsafeRawPointer?
        var length = 0
        var offset: la_int64_t = 0
        var entryBytes: Int64 = 0
        var end: Int64 = 0
        while true {
            let status = archive_read_data_block(handle, &block, &length, &offset)
            if status == ARCHIVE_EOF { break }
            if status < ARCHIVE_WARN { throw reader.failure(beforeFirstHeader: false, entry: name) }
            guard let block, length > 0 else { continue }
            entryBytes += Int64(length)
            totalBytes += Int64(length)
            end = max(end, Int64(offset) + Int64(length))
            if entryBytes > limits.maxEntryBytes {
                throw error(.limitExceeded, name, "more than the per-entry limit of \(limits.maxEntryBytes) bytes")
            }
            if totalBytes > limits.maxTotalBytes {
                throw error(.limitExceeded, name, "the archive expands beyond the total limit of \(limits.maxTotalBytes) bytes")
            }
            if totalBytes > limits.ratioCheckThreshold && Double(totalBytes) > limits.maxCompressionRatio * Double(max(archiveSize, 1)) {
                throw error(
                    .limitExceeded, name,
                    "compression ratio over \(Int(limits.maxCompressionRatio)):1 (\(totalBytes) bytes from a \(archiveSize)-byte archive)")
            }
            try emitData(block, count: length, offset: Int64(offset))
        }
        if compare {
            if case .file(_, let size?) = tree[path], size != max(end, declared ?? 0) {
                throw error(.duplicateEntry, name, "the same path appears twice with different content")
            }
        } else if declared == nil {
            tree.updateFileSize(path, size: end)
        }
        try emit(.endFile)
    }

    private func extractSymlink(_ entry: OpaquePointer, path: EntryPath, name: String, mtime: timespec) throws(ArchiveError) {
        guard let rawTarget = archive_entry_symlink(entry) ?? archive_entry_symlink_utf8(entry) else {
            throw error(.invalidEntry, name, "a symbolic link without a target")
        }
        let length = strlen(rawTarget)
        let target = Array(UnsafeBufferPointer(start: UnsafeRawPointer(rawTarget).assumingMemoryBound(to: UInt8.self), count: length))
        guard !target.isEmpty else { throw error(.invalidEntry, name, "a symbolic link with an empty target") }
        guard length <= limits.maxPathLength else {
            throw error(.limitExceeded, name, "link target longer than \(limits.maxPathLength) bytes")
        }
        try verifyParents(of: path, name: name)
        let shown = ArchiveError.printable(String(decoding: target, as: UTF8.self))
        if case .outside(let why) = tree.resolve(target: target, of: path, followingSymlinks: true) {
            throw error(.linkEscape, name, "symbolic link to '\(shown)': \(why)")
        }
        switch tree[path] {
        case nil:
            tree.insertSymlink(path, target: target)
            report.symlinks += 1
            try emit(.symlink(path, target: target, mtime: mtime))
        case .symlink(let earlier) where earlier == target:
            return
        default:
            throw error(.duplicateEntry, name, "a symbolic link where an earlier entry is something else")
        }
    }

    private func extractHardlink(_ path: EntryPath, name: String, target rawTarget: UnsafePointer<CChar>) throws(ArchiveError) {
        let length = strlen(rawTarget)
        let targetBytes = UnsafeBufferPointer(start: UnsafeRawPointer(rawTarget).assumingMemoryBound(to: UInt8.self), count: length)
        let shown = ArchiveError.printable(String(decoding: targetBytes, as: UTF8.self))
        guard length <= limits.maxPathLength else {
            throw error(.limitExceeded, name, "link target longer than \(limits.maxPathLength) bytes")
        }
        let target: EntryPath
        do {
            target = try EntryPath.normalise(targetBytes)
        } catch {
            switch error {
            case .absolute: throw self.error(.linkEscape, name, "hard link to absolute path '\(shown)'")
            case .dotDot: throw self.error(.linkEscape, name, "hard link target '\(shown)' contains '..'")
            }
        }
        if path.isRoot { throw error(.invalidEntry, name, "a hard link entry with an empty path") }
        guard case .file(let inode, let size) = tree[target] else {
            let what = tree[target] == nil ? "is not an earlier entry of the archive" : "is not a regular file"
            throw error(.invalidEntry, name, "hard link target '\(shown)' \(what)")
        }
        try verifyParents(of: path, name: name)
        switch tree[path] {
        case nil:
            tree.insertHardlink(path, to: inode, size: size)
            report.hardlinks += 1
            try emit(.hardlink(path, target: target))
        case .file(let existing, _) where existing == inode:
            return
        default:
            throw error(.duplicateEntry, name, "a hard link where an earlier entry is something else")
        }
    }

    // MARK: Handing over to the writer

    private func emit(_ op: WriteOp) throws(ArchiveError) {
        guard let current = batch else { throw Self.writerStopped }
        current.ops.append(op)
        if current.ops.count >= Self.batchOps { try flush(final: false) }
    }

    private func emitData(_ bytes: UnsafeRawPointer, count: Int, offset: Int64) throws(ArchiveError) {
        var done = 0
        while done < count {
            guard var current = batch else { throw Self.writerStopped }
            if current.used == current.capacity || current.ops.count >= Self.batchOps {
                try flush(final: false)
                guard let next = batch else { throw Self.writerStopped }
                current = next
            }
            let chunk = min(count - done, current.capacity - current.used)
            (current.buffer + current.used).copyMemory(from: bytes + done, byteCount: chunk)
            let position = offset + Int64(done)
            if case .data(let lastOffset, let start, let length)? = current.ops.last,
                start + length == current.used, lastOffset + Int64(length) == position
            {
                current.ops[current.ops.count - 1] = .data(offset: lastOffset, start: start, count: length + chunk)
            } else {
                current.ops.append(.data(offset: position, start: current.used, count: chunk))
            }
            current.used += chunk
            done += chunk
        }
    }

    private func flush(final: Bool) throws(ArchiveError) {
        guard let current = batch else { throw Self.writerStopped }
        batch = nil
        if current.ops.isEmpty && final { return }
        guard channel.submit(current) else { throw Self.writerStopped }
        if !final {
            guard let next = channel.acquire() else { throw Self.writerStopped }
            batch = next
        }
    }

    // MARK: Finishing

    /// Resolves every symbolic link through the final tree: links created before the links they pass
    /// through can only be judged at the end.
    private func verifySymlinks() throws(ArchiveError) {
        for link in tree.symlinks {
            guard case .symlink(let target) = tree[link] else { continue }
            if case .outside(let why) = tree.resolve(target: target, of: link, followingSymlinks: true) {
                let shown = ArchiveError.printable(String(decoding: target, as: UTF8.self))
                throw error(.linkEscape, link.display, "symbolic link to '\(shown)': \(why)")
            }
        }
    }

    /// Gives explicit directories their permissions and times, deepest first, now that nothing more
    /// will be created in them.
    private func applyDirectoryModes() throws(ArchiveError) {
        let ordered = directoryModes.sorted { $0.key.depth > $1.key.depth }
        for (path, attributes) in ordered {
            let name = cString(path.bytes)
            if fchmodat(rootFD, name, attributes.mode, 0) != 0 {
                throw error(.io, path.display, "cannot set permissions: \(POSIX.message(errno))")
            }
            if attributes.mtime.tv_nsec != utimeOmit {
                var times = [attributes.mtime, attributes.mtime]
                if utimensat(rootFD, name, &times, AT_SYMLINK_NOFOLLOW) != 0 {
                    throw error(.io, path.display, "cannot set the modification time: \(POSIX.message(errno))")
                }
            }
        }
    }
}
