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
