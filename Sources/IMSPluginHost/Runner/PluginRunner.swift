import Foundation
import IMSProtocol

/// How an engine runs a phase: picks the plugin for it and calls it.
///
/// The engine only talks to plugins through this seam. ``ProcessPluginRunner`` (the default) selects from the
/// plugins discovered on disk and runs each call as a supervised process; a server or a remote runner can give
/// another, and the engine's rule tests give a fake that starts no process.
public protocol PluginRunner: Sendable {
    /// The one plugin that runs `phase` for `criteria`, or the `pinned` one (a pipeline's `plugin:`).
    func select(phase: String, criteria: SelectionCriteria, pinned: String?) throws(PluginHostError) -> ResolvedPlugin

    /// Runs one `run` or `cleanup` call and waits for its outcome. Throws only when the call cannot be set up;
    /// whatever the plugin does comes back as an outcome.
    func invoke(
        _ plugin: ResolvedPlugin, _ request: InvocationRequest, observer: any PluginEventObserver
    ) async throws(PluginHostError) -> InvocationOutcome

    /// Those of `commands` (a manifest's `requires`) that the host where calls run does not have.
    func missingCommands(_ commands: [String]) -> [String]
}

/// The real runner: plugins found on the search path, each call a supervised child process on this host.
public struct ProcessPluginRunner: PluginRunner {
    public var plugins: PluginCatalog

    public init(plugins: PluginCatalog) {
        self.plugins = plugins
    }

    public func select(phase: String, criteria: SelectionCriteria, pinned: String?) throws(PluginHostError) -> ResolvedPlugin {
        try PluginSelector.select(phase: phase, criteria: criteria, pinned: pinned, in: plugins)
    }

    public func invoke(
        _ plugin: ResolvedPlugin, _ request: InvocationRequest, observer: any PluginEventObserver
    ) async throws(PluginHostError) -> InvocationOutcome {
        try await PluginInvoker.invoke(plugin, request, observer: observer)
    }

    public func missingCommands(_ commands: [String]) -> [String] {
        commands.filter { HostCommand.locate($0, path: PluginInvoker.systemPath) == nil }
    }
}

extension ResolvedPlugin {
    /// A plugin as a ``PluginRunner`` reports it; the process runner makes these from checked manifests.
    public init(manifest: PluginManifest, directory: String, entrypoint: String, protocolVersion: Int) {
        self.manifest = manifest
        self.directory = directory
        self.entrypointPath = entrypoint
        self.protocolVersion = protocolVersion
    }
}

extension InvocationOutcome {
    /// An outcome made by a ``PluginRunner`` other than the process supervisor (a fake, a remote runner).
    public static func reported(_ status: Status, exitStatus: ExitStatus? = .exited(0), duration: Duration = .zero) -> InvocationOutcome {
        InvocationOutcome(
            status: status, exitStatus: exitStatus, hello: nil, hostSynthesized: false, stderrTail: "", strayLines: 0,
            messageCount: 0, duration: duration)
    }
}
