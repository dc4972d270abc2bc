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

/// `ims catalog import-ims` and `export-ims` as a site runs them: exit codes, reports and the refusals.
@Suite("ims catalog import-ims and export-ims")
struct CatalogIMSCLITests {
    static let imageID = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"

    static func write(_ files: [String: Any]) throws -> String {
        let directory = NSTemporaryDirectory() + "ims-data-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, records) in files {
            try JSONSerialization.data(withJSONObject: records).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        return directory
    }

    static func image(name: String = "from-ims", link: String? = nil) -> [String: Any] {
        [
            "id": imageID, "created": "2024-02-03T04:05:06.654321", "name": name, "arch": "x86_64", "metadata": [:] as [String: Any],
            "link": link.map { ["path": $0, "etag": "", "type": "file"] as Any } ?? NSNull(),
        ]
    }

    @Test("a broken record exits 65 naming the file and index; a conflict exits 1 naming both records; nothing is imported either time")
    func refusals() async throws {
        let data = NSTemporaryDirectory() + "ims-import-cli-" + UUID().uuidString.prefix(8)
        let broken = try Self.write(["v2.1_images.json": [Self.image(), ["id": "not-a-uuid", "created": "2024-01-01T00:00:00", "name": "x"]]])
        let result = try await CLI.run(["catalog", "import-ims", broken, "--data-dir", data, "--json"])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("v2.1_images.json record 1") && result.stderr.contains("nothing was imported"), "\(result.stderr)")
        #expect(try CLI.json(result.stdout)["code"] as? String == "catalog.import_invalid")
        let listed = try await CLI.run(["images", "list", "--data-dir", data, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [Any])?.isEmpty == true, "\(listed.stdout)")

        let first = try await CLI.run(["catalog", "import-ims", try Self.write(["v2.1_images.json": [Self.image(name: "renamed-later")]]), "--data-dir", data])
        #expect(first.status == 0, "\(first.stderr)")
        let good = try Self.write(["v2.1_images.json": [Self.image()], "v2.0_remote_build_nodes.json": [["xname": "x1"]]])
        let conflict = try await CLI.run(["catalog", "import-ims", good, "--data-dir", data])
        #expect(conflict.status == 1, "\(conflict.stdout) \(conflict.stderr)")
        #expect(conflict.stdout.contains("conflict: v2.1_images.json record 0") && conflict.stdout.contains("nothing was imported"), "\(conflict.stdout)")
        #expect(!FileManager.default.fileExists(atPath: data + "/remote-build-nodes.json"))
    }

    @Test("--verify-links imports an image whose manifest is missing from the store and lists it; export-ims refuses to overwrite IMS files")
    func verifyLinksAndExport() async throws {
        let data = NSTemporaryDirectory() + "ims-import-cli-" + UUID().uuidString.prefix(8)
        let missing = "file://\(data)/store/boot-images/\(Self.imageID)/manifest.json"
        let source = try Self.write(["v2.1_images.json": [Self.image(link: missing)]])
        let result = try await CLI.run(["catalog", "import-ims", source, "--verify-links", "--data-dir", data, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try CLI.json(result.stdout)
        #expect(report["imported"] as? Bool == true && report["links_verified"] as? Bool == true)
        let problems = try #require(report["link_problems"] as? [[String: Any]])
        #expect(problems.count == 1 && problems.first?["record"] as? String == Self.imageID, "\(problems)")
        let shown = try await CLI.run(["images", "describe", Self.imageID, "--data-dir", data, "--json"])
        #expect(try CLI.json(shown.stdout)["name"] as? String == "from-ims")

        let target = data + "/back"
        let exported = try await CLI.run(["catalog", "export-ims", target, "--data-dir", data])
        #expect(exported.status == 0 && exported.stdout.contains("v2.1_images.json (1 records)"), "\(exported.stdout) \(exported.stderr)")
        let again = try await CLI.run(["catalog", "export-ims", target, "--data-dir", data, "--json"])
        #expect(again.status == 1 && again.stderr.contains("--overwrite"), "\(again.stderr)")
        #expect(try CLI.json(again.stdout)["code"] as? String == "catalog.export_failed")
    }
}
