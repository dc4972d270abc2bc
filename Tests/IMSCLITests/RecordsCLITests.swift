import Foundation
import Testing

/// Tests of the record commands (`ims recipes|images|public-keys …`), run in process; several processes sharing one
/// data directory run the built binary.
@Suite("ims records CLI", .timeLimit(.minutes(3)))
struct RecordsCLITests {
    /// A temporary data directory, removed afterwards.
    final class DataDir {
        let path = NSTemporaryDirectory() + "ims-records-" + UUID().uuidString.prefix(8).lowercased()
        var store: String { path + "/store" }
        deinit { try? FileManager.default.removeItem(atPath: path) }

        /// Runs ims with `--data-dir` appended.
        func ims(_ arguments: [String]) async throws -> CLI.Result {
            try await CLI.ims(arguments + ["--data-dir", path], environment: ["IMS_STORE": ""])
        }

        /// Runs ims with `--json --data-dir`, expecting success, and parses the output.
        func json(_ arguments: [String]) async throws -> Any {
            let result = try await ims(arguments + ["--json"])
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
        }

        func object(_ arguments: [String]) async throws -> [String: Any] {
            try #require(try await json(arguments) as? [String: Any])
        }

        func list(_ arguments: [String]) async throws -> [[String: Any]] {
            try #require(try await json(arguments) as? [[String: Any]])
        }
    }

    static func md5(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/md5sum")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(String(decoding: output, as: UTF8.self).prefix(32))
    }

    /// Sorted-key JSON text of a parsed object, for comparing whole records.
    static func canonical(_ object: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return "<invalid>" }
        return String(decoding: data, as: UTF8.self)
    }

    static func write(_ text: String, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    static let recipeFields: Set<String> = [
        "id", "created", "name", "link", "recipe_type", "linux_distribution", "template_dictionary", "require_dkms", "arch",
    ]

    @Test("recipe from a file: create, list, describe, delete, list --deleted, undelete, every field back")
    func recipeLifecycle() async throws {
        let data = DataDir()
        let archive = data.path + "-input/compute.tar.gz"
        try Self.write(String(repeating: "recipe bytes ", count: 5000), to: archive)
        defer { try? FileManager.default.removeItem(atPath: data.path + "-input") }

        let created = try await data.object([
            "recipes", "create", "--name", "compute", "--file", archive, "--linux-distribution", "rocky9", "--arch", "aarch64",
            "--template-dictionary", "CSM_RELEASE=1.6", "--template-dictionary", "A=b=c", "--require-dkms", "false",
        ])
        #expect(Set(created.keys) == Self.recipeFields)
        let id = try #require(created["id"] as? String)
        #expect(created["name"] as? String == "compute" && created["arch"] as? String == "aarch64")
        #expect(created["linux_distribution"] as? String == "rocky9" && created["recipe_type"] as? String == "kiwi-ng")
        #expect(created["require_dkms"] as? Bool == false)
        let dictionary = try #require(created["template_dictionary"] as? [[String: String]])
        #expect(dictionary == [["key": "CSM_RELEASE", "value": "1.6"], ["key": "A", "value": "b=c"]])
        let link = try #require(created["link"] as? [String: String])
        let storedPath = data.store + "/ims/recipes/\(id)/recipe.tar.gz"
        #expect(link == ["path": "file://" + storedPath, "etag": try Self.md5(archive), "type": "file"])
        #expect(FileManager.default.contentsEqual(atPath: archive, andPath: storedPath))

        #expect(try await data.list(["recipes", "list"]).compactMap { $0["id"] as? String } == [id])
        let described = try await data.object(["recipes", "describe", id])
        #expect(Self.canonical(described) == Self.canonical(created))
        let text = try await data.ims(["recipes", "list"])
        #expect(text.status == 0 && text.stdout.contains(id) && text.stdout.contains("rocky9"))

        let deleted = try await data.object(["recipes", "delete", id])
        #expect(deleted["deleted"] is String)
        #expect((deleted["link"] as? [String: String])?["path"] == "file://" + data.store + "/ims/deleted/recipes/\(id)/recipe.tar.gz")
        #expect(!FileManager.default.fileExists(atPath: storedPath))
        #expect(FileManager.default.fileExists(atPath: data.store + "/ims/deleted/recipes/\(id)/recipe.tar.gz"))
        #expect(try await data.list(["recipes", "list"]).isEmpty)
        let listedDeleted = try await data.list(["recipes", "list", "--deleted"])
        #expect(listedDeleted.compactMap { $0["id"] as? String } == [id])

        let restored = try await data.object(["recipes", "undelete", id])
        #expect(Self.canonical(restored) == Self.canonical(created))
        #expect(Self.canonical(try await data.object(["recipes", "describe", id])) == Self.canonical(created))
        #expect(FileManager.default.contentsEqual(atPath: archive, andPath: storedPath))
        #expect(try await data.list(["recipes", "list", "--deleted"]).isEmpty)

        let removed = try await data.ims(["recipes", "delete", id, "--permanent"])
        #expect(removed.status == 0, "\(removed.stderr)")
        #expect(!FileManager.default.fileExists(atPath: storedPath))
        let gone = try await data.ims(["recipes", "describe", id])
        #expect(gone.status == 1 && gone.stderr.contains("no recipe with id \(id)"))
    }

    @Test("errors name the input, with IMS-style codes and the documented exit codes")
    func errors() async throws {
        let data = DataDir()
        let unknown = UUID().uuidString.lowercased()
        let missing = try await data.ims(["recipes", "describe", unknown, "--json"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("no recipe with id \(unknown)"))
        let report = try CLI.json(missing.stdout)
        #expect(report["code"] as? String == "catalog.not_found")
        #expect(try await data.ims(["images", "describe", unknown]).stderr.contains("no image with id \(unknown)"))
        #expect(try await data.ims(["public-keys", "delete", unknown]).stderr.contains("no public key with id \(unknown)"))

        let badDistro = try await data.ims(["recipes", "create", "--name", "x", "--linux-distribution", "ubuntu"])
        #expect(badDistro.status == 64)
        #expect(badDistro.stderr.contains("ubuntu") && badDistro.stderr.contains("sles15") && badDistro.stderr.contains("rocky9"))
        #expect(try await data.ims(["recipes", "describe", "not-a-uuid"]).status == 64)

        // Nothing half-registered: a file that cannot be stored creates no record.
        let noFile = try await data.ims(["recipes", "create", "--name", "x", "--linux-distribution", "sles15", "--file", data.path + "/nope.tgz"])
        #expect(noFile.status == 65 && noFile.stderr.contains("nope.tgz"))
        let directory = try await data.ims(["recipes", "create", "--name", "x", "--linux-distribution", "sles15", "--file", data.path])
        #expect(directory.status == 65 && directory.stderr.contains("directory"))
        let missingLink = try await data.ims(["recipes", "create", "--name", "x", "--linux-distribution", "sles15", "--link", "file://\(data.store)/ims/none.tgz"])
        #expect(missingLink.status == 1 && missingLink.stderr.contains("no object at"))
        #expect(try await data.list(["recipes", "list"]).isEmpty)
        #expect(try await data.list(["recipes", "list", "--deleted"]).isEmpty)
    }

    @Test("images: metadata set and remove, manifest validation, link conflict, soft delete and undelete")
    func images() async throws {
        let data = DataDir()
        let plain = try await data.object(["images", "create", "--name", "plain", "--metadata", "owner=hpc"])
        let plainID = try #require(plain["id"] as? String)
        #expect(plain["metadata"] as? [String: String] == ["owner": "hpc"] && plain["link"] is NSNull && plain["arch"] as? String == "x86_64")
        var updated = try await data.object(["images", "update", plainID, "--metadata-set", "tag=prod", "--metadata-set", "team=a"])
        #expect(updated["metadata"] as? [String: String] == ["owner": "hpc", "tag": "prod", "team": "a"])
        updated = try await data.object(["images", "update", plainID, "--metadata-remove", "owner", "--metadata-remove", "absent", "--arch", "aarch64"])
        #expect(updated["metadata"] as? [String: String] == ["tag": "prod", "team": "a"] && updated["arch"] as? String == "aarch64")
        #expect(Self.canonical(try await data.object(["images", "describe", plainID])) == Self.canonical(updated))

        // A manifest written by hand into the store, as a user would after copying artifacts in.
        let folder = data.store + "/boot-images/hand"
        try Self.write("squashfs bytes", to: folder + "/rootfs")
        try Self.write("kernel bytes", to: folder + "/kernel")
        let manifest = """
            {"version": "1.0", "created": "2025-01-01 12:00:00", "artifacts": [
              {"type": "application/vnd.cray.image.rootfs.squashfs", "md5": "x", "link": {"type": "file", "path": "file://\(folder)/rootfs", "etag": ""}},
              {"type": "application/vnd.cray.image.kernel", "link": {"type": "file", "path": "file://\(folder)/kernel"}}]}
            """
        try Self.write(manifest, to: folder + "/manifest.json")
        try Self.write(#"{"version": "1.0", "created": "x", "artifacts": []}"#, to: data.store + "/boot-images/bad/manifest.json")
        let bad = try await data.ims(["images", "update", plainID, "--link", "file://\(data.store)/boot-images/bad/manifest.json", "--json"])
        #expect(bad.status == 65 && bad.stderr.contains("exactly one is required"))
        #expect(try CLI.json(bad.stdout)["code"] as? String == "store.invalid_manifest")

        let manifestURL = "file://\(folder)/manifest.json"
        let linked = try await data.object(["images", "update", plainID, "--link", manifestURL])
        #expect((linked["link"] as? [String: String])?["path"] == manifestURL)
        #expect(try await data.ims(["images", "update", plainID, "--link", manifestURL]).status == 0)  // idempotent
        let conflict = try await data.ims(["images", "update", plainID, "--link", "file://\(data.store)/boot-images/bad/manifest.json", "--json"])
        #expect(conflict.status == 1)
        #expect(try CLI.json(conflict.stdout)["code"] as? String == "catalog.conflict")
        let second = try await data.ims(["images", "create", "--name", "dup", "--link", manifestURL, "--json"])
        #expect(second.status == 1 && second.stderr.contains(plainID))

        let deleted = try await data.object(["images", "delete", plainID])
        #expect((deleted["link"] as? [String: String])?["path"] == "file://\(data.store)/boot-images/deleted/\(plainID)/deleted_manifest.json")
        #expect(!FileManager.default.fileExists(atPath: folder + "/rootfs"))
        #expect(FileManager.default.fileExists(atPath: data.store + "/boot-images/deleted/hand/rootfs"))
        #expect(try await data.list(["images", "list"]).isEmpty)
        #expect(try await data.list(["images", "list", "--deleted"]).count == 1)
        let restored = try await data.object(["images", "undelete", plainID])
        #expect(Self.canonical(restored) == Self.canonical(linked))
        #expect(FileManager.default.fileExists(atPath: folder + "/rootfs") && FileManager.default.fileExists(atPath: folder + "/manifest.json"))
        #expect(!FileManager.default.fileExists(atPath: data.store + "/boot-images/deleted"))

        #expect(try await data.ims(["images", "delete", plainID, "--permanent"]).status == 0)
        #expect(!FileManager.default.fileExists(atPath: folder + "/rootfs") && !FileManager.default.fileExists(atPath: folder + "/manifest.json"))
        #expect(try await data.list(["images", "list"]).isEmpty)
        #expect(try await data.list(["images", "list", "--deleted"]).isEmpty)
    }

    @Test("images: a manifest ETag mismatch is a warning: it prints as 'warning: …', not as an error, and leaves the exit code and the --json record alone")
    func manifestETagWarning() async throws {
        for json in [false, true] {
            let data = DataDir()
            let folder = data.store + "/boot-images/warned"
            try Self.write("squashfs bytes", to: folder + "/rootfs")
            let manifest = """
                {"version": "1.0", "created": "2025-01-01 12:00:00", "artifacts": [
                  {"type": "application/vnd.cray.image.rootfs.squashfs", "link": {"type": "file", "path": "file://\(folder)/rootfs", "etag": "0123456789abcdef"}}]}
                """
            try Self.write(manifest, to: folder + "/manifest.json")
            let result = try await data.ims(["images", "create", "--name", "warned", "--link", "file://\(folder)/manifest.json"] + (json ? ["--json"] : []))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.hasPrefix("warning: artifacts[0]") && result.stderr.contains("0123456789abcdef"), "\(result.stderr)")
            #expect(!result.stderr.contains("error"), "\(result.stderr)")
            if json {
                let record = try CLI.json(result.stdout)
                #expect(record["name"] as? String == "warned" && record["code"] == nil && record["exit_code"] == nil)
            }
        }
    }

    @Test("public keys: create from a file, list, delete, list --deleted; malformed keys are refused")
    func publicKeys() async throws {
        let data = DataDir()
        let keyFile = data.path + "-key.pub"
        let line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f admin@example"
        try Self.write(line + "\n", to: keyFile)
        defer { try? FileManager.default.removeItem(atPath: keyFile) }
        let key = try await data.object(["public-keys", "create", "--name", "admin", "--public-key", keyFile])
        #expect(Set(key.keys) == ["id", "created", "name", "public_key"] && key["public_key"] as? String == line)
        let id = try #require(key["id"] as? String)
        #expect(try await data.list(["public-keys", "list"]).compactMap { $0["id"] as? String } == [id])
        let text = try await data.ims(["public-keys", "list"])
        #expect(text.stdout.contains("admin") && text.stdout.contains("ssh-ed25519"))
        #expect(try await data.ims(["public-keys", "delete", id]).status == 0)
        #expect(try await data.list(["public-keys", "list"]).isEmpty)
        #expect(try await data.list(["public-keys", "list", "--deleted"]).compactMap { $0["id"] as? String } == [id])

        try Self.write("not a key\n", to: keyFile)
        let bad = try await data.ims(["public-keys", "create", "--name", "bad", "--public-key", keyFile])
        #expect(bad.status == 65 && bad.stderr.contains(keyFile) && bad.stderr.contains("key type"))
    }

    @Test("several ims processes share one data directory")
    func concurrentProcesses() async throws {
        let data = DataDir()
        let count = 8
        var processes: [Process] = []
        for index in 0..<count {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CLI.binary)
            process.arguments = ["images", "create", "--name", "parallel-\(index)", "--metadata", "n=\(index)", "--data-dir", data.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            processes.append(process)
        }
        for process in processes { try process.run() }  // all at once, on a data directory that does not exist yet
        for process in processes { process.waitUntilExit() }
        #expect(processes.allSatisfy { $0.terminationStatus == 0 })
        let images = try await data.list(["images", "list"])
        #expect(Set(images.compactMap { $0["name"] as? String }) == Set((0..<count).map { "parallel-\($0)" }))
    }
}
