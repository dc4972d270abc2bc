import Foundation
import IMSCatalog
import Testing

/// IMS's data files, written by hand from IMS's record schemas (docs/records.md, ims-behaviour.md §3): every table,
/// every field, with the values IMS writes (naive timestamps, `null` links, older schema versions).
enum IMSFiles {
    static let recipeID = "4f5c6a1e-8d7b-4c2a-9e3f-0a1b2c3d4e5f"
    static let deletedRecipeID = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
    static let imageID = "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e"
    static let imageWithoutLinkID = "7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f"
    static let deletedImageID = "8d9e0f1a-2b3c-4d4e-9f5a-6b7c8d9e0f1a"
    static let keyID = "9e0f1a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"
    static let deletedKeyID = "0f1a2b3c-4d5e-4f6a-9b7c-8d9e0f1a2b3c"
    static let createJobID = "1a2b3c4d-5e6f-4a7b-8c8d-9e0f1a2b3c4d"
    static let customizeJobID = "2b3c4d5e-6f7a-4b8c-9d9e-0f1a2b3c4d5e"

    static var recipes: [[String: Any]] {
        [[
            "id": recipeID, "created": "2023-04-05T06:07:08.123456", "name": "cos-2.5-x86_64",
            "link": ["path": "s3://ims/recipes/\(recipeID)/recipe.tar.gz", "etag": "0a1b2c3d", "type": "s3"],
            "recipe_type": "kiwi-ng", "linux_distribution": "sles15",
            "template_dictionary": [["key": "CSM_RELEASE_VERSION", "value": "1.5.0"], ["key": "SLES_REPO", "value": "https://nexus/sles"]],
            "require_dkms": false, "arch": "aarch64",
        ]]
    }

    static var deletedRecipes: [[String: Any]] {
        [[
            "id": deletedRecipeID, "created": "2022-01-02T03:04:05", "deleted": "2023-01-02T03:04:05.500000",
            "name": "old-recipe", "link": NSNull(), "recipe_type": "packer", "linux_distribution": "centos7",
            "template_dictionary": [] as [Any], "require_dkms": true, "arch": "x86_64",
        ]]
    }

    static var images: [[String: Any]] {
        [
            [
                "id": imageID, "created": "2024-02-03T04:05:06.654321", "name": "compute-cos-2.5",
                "link": ["path": "s3://boot-images/\(imageID)/manifest.json", "etag": "deadbeef", "type": "s3"],
                "arch": "aarch64", "metadata": ["owner": "hpc team", "stage": "prod"],
            ],
            ["id": imageWithoutLinkID, "created": "2024-02-03T04:05:07", "name": "no-link-yet", "link": NSNull(), "arch": "x86_64", "metadata": [:] as [String: Any]],
        ]
    }

    static var deletedImages: [[String: Any]] {
        [[
            "id": deletedImageID, "created": "2021-05-06T07:08:09.000001", "deleted": "2022-05-06T07:08:09",
            "name": "retired", "link": ["path": "s3://boot-images/deleted/\(deletedImageID)/manifest.json", "etag": "", "type": "s3"],
            "arch": "x86_64", "metadata": ["reason": "superseded"],
        ]]
    }

    static var publicKeys: [[String: Any]] {
        [["id": keyID, "created": "2020-01-01T00:00:00", "name": "admin", "public_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq root@ncn-m001"]]
    }

    static var deletedPublicKeys: [[String: Any]] {
        [["id": deletedKeyID, "created": "2019-01-01T00:00:00", "deleted": "2019-06-01T12:30:00.250000", "name": "old", "public_key": "ssh-rsa AAAAB3Nza old@host"]]
    }

    static var jobs: [[String: Any]] {
        [
            [
                "id": createJobID, "created": "2024-02-03T03:00:00.500000", "job_type": "create", "artifact_id": recipeID,
                "public_key_id": keyID, "image_root_archive_name": "compute-cos-2.5", "enable_debug": false,
                "build_env_size": 60, "job_mem_size": 8, "kernel_file_name": "Image", "initrd_file_name": "initrd",
                "kernel_parameters_file_name": "kernel-parameters", "ssh_containers": [] as [Any], "require_dkms": true,
                "status": "success", "resultant_image_id": imageID, "arch": "aarch64",
                "kubernetes_job": "cray-ims-\(createJobID)-create", "kubernetes_service": "cray-ims-\(createJobID)-service",
                "kubernetes_configmap": "cray-ims-\(createJobID)-configmap", "kubernetes_pvc": "cray-ims-\(createJobID)-job-claim",
                "kubernetes_secret": "cray-ims-\(createJobID)-secret", "kubernetes_namespace": "ims", "remote_build_node": "",
            ],
            [
                "id": customizeJobID, "created": "2024-03-01T10:00:00", "job_type": "customize", "artifact_id": imageID,
                "public_key_id": keyID, "image_root_archive_name": "compute-cos-2.5-cfs", "enable_debug": false,
                "build_env_size": 90, "job_mem_size": 16, "kernel_file_name": "vmlinuz", "initrd_file_name": "initrd.img",
                "kernel_parameters_file_name": "kernel-parameters", "require_dkms": false,
                "ssh_containers": [[
                    "name": "gateway", "jail": true, "status": "pending",
                    "connection_info": [
                        "customer_access": ["host": "\(customizeJobID).ims.cmn.shasta.local", "port": 22],
                        "cluster.local": ["host": "cray-ims-\(customizeJobID)-service.ims.svc.cluster.local", "port": 22],
                    ],
                ]],
                "status": "waiting_on_user", "resultant_image_id": NSNull(), "arch": "x86_64",
                "kubernetes_job": "cray-ims-\(customizeJobID)-customize", "kubernetes_service": "cray-ims-\(customizeJobID)-service",
                "kubernetes_configmap": "cray-ims-\(customizeJobID)-configmap", "kubernetes_pvc": "cray-ims-\(customizeJobID)-job-claim",
                "kubernetes_secret": "cray-ims-\(customizeJobID)-secret", "kubernetes_namespace": "ims", "remote_build_node": "x3000c0s19b4n0",
            ],
        ]
    }

    static var remoteBuildNodes: [[String: Any]] { [["xname": "x3000c0s19b4n0"], ["xname": "x3000c0s19b3n0"]] }

    /// The current file of every table.
    static var current: [String: [[String: Any]]] {
        [
            "v2.2_recipes.json": recipes, "v3.2_deleted_recipes.json": deletedRecipes, "v2.1_images.json": images,
            "v3.1_deleted_images.json": deletedImages, "v2_public_keys.json": publicKeys,
            "v3_deleted_public_keys.json": deletedPublicKeys, "v2.4_jobs.json": jobs,
            "v2.0_remote_build_nodes.json": remoteBuildNodes,
        ]
    }

    /// Writes `files` into a new directory.
    static func write(_ files: [String: Any]) throws -> String {
        let directory = try makeTemporaryDirectory()
        for (name, content) in files {
            let data = try (content as? Data) ?? JSONSerialization.data(withJSONObject: content)
            try data.write(to: URL(fileURLWithPath: directory + "/" + name))
        }
        return directory
    }

    /// The records of an IMS data file, by id (or xname).
    static func read(_ path: String) throws -> [String: [String: Any]] {
        let array = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: array.map { (($0["id"] ?? $0["xname"]) as? String ?? "", $0) })
    }

    /// Two records as IMS reads them: the same fields with the same values, a `null` field the same as a missing one.
    static func equal(_ lhs: [String: Any], _ rhs: [String: Any]) -> Bool {
        let keys = Set(lhs.keys).union(rhs.keys)
        return keys.allSatisfy { key in
            let left = lhs[key].flatMap { $0 is NSNull ? nil : $0 }
            let right = rhs[key].flatMap { $0 is NSNull ? nil : $0 }
            switch (left, right) {
            case (nil, nil): return true
            case (let l?, let r?):
                let encode = { (value: Any) in try? JSONSerialization.data(withJSONObject: ["v": value], options: [.sortedKeys]) }
                return encode(l) != nil && encode(l) == encode(r)
            default: return false
            }
        }
    }
}

@Suite("Moving from IMS: import-ims and export-ims")
struct IMSMigrationTests {
    @Test("every table and every field of IMS's current files is imported, keeping ids, times and values")
    func importsEverything() throws {
        let source = try IMSFiles.write(IMSFiles.current)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            let report = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            #expect(report.ok && report.imported)
            #expect(report.tables["recipes"]?.added == 2 && report.tables["images"]?.added == 3)
            #expect(report.tables["public_keys"]?.added == 2 && report.tables["jobs"]?.added == 2)
            #expect(report.tables["remote_build_nodes"]?.added == 2)
            #expect(report.files.filter { $0.disposition == .used }.count == 8)
            #expect(report.unfinishedJobs == [IMSFiles.customizeJobID])

            let recipe = try catalog.recipe(try #require(UUID(uuidString: IMSFiles.recipeID)))
            #expect(IMSTimestamp.string(recipe.created) == "2023-04-05T06:07:08.123456+00:00")
            #expect(recipe.name == "cos-2.5-x86_64" && recipe.arch == .aarch64 && !recipe.requireDKMS)
            #expect(recipe.linuxDistribution == .sles15 && recipe.recipeType == .kiwiNG)
            #expect(recipe.templateDictionary.map(\.key) == ["CSM_RELEASE_VERSION", "SLES_REPO"])
            #expect(recipe.link?.path == "s3://ims/recipes/\(IMSFiles.recipeID)/recipe.tar.gz" && recipe.link?.etag == "0a1b2c3d")

            let deletedRecipe = try catalog.recipe(try #require(UUID(uuidString: IMSFiles.deletedRecipeID)), scope: .deleted)
            #expect(deletedRecipe.deleted.map(IMSTimestamp.string) == "2023-01-02T03:04:05.500000+00:00")
            #expect(deletedRecipe.link == nil && deletedRecipe.recipeType == .packer && deletedRecipe.linuxDistribution == .centos7)

            let image = try catalog.image(try #require(UUID(uuidString: IMSFiles.imageID)))
            #expect(image.metadata == ["owner": "hpc team", "stage": "prod"] && image.arch == .aarch64)
            #expect(try catalog.image(try #require(UUID(uuidString: IMSFiles.imageWithoutLinkID))).link == nil)
            let deletedImage = try catalog.image(try #require(UUID(uuidString: IMSFiles.deletedImageID)), scope: .deleted)
            #expect(deletedImage.metadata == ["reason": "superseded"] && deletedImage.link?.etag == "")

            #expect(try catalog.publicKey(try #require(UUID(uuidString: IMSFiles.keyID))).publicKey.hasPrefix("ssh-ed25519 "))
            #expect(try catalog.publicKey(try #require(UUID(uuidString: IMSFiles.deletedKeyID)), scope: .deleted).deleted != nil)

            let create = try catalog.job(try #require(UUID(uuidString: IMSFiles.createJobID)))
            #expect(create.status == .success && create.resultantImageID?.imsString == IMSFiles.imageID)
            #expect(create.kernelFileName == "Image" && create.kubernetesSecret == "cray-ims-\(IMSFiles.createJobID)-secret")
            #expect(create.kubernetesNamespace == "ims" && create.remoteBuildNode == "")
            let customize = try catalog.job(try #require(UUID(uuidString: IMSFiles.customizeJobID)))
            #expect(customize.sshContainers.first?.jail == true && customize.sshContainers.first?.connectionInfo["customer_access"]?.port == 22)
            #expect(customize.buildEnvSize == 90 && customize.jobMemSize == 16 && customize.initrdFileName == "initrd.img")
            #expect(customize.remoteBuildNode == "x3000c0s19b4n0" && customize.resultantImageID == nil)

            #expect(try RemoteBuildNodeFile.read(path: data.remoteBuildNodesPath) == ["x3000c0s19b4n0", "x3000c0s19b3n0"])
            #expect(try catalog.checkConsistency().isEmpty)
        }
    }

    @Test("importing twice changes nothing the second time")
    func idempotent() throws {
        let source = try IMSFiles.write(IMSFiles.current)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            _ = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            let before = try catalog.recordCounts()
            let again = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            #expect(again.ok && !again.imported)
            #expect(again.tables.values.allSatisfy { $0.added == 0 && $0.unchanged == $0.read })
            #expect(try catalog.recordCounts() == before)
            #expect(try RemoteBuildNodeFile.read(path: data.remoteBuildNodesPath).count == 2)
        }
    }

    @Test("a dry run reports what would be imported and changes nothing")
    func dryRun() throws {
        let source = try IMSFiles.write(IMSFiles.current)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            let report = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: true)
            #expect(report.ok && report.dryRun && !report.imported)
            #expect(report.tables["images"]?.added == 3 && report.tables["remote_build_nodes"]?.added == 2)
            #expect(try catalog.recordCounts().values.allSatisfy { $0 == 0 })
            #expect(!FileManager.default.fileExists(atPath: data.remoteBuildNodesPath))
        }
    }

    @Test("a record whose id the catalog holds with other values is a conflict naming both records and the fields, and nothing is imported")
    func conflictingRecord() throws {
        let source = try IMSFiles.write(IMSFiles.current)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            let id = try #require(UUID(uuidString: IMSFiles.imageID))
            _ = try catalog.createImage(ImageRecord(id: id, name: "renamed-in-ims", arch: .aarch64))
            let report = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            #expect(!report.ok && !report.imported)
            let conflict = try #require(report.conflicts.first)
            #expect(report.conflicts.count == 1)
            #expect(conflict.id == IMSFiles.imageID && conflict.other == IMSFiles.imageID)
            #expect(conflict.source == IMSRecordSource(file: "v2.1_images.json", index: 0))
            #expect(conflict.fields == ["created", "link", "metadata", "name"])
            #expect(try catalog.recordCounts() == ["recipes": 0, "images": 1, "public_keys": 0, "jobs": 0])
            #expect(!FileManager.default.fileExists(atPath: data.remoteBuildNodesPath))
        }
    }

    @Test("a live record whose link another live record uses is a conflict naming the other record")
    func conflictingLink() throws {
        let source = try IMSFiles.write(IMSFiles.current)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            let other = try catalog.createImage(ImageRecord(
                name: "ims-built", link: ArtifactLink(path: "s3://boot-images/\(IMSFiles.imageID)/manifest.json", type: .s3)))
            let report = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            #expect(report.conflicts.map(\.other) == [other.id.imsString])
            #expect(report.conflicts.first?.reason.contains("already used by the catalog's live image \(other.id.imsString)") == true)
            #expect(try catalog.images().count == 1)
        }
    }

    /// A table of broken inputs: each names its file and record, and nothing at all is imported.
    nonisolated(unsafe) static let brokenRecords: [(label: String, file: String, records: Any, index: Int?, reason: String)] = [
        ("a record without a name", "v2.1_images.json", [["id": IMSFiles.imageID, "created": "2024-01-01T00:00:00"], ["id": IMSFiles.imageWithoutLinkID, "created": "2024-01-01T00:00:00"]] as Any, 0, "name: missing"),
        ("an id that is not a UUID", "v2_public_keys.json", [["id": "key-1", "created": "2020-01-01T00:00:00", "name": "a", "public_key": "ssh-rsa AAA"]] as Any, 0, "is not a UUID"),
        ("an unknown linux_distribution", "v2.2_recipes.json", [["id": IMSFiles.recipeID, "created": "2020-01-01T00:00:00", "name": "r", "recipe_type": "kiwi-ng", "linux_distribution": "ubuntu"]] as Any, 0, "linux_distribution"),
        ("a timestamp that is not one", "v2.4_jobs.json", [["id": IMSFiles.createJobID, "created": "yesterday", "job_type": "create", "artifact_id": IMSFiles.recipeID, "image_root_archive_name": "x"]] as Any, 0, "'yesterday' is not a timestamp"),
        ("a deleted record without its deletion time", "v3.1_deleted_images.json", [["id": IMSFiles.deletedImageID, "created": "2021-01-01T00:00:00", "name": "x"]] as Any, 0, "deleted: missing"),
        ("an empty name", "v3_deleted_public_keys.json", [["id": IMSFiles.deletedKeyID, "created": "2021-01-01T00:00:00", "deleted": "2021-01-02T00:00:00", "name": "", "public_key": "ssh-rsa AAA"]] as Any, 0, "name: must not be empty"),
        ("a wrong type", "v2.4_jobs.json", [["id": IMSFiles.createJobID, "created": "2024-01-01T00:00:00", "job_type": "create", "artifact_id": IMSFiles.recipeID, "image_root_archive_name": "x", "build_env_size": "sixty"]] as Any, 0, "build_env_size: expected a number"),
        ("a file that is not an array", "v2.0_remote_build_nodes.json", ["xname": "x1"] as Any, nil, "not a JSON array"),
        ("a node without an xname", "v2.0_remote_build_nodes.json", [["xname": "x1"], ["xname": ""]] as Any, 1, "xname: must not be empty"),
    ]

    @Test("a broken record names its file and index, and nothing is imported", arguments: 0..<IMSMigrationTests.brokenRecords.count)
    func brokenRecord(_ row: Int) throws {
        let broken = Self.brokenRecords[row]
        var files: [String: Any] = IMSFiles.current
        files[broken.file] = broken.records
        let source = try IMSFiles.write(files)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data throws in
            do {
                _ = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
                Issue.record("\(broken.label): imported")
            } catch {
                let text = String(describing: error)
                guard case .importData(let file, let index, let reason) = error as? CatalogError else {
                    Issue.record("\(broken.label): \(text)")
                    return
                }
                #expect(file == broken.file && index == broken.index, "\(broken.label): \(text)")
                #expect(reason.contains(broken.reason), "\(broken.label): \(reason)")
                #expect(text.contains("nothing was imported"))
            }
            #expect(try catalog.recordCounts().values.allSatisfy { $0 == 0 }, "\(broken.label)")
            #expect(!FileManager.default.fileExists(atPath: data.remoteBuildNodesPath))
        }
    }

    @Test("an id in both the live and the deleted file is refused, naming both places")
    func idLiveAndDeleted() throws {
        var files = IMSFiles.current
        var deleted = IMSFiles.deletedImages
        deleted[0]["id"] = IMSFiles.imageID
        files["v3.1_deleted_images.json"] = deleted
        let source = try IMSFiles.write(files)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            #expect {
                try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            } throws: { error in
                let text = "\(error)"
                return text.contains("v3.1_deleted_images.json record 0") && text.contains("v2.1_images.json record 0")
            }
        }
    }

    @Test("for each table the newest version present is read; older versions are reported as superseded")
    func newestVersion() throws {
        var files: [String: Any] = IMSFiles.current
        files["v2_recipes.json"] = [["id": "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", "created": "2019-01-01T00:00:00", "name": "stale", "recipe_type": "kiwi-ng", "linux_distribution": "sles12"]]
        files["v2.1_recipes.json"] = [] as [Any]
        files["v2.10_jobs.json.bak"] = [] as [Any]
        let source = try IMSFiles.write(files)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            let report = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            let superseded = report.files.filter { $0.disposition == .superseded }
            #expect(Set(superseded.map(\.file)) == ["v2_recipes.json", "v2.1_recipes.json"])
            #expect(superseded.allSatisfy { $0.supersededBy == "v2.2_recipes.json" })
            #expect(try catalog.recipes().map(\.name) == ["cos-2.5-x86_64"])
        }
    }

    @Test("records of older schema versions get the defaults IMS's upgrade gives them")
    func olderVersions() throws {
        let files: [String: Any] = [
            "v2_recipes.json": [["id": IMSFiles.recipeID, "created": "2019-01-01T00:00:00", "name": "old", "recipe_type": "kiwi-ng", "linux_distribution": "sles12", "link": NSNull()]],
            "v2_images.json": [["id": IMSFiles.imageID, "created": "2019-01-01T00:00:00", "name": "old", "link": NSNull()]],
            "v3_deleted_images.json": [["id": IMSFiles.deletedImageID, "created": "2019-01-01T00:00:00", "deleted": "2019-02-01T00:00:00", "name": "gone", "link": NSNull()]],
            "v2.1_jobs.json": [[
                "id": IMSFiles.createJobID, "created": "2019-01-01T00:00:00", "job_type": "create", "artifact_id": IMSFiles.recipeID,
                "public_key_id": IMSFiles.keyID, "image_root_archive_name": "old", "status": "error", "kubernetes_job": "cray-ims-x-create",
            ]],
        ]
        let source = try IMSFiles.write(files)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            let report = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            #expect(report.ok)
            let recipe = try catalog.recipe(try #require(UUID(uuidString: IMSFiles.recipeID)))
            #expect(recipe.arch == .x86_64 && recipe.requireDKMS && recipe.templateDictionary.isEmpty)
            let image = try catalog.image(try #require(UUID(uuidString: IMSFiles.imageID)))
            #expect(image.arch == .x86_64 && image.metadata.isEmpty)
            let job = try catalog.job(try #require(UUID(uuidString: IMSFiles.createJobID)))
            #expect(job.kernelFileName == "vmlinuz" && job.buildEnvSize == 60 && job.jobMemSize == 8 && job.kubernetesPVC == nil)
            #expect(job.kubernetesJob == "cray-ims-x-create" && job.status == .error)
        }
    }

    @Test("IMS → ims → IMS files: every record equals the original (a null field the same as a missing one)")
    func roundTrip() throws {
        let source = try IMSFiles.write(IMSFiles.current)
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            _ = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            let target = data.path + "/exported"
            let files = try IMSMigration.exportDirectory(target, from: catalog, dataDirectory: data, overwrite: false)
            #expect(Set(files.map(\.file)) == Set(IMSFiles.current.keys))
            for name in IMSFiles.current.keys {
                let original = try IMSFiles.read(source + "/" + name)
                let exported = try IMSFiles.read(target + "/" + name)
                #expect(Set(original.keys) == Set(exported.keys), "\(name)")
                for (id, record) in original {
                    #expect(IMSFiles.equal(record, exported[id] ?? [:]), "\(name) \(id): \(record) became \(exported[id] ?? [:])")
                }
            }
            // And the exported files import into a fresh catalog as the same records.
            let again = try withTemporaryCatalog { fresh, freshData in
                try IMSMigration.importDirectory(target, into: fresh, dataDirectory: freshData, dryRun: false)
            }
            #expect(again.ok && again.tables["images"]?.added == 3)
            // The export refuses to overwrite IMS files unless told to.
            #expect {
                try IMSMigration.exportDirectory(target, from: catalog, dataDirectory: data, overwrite: false)
            } throws: { error in
                "\(error)".contains("already holds IMS data files")
            }
            #expect(try IMSMigration.exportDirectory(target, from: catalog, dataDirectory: data, overwrite: true).count == 8)
        }
    }

    @Test("records ims created export with IMS's fields only, readable by the import")
    func exportsIMSCreatedRecords() throws {
        try withTemporaryCatalog { catalog, data in
            let recipe = try catalog.createRecipe(fullRecipe())
            let key = try catalog.createPublicKey(PublicKeyRecord(name: "k", publicKey: "ssh-ed25519 AAAA k@h"))
            let job = try catalog.createJob(JobRequest(jobType: .create, artifactID: recipe.id, publicKeyID: key.id, imageRootArchiveName: "img"))
            _ = try catalog.fail(job.id, error: JobError(code: "x", category: "plugin", message: "failed"))
            let target = data.path + "/exported"
            _ = try IMSMigration.exportDirectory(target, from: catalog, dataDirectory: data, overwrite: false)
            let exported = try #require(try IMSFiles.read(target + "/v2.4_jobs.json")[job.id.imsString])
            #expect(exported["status"] as? String == "error" && exported["status_history"] == nil && exported["error"] == nil)
            #expect(exported["created"] as? String == IMSNaiveTimestamp.string(job.created))
            #expect(exported["kubernetes_job"] == nil && exported["public_key_id"] as? String == key.id.imsString)
            #expect(exported["resultant_image_id"] is NSNull)
        }
    }

    @Test("timestamps are written as Python's isoformat() of a naive UTC time", arguments: [
        ("2024-01-02T03:04:05.123456+00:00", "2024-01-02T03:04:05.123456"),
        ("2024-01-02T03:04:05+00:00", "2024-01-02T03:04:05"),
        ("2024-01-02T03:04:05.5+00:00", "2024-01-02T03:04:05.500000"),
        ("2024-01-02T05:04:05.000001+02:00", "2024-01-02T03:04:05.000001"),
    ])
    func naiveTimestamps(_ input: String, _ expected: String) throws {
        #expect(IMSNaiveTimestamp.string(try #require(IMSTimestamp.parse(input))) == expected)
    }

    @Test("file names map to tables and versions; versions order numerically", arguments: [
        ("v2.2_recipes.json", "recipes", "2.2"), ("v3_deleted_public_keys.json", "deleted_public_keys", "3"),
        ("v2.0_remote_build_nodes.json", "remote_build_nodes", "2.0"), ("v2.10_jobs.json", "jobs", "2.10"),
    ])
    func fileNames(_ name: String, _ table: String, _ version: String) throws {
        let parsed = try #require(IMSTable.parse(fileName: name))
        #expect(parsed.table.rawValue == table && parsed.version == version)
    }

    @Test("names that are not IMS data files are ignored", arguments: ["recipes.json", "v2.2_recipes.json.bak", "v_recipes.json", "v2.x_images.json", "v2_widgets.json"])
    func notDataFiles(_ name: String) {
        #expect(IMSTable.parse(fileName: name) == nil)
    }

    @Test("version order", arguments: [("2", "2.1", true), ("2.1", "2.10", true), ("2.9", "2.10", true), ("3", "2.4", false), ("2", "2.0", true)])
    func versionOrder(_ lhs: String, _ rhs: String, _ precedes: Bool) {
        #expect(IMSTable.versionPrecedes(lhs, rhs) == precedes)
    }

    @Test("imports of many records stay whole: 20,000 images with metadata in one transaction")
    func manyRecords() throws {
        let images: [[String: Any]] = (0..<20_000).map { index in
            [
                "id": UUID().uuidString.lowercased(), "created": "2024-01-01T00:00:00.\(String(format: "%06d", index))",
                "name": "image-\(index)", "link": ["path": "s3://boot-images/i\(index)/manifest.json", "etag": "e", "type": "s3"],
                "arch": "x86_64", "metadata": ["n": "\(index)"],
            ]
        }
        let source = try IMSFiles.write(["v2.1_images.json": images])
        defer { try? FileManager.default.removeItem(atPath: source) }
        try withTemporaryCatalog { catalog, data in
            let report = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            #expect(report.tables["images"]?.added == 20_000)
            #expect(try catalog.images().count == 20_000)
            let again = try IMSMigration.importDirectory(source, into: catalog, dataDirectory: data, dryRun: false)
            #expect(again.tables["images"]?.unchanged == 20_000)
        }
    }
}
