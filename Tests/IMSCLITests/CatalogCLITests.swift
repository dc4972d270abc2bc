import Foundation
import Testing

/// `ims catalog backup` and `ims catalog check` as automation runs them.
@Suite("ims catalog backup and check")
struct CatalogCLITests {
    @Test("a backup reports its schema and records; check passes, and with --store exits 1 naming each image whose manifest is missing")
    func backupAndCheck() async throws {
        let data = NSTemporaryDirectory() + "ims-catalog-cli-" + UUID().uuidString.prefix(8)
        let seeded = try await CLI.run(["images", "seed-benchmark", "--count", "3", "--data-dir", data])
        #expect(seeded.status == 0, "\(seeded.stderr)")

        let backup = try await CLI.run(["catalog", "backup", data + "/backup.sqlite", "--data-dir", data, "--json"])
        #expect(backup.status == 0, "\(backup.stderr)")
        let report = try CLI.json(backup.stdout)
        #expect((report["records"] as? [String: Any])?["images"] as? Int == 3)
        #expect((report["schema"] as? [String])?.contains("v1") == true)
        #expect(FileManager.default.fileExists(atPath: data + "/backup.sqlite"))

        let healthy = try await CLI.run(["catalog", "check", "--data-dir", data, "--json"])
        #expect(healthy.status == 0, "\(healthy.stdout) \(healthy.stderr)")
        #expect(try CLI.json(healthy.stdout)["ok"] as? Bool == true)

        // The seeded records link to manifests nobody stored.
        let withStore = try await CLI.run(["catalog", "check", "--store", "--data-dir", data, "--json"])
        #expect(withStore.status == 1)
        let problems = try #require(try CLI.json(withStore.stdout)["problems"] as? [[String: Any]])
        #expect(problems.count == 3 && problems.allSatisfy { $0["rule"] as? String == "store" }, "\(problems)")
        let text = try await CLI.run(["catalog", "check", "--store", "--data-dir", data])
        #expect(text.status == 1 && text.stdout.contains("3 problem(s) found"), "\(text.stdout)")
    }
}
