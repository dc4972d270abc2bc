import ArgumentParser
import Foundation
import IMSPluginHost
import IMSProtocol

/// `ims plugins …`: find, inspect, check and run plugins.
struct PluginsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plugins",
        abstract: "List, describe, check and run phase plugins.",
        discussion: """
            A plugin is a directory holding plugin.json and an executable entrypoint. ID|DIR arguments \
            take either a plugin id from the search path or a path to a plugin directory.
            """,
        subcommands: [List.self, Describe.self, Check.self, Run.self]
    )
}

extension PluginsCommand {
    struct List: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show every plugin on the search path with its status.",
            discussion: """
                Status is 'ok', 'refused' (with the reason: world-writable files, an entrypoint outside \
                the directory, a manifest that fails its schema, no shared protocol version, …) or \
                'shadowed' when a plugin with the same id appears earlier on the search path.
                Nothing is executed to build this list.
                """
        )

        @OptionGroup var global: GlobalOptions
        var json: Bool { global.json }

        func run(_ context: CommandContext) async throws {
            let catalog = PluginCatalog(searchPath: global.searchPath(context))
            if global.json {
                try context.json(PluginListing(catalog: catalog))
                return
            }
            if catalog.plugins.isEmpty {
                context.line("No plugins found. Searched: \(catalog.searchPath.entries.map(\.directory).joined(separator: ":"))")
                return
            }
            for plugin in catalog.plugins {
                let version = plugin.manifest?.version ?? "-"
                let phases = plugin.manifest?.phases.map(\.name).joined(separator: ",") ?? "-"
                var line = "\(plugin.id) \(version)  phases: \(phases)  [\(plugin.status.label)]  \(plugin.directory)"
                if let reason = plugin.status.reason { line += "\n    \(reason)" }
                context.line(line)
            }
        }
    }

    struct Describe: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a plugin's manifest and what its entrypoint says it does.",
            discussion: "Runs '<entrypoint> describe' (no request, no secrets, 10 s limit) and compares it with plugin.json."
        )

        @OptionGroup var global: GlobalOptions
        var json: Bool { global.json }
        @Argument(help: ArgumentHelp("A plugin id or plugin directory.", valueName: "id|dir")) var plugin: String

        func run(_ context: CommandContext) async throws {
            let catalog = PluginCatalog(searchPath: global.searchPath(context))
            let resolved: ResolvedPlugin
            do {
                resolved = try catalog.resolve(plugin)
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.unavailable, context: context)
            }
            let outcome = await PluginInvoker.describe(resolved)
            let described: PluginDescription? = if case .described(let description) = outcome.status { description } else { nil }
            let differences = described.map { ManifestAgreement.differences($0, manifest: resolved.manifest) }
            let report = DescribeReport(
                id: resolved.id, directory: resolved.directory, entrypoint: resolved.entrypointPath,
                protocolVersion: resolved.protocolVersion, manifest: resolved.manifest, describe: described,
                agrees: differences.map(\.isEmpty), differences: differences, error: outcome.error)
            if global.json {
                try context.json(report)
            } else {
                let manifest = resolved.manifest
                context.line("\(manifest.id) \(manifest.version)\(manifest.name.map { " — \($0)" } ?? "")")
                if let description = manifest.description { context.line("  \(description)") }
                context.line("  directory:  \(resolved.directory)")
                context.line("  entrypoint: \(resolved.entrypointPath)")
                context.line("  protocol:   \(manifest.protocol.versions.map(String.init).joined(separator: ", ")) (features: \((manifest.protocol.features ?? []).joined(separator: ", ")))")
                for phase in manifest.phases {
                    context.line("  phase \(phase.name): \(phase.payloads.joined(separator: ", "))")
                    if let selectors = phase.selectors {
                        let parts = [
                            selectors.distroFamily.map { "distro_family=\($0.joined(separator: "|"))" },
                            selectors.packageManager.map { "package_manager=\($0.joined(separator: "|"))" },
                            selectors.arch.map { "arch=\($0.joined(separator: "|"))" },
                        ].compactMap { $0 }
                        context.line("    selectors: \(parts.joined(separator: ", "))")
                    }
                    if let secrets = phase.permissions?.secrets, !secrets.isEmpty {
                        context.line("    secrets: \(secrets.map { "\($0.name) (\($0.reason))" }.joined(separator: ", "))")
                    }
                }
                if let error = outcome.error {
                    context.line("  describe FAILED: \(error.message) [\(error.code)]")
                } else if let differences, !differences.isEmpty {
                    context.line("  describe DISAGREES with plugin.json: \(differences.joined(separator: "; "))")
                } else {
                    context.line("  describe agrees with plugin.json")
                }
                if outcome.error == nil, let requires = report.describe?.phases.flatMap({ $0.requires?.commands ?? [] }), !requires.isEmpty {
                    context.line("  requires commands: \(requires.joined(separator: ", "))")
                }
            }
            // A plugin whose code and manifest disagree is refused at run time (its hello), so say so here too.
            if outcome.error != nil || differences?.isEmpty == false { throw CLIExitCode.failure }
        }
    }

    struct Check: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a plugin through the protocol conformance cases.",
            discussion: """
                Cases (protocol/README.md §13): manifest, usage_without_ims_plugin, usage_unknown_verb, \
                describe_agrees, hello_first, one_terminal_message, bad_request, version_mismatch, \
                cancel_honoured, sigterm_honoured, stdin_eof_honoured, cleanup_idempotent, forward_compatible, \
                secrets_not_exposed. Each is PASS, FAIL, or SKIP when it could not be exercised (never counted \
                as a pass). Each case has a time limit, so a plugin that hangs, crashes or floods its output is \
                reported, never waited on forever. Exits 1 when any case fails.

                Without --request every run gets an empty config and no inputs: a plugin that needs them fails \
                at once with its own error, so its success path is not seen and the three stop cases are not \
                exercised (SKIP). Give it what a real step would: --request FILE (the request file of 'ims \
                plugins run': config, inputs, payload, secrets, timeouts) and --input NAME=PATH for each input \
                (a file or directory, passed by its absolute path; the plugin works on it in place in every \
                case, so give it a scratch copy). The request's timeouts set the cancel and kill graces and, \
                without --timeout, the time limit of each run.

                Examples:
                    ims plugins check Plugins/example-bash
                    echo '{"config": {"motd": "built by ims"}}' > req.json
                    ims plugins check ./stamp-motd --request req.json --input rootfs=/tmp/scratch-root
                """
        )

        @OptionGroup var global: GlobalOptions
        var json: Bool { global.json }
        @Argument(help: ArgumentHelp("A plugin id or plugin directory.", valueName: "id|dir")) var plugin: String
        @Option(help: "Time limit in seconds for each run of the plugin (default: the request's timeouts.run_seconds, else 10).") var timeout: Double?
        @Option(help: "The phase to check (default: the manifest's first phase).") var phase: String?
        @Option(help: ArgumentHelp("A request file, as for 'ims plugins run' ('-' for stdin).", valueName: "file")) var request: String?
        @Option(name: .customLong("input"), help: ArgumentHelp("An input artifact, a file or directory (repeatable).", valueName: "NAME=PATH")) var inputs: [String] = []

        func run(_ context: CommandContext) async throws {
            let catalog = PluginCatalog(searchPath: global.searchPath(context))
            let directory: String
            if plugin.contains("/") || FileManager.default.fileExists(atPath: plugin + "/plugin.json") {
                directory = plugin
            } else if let found = catalog.plugins.first(where: { $0.id.lowercased() == plugin.lowercased() }) {
                directory = found.directory
            } else {
                throw PluginHostError.pluginNotFound(plugin, searched: catalog.searchPath.entries.map(\.directory))
            }
            let file = try RequestFile.load(request, inputs: inputs, context: context)
            let defaults = ConformanceChecker()
            let checker = ConformanceChecker(
                runTimeoutSeconds: timeout ?? file.timeouts?.runSeconds ?? defaults.runTimeoutSeconds,
                cancelGraceSeconds: file.timeouts?.cancelGraceSeconds ?? defaults.cancelGraceSeconds,
                killGraceSeconds: file.timeouts?.killGraceSeconds ?? defaults.killGraceSeconds,
                request: ConformanceChecker.Request(
                    phase: phase, payload: file.payload, config: file.config ?? .object([:]), inputs: file.inputs ?? [:],
                    secrets: try file.secretValues(request ?? "--request")))
            let results = await checker.check(directory: directory)
            let passed = results.allSatisfy(\.passed)
            if global.json {
                try context.json(CheckReport(plugin: plugin, directory: directory, passed: passed, cases: results))
            } else {
                for result in results {
                    let label = switch result.verdict {
                    case .passed: "PASS"
                    case .failed: "FAIL"
                    case .notExercised: "SKIP"
                    }
                    context.line("\(label)  \(result.name)  (\(String(format: "%.2f", result.seconds)) s)  \(result.detail)")
                }
                let failed = results.filter { $0.verdict == .failed }.count
                let skipped = results.filter { $0.verdict == .notExercised }.count
                context.line("conformance: \(results.count - failed - skipped) passed, \(failed) failed, \(skipped) not exercised")
            }
            if !passed { throw CLIExitCode.failure }
        }
    }

    struct Run: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run one phase of a plugin by hand.",
            discussion: """
                The request file is a JSON object with any of: config, inputs (name → {path, kind}), \
                payload, job_id, secrets (name → path of a file holding the secret), timeouts \
                ({run_seconds, start_seconds, cancel_grace_seconds, kill_grace_seconds}). The host fills \
                in the protocol version, workspace and deadline. Events stream as text, or as NDJSON \
                with --json. Exits 1 when the phase fails.

                Example:
                    echo '{"config": {"greeting": "hi"}}' > req.json
                    ims plugins run org.ims.example.bash --phase hello --request req.json
                """
        )

        @OptionGroup var global: GlobalOptions
        var json: Bool { global.json }
        @Argument(help: ArgumentHelp("A plugin id or plugin directory.", valueName: "id|dir")) var plugin: String
        @Option(help: "The phase to run.") var phase: String
        @Option(help: ArgumentHelp("The request file ('-' for stdin).", valueName: "file")) var request: String
        @Option(name: .customLong("input"), help: ArgumentHelp("An input artifact, a file or directory; overrides the request's (repeatable).", valueName: "NAME=PATH")) var inputs: [String] = []
        @Option(help: "The verb: run or cleanup.", transform: choiceOption([("run", PluginVerb.run), ("cleanup", .cleanup)])) var verb: PluginVerb = .run
        @Option(help: ArgumentHelp("Job workspace directory (default: a new temporary directory).", valueName: "dir")) var workspace: String?
        @Flag(help: "Treat stray stdout lines as fatal, as the conformance check does.") var strict = false

        func run(_ context: CommandContext) async throws {
            let catalog = PluginCatalog(searchPath: global.searchPath(context))
            let resolved: ResolvedPlugin
            do {
                resolved = try catalog.resolve(plugin)
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.unavailable, context: context)
            }
            let file = try RequestFile.load(request, inputs: inputs, context: context)
            let root = workspace ?? (NSTemporaryDirectory() + "ims-run-" + UUID().uuidString.lowercased().prefix(8))
            var invocation = InvocationRequest(
                verb: verb, phase: phase, payload: file.payload, config: file.config ?? .object([:]),
                inputs: file.inputs ?? [:], jobID: file.jobID ?? UUID().uuidString.lowercased(), workspaceRoot: root,
                timeouts: file.timeouts ?? .init(), strict: strict)
            invocation.secrets = try file.secretValues(request)
            let observer: any PluginEventObserver =
                global.json
                ? NDJSONEventWriter(fileHandle: context.stdout.fileHandle)
                : TextEventRenderer(fileHandle: context.stdout.fileHandle, isTerminal: context.stdout.isTerminal)
            let outcome: InvocationOutcome
            do {
                outcome = try await PluginInvoker.invoke(resolved, invocation, observer: observer)
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.unavailable, context: context)
            }
            if !global.json { context.line("workspace: \(root)") }
            if !outcome.succeeded { throw CLIExitCode.failure }
        }
    }
}

/// The request file of `ims plugins run` and `ims plugins check`, and their `--input NAME=PATH` options.
struct RequestFile: Decodable {
    var config: JSONValue?
    var inputs: [String: ArtifactRef]?
    var payload: String?
    var jobID: String?
    var secrets: [String: String]?
    var timeouts: PluginManifest.Timeouts?

    enum CodingKeys: String, CodingKey {
        case config, inputs, payload, secrets, timeouts
        case jobID = "job_id"
    }

    /// The request file at `path` (nil: an empty request) with each `NAME=PATH` of `inputs` added as an input
    /// (absolute path; kind dir or file by what is there), replacing the file's input of that name.
    static func load(_ path: String?, inputs: [String], context: CommandContext) throws -> RequestFile {
        var file = RequestFile()
        if let path {
            do {
                file = try load(path, stdin: context.stdin)
            } catch {
                throw CLIError.input(path, error)
            }
        }
        for option in inputs {
            guard let equals = option.firstIndex(of: "="), equals != option.startIndex, option.index(after: equals) != option.endIndex else {
                throw CLIError.input("--input \(option): expected NAME=PATH, e.g. rootfs=/tmp/root")
            }
            let name = String(option[..<equals])
            let location = context.absolutePath(String(option[option.index(after: equals)...]))
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: location, isDirectory: &isDirectory) else {
                throw CLIError.input("--input \(option): \(location) does not exist")
            }
            file.inputs = (file.inputs ?? [:]).merging([name: ArtifactRef(path: location, kind: isDirectory.boolValue ? .dir : .file)]) { $1 }
        }
        return file
    }

    /// The secrets, read from the files the request names; `source` names the request in errors.
    func secretValues(_ source: String) throws -> [String: Data] {
        var values: [String: Data] = [:]
        for (name, path) in secrets ?? [:] {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIError.input("\(source): cannot read secret '\(name)' from \(path)")
            }
            values[name] = data
        }
        return values
    }

    static func load(_ path: String, stdin: FileHandle) throws -> RequestFile {
        let data: Data
        if path == "-" {
            data = stdin.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw CLIError.input("cannot read the file")
            }
            data = contents
        }
        do {
            return try JSONDecoder().decode(RequestFile.self, from: data)
        } catch {
            throw CLIError.input("not a valid request file (a JSON object with config, inputs, payload, job_id, secrets, timeouts)")
        }
    }
}

struct PluginListing: Encodable {
    struct Entry: Encodable {
        var id: String
        var version: String?
        var name: String?
        var phases: [PluginManifest.Phase]
        var directory: String
        var origin: String
        var status: String
        var reason: String?
    }

    struct SearchEntry: Encodable {
        var directory: String
        var origin: String
    }

    var plugins: [Entry]
    var searchPath: [SearchEntry]

    enum CodingKeys: String, CodingKey {
        case plugins
        case searchPath = "search_path"
    }

    init(catalog: PluginCatalog) {
        plugins = catalog.plugins.map {
            Entry(
                id: $0.id, version: $0.manifest?.version, name: $0.manifest?.name, phases: $0.manifest?.phases ?? [],
                directory: $0.directory, origin: $0.origin.rawValue, status: $0.status.label, reason: $0.status.reason)
        }
        searchPath = catalog.searchPath.entries.map { SearchEntry(directory: $0.directory, origin: $0.origin.rawValue) }
    }
}

struct DescribeReport: Encodable {
    var id: String
    var directory: String
    var entrypoint: String
    var protocolVersion: Int
    var manifest: PluginManifest
    var describe: PluginDescription?
    /// Whether `describe` agrees with plugin.json (nil when describe failed), and where it does not.
    var agrees: Bool?
    var differences: [String]?
    var error: ErrorInfo?

    enum CodingKeys: String, CodingKey {
        case id, directory, entrypoint, manifest, describe, agrees, differences, error
        case protocolVersion = "protocol_version"
    }
}

struct CheckReport: Encodable {
    var plugin: String
    var directory: String
    var passed: Bool
    var cases: [ConformanceChecker.CaseResult]
}
