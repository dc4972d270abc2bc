import ArgumentParser
import Foundation
import IMSCatalog
import IMSEngine
import IMSProtocol
import IMSRecipes
import IMSStore

/// `ims build`: register a recipe (when given a path) and run a create job in the foreground.
struct BuildCommand: IMSCommand {
    static let configuration = CommandConfiguration(
        commandName: "build",
        abstract: "Build an image from a recipe in one step.",
        discussion: """
            RECIPE is a recipe directory or archive (registered first) or the id of a registered recipe. The \
            create job runs in the foreground with a progress display, or NDJSON events with --json; at the \
            end ims prints the new image's id and its manifest.

            Site settings (CA, DNS, repository rewrites, signing keys) come from <config-dir>/ims.yaml; the \
            options below override them for this build.

            Examples:
                ims build examples/sles15 --name compute-sles15
                ims build recipe.tgz --ca-cert site-ca.pem --repo-rewrite '*=https://nexus/repository/{alias}' --json
            """)

    @OptionGroup var engine: EngineOptions
    var json: Bool { engine.json }
    @Argument(help: ArgumentHelp("A recipe path or a registered recipe id.", valueName: "recipe")) var recipe: String
    @Option(help: "The image name (IMS's image_root_archive_name; default: the recipe name).") var name: String?
    @Option(help: "x86_64 or aarch64 (default: the recipe's).", transform: enumerationOption(Arch.self)) var arch: Arch?
    @Option(help: ArgumentHelp("A pipeline file to use instead of the site's create pipeline.", valueName: "file")) var pipeline: String?
    @Option(help: "The recipe's linux_distribution when registering a path (default: from its package manager).", transform: enumerationOption(LinuxDistribution.self))
    var linuxDistribution: LinuxDistribution?
    @Option(name: .customLong("template-dictionary"), help: ArgumentHelp("A template value when registering a path (repeatable).", valueName: "KEY=VALUE")) var templateValues: [String] = []
    @Option(name: .customLong("ca-cert"), help: ArgumentHelp("The site root CA (PEM) to inject and trust.", valueName: "file")) var caCert: String?
    @Option(name: .customLong("dns-nameserver"), help: ArgumentHelp("A nameserver for the image (repeatable).", valueName: "ip")) var nameservers: [String] = []
    @Option(name: .customLong("dns-search"), help: ArgumentHelp("A DNS search domain (repeatable).", valueName: "domain")) var searchDomains: [String] = []
    @Option(name: .customLong("repo-rewrite"), help: ArgumentHelp("A repository rewrite rule (repeatable).", valueName: "FROM=TO")) var rewrites: [String] = []
    @Option(name: .customLong("signing-key"), help: ArgumentHelp("A package signing key to trust (repeatable).", valueName: "file")) var signingKeys: [String] = []
    @Option(help: "A KIWI profile to build (repeatable).") var profile: [String] = []
    @Option(help: "The job timeout in seconds (default: the site's, 4 h).") var timeout: Double?
    @Option(help: "Fixed timestamps for a reproducible rootfs (SOURCE_DATE_EPOCH); a recipe directory's later file times are clamped to it.") var sourceDateEpoch: Int?
    @Option(help: "Undefined template variables: error (default) or render-empty.", transform: choiceOption(undefinedVariableChoices))
    var undefined: UndefinedVariablePolicy = .error
    @Flag(help: "Fail the build when config.sh, images.sh or post_bootstrap.sh calls a command the image does not have (default: a warning; site default: strict_scripts in ims.yaml).")
    var strict = false
    @Flag(help: "Run every phase and store nothing in the phase cache (default: a cacheable phase whose inputs, plugin, repositories and settings are unchanged reuses its stored outputs; see ims cache --help).")
    var noCache = false
    @Flag(help: "Keep the job workspace even on success.") var keepWorkspace = false
    @Flag(name: .shortAndLong, help: "Show plugin stderr and debug logs.") var verbose = false

    func validate() throws {
        _ = try RecordsCLI.pairs(templateValues, option: "--template-dictionary")
    }

    func run(_ context: CommandContext) async throws {
        var overrides = SiteSettings()
        if let caCert { overrides.caCert = (caCert as NSString).standardizingPath.hasPrefix("/") ? caCert : context.currentDirectory + "/" + caCert }
        if !nameservers.isEmpty { overrides.dns = DNSSettings(nameservers: nameservers, search: searchDomains.isEmpty ? nil : searchDomains) }
        if !rewrites.isEmpty { overrides.repoRewrites = rewrites }
        if !signingKeys.isEmpty { overrides.signingKeys = signingKeys }
        if strict { overrides.strictScripts = true }
        do { try overrides.check(source: "command line") } catch {
            throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
        }
        let environment = try engine.environment(context, overrides: overrides)
        let catalog = environment.catalog
        // The pipeline is loaded before anything is registered: a bad pipeline file leaves no recipe and no job.
        let pipelineValue: Pipeline
        do {
            pipelineValue = try pipeline.map { try PipelineLoader.load(file: context.absolutePath($0)) }
                ?? PipelineLoader.effective(name: JobType.create.rawValue, siteDirectory: environment.siteDirectory)
        } catch {
            throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
        }

        let recipeRecord: RecipeRecord
        if let id = UUID(uuidString: recipe) {
            recipeRecord = try catalog.recipe(id)
        } else {
            do {
                let values = try templateValues.map { value throws(CatalogError) in try TemplateVariable(parsing: value) }
                recipeRecord = try await RecipeRegistrar(catalog: catalog, store: environment.store).register(
                    path: recipe, name: nil, linuxDistribution: linuxDistribution, arch: arch ?? .x86_64,
                    templateDictionary: values, sourceDateEpoch: sourceDateEpoch.map { Int64($0) })
            } catch {
                throw CLIError.input(recipe, error)
            }
            if !json { Output.write(Data("registered recipe \(recipeRecord.id.uuidString.lowercased()) (\(recipeRecord.name))\n".utf8), to: context.stderr) }
        }

        let job = try catalog.createJob(JobRequest(
            jobType: .create, artifactID: recipeRecord.id, imageRootArchiveName: name ?? recipeRecord.name, pid: getpid()))
        let console = JobConsole(json: json, verbose: verbose, context: context)
        let outcome = await JobRunner(environment: environment).run(jobID: job.id, options: JobRunOptions(
            pipeline: pipelineValue, workspacePolicy: keepWorkspace ? .keep : .keepOnFailure, timeout: timeout.map { .seconds($0) },
            profiles: profile.isEmpty ? nil : profile, undefinedVariables: undefined == .error ? .error : .renderEmpty,
            listener: console, sourceDateEpoch: sourceDateEpoch, useCache: !noCache))
        try JobsCommand.report(outcome, json: json, context: context)
    }
}

extension JobsCommand {
    /// Prints the end of a job: the image and its manifest, or the error (exit 1). With `json` the error is in the
    /// closing `result` event (with `exit_code`), which ends the event stream.
    static func report(_ outcome: JobOutcome, json: Bool, context: CommandContext) throws {
        if json {
            var summary: [String: JSONValue] = [
                "event": "result", "status": .string(outcome.job.status.rawValue),
                "job_id": .string(outcome.job.id.uuidString.lowercased()),
                "duration_seconds": .number((Double(outcome.duration.components.seconds) + Double(outcome.duration.components.attoseconds) / 1e18).rounded()),
            ]
            if let image = outcome.image {
                summary["image"] = EventEncodingBridge.json(image)
            }
            if let manifest = outcome.manifest, let data = manifest.data(using: .utf8), let value = try? JSONDecoder().decode(JSONValue.self, from: data) {
                summary["manifest"] = value
            }
            if let error = outcome.job.error { summary["error"] = EventEncodingBridge.json(error) }
            if let workspace = outcome.workspace { summary["workspace"] = .string(workspace) }
            summary["warnings"] = .array(outcome.warnings.map { warning in
                var object: [String: JSONValue] = ["message": .string(warning.message)]
                if let step = warning.step { object["step"] = .string(step) }
                if let plugin = warning.pluginID { object["plugin_id"] = .string(plugin) }
                return .object(object)
            })
            summary["exit_code"] = .number(Double(outcome.succeeded ? 0 : CLIExitCode.failure.rawValue))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var line = try encoder.encode(JSONValue.object(summary))
            line.append(0x0A)
            context.write(line)
        } else if !outcome.warnings.isEmpty {
            Output.write(Data("\(outcome.warnings.count) warning(s):\n".utf8), to: context.stderr)
            for warning in outcome.warnings {
                Output.write(Data("warning: [\(warning.step ?? "job")] \(warning.message)\n".utf8), to: context.stderr)
            }
        }
        if !json, let image = outcome.image {
            context.line("image \(image.id.uuidString.lowercased()) (\(image.name), \(image.arch.rawValue))")
            context.line("manifest \(image.link?.path ?? "")")
            if let manifest = outcome.manifest { context.line(manifest) }
        }
        if !outcome.succeeded {
            let failure = CLIError.failed(
                outcome.job.error?.code ?? "ims.job.failed",
                "job \(outcome.job.id.uuidString.lowercased()) failed: \(outcome.job.error?.message ?? outcome.error?.description ?? "unknown error")")
            // The result event above already carries the error for automation.
            let status = CLIErrors.report(failure, json: false, context: context)
            if let workspace = outcome.workspace, !json { Output.write(Data("the workspace is kept at \(workspace)\n".utf8), to: context.stderr) }
            throw status
        }
    }
}
