import Foundation
import Testing

/// The phase cache with the real zypper builder, packager and HTTPS repository: a rebuild reuses every cacheable
/// step and gives the same bytes as a fresh build, and a package bumped in the repository makes the builder run again.
@Suite("End to end: rebuilds from the phase cache", .serialized, .timeLimit(.minutes(6)))
struct CacheEndToEndTests {
    /// step → cache status, from `ims jobs describe --json`'s steps.
    static func cacheStatuses(_ build: EndToEndTests.Build) async throws -> [String: String] {
        let jobID = try #require(build.summary["job_id"] as? String ?? (build.summary["job"] as? [String: Any])?["id"] as? String, "\(build.summary)")
        let describe = try CLI.json(try await CLI.run(["jobs", "describe", jobID, "--data-dir", build.data, "--json"]).stdout)
        var statuses: [String: String] = [:]
        for step in describe["steps"] as? [[String: Any]] ?? [] {
            if let name = step["name"] as? String, let cache = step["cache"] as? [String: Any], let status = cache["status"] as? String {
                statuses[name] = status
            }
        }
        return statuses
    }

    static func rootfsMD5(_ build: EndToEndTests.Build) throws -> String {
        let manifest = try #require(build.summary["manifest"] as? [String: Any], "\(build.summary)")
        let artifacts = try #require(manifest["artifacts"] as? [[String: Any]])
        let rootfs = artifacts.first { ($0["type"] as? String)?.hasPrefix("application/vnd.cray.image.rootfs") == true }
        return try #require(rootfs?["md5"] as? String)
    }

    /// Replaces ims-test-app 2.1-3 in the served repository by 2.1-4 and regenerates its metadata.
    static func bumpPackage(in repository: TestRepository) throws {
        let top = NSTemporaryDirectory() + "ims-e2e-bump-" + UUID().uuidString.prefix(8)
        let spec = try String(contentsOfFile: CLI.repositoryRoot + "/Tests/Support/testrepo/specs/ims-test-app.spec", encoding: .utf8)
        #expect(spec.contains("Release:        3"))
        try FileManager.default.createDirectory(atPath: top, withIntermediateDirectories: true)
        try spec.replacingOccurrences(of: "Release:        3", with: "Release:        4").write(toFile: top + "/app.spec", atomically: true, encoding: .utf8)
        let built = try CLI.runTool("/usr/bin/rpmbuild", [
            "-bb", "--nodeps", "--quiet", "--define", "_topdir \(top)", "--define", "_binary_payload w6.gzdio",
            "--define", "debug_package %{nil}", top + "/app.spec",
        ])
        #expect(built.status == 0, "\(built.stderr)")
        for name in try FileManager.default.contentsOfDirectory(atPath: repository.directory) where name.hasPrefix("ims-test-app-2.1-3") {
            try FileManager.default.removeItem(atPath: repository.directory + "/" + name)
        }
        try FileManager.default.moveItem(atPath: top + "/RPMS/noarch/ims-test-app-2.1-4.noarch.rpm", toPath: repository.directory + "/ims-test-app-2.1-4.noarch.rpm")
        let indexed = try CLI.runTool("/usr/bin/createrepo_c", [
            "--quiet", "--no-database", "-g", CLI.repositoryRoot + "/Tests/Support/testrepo/comps.xml", repository.directory,
        ])
        #expect(indexed.status == 0, "\(indexed.stderr)")
    }

    @Test("a rebuild reuses every cacheable step, and its rootfs is byte-identical to a fresh --no-cache build; a bumped package runs the builder again")
    func rebuild() async throws {
        let repository = try TestRepository()
        let e2e = EndToEndTests()
        let data = NSTemporaryDirectory() + "ims-e2e-cache-" + UUID().uuidString.prefix(8)
        let epoch = ["--source-date-epoch", "1700000000"]

        let first = try await e2e.build(try EndToEndTests.copyExample("sles15"), repository: repository, extra: ["--name", "cached"] + epoch, data: data)
        #expect(first.result.status == 0, "\(first.result.stderr)")
        let firstSteps = try await Self.cacheStatuses(first)
        #expect(firstSteps["build-root"] == "stored" && firstSteps["package"] == "stored", "\(firstSteps)")

        let second = try await e2e.build(try EndToEndTests.copyExample("sles15"), repository: repository, extra: ["--name", "cached"] + epoch, data: data)
        #expect(second.result.status == 0, "\(second.result.stderr)")
        let secondSteps = try await Self.cacheStatuses(second)
        for step in ["build-root", "inject-ca", "configure-dns", "package"] {
            #expect(secondSteps[step] == "hit", "\(step): \(secondSteps)")
        }
        #expect(second.result.stdout.contains("cache hit"), "the event stream names the hits")

        let fresh = try await e2e.build(try EndToEndTests.copyExample("sles15"), repository: repository, extra: ["--name", "cached", "--no-cache"] + epoch, data: data)
        #expect(fresh.result.status == 0, "\(fresh.result.stderr)")
        #expect(try await Self.cacheStatuses(fresh)["build-root"] == "off")
        #expect(try Self.rootfsMD5(second) == Self.rootfsMD5(fresh), "a cached rebuild differs from a fresh build")
        #expect(try Self.rootfsMD5(first) == Self.rootfsMD5(fresh), "two fresh zypper builds with --source-date-epoch differ")
        #expect(try Self.rootfsMD5(first) == Self.rootfsMD5(second))

        // A security update of one package: the repository's metadata changes, the builder runs again.
        try Self.bumpPackage(in: repository)
        let bumped = try await e2e.build(try EndToEndTests.copyExample("sles15"), repository: repository, extra: ["--name", "cached"] + epoch, data: data)
        #expect(bumped.result.status == 0, "\(bumped.result.stderr)")
        let bumpedSteps = try await Self.cacheStatuses(bumped)
        #expect(bumpedSteps["build-root"] == "stored", "\(bumpedSteps)")
        #expect(try Self.rootfsMD5(bumped) != Self.rootfsMD5(first))

        // The SBOM: every package with the repository it came from and its file's digest, a valid SPDX 2.3 document
        // (checked with the SPDX project's own validator), listed in the manifest; the diff names the bump.
        let firstImage = try #require((first.summary["image"] as? [String: Any])?["id"] as? String)
        let bumpedImage = try #require((bumped.summary["image"] as? [String: Any])?["id"] as? String)
        let table = try await CLI.run(["images", "sbom", firstImage, "--format", "table", "--json", "--data-dir", data])
        #expect(table.status == 0, "\(table.stderr)")
        let packages = try #require(try JSONSerialization.jsonObject(with: Data(table.stdout.utf8)) as? [[String: Any]])
        let app = try #require(packages.first { $0["name"] as? String == "ims-test-app" })
        #expect(app["version"] as? String == "2.1-3" && app["arch"] as? String == "noarch")
        #expect((app["repository"] as? String)?.hasPrefix(repository.url) == true, "\(app)")
        #expect((app["digest"] as? String)?.hasPrefix("SHA256:") == true, "\(app)")
        #expect(packages.count >= 5)
        let document = data + "/first.spdx.json"
        try (try await CLI.run(["images", "sbom", firstImage, "--data-dir", data]).stdout).write(toFile: document, atomically: true, encoding: .utf8)
        let validated = try CLI.runTool("/usr/bin/env", ["pyspdxtools", "-i", document])
        #expect(validated.status == 0, "pyspdxtools: \(validated.stdout) \(validated.stderr)")
        let manifest = try #require(first.summary["manifest"] as? [String: Any])
        let types = (manifest["artifacts"] as? [[String: Any]] ?? []).compactMap { $0["type"] as? String }
        #expect(types.contains("application/spdx+json"))
        let diff = try CLI.json(try await CLI.run(["images", "diff", firstImage, bumpedImage, "--data-dir", data, "--json"]).stdout)
        let changed = try #require(diff["changed"] as? [[String: Any]])
        #expect(changed.contains { $0["name"] as? String == "ims-test-app" && $0["from"] as? String == "2.1-3" && $0["to"] as? String == "2.1-4" }, "\(diff)")
        #expect((diff["added"] as? [Any])?.isEmpty == true && (diff["removed"] as? [Any])?.isEmpty == true)

        // `ims cache ls --json` lists the entries with their keys' inputs.
        let listing = try CLI.json(try await CLI.run(["cache", "ls", "--data-dir", data, "--json"]).stdout)
        let entries = try #require(listing["entries"] as? [[String: Any]])
        #expect(entries.filter { $0["step"] as? String == "build-root" }.count == 2)
        #expect(entries.allSatisfy { ($0["inputs"] as? [String: Any])?["plugin_id"] != nil })
    }
}
