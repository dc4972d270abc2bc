import ArgumentParser
import Foundation
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

    /// Opens everything a job needs; marks jobs whose runner died as interrupted (crash safety).
    func environment(_ context: CommandContext, overrides: SiteSettings = SiteSettings()) throws -> EngineEnvironment {
        let settings = try siteSettings(context).merging(overrides)
        let catalog = try self.catalog.openCatalog(context)
        _ = try? catalog.markInterrupted()
        let searchPath = PluginSearchPath.standard(
            explicit: pluginPaths + (settings.pluginPath ?? []), environment: context.environment, executablePath: context.executablePath)
        let plugins = PluginCatalog(searchPath: searchPath)
        let store = try self.catalog.openStore(context, settings: settings, plugins: plugins)
        let jobs = self.catalog.dataDirectory(context).path + "/jobs"
        return EngineEnvironment(
            catalog: catalog, store: store, plugins: plugins, settings: settings,
            siteDirectory: siteDirectory(context), jobsDirectory: jobs)
    }
}

/// Shows a job's events: NDJSON for automation, or text with progress redrawn in place on a TTY.
final class JobConsole: JobEventListener, @unchecked Sendable {
    private let json: Bool
    private let text: TextEventRenderer
    private let lock = NSLock()
    private let output: OutputSink

    /// Events go to the context's stdout with `json`, else to its stderr.
    init(json: Bool, verbose: Bool = false, context: CommandContext) {
        self.json = json
        output = json ? context.stdout : context.stderr
        text = TextEventRenderer(fileHandle: output.fileHandle, isTerminal: output.isTerminal, minimumLogLevel: verbose ? .debug : .info, showStderr: verbose, showToolOutput: verbose)
    }

    func jobEvent(_ event: JobStreamEvent) {
        if json {
            lock.lock()
            Output.write(event.jsonLine(), to: output)
            lock.unlock()
            return
        }
        if let pluginEvent = event.pluginEvent {
            switch pluginEvent {
            case .started, .finished: return
            default:
                text.receive(TimedPluginEvent(time: event.time, pluginID: event.pluginID ?? "", phase: event.step ?? "", event: pluginEvent))
            }
            return
        }
        let step = event.step.map { "[\($0)] " } ?? ""
        var line: String?
        switch event.kind {
        case "job_started": line = "job \(event.jobID.uuidString.lowercased()) started"
        case "job_status": line = "\(step)status: \(event.data["status"]?.stringValue ?? "")"
        case "step_started":
            let attempt = event.data["attempt"]?.numberValue ?? 1
            line = "\(step)started" + (attempt > 1 ? " (attempt \(Int(attempt)))" : "")
        case "step_finished":
            let seconds = event.data["seconds"]?.numberValue.map { String(format: "%.2f s", $0) } ?? ""
            if event.data["status"]?.stringValue == "succeeded" {
                line = "\(step)done in \(seconds)"
            } else {
                line = "\(step)FAILED after \(seconds): \(event.data["error"]?.stringValue ?? "")"
            }
        case "step_skipped": line = "\(step)skipped: \(event.data["reason"]?.stringValue ?? "")"
        case "job_log": line = "\(step)\(event.data["msg"]?.stringValue ?? "")"
        case "diagnostic": line = "\(step)\(event.data["severity"]?.stringValue ?? ""): \(event.data["message"]?.stringValue ?? "")"
        default: line = nil
        }
        if let line {
            lock.lock()
            Output.write(Data((line + "\n").utf8), to: output)
            lock.unlock()
        }
    }
}
