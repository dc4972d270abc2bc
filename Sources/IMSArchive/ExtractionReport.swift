/// What one successful extraction produced.
///
/// Encodes to JSON with snake_case keys, for `ims recipes unpack --json`.
public struct ExtractionReport: Sendable, Equatable, Codable {
    /// The destination directory, as the caller named it.
    public var destination: String
    /// The number of archive entries read (including skipped `./` and exact duplicates).
    public var entries: Int
    /// Regular files created (hard links not included).
    public var files: Int
    /// Directories created from explicit directory entries (implied parents not included).
    public var directories: Int
    /// Symbolic links created.
    public var symlinks: Int
    /// Hard links created.
    public var hardlinks: Int
    /// File data bytes written (holes in sparse files not included).
    public var bytesWritten: Int64
    /// libarchive's name for the archive format, such as `"POSIX pax interchange format"` or `"ZIP 2.0 (deflation)"`.
    public var format: String
    /// libarchive's names for the compression filters, outermost first, such as `["gzip"]`; empty when
    /// the archive is not compressed as a whole.
    public var filters: [String]
    /// Entries whose setuid, setgid or sticky bit was removed.
    public var strippedSetuidEntries: Int

    /// Creates a report.
    ///
    /// - Parameters:
    ///   - destination: The destination directory.
    ///   - entries: Entries read.
    ///   - files: Regular files created.
    ///   - directories: Directories created from directory entries.
    ///   - symlinks: Symbolic links created.
    ///   - hardlinks: Hard links created.
    ///   - bytesWritten: Data bytes written.
    ///   - format: The archive format's name.
    ///   - filters: The compression filters' names.
    ///   - strippedSetuidEntries: Entries whose setuid, setgid or sticky bit was removed.
    public init(
        destination: String, entries: Int = 0, files: Int = 0, directories: Int = 0, symlinks: Int = 0,
        hardlinks: Int = 0, bytesWritten: Int64 = 0, format: String = "", filters: [String] = [],
        strippedSetuidEntries: Int = 0
    ) {
        self.destination = destination
        self.entries = entries
        self.files = files
        self.directories = directories
        self.symlinks = symlinks
        self.hardlinks = hardlinks
        self.bytesWritten = bytesWritten
        self.format = format
        self.filters = filters
        self.strippedSetuidEntries = strippedSetuidEntries
    }

    enum CodingKeys: String, CodingKey {
        case destination, entries, files, directories, symlinks, hardlinks
        case bytesWritten = "bytes_written"
        case format, filters
        case strippedSetuidEntries = "stripped_setuid_entries"
    }
}
