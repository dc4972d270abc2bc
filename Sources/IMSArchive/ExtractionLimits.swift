/// Limits that bound what extracting one archive may cost, enforced while streaming.
///
/// The defaults suit KIWI recipe archives, which are small, while leaving room for recipes that carry
/// overlay trees or large root archives:
///
/// | limit                     | default       |
/// |---------------------------|---------------|
/// | ``maxEntries``            | 100 000       |
/// | ``maxTotalBytes``         | 8 GiB         |
/// | ``maxEntryBytes``         | 4 GiB         |
/// | ``maxCompressionRatio``   | 200 (200:1)   |
/// | ``ratioCheckThreshold``   | 64 MiB        |
/// | ``maxPathLength``         | 4096 bytes    |
/// | ``maxPathDepth``          | 256           |
///
/// Sizes count the data bytes actually written (holes in sparse files are not counted); an entry whose
/// header declares a size above ``maxEntryBytes``, or that would take the total above
/// ``maxTotalBytes``, is refused before any of its data is written. The compression ratio is the bytes
/// written so far divided by the size of the archive file, and is only checked once more than
/// ``ratioCheckThreshold`` bytes have been written, so small, highly compressible recipes pass. Every
/// archive entry counts towards ``maxEntries``, including the `./` entry and refused-before-writing ones.
public struct ExtractionLimits: Sendable, Equatable, Codable {
    /// The maximum number of entries. Default 100 000.
    public var maxEntries: Int
    /// The maximum number of bytes written for the whole archive. Default 8 GiB.
    public var maxTotalBytes: Int64
    /// The maximum size of a single entry, declared or written. Default 4 GiB.
    public var maxEntryBytes: Int64
    /// The maximum ratio of bytes written to archive file size. Default 200.
    public var maxCompressionRatio: Double
    /// The number of bytes written before ``maxCompressionRatio`` is enforced. Default 64 MiB.
    public var ratioCheckThreshold: Int64
    /// The maximum length in bytes of an entry's path (and of a link target). Default 4096.
    public var maxPathLength: Int
    /// The maximum number of components in an entry's path. Default 256.
    public var maxPathDepth: Int

    /// Creates limits; every parameter defaults to the documented default.
    ///
    /// - Parameters:
    ///   - maxEntries: The maximum number of entries.
    ///   - maxTotalBytes: The maximum number of bytes written in total.
    ///   - maxEntryBytes: The maximum size of one entry.
    ///   - maxCompressionRatio: The maximum ratio of bytes written to archive file size.
    ///   - ratioCheckThreshold: The bytes written before the ratio is enforced.
    ///   - maxPathLength: The maximum path (and link target) length in bytes.
    ///   - maxPathDepth: The maximum number of path components.
    public init(
        maxEntries: Int = 100_000,
        maxTotalBytes: Int64 = 8 << 30,
        maxEntryBytes: Int64 = 4 << 30,
        maxCompressionRatio: Double = 200,
        ratioCheckThreshold: Int64 = 64 << 20,
        maxPathLength: Int = 4096,
        maxPathDepth: Int = 256
    ) {
        self.maxEntries = maxEntries
        self.maxTotalBytes = maxTotalBytes
        self.maxEntryBytes = maxEntryBytes
        self.maxCompressionRatio = maxCompressionRatio
        self.ratioCheckThreshold = ratioCheckThreshold
        self.maxPathLength = maxPathLength
        self.maxPathDepth = maxPathDepth
    }

    /// The documented defaults.
    public static let `default` = ExtractionLimits()

    enum CodingKeys: String, CodingKey {
        case maxEntries = "max_entries"
        case maxTotalBytes = "max_total_bytes"
        case maxEntryBytes = "max_entry_bytes"
        case maxCompressionRatio = "max_compression_ratio"
        case ratioCheckThreshold = "ratio_check_threshold"
        case maxPathLength = "max_path_length"
        case maxPathDepth = "max_path_depth"
    }
}
