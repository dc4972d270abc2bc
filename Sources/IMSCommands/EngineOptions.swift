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

    var siteDirectory: String {
        configDir ?? ProcessInfo.processInfo.environment["IMS_CONFIG_DIR"] ?? "/etc/ims"
    }

    /// The site settings from `<config-dir>/ims.yaml` (absent file: defaults).
    func siteSettings() throws -> SiteSettings {
        do {
            return try SiteSettings.load(file: siteDirectory + "/ims.yaml", optional: true)
        } catch {
            Output.error(error.description)
            throw CLIExitCode.dataError
        }
    }

    /// Opens everything a job needs; marks jobs whose runner died as interrupted (crash safety).
    func environment(overrides: SiteSettings = SiteSettings()) throws -> EngineEnvironment {
        let settings = try siteSettings().merging(overrides)
        let catalog = try self.catalog.openCatalog()
        _ = try? catalog.markInterrupted()
        let searchPath = PluginSearchPath.standard(explicit: pluginPaths + (settings.pluginPath ?? []), executablePath: GlobalOptions.executablePath())
        let plugins = PluginCatalog(searchPath: searchPath)
        let store = try self.catalog.openStore(settings: settings, plugins: plugins)
        let jobs = self.catalog.dataDirectory.path + "/jobs"
        return EngineEnvironment(
            catalog: catalog, store: store, plugins: plugins, settings: settings,
            siteDirectory: siteDirectory, jobsDirectory: jobs)
    }
}

/// Shows a job's events: NDJSON for automation, or text with progress redrawn in place on a TTY.
final class JobConsole: JobEventListener, @unchecked Sendable {
    private let json: Bool
    private let text: TextEventRenderer
    private let lock = NSLock()
    private let output: FileHandle

    init(json: Bool, verbose: Bool = false) {
        self.json = json
        output = json ? .standardOutput : .standardError
        text = TextEventRenderer(fileHandle: output, isTerminal: isatty(json ? 1 : 2) == 1, minimumLogLevel: verbose ? .debug : .info, showStderr: verbose, showToolOutput: verbose)
    }

    func jobEvent(_ event: JobStreamEvent) {
        if json {
            lock.lock()
            Output.write(event.jsonLine(), to: output)
            lock.unlock()
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
            line = finished.status == .succeeded ? "\(step)done in \(seconds)" : "\(step)FAILED after \(seconds): \(finished.error ?? "")"
        case .engine(.stepSkipped(let skipped)): line = "\(step)skipped: \(skipped.reason)"
        case .engine(.jobLog(let log)): line = "\(step)\(log.level == "warn" ? "warning: " : "")\(log.msg)"
        case .engine(.diagnostic(let diagnostic)): line = "\(step)\(diagnostic.severity): \(diagnostic.message)"
        case .engine(.jobFinished): line = nil
        }
        if let line {
            lock.lock()
            Output.write(Data((line + "\n").utf8), to: output)
            lock.unlock()
        }
    }
}
