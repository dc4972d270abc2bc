import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import IMSRecipes
import IMSStore

/// Options shared by the record commands (`ims recipes create|list|…`, `ims images …`, `ims public-keys …`).
struct CatalogOptions: ParsableArguments {
    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp(
            "The data directory holding catalog.sqlite and the local store (default: $IMS_DATA_DIR, else /var/lib/ims as root, else $XDG_DATA_HOME/ims or ~/.local/share/ims).",
            valueName: "dir"))
    var dataDir: String?

    @Option(
        name: .customLong("store"),
        help: ArgumentHelp("The artifact store URL (default: $IMS_STORE, else file://<data-dir>/store).", valueName: "url"))
    var store: String?

    @Flag(name: .long, help: "Print machine-readable JSON (IMS field names) instead of text.")
    var json = false

    /// The data directory: `--data-dir` (relative to the context's current directory), else as the context's
    /// environment says (see `DataDirectory.resolve`).
    func dataDirectory(_ context: CommandContext) -> DataDirectory {
        DataDirectory.resolve(explicit: dataDir.map(context.absolutePath), environment: context.environment)
    }

    /// The data directory resolved in the process's own environment, for code that runs without a context
    /// (the background runner's arguments; see `JobsCommand.Create`).
    var dataDirectory: DataDirectory {
        DataDirectory.resolve(explicit: dataDir)
    }

    /// The resolved store URL: `--store`, else `$IMS_STORE`, else the site settings' `store`, else the local
    /// store in the data directory. Empty values count as unset.
    func storeURL(settings: SiteSettings, context: CommandContext) -> String {
        let candidates = [store, context.environment["IMS_STORE"], settings.store]
        return candidates.compactMap { $0 }.first { !$0.isEmpty } ?? dataDirectory(context).storeURL
    }

    /// Opens the catalog, reporting failures.
    func openCatalog(_ context: CommandContext) throws -> Catalog {
        do {
            return try Catalog(dataDirectory: dataDirectory(context))
        } catch {
            throw CLIErrors.report(error, json: json, context: context)
        }
    }

    /// The site settings of `<$IMS_CONFIG_DIR or /etc/ims>/ims.yaml`, or none when it cannot be read (record
    /// commands take only a store's settings and the executor's heartbeat timeout from it).
    static func siteSettings(_ context: CommandContext) -> SiteSettings {
        let siteDirectory = context.environment["IMS_CONFIG_DIR"] ?? "/etc/ims"
        return (try? SiteSettings.load(file: siteDirectory + "/ims.yaml", optional: true)) ?? SiteSettings()
    }

    /// Opens the artifact store named by ``storeURL(settings:context:)``, reporting failures.
    ///
    /// - Parameters:
    ///   - settings: the site settings; by default `<$IMS_CONFIG_DIR or /etc/ims>/ims.yaml` (an S3 store's settings).
    ///   - plugins: the plugins to find the store plugin in; discovered only when the store needs one.
    func openStore(_ context: CommandContext, settings: SiteSettings? = nil, plugins: PluginCatalog? = nil) throws -> any ArtifactStore {
        let settings = settings ?? Self.siteSettings(context)
        let url = storeURL(settings: settings, context: context)
        do {
            guard url.hasPrefix("s3://") else { return try ArtifactStores.open(url: url) }
            let plugins = plugins ?? PluginCatalog(searchPath: PluginSearchPath.standard(
                explicit: settings.pluginPath ?? [], environment: context.environment, executablePath: context.executablePath))
            return try ArtifactStoreFactory.open(url: url, settings: settings, plugins: plugins)
        } catch {
            throw CLIErrors.report(error, json: json, context: context)
        }
    }
}

/// Output, errors and argument parsing shared by the record commands.
enum RecordsCLI {
    /// Runs `body`, turning any error into a printed report and an exit code.
    static func run<T>(json: Bool, context: CommandContext, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let exit as ExitCode {
            throw exit
        } catch {
            throw CLIErrors.report(error, json: json, context: context)
        }
    }

    struct ErrorReport: Encodable {
        var code: String
        var message: String
        var exitCode: Int32

        enum CodingKeys: String, CodingKey {
            case code, message
            case exitCode = "exit_code"
        }
    }

    /// Prints one record as JSON.
    static func printJSON<T: RecordJSONWritable>(_ record: T, _ context: CommandContext) {
        context.write(Data(RecordJSONWriter.object(record)))
    }

    /// Prints records as a JSON array.
    static func printJSON<T: RecordJSONWritable>(_ records: [T], _ context: CommandContext) {
        context.write(Data(RecordJSONWriter.array(records)))
    }

    /// Renders a text table: a header row, then rows, columns padded to their widest cell.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func render(_ cells: [String]) -> String {
            var line = ""
            for (index, cell) in cells.enumerated() {
                if index == cells.count - 1 {
                    line += cell
                } else {
                    line += cell + String(repeating: " ", count: widths[index] - cell.count + 2)
                }
            }
            return line
        }
        var lines = [render(header)]
        lines.reserveCapacity(rows.count + 1)
        for row in rows { lines.append(render(row)) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Prints `key: value` lines for `describe`.
    static func printFields(_ fields: [(String, String)], _ context: CommandContext) {
        let width = fields.map(\.0.count).max() ?? 0
        var text = ""
        for (key, value) in fields { text += key + ":" + String(repeating: " ", count: width - key.count + 1) + value + "\n" }
        context.write(Data(text.utf8))
    }

    static func date(_ date: Date?) -> String {
        guard let date else { return "-" }
        return String(IMSTimestamp.string(date).prefix(19)).replacingOccurrences(of: "T", with: " ")
    }

    /// Parses a record id argument.
    static func uuid(_ text: String, kind: String) throws -> UUID {
        guard let id = UUID(uuidString: text) else { throw ValidationError("'\(text)' is not a \(kind) id (a UUID)") }
        return id
    }

    /// Parses repeated `KEY=VALUE` options.
    static func pairs(_ values: [String], option: String) throws -> [(String, String)] {
        try values.map { text in
            guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
                throw ValidationError("'\(option)' takes KEY=VALUE, got '\(text)'")
            }
            return (String(text[..<equals]), String(text[text.index(after: equals)...]))
        }
    }

    /// Parses `true`/`false` (also yes/no, 1/0).
    static func bool(_ text: String) throws -> Bool {
        switch text.lowercased() {
        case "true", "yes", "1", "on": return true
        case "false", "no", "0", "off": return false
        default: throw ValidationError("'\(text)' is not true or false")
        }
    }

    /// The object behind a link the user gave, which must exist in the store.
    static func storedLink(_ url: String, store: any ArtifactStore) async throws -> ArtifactLink {
        try await RecordLinks.recipeLink(url, store: store)
    }
}

/// Parses an option that takes one of a fixed set of values. Anything else is a usage error (exit 64) whose message
/// lists the allowed values; every enum-valued option of ims parses this way.
func choiceOption<T: Sendable>(_ choices: [(name: String, value: T)]) -> @Sendable (String) throws -> T {
    { text in
        guard let choice = choices.first(where: { $0.name == text }) else {
            throw ValidationError("allowed: \(choices.map(\.name).joined(separator: ", "))")
        }
        return choice.value
    }
}

/// Parses an enumeration option (its raw values), listing the allowed values on error.
func enumerationOption<E: RawRepresentable & CaseIterable & Sendable>(_ type: E.Type) -> @Sendable (String) throws -> E
where E.RawValue == String {
    choiceOption(E.allCases.map { (name: $0.rawValue, value: $0) })
}

/// Parses an age option (`30m`, `2h`, `1d`); a malformed age is a usage error.
@Sendable func ageOption(_ text: String) throws -> TimeInterval {
    do {
        return try JobFilter.parseAge(text)
    } catch {
        throw ValidationError(error.description)
    }
}

/// What an undefined template variable does (`--undefined`).
let undefinedVariableChoices: [(name: String, value: UndefinedVariablePolicy)] = [("error", .error), ("render-empty", .renderEmpty)]
