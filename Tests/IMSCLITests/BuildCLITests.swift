import Foundation
import Testing

/// `ims build` and `ims jobs`, run in process, with the fake builder fixture and the real packager.
@Suite("ims build and jobs", .timeLimit(.minutes(3)))
struct BuildCLITests {
    static let fixtures = CLI.repositoryRoot + "/Tests/Fixtures/engine-plugins"

    static func workspace() throws -> (data: String, recipe: String, pipeline: String) {
        let root = NSTemporaryDirectory() + "ims-build-cli-" + UUID().uuidString.prefix(8)
        let recipe = root + "/recipe"
        try FileManager.default.createDirectory(atPath: recipe, withIntermediateDirectories: true)
        try """
            <?xml version="1.0" encoding="utf-8"?>
            <image schemaversion="7.4" name="cli-test">
              <description type="system"><author>a</author><contact>b</contact><specification>c</specification></description>
              <preferences><version>1.0.0</version><packagemanager>zypper</packagemanager><type image="tbz"/></preferences>
              <repository type="rpm-md" alias="base"><source path="dir:///srv/base"/></repository>
              <packages type="bootstrap"><package name="ims-test-filesystem"/></packages>
            </image>
            """.write(toFile: recipe + "/config.xml", atomically: true, encoding: .utf8)
        let pipeline = root + "/pipeline.yaml"
        try "extends: create\noverride:\n  build-root: {plugin: org.ims.test.fake-builder}\n".write(toFile: pipeline, atomically: true, encoding: .utf8)
        return (root + "/data", recipe, pipeline)
    }

    /// Writes a pipeline file next to the data directory `data` of a ``workspace()``.
    static func pipeline(_ name: String, _ yaml: String, beside data: String) throws -> String {
        let path = (data as NSString).deletingLastPathComponent + "/" + name
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A pipeline whose build-root step fails with `build-root.package_not_found`.
    static let failingPipeline =
        "extends: create\noverride:\n  build-root: {plugin: org.ims.test.fake-builder, config: {fail_code: build-root.package_not_found}}\n"

    @Test("ims build registers the recipe, runs the job and prints the image and manifest as JSON")
    func buildJSON() async throws {
        let (data, recipe, pipeline) = try Self.workspace()
        let result = try await CLI.ims([
            "build", recipe, "--name", "cli-image", "--pipeline", pipeline, "--data-dir", data, "--config-dir", data + "/no-site",
            "--plugin-path", Self.fixtures, "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)\(result.stdout.suffix(2000))")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let events = try lines.map { try CLI.json($0) }
        #expect(events.contains { $0["event"] as? String == "job_status" })
        #expect(events.contains { $0["event"] as? String == "progress" && $0["plugin_id"] as? String == "org.ims.package.squashfs" })
        let summary = try #require(events.last)
        #expect(summary["event"] as? String == "result")
        #expect(summary["status"] as? String == "success")
        let image = try #require(summary["image"] as? [String: Any])
        #expect(image["name"] as? String == "cli-image")
        let manifest = try #require(summary["manifest"] as? [String: Any])
        #expect(manifest["version"] as? String == "1.0")
        #expect((manifest["artifacts"] as? [[String: Any]])?.count == 5, "rootfs, kernel, initrd, boot parameters and the SBOM")

        // The job is listed, described with its history, and its logs can be read back.
        let jobID = try #require(summary["job_id"] as? String)
        let list = try await CLI.ims(["jobs", "list", "--data-dir", data, "--json"])
        #expect(list.stdout.contains(jobID))
        let describe = try await CLI.ims(["jobs", "describe", jobID, "--data-dir", data])
        #expect(describe.stdout.contains("packaging_artifacts") && describe.stdout.contains("success"))
        let logs = try await CLI.ims(["jobs", "logs", jobID, "--data-dir", data, "--follow"])
        #expect(logs.status == 0)
        #expect(logs.stdout.contains("org.ims.test.fake-builder"))
        let images = try await CLI.ims(["images", "list", "--data-dir", data, "--json"])
        #expect(images.stdout.contains("cli-image"))
    }

    @Test("a failing build exits 1 with the step and the reason, and the job shows error")
    func buildFailure() async throws {
        let (data, recipe, _) = try Self.workspace()
        let pipeline = try Self.pipeline("failing.yaml", Self.failingPipeline, beside: data)
        let result = try await CLI.ims(["build", recipe, "--pipeline", pipeline, "--data-dir", data, "--config-dir", data + "/no-site", "--plugin-path", Self.fixtures])
        #expect(result.status == 1)
        #expect(result.stderr.contains("build-root") && result.stderr.contains("build-root.package_not_found"))
        let list = try await CLI.ims(["jobs", "list", "--data-dir", data, "--status", "error", "--json"])
        #expect(list.stdout.contains("build-root.package_not_found"))
    }

    @Test("a bad pipeline file is refused before anything runs, naming the step")
    func badPipeline() async throws {
        let (data, recipe, _) = try Self.workspace()
        let pipeline = try Self.pipeline("bad.yaml", "extends: create\ninsert:\n  - after: nowhere\n    step: {name: scan, phase: scan}\n", beside: data)
        let arguments = ["build", recipe, "--pipeline", pipeline, "--data-dir", data, "--config-dir", data + "/no-site"]
        let result = try await CLI.ims(arguments)
        #expect(result.status == 65)
        #expect(result.stderr.contains("insert #1 ('scan'): no step 'nowhere'"))
        // With --json the same error is also the {code, message, exit_code} object on stdout.
        let json = try await CLI.ims(arguments + ["--json"])
        #expect(json.status == 65)
        let report = try ErrorEdgeTests.report(json)
        #expect(report.exitCode == 65 && report.message.contains("no step 'nowhere'"))
    }

    @Test("ims build on a description with an XML error reports the parse error with the user's file and line, and registers nothing",
          arguments: [false, true])
    func unreadableDescription(asArchive: Bool) async throws {
        let (data, recipe, pipeline) = try Self.workspace()
        let xml = try String(contentsOfFile: recipe + "/config.xml", encoding: .utf8)
        try xml.replacingOccurrences(of: "</description>", with: "</descriptin>").write(toFile: recipe + "/config.xml", atomically: true, encoding: .utf8)
        var source = recipe
        if asArchive {
            source = (data as NSString).deletingLastPathComponent + "/broken.tar.gz"
            let tar = try CLI.runTool("/usr/bin/tar", ["-czf", source, "-C", recipe, "."])
            #expect(tar.status == 0, "\(tar.stderr)")
        }
        for extra in [[], ["--linux-distribution", "sles15"]] {
            let result = try await CLI.ims(["build", source, "--pipeline", pipeline, "--data-dir", data, "--config-dir", data + "/no-site",
                                            "--plugin-path", Self.fixtures] + extra)
            #expect(result.status == 65, "\(result.stderr)")
            let shown = asArchive ? source + ":config.xml:3" : recipe + "/config.xml:3"
            #expect(result.stderr.contains(shown) && result.stderr.contains("mismatch"), "\(result.stderr)")
            #expect(!result.stderr.contains("cannot tell the distribution"))
            #expect(!result.stderr.contains(NSTemporaryDirectory() + "ims-register-"), "never the registrar's scratch copy")
        }
        let recipes = try await CLI.ims(["recipes", "list", "--data-dir", data, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(recipes.stdout.utf8)) as? [Any])?.isEmpty == true, "\(recipes.stdout)")
        let jobs = try await CLI.ims(["jobs", "list", "--data-dir", data, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(jobs.stdout.utf8)) as? [Any])?.isEmpty == true, "\(jobs.stdout)")
    }

    @Test("jobs delete filters by status")
    func jobsDelete() async throws {
        let (data, recipe, pipeline) = try Self.workspace()
        _ = try await CLI.ims(["build", recipe, "--pipeline", pipeline, "--data-dir", data, "--config-dir", data + "/no-site", "--plugin-path", Self.fixtures])
        let deleted = try await CLI.ims(["jobs", "delete", "--status", "success", "--data-dir", data, "--json"])
        #expect(deleted.status == 0, "\(deleted.stderr)")
        #expect(deleted.stdout.contains("deleted"))
        let list = try await CLI.ims(["jobs", "list", "--data-dir", data, "--json"])
        let remaining = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [Any]
        #expect(remaining?.count == 0)
    }
}

@Suite("Crash safety", .serialized, .timeLimit(.minutes(2)))
struct CrashSafetyTests {
    @Test("after kill -9 of ims during build-root, the next ims run shows the job as error with the reason")
    func killNine() async throws {
        let (data, recipe, _) = try BuildCLITests.workspace()
        let pipeline = (data as NSString).deletingLastPathComponent + "/slow.yaml"
        try "extends: create\noverride:\n  build-root: {plugin: org.ims.test.fake-builder, config: {sleep_seconds: 60}}\n"
            .write(toFile: pipeline, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["build", recipe, "--pipeline", pipeline, "--data-dir", data, "--config-dir", data + "/no-site", "--plugin-path", BuildCLITests.fixtures, "--json"]
        let output = data + ".out"
        FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait until the job is building.
        var building = false
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: output, encoding: .utf8), text.contains("\"building_image\"") {
                building = true
                break
            }
            usleep(50_000)
        }
        #expect(building)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let list = try await CLI.run(["jobs", "list", "--data-dir", data, "--json"])
        let jobs = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        let job = try #require(jobs.first)
        #expect(job["status"] as? String == "error")
        let error = try #require(job["error"] as? [String: Any])
        #expect((error["message"] as? String)?.contains("interrupted: the ims process running this job stopped") == true)
        // Nothing was registered.
        let images = try await CLI.run(["images", "list", "--data-dir", data, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(images.stdout.utf8)) as? [Any])?.isEmpty == true)
    }
}
