import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine

/// `ims cache …`: the phase cache in the data directory.
struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "List, prune and clear the phase cache (stored outputs of cacheable phases).",
        discussion: """
            Before a cacheable phase runs (its plugin declares `cacheable: true` for it), ims computes a key from \
            everything that can change its outputs: the plugin's id, version and files, the phase's config with \
            job-specific paths left out, the digests of its input artifacts and of the files its config names (site \
            CA, signing keys), each repository's repodata/repomd.xml for builders, the arch and the source date. \
            A stored entry under that key is reused instead of running the phase. The cache lives in \
            <data-dir>/cache, is kept under `cache.max_size_gib` (ims.yaml, default 20) by removing the least \
            recently used entries, and is turned off per site (`cache: {enabled: false}`), per job (`ims build \
            --no-cache`) or per pipeline step (`cache: false`).

            Examples:
                ims cache ls
                ims cache ls --json | jq '.entries[] | {key, step, size_bytes}'
                ims cache prune --max-size-gib 5
                ims cache clear
            """,
        subcommands: [List.self, Prune.self, Clear.self]
    )

    struct Options: ParsableArguments {
        @OptionGroup var engine: EngineOptions
        var json: Bool { engine.json }

        func cache(_ context: CommandContext) throws -> (PhaseCache, CacheSettings) {
            let settings = try engine.siteSettings(context).cache ?? CacheSettings()
            let data = engine.catalog.dataDirectory(context).path
            return (PhaseCache(settings: settings, dataDirectory: data), settings)
        }
    }

    /// The JSON `ims cache ls --json` prints.
    struct Listing: Encodable {
        struct Entry: Encodable {
            var key: String
            var step: String
            var phase: String
            var pluginID: String
            var pluginVersion: String
            var sizeBytes: Int64
            var seconds: Double
            var created: String
            var lastUsed: String
            var outputs: [String]
            var inputs: PhaseCacheKey

            enum CodingKeys: String, CodingKey {
                case key, step, phase, seconds, created, outputs, inputs
                case pluginID = "plugin_id"
                case pluginVersion = "plugin_version"
                case sizeBytes = "size_bytes"
                case lastUsed = "last_used"
            }
        }

        var directory: String
        var enabled: Bool
        var maxBytes: Int64
        var sizeBytes: Int64
        var entries: [Entry]

        enum CodingKeys: String, CodingKey {
            case directory, enabled, entries
            case maxBytes = "max_bytes"
            case sizeBytes = "size_bytes"
        }
    }

    struct List: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List the cache's entries, most recently used last, with the total size.")
        @OptionGroup var options: Options
        var json: Bool { options.json }

        func run(_ context: CommandContext) async throws {
            let (cache, settings) = try options.cache(context)
            let listed = cache.entries()
            let time = ISO8601DateFormatter()
            let entries = listed.map { item in
                Listing.Entry(
                    key: item.entry.key, step: item.entry.step, phase: item.entry.inputs.phase, pluginID: item.entry.inputs.pluginID,
                    pluginVersion: item.entry.inputs.pluginVersion, sizeBytes: item.entry.sizeBytes, seconds: item.entry.seconds,
                    created: time.string(from: item.entry.created), lastUsed: time.string(from: item.lastUsed),
                    outputs: item.entry.outputs.keys.sorted(), inputs: item.entry.inputs)
            }
            let total = entries.reduce(Int64(0)) { $0 + $1.sizeBytes }
            if json {
                try context.json(Listing(directory: cache.directory, enabled: settings.isEnabled, maxBytes: cache.maxBytes, sizeBytes: total, entries: entries))
                return
            }
            let rows = entries.map { [String($0.key.prefix(12)), $0.step, "\($0.pluginID) \($0.pluginVersion)", CacheCommand.bytes($0.sizeBytes), String(format: "%.1f s", $0.seconds), $0.lastUsed] }
            if !rows.isEmpty {
                context.line(RecordsCLI.table(["KEY", "STEP", "PLUGIN", "SIZE", "RAN FOR", "LAST USED"], rows))
            }
            context.line("\(entries.count) entr\(entries.count == 1 ? "y" : "ies"), \(CacheCommand.bytes(total)) of \(CacheCommand.bytes(cache.maxBytes)) in \(cache.directory)\(settings.isEnabled ? "" : " (the cache is off: cache.enabled is false)")")
        }
    }

    struct Prune: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove least recently used entries until the cache fits its size limit, and entries left unfinished by killed jobs.")
        @OptionGroup var options: Options
        var json: Bool { options.json }
        @Option(name: .customLong("max-size-gib"), help: "Prune to this size instead of the site's cache.max_size_gib.") var maxSizeGiB: Double?

        func validate() throws {
            if let maxSizeGiB, !(maxSizeGiB >= 0) { throw ValidationError("--max-size-gib must be 0 or more") }
        }

        func run(_ context: CommandContext) async throws {
            let (cache, _) = try options.cache(context)
            let limit = maxSizeGiB.map { Int64($0 * 1024 * 1024 * 1024) } ?? cache.maxBytes
            let report = cache.prune(maxBytes: limit)
            try CacheCommand.print(report, json: json, context: context)
        }
    }

    struct Clear: IMSCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every entry (running jobs keep what they already restored).")
        @OptionGroup var options: Options
        var json: Bool { options.json }

        func run(_ context: CommandContext) async throws {
            let (cache, _) = try options.cache(context)
            try CacheCommand.print(cache.clear(), json: json, context: context)
        }
    }

    static func print(_ report: PhaseCache.PruneReport, json: Bool, context: CommandContext) throws {
        if json {
            try context.json(report)
            return
        }
        context.line("removed \(report.removedEntries) entr\(report.removedEntries == 1 ? "y" : "ies") (\(bytes(report.freedBytes))); kept \(report.keptEntries) (\(bytes(report.keptBytes)))"
            + (report.removedIncomplete > 0 ? "; removed \(report.removedIncomplete) unfinished" : ""))
    }

    /// `1.5 GiB`, `320.0 MiB`, `12 KiB`.
    static func bytes(_ count: Int64) -> String {
        let value = Double(count)
        if value >= 1_073_741_824 { return String(format: "%.1f GiB", value / 1_073_741_824) }
        if value >= 1_048_576 { return String(format: "%.1f MiB", value / 1_048_576) }
        return "\(count / 1024) KiB"
    }
}
