import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import IMSProtocol
import IMSStore
import Testing

/// The engine's rules (status order, failures, retries, timeouts, pipelines, preflight, events), with phases run
/// by a ``FakePluginRunner``: no process is started.
@Suite("Engine rules (fake plugin runner)", .timeLimit(.minutes(1)))
struct EngineRuleTests {
    struct Setup {
        var engine: EngineFixtures.Engine
        var runner: FakePluginRunner
        var recipe: RecipeRecord
    }

    func setUp(
        _ phases: [String: [String: FakePluginRunner.Behaviour]] = FakePhases.standard, requires: [String: [String]] = [:],
        missingCommands: Set<String> = [], settings: SiteSettings = SiteSettings(), siteDirectory: String? = nil
    ) async throws -> Setup {
        let runner = FakePluginRunner(phases, requires: requires, missingCommands: missingCommands)
        let engine = try EngineFixtures.engine(settings: settings, siteDirectory: siteDirectory, runner: runner)
        let recipe = try await RecipeRegistrar(catalog: engine.environment.catalog, store: engine.environment.store)
            .register(path: try EngineFixtures.makeRecipe(), name: "engine-test", linuxDistribution: .sles15)
        return Setup(engine: engine, runner: runner, recipe: recipe)
    }

    func run(_ setup: Setup, _ options: JobRunOptions = JobRunOptions()) async throws -> JobOutcome {
        let job = try setup.engine.environment.catalog.createJob(JobRequest(jobType: .create, artifactID: setup.recipe.id, imageRootArchiveName: "img"))
        return await setup.engine.runner.run(jobID: job.id, options: options)
    }

    func pipeline(_ text: String) throws -> Pipeline {
        try PipelineLoader.parse(text: text, source: "test")
    }

    @Test("a create job walks IMS's statuses, calls each phase once in order and registers the image")
    func statusOrder() async throws {
        let setup = try await setUp()
        let listener = CollectingListener()
        let outcome = try await run(setup, JobRunOptions(listener: listener))
        #expect(outcome.succeeded, "\(outcome.error?.description ?? "")")
        #expect(outcome.job.statusHistory.map(\.status) == [.creating, .fetchingRecipe, .waitingForRepos, .buildingImage, .packagingArtifacts, .success])
        #expect(setup.runner.calls.map(\.phase) == ["build-root", "sbom", "package"])
        let image = try #require(outcome.image)
        #expect(outcome.job.resultantImageID == image.id)
        #expect(try setup.engine.environment.catalog.images().map(\.id) == [image.id])
    }

    @Test("the events of a job are typed, in order, and read back from the catalog as they were sent")
    func typedEvents() async throws {
        let setup = try await setUp()
        let listener = CollectingListener()
        let outcome = try await run(setup, JobRunOptions(listener: listener))
        let streamed = listener.events.compactMap(\.engineEvent)
        guard case .jobStarted(let started)? = streamed.first else {
            Issue.record("the first event is not job_started: \(streamed.first.map { "\($0.kind)" } ?? "none")")
            return
        }
        #expect(started.steps.first == "fetch-recipe")
        guard case .jobFinished(let finished)? = streamed.last else {
            Issue.record("the last event is not job_finished")
            return
        }
        #expect(finished.status == "success")
        #expect(finished.resultantImageID == outcome.image?.id.uuidString.lowercased())
        let skipped = streamed.compactMap { event -> String? in
            if case .stepSkipped(let skip) = event { return skip.reason }
            return nil
        }
        #expect(skipped == ["no site CA certificate is configured (ca_cert)", "no DNS settings are configured (dns)"])
        let persisted = try setup.engine.environment.catalog.jobEvents(outcome.job.id).compactMap(\.engineEvent)
        #expect(persisted == streamed)
    }

    @Test("a failing phase ends the job as error with the plugin's code and step, and registers nothing")
    func failingPhase() async throws {
        var phases = FakePhases.standard
        phases["org.ims.fake.builder"] = ["build-root": FakePhases.failing("build-root.package_not_found", .user)]
        let setup = try await setUp(phases)
        let outcome = try await run(setup)
        #expect(outcome.job.status == .error)
        #expect(outcome.job.error?.code == "build-root.package_not_found")
        #expect(outcome.job.error?.category == "user")
        #expect(outcome.job.error?.phase == "build-root")
        #expect(!setup.runner.calls.contains { $0.phase == "package" })
        #expect(try setup.engine.environment.catalog.images().isEmpty)
        #expect(try await setup.engine.environment.store.list(bucket: ObjectKey.imagesBucket, prefix: "").isEmpty)
        #expect(outcome.workspace.map(FileManager.default.fileExists(atPath:)) == true, "a failed job keeps its workspace")
    }

    @Test("a transient failure is retried up to the step's attempts; after them the job fails as transient", arguments: [
        (failures: 2, attempts: 3, succeeds: true, calls: 3),
        (failures: 5, attempts: 2, succeeds: false, calls: 2),
        (failures: 1, attempts: 1, succeeds: false, calls: 1),
    ])
    func retries(_ rule: (failures: Int, attempts: Int, succeeds: Bool, calls: Int)) async throws {
        var phases = FakePhases.standard
        phases["org.ims.fake.builder"] = ["build-root": FakePhases.transient(rule.failures, then: FakePhases.buildRoot)]
        let setup = try await setUp(phases)
        let outcome = try await run(setup, JobRunOptions(pipeline: try pipeline("""
            extends: create
            override:
              build-root: {retry: {attempts: \(rule.attempts), backoff_seconds: 0.01}}
            """)))
        #expect(outcome.succeeded == rule.succeeds)
        #expect(setup.runner.calls.filter { $0.phase == "build-root" }.count == rule.calls)
        if !rule.succeeds { #expect(outcome.job.error?.category == "transient") }
    }

    @Test("a failure that is not transient is not retried, whatever the policy")
    func permanentFailureNotRetried() async throws {
        var phases = FakePhases.standard
        phases["org.ims.fake.builder"] = ["build-root": FakePhases.failing("build-root.bad", .user)]
        let setup = try await setUp(phases)
        _ = try await run(setup, JobRunOptions(pipeline: try pipeline("""
            extends: create
            override:
              build-root: {retry: {attempts: 4, backoff_seconds: 0.01}}
            """)))
        #expect(setup.runner.calls.filter { $0.phase == "build-root" }.count == 1)
    }

    @Test("the job's timeout stops a hanging phase and names the step")
    func jobTimeout() async throws {
        var phases = FakePhases.standard
        phases["org.ims.fake.builder"] = ["build-root": FakePhases.hang]
        let setup = try await setUp(phases)
        let started = ContinuousClock.now
        let outcome = try await run(setup, JobRunOptions(timeout: .milliseconds(500)))
        #expect(started.duration(to: .now) < .seconds(120), "the phase hangs for an hour unless the timeout stops it")
        #expect(outcome.job.error?.code == "engine.job.timeout")
        #expect(outcome.job.error?.phase == "build-root")
    }

    @Test("a phase's run limit is the step's, else the manifest's, never beyond the job's time left")
    func runLimit() async throws {
        let setup = try await setUp()
        _ = try await run(setup, JobRunOptions(pipeline: try pipeline("""
            extends: create
            override:
              package: {timeout_seconds: 42}
            """), timeout: .seconds(120)))
        let limits = Dictionary(uniqueKeysWithValues: setup.runner.calls.map { ($0.phase, $0.runSeconds ?? -1) })
        #expect(limits["package"] == 42)
        #expect((limits["build-root"] ?? 0) <= 120, "the job has 120 s: \(limits)")
    }

    @Test("a site phase inserted into the pipeline runs where it was put, with its config")
    func sitePhase() async throws {
        var phases = FakePhases.standard
        phases["org.ims.fake.stamp"] = ["stamp": FakePhases.passRoot]
        let setup = try await setUp(phases)
        let outcome = try await run(setup, JobRunOptions(pipeline: try pipeline("""
            extends: create
            insert:
              - after: build-root
                step: {name: stamp, phase: stamp, config: {text: from-the-site}}
            """)))
        #expect(outcome.succeeded, "\(outcome.error?.description ?? "")")
        #expect(setup.runner.calls.map(\.step) == ["build-root", "stamp", "sbom", "package"])
        #expect(setup.runner.calls.first { $0.step == "stamp" }?.config["text"] == "from-the-site")
        #expect(setup.runner.calls.first { $0.step == "stamp" }?.inputs["rootfs"] != nil)
    }

    @Test("preflight stops the job before the build when a later plugin's command is missing on the host")
    func preflightMissingCommand() async throws {
        let setup = try await setUp(requires: [FakePhases.packager: ["mksquashfs"]], missingCommands: ["mksquashfs"])
        let outcome = try await run(setup)
        #expect(outcome.job.status == .error)
        #expect(outcome.job.error?.phase == "prepare-recipe")
        #expect(outcome.job.error?.message.contains("\(FakePhases.packager) needs mksquashfs") == true, "\(outcome.job.error?.message ?? "")")
        #expect(setup.runner.calls.isEmpty, "no phase ran")
    }

    @Test("preflight stops the job when a later phase's pinned plugin is missing, or selection finds two")
    func preflightSelection() async throws {
        var none = FakePhases.standard
        none[FakePhases.packager] = nil
        let missing = try await run(try await setUp(none))
        #expect(missing.job.error?.message.contains("step 'package'") == true, "\(missing.job.error?.message ?? "")")
        #expect(missing.job.error?.phase == "prepare-recipe")
        var two = FakePhases.standard
        two["org.ims.fake.builder2"] = ["build-root": FakePhases.buildRoot]
        let ambiguous = try await run(try await setUp(two))
        #expect(ambiguous.job.error?.message.contains("org.ims.fake.builder2") == true, "\(ambiguous.job.error?.message ?? "")")
        #expect(ambiguous.job.error?.phase == "prepare-recipe")
        #expect(ambiguous.job.status == .error)
    }

    @Test("a step with no earlier producer of a required input fails naming the artifact")
    func missingInput() async throws {
        let setup = try await setUp()
        let outcome = try await run(setup, JobRunOptions(pipeline: try pipeline("""
            extends: create
            remove: [build-root]
            """)))
        #expect(outcome.job.error?.phase == "sbom", "the first step after the removed builder that needs its root")
        #expect(outcome.job.error?.message.contains("needs artifact 'rootfs'") == true, "\(outcome.job.error?.message ?? "")")
    }

    @Test("a packager that leaves out the kernel fails upload-artifacts and stores nothing")
    func incompletePackage() async throws {
        var phases = FakePhases.standard
        phases[FakePhases.packager] = ["package": { call in
            let path = call.out + "/rootfs.squashfs"
            try? Data("x".utf8).write(to: URL(fileURLWithPath: path))
            return .succeeded(PhaseResult(outputs: ["rootfs": ArtifactRef(path: path, kind: .file)]))
        }]
        let setup = try await setUp(phases)
        let outcome = try await run(setup)
        #expect(outcome.job.error?.phase == "upload-artifacts")
        #expect(outcome.job.error?.message.contains("it produced: rootfs") == true, "\(outcome.job.error?.message ?? "")")
        #expect(try await setup.engine.environment.store.list(bucket: ObjectKey.imagesBucket, prefix: "").isEmpty)
    }
}

@Suite("Engine events on the wire")
struct EngineEventWireTests {
    static let samples: [EngineEvent] = [
        .jobStarted(.init(jobType: "create", artifactID: "a", pipeline: "builtin:create", steps: ["fetch-recipe"], workspace: "/w")),
        .jobStatus(.init(status: "building_image")),
        .jobStatus(.init(status: "success", resultantImageID: "i")),
        .stepStarted(.init(attempt: 2, kind: "build-root")),
        .stepFinished(.init(status: .succeeded, seconds: 1.5, facts: ["plugin_id": "p"])),
        .stepFinished(.init(status: .failed, seconds: 0.25, error: "boom", category: "user")),
        .stepSkipped(.init(reason: "no DNS settings are configured (dns)")),
        .jobLog(.init(level: "warn", msg: "careful")),
        .diagnostic(.init(severity: "warning", message: "config.xml:3: odd")),
        .jobFinished(.init(status: "error", error: "e", code: "c", category: "user", step: "s")),
    ]

    @Test("every event kind reads back from its kind and data", arguments: samples)
    func roundTrip(_ event: EngineEvent) throws {
        #expect(EngineEvent(kind: event.kind.rawValue, data: event.data) == event)
        let encoded = try JSONEncoder().encode(event)
        #expect(try JSONDecoder().decode(EngineEvent.self, from: encoded) == event)
    }

    @Test("keys on the wire are snake_case and match docs/jobs.md")
    func snakeCase() throws {
        #expect(EngineEvent.jobStarted(.init(jobType: "create", artifactID: "a", pipeline: "p", steps: [], workspace: "w")).data
            == ["job_type": "create", "artifact_id": "a", "pipeline": "p", "steps": [], "workspace": "w"])
        #expect(EngineEvent.jobStatus(.init(status: "success", resultantImageID: "i")).data == ["status": "success", "resultant_image_id": "i"])
        let doc = try String(contentsOfFile: EngineFixtures.repositoryRoot + "/docs/jobs.md", encoding: .utf8)
        for kind in EngineEvent.Kind.allCases {
            #expect(doc.contains("`\(kind.rawValue)`"), "docs/jobs.md documents \(kind.rawValue)")
        }
    }

    @Test("a plugin's event kind or a payload that does not fit is not an engine event", arguments: [
        ("log", #"{"level":"info","msg":"x"}"#), ("job_status", #"{"state":"x"}"#), ("step_started", "not json"),
    ])
    func notEngineEvents(_ sample: (kind: String, data: String)) {
        #expect(EngineEvent(kind: sample.kind, data: Data(sample.data.utf8)) == nil)
    }
}
