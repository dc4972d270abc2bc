import CLibArchive
import Crypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The archive formats ``ArchivePacker`` writes.
public enum PackFormat: String, Sendable, Equatable, CaseIterable, Codable {
    /// POSIX pax (restricted) tar, gzip-compressed, without a gzip timestamp or file name. The default.
    case tarGzip = "tar.gz"
    /// POSIX pax (restricted) tar, xz-compressed (single-threaded, so the output is deterministic).
    case tarXz = "tar.xz"
    /// POSIX pax (restricted) tar, zstd-compressed.
    case tarZstd = "tar.zst"
    /// Zip with deflate. Zip stores DOS times in local time, so the bytes are only reproducible
    /// for a given time zone (`TZ`).
    case zip
}

/// The outcome of ``ArchivePacker/pack(directory:to:format:sourceDateEpoch:)``.
///
/// Encodes to JSON with snake_case keys.
public struct PackResult: Sendable, Equatable, Codable {
    /// The archive written, as the caller named it.
    public var path: String
    /// The format written.
    public var format: PackFormat
    /// The archive's size in bytes.
    public var size: Int64
    /// The number of entries (files, directories and symbolic links; the root is not an entry).
    public var entries: Int
    /// The MD5 digest of the archive, lowercase hex (for compatibility with IMS artifact records only).
    public var md5: String
    /// The SHA-256 digest of the archive, lowercase hex.
    public var sha256: String

    /// Creates a result.
    ///
    /// - Parameters:
    ///   - path: The archive written.
    ///   - format: Its format.
    ///   - size: Its size in bytes.
    ///   - entries: The number of entries.
    ///   - md5: The MD5 digest, lowercase hex.
    ///   - sha256: The SHA-256 digest, lowercase hex.
    public init(path: String, format: PackFormat, size: Int64, entries: Int, md5: String, sha256: String) {
        self.path = path
        self.format = format
        self.size = size
        self.entries = entries
        self.md5 = md5
        self.sha256 = sha256
    }
}

/// Packs a recipe directory into a reproducible archive.
///
/// The same tree always gives the same bytes (with the same libarchive and compressor versions),
/// whatever the files' owners, access times or the directory's location:
///
/// - entries are sorted by path, in byte order, and the root itself is not an entry;
/// - the tar format is POSIX pax restricted (ustar headers, pax extensions only where needed);
/// - uid and gid are 0 and the user and group names are empty;
/// - modification times are kept, in whole seconds, with no access or change times; with a
///   `sourceDateEpoch` (`SOURCE_DATE_EPOCH`), times later than it are clamped to it (the
///   reproducible-builds convention, as `tar --clamp-mtime`), so a fresh checkout packs the same
///   bytes anywhere while older files keep their dates;
/// - permission bits are kept, except setuid, setgid and sticky, which are removed;
/// - symbolic links are stored as links; hard links are stored as separate regular files (copying a
///   tree may or may not keep them, so they must not change the result);
/// - gzip output has no timestamp and no original file name.
///
/// Device nodes, FIFOs and sockets in the tree are refused with ``ArchiveError/Code/specialFile``.
/// The archive is written to a temporary file next to the destination, synced, then renamed over it,
/// so readers never see a partial archive. Keep the archive outside the directory being packed, or a
/// later pack of that directory will include it.
public enum ArchivePacker {
    /// Packs `directory` into `archivePath`.
    ///
    /// Blocks the calling thread until done.
    ///
    /// - Parameters:
    ///   - directory: The tree to pack.
    ///   - archivePath: The archive to write; replaced atomically if it exists.
    ///   - format: The format; ``PackFormat/tarGzip`` unless given.
    ///   - sourceDateEpoch: The latest modification time an entry may have, in seconds since the
    ///     epoch (`SOURCE_DATE_EPOCH`); later times are clamped to it. Without it, times are kept.
    /// - Returns: The archive's size, entry count and digests.
    /// - Throws: ``ArchiveError``: `specialFile` for a device, FIFO or socket in the tree, `io` for
    ///   file-system failures (including a file changing size while packed).
    public static func pack(
        directory: String, to archivePath: String, format: PackFormat = .tarGzip, sourceDateEpoch: Int64? = nil
    ) throws(ArchiveError) -> PackResult {
        let items = try SourceTree.scan(directory)
        let rootFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard rootFD >= 0 else { throw ArchiveError(.io, archivePath: directory, reason: "cannot open: \(POSIX.message(errno))") }
        defer { close(rootFD) }

        var template = cString(Array((archivePath + ".tmp-XXXXXX").utf8))
        let fd = mkstemp(&template)
        guard fd >= 0 else {
            throw ArchiveError(.io, archivePath: archivePath, reason: "cannot create a temporary file next to it: \(POSIX.message(errno))")
        }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        do throws(ArchiveError) {
            let sink = DigestingSink(fd: fd)
            try write(items, from: rootFD, directory: directory, to: sink, archivePath: archivePath, format: format, clampTimesTo: sourceDateEpoch)
            let mode = 0o666 & ~(POSIX.currentUmask() ?? 0o022)
            guard fchmod(fd, mode) == 0, fsync(fd) == 0 else {
                throw ArchiveError(.io, archivePath: archivePath, reason: "cannot finish writing: \(POSIX.message(errno))")
            }
            close(fd)
            guard rename(temporary, archivePath) == 0 else {
                throw ArchiveError(.io, archivePath: archivePath, reason: "cannot rename the temporary file into place: \(POSIX.message(errno))")
            }
            return PackResult(
                path: archivePath, format: format, size: sink.size, entries: items.count,
                md5: hex(sink.md5.finalize()), sha256: hex(sink.sha256.finalize()))
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
    }

    private static func write(
        _ items: [SourceTree.Item], from rootFD: Int32, directory: String, to sink: DigestingSink, archivePath: String,
        format: PackFormat, clampTimesTo latest: Int64?
    ) throws(ArchiveError) {
        guard let handle = archive_write_new() else {
            throw ArchiveError(.io, archivePath: archivePath, reason: "cannot allocate a libarchive writer")
        }
        defer { archive_write_free(handle) }
        func failure(_ what: String, entry: String? = nil) -> ArchiveError {
            let message = archive_error_string(handle).map { String(cString: $0) } ?? "unknown libarchive error"
            return ArchiveError(.io, archivePath: archivePath, entry: entry, reason: "\(what): \(message)")
        }

        var status: Int32
        switch format {
        case .tarGzip:
            status = archive_write_set_format_pax_restricted(handle)
            if status == ARCHIVE_OK { status = archive_write_add_filter_gzip(handle) }
            if status == ARCHIVE_OK { status = archive_write_set_options(handle, "gzip:!timestamp") }
        case .tarXz:
            status = archive_write_set_format_pax_restricted(handle)
            if status == ARCHIVE_OK { status = archive_write_add_filter_xz(handle) }
            if status == ARCHIVE_OK { status = archive_write_set_options(handle, "xz:threads=1") }
        case .tarZstd:
            status = archive_write_set_format_pax_restricted(handle)
            if status == ARCHIVE_OK { status = archive_write_add_filter_zstd(handle) }
        case .zip:
            status = archive_write_set_format_zip(handle)
        }
        guard status == ARCHIVE_OK else { throw failure("cannot configure the \(format.rawValue) writer") }
        // No zero padding after the compressed stream: zstd readers reject it as a bad frame.
        archive_write_set_bytes_in_last_block(handle, 1)

        let context = Unmanaged.passUnretained(sink).toOpaque()
        status = archive_write_open2(handle, context, nil, { _, context, buffer, length in
            guard let context, let buffer else { return -1 }
            return Unmanaged<DigestingSink>.fromOpaque(context).takeUnretainedValue().append(buffer, count: length)
        }, nil, nil)
        guard status == ARCHIVE_OK else { throw failure("cannot start writing") }

        guard let entry = archive_entry_new() else { throw ArchiveError(.io, archivePath: archivePath, reason: "cannot allocate an entry") }
        defer { archive_entry_free(entry) }
        let bufferSize = 256 << 10
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bufferSize, alignment: 64)
        defer { buffer.deallocate() }

        for item in items {
            let name = cString(item.path)
            let shown = String(decoding: item.path, as: UTF8.self)
            archive_entry_clear(entry)
            archive_entry_copy_pathname(entry, name)
            archive_entry_set_uid(entry, 0)
            archive_entry_set_gid(entry, 0)
            archive_entry_set_mtime(entry, time_t(latest.map { min($0, item.modified) } ?? item.modified), 0)
            archive_entry_set_perm(entry, item.mode & 0o777)
            switch item.kind {
            case .directory:
                archive_entry_set_filetype(entry, UInt32(0o040000))
            case .symlink(let target):
                archive_entry_set_filetype(entry, UInt32(0o120000))
                archive_entry_copy_symlink(entry, cString(target))
            case .file(let size):
                archive_entry_set_filetype(entry, UInt32(0o100000))
                archive_entry_set_size(entry, la_int64_t(size))
            }
            guard archive_write_header(handle, entry) >= ARCHIVE_WARN else { throw failure("cannot write the header", entry: shown) }
            guard case .file(let size) = item.kind else { continue }

            let fd = openat(rootFD, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw ArchiveError(.io, archivePath: directory, entry: shown, reason: "cannot open: \(POSIX.message(errno))") }
            defer { close(fd) }
            var copied: Int64 = 0
            while true {
                let got = POSIX.retrying { read(fd, buffer, bufferSize) }
                if got < 0 { throw ArchiveError(.io, archivePath: directory, entry: shown, reason: "cannot read: \(POSIX.message(errno))") }
                if got == 0 { break }
                copied += Int64(got)
                if copied > size { break }
                if archive_write_data(handle, buffer, got) < 0 { throw failure("cannot write data", entry: shown) }
            }
            if copied != size {
                throw ArchiveError(.io, archivePath: directory, entry: shown, reason: "the file changed size while it was being packed")
            }
        }
        guard archive_write_close(handle) == ARCHIVE_OK else { throw failure("cannot finish the archive") }
        if let error = sink.error {
            throw ArchiveError(.io, archivePath: archivePath, reason: "cannot write: \(POSIX.message(error))")
        }
    }

    private static func hex(_ digest: some Digest) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The output side of packing: writes to a descriptor and digests what it writes.
final class DigestingSink {
    let fd: Int32
    var md5 = Insecure.MD5()
    var sha256 = SHA256()
    var size: Int64 = 0
    var error: Int32?

    init(fd: Int32) { self.fd = fd }

    /// libarchive's write callback: returns the bytes written, or -1.
    func append(_ buffer: UnsafeRawPointer, count: Int) -> Int {
        var done = 0
        while done < count {
            let wrote = POSIX.retrying { write(fd, buffer + done, count - done) }
            if wrote < 0 {
                error = errno
                return -1
            }
            done += wrote
        }
        let bytes = UnsafeRawBufferPointer(start: buffer, count: count)
        md5.update(bufferPointer: bytes)
        sha256.update(bufferPointer: bytes)
        size += Int64(count)
        return count
    }
}

/// A directory tree listed for packing, without following symbolic links.
enum SourceTree {
    struct Item {
        enum Kind {
            case directory
            case file(size: Int64)
            case symlink(target: [UInt8])
        }
        /// The path relative to the root, components joined by `/`.
        var path: [UInt8]
        var kind: Kind
        var mode: mode_t
        /// The modification time, in whole seconds since the epoch.
        var modified: Int64
    }

    /// Lists everything below `directory`, sorted by path in byte order.
    ///
    /// - Throws: `specialFile` for devices, FIFOs and sockets; `io` when something cannot be read.
    static func scan(_ directory: String) throws(ArchiveError) -> [Item] {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError(.io, archivePath: directory, reason: "cannot open the directory: \(POSIX.message(errno))") }
        var items: [Item] = []
        try walk(fd, prefix: [], root: directory, into: &items)
        items.sort { $0.path.lexicographicallyPrecedes($1.path) }
        return items
    }

    /// Lists the directory open as `fd` (and closes it).
    private static func walk(_ fd: Int32, prefix: [UInt8], root: String, into items: inout [Item]) throws(ArchiveError) {
        guard let dir = fdopendir(fd) else {
            close(fd)
            throw ArchiveError(.io, archivePath: root, entry: display(prefix), reason: "cannot list: \(POSIX.message(errno))")
        }
        defer { closedir(dir) }
        var names: [[UInt8]] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw -> [UInt8] in
                Array(raw[0..<(raw.firstIndex(of: 0) ?? raw.count)])
            }
            if name == [46] || name == [46, 46] { continue }
            names.append(name)
        }
        for name in names {
            let path = prefix.isEmpty ? name : prefix + [EntryPath.slash] + name
            let cName = cString(name)
            var info = stat()
            guard fstatat(fd, cName, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw ArchiveError(.io, archivePath: root, entry: display(path), reason: "cannot inspect: \(POSIX.message(errno))")
            }
            let mode = info.st_mode & 0o7777
            let modified = Int64(info.st_mtim.tv_sec)
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                items.append(Item(path: path, kind: .directory, mode: mode, modified: modified))
                let child = openat(fd, cName, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                guard child >= 0 else {
                    throw ArchiveError(.io, archivePath: root, entry: display(path), reason: "cannot open: \(POSIX.message(errno))")
                }
                try walk(child, prefix: path, root: root, into: &items)
            case S_IFREG:
                items.append(Item(path: path, kind: .file(size: Int64(info.st_size)), mode: mode, modified: modified))
            case S_IFLNK:
                var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let length = readlinkat(fd, cName, &target, target.count)
                guard length >= 0 else {
                    throw ArchiveError(.io, archivePath: root, entry: display(path), reason: "cannot read the link: \(POSIX.message(errno))")
                }
                items.append(Item(path: path, kind: .symlink(target: target[0..<length].map { UInt8(bitPattern: $0) }), mode: 0o777, modified: modified))
            default:
                let what: String
                switch info.st_mode & S_IFMT {
                case S_IFCHR: what = "character device"
                case S_IFBLK: what = "block device"
                case S_IFIFO: what = "FIFO"
                case S_IFSOCK: what = "socket"
                default: what = "unsupported file type"
                }
                throw ArchiveError(.specialFile, archivePath: root, entry: display(path), reason: "\(what) cannot be packed")
            }
        }
    }

    private static func display(_ path: [UInt8]) -> String? {
        path.isEmpty ? nil : String(decoding: path, as: UTF8.self)
    }
}
