import Foundation
import IMSEngine
import IMSPluginHost
import Testing

@Suite("Did you mean")
struct SuggestionTests {
    struct Row: Sendable, CustomTestStringConvertible {
        var word: String
        var candidates: [String]
        var expected: String?
        var testDescription: String { "\(word) → \(expected ?? "nothing")" }
    }

    static let stepKeys = ["builtin", "config", "inputs", "name", "phase", "plugin", "retry", "selectors", "status", "timeout_seconds", "when"]

    static let table: [Row] = [
        Row(word: "afer", candidates: ["after", "before", "step"], expected: "after"),
        Row(word: "befor", candidates: ["after", "before", "step"], expected: "before"),
        Row(word: "confg", candidates: stepKeys, expected: "config"),
        Row(word: "pluign", candidates: stepKeys, expected: "plugin"),  // a swap of neighbours is one edit
        Row(word: "timeout", candidates: stepKeys, expected: nil),  // 8 edits from timeout_seconds: too far
        Row(word: "timeout_second", candidates: stepKeys, expected: "timeout_seconds"),
        Row(word: "Phase", candidates: stepKeys, expected: "phase"),  // case is ignored
        Row(word: "pipeline/", candidates: ["ims.yaml", "pipelines/", "plugins/"], expected: "pipelines/"),
        Row(word: "ims.yml", candidates: ["ims.yaml", "pipelines/", "plugins/"], expected: "ims.yaml"),
        Row(word: "craete.yaml", candidates: ["create.yaml", "customize.yaml"], expected: "create.yaml"),
        Row(word: "biuld-root", candidates: ["build-root", "inject-ca", "package"], expected: "build-root"),
        Row(word: "org.ims.inject-cs", candidates: ["org.ims.inject-ca", "org.ims.configure-dns"], expected: "org.ims.inject-ca"),
        Row(word: "xyz", candidates: ["after", "before", "step"], expected: nil),
        Row(word: "ab", candidates: ["abcd"], expected: nil),  // two edits for a short word: too far
        Row(word: "after", candidates: ["after", "before"], expected: nil),  // not misspelt
        Row(word: "", candidates: ["a"], expected: nil),
        Row(word: "cat", candidates: ["bat", "cut"], expected: "bat"),  // equally close: the first
    ]

    @Test("the closest known word within the edit limit, else nothing", arguments: table)
    func closest(_ row: Row) {
        #expect(Suggestion.closest(to: row.word, among: row.candidates) == row.expected)
    }

    @Test("the phrase is empty without a suggestion")
    func phrase() {
        #expect(Suggestion.phrase(for: "afer", among: ["after"]) == "; did you mean 'after'?")
        #expect(Suggestion.phrase(for: "zzz", among: ["after"]) == "")
    }
}

@Suite("Site configuration check")
struct SiteConfigInspectorTests {
    static func site(_ files: [String: String], directories: [String] = []) throws -> String {
        let site = EngineFixtures.temporaryDirectory("ims-site")
        for directory in directories {
            try FileManager.default.createDirectory(atPath: site + "/" + directory, withIntermediateDirectories: true)
        }
        for (path, text) in files {
            let full = site + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        return site
    }

    /// The fixture plugins (a fake builder, a site phase 'stamp') and the bundled CA, DNS and package plugins.
    static var plugins: PluginCatalog {
        PluginCatalog(searchPath: PluginSearchPath(entries: [
            .init(directory: EngineFixtures.repositoryRoot + "/Tests/Fixtures/engine-plugins", origin: .explicit),
            .init(directory: EngineFixtures.repositoryRoot + "/Plugins", origin: .checkout),
        ]))
    }

    @Test("an insert entry with a misspelt key names the key and suggests the right one")
    func misspeltInsertKey() throws {
        let text = "extends: create\ninsert:\n  - afer: configure-dns\n    step: {name: scan, phase: stamp}\n"
        #expect(throws: EngineError.self) { try PipelineLoader.parse(text: text, source: "p.yaml") }
        do {
            _ = try PipelineLoader.parse(text: text, source: "p.yaml")
        } catch {
            #expect(error.message == "p.yaml: insert #1 ('scan'): unknown key 'afer' (allowed: after, before, step); did you mean 'after'?")
        }
    }

    @Test("misspelt pipeline keys, step keys, builtins, step names and conditions get a suggestion", arguments: [
        ("extend: create\n", "unknown key 'extend'", "did you mean 'extends'?"),
        ("extends: craete\n", "no built-in pipeline 'craete'", "did you mean 'create'?"),
        ("steps:\n  - {name: a, phase: x, confg: {}}\n", "unknown key 'confg'", "did you mean 'config'?"),
        ("steps:\n  - {name: a, builtin: register-imag}\n", "unknown builtin 'register-imag'", "did you mean 'register-image'?"),
        ("steps:\n  - {name: a, phase: x, when: ca-cert}\n", "'when' must be", "did you mean 'ca_cert'?"),
        ("extends: create\nremove: [inject-cs]\n", "cannot remove step 'inject-cs'", "did you mean 'inject-ca'?"),
        ("extends: create\ninsert:\n  - after: configure-dsn\n    step: {name: s, phase: x}\n", "no step 'configure-dsn'", "did you mean 'configure-dns'?"),
    ])
    func suggestions(text: String, problem: String, suggestion: String) {
        do {
            _ = try PipelineLoader.parse(text: text, source: "p.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.message.contains(problem), "\(error.message)")
            #expect(error.message.hasSuffix(suggestion), "\(error.message)")
        }
    }

    @Test("a directory 'pipeline/' instead of 'pipelines/' is a warning that names the right one")
    func unknownEntries() throws {
        let site = try Self.site([
            "pipeline/create.yaml": "extends: create\n", "ims.yml": "{}\n", "pipelines/craete.yaml": "extends: create\n",
            "notes.txt": "site notes\n",
        ])
        let findings = SiteConfigInspector.validate(siteDirectory: site, plugins: Self.plugins)
        #expect(findings.allSatisfy { $0.severity == .warning }, "\(findings.map(\.text))")
        let bySuggestion = Dictionary(findings.map { ($0.path, $0.suggestion) }, uniquingKeysWith: { a, _ in a })
        #expect(bySuggestion[site + "/pipeline"] == "pipelines/")
        #expect(bySuggestion[site + "/ims.yml"] == "ims.yaml")
        #expect(bySuggestion[site + "/pipelines/craete.yaml"] == "create.yaml")
        #expect(bySuggestion[site + "/notes.txt"] == .some(nil))
        let pipeline = try #require(findings.first { $0.path == site + "/pipeline" })
        #expect(pipeline.text.contains("'pipeline/' is not read by ims"))
        #expect(pipeline.text.hasSuffix("did you mean 'pipelines/'?"))
    }

    @Test("a clean directory, with the CA ims.yaml points at and plugins/ on the search path, has nothing to report")
    func clean() throws {
        let site = try Self.site([
            "pipelines/create.yaml": "extends: create\ninsert:\n  - before: package\n    step: {name: stamp, phase: stamp}\n",
            "site-ca.pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        ], directories: ["plugins"])
        try "ca_cert: \(site)/site-ca.pem\n".write(toFile: site + "/ims.yaml", atomically: true, encoding: .utf8)
        var plugins = Self.plugins
        plugins.searchPath.entries.append(.init(directory: site + "/plugins", origin: .explicit))
        #expect(SiteConfigInspector.validate(siteDirectory: site, plugins: plugins) == [])
        // The same plugins/ off the search path is read by nothing: a warning.
        let warnings = SiteConfigInspector.validate(siteDirectory: site, plugins: Self.plugins)
        #expect(warnings.map(\.path) == [site + "/plugins"])
        #expect(warnings.first?.message.contains("not on the plugin search path") == true)
    }

    @Test("misspelt phases and plugin ids are errors with a suggestion; a pipeline that does not load is an error")
    func unresolvable() throws {
        let site = try Self.site([
            "pipelines/create.yaml": """
                extends: create
                insert:
                  - before: package
                    step: {name: stamp, phase: stmap}
                override:
                  package: {plugin: org.ims.package.squashf}
                """,
            "pipelines/customize.yaml": "extends: customize\nremove: [dns-swop]\n",
            "ims.yaml": "job_timeout_second: 60\n",
        ])
        let findings = SiteConfigInspector.validate(siteDirectory: site, plugins: Self.plugins)
        #expect(findings.allSatisfy { $0.severity == .error }, "\(findings.map(\.text))")
        let suggestions = Set(findings.compactMap(\.suggestion))
        #expect(suggestions == ["stamp", "org.ims.package.squashfs", "dns-swap", "job_timeout_seconds"], "\(findings.map(\.text))")
        let stamp = try #require(findings.first { $0.suggestion == "stamp" })
        #expect(stamp.text.contains("create pipeline, step 'stamp': no usable plugin on the plugin search path offers phase 'stmap'"))
    }

    @Test("show resolves each phase step: pinned, selected, or one of several chosen per job, and skipped steps")
    func show() throws {
        let site = try Self.site(["pipelines/create.yaml": "extends: create\ninsert:\n  - before: package\n    step: {name: stamp, phase: stamp}\n"])
        let view = try SiteConfigInspector.view(jobType: "create", siteDirectory: site, settings: SiteSettings(), plugins: Self.plugins)
        #expect(view.source == site + "/pipelines/create.yaml")
        let steps = Dictionary(uniqueKeysWithValues: view.steps.map { ($0.name, $0) })
        #expect(steps["stamp"]?.plugin == "org.ims.test.site-stamp")
        #expect(steps["stamp"]?.pinned == false)
        #expect(steps["package"]?.plugin == "org.ims.package.squashfs")
        #expect(steps["package"]?.pinned == true)
        #expect(steps["fetch-recipe"]?.builtin == "fetch-recipe")
        #expect(steps["inject-ca"]?.skipped?.contains("ca_cert") == true)
        // The fake builder and the bundled zypper and dnf builders all offer build-root: each job picks by selectors.
        let build = try #require(steps["build-root"])
        #expect(build.plugin == nil)
        #expect(build.problem == nil)
        #expect((build.candidates ?? []).contains("org.ims.builder.zypper"))
        let suse = try SiteConfigInspector.view(
            jobType: "create", siteDirectory: site, settings: SiteSettings(), plugins: Self.plugins,
            criteria: SelectionCriteria(distroFamily: "suse", packageManager: "zypper", arch: "x86_64"))
        #expect(suse.steps.first { $0.name == "build-root" }?.candidates?.contains("org.ims.builder.dnf") != true)
    }
}
