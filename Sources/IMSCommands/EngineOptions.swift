import ArgumentParser
import Foundation
import Synchronization
import IMSCatalog
import IMSEngine
import IMSPluginHost
import IMSProtocol
import IMSStore

/// Options of the commands that run jobs (`ims build`, `ims jobs …`).
struct EngineOptions: ParsableArguments {
    @OptionGroup var catalog: CatalogOptions

    @Option(name: .customLong("config-dir"), help: ArgumentHelp("The site configuration directory holding ims.yaml and pipelines/ (default: $IMS_CONFIG_DIR, else /etc/ims).", valueName: "dir"))
    var configDir: String?

    @Option(name: .customLong("plugin-path"), help: ArgumentHelp("Search this plugin directory first (repeatable).", valueName: "dir"))
    var pluginPaths: [String] = []

    var json: Bool { catalog.json }

    /// The site configuration directory: `--config-dir`, else `$IMS_CONFIG_DIR` in `environment`, else `/etc/ims`.
    static func siteDirectory(configDir: String?, environment: [String: String]) -> String {
        configDir ?? environment["IMS_CONFIG_DIR"] ?? "/etc/ims"
    }

    func siteDirectory(_ context: CommandContext) -> String {
        Self.siteDirectory(configDir: configDir.map(context.absolutePath), environment: context.environment)
    }

    /// The site directory in the process's own environment, for code that runs without a context (the
    /// background runner's arguments; see `JobsCommand.Create`).
    var siteDirectory: String {
        Self.siteDirectory(configDir: configDir, environment: ProcessInfo.processInfo.environment)
    }

    /// The site settings from `<config-dir>/ims.yaml` (absent file: defaults).
    func siteSettings(_ context: CommandContext) throws -> SiteSettings {
        do {
            return try SiteSettings.load(file: siteDirectory(context) + "/ims.yaml", optional: true)
        } catch {
            throw CLIErrors.report(error, json: json, exit: CLIExitCode.dataError, context: context)
        }
    }

    /// The background runner these options describe (`ims jobs run` with the same data directory, site directory,
    /// store and plugin path), resolved in `context`.
    func detachedRunner(_ context: CommandContext) -> DetachedJobRunner {
        DetachedJobRunner(
            executable: context.executablePath ?? CommandLine.arguments[0], dataDirectory: catalog.dataDirectory(context).path,
            siteDirectory: siteDirectory(context), store: catalog.store, pluginPaths: pluginPaths.map(context.absolutePath),
            environment: context.environment, workingDirectory: context.currentDirectory)
    }

    /// Opens everything a job needs; marks jobs whose runner died as interrupted (crash safety).
    func environment(_ context: CommandContext, overrides: SiteSettings = SiteSettings()) throws -> EngineEnvironment {
        let settings = try siteSettings(context).merging(overrides)
        let catalog = try self.catalog.openCatalog(context)
        WorkspaceMounts.markInterrupted(catalog)
        let searchPath = PluginSearchPath.standard(
            explicit: pluginPaths + (settings.pluginPath ?? []), environment: context.environment, executablePath: context.executablePath)
        let plugins = PluginCatalog(searchPath: searchPath)
        let store = try self.catalog.openStore(context, settings: settings, plugins: plugins)
        let data = self.catalog.dataDirectory(context).path
        let cacheSettings = settings.cache ?? CacheSettings()
        let cache = cacheSettings.isEnabled ? PhaseCache(settings: cacheSettings, dataDirectory: data) : nil
        return EngineEnvironment(
            catalog: catalog, store: store, plugins: plugins, settings: settings,
            siteDirectory: siteDirectory(context), jobsDirectory: data + "/jobs", phaseCache: cache)
    }
}

/// Shows a job's events: NDJSON for automation, or text with progress redrawn in place on a TTY.
final class JobConsole: JobEventListener {

    private let json: Bool
    private let text: TextEventRenderer
    /// Held while a line is written, so lines from plugin threads and the runner never interleave.
    private let writing = Mutex(())
    private let output: OutputSink

    /// Events go to the context's stdout with `json`, else to its stderr.
    init(json: Bool, verbose: Bool = false, context: CommandContext) {
        self.json = json
        output = json ? context.stdout : context.stderr
        text = TextEventRenderer(fileHandle: output.fileHandle, isTerminal: output.isTerminal, minimumLogLevel: verbose ? .debug : .info, showStderr: verbose, showToolOutput: verbose)
    }

    func jobEvent(_ event: JobStreamEvent) {
        if json {
            writing.withLock { _ in Output.write(event.jsonLine(), to: output) }
            return
        }
        let step = event.step.map { "[\($0)] " } ?? ""
        let line: String?
        switch event.payload {
        case .plugin(let pluginEvent):
            switch pluginEvent {
            case .started, .finished: return
            default:
                text.receive(TimedPluginEvent(time: event.time, pluginID: event.pluginID ?? "", phase: event.step ?? "", event: pluginEvent))
            }
            return
        case .engine(.jobStarted): line = "job \(event.jobID.uuidString.lowercased()) started"
        case .engine(.jobStatus(let change)): line = "\(step)status: \(change.status)"
        case .engine(.stepStarted(let started)): line = "\(step)started" + (started.attempt > 1 ? " (attempt \(started.attempt))" : "")
        case .engine(.stepFinished(let finished)):
            let seconds = String(format: "%.2f s", finished.seconds)
            line = finished.status == .succeeded
                ? "\(step)done in \(seconds)" + (finished.cache.map { [.hit, .stored].contains($0.status) ? " (\($0.summary))" : "" } ?? "")
                : "\(step)FAILED after \(seconds): \(finished.error ?? "")"
        case .engine(.stepSkipped(let skipped)): line = "\(step)skipped: \(skipped.reason)"
        case .engine(.jobLog(let log)): line = "\(step)\(log.level == "warn" ? "warning: " : "")\(log.msg)"
        case .engine(.diagnostic(let diagnostic)): line = "\(step)\(diagnostic.severity): \(diagnostic.message)"
        case .engine(.jobFinished): line = nil
        }
        if let line {
            writing.withLock { _ in Output.write(Data((line + "\n").utf8), to: output) }
        }
    }
}
