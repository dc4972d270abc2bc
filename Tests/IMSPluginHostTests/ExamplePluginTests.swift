import Foundation
import IMSPluginHost
import IMSProtocol
import Testing

/// The bundled example plugins (Swift, C, bash, Python) pass conformance and do their job.
/// They are built by scripts/build-plugins, which ./scripts/test runs before the suite.
@Suite("Example plugins", .timeLimit(.minutes(3)))
struct ExamplePluginTests {
    static let examples = ["example-swift", "example-c", "example-bash", "example-python", "noop-c"]

    static func plugin(_ name: String) throws -> ResolvedPlugin {
        try PluginCatalog.resolve(PluginCatalog.inspect(directory: Fixtures.examplesDirectory + "/" + name, origin: .explicit))
    }

    /// One plugin at a time: the kit makes some 16 calls per plugin, and thirteen kits at once starve the
    /// CPU-bound ones (bash + jq) of a 2-core machine past their time limits.
    @Test("fails no conformance case (examples and every other bundled plugin)", .serialized, arguments: examples + bundled)
    func conformance(_ name: String) async throws {
        let results = await ConformanceChecker().check(directory: Fixtures.examplesDirectory + "/" + name)
        #expect(results.map(\.name) == ConformanceChecker.caseNames)
        for result in results {
            #expect(result.verdict != .failed, "\(name) \(result.name): \(result.detail)")
        }
    }

    /// Every other plugin that ships in Plugins/ (builders, CA, DNS, customize, packager, S3 store).
    static let bundled: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Fixtures.examplesDirectory)) ?? []
        return names.filter { FileManager.default.fileExists(atPath: Fixtures.examplesDirectory + "/" + $0 + "/plugin.json") && !examples.contains($0) }.sorted()
    }()

    @Test("the bundled plugins are all found")
    func bundledFound() {
        #expect(Set(Self.bundled).isSuperset(of: ["builder-zypper", "builder-dnf", "builder-kiwi", "inject-ca", "configure-dns", "customize-chroot", "package-squashfs", "store-s3"]), "\(Self.bundled)")
    }

    @Test("hello writes its greeting and reports it with a correct digest", arguments: examples.filter { $0.hasPrefix("example") })
    func hello(_ name: String) async throws {
        let plugin = try Self.plugin(name)
        let workspace = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let recorder = EventRecorder()
        let outcome = try await PluginInvoker.invoke(
            plugin, InvocationRequest(phase: "hello", config: ["greeting": "hi from the test ✓"], workspaceRoot: workspace, strict: true),
            observer: recorder)
        let result = try #require(outcome.result, "\(outcome.error?.description ?? "")")
        let greeting = try #require(result.outputs["greeting"])
        #expect(greeting.path == workspace + "/phases/hello/out/hello.txt")
        let content = try String(contentsOfFile: greeting.path, encoding: .utf8)
        #expect(content.trimmingCharacters(in: .newlines) == "hi from the test ✓")
        let digest = try #require(greeting.digest)
        let expected = try Self.sha256(greeting.path)
        #expect(digest == expected)
        let progress = recorder.messages.compactMap { if case .progress(let update) = $0 { return update } else { return nil } }
        #expect(progress.first?.state == .begin && progress.last?.state == .end)
        #expect(recorder.messages.contains { if case .log = $0 { return true } else { return false } })
    }

    @Test("configure-dns writes resolv.conf into the root", arguments: examples.filter { $0.hasPrefix("example") })
    func configureDNS(_ name: String) async throws {
        let plugin = try Self.plugin(name)
        let workspace = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        let rootfs = workspace + "/rootfs"
        try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: true)
        let outcome = try await PluginInvoker.invoke(
            plugin,
            InvocationRequest(
                phase: "configure-dns",
                config: ["nameservers": ["10.1.0.1", "10.1.0.2"], "search": ["site.local"], "options": ["ndots:2"]],
                inputs: ["rootfs": ArtifactRef(path: rootfs, kind: .dir)], workspaceRoot: workspace, strict: true))
        #expect(outcome.succeeded, "\(outcome.error?.description ?? "")")
        let resolv = try String(contentsOfFile: rootfs + "/etc/resolv.conf", encoding: .utf8)
        #expect(resolv.contains("nameserver 10.1.0.1\nnameserver 10.1.0.2"))
        #expect(resolv.contains("search site.local"))
        #expect(resolv.contains("options ndots:2"))
    }

    @Test("a cancel in the middle of a run stops the plugin before any signal", arguments: examples.filter { $0.hasPrefix("example") })
    func cancelMidRun(_ name: String) async throws {
        let plugin = try Self.plugin(name)
        let workspace = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: workspace) }
        var request = InvocationRequest(phase: "hello", config: ["step_seconds": 2], workspaceRoot: workspace, timeouts: .init(cancelGraceSeconds: 5))
        request.cancelAfter = .milliseconds(500)
        let recorder = EventRecorder()
        let started = ContinuousClock.now
        let outcome = try await PluginInvoker.invoke(plugin, request, observer: recorder)
        #expect(outcome.error?.category == .cancelled, "\(outcome.error?.description ?? "succeeded")")
        #expect(outcome.error?.causes?.first?.code == HostErrorCode.cancelled, "the plugin itself should report ims.cancelled")
        #expect(recorder.stopSteps == ["cancel_message"])
        // Bounded well below the 3 × 2 s the phase would take uncancelled plus the grace periods, even on a loaded machine.
        #expect(started.duration(to: .now) < .seconds(60))
        #expect(Fixtures.groupIsGone(recorder.pid))
    }

    static func sha256(_ path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        return "sha256:" + SHA256Hex.of(data)
    }
}
