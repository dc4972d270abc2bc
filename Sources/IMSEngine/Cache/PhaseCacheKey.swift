import Foundation
import IMSProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Everything that can change a phase's outputs, and the key made from it.
///
/// The key is the SHA-256 of this value's canonical JSON (sorted keys), so the inputs are kept next to every cache
/// entry and `ims cache ls --json` can show why two runs did or did not share an entry.
public struct PhaseCacheKey: Sendable, Hashable, Codable {
    /// Bumped when the way keys are made changes, so old entries are never taken for new ones.
    public static let formatVersion = 1

    public var format: Int
    public var pluginID: String
    public var pluginVersion: String
    /// The digest of every file in the plugin's directory (``ContentDigest``).
    public var pluginDigest: String
    /// The host commands the plugin's manifest requires (zypper, rpm, mksquashfs…) → digest of the executable
    /// found on the PATH: a tool upgraded on the build host changes the key.
    public var tools: [String: String]
    public var phase: String
    public var arch: String?
    /// The request's config with job-specific values (workspace paths, the job id) replaced by placeholders.
    public var config: JSONValue
    public var sourceDateEpoch: Int?
    /// Input artifact name → digest.
    public var inputs: [String: String]
    /// Files the config names (site CA, signing keys), by normalised path → digest.
    public var files: [String: String]
    /// Repository source → digest of its `repodata/repomd.xml` as fetched for this job.
    public var repositories: [String: String]

    enum CodingKeys: String, CodingKey {
        case format, phase, arch, config, inputs, files, repositories, tools
        case pluginID = "plugin_id"
        case pluginVersion = "plugin_version"
        case pluginDigest = "plugin_digest"
        case sourceDateEpoch = "source_date_epoch"
    }

    public init(
        pluginID: String, pluginVersion: String, pluginDigest: String, tools: [String: String] = [:], phase: String, arch: String?,
        config: JSONValue, sourceDateEpoch: Int?, inputs: [String: String], files: [String: String] = [:],
        repositories: [String: String] = [:]
    ) {
        self.tools = tools
        format = Self.formatVersion
        self.pluginID = pluginID
        self.pluginVersion = pluginVersion
        self.pluginDigest = pluginDigest
        self.phase = phase
        self.arch = arch
        self.config = config
        self.sourceDateEpoch = sourceDateEpoch
        self.inputs = inputs
        self.files = files
        self.repositories = repositories
    }

    /// The key: 64 hex digits.
    public var digest: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(self)) ?? Data()
        return String(ContentDigest.of(data: data).dropFirst("sha256:".count))
    }

    /// The digest given to output `name` of a phase run under `key`: what later steps' keys use instead of hashing
    /// the output again (the same key always stands for the same outputs, restored or fresh).
    public static func outputDigest(key: String, name: String) -> String {
        ContentDigest.of(text: "phase-output\u{0}\(key)\u{0}\(name)")
    }

    /// `value` with every occurrence of a job-specific string replaced by its placeholder, longest first.
    public static func normalise(_ value: JSONValue, replacing placeholders: [(String, String)]) -> JSONValue {
        let ordered = placeholders.filter { !$0.0.isEmpty }.sorted { $0.0.count > $1.0.count }
        func walk(_ value: JSONValue) -> JSONValue {
            switch value {
            case .string(let text):
                var result = text
                for (original, placeholder) in ordered { result = result.replacingOccurrences(of: original, with: placeholder) }
                return .string(result)
            case .array(let items): return .array(items.map(walk))
            case .object(let members): return .object(members.mapValues(walk))
            default: return value
            }
        }
        return walk(value)
    }

    /// The absolute paths of existing regular files named anywhere in `config` (site CA bundles, signing keys):
    /// their contents reach the plugin, so their digests belong in the key. Directories are left out (a config
    /// naming `/` must not hash a disk); a phase that reads a directory takes it as an input artifact.
    public static func referencedPaths(in config: JSONValue) -> [String] {
        var found: Set<String> = []
        func walk(_ value: JSONValue) {
            switch value {
            case .string(let text) where text.hasPrefix("/") && !text.contains("\n"):
                var info = stat()
                if stat(text, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { found.insert(text) }
            case .array(let items): items.forEach(walk)
            case .object(let members): members.values.forEach(walk)
            default: break
            }
        }
        walk(config)
        return found.sorted()
    }
}
