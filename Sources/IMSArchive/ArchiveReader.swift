import CLibArchive

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The single owner of the libarchive read handle (`struct archive *`) for one archive, configured
/// for the recipe archive formats: tar (ustar, pax, GNU, v7) and zip, optionally compressed with gzip,
/// bzip2, xz or zstd.
///
/// Only these four filters are enabled, rather than `archive_read_support_filter_all`, because the
/// latter also registers filters that run external programs (lrzip, lzop, grzip) on untrusted input;
/// anything else fails format detection and is reported as an unsupported format.
///
/// The input is probed first with the filters and libarchive's `raw` format. A compressed input is
/// then decompressed on its own thread by a ``Decompressor`` and parsed here from its plain stream; an
/// uncompressed input (plain tar, or zip, which needs to seek to its central directory) is read
/// directly from the file.
final class ArchiveReader {
    let handle: OpaquePointer
    let archivePath: String
    /// The compression filters, outermost first (`none` excluded).
    let filterNames: [String]
    private let decompressor: Decompressor?
    private let source: ChunkSource?

    static let blockSize = 128 << 10

    /// Opens `path` for reading.
    ///
    /// - Throws: `ArchiveError` with code `io` when the file cannot be opened, `unsupportedFormat`
    ///   when it is not a supported archive, or `corrupt`.
    init(path: String) throws(ArchiveError) {
        archivePath = path
        func allocate() throws(ArchiveError) -> OpaquePointer {
            guard let handle = archive_read_new() else {
                throw ArchiveError(.io, archivePath: path, reason: "cannot allocate a libarchive reader")
            }
            return handle
        }
        func enableFilters(_ handle: OpaquePointer) {
            archive_read_support_filter_gzip(handle)
            archive_read_support_filter_bzip2(handle)
            archive_read_support_filter_xz(handle)
            archive_read_support_filter_zstd(handle)
        }
        func enableFormats(_ handle: OpaquePointer) {
            archive_read_support_format_tar(handle)
            archive_read_support_format_zip(handle)
        }

        let probe = try allocate()
        enableFilters(probe)
        archive_read_support_format_raw(probe)
        if archive_read_open_filename(probe, path, Self.blockSize) < ARCHIVE_WARN {
            let error = Self.failure(
                of: probe, path: path, filters: Self.filterNames(of: probe), beforeFirstHeader: true, decompression: nil)
            archive_read_free(probe)
            throw error
        }
        let filters = Self.filterNames(of: probe)
        filterNames = filters

        guard !filters.isEmpty else {
            // Not compressed as a whole: read the file directly (zip needs to seek).
            archive_read_free(probe)
            let handle = try allocate()
            enableFilters(handle)
            enableFormats(handle)
            if archive_read_open_filename(handle, path, Self.blockSize) < ARCHIVE_WARN {
                let error = Self.failure(of: handle, path: path, filters: [], beforeFirstHeader: true, decompression: nil)
                archive_read_free(handle)
                throw error
            }
            self.handle = handle
            decompressor = nil
            source = nil
            return
        }

        var entry: OpaquePointer?
        let status = archive_read_next_header(probe, &entry)
        if status != ARCHIVE_OK && status != ARCHIVE_WARN {
            let error = status == ARCHIVE_EOF
                ? ArchiveError(.unsupportedFormat, archivePath: path, reason: "an empty \(filters.joined(separator: ", ")) stream")
                : ArchiveError(.corrupt, archivePath: path, reason: "corrupt archive: \(Self.message(of: probe))")
            archive_read_free(probe)
            throw error
        }
        let decompressor = Decompressor(handle: probe)
        do {
            try decompressor.start()
        } catch {
            throw ArchiveError(.io, archivePath: path, reason: "cannot start the decompression thread: \(error.message)")
        }
        let source = ChunkSource(decompressor: decompressor)
        let handle: OpaquePointer
        do {
            handle = try allocate()
        } catch {
            decompressor.stop()
            throw error
        }
        enableFormats(handle)
        let context = Unmanaged.passUnretained(source).toOpaque()
        let opened = archive_read_open(handle, context, nil, { _, context, buffer in
            guard let context else { return -1 }
            return Unmanaged<ChunkSource>.fromOpaque(context).takeUnretainedValue().read(buffer)
        }, nil)
        if opened < ARCHIVE_WARN {
            let error = Self.failure(of: handle, path: path, filters: filters, beforeFirstHeader: true, decompression: decompressor)
            archive_read_free(handle)
            decompressor.stop()
            throw error
        }
        self.handle = handle
        self.decompressor = decompressor
        self.source = source
    }

    deinit {
        // Wake and join the decompressing thread before the handle that reads from it goes away.
        decompressor?.stop()
        archive_read_free(handle)
    }

    /// The error for a failed libarchive call on this archive.
    func failure(beforeFirstHeader: Bool, entry: String? = nil) -> ArchiveError {
        Self.failure(
            of: handle, path: archivePath, filters: filterNames, beforeFirstHeader: beforeFirstHeader, entry: entry,
            decompression: decompressor)
    }

    /// The error for a failed libarchive call: a decompression failure or a damaged stream means the
    /// archive is corrupt; before the first header, an input that no enabled reader recognises
    /// (libarchive's `ARCHIVE_ERRNO_FILE_FORMAT`, `EILSEQ` on Linux) is an unsupported format.
    private static func failure(
        of handle: OpaquePointer, path: String, filters: [String], beforeFirstHeader: Bool, entry: String? = nil,
        decompression: Decompressor?
    ) -> ArchiveError {
        if let failure = decompression?.failure {
            return ArchiveError(.corrupt, archivePath: path, entry: entry, reason: "corrupt archive: \(failure)")
        }
        let code = archive_errno(handle)
        let text = message(of: handle)
        let fileErrors: Set<Int32> = [ENOENT, EACCES, EISDIR, ENOTDIR, EPERM, ELOOP, ENAMETOOLONG]
        if beforeFirstHeader && fileErrors.contains(code) {
            return ArchiveError(.io, archivePath: path, reason: "cannot open: \(text)")
        }
        if beforeFirstHeader && code == EILSEQ && archive_format(handle) == 0 {
            let reason = filters.isEmpty
                ? "not a tar or zip archive, nor compressed with gzip, bzip2, xz or zstd: \(text)"
                : "the \(filters.joined(separator: "+"))-compressed content is not a tar or zip archive: \(text)"
            return ArchiveError(.unsupportedFormat, archivePath: path, reason: reason)
        }
        return ArchiveError(.corrupt, archivePath: path, entry: entry, reason: "corrupt archive: \(text)")
    }

    private static func message(of handle: OpaquePointer) -> String {
        archive_error_string(handle).map { String(cString: $0) } ?? "unknown libarchive error"
    }

    /// The names of the filters in use, outermost first, without `none`.
    private static func filterNames(of handle: OpaquePointer) -> [String] {
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
