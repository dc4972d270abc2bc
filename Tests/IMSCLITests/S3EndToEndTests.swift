import Foundation
import Testing

/// A real S3 server (SeaweedFS, which checks request signatures) on 127.0.0.1, from Tests/Support/s3-server.
final class TestS3Server: @unchecked Sendable {
    let directory: String
    let endpoint: String
    let credentials: String

    init() throws {
        directory = NSTemporaryDirectory() + "ims-s3-" + UUID().uuidString.prefix(8)
        let started = try CLI.runTool(CLI.repositoryRoot + "/Tests/Support/s3-server", ["start", directory])
        guard started.status == 0 else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "s3-server: \(started.stderr)"]) }
        func value(_ key: String) -> String? {
            started.stdout.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        guard let endpoint = value("ENDPOINT"), let credentials = value("CREDENTIALS") else { throw CocoaError(.fileReadCorruptFile) }
        self.endpoint = endpoint
        self.credentials = credentials
    }

    func stop() { _ = try? CLI.runTool(CLI.repositoryRoot + "/Tests/Support/s3-server", ["stop", directory]) }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A site configuration directory whose store is this server.
    func site(extra: String = "") throws -> String {
        let site = directory + "-site-" + UUID().uuidString.prefix(6)
        try FileManager.default.createDirectory(atPath: site, withIntermediateDirectories: true)
        try """
            store: s3://boot-images
            s3:
              endpoint_url: \(endpoint)
              credentials_file: \(credentials)
            \(extra)
            """.write(toFile: site + "/ims.yaml", atomically: true, encoding: .utf8)
        return site
    }
}

@Suite("S3 as the artifact store", .serialized, .timeLimit(.minutes(4)))
struct S3EndToEndTests {
    static let fixtures = CLI.repositoryRoot + "/Tests/Fixtures/engine-plugins"

    static func pipeline(megabytes: Int? = nil) throws -> String {
        let path = NSTemporaryDirectory() + "ims-s3-pipeline-" + UUID().uuidString.prefix(6) + ".yaml"
        let packagerConfig = megabytes.map { ", config: {rootfs_megabytes: \($0)}" } ?? ""
        try "extends: create\noverride:\n  build-root: {plugin: org.ims.test.fake-builder}\n  package: {plugin: org.ims.test.fake-packager\(packagerConfig)}\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("ims build stores the recipe, the artifacts and an IMS manifest in S3, and ims store reads them back")
    func buildWithS3() async throws {
        let server = try TestS3Server()
        let site = try server.site()
        let (data, recipe, _) = try BuildCLITests.workspace()
        let result = try await CLI.run(["build", recipe, "--name", "s3-image", "--pipeline", try Self.pipeline(), "--data-dir", data, "--config-dir", site, "--plugin-path", Self.fixtures, "--json"])
        #expect(result.status == 0, "\(result.stderr)\(result.stdout.suffix(2000))")
        let summary = try CLI.json(String(result.stdout.split(separator: "\n").last ?? ""))
        let image = try #require(summary["image"] as? [String: Any])
        let imageID = try #require(image["id"] as? String)
        let link = try #require(image["link"] as? [String: Any])
        #expect(link["type"] as? String == "s3")
        #expect(link["path"] as? String == "s3://boot-images/\(imageID)/manifest.json")
        let manifest = try #require(summary["manifest"] as? [String: Any])
        let artifacts = try #require(manifest["artifacts"] as? [[String: Any]])
        #expect(artifacts.allSatisfy { (($0["link"] as? [String: Any])?["path"] as? String)?.hasPrefix("s3://boot-images/\(imageID)/") == true })
        // Everything is really in S3: list it and read the manifest back.
        let listing = try await CLI.run(["store", "ls", "s3://boot-images/\(imageID)/", "--config-dir", site, "--json"])
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]])
        #expect(Set(objects.compactMap { $0["key"] as? String }) == Set(["rootfs", "kernel", "initrd", "sbom.spdx.json", "manifest.json"].map { "\(imageID)/\($0)" }))
        let copy = data + "/manifest-copy.json"
        let get = try await CLI.run(["store", "get", "s3://boot-images/\(imageID)/manifest.json", copy, "--config-dir", site])
        #expect(get.status == 0, "\(get.stderr)")
        #expect(try String(contentsOfFile: copy, encoding: .utf8).contains("\"version\": \"1.0\""))
        let recipes = try await CLI.run(["store", "ls", "s3://ims/recipes/", "--config-dir", site, "--json"])
        #expect(recipes.stdout.contains("recipe.tar.gz"))

        // Soft delete moves every object under deleted/, undelete brings them back, and the record keeps every field.
        let environment = ["IMS_CONFIG_DIR": site]
        let before = try CLI.json(try await CLI.run(["images", "describe", imageID, "--data-dir", data, "--json"], environment: environment).stdout)
        let deleted = try await CLI.run(["images", "delete", imageID, "--data-dir", data, "--json"], environment: environment)
        #expect(deleted.status == 0, "\(deleted.stderr)")
        let moved = try await CLI.run(["store", "ls", "s3://boot-images/deleted/\(imageID)/", "--config-dir", site, "--json"])
        #expect(moved.stdout.contains("deleted/\(imageID)/rootfs") && moved.stdout.contains("deleted_manifest.json"), "\(moved.stdout)")
        let undeleted = try await CLI.run(["images", "undelete", imageID, "--data-dir", data, "--json"], environment: environment)
        #expect(undeleted.status == 0, "\(undeleted.stderr)")
        let after = try CLI.json(try await CLI.run(["images", "describe", imageID, "--data-dir", data, "--json"], environment: environment).stdout)
        #expect(NSDictionary(dictionary: before).isEqual(to: after), "every field survives: \(before) vs \(after)")
        let back = try await CLI.run(["store", "ls", "s3://boot-images/\(imageID)/", "--config-dir", site, "--json"])
        let restored = try #require(try JSONSerialization.jsonObject(with: Data(back.stdout.utf8)) as? [[String: Any]])
        #expect(Set(restored.compactMap { $0["key"] as? String }) == Set(["rootfs", "kernel", "initrd", "sbom.spdx.json", "manifest.json"].map { "\(imageID)/\($0)" }))
    }

    @Test("wrong credentials give a clear error naming the bucket")
    func wrongCredentials() async throws {
        let server = try TestS3Server()
        let bad = server.directory + "-bad.json"
        try #"{"access_key": "ims-test", "secret_key": "wrong-secret"}"#.write(toFile: bad, atomically: true, encoding: .utf8)
        let file = bad + ".payload"
        try "x".write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await CLI.run(["store", "put", file, "s3://boot-images/x", "--endpoint", server.endpoint, "--credentials", bad, "--config-dir", "/nonexistent"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("store.access_denied") && result.stderr.contains("boot-images"), "\(result.stderr)")
    }

    @Test("killing S3 during the upload gives bounded retries, a clear error, and nothing registered")
    func serverKilledMidUpload() async throws {
        let server = try TestS3Server()
        let site = try server.site(extra: "  max_attempts: 2\n")
        let (data, recipe, _) = try BuildCLITests.workspace()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["build", recipe, "--pipeline", try Self.pipeline(megabytes: 300), "--data-dir", data, "--config-dir", site, "--plugin-path", Self.fixtures, "--json"]
        let output = data + ".out"
        try FileManager.default.createDirectory(atPath: (output as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: output, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = FileHandle.nullDevice
        let started = Date()
        try process.run()
        var uploading = false
        for _ in 0..<600 {
            if let text = try? String(contentsOfFile: output, encoding: .utf8),
                text.split(separator: "\n").contains(where: { $0.contains("\"event\":\"step_started\"") && $0.contains("\"step\":\"upload-artifacts\"") })
            {
                uploading = true
                break
            }
            usleep(50_000)
        }
        #expect(uploading)
        usleep(300_000)
        server.stop()
        process.waitUntilExit()
        #expect(Date().timeIntervalSince(started) < 180, "bounded retries")
        #expect(process.terminationStatus == 1)
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let summary = try CLI.json(String(text.split(separator: "\n").last ?? ""))
        let error = try #require(summary["error"] as? [String: Any])
        #expect(error["phase"] as? String == "upload-artifacts")
        #expect((error["message"] as? String)?.contains("store.") == true, "\(error)")
        let images = try await CLI.run(["images", "list", "--data-dir", data, "--json"])
        #expect((try JSONSerialization.jsonObject(with: Data(images.stdout.utf8)) as? [Any])?.isEmpty == true)
    }
}
