import CLibArchive

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The single owner of a libarchive read handle (`struct archive *`), configured for the recipe
/// archive formats: tar (ustar, pax, GNU, v7) and zip, optionally compressed with gzip, bzip2, xz or
/// zstd.
///
/// Only these filters are enabled, rather than `archive_read_support_filter_all`, because the latter
/// also registers filters that run external programs (lrzip, lzop, grzip) on untrusted input; anything
/// else fails format detection and is reported as an unsupported format.
final class ArchiveReader {
    let handle: OpaquePointer
    let archivePath: String

    /// Opens `path` for reading with `archive_read_open_filename`.
    ///
    /// - Throws: `ArchiveError` with code `io` when the file cannot be opened, `unsupportedFormat`
    ///   when it is not a supported archive, or `corrupt`.
    init(path: String, blockSize: Int = 128 << 10) throws(ArchiveError) {
        archivePath = path
        guard let handle = archive_read_new() else {
            throw ArchiveError(.io, archivePath: path, reason: "cannot allocate a libarchive reader")
        }
        self.handle = handle
        archive_read_support_filter_gzip(handle)
        archive_read_support_filter_bzip2(handle)
        archive_read_support_filter_xz(handle)
        archive_read_support_filter_zstd(handle)
        archive_read_support_format_tar(handle)
        archive_read_support_format_zip(handle)
        let status = archive_read_open_filename(handle, path, blockSize)
        if status < ARCHIVE_WARN { throw failure(beforeFirstHeader: true) }
    }

    deinit { archive_read_free(handle) }

    /// libarchive's current error message.
    var errorString: String {
        archive_error_string(handle).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    /// The error for a failed libarchive call: before the first header, an input that no enabled
    /// reader recognises (libarchive's `ARCHIVE_ERRNO_FILE_FORMAT`, `EILSEQ` on Linux) is an unsupported
    /// format; any other failure (a truncated or damaged stream) means the archive is corrupt.
    func failure(beforeFirstHeader: Bool, entry: String? = nil) -> ArchiveError {
        let code = archive_errno(handle)
        let message = errorString
        let fileErrors: Set<Int32> = [ENOENT, EACCES, EISDIR, ENOTDIR, EPERM, ELOOP, ENAMETOOLONG]
        if beforeFirstHeader && fileErrors.contains(code) {
            return ArchiveError(.io, archivePath: archivePath, reason: "cannot open: \(message)")
        }
        if beforeFirstHeader && code == EILSEQ && archive_format(handle) == 0 {
            let filters = filterNames
            let what = filters.isEmpty ? "" : " (\(filters.joined(separator: ", ")) compressed)"
            return ArchiveError(
                .unsupportedFormat, archivePath: archivePath,
                reason: "not a tar or zip archive\(what), nor compressed with gzip, bzip2, xz or zstd: \(message)")
        }
        return ArchiveError(.corrupt, archivePath: archivePath, entry: entry, reason: "corrupt archive: \(message)")
    }

    /// The names of the filters in use, outermost first, without `none`.
    var filterNames: [String] {
        let count = archive_filter_count(handle)
        guard count > 0 else { return [] }
        return (0..<count).compactMap { index -> String? in
            guard let name = archive_filter_name(handle, index) else { return nil }
            let text = String(cString: name)
            return text == "none" ? nil : text
        }
    }

    /// The format name libarchive reports for the entry just read.
    var formatName: String {
        archive_format_name(handle).map { String(cString: $0) } ?? ""
    }
}
