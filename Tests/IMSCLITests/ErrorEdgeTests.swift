import Foundation
import Testing

/// Every command reports errors through one reporter with the documented exit codes (docs/exit-codes.md), in process.
@Suite("ims errors at the edge", .timeLimit(.minutes(2)))
struct ErrorEdgeTests {
    /// The `{code, message, exit_code}` object a failing command prints on stdout with `--json`.
    static func report(_ result: CLI.Result) throws -> (code: String, message: String, exitCode: Int32) {
        let object = try CLI.json(result.stdout)
        let code = try #require(object["code"] as? String, "stdout: \(result.stdout)")
        let message = try #require(object["message"] as? String)
        let exitCode = try #require(object["exit_code"] as? Int)
        return (code, message, Int32(exitCode))
    }

    static func build(_ arguments: [String]) async throws -> CLI.Result {
        let (data, _, _) = try BuildCLITests.workspace()
        return try await CLI.ims(["build"] + arguments + ["--data-dir", data, "--config-dir", data + "/no-site", "--plugin-path", BuildCLITests.fixtures])
    }

    @Test("ims build --json on a recipe path that cannot be read prints {code, message, exit_code} and exits 65")
    func buildUnreadableRecipe() async throws {
        let missing = NSTemporaryDirectory() + "ims-no-recipe-" + UUID().uuidString.prefix(8)
        let result = try await Self.build([missing, "--json"])
        #expect(result.status == 65, "\(result.stderr)")
        let report = try Self.report(result)
        #expect(report.exitCode == 65 && report.message.contains(missing))
        #expect(result.stderr.hasPrefix("error: ") && result.stderr.contains(missing))
    }

    @Test("a --detach job whose runner cannot be started ends as error at once and exits 69")
    func detachedRunnerUnavailable() async throws {
        let data = NSTemporaryDirectory() + "ims-detach-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: data) }
        let archive = data + "/recipe.tar.gz"
        let tar = try CLI.runTool("/bin/tar", ["czf", archive, "-C", CLI.repositoryRoot + "/examples/sles15", "."])
        #expect(tar.status == 0, "\(tar.stderr)")
        let created = try await CLI.ims([
            "recipes", "create", "--name", "r", "--file", archive, "--linux-distribution", "sles15", "--data-dir", data, "--json",
        ])
        let recipeID = try #require(try CLI.json(created.stdout)["id"] as? String, "\(created.stderr)")
        let result = try await CLI.ims(
            [
                "jobs", "create", "--job-type", "create", "--artifact-id", recipeID, "--image-root-archive-name", "x", "--detach", "--json",
                "--data-dir", data, "--config-dir", data + "/no-site",
            ], executablePath: "/nonexistent/ims")
        #expect(result.status == 69, "\(result.stderr)")
        #expect(try Self.report(result).code == "ims.job.runner_unavailable")
        let listed = try await CLI.ims(["jobs", "list", "--data-dir", data, "--json"])
        let jobs = try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
        #expect(jobs.count == 1)
        #expect(jobs.first?["status"] as? String == "error", "no job is left in creating without a runner")
    }

    @Test("ims build of an unknown recipe id is an unknown id: exit 1, catalog.not_found")
    func buildUnknownRecipeID() async throws {
        let id = UUID().uuidString.lowercased()
        let result = try await Self.build([id, "--json"])
        #expect(result.status == 1, "\(result.stderr)")
        let report = try Self.report(result)
        #expect(report.code == "catalog.not_found" && report.exitCode == 1 && report.message.contains(id))
    }

    @Test("a failed job with --json ends its event stream with the result, which carries the error and exit_code 1")
    func buildFailedJobJSON() async throws {
        let (data, recipe, _) = try BuildCLITests.workspace()
        let pipeline = try BuildCLITests.pipeline("failing.yaml", BuildCLITests.failingPipeline, beside: data)
        let result = try await CLI.ims([
            "build", recipe, "--pipeline", pipeline, "--data-dir", data, "--config-dir", data + "/no-site", "--plugin-path", BuildCLITests.fixtures, "--json",
        ])
        #expect(result.status == 1)
        let last = try CLI.json(String(try #require(result.stdout.split(separator: "\n").last)))
        #expect(last["event"] as? String == "result" && last["status"] as? String == "error")
        #expect(last["exit_code"] as? Int == 1)
        #expect((last["error"] as? [String: Any])?["code"] as? String == "build-root.package_not_found")
        #expect(result.stderr.contains("error: job ") && result.stderr.contains("failed"))
    }

    @Test("a usage error found while running a command is reported as JSON too (exit 64, ims.usage)")
    func usageErrorJSON() async throws {
        let data = RecordsCLITests.DataDir()
        let result = try await data.ims(["recipes", "describe", "not-a-uuid", "--json"])
        #expect(result.status == 64)
        let report = try Self.report(result)
        #expect(report.code == "ims.usage" && report.exitCode == 64 && report.message.contains("not-a-uuid"))
    }

    @Test("an unknown plugin is reported as JSON with exit 69")
    func unknownPluginJSON() async throws {
        let result = try await CLI.ims(["plugins", "describe", "org.nowhere.nothing", "--json"])
        #expect(result.status == 69)
        let report = try Self.report(result)
        #expect(report.code == "plugin.unavailable" && report.exitCode == 69 && report.message.contains("org.nowhere.nothing"))
    }

    @Test("the ims binary reports through the same edge: a usage error with --json exits 64 with the JSON report")
    func binaryEdge() async throws {
        let result = try await CLI.run(["jobs", "describe", "not-a-uuid", "--json", "--data-dir", NSTemporaryDirectory() + "ims-edge-" + UUID().uuidString.prefix(8)])
        #expect(result.status == 64)
        let report = try Self.report(result)
        #expect(report.code == "ims.usage" && report.exitCode == 64)
        let help = try await CLI.run(["--help"])
        #expect(help.status == 0 && help.stdout.contains("USAGE"))
    }
}
