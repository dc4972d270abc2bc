import Foundation
import Testing

/// `ims pipelines show|validate` and `ims plugins check --request/--input`, run in process.
@Suite("ims pipelines, and plugins check with a request", .timeLimit(.minutes(3)))
struct PipelinesCLITests {
    static let fixtures = CLI.repositoryRoot + "/Tests/Fixtures/engine-plugins"

    static func site(_ files: [String: String]) throws -> String {
        let site = NSTemporaryDirectory() + "ims-pipelines-cli-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: site, withIntermediateDirectories: true)
        for (path, text) in files {
            let full = site + "/" + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        return site
    }

    static let stampPipeline = "extends: create\ninsert:\n  - before: package\n    step: {name: stamp, phase: stamp, config: {text: hi}}\n"

    @Test("show prints each step with the plugin it resolves to; --json uses snake_case")
    func show() async throws {
        let site = try Self.site(["pipelines/create.yaml": Self.stampPipeline])
        let text = try await CLI.ims(["pipelines", "show", "--config-dir", site, "--plugin-path", Self.fixtures])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(text.stdout.contains("create pipeline 'create' from \(site)/pipelines/create.yaml"), "\(text.stdout)")
        #expect(text.stdout.contains("phase stamp → org.ims.test.site-stamp (selected)"), "\(text.stdout)")
        #expect(text.stdout.contains("phase package → org.ims.package.squashfs (pinned)"), "\(text.stdout)")
        #expect(text.stdout.contains("skipped on this site: no site CA certificate"), "\(text.stdout)")

        let json = try await CLI.ims(["pipelines", "show", "--config-dir", site, "--plugin-path", Self.fixtures, "--job-type", "customize", "--json"])
        #expect(json.status == 0, "\(json.stderr)")
        let view = try CLI.json(json.stdout)
        #expect(view["job_type"] as? String == "customize")
        #expect(view["source"] as? String == "built-in customize")
        let steps = try #require(view["steps"] as? [[String: Any]])
        let package = try #require(steps.first { $0["name"] as? String == "package" })
        #expect(package["plugin"] as? String == "org.ims.package.squashfs")
        #expect(package["timeout_seconds"] as? Double == 3600)
    }

    @Test("show refuses a pipeline that does not load, with exit 65 and the did-you-mean")
    func showBadPipeline() async throws {
        let site = try Self.site(["pipelines/create.yaml": "extends: create\ninsert:\n  - afer: package\n    step: {name: s, phase: stamp}\n"])
        let result = try await CLI.ims(["pipelines", "show", "--config-dir", site])
        #expect(result.status == 65)
        #expect(result.stderr.contains("unknown key 'afer'") && result.stderr.contains("did you mean 'after'?"), "\(result.stderr)")
    }

    @Test("validate warns about a 'pipeline/' directory, errs on a misspelt phase, and exits 1 only for errors")
    func validate() async throws {
        let warningsOnly = try Self.site(["pipeline/create.yaml": Self.stampPipeline])
        let warned = try await CLI.ims(["pipelines", "validate", "--config-dir", warningsOnly, "--plugin-path", Self.fixtures])
        #expect(warned.status == 0, "\(warned.stdout)\(warned.stderr)")
        #expect(warned.stdout.contains("warning: \(warningsOnly)/pipeline: 'pipeline/' is not read by ims"), "\(warned.stdout)")
        #expect(warned.stdout.contains("did you mean 'pipelines/'?"))
        #expect(warned.stdout.contains("0 errors, 1 warning"))

        let broken = try Self.site(["pipelines/create.yaml": "extends: create\ninsert:\n  - before: package\n    step: {name: s, phase: stmap}\n"])
        let failed = try await CLI.ims(["pipelines", "validate", "--config-dir", broken, "--plugin-path", Self.fixtures, "--json"])
        #expect(failed.status == 1, "\(failed.stdout)\(failed.stderr)")
        let report = try CLI.json(failed.stdout)
        #expect(report["valid"] as? Bool == false)
        #expect(report["config_dir"] as? String == broken)
        #expect(report["errors"] as? Int == 1)
        let finding = try #require((report["findings"] as? [[String: Any]])?.first)
        #expect(finding["severity"] as? String == "error")
        #expect(finding["suggestion"] as? String == "stamp")
        #expect((finding["message"] as? String)?.contains("step 's'") == true)

        let clean = try Self.site(["pipelines/create.yaml": Self.stampPipeline])
        let ok = try await CLI.ims(["pipelines", "validate", "--config-dir", clean, "--plugin-path", Self.fixtures, "--json"])
        #expect(ok.status == 0, "\(ok.stdout)\(ok.stderr)")
        #expect(try CLI.json(ok.stdout)["valid"] as? Bool == true)
    }

    @Test("plugins check --request FILE --input NAME=PATH exercises a plugin that needs config and an input")
    func checkWithRequest() async throws {
        let plugin = CLI.repositoryRoot + "/Tests/Fixtures/plugins/conf-needs-config-ignores-sigterm"
        let scratch = try Self.site(["req.json": #"{"config": {"greeting": "hi"}, "timeouts": {"cancel_grace_seconds": 1, "kill_grace_seconds": 1}}"#])
        try FileManager.default.createDirectory(atPath: scratch + "/root", withIntermediateDirectories: true)

        // Without the request the breach cannot be seen: SKIP, never PASS, and the check passes.
        let plain = try await CLI.ims(["plugins", "check", plugin, "--json"])
        #expect(plain.status == 0, "\(plain.stdout)")
        let plainCases = try #require(try CLI.json(plain.stdout)["cases"] as? [[String: Any]])
        #expect(plainCases.first { $0["name"] as? String == "sigterm_honoured" }?["verdict"] as? String == "not_exercised")

        let checked = try await CLI.ims([
            "plugins", "check", plugin, "--request", scratch + "/req.json", "--input", "rootfs=\(scratch)/root", "--json",
        ])
        #expect(checked.status == 1, "\(checked.stdout)\(checked.stderr)")
        let cases = try #require(try CLI.json(checked.stdout)["cases"] as? [[String: Any]])
        let verdicts = Dictionary(cases.map { ($0["name"] as? String ?? "", $0["verdict"] as? String ?? "") }, uniquingKeysWith: { a, _ in a })
        #expect(verdicts["sigterm_honoured"] == "failed")
        #expect(verdicts["cancel_honoured"] == "passed")
        #expect(verdicts["one_terminal_message"] == "passed")

        // A missing input path, or an --input without '=', is refused before anything runs.
        let missing = try await CLI.ims(["plugins", "check", plugin, "--input", "rootfs=\(scratch)/nope"])
        #expect(missing.status == 65)
        #expect(missing.stderr.contains("\(scratch)/nope does not exist"), "\(missing.stderr)")
        let malformed = try await CLI.ims(["plugins", "check", plugin, "--input", "rootfs"])
        #expect(malformed.status == 65)
        #expect(malformed.stderr.contains("expected NAME=PATH"), "\(malformed.stderr)")
    }
}
