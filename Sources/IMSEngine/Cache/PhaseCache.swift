import Foundation
import IMSPluginHost
import IMSProtocol

#if canImport(Glibc)
import Glibc
#endif

/// A content-addressed store of phase outputs, in a directory of its own (`<data-dir>/cache`).
///
///     entries/<k0k1>/<key>/entry.json      what the phase returned (``PhaseCacheEntry``) and its key's inputs
///     entries/<k0k1>/<key>/outputs/<name> a copy of each output (file or directory, owners and modes kept)
///     tmp/<random>/                        an entry being written; renamed into entries/ only when complete
///     trash/<random>/                      an evicted entry being removed
///
/// Safe with several processes: an entry appears by one `rename(2)` of a complete directory, so a reader sees a whole
/// entry or none, and a `kill -9` leaves only a `tmp/` directory that is never read (``prune(maxBytes:)`` removes
/// it). Eviction renames an entry away before removing it, so a restore that races it fails and is treated as a miss.
/// Restored outputs are hard links (a directory: a tree of them), so an entry evicted later does not affect a job
/// that already restored it; ``materialize(_:)`` turns them into copies before a plugin may change them.
public struct PhaseCache: Sendable {
    public var directory: String
    /// The size the cache is kept under after each store (least recently used entries go first).
    public var maxBytes: Int64

    public init(directory: String, maxBytes: Int64) {
        self.directory = directory
        self.maxBytes = maxBytes
    }

    /// The cache the site settings describe for a data directory (`cache.directory`, `cache.max_size_gib`).
    public init(settings: CacheSettings, dataDirectory: String) {
        self.init(directory: settings.directory(dataDirectory: dataDirectory), maxBytes: settings.maxBytes)
    }

    var entriesDirectory: String { directory + "/entries" }

    func entryDirectory(_ key: String) -> String {
        entriesDirectory + "/" + key.prefix(2) + "/" + key
    }

    // MARK: Lookup and restore

    /// The entry stored under `key`, marked as used now; nil when there is none (or it cannot be read).
    public func lookup(_ key: String) -> PhaseCacheEntry? {
        let path = entryDirectory(key)
        guard let data = FileManager.default.contents(atPath: path + "/entry.json"),
              let entry = try? Self.decoder.decode(PhaseCacheEntry.self, from: data), entry.key == key
        else { return nil }
        let now = (1 << 30) - 1  // UTIME_NOW
        var times = [timespec(tv_sec: 0, tv_nsec: now), timespec(tv_sec: 0, tv_nsec: now)]
        _ = utimensat(AT_FDCWD, path, &times, 0)
        return entry
    }

    /// Places `entry`'s outputs in `directory` (hard links; copies across file systems) and returns the phase's
    /// result as the plugin first gave it, with paths in `directory`.
    public func restore(_ entry: PhaseCacheEntry, into directory: String) async throws(EngineError) -> PhaseResult {
        let source = entryDirectory(entry.key) + "/outputs"
        var outputs: [String: ArtifactRef] = [:]
        let nested = Set(entry.outputs.values.map(\.fileName)).count < entry.outputs.count
        for (name, stored) in entry.outputs.sorted(by: { $0.key < $1.key }) {
            let target = nested ? directory + "/" + name + "/" + stored.fileName : directory + "/" + stored.fileName
            try? FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            Self.removeTree(target)
            try await Self.link(source + "/" + name, to: target, directory: stored.kind == .dir)
            var ref = ArtifactRef(path: target, kind: stored.kind)
            ref.mediaType = stored.mediaType
            ref.digest = stored.digest
            ref.size = stored.size
            outputs[name] = ref
        }
        return PhaseResult(outputs: outputs, metadata: entry.metadata, facts: entry.facts)
    }

    /// Replaces restored hard links at `ref` by a private copy, so a plugin may change it without touching the cache.
    public static func materialize(_ ref: ArtifactRef) async throws(EngineError) {
        let privateCopy = ref.path + ".ims-copy-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        try await copy(ref.path, to: privateCopy)
        removeTree(ref.path)
        guard rename(privateCopy, ref.path) == 0 else {
            throw EngineError(.cache, "cannot move the copy of \(ref.path) into place: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: Store

    /// Copies `result`'s outputs into a new entry under `key` (whose ``PhaseCacheKey/digest`` the caller may pass when
    /// it has it already). Returns nil (and stores nothing) when an output lies outside `workspace`, which a cacheable
    /// phase must not produce.
    @discardableResult
    public func store(
        key: PhaseCacheKey, digest knownDigest: String? = nil, result: PhaseResult, step: String, seconds: Double, workspace: String
    ) async throws(EngineError) -> PhaseCacheEntry? {
        let digest = knownDigest ?? key.digest
        if FileManager.default.fileExists(atPath: entryDirectory(digest) + "/entry.json") { return lookup(digest) }
        for ref in result.outputs.values where !ref.path.hasPrefix(workspace + "/") { return nil }
        let staging = directory + "/tmp/" + UUID().uuidString.lowercased()
        do {
            try FileManager.default.createDirectory(atPath: staging + "/outputs", withIntermediateDirectories: true)
        } catch {
            throw EngineError(.cache, "cannot create \(staging): \(error.localizedDescription)")
        }
        var stored: [String: PhaseCacheEntry.StoredOutput] = [:]
        do throws(EngineError) {
            for (name, ref) in result.outputs {
                try await Self.copy(ref.path, to: staging + "/outputs/" + name)
                stored[name] = .init(
                    fileName: (ref.path as NSString).lastPathComponent, kind: ref.kind, mediaType: ref.mediaType, digest: ref.digest, size: ref.size)
            }
            let entry = PhaseCacheEntry(
                key: digest, inputs: key, step: step, created: Date(), seconds: seconds, outputs: stored,
                metadata: result.metadata, facts: result.facts, sizeBytes: Self.diskUsage(staging + "/outputs"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            encoder.dateEncodingStrategy = .iso8601
            let data: Data
            do { data = try encoder.encode(entry) } catch { throw EngineError(.cache, "cannot encode the cache entry: \(error)") }
            guard FileManager.default.createFile(atPath: staging + "/entry.json", contents: data) else {
                throw EngineError(.cache, "cannot write \(staging)/entry.json")
            }
            let target = entryDirectory(digest)
            try? FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            if rename(staging, target) != 0 {
                let reason = errno
                Self.removeTree(staging)
                // Another process stored the same key first: its entry is as good as ours.
                if reason == EEXIST || reason == ENOTEMPTY { return lookup(digest) }
                throw EngineError(.cache, "cannot move the new entry into \(target): \(String(cString: strerror(reason)))")
            }
            _ = prune(maxBytes: maxBytes, keeping: digest)
            return entry
        } catch {
            Self.removeTree(staging)
            throw error
        }
    }

    // MARK: Listing and eviction

    /// Every complete entry, least recently used first.
    public func entries() -> [PhaseCacheEntry.Listed] {
        var listed: [PhaseCacheEntry.Listed] = []
        let fileManager = FileManager.default
        for prefix in (try? fileManager.contentsOfDirectory(atPath: entriesDirectory)) ?? [] {
            let prefixPath = entriesDirectory + "/" + prefix
            for key in (try? fileManager.contentsOfDirectory(atPath: prefixPath)) ?? [] {
                let path = prefixPath + "/" + key
                guard let data = fileManager.contents(atPath: path + "/entry.json"),
                      let entry = try? Self.decoder.decode(PhaseCacheEntry.self, from: data)
                else { continue }
                var info = stat()
                let lastUsed = stat(path, &info) == 0 ? Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9) : entry.created
                listed.append(.init(entry: entry, lastUsed: lastUsed))
            }
        }
        return listed.sorted { ($0.lastUsed, $0.entry.key) < ($1.lastUsed, $1.entry.key) }
    }

    /// What a prune or clear did.
    public struct PruneReport: Sendable, Codable, Hashable {
        public var removedEntries: Int
        public var freedBytes: Int64
        public var keptEntries: Int
        public var keptBytes: Int64
        /// Unfinished entries (from a killed process) removed.
        public var removedIncomplete: Int

        enum CodingKeys: String, CodingKey {
            case removedEntries = "removed_entries"
            case freedBytes = "freed_bytes"
            case keptEntries = "kept_entries"
            case keptBytes = "kept_bytes"
            case removedIncomplete = "removed_incomplete"
        }
    }

    /// Removes least recently used entries until the cache holds at most `maxBytes` (never `keeping`), and unfinished
    /// entries older than `incompleteAge` seconds left by killed processes.
    @discardableResult
    public func prune(maxBytes: Int64, keeping: String? = nil, incompleteAge: TimeInterval = 3600) -> PruneReport {
        var report = PruneReport(removedEntries: 0, freedBytes: 0, keptEntries: 0, keptBytes: 0, removedIncomplete: 0)
        let now = Date()
        for scratch in ["tmp", "trash"] {
            let path = directory + "/" + scratch
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                let full = path + "/" + name
                let modified = (try? FileManager.default.attributesOfItem(atPath: full)[.modificationDate] as? Date) ?? now
                if scratch == "trash" || now.timeIntervalSince(modified) >= incompleteAge {
                    Self.removeTree(full)
                    report.removedIncomplete += scratch == "tmp" ? 1 : 0
                }
            }
        }
        let listed = entries()
        var total = listed.reduce(Int64(0)) { $0 + $1.entry.sizeBytes }
        var kept = listed.count
        for item in listed where total > maxBytes && item.entry.key != keeping {
            if evict(item.entry.key) {
                total -= item.entry.sizeBytes
                report.freedBytes += item.entry.sizeBytes
                report.removedEntries += 1
                kept -= 1
            }
        }
        report.keptEntries = kept
        report.keptBytes = total
        return report
    }

    /// Removes every entry.
    @discardableResult
    public func clear() -> PruneReport {
        prune(maxBytes: -1, incompleteAge: 0)
    }

    private func evict(_ key: String) -> Bool {
        let trash = directory + "/trash"
        try? FileManager.default.createDirectory(atPath: trash, withIntermediateDirectories: true)
        let moved = trash + "/" + UUID().uuidString.lowercased()
        guard rename(entryDirectory(key), moved) == 0 else { return false }
        Self.removeTree(moved)
        return true
    }

    // MARK: Helpers

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Bytes the tree at `path` takes on disk.
    static func diskUsage(_ path: String) -> Int64 {
        var info = stat()
        guard lstat(path, &info) == 0 else { return 0 }
        var total = Int64(info.st_blocks) * 512
        if (info.st_mode & S_IFMT) == S_IFDIR, let names = try? FileManager.default.contentsOfDirectory(atPath: path) {
            for name in names { total += diskUsage(path + "/" + name) }
        }
        return total
    }

    static let cp = HostCommand.locate("cp", path: PluginInvoker.systemPath) ?? "/bin/cp"

    /// A full copy (owners, modes, times, links and extended attributes kept; reflinked where the file system can).
    static func copy(_ source: String, to target: String) async throws(EngineError) {
        try await runCopy(["-a", "--reflink=auto", "--", source, target], source: source, target: target)
    }

    /// Hard links for `source` (a directory: a tree of directories holding hard links), else a copy.
    static func link(_ source: String, to target: String, directory: Bool) async throws(EngineError) {
        if !directory {
            if Glibc.link(source, target) == 0 { return }
            guard errno == EXDEV || errno == EPERM || errno == EMLINK else {
                throw EngineError(.cache, "cannot restore \(source): \(String(cString: strerror(errno)))")
            }
            return try await copy(source, to: target)
        }
        do {
            try await runCopy(["-a", "-l", "--", source, target], source: source, target: target)
        } catch {
            removeTree(target)
            try await copy(source, to: target)
        }
    }

    private static func runCopy(_ arguments: [String], source: String, target: String) async throws(EngineError) {
        let result: HostCommand.Result
        do {
            result = try await HostCommand.run(cp, arguments, keepLines: 5)
        } catch {
            throw EngineError(.cache, error.description)
        }
        guard result.exit == .exited(0) else {
            throw EngineError(.cache, "cannot copy \(source) to \(target): \(result.outputTail.suffix(2).joined(separator: "; "))")
        }
    }
}

/// What the cache keeps about one phase run.
public struct PhaseCacheEntry: Sendable, Codable, Hashable {
    public struct StoredOutput: Sendable, Codable, Hashable {
        /// The output's file or directory name as the plugin made it.
        public var fileName: String
        public var kind: ArtifactRef.Kind
        public var mediaType: String?
        public var digest: String?
        public var size: Int64?

        enum CodingKeys: String, CodingKey {
            case kind, digest, size
            case fileName = "file_name"
            case mediaType = "media_type"
        }
    }

    /// An entry with the time it was last used, as ``PhaseCache/entries()`` lists them.
    public struct Listed: Sendable, Hashable {
        public var entry: PhaseCacheEntry
        public var lastUsed: Date
    }

    public var key: String
    public var inputs: PhaseCacheKey
    /// The step that stored it.
    public var step: String
    public var created: Date
    /// How long the phase took when it ran.
    public var seconds: Double
    public var outputs: [String: StoredOutput]
    public var metadata: [String: JSONValue]
    public var facts: [String: JSONValue]
    public var sizeBytes: Int64

    enum CodingKeys: String, CodingKey {
        case key, inputs, step, created, seconds, outputs, metadata, facts
        case sizeBytes = "size_bytes"
    }
}
