import Foundation
import Testing

/// A bad pipeline is refused before `ims build` or `ims jobs create` records anything (docs/pipelines.md).
extension BuildCLITests {
    @Test("a bad site pipeline, or a bad --pipeline, leaves no recipe registered and no job recorded", arguments: [true, false])
    func badPipelineRegistersNothing(sitePipeline: Bool) async throws {
        let (data, recipe, _) = try Self.workspace()
        let site = data + "/site"
        try FileManager.default.createDirectory(atPath: site + "/pipelines", withIntermediateDirectories: true)
        let bad = "extends: create\ninsert:\n  - afer: configure-dns\n    step: {name: scan, phase: scan}\n"
        var arguments = ["build", recipe, "--data-dir", data, "--config-dir", site, "--plugin-path", Self.fixtures]
        if sitePipeline {
            try bad.write(toFile: site + "/pipelines/create.yaml", atomically: true, encoding: .utf8)
        } else {
            arguments += ["--pipeline", try Self.pipeline("bad.yaml", bad, beside: data)]
        }
        let result = try await CLI.ims(arguments)
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("insert #1 ('scan'): unknown key 'afer'") && result.stderr.contains("did you mean 'after'?"), "\(result.stderr)")
        #expect(!result.stderr.contains("registered recipe"))
        let recipes = try await CLI.ims(["recipes", "list", "--data-dir", data, "--json"])
        #expect(recipes.status == 0)
        #expect((try JSONSerialization.jsonObject(with: Data(recipes.stdout.utf8)) as? [Any])?.count == 0, "\(recipes.stdout)")
        let jobs = try await CLI.ims(["jobs", "list", "--data-dir", data, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(jobs.stdout.utf8)) as? [Any])?.count == 0, "\(jobs.stdout)")
    }

    @Test("jobs create refuses a bad site pipeline before it records a job")
    func jobsCreateBadPipeline() async throws {
        let (data, _, _) = try Self.workspace()
        let site = data + "/site"
        try FileManager.default.createDirectory(atPath: site + "/pipelines", withIntermediateDirectories: true)
        try "extends: customize\nremove: [dns-swop]\n".write(toFile: site + "/pipelines/customize.yaml", atomically: true, encoding: .utf8)
        let result = try await CLI.ims([
            "jobs", "create", "--job-type", "customize", "--artifact-id", UUID().uuidString, "--image-root-archive-name", "x",
            "--data-dir", data, "--config-dir", site,
        ])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("cannot remove step 'dns-swop'") && result.stderr.contains("did you mean 'dns-swap'?"), "\(result.stderr)")
        let jobs = try await CLI.ims(["jobs", "list", "--data-dir", data, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(jobs.stdout.utf8)) as? [Any])?.count == 0, "\(jobs.stdout)")
    }
}
