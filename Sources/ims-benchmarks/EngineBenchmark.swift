import Foundation
import IMSCatalog
import IMSEngine
import IMSPluginHost
import IMSProtocol
import IMSStore
import Synchronization

/// The engine's own time for a create job whose plugins finish at once: job wall time minus the time
/// spent inside plugin processes (as the host measured each call).
enum EngineBenchmark {
    final class PluginTime: JobEventListener {
        private struct Totals {
            var seconds = 0.0
            var started: [String: ContinuousClock.Instant] = [:]
            /// Wall time per step, in ms, as measured here (step_started to step_finished).
            var stepMilliseconds: [String: Double] = [:]
            var pluginMilliseconds: [String: Double] = [:]
        }

        private let totals = Mutex(Totals())

        func jobEvent(_ event: JobStreamEvent) {
            totals.withLock { totals in
                if case .stepStarted? = event.engineEvent, let step = event.step { totals.started[step] = .now }
                if case .stepFinished? = event.engineEvent, let step = event.step, let begin = totals.started[step] {
                    totals.stepMilliseconds[step, default: 0] += Benchmarks.milliseconds(begin.duration(to: .now))
                }
                guard case .finished(let outcome)? = event.pluginEvent else { return }
                let seconds = outcome.duration / .seconds(1)
                totals.seconds += seconds
                if let step = event.step { totals.pluginMilliseconds[step, default: 0] += seconds * 1000 }
            }
        }

        /// Engine time per step: the step's wall time minus its plugin's.
        var engineMillisecondsByStep: [String: Double] {
            totals.withLock { totals in
                totals.stepMilliseconds.reduce(into: [:]) { $0[$1.key] = $1.value - (totals.pluginMilliseconds[$1.key] ?? 0) }
            }
        }

        var total: Double { totals.withLock { $0.seconds } }
    }

    static func run(repositoryRoot: String, jobs: Int) async throws {
        let data = NSTemporaryDirectory() + "ims-bench-engine-" + UUID().uuidString.prefix(8)
        defer { try? FileManager.default.removeItem(atPath: data) }
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let catalog = try Catalog(path: data + "/catalog.sqlite")
        let store = try LocalArtifactStore(root: data + "/store")
        let plugins = PluginCatalog(searchPath: PluginSearchPath(entries: [.init(directory: repositoryRoot + "/Tests/Fixtures/engine-plugins", origin: .explicit)]))
        let environment = EngineEnvironment(catalog: catalog, store: store, plugins: plugins, settings: SiteSettings(), siteDirectory: nil, jobsDirectory: data + "/jobs")
        let recipeDirectory = data + "/recipe"
        try FileManager.default.createDirectory(atPath: recipeDirectory, withIntermediateDirectories: true)
        try """
            <?xml version="1.0" encoding="utf-8"?>
            <image schemaversion="7.4" name="bench">
              <description type="system"><author>a</author><contact>b</contact><specification>c</specification></description>
              <preferences><version>1.0.0</version><packagemanager>zypper</packagemanager><type image="tbz"/></preferences>
              <repository type="rpm-md" alias="base"><source path="dir:///srv/base"/></repository>
              <packages type="bootstrap"><package name="filesystem"/></packages>
            </image>
            """.write(toFile: recipeDirectory + "/config.xml", atomically: true, encoding: .utf8)
        let recipe = try await RecipeRegistrar(catalog: catalog, store: store).register(path: recipeDirectory, name: "bench", linuxDistribution: .sles15)
        let pipeline = try PipelineLoader.parse(text: """
            extends: create
            override:
              build-root: {plugin: org.ims.test.fake-builder}
              package: {plugin: org.ims.test.fake-packager}
            remove: [sbom]
            """, source: "benchmark")
        var overheads: [Double] = []
        var totals: [Double] = []
        var byStep: [String: [Double]] = [:]
        for index in 0...jobs {
            let job = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, imageRootArchiveName: "bench-\(index)"))
            let pluginTime = PluginTime()
            let started = ContinuousClock.now
            let outcome = await JobRunner(environment: environment).run(jobID: job.id, options: JobRunOptions(pipeline: pipeline, listener: pluginTime))
            let seconds = Benchmarks.milliseconds(started.duration(to: .now)) / 1000
            guard outcome.succeeded else { throw BenchError("job failed: \(outcome.error?.description ?? "")") }
            if index == 0 { continue }  // warm-up
            totals.append(seconds * 1000)
            overheads.append((seconds - pluginTime.total) * 1000)
            for (step, value) in pluginTime.engineMillisecondsByStep { byStep[step, default: []].append(value) }
        }
        let stepsText = byStep.keys.sorted().map { String(format: "\"%@\":%.1f", $0, Benchmarks.median(byStep[$0] ?? [])) }.joined(separator: ",")
        FileHandle.standardError.write(Data("engine time per step, median ms (outside the steps: the rest): {\(stepsText)}\n".utf8))
        print(String(format: "{\"jobs\":%d,\"job_median_ms\":%.1f,\"engine_overhead_median_ms\":%.1f,\"engine_overhead_p90_ms\":%.1f,\"plugin_median_ms\":%.1f}",
                     jobs, Benchmarks.median(totals), Benchmarks.median(overheads), Benchmarks.percentile(overheads, 0.9),
                     Benchmarks.median(zip(totals, overheads).map { $0 - $1 })))
    }
}
