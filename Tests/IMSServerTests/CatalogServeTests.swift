import Foundation
import Testing

/// `ims catalog import-ims` and `ims catalog restore` next to a running `ims serve`, all as real processes.
@Suite("ims catalog with ims serve", .timeLimit(.minutes(3)))
struct CatalogServeTests {
    static let imageID = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"
    static let recipeID = "4f5c6a1e-8d7b-4c2a-9e3f-0a1b2c3d4e5f"

    /// A small IMS data directory: one image, one soft-deleted recipe, a job and a remote build node.
    static func imsData() throws -> String {
        let directory = NSTemporaryDirectory() + "ims-data-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let files: [String: Any] = [
            "v2.1_images.json": [[
                "id": imageID, "created": "2024-02-03T04:05:06.654321", "name": "from-ims", "link": NSNull(),
                "arch": "aarch64", "metadata": ["stage": "prod"],
            ]],
            "v3.2_deleted_recipes.json": [[
                "id": recipeID, "created": "2022-01-02T03:04:05", "deleted": "2023-01-02T03:04:05.500000", "name": "old-recipe",
                "link": NSNull(), "recipe_type": "kiwi-ng", "linux_distribution": "sles15", "template_dictionary": [] as [Any],
                "require_dkms": true, "arch": "x86_64",
            ]],
            "v2.0_remote_build_nodes.json": [["xname": "x3000c0s19b4n0"]],
        ]
        for (name, records) in files {
            try JSONSerialization.data(withJSONObject: records).write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        return directory
    }

    @Test("records imported while ims serve runs are served with IMS's ids, times and fields, and the imported remote build nodes are listed")
    func importWhileServing() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        let source = try Self.imsData()
        defer { try? FileManager.default.removeItem(atPath: source) }

        let dryRun = try SupportTool.run(TestServer.binary, ["catalog", "import-ims", source, "--dry-run", "--json", "--data-dir", server.data])
        #expect(dryRun.status == 0, "\(dryRun.stderr)")
        #expect(try await server.get("/v3/images/\(Self.imageID)").status == 404)

        let imported = try SupportTool.run(TestServer.binary, ["catalog", "import-ims", source, "--data-dir", server.data])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stdout.contains("imported 3 record(s)"), "\(imported.stdout)")

        let image = try await server.get("/v3/images/\(Self.imageID)")
        #expect(image.status == 200)
        #expect((image.object["created"] as? String)?.hasPrefix("2024-02-03T04:05:06.654321") == true, "\(image.body)")
        #expect(image.object["arch"] as? String == "aarch64" && (image.object["metadata"] as? [String: String]) == ["stage": "prod"])
        let deleted = try await server.get("/v3/deleted/recipes/\(Self.recipeID)")
        #expect(deleted.status == 200 && (deleted.object["deleted"] as? String)?.hasPrefix("2023-01-02T03:04:05.5") == true, "\(deleted.body)")
        let nodes = try await server.get("/v3/remote-build-nodes")
        #expect(nodes.array.compactMap { $0["xname"] as? String } == ["x3000c0s19b4n0"], "\(nodes.body)")

        let again = try SupportTool.run(TestServer.binary, ["catalog", "import-ims", source, "--data-dir", server.data])
        #expect(again.status == 0 && again.stdout.contains("nothing new to import"), "\(again.stdout)")
        // A node added through the API afterwards joins the imported one; the server never overwrites the registry.
        #expect(try await server.post("/v3/remote-build-nodes", ["xname": "x3000c0s19b3n0"]).status == 201)
        let both = try await server.get("/v3/remote-build-nodes")
        #expect(both.array.compactMap { $0["xname"] as? String } == ["x3000c0s19b4n0", "x3000c0s19b3n0"], "\(both.body)")
    }

    @Test("a restore is refused while ims serve runs, and brings the backup back once the server has stopped")
    func restoreAndServe() async throws {
        let server = try await TestServer()
        defer { server.terminate() }
        #expect(try await server.post("/v3/images", ["name": "before-the-backup"]).status == 201)
        let backup = server.root + "/backup.sqlite"
        let backedUp = try SupportTool.run(TestServer.binary, ["catalog", "backup", backup, "--data-dir", server.data])
        #expect(backedUp.status == 0, "\(backedUp.stderr)")
        #expect(try await server.post("/v3/images", ["name": "after-the-backup"]).status == 201)

        let refused = try SupportTool.run(TestServer.binary, ["catalog", "restore", backup, "--data-dir", server.data, "--json"])
        #expect(refused.status == 1, "\(refused.stdout) \(refused.stderr)")
        #expect(refused.stderr.contains("ims serve is running") && refused.stdout.contains("catalog.restore_refused"), "\(refused.stderr)")
        #expect(try await server.get("/v3/images").array.count == 2)

        #expect(await server.stop() == 0)
        let restored = try SupportTool.run(TestServer.binary, ["catalog", "restore", backup, "--data-dir", server.data])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stdout.contains("the catalog it replaced is kept at"), "\(restored.stdout)")

        let again = try await TestServer(root: server.root)
        defer { again.terminate() }
        #expect(try await again.get("/v3/images").array.compactMap { $0["name"] as? String } == ["before-the-backup"])
    }
}
