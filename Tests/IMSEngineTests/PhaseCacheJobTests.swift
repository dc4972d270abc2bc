import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import IMSProtocol
import IMSStore
import Logging
import Testing

/// The phase cache in real create jobs: a cacheable fixture builder (Tests/Fixtures/cache-plugins) and the real
/// packager, CA injector and DNS configurator, on one data directory whose cache the jobs share.
@Suite("Phase cache in create jobs", .serialized, .timeLimit(.minutes(3)))
struct PhaseCacheJobTests {
    /// An engine whose recipe's repository is a local rpm-md index the test can change, and whose builder records
    /// each run it really made.
    struct Bench {
        var engine: EngineFixtures.Engine
        var repository: String
        var runs: String
        var pluginDirectory: String

        var cache: PhaseCache { engine.environment.phaseCache! }

        init(settings: SiteSettings = SiteSettings(), builderCopy: Bool = false) throws {
            repository = EngineFixtures.temporaryDirectory("ims-cache-repo")
            try FileManager.default.createDirectory(atPath: repository + "/repodata", withIntermediateDirectories: true)
            try "<repomd revision=\"1\"/>".write(toFile: repository + "/repodata/repomd.xml", atomically: true, encoding: .utf8)
            runs = EngineFixtures.temporaryDirectory("ims-cache-runs")
            var engine = try EngineFixtures.engine(settings: settings)
            // The builder from a private copy when a test changes its files.
            let fixtures = EngineFixtures.repositoryRoot + "/Tests/Fixtures/cache-plugins"
            var searchDirectory = fixtures
            if builderCopy {
                searchDirectory = EngineFixtures.temporaryDirectory("ims-cache-plugins")
                try FileManager.default.copyItem(atPath: fixtures + "/cache-builder", toPath: searchDirectory + "/cache-builder")
            }
            pluginDirectory = searchDirectory + "/cache-builder"
            engine.environment.plugins = PluginCatalog(searchPath: PluginSearchPath(entries: [
                .init(directory: searchDirectory, origin: .explicit),
                .init(directory: engine.dataDirectory + "/bundled-plugins", origin: .checkout),
            ]))
            engine.environment.pluginRunner = ProcessPluginRunner(plugins: engine.environment.plugins)
            engine.environment.phaseCache = PhaseCache(directory: engine.dataDirectory + "/cache", maxBytes: 1 << 30)
            self.engine = engine
        }

        /// A recipe whose repository is the bench's; `configSh` is rendered as a template with `value` as VALUE.
        func recipe(configSh: String? = nil, value: String = "one") async throws -> RecipeRecord {
            let path = try EngineFixtures.makeRecipe(repositorySource: "file://" + repository)
            if let configSh {
                try configSh.write(toFile: path + "/config.sh", atomically: true, encoding: .utf8)
                try "template_files:\n  - config.sh\n".write(toFile: path + "/.ims_recipe_template.yaml", atomically: true, encoding: .utf8)
            }
            return try await RecipeRegistrar(catalog: engine.environment.catalog, store: engine.environment.store)
                .register(path: path, name: "cache-test", linuxDistribution: .sles15, templateDictionary: [TemplateVariable(key: "VALUE", value: value)])
        }

        /// Runs a create job; returns what the cache did for each phase step, and the job's outcome.
        func run(
            _ recipe: RecipeRecord, stamp: String = "one", useCache: Bool = true, buildRootCache: Bool? = nil
        ) async throws -> (outcome: JobOutcome, cache: [String: EngineEvent.CacheOutcome], events: [JobStreamEvent]) {
            let job = try engine.environment.catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "cache-image"))
            var override = "build-root: {plugin: org.ims.test.cache-builder, config: {stamp: \(stamp), runs_dir: \(runs)}"
            if let buildRootCache { override += ", cache: \(buildRootCache)" }
            let pipeline = try PipelineLoader.parse(text: "extends: create\noverride:\n  \(override)}\n", source: "test")
            let listener = CollectingListener()
            let outcome = await engine.runner.run(jobID: job.id, options: JobRunOptions(
                pipeline: pipeline, listener: listener, sourceDateEpoch: 1_700_000_000, useCache: useCache))
            var cache: [String: EngineEvent.CacheOutcome] = [:]
            for event in listener.events {
                if case .stepFinished(let finished)? = event.engineEvent, let step = event.step, let outcome = finished.cache { cache[step] = outcome }
            }
            return (outcome, cache, listener.events)
        }

        var builderRuns: Int { ((try? FileManager.default.contentsOfDirectory(atPath: runs)) ?? []).count }

        func rootfsMD5(_ outcome: JobOutcome) async throws -> String {
            let link = try #require(outcome.image?.link)
            let validation = try await ImageArtifacts(store: engine.environment.store).validate(manifestURL: link.path)
            return try #require(validation.manifest.artifacts.first { $0.type.hasPrefix("application/vnd.cray.image.rootfs") }?.md5)
        }
    }

    @Test("a second job with the same inputs reuses every cacheable step and gives the same image")
    func secondJobHits() async throws {
        let bench = try Bench()
        let recipe = try await bench.recipe()
        let first = try await bench.run(recipe)
        #expect(first.outcome.succeeded, "\(first.outcome.error?.description ?? "")")
        #expect(first.cache["build-root"]?.status == .stored)
        #expect(first.cache["package"]?.status == .stored, "\(first.cache["package"]?.reason ?? "")")
        #expect(bench.builderRuns == 1)

        let second = try await bench.run(try await bench.recipe())
        #expect(second.outcome.succeeded, "\(second.outcome.error?.description ?? "")")
        #expect(second.cache["build-root"]?.status == .hit)
        #expect(second.cache["build-root"]?.key == first.cache["build-root"]?.key)
        #expect(second.cache["package"]?.status == .hit)
        #expect(bench.builderRuns == 1, "the builder ran again on a hit")
        #expect(!second.events.contains { $0.step == "build-root" && $0.pluginID == "org.ims.test.cache-builder" && $0.engineEvent == nil },
                "the plugin spoke during a hit")
        #expect(try await bench.rootfsMD5(second.outcome) == bench.rootfsMD5(first.outcome))
        // The hit is in the job's persisted events, as `ims jobs describe` reads them.
        let persisted = try bench.engine.environment.catalog.jobEvents(second.outcome.job.id)
        let finished = persisted.compactMap { event -> EngineEvent.CacheOutcome? in
            guard event.phase == "build-root", case .stepFinished(let step)? = event.engineEvent else { return nil }
            return step.cache
        }
        #expect(finished.map(\.status) == [.hit])
    }

    /// Each change made between two jobs, and the steps whose keys it must change.
    static let changes: [(String, [String])] = [
        ("a config value of the step", ["build-root", "package"]),
        ("the repository's metadata (a package was added or bumped)", ["build-root"]),
        ("config.sh in the recipe", ["build-root"]),
        ("a template value rendered into the recipe", ["build-root"]),
        ("the site CA's contents (same file)", ["build-root", "inject-ca"]),
        ("a file of the builder plugin", ["build-root"]),
    ]

    @Test("changing an input makes the steps that depend on it run again", arguments: changes)
    func changedInputMisses(_ change: String, _ steps: [String]) async throws {
        let caDirectory = EngineFixtures.temporaryDirectory("ims-ca")
        let ca = caDirectory + "/ca.pem"
        try "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n".write(toFile: ca, atomically: true, encoding: .utf8)
        var settings = SiteSettings()
        settings.caCert = ca
        let bench = try Bench(settings: settings, builderCopy: true)
        let configSh = "echo {{ VALUE }}\n"
        let first = try await bench.run(try await bench.recipe(configSh: configSh))
        #expect(first.outcome.succeeded, "\(first.outcome.error?.description ?? "")")
        for step in ["build-root", "inject-ca", "package"] { #expect(first.cache[step]?.status == .stored, "\(step)") }
        var stamp = "one"
        var script = configSh
        var value = "one"
        switch change {
        case "a config value of the step": stamp = "two"
        case "the repository's metadata (a package was added or bumped)":
            try "<repomd revision=\"2\"/>".write(toFile: bench.repository + "/repodata/repomd.xml", atomically: true, encoding: .utf8)
        case "config.sh in the recipe": script = "echo {{ VALUE }} again\n"
        case "a template value rendered into the recipe": value = "two"
        case "the site CA's contents (same file)":
            try "-----BEGIN CERTIFICATE-----\nMIIBother\n-----END CERTIFICATE-----\n".write(toFile: ca, atomically: true, encoding: .utf8)
        default:
            let handle = try #require(FileHandle(forWritingAtPath: bench.pluginDirectory + "/bin/plugin"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("# changed\n".utf8))
            try handle.close()
        }
        let second = try await bench.run(try await bench.recipe(configSh: script, value: value), stamp: stamp)
        #expect(second.outcome.succeeded, "\(second.outcome.error?.description ?? "")")
        for step in steps {
            #expect(second.cache[step]?.status == .stored, "\(change): \(step) was \(second.cache[step]?.status.rawValue ?? "not cached")")
            #expect(second.cache[step]?.key != first.cache[step]?.key)
        }
        #expect(bench.builderRuns == 2)
        // Unchanged in every case: the steps before the builder are builtins, and nothing after the packager.
        #expect(second.cache["package"]?.status == .stored, "the root changed, so the packager ran")
    }

    @Test("--no-cache, a step's cache: false and the site's switch run the phase and store nothing")
    func switchedOff() async throws {
        let bench = try Bench()
        let recipe = try await bench.recipe()
        let noCache = try await bench.run(recipe, useCache: false)
        #expect(noCache.outcome.succeeded, "\(noCache.outcome.error?.description ?? "")")
        #expect(noCache.cache["build-root"]?.status == .off)
        #expect(noCache.cache["build-root"]?.reason?.contains("--no-cache") == true)
        #expect(bench.cache.entries().isEmpty)

        let stepOff = try await bench.run(recipe, buildRootCache: false)
        #expect(stepOff.cache["build-root"]?.status == .off)
        #expect(stepOff.cache["build-root"]?.reason?.contains("cache: false") == true)
        #expect(stepOff.cache["package"]?.status == .stored, "the other steps still use the cache")
        #expect(bench.builderRuns == 2)

        var siteOff = bench
        siteOff.engine.environment.phaseCache = nil
        let off = try await siteOff.run(recipe)
        #expect(off.cache["build-root"]?.reason?.contains("cache.enabled: false") == true)
        #expect(bench.builderRuns == 3)
    }

    @Test("a phase whose plugin does not declare it cacheable always runs")
    func undeclaredPhase() async throws {
        var settings = SiteSettings()
        settings.dns = DNSSettings(nameservers: ["10.92.100.225"])
        let bench = try Bench(settings: settings)
        let recipe = try await bench.recipe()
        // Swap the bundled configure-dns for a copy whose manifest leaves cacheable out.
        let bundled = bench.engine.dataDirectory + "/bundled-plugins/configure-dns"
        let copy = EngineFixtures.temporaryDirectory("ims-dns-copy") + "/configure-dns"
        try FileManager.default.copyItem(atPath: (bundled as NSString).resolvingSymlinksInPath, toPath: copy)
        let manifest = try String(contentsOfFile: copy + "/plugin.json", encoding: .utf8).replacingOccurrences(of: "\"cacheable\": true,", with: "")
        try manifest.write(toFile: copy + "/plugin.json", atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: bundled)
        try FileManager.default.createSymbolicLink(atPath: bundled, withDestinationPath: copy)
        var bench2 = bench
        bench2.engine.environment.plugins = PluginCatalog(searchPath: bench.engine.environment.plugins.searchPath)
        bench2.engine.environment.pluginRunner = ProcessPluginRunner(plugins: bench2.engine.environment.plugins)
        for _ in 0..<2 {
            let run = try await bench2.run(recipe)
            #expect(run.outcome.succeeded, "\(run.outcome.error?.description ?? "")")
            #expect(run.cache["configure-dns"]?.status == .off)
            #expect(run.cache["configure-dns"]?.reason?.contains("does not declare phase 'configure-dns' cacheable") == true)
        }
    }

    @Test("a restored root that a later step changes leaves the cache as it was")
    func restoredRootIsCopiedBeforeChange() async throws {
        let plain = try Bench()
        let recipe = try await plain.recipe()
        let first = try await plain.run(recipe)
        #expect(first.outcome.succeeded, "\(first.outcome.error?.description ?? "")")

        // The same data directory and cache, now with DNS settings (which the builder does not get): build-root hits,
        // and configure-dns writes /etc/resolv.conf into the root it restored.
        var withDNS = plain
        withDNS.engine.environment.settings.dns = DNSSettings(nameservers: ["10.92.100.225"])
        let second = try await withDNS.run(recipe)
        #expect(second.outcome.succeeded, "\(second.outcome.error?.description ?? "")")
        #expect(second.cache["build-root"]?.status == .hit)
        #expect(second.cache["configure-dns"]?.status == .stored, "\(second.cache["configure-dns"]?.reason ?? "")")
        #expect(second.cache["package"]?.status == .stored, "the root now holds resolv.conf: a new package key")

        // Without DNS again: every step hits, and the image is the first one, without resolv.conf.
        let third = try await plain.run(recipe)
        #expect(third.cache["build-root"]?.status == .hit)
        #expect(third.cache["package"]?.status == .hit)
        #expect(try await plain.rootfsMD5(third.outcome) == plain.rootfsMD5(first.outcome))
        let entry = try #require(plain.cache.entries().first { $0.entry.step == "build-root" })
        let stored = plain.cache.directory + "/entries/" + entry.entry.key.prefix(2) + "/" + entry.entry.key + "/outputs/rootfs/etc/resolv.conf"
        #expect(!FileManager.default.fileExists(atPath: stored), "configure-dns wrote into the cache entry")
        #expect(plain.builderRuns == 1)
    }
}
