import Foundation
import IMSEngine
import Testing

@Suite("Pipelines")
struct PipelineTests {
    @Test("the built-in create pipeline follows IMS's order")
    func builtinCreate() throws {
        let pipeline = try PipelineLoader.builtin("create")
        #expect(pipeline.steps.map(\.name) == [
            "fetch-recipe", "prepare-recipe", "wait-for-repos", "build-root", "inject-ca", "configure-dns", "sbom",
            "package", "upload-artifacts", "register-image",
        ])
        #expect(pipeline.steps.compactMap(\.status) == ["fetching_recipe", "waiting_for_repos", "building_image", "packaging_artifacts"])
    }

    @Test("a site extends the default: insert before/after, override, remove")
    func extend() throws {
        let pipeline = try PipelineLoader.parse(text: """
            version: 1
            extends: create
            insert:
              - after: configure-dns
                step: {name: scan, phase: scan-cves, config: {severity: high}, retry: {attempts: 2, backoff_seconds: 1}}
              - before: package
                step: {name: stamp, phase: stamp-motd}
            override:
              build-root: {plugin: org.site.builder, timeout_seconds: 10800}
            remove: [inject-ca]
            """, source: "site.yaml")
        #expect(pipeline.steps.map(\.name) == [
            "fetch-recipe", "prepare-recipe", "wait-for-repos", "build-root", "configure-dns", "scan", "sbom", "stamp",
            "package", "upload-artifacts", "register-image",
        ])
        let build = try #require(pipeline.steps.first { $0.name == "build-root" })
        #expect(build.plugin == "org.site.builder")
        #expect(build.timeoutSeconds == 10800)
        #expect(build.status == "building_image")
        let scan = try #require(pipeline.steps.first { $0.name == "scan" })
        #expect(scan.config?["severity"]?.stringValue == "high")
        #expect(scan.retry?.attempts == 2)
    }

    @Test("cache: false is a phase step's switch; a builtin cannot be cached, and the value must be a boolean", arguments: [
        ("steps: [{name: b, phase: build-root, cache: false}]", nil),
        ("steps: [{name: b, builtin: upload-artifacts, cache: true}]", "'cache' applies to phase steps"),
        ("steps: [{name: b, phase: build-root, cache: sometimes}]", "'cache' must be true or false"),
    ] as [(String, String?)])
    func cacheKey(_ steps: String, _ problem: String?) {
        let text = "version: 1\nname: create\n" + steps + "\n"
        if let problem {
            #expect { try PipelineLoader.parse(text: text, source: "site.yaml") } throws: { "\($0)".contains(problem) }
        } else {
            #expect((try? PipelineLoader.parse(text: text, source: "site.yaml"))?.steps.first?.cache == false)
        }
    }

    @Test("the customize pipeline never caches what a person made")
    func customizeNotCached() throws {
        let pipeline = try PipelineLoader.builtin("customize")
        let afterFetch = pipeline.steps.filter { $0.phase != nil && $0.phase != "customize" }
        #expect(afterFetch.map(\.name) == ["dns-swap", "dns-restore", "sbom", "package"])
        #expect(afterFetch.allSatisfy { $0.cache == false })
    }

    @Test("a site pipeline file in the config directory replaces the default")
    func siteDirectory() throws {
        let site = NSTemporaryDirectory() + "ims-site-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: site + "/pipelines", withIntermediateDirectories: true)
        try "steps:\n  - {name: only, phase: hello}\n".write(toFile: site + "/pipelines/create.yaml", atomically: true, encoding: .utf8)
        let pipeline = try PipelineLoader.effective(name: "create", siteDirectory: site)
        #expect(pipeline.steps.map(\.name) == ["only"])
        #expect(try PipelineLoader.effective(name: "customize", siteDirectory: site).name == "customize")
    }

    @Test("bad pipelines get an error naming the step and the problem", arguments: [
        ("steps:\n  - {name: a, phase: x, confg: {}}\n", "step 'a': unknown key 'confg'"),
        ("steps:\n  - {name: a}\n", "step 'a': needs 'phase'"),
        ("steps:\n  - {name: a, phase: x, builtin: register-image}\n", "has both"),
        ("steps:\n  - {name: a, builtin: teleport}\n", "unknown builtin 'teleport'"),
        ("steps:\n  - {name: a, phase: x, timeout_seconds: -1}\n", "'timeout_seconds' must be a number > 0"),
        ("steps:\n  - {name: a, phase: x, status: flying}\n", "'status' must be one of"),
        ("steps:\n  - {name: a, phase: x}\n  - {name: a, phase: y}\n", "step 'a' appears twice"),
        ("extends: create\ninsert:\n  - after: nowhere\n    step: {name: s, phase: x}\n", "no step 'nowhere' to insert after"),
        ("extends: create\noverride:\n  ghost: {timeout_seconds: 5}\n", "cannot override step 'ghost'"),
        ("steps:\n  - {name: a, phase: Bad_Name}\n", "phase 'Bad_Name'"),
        ("steps: [\n", "not valid YAML"),
        ("steps:\n  - {name: a, phase: x, retry: {attempts: 0}}\n", "'retry' must be"),
    ])
    func invalid(text: String, expected: String) {
        do {
            _ = try PipelineLoader.parse(text: text, source: "p.yaml")
            Issue.record("expected an error containing \(expected)")
        } catch {
            #expect(error.description.contains(expected), "\(error.description)")
            #expect(error.description.hasPrefix("p.yaml: ") || error.description.contains("p.yaml"))
        }
    }

    @Test("default inputs follow the phase kind")
    func inputs() {
        #expect(PipelineStep(name: "b", phase: "build-root").effectiveInputs == ["recipe"])
        #expect(PipelineStep(name: "c", phase: "inject-ca").effectiveInputs == ["rootfs", "ca_cert"])
        #expect(PipelineStep(name: "s", phase: "scan").effectiveInputs == ["recipe", "rootfs"])
        #expect(PipelineStep(name: "s", phase: "scan", inputs: ["rootfs"]).effectiveInputs == ["rootfs"])
    }
}
