import ArgumentParser
import Foundation
import IMSEngine
import IMSPluginHost

/// `ims pipelines …`: the pipelines jobs would run with this site configuration, and what is wrong with it.
struct PipelinesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipelines",
        abstract: "Show the effective pipelines and validate the site configuration directory.",
        discussion: """
            A job runs the pipeline of its type: <config-dir>/pipelines/create.yaml (or .yml, .json) when present, \
            else the built-in one (docs/pipelines.md). Nothing is built and no plugin is run: plugins are found by \
            their plugin.json on the search path, as a job finds them.
            """,
        subcommands: [Show.self, Validate.self]
    )

    /// The options both subcommands take.
    struct SiteOptions: ParsableArguments {
        @OptionGroup var global: GlobalOptions

        @Option(
            name: .customLong("config-dir"),
            help: ArgumentHelp("The site configuration directory (default: $IMS_CONFIG_DIR, else /etc/ims).", valueName: "dir"))
        var configDir: String?

        func siteDirectory(_ context: CommandContext) -> String {
            EngineOptions.siteDirectory(configDir: configDir.map(context.absolutePath), environment: context.environment)
        }

        /// The plugins a job would see: --plugin-path, the settings' plugin_path, then the standard search path.
        func plugins(_ context: CommandContext, settings: SiteSettings) -> PluginCatalog {
            PluginCatalog(searchPath: PluginSearchPath.standard(
                explicit: global.pluginPaths + (settings.pluginPath ?? []), environment: context.environment,
                executablePath: context.executablePath))
        }
    }
}

extension PipelinesCommand {
    struct Show: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the effective pipeline, with the plugin each step resolves to on this host.",
            discussion: """
                For each step: a builtin, or a phase with the plugin that runs it. A pinned plugin ('plugin:' in \
                the pipeline) is shown as pinned; otherwise the plugin is chosen by its manifest selectors, and when \
                several match, the job's distro family, package manager and arch decide (give them with the options \
                below to see the choice). A step that no plugin can run is marked PROBLEM; a step the site's \
                ims.yaml skips (when: ca_cert, when: dns) is marked skipped.

                Examples:
                    ims pipelines show
                    ims pipelines show --config-dir /etc/ims --job-type customize
                    ims pipelines show --distro-family suse --package-manager zypper --arch x86_64 --json
                """)

        @OptionGroup var site: SiteOptions
        var json: Bool { site.global.json }
        @Option(help: "The job type whose pipeline to show: create or customize.", transform: choiceOption([("create", "create"), ("customize", "customize")]))
        var jobType: String = "create"
        @Option(help: ArgumentHelp("Select plugins as for a job of this distro family (e.g. suse, rhel).", valueName: "family")) var distroFamily: String?
        @Option(help: ArgumentHelp("Select plugins as for a job with this package manager (e.g. zypper, dnf).", valueName: "name")) var packageManager: String?
        @Option(help: ArgumentHelp("Select plugins as for a job of this arch (x86_64, aarch64).", valueName: "arch")) var arch: String?

        func run(_ context: CommandContext) async throws {
            let directory = site.siteDirectory(context)
            let view: PipelineView
            do {
                let settings = try SiteSettings.load(file: directory + "/ims.yaml", optional: true)
                view = try SiteConfigInspector.view(
                    jobType: jobType, siteDirectory: directory, settings: settings, plugins: site.plugins(context, settings: settings),
                    criteria: SelectionCriteria(distroFamily: distroFamily, packageManager: packageManager, arch: arch))
            } catch {
                throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
            }
            if json {
                try context.json(view)
                return
            }
            context.line("\(view.jobType) pipeline '\(view.name)' from \(view.source)")
            let width = view.steps.map(\.name.count).max() ?? 0
            for step in view.steps {
                let name = step.name.padding(toLength: width, withPad: " ", startingAt: 0)
                var line = "  \(name)  "
                if let builtin = step.builtin {
                    line += "builtin \(builtin)"
                } else if let phase = step.phase {
                    line += "phase \(phase) → "
                    if let plugin = step.plugin {
                        line += plugin + (step.pinned ? " (pinned)" : " (selected)")
                    } else if let candidates = step.candidates {
                        line += "one of \(candidates.joined(separator: ", ")) (chosen per job by distro family, package manager and arch)"
                    } else {
                        line += "no plugin"
                    }
                }
                var notes: [String] = []
                if let status = step.status { notes.append("status \(status)") }
                if let timeout = step.timeoutSeconds { notes.append("timeout \(String(format: "%g", timeout)) s") }
                if let config = step.config, let text = try? String(decoding: JSONEncoder.sorted.encode(config), as: UTF8.self) {
                    notes.append("config \(text)")
                }
                if !notes.isEmpty { line += "  [\(notes.joined(separator: ", "))]" }
                context.line(line)
                if let skipped = step.skipped { context.line("  \(String(repeating: " ", count: width))  skipped on this site: \(skipped)") }
                if let problem = step.problem { context.line("  \(String(repeating: " ", count: width))  PROBLEM: \(problem)") }
            }
        }
    }

    struct Validate: IMSCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the site configuration directory before a job does.",
            discussion: """
                Reads ims.yaml and the create and customize pipelines as a job would, and resolves every phase \
                step to a plugin on the search path. Errors are what would stop a job: a setting or pipeline file \
                that does not load, a step whose plugin or phase no installed plugin provides. Warnings are entries \
                ims never reads (a directory 'pipeline/' instead of 'pipelines/', 'pipelines/craete.yaml'), which \
                are otherwise ignored without a word. Misspelt keys, phases, plugin ids and file names come with a \
                "did you mean" suggestion.

                Exits 0 when there is no error (warnings allowed), 1 otherwise.

                Examples:
                    ims pipelines validate --config-dir /etc/ims
                    ims pipelines validate --json
                """)

        @OptionGroup var site: SiteOptions
        var json: Bool { site.global.json }

        struct Report: Encodable {
            var configDir: String
            var valid: Bool
            var errors: Int
            var warnings: Int
            var findings: [SiteConfigFinding]

            enum CodingKeys: String, CodingKey {
                case valid, errors, warnings, findings
                case configDir = "config_dir"
            }
        }

        func run(_ context: CommandContext) async throws {
            let directory = site.siteDirectory(context)
            // The plugin path may come from ims.yaml; a bad ims.yaml is one of the findings.
            let settings = (try? SiteSettings.load(file: directory + "/ims.yaml", optional: true)) ?? SiteSettings()
            let findings = SiteConfigInspector.validate(siteDirectory: directory, plugins: site.plugins(context, settings: settings))
            let errors = findings.filter { $0.severity == .error }.count
            let report = Report(configDir: directory, valid: errors == 0, errors: errors, warnings: findings.count - errors, findings: findings)
            if json {
                try context.json(report)
            } else {
                for finding in findings {
                    context.line("\(finding.severity.rawValue): \(finding.text)")
                }
                context.line("\(directory): \(errors) error\(errors == 1 ? "" : "s"), \(report.warnings) warning\(report.warnings == 1 ? "" : "s")")
            }
            if errors > 0 { throw CLIExitCode.failure }
        }
    }
}

extension JSONEncoder {
    /// Compact JSON with sorted keys, for values shown inline in text output.
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
