import IMSPluginHost
import IMSProtocol

/// Before any long work: every later phase step must resolve to exactly one plugin, and the commands those plugins
/// declare (`requires`) must exist where they run. A two-hour build should not fail at packaging because mksquashfs
/// is missing.
enum Preflight {
    /// The problems that would stop the steps after `index`, one sentence each; empty when the job can run.
    static func problems(
        after index: Int, of steps: [PipelineStep], criteria: SelectionCriteria, settings: SiteSettings,
        runner: any PluginRunner
    ) -> [String] {
        var problems: [String] = []
        for later in steps.dropFirst(index + 1) {
            guard let phase = later.phase, PhaseConfiguration.skipReason(later, settings: settings) == nil else { continue }
            do {
                let plugin = try runner.select(phase: phase, criteria: PhaseConfiguration.criteria(criteria, for: later), pinned: later.plugin)
                let missing = runner.missingCommands(plugin.manifest.requires ?? [])
                if !missing.isEmpty {
                    problems.append("step '\(later.name)': plugin \(plugin.id) needs \(missing.joined(separator: ", ")), not found on this host (PATH \(PluginInvoker.systemPath))")
                }
            } catch {
                problems.append("step '\(later.name)': \(error.description)")
            }
        }
        return problems
    }
}
