import Foundation
import IMSEngine
import IMSPluginHost
import IMSProtocol
import Synchronization

/// A ``PluginRunner`` that starts no process: each phase is a Swift closure. The engine's rule tests use it;
/// the end-to-end tests keep the real ``ProcessPluginRunner``.
final class FakePluginRunner: PluginRunner {
    /// What a fake phase sees of a call.
    struct Call: Sendable {
        var pluginID: String
        var step: String
        var phase: String
        var config: [String: JSONValue]
        var inputs: [String: ArtifactRef]
        /// The call's output directory (created).
        var out: String
        var runSeconds: Double?
    }

    typealias Behaviour = @Sendable (Call) async -> InvocationOutcome.Status

    private let plugins: [ResolvedPlugin]
    private let behaviours: [String: Behaviour]
    private let missing: Set<String>
    private let recorded = Mutex<[Call]>([])

    /// - Parameters:
    ///   - phases: plugin id → the phases it offers and what each call does.
    ///   - requires: plugin id → the commands its manifest requires.
    ///   - missingCommands: the commands this fake host lacks.
    init(_ phases: [String: [String: Behaviour]], requires: [String: [String]] = [:], missingCommands: Set<String> = []) {
        var plugins: [ResolvedPlugin] = []
        var behaviours: [String: Behaviour] = [:]
        for (id, offered) in phases.sorted(by: { $0.key < $1.key }) {
            let manifest = PluginManifest(
                id: id, version: "1.0.0", entrypoint: "bin/plugin", protocol: .init(versions: [1]),
                phases: offered.keys.sorted().map { PluginManifest.Phase(name: $0, payloads: ["\(PhaseKind.of(phaseName: $0).rawValue)/v1"]) },
                requires: requires[id])
            plugins.append(ResolvedPlugin(manifest: manifest, directory: "/fake/\(id)", entrypoint: "/fake/\(id)/bin/plugin", protocolVersion: 1))
            for (phase, behaviour) in offered { behaviours["\(id) \(phase)"] = behaviour }
        }
        self.plugins = plugins
        self.behaviours = behaviours
        self.missing = missingCommands
    }

    /// Every call made so far, in order.
    var calls: [Call] { recorded.withLock { $0 } }

    func select(phase: String, criteria: SelectionCriteria, pinned: String?) throws(PluginHostError) -> ResolvedPlugin {
        if let pinned {
            guard let plugin = plugins.first(where: { $0.id == pinned }) else { throw .pluginNotFound(pinned, searched: ["(fake)"]) }
            return plugin
        }
        let offering = plugins.filter { $0.manifest.phase(named: phase) != nil }
        guard let plugin = offering.first else {
            throw .noMatchingPlugin(phase: phase, criteria: criteria.description, candidates: [])
        }
        if offering.count > 1 { throw .ambiguousPlugins(phase: phase, criteria: criteria.description, ids: offering.map(\.id)) }
        return plugin
    }

    func invoke(_ plugin: ResolvedPlugin, _ request: InvocationRequest, observer: any PluginEventObserver) async throws(PluginHostError) -> InvocationOutcome {
        let step = request.step ?? request.phase
        let out = PluginInvoker.workspace(root: request.workspaceRoot, step: step).out
        try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let call = Call(
            pluginID: plugin.id, step: step, phase: request.phase, config: request.config.objectValue ?? [:], inputs: request.inputs,
            out: out, runSeconds: request.timeouts.runSeconds)
        recorded.withLock { $0.append(call) }
        guard let behaviour = behaviours["\(plugin.id) \(request.phase)"] else {
            return .reported(.failed(ErrorInfo(code: "fake.no_behaviour", category: .internal, message: "no behaviour for \(request.phase)")))
        }
        let started = ContinuousClock.now
        let status = await behaviour(call)
        return .reported(status, duration: started.duration(to: .now))
    }

    func missingCommands(_ commands: [String]) -> [String] {
        commands.filter(missing.contains)
    }
}

/// Fake phases that do what the real ones promise, in a few file operations.
enum FakePhases {
    /// A builder: a tiny root with /etc/os-release.
    static let buildRoot: FakePluginRunner.Behaviour = { call in
        let root = call.out + "/rootfs"
        try? FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try? "NAME=fake\n".write(toFile: root + "/etc/os-release", atomically: true, encoding: .utf8)
        return .succeeded(PhaseResult(outputs: ["rootfs": ArtifactRef(path: root, kind: .dir)]))
    }

    /// A phase that changes the root in place and hands it on.
    static let passRoot: FakePluginRunner.Behaviour = { call in
        guard let root = call.inputs["rootfs"] else { return .failed(ErrorInfo(code: "fake.no_rootfs", category: .internal, message: "no rootfs input")) }
        return .succeeded(PhaseResult(outputs: ["rootfs": root]))
    }

    /// A packager: squashfs, kernel and initrd files.
    static let package: FakePluginRunner.Behaviour = { call in
        var outputs: [String: ArtifactRef] = [:]
        for (name, file) in [("rootfs", "rootfs.squashfs"), ("kernel", "vmlinuz"), ("initrd", "initrd")] {
            let path = call.out + "/" + file
            try? Data("\(name) of \(call.step)\n".utf8).write(to: URL(fileURLWithPath: path))
            outputs[name] = ArtifactRef(path: path, kind: .file)
        }
        return .succeeded(PhaseResult(outputs: outputs))
    }

    /// An SBOM phase: a minimal SPDX document.
    static let sbom: FakePluginRunner.Behaviour = { call in
        let path = call.out + "/sbom.spdx.json"
        try? Data(#"{"spdxVersion": "SPDX-2.3", "name": "fake", "packages": []}"#.utf8).write(to: URL(fileURLWithPath: path))
        return .succeeded(PhaseResult(outputs: ["sbom": ArtifactRef(path: path, kind: .file)], facts: ["package_count": .number(0)]))
    }

    /// A phase that fails with `code` and `category`.
    static func failing(_ code: String, _ category: ErrorCategory) -> FakePluginRunner.Behaviour {
        { _ in .failed(ErrorInfo(code: code, category: category, message: "failed on purpose")) }
    }

    /// A phase that fails transiently `times` times, then behaves like `then`.
    static func transient(_ times: Int, then behaviour: @escaping FakePluginRunner.Behaviour) -> FakePluginRunner.Behaviour {
        let count = Mutex(0)
        return { call in
            let attempt = count.withLock { value in
                value += 1
                return value
            }
            if attempt <= times { return .failed(ErrorInfo(code: "fake.flaky", category: .transient, message: "attempt \(attempt) failed")) }
            return await behaviour(call)
        }
    }

    /// A phase that hangs until cancelled (the job's timeout).
    static let hang: FakePluginRunner.Behaviour = { _ in
        try? await Task.sleep(for: .seconds(3600))
        return .failed(ErrorInfo(code: "ims.cancelled", category: .cancelled, message: "cancelled"))
    }

    /// The standard create pipeline's plugins, all instant. The builder is chosen by selection; the others carry
    /// the ids the built-in pipeline pins.
    static var standard: [String: [String: FakePluginRunner.Behaviour]] {
        [
            "org.ims.fake.builder": ["build-root": buildRoot],
            "org.ims.inject-ca": ["inject-ca": passRoot],
            "org.ims.configure-dns": ["configure-dns": passRoot],
            packager: ["package": package],
            "org.ims.sbom.rpm": ["sbom": sbom],
        ]
    }

    /// The packager the built-in pipeline pins.
    static let packager = "org.ims.package.squashfs"
}
