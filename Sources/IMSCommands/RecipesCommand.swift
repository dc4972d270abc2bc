import ArgumentParser
import Foundation
import IMSArchive
import IMSKiwi
import IMSProtocol
import IMSRecipes

/// `ims recipes …`: recipe records, and working with recipe descriptions and archives.
struct RecipesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recipes",
        abstract: "Register, inspect, validate, render and pack recipes (KIWI-NG image descriptions).",
        discussion: """
            PATH arguments take a recipe directory or an archive (tar, tar.gz/tgz, tar.xz, tar.zst, tar.bz2, zip). \
            Archives are unpacked safely into a temporary directory first.
            """,
        subcommands: RecipesCommand.recordCommands + RecipesCommand.descriptionCommands
    )

    /// The commands that work on recipe descriptions.
    static let descriptionCommands: [any ParsableCommand.Type] = [
        Validate.self, Inspect.self, Render.self, Pack.self, Unpack.self, CheckRepos.self,
    ]
}

/// A recipe PATH opened for reading: directories as they are, archives unpacked into a temporary directory.
struct OpenedRecipe {
    let directory: String
    private let temporary: String?

    init(_ path: String, json: Bool, context: CommandContext) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIErrors.report(RecipeError(.notFound, file: path, "no such file or directory"), json: json, exit: CLIExitCode.dataError, context: context)
        }
        if isDirectory.boolValue {
            directory = path
            temporary = nil
            return
        }
        let scratch = NSTemporaryDirectory() + "ims-recipe-" + UUID().uuidString.lowercased().prefix(12)
        do {
            directory = try RecipeSource.workingCopy(of: path, in: scratch + "/recipe").directory
            temporary = scratch
        } catch {
            try? FileManager.default.removeItem(atPath: scratch)
            throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
        }
    }

    func close() {
        if let temporary { try? FileManager.default.removeItem(atPath: temporary) }
    }
}

enum RecipeCLI {
    static func diagnosticJSON(_ diagnostic: KiwiDiagnostic) -> JSONValue {
        var object: [String: JSONValue] = [
            "severity": .string(diagnostic.severity.rawValue), "code": .string(diagnostic.code.rawValue),
            "message": .string(diagnostic.message),
        ]
        if let file = diagnostic.file { object["file"] = .string(file) }
        if let line = diagnostic.line { object["line"] = .number(Double(line)) }
        return .object(object)
    }
}

extension RecipesCommand {
    struct Validate: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a recipe's KIWI description; exit 0 when valid.",
            discussion: """
                Errors and warnings name file:line. Legacy spellings (yum, dnf, apt-get, schema 6.x) are \
                accepted with warnings. Exit 1 when the description has errors.

                Example:
                    ims recipes validate recipe.tgz --json
                """)

        @Argument(help: ArgumentHelp("A recipe directory or archive.", valueName: "path")) var path: String
        @Flag(help: "Print the diagnostics as JSON.") var json = false

        func run(_ context: CommandContext) async throws {
            let opened = try OpenedRecipe(path, json: json, context: context)
            defer { opened.close() }
            let diagnostics = KiwiValidator.validate(directory: opened.directory)
            let errors = diagnostics.filter { $0.severity == .error }
            if json {
                try context.json(JSONValue.object([
                    "path": .string(path), "valid": .bool(errors.isEmpty),
                    "errors": .number(Double(errors.count)),
                    "warnings": .number(Double(diagnostics.filter { $0.severity == .warning }.count)),
                    "diagnostics": .array(diagnostics.map(RecipeCLI.diagnosticJSON)),
                ]))
            } else {
                for diagnostic in diagnostics { context.line(diagnostic.description) }
                context.line(errors.isEmpty ? "\(path): valid (\(diagnostics.count) note(s) and warning(s))" : "\(path): \(errors.count) error(s)")
            }
            if !errors.isEmpty { throw CLIExitCode.failure }
        }
    }

    struct Inspect: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Summarise a recipe: name, package manager, distro family, profiles, repositories, packages, types, users.",
            discussion: """
                Without --profile or --arch every section of every profile and arch counts, and includes are expanded.

                Example:
                    ims recipes inspect Plugins/../examples/sles15 --json --profile compute
                """)

        @Argument(help: ArgumentHelp("A recipe directory or archive.", valueName: "path")) var path: String
        @Option(help: "Only sections that apply to this profile (repeatable).") var profile: [String] = []
        @Option(help: "Only packages that apply to this architecture.") var arch: String?
        @Option(help: "Override the inferred distro family (suse, rhel, debian).", transform: enumerationOption(KiwiDistroFamily.self))
        var distroFamily: KiwiDistroFamily?
        @Flag(help: "Print JSON.") var json = false

        func run(_ context: CommandContext) async throws {
            let opened = try OpenedRecipe(path, json: json, context: context)
            defer { opened.close() }
            let description: KiwiDescription
            do {
                description = try KiwiLoader.load(directory: opened.directory)
            } catch {
                throw CLIErrors.report(error, json: json, context: context)
            }
            let report = KiwiInspector.report(description, profiles: profile.isEmpty ? nil : profile, arch: arch, distroOverride: distroFamily)
            if json {
                context.write(try report.jsonData(prettyPrinted: true))
                context.line("")
                return
            }
            context.line("\(report.name ?? "(no name)")  schema \(report.schemaVersion ?? "?")  package manager \(report.packageManager ?? "?")  family \(report.distroFamily)")
            if !report.profiles.isEmpty { context.line("profiles: \(report.profiles.joined(separator: ", "))") }
            context.line("types: \(report.types.joined(separator: ", "))")
            for repository in report.repositories {
                context.line("repository \(repository.alias ?? "-") (\(repository.effectiveType)): \(repository.source ?? "(no source)")")
            }
            for (section, names) in report.packages.sorted(by: { $0.key < $1.key }) where !names.isEmpty {
                context.line("packages[\(section)] (\(names.count)): \(names.joined(separator: " "))")
            }
            if !report.users.isEmpty { context.line("users: \(report.users.joined(separator: ", "))") }
        }
    }

    struct Render: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Render a recipe's templates into a new directory.",
            discussion: """
                Copies (or unpacks) the recipe into DIR, then replaces {{ NAME }} in the files listed by \
                .ims_recipe_template.yaml. An undefined variable is an error naming file:line unless \
                --undefined render-empty is given (IMS's behaviour). --repo-rewrite applies site mirror rules.

                Example:
                    ims recipes render recipe.tgz --set CSM_RELEASE_VERSION=1.6.0 --set SLE_VERSION=15sp6 -o out/
                """)

        @Argument(help: ArgumentHelp("A recipe directory or archive.", valueName: "path")) var path: String
        @Option(help: ArgumentHelp("A YAML/JSON file of values: {KEY: VALUE} or [{key, value}].", valueName: "file")) var values: String?
        @Option(name: .customLong("set"), help: ArgumentHelp("A value (repeatable).", valueName: "KEY=VALUE")) var assignments: [String] = []
        @Option(help: "What an undefined variable does: error (default) or render-empty.", transform: choiceOption(undefinedVariableChoices))
        var undefined: UndefinedVariablePolicy = .error
        @Option(name: .customLong("repo-rewrite"), help: ArgumentHelp("A repository rewrite rule (repeatable).", valueName: "FROM=TO")) var rewrites: [String] = []
        @Option(name: .shortAndLong, help: ArgumentHelp("The output directory (must not exist, or be empty).", valueName: "dir")) var output: String
        @Flag(help: "Print what was rendered as JSON.") var json = false

        func validate() throws {
            if values == nil && assignments.isEmpty { throw ValidationError("give the values with '--values FILE' or '--set KEY=VALUE'") }
        }

        func run(_ context: CommandContext) async throws {
            if let contents = try? FileManager.default.contentsOfDirectory(atPath: output), !contents.isEmpty {
                throw CLIErrors.report(RecipeError(.io, file: output, "the output directory is not empty"), json: json, exit: CLIExitCode.dataError, context: context)
            }
            try? FileManager.default.removeItem(atPath: output)
            do {
                var merged = try values.map { path throws(RecipeError) in try TemplateValues.load(file: path) } ?? TemplateValues([:])
                for (key, value) in try TemplateValues.parse(assignments: assignments).values { merged.values[key] = value }
                let rules = try rewrites.map { rule throws(RecipeError) in try RepositoryRewriteRule(parsing: rule) }
                _ = try RecipeSource.workingCopy(of: path, in: output)
                let rendered = try RecipeTemplater.render(recipeDirectory: output, values: merged, undefined: undefined)
                var changed: [KiwiSourceRewriter.Rewrite] = []
                if !rules.isEmpty {
                    changed = try KiwiSourceRewriter.rewrite(descriptionDirectory: output) { repository in
                        RepositoryRewriteRule.apply(rules, alias: repository.alias, source: repository.sourcePath ?? "")
                    }
                }
                if json {
                    try context.json(JSONValue.object([
                        "output": .string(output),
                        "rendered": EventEncodingBridge.json(rendered),
                        "rewrites": EventEncodingBridge.json(changed),
                    ]))
                } else {
                    for file in rendered {
                        context.line("rendered \(file.path): \(file.substitutions) substitution(s)" + (file.undefined.isEmpty ? "" : ", empty: \(file.undefined.joined(separator: ", "))"))
                    }
                    for rewrite in changed { context.line("repository \(rewrite.alias ?? "-"): \(rewrite.old ?? "(none)") -> \(rewrite.new)") }
                    context.line("wrote \(output)")
                }
            } catch {
                try? FileManager.default.removeItem(atPath: output)
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
            }
        }
    }

    struct Pack: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Pack a recipe directory into a reproducible archive.",
            discussion: """
                Entries are sorted, owners normalised, setuid bits dropped, and gzip carries no timestamp: \
                packing the same tree twice gives identical bytes. Modification times are kept (they become the \
                files' times in the image); with --source-date-epoch later times are clamped to it, so a fresh \
                checkout packs to the same bytes on any machine.

                Example:
                    ims recipes pack my-recipe/ -o my-recipe.tar.gz
                """)

        @Argument(help: ArgumentHelp("A recipe directory.", valueName: "dir")) var directory: String
        @Option(name: .shortAndLong, help: ArgumentHelp("The archive to write.", valueName: "file")) var output: String
        @Option(help: "Format: tar.gz (default), tar.xz, tar.zst or zip.", transform: enumerationOption(PackFormat.self)) var format: PackFormat?
        @Option(help: "Clamp later modification times to this (default: $SOURCE_DATE_EPOCH; without either, times are kept).") var sourceDateEpoch: Int64?
        @Flag(help: "Print the result as JSON.") var json = false

        func run(_ context: CommandContext) async throws {
            let chosen = format ?? PackFormat.allCases.first { output.hasSuffix("." + $0.rawValue) } ?? .tarGzip
            let epoch = sourceDateEpoch ?? context.environment["SOURCE_DATE_EPOCH"].flatMap { Int64($0) }
            do {
                _ = try KiwiLoader.locateDescription(in: directory)
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
            }
            do {
                let result = try ArchivePacker.pack(directory: directory, to: output, format: chosen, sourceDateEpoch: epoch)
                if json {
                    try context.json(result)
                } else {
                    context.line("wrote \(result.path): \(result.entries) entries, \(result.size) bytes, md5 \(result.md5), sha256 \(result.sha256)")
                }
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
            }
        }
    }

    struct Unpack: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unpack a recipe archive safely.",
            discussion: """
                Refuses absolute paths, '..', links that escape, device nodes and FIFOs, conflicting \
                duplicates; strips setuid/setgid; enforces entry, size and compression-ratio limits. On any \
                failure nothing is left behind.
                """)

        @Argument(help: ArgumentHelp("The archive.", valueName: "archive")) var archive: String
        @Argument(help: ArgumentHelp("The destination (must not exist, or be empty).", valueName: "dir")) var destination: String
        @Flag(help: "Print the report as JSON.") var json = false

        func run(_ context: CommandContext) async throws {
            do {
                let report = try ArchiveExtractor().extract(archive: archive, to: destination)
                if json {
                    try context.json(report)
                } else {
                    context.line("unpacked \(report.entries) entries (\(report.bytesWritten) bytes) into \(report.destination)")
                }
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
            }
        }
    }

    struct CheckRepos: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "check-repos",
            abstract: "Wait until every http(s) repository of a recipe answers.",
            discussion: """
                rpm-md repositories must answer repodata/repomd.xml; apt ones dists/<distribution>/InRelease or \
                Release. A recipe without http(s) repositories passes. Exit 1 when some are not ready, with why.

                Example:
                    ims recipes check-repos recipe.tgz --ca-bundle /etc/ims/site-ca.pem --timeout 60
                """)

        @Argument(help: ArgumentHelp("A recipe directory or archive.", valueName: "path")) var path: String
        @Option(help: ArgumentHelp("An extra CA bundle (PEM) to trust.", valueName: "file")) var caBundle: String?
        @Option(help: "Overall timeout in seconds.") var timeout: Double = 500
        @Option(help: "Seconds between rounds.") var interval: Double = 10
        @Option(name: .customLong("repo-rewrite"), help: ArgumentHelp("Check the rewritten sources (repeatable).", valueName: "FROM=TO")) var rewrites: [String] = []
        @Flag(help: "Print the report as JSON.") var json = false

        func run(_ context: CommandContext) async throws {
            let opened = try OpenedRecipe(path, json: json, context: context)
            defer { opened.close() }
            let description: KiwiDescription
            let rules: [RepositoryRewriteRule]
            do {
                description = try KiwiLoader.load(directory: opened.directory)
                rules = try rewrites.map { rule throws(RecipeError) in try RepositoryRewriteRule(parsing: rule) }
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
            }
            let probes = description.repositories.compactMap { repository -> RepositoryProbe? in
                guard let source = repository.sourcePath else { return nil }
                let rewritten = RepositoryRewriteRule.apply(rules, alias: repository.alias, source: source) ?? source
                return RepositoryProbe(alias: repository.alias, source: rewritten, kind: repository.type.hasPrefix("apt") ? .apt : .rpmMD, distribution: repository.distribution)
            }
            let readiness = RepositoryReadiness(caBundlePath: caBundle, timeout: .seconds(timeout), pollInterval: .seconds(interval))
            let report: RepositoryReadinessReport
            do {
                report = try await readiness.wait(for: probes)
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
            }
            if json {
                try context.json(report)
            } else {
                for status in report.repositories {
                    context.line("\(status.ready ? "ready    " : "NOT READY") \(status.alias ?? "-")  \(status.source)" + (status.reason.map { "\n          \($0)" } ?? ""))
                }
                for skipped in report.skipped { context.line("skipped   \(skipped) (not http/https)") }
                context.line(report.ready ? "all repositories answer" : "\(report.repositories.filter { !$0.ready }.count) repositories are not ready")
            }
            if !report.ready { throw CLIExitCode.failure }
        }
    }
}

/// Turns Encodable values into `JSONValue` for composite outputs.
enum EventEncodingBridge {
    static func json<T: Encodable>(_ value: T) -> JSONValue {
        JSONValue(encoding: value)
    }
}
