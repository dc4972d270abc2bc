import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import IMSProtocol
import IMSStore
import Synchronization
import Testing

final class CollectingListener: JobEventListener {
    private let stored = Mutex<[JobStreamEvent]>([])
    func jobEvent(_ event: JobStreamEvent) { stored.withLock { $0.append(event) } }
    var events: [JobStreamEvent] { stored.withLock { $0 } }
}

/// Create jobs end to end with real plugin processes: the fixture builder, and the bundled packager, CA injector
/// and DNS configurator. The engine's rules (failures, retries, timeouts, site phases, preflight) are tested without
/// processes in ``EngineRuleTests``; stopping a hanging plugin process is the plugin host's, in FaultInjectionTests.
@Suite("Create jobs through the real engine", .serialized, .timeLimit(.minutes(2)))
struct JobRunnerTests {
    func createJob(_ engine: EngineFixtures.Engine, recipe: RecipeRecord, name: String = "engine-image") throws -> JobRecord {
        try engine.environment.catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: name))
    }

    func register(_ engine: EngineFixtures.Engine, _ path: String, values: [TemplateVariable] = []) async throws -> RecipeRecord {
        try await RecipeRegistrar(catalog: engine.environment.catalog, store: engine.environment.store)
            .register(path: path, name: "engine-test", linuxDistribution: .sles15, templateDictionary: values)
    }

    @Test("a create job runs every step in IMS's status order and registers a verified image")
    func success() async throws {
        let engine = try EngineFixtures.engine()
        let recipe = try await register(engine, try EngineFixtures.makeRecipe())
        let job = try createJob(engine, recipe: recipe)
        let listener = CollectingListener()
        let outcome = await engine.runner.run(jobID: job.id, options: JobRunOptions(listener: listener))
        #expect(outcome.succeeded, "\(outcome.error?.description ?? "")")
        let finished = outcome.job
        #expect(finished.status == .success)
        #expect(finished.statusHistory.map(\.status) == [.creating, .fetchingRecipe, .waitingForRepos, .buildingImage, .packagingArtifacts, .success])
        let image = try #require(outcome.image)
        #expect(finished.resultantImageID == image.id)
        #expect(image.name == "engine-image")
        // The manifest lists rootfs, kernel, initrd and boot parameters, and validates against the store.
        let link = try #require(image.link)
        let validation = try await ImageArtifacts(store: engine.environment.store).validate(manifestURL: link.path)
        #expect(Set(validation.manifest.artifacts.map(\.type)) == Set([
            "application/vnd.cray.image.rootfs.squashfs", "application/vnd.cray.image.kernel",
            "application/vnd.cray.image.initrd", "application/vnd.cray.image.parameters.boot", "application/spdx+json",
        ]), "the SBOM is listed, and the manifest passes IMS's validation with it")
        // Events were persisted for `ims jobs logs`, and streamed live.
        let persisted = try engine.environment.catalog.jobEvents(job.id)
        #expect(persisted.contains { $0.kind == "step_finished" && $0.phase == "build-root" })
        #expect(persisted.contains { $0.kind == "log" && $0.pluginID == "org.ims.test.fake-builder" })
        #expect(listener.events.last?.kind == "job_finished")
        // The workspace is removed on success.
        #expect(outcome.workspace == nil)
        #expect(!FileManager.default.fileExists(atPath: engine.dataDirectory + "/jobs/" + job.id.uuidString.lowercased()))
        // inject-ca and configure-dns were skipped (no site CA, no DNS settings).
        #expect(persisted.filter { $0.kind == "step_skipped" }.compactMap(\.phase) == ["inject-ca", "configure-dns"])
    }

    @Test("templates are rendered, repositories rewritten, and site CA and DNS phases run")
    func templatesRewriteCAandDNS() async throws {
        let caDirectory = EngineFixtures.temporaryDirectory("ims-ca")
        let ca = caDirectory + "/ca.pem"
        try "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n".write(toFile: ca, atomically: true, encoding: .utf8)
        var settings = SiteSettings()
        settings.caCert = ca
        settings.dns = DNSSettings(nameservers: ["10.92.100.225"], search: ["nmn"])
        settings.repoRewrites = ["https://mirror.example/=dir:///srv/nexus/"]
        let engine = try EngineFixtures.engine(settings: settings)
        let recipe = try await register(engine, try EngineFixtures.makeRecipe(templated: true), values: [TemplateVariable(key: "RELEASE", value: "15sp6")])
        let job = try createJob(engine, recipe: recipe)
        let outcome = await engine.runner.run(jobID: job.id, options: JobRunOptions(workspacePolicy: .keep))
        #expect(outcome.succeeded, "\(outcome.error?.description ?? "")")
        let workspace = try #require(outcome.workspace)
        let description = try String(contentsOfFile: workspace + "/phases/prepare-recipe/out/description.json", encoding: .utf8)
        #expect(description.contains("dir:///srv/nexus/15sp6/base"), "rendered and rewritten: \(description)")
        let root = workspace + "/phases/build-root/out/rootfs"
        let anchors = (try? FileManager.default.contentsOfDirectory(atPath: root + "/etc/pki/trust/anchors")) ?? []
        #expect(!anchors.isEmpty, "the real inject-ca plugin put the site CA into the SUSE anchors")
        #expect(try String(contentsOfFile: root + "/etc/resolv.conf", encoding: .utf8).contains("nameserver 10.92.100.225"))
    }

    @Test("a recipe with an undefined template variable fails in fetching, naming file and line")
    func undefinedVariable() async throws {
        let engine = try EngineFixtures.engine(runner: FakePluginRunner(FakePhases.standard))
        let recipe = try await register(engine, try EngineFixtures.makeRecipe(templated: true), values: [TemplateVariable(key: "OTHER", value: "x")])
        let job = try createJob(engine, recipe: recipe)
        let outcome = await engine.runner.run(jobID: job.id)
        #expect(outcome.job.status == .error)
        #expect(outcome.job.error?.message.contains("config.xml:14: template variable 'RELEASE' has no value") == true, "\(outcome.job.error?.message ?? "")")
        #expect(outcome.job.error?.phase == "prepare-recipe")
    }

    @Test("a job whose runner died is marked error with the reason")
    func crashSafety() throws {
        let engine = try EngineFixtures.engine()
        let catalog = engine.environment.catalog
        let recipe = try catalog.createRecipe(RecipeRecord(name: "r", link: try ArtifactLink(url: "file:///nowhere/recipe.tar.gz"), linuxDistribution: .sles15))
        var request = JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "x")
        request.pid = 999_999
        let job = try catalog.createJob(request)
        _ = try catalog.transition(job.id, to: .buildingImage)
        let marked = try catalog.markInterrupted()
        #expect(marked.map(\.id) == [job.id])
        let after = try catalog.job(job.id)
        #expect(after.status == .error)
        #expect(after.error?.message.contains("pid 999999") == true)
    }
}
