import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine

extension CatalogCommand {
    /// The heartbeat timeout of the site's executor (ims.yaml), else the default.
    static func heartbeatTimeout(_ context: CommandContext) -> TimeInterval {
        CatalogOptions.siteSettings(context).executor?.heartbeatTimeoutSeconds ?? ExecutorSettings.defaultHeartbeatTimeoutSeconds
    }

    struct Restore: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace the catalog with a backup made by 'ims catalog backup'.",
            discussion: """
                Refused, with nothing changed, while 'ims serve' runs on the data directory, while a job's runner is \
                or may be alive, and when FILE is not an intact ims catalog or was made by a newer ims (its schema has \
                migrations this ims does not know). The catalog being replaced is kept first: copied to \
                <data-dir>/catalog.before-restore-<time>.sqlite, or, when it cannot be opened (the usual reason to \
                restore), moved aside to catalog.sqlite.unreadable-<time>. A backup from an older ims is migrated \
                forward. Artifacts in the store are not touched: run 'ims catalog check --store' afterwards.

                Example:
                    ims catalog restore /backup/ims-catalog-2026-12-01.sqlite && ims catalog check --store
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Argument(help: ArgumentHelp("The backup to restore.", valueName: "file")) var file: String

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: json, context: context) {
                let report = try Catalog.restore(
                    from: context.absolutePath(file), into: options.dataDirectory(context),
                    heartbeatTimeout: CatalogCommand.heartbeatTimeout(context))
                if json {
                    try context.json(report)
                } else {
                    let counts = report.records.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.replacingOccurrences(of: "_", with: " "))" }
                    context.line("restored \(report.catalog) from \(report.backup) (\(counts.joined(separator: ", ")); schema \(report.schema.joined(separator: ", ")))")
                    if let previous = report.previousCatalog { context.line("the catalog it replaced is kept at \(previous)") }
                }
            }
        }
    }

    struct ImportIMS: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "import-ims",
            abstract: "Import a site's records from IMS's data directory (/var/ims/data), keeping every id, time and field.",
            discussion: """
                Reads IMS's data files (v2_public_keys.json, v3_deleted_public_keys.json, v2.2_recipes.json, \
                v3.2_deleted_recipes.json, v2.1_images.json, v3.1_deleted_images.json, v2.4_jobs.json, \
                v2.0_remote_build_nodes.json; for each table the newest version present, older ones are reported as \
                superseded). Timestamps without a zone are UTC, as IMS writes them.

                All or nothing: a broken record (named by file and index) or a conflict (a record whose id the catalog \
                holds with other values, or a live record whose link another live record uses; both named) imports \
                nothing. A record the catalog already holds exactly so is left alone, so importing twice changes \
                nothing. With --verify-links each live image's manifest and artifacts and each live recipe's archive \
                are checked in the store; records whose objects are missing are imported and listed.

                Exit status: 0 imported (or nothing new), 1 conflicts (nothing imported), 65 a broken file or record.
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Flag(help: "Report what the import would do; change nothing.") var dryRun = false
        @Flag(help: "Check every imported live image's manifest and artifacts, and live recipe's archive, in the store (--store).")
        var verifyLinks = false
        @Argument(help: ArgumentHelp("IMS's data directory (a copy of /var/ims/data).", valueName: "dir")) var directory: String

        func run(_ context: CommandContext) async throws {
            let report = try await RecordsCLI.run(json: json, context: context) {
                let dataDirectory = options.dataDirectory(context)
                let catalog = try options.openCatalog(context)
                let source = context.absolutePath(directory)
                let data = try IMSData.read(directory: source)
                var report = try IMSMigration.importData(data, from: source, into: catalog, dataDirectory: dataDirectory, dryRun: dryRun)
                if verifyLinks, report.ok {
                    report.linksVerified = true
                    report.linkProblems = try await Check.storeProblems(
                        images: data.images.map(\.record).filter { $0.deleted == nil },
                        recipes: data.recipes.map(\.record).filter { $0.deleted == nil },
                        store: options.openStore(context))
                }
                return report
            }
            if json {
                try context.json(report)
            } else {
                printReport(report, context: context)
            }
            if !report.ok { throw CLIExitCode.failure }
        }

        func printReport(_ report: IMSImportReport, context: CommandContext) {
            context.line("IMS data in \(report.directory):")
            for file in report.files {
                switch file.disposition {
                case .used: context.line("  read        \(file.file) (\(file.records ?? 0) records)")
                case .superseded: context.line("  superseded  \(file.file) (\(file.supersededBy ?? "a newer version") is read instead)")
                }
            }
            for table in ["recipes", "images", "public_keys", "jobs", "remote_build_nodes"] {
                guard let counts = report.tables[table] else { continue }
                var parts = ["\(counts.read) read", "\(counts.added) \(report.dryRun ? "to add" : "added")", "\(counts.unchanged) unchanged"]
                if counts.conflicts > 0 { parts.append("\(counts.conflicts) conflicting") }
                context.line("\(table.replacingOccurrences(of: "_", with: " ")): \(parts.joined(separator: ", "))")
            }
            for conflict in report.conflicts {
                context.line("conflict: \(conflict.source): \(conflict.reason)")
            }
            if !report.unfinishedJobs.isEmpty {
                context.line("note: \(report.unfinishedJobs.count) job(s) were unfinished in IMS and are kept as they are (ims does not run them; 'ims catalog check' lists them): \(report.unfinishedJobs.prefix(5).joined(separator: ", "))")
            }
            for problem in report.linkProblems {
                context.line("missing in the store: \(problem.message)")
            }
            let added = report.tables.values.reduce(0) { $0 + $1.added }
            if !report.ok {
                context.line("\(report.conflicts.count) conflict(s): nothing was imported")
            } else if report.dryRun {
                context.line("dry run: \(added) record(s) would be imported; nothing was changed")
            } else if report.imported {
                context.line("imported \(added) record(s) from \(report.directory)" + (report.linksVerified ? "; \(report.linkProblems.count) with objects missing in the store" : ""))
            } else {
                context.line("nothing new to import: the catalog already holds every record")
            }
        }
    }

    struct ExportIMS: IMSCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-ims",
            abstract: "Write the catalog as IMS's data files, for a site going back to IMS.",
            discussion: """
                Writes v2_public_keys.json, v3_deleted_public_keys.json, v2.2_recipes.json, v3.2_deleted_recipes.json, \
                v2.1_images.json, v3.1_deleted_images.json, v2.4_jobs.json and v2.0_remote_build_nodes.json into DIR \
                (created if missing): IMS's fields only, timestamps in UTC without a zone as IMS writes them. ims's own \
                fields (a job's status history, error, executor, …) are left out (docs/records.md lists them). A DIR \
                that already holds IMS data files is refused unless --overwrite is given.
                """)

        @OptionGroup var options: CatalogOptions
        var json: Bool { options.json }
        @Flag(help: "Replace IMS data files already in DIR.") var overwrite = false
        @Argument(help: ArgumentHelp("Where to write the files.", valueName: "dir")) var directory: String

        struct Report: Encodable {
            var directory: String
            var files: [IMSDataFile]
        }

        func run(_ context: CommandContext) async throws {
            try await RecordsCLI.run(json: json, context: context) {
                let target = context.absolutePath(directory)
                let files = try IMSMigration.exportDirectory(
                    target, from: options.openCatalog(context), dataDirectory: options.dataDirectory(context), overwrite: overwrite)
                if json {
                    try context.json(Report(directory: target, files: files))
                } else {
                    for file in files { context.line("wrote \(target)/\(file.file) (\(file.records ?? 0) records)") }
                }
            }
        }
    }
}
