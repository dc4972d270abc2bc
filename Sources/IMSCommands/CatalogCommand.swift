import ArgumentParser
import Foundation
import IMSCatalog
import IMSStore

#if canImport(Glibc)
    import Glibc
#endif

/// `ims catalog …`: the catalog database itself (backup and consistency checks).
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Back up, check and restore the catalog; import a site's records from IMS and export them back.",
        discussion: """
            The catalog (<data-dir>/catalog.sqlite) holds every recipe, image, public key and job record; the \
            artifacts are in the store. docs/records.md, "Moving from IMS", walks a site through the import.

            Examples:
                ims catalog backup /backup/ims-catalog-$(date +%F).sqlite    # while ims serve and jobs keep writing
                ims catalog check                                          # the database and the catalog's rules
                ims catalog check --store --json                           # and every image's manifest and artifacts
                ims catalog restore /backup/ims-catalog-2026-12-01.sqlite   # with ims serve stopped
                ims catalog import-ims /var/ims/data --dry-run             # what an import from IMS would do
                ims catalog import-ims /var/ims/data --verify-links        # import, and check the links in the store
                ims catalog export-ims /tmp/ims-data                       # IMS's data files, for the way back
            """,
        subcommands: [Backup.self, Check.self, Restore.self, ImportIMS.self, ExportIMS.self]
    )

    struct Backup: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the catalog to FILE, consistently, while other ims processes keep writing.",
            discussion: """
                SQLite's online backup: the copy is one consistent snapshot, written next to FILE and renamed into \
                place when complete. It records the catalog's schema version (its migrations). An existing FILE is \
                replaced only by a complete copy.
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("Where to write the copy.", valueName: "file")) var file: String

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: json, context: context) {
                let target = context.absolutePath(file)
                let report = try options.openCatalog(context).backup(to: target)
                if json {
                    try context.json(report)
                } else {
                    let counts = report.records.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.replacingOccurrences(of: "_", with: " "))" }
                    context.line("backed up the catalog to \(report.path) (\(report.bytes) bytes, schema \(report.schema.joined(separator: ", ")); \(counts.joined(separator: ", ")))")
                }
            }
        }
    }

    /// What `ims catalog check --json` prints.
    struct CheckReport: Encodable {
        var ok: Bool
        var catalog: String
        var checked: [String]
        var problems: [Catalog.Problem]
    }

    struct Check: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the catalog: SQLite's integrity, links unique among live records; with --store, every image's manifest and artifacts.",
            discussion: """
                Exit status 0 when nothing is wrong, 1 when a problem was found (each printed, or listed in the JSON \
                report as {rule, message, record}), so automation can alert on it. Nothing is changed.
                Rules: integrity (PRAGMA integrity_check), foreign_keys, unique_links, running_jobs (an unfinished \
                job whose runner is gone: its process on this host ended, its remote runner stopped reporting, or no \
                runner ever owned it), store (--store: a live image's manifest or an artifact it lists is missing or \
                invalid; a live recipe's archive is missing).
                """)

        @Option(name: .customLong("data-dir"), help: ArgumentHelp("The data directory (default: $IMS_DATA_DIR, else /var/lib/ims as root).", valueName: "dir"))
        var dataDir: String?
        @Option(name: .customLong("store-url"), help: ArgumentHelp("The artifact store to check against (default: $IMS_STORE, else file://<data-dir>/store).", valueName: "url"))
        var storeURL: String?
        @Flag(help: "Print the report as JSON ({ok, catalog, checked, problems}).") var json = false
        @Flag(help: "Also check every live image's manifest and artifacts, and every live recipe's archive, in the store.") var store = false

        func run(_ context: CommandContext) async throws {
            let (catalog, problems, checked) = try await RecordsCLI.run(json: json, context: context) {
                var arguments = dataDir.map { ["--data-dir", $0] } ?? []
                if let storeURL { arguments += ["--store", storeURL] }
                let options = try CatalogOptions.parse(arguments)
                let catalog = try options.openCatalog(context)
                var problems = try catalog.checkConsistency()
                problems += RunnerLiveness.problems(
                    try catalog.jobs(), host: Catalog.currentHost, now: Date(),
                    heartbeatTimeout: CatalogCommand.heartbeatTimeout(context), isAlive: Catalog.processIsAlive)
                var checked = ["integrity", "foreign_keys", "unique_links", "running_jobs"]
                if store {
                    checked.append("store")
                    problems += try await Self.storeProblems(catalog, store: try options.openStore(context))
                }
                return (catalog, problems, checked)
            }
            if json {
                try context.json(CheckReport(ok: problems.isEmpty, catalog: catalog.path, checked: checked, problems: problems))
            } else {
                for problem in problems {
                    context.line("\(problem.rule): \(problem.message)" + (problem.record.map { " (\($0))" } ?? ""))
                }
                context.line(problems.isEmpty
                    ? "\(catalog.path): no problem found (\(checked.joined(separator: ", ")))"
                    : "\(catalog.path): \(problems.count) problem(s) found")
            }
            if !problems.isEmpty { throw CLIExitCode.failure }
        }

        static func storeProblems(_ catalog: Catalog, store: any ArtifactStore) async throws -> [Catalog.Problem] {
            try await storeProblems(images: catalog.images(), recipes: catalog.recipes(), store: store)
        }

        /// The `store` rule for these records: an image's manifest and the artifacts it lists, a recipe's archive.
        static func storeProblems(images: [ImageRecord], recipes: [RecipeRecord], store: any ArtifactStore) async throws -> [Catalog.Problem] {
            var problems: [Catalog.Problem] = []
            let artifacts = ImageArtifacts(store: store)
            for image in images {
                guard let link = image.link else { continue }
                do {
                    _ = try await artifacts.validate(manifestURL: link.path)
                } catch {
                    problems.append(Catalog.Problem(rule: "store", message: "image \(image.id.imsString) (\(image.name)): \(error.description)", record: image.id.imsString))
                }
            }
            for recipe in recipes {
                guard let link = recipe.link else { continue }
                do {
                    let key = try store.requireKey(for: link.path)
                    if try await store.head(key) == nil {
                        problems.append(Catalog.Problem(rule: "store", message: "recipe \(recipe.id.imsString) (\(recipe.name)): its archive \(link.path) is missing", record: recipe.id.imsString))
                    }
                } catch {
                    problems.append(Catalog.Problem(rule: "store", message: "recipe \(recipe.id.imsString) (\(recipe.name)): \(error.description)", record: recipe.id.imsString))
                }
            }
            return problems
        }
    }
}
