import Foundation

/// The phase cache's site settings (`cache:` in ims.yaml).
///
///     cache:
///       enabled: true        # default; false turns the cache off for every job of the site
///       max_size_gib: 20     # least recently used entries are removed above this size (default 20)
///       directory: /var/cache/ims   # where it lives (default <data-dir>/cache); a remote runner (Slurm, remote
///                                   # build nodes) uses the cache only when its ims.yaml sets this, since its
///                                   # data directory is scratch
public struct CacheSettings: Sendable, Hashable, Codable {
    public var enabled: Bool?
    public var maxSizeGiB: Double?
    public var directory: String?

    enum CodingKeys: String, CodingKey {
        case enabled, directory
        case maxSizeGiB = "max_size_gib"
    }

    public init(enabled: Bool? = nil, maxSizeGiB: Double? = nil, directory: String? = nil) {
        self.enabled = enabled
        self.maxSizeGiB = maxSizeGiB
        self.directory = directory
    }

    static let settingNames = ["directory", "enabled", "max_size_gib"]

    /// The cache's directory for a data directory.
    public func directory(dataDirectory: String) -> String {
        directory ?? dataDirectory + "/cache"
    }

    public static let defaultMaxSizeGiB: Double = 20

    /// Whether jobs use the cache (default: yes).
    public var isEnabled: Bool { enabled ?? true }

    /// The size limit in bytes.
    public var maxBytes: Int64 { Int64((maxSizeGiB ?? Self.defaultMaxSizeGiB) * 1024 * 1024 * 1024) }

    func check(source: String) throws(EngineError) {
        if let size = maxSizeGiB, !(size >= 0) {
            throw EngineError(.settings, "\(source): cache.max_size_gib must be 0 or more (0 keeps nothing)")
        }
        if let directory, !directory.hasPrefix("/") {
            throw EngineError(.settings, "\(source): cache.directory must be an absolute path")
        }
    }
}
